"""Moderation rules in memory: the category tree stays a forest, product review transitions,
seller applications refused and made again, customer tags and notes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.accounts import Account
from aggregates.catalog import (
    CategoryCycle,
    CategoryNotEmpty,
    CategoryTree,
    Product,
    ReviewStateConflict,
)
from aggregates.customers import MAX_TAGS, CustomerRecord, InvalidTag, TagNotFound, clean_tag
from aggregates.errors import Conflict, DomainError

AT = datetime(2026, 12, 1, 12, tzinfo=UTC)


# --- the category tree --------------------------------------------------------------------
def tree_of(parents: dict[str, str | None]) -> CategoryTree:
    return CategoryTree.start({c: {"parent": p, "name": c} for c, p in parents.items()})


def assert_forest(tree: CategoryTree) -> None:
    """Every category reaches a root by following parents, without meeting itself."""
    for start in tree.nodes:
        seen = {start}
        parent = tree.nodes[start]["parent"]
        while parent is not None:
            assert parent in tree.nodes, f"{start}: dangling parent {parent}"
            assert parent not in seen, f"cycle through {start}"
            seen.add(parent)
            parent = tree.nodes[parent]["parent"]


def test_a_category_cannot_move_under_itself_or_a_descendant() -> None:
    tree = tree_of({"a": None, "b": "a", "c": "b", "d": None})
    with pytest.raises(CategoryCycle):
        tree.move("a", "a")
    with pytest.raises(CategoryCycle):
        tree.move("a", "c")
    assert tree.move("c", None) is True and tree.ancestors("c") == []
    assert tree.move("a", "d") is True
    assert tree.ancestors("b") == ["d", "a"] and tree.descendants("d") == ["a", "b"]
    assert tree.move("a", "d") is False  # already there: nothing recorded


def test_only_a_category_without_subcategories_can_be_removed() -> None:
    tree = tree_of({"a": None, "b": "a"})
    with pytest.raises(CategoryNotEmpty):
        tree.remove("a")
    tree.remove("b")
    tree.remove("a")
    assert tree.nodes == {}


def test_sibling_names_stay_unique_across_renames_and_moves() -> None:
    tree = CategoryTree.start({})
    tree.add("x", None, "Tea")
    tree.add("y", None, "Coffee")
    tree.add("z", "y", "Tea")
    with pytest.raises(Conflict):
        tree.rename("y", "  TEA ")
    with pytest.raises(Conflict):
        tree.move("z", None)  # a root named Tea exists
    assert tree.rename("z", "Green tea") is True
    assert tree.move("z", None) is True
    assert tree.rename("x", "Tea") is False  # unchanged


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.one_of(st.none(), st.integers(0, 7))),
        min_size=1,
        max_size=25,
    )
)
def test_any_sequence_of_moves_keeps_the_categories_a_forest(
    moves: list[tuple[int, int | None]],
) -> None:
    tree = tree_of(
        {"c0": None, "c1": "c0", "c2": "c1", "c3": None, "c4": "c3"}
        | {"c5": "c0", "c6": None, "c7": "c6"}
    )
    for child, parent in moves:
        before = dict(tree.nodes)
        target = None if parent is None else f"c{parent}"
        try:
            tree.move(f"c{child}", target)
        except CategoryCycle:
            assert tree.nodes == before  # a refused move changes nothing
            assert target == f"c{child}" or f"c{child}" in tree.ancestors(target or "")
        except Conflict:
            assert tree.nodes == before
        else:
            assert tree.nodes[f"c{child}"]["parent"] == target
        assert_forest(tree)


# --- product review -----------------------------------------------------------------------
def listing(under_review: bool) -> Product:
    return Product.list_new(
        uuid4(),
        seller_id="s1",
        name="烏龍茶",
        description="清香",
        category_id="c1",
        price=Decimal(100),
        images=[],
        supplier_ids=[],
        banned=["仿冒"],
        at=AT,
        under_review=under_review,
    )


def test_a_product_under_review_is_not_on_sale_until_approved_once() -> None:
    product = listing(under_review=True)
    assert not product.is_active and product.review_status == "pending"
    product.approve(AT)
    assert product.is_active and product.review_status == "approved"
    with pytest.raises(ReviewStateConflict):
        product.approve(AT)
    with pytest.raises(ReviewStateConflict):
        product.reject("late", AT)


def test_a_rejected_new_product_goes_back_into_the_queue_when_its_seller_edits_it() -> None:
    product = listing(under_review=True)
    product.reject("圖片不清楚", AT)
    assert product.review_status == "rejected" and product.review_reason == "圖片不清楚"
    with pytest.raises(ReviewStateConflict):
        product.reject("again", AT)
    product.edit(images=["https://img.example.com/a.jpg"], banned=[], at=AT, review_required=True)
    assert product.images == ["https://img.example.com/a.jpg"]  # no public version to protect
    assert product.review_status == "pending" and not product.is_active


def test_an_edit_of_a_live_product_waits_while_the_live_version_stays() -> None:
    product = listing(under_review=False)
    product.edit(name="高山烏龍茶", banned=[], at=AT, review_required=True)
    product.change_price(Decimal(120), AT)  # prices are not held for review
    assert product.name == "烏龍茶" and product.is_active and product.price == Decimal(120)
    assert product.pending_changes == {"name": "高山烏龍茶"}
    product.edit(description="回甘", banned=[], at=AT, review_required=True)
    assert product.pending_changes == {"name": "高山烏龍茶", "description": "回甘"}
    product.approve(AT)
    assert (product.name, product.description) == ("高山烏龍茶", "回甘")
    assert product.pending_changes == {} and product.review_status == "approved"

    product.edit(name="冒牌茶", banned=[], at=AT, review_required=True)
    product.reject("名稱不實", AT)
    assert product.name == "高山烏龍茶" and product.is_active and product.pending_changes == {}


def test_an_edit_back_to_the_live_values_withdraws_the_waiting_edit() -> None:
    product = listing(under_review=False)
    product.edit(name="新名稱", banned=[], at=AT, review_required=True)
    product.edit(name="烏龍茶", banned=[], at=AT, review_required=True)
    assert product.pending_changes == {} and product.review_status == "approved"


def test_banned_keywords_are_checked_on_the_pending_version() -> None:
    product = listing(under_review=False)
    with pytest.raises(DomainError):
        product.edit(name="仿冒烏龍", banned=["仿冒"], at=AT, review_required=True)


# --- seller applications ------------------------------------------------------------------
def applicant() -> Account:
    account = Account.register(
        uuid4(),
        email="a@example.com",
        username="applicant",
        password_hash="x",
        display_name="A",
        phone=None,
    )
    account.apply_for_seller("小店", "", AT)
    return account


def test_a_rejected_applicant_may_apply_again_and_be_approved() -> None:
    account = applicant()
    account.reject_seller("資料不全", AT)
    assert account.seller_application is not None
    assert account.seller_application["status"] == "rejected"
    assert account.seller_application["rejection_reason"] == "資料不全"
    with pytest.raises(Conflict):
        account.reject_seller("twice", AT)
    with pytest.raises(Conflict):
        account.approve_seller()
    account.apply_for_seller("小店", "補件", AT)
    account.approve_seller()
    assert account.role == "seller"
    with pytest.raises(Conflict):
        account.reject_seller("too late", AT)


# --- customer records ---------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["", "   ", "x" * 31, "VIP!", "a/b", "<b>", "VIP⭐", "a\x00b"])
def test_bad_tags_are_refused(raw: str) -> None:
    with pytest.raises(InvalidTag):
        clean_tag(raw)


def test_tags_are_normalized_and_compared_without_case() -> None:
    assert clean_tag("  ＶＩＰ   buyer ") == "VIP buyer"
    assert clean_tag("常客") == "常客" and clean_tag("B2B-wholesale") == "B2B-wholesale"
    record = CustomerRecord.open("u1")
    assert record.tag("VIP", "admin", AT) == "VIP"
    with pytest.raises(Conflict):
        record.tag("vip", "admin", AT)
    record.untag("Vip", "admin", AT)
    assert record.tags == []
    with pytest.raises(TagNotFound):
        record.untag("VIP", "admin", AT)


def test_a_user_has_at_most_twenty_tags() -> None:
    record = CustomerRecord.open("u1")
    for n in range(MAX_TAGS):
        record.tag(f"t{n}", "admin", AT)
    with pytest.raises(Conflict):
        record.tag("one more", "admin", AT)


def test_notes_must_say_something() -> None:
    record = CustomerRecord.open("u1")
    with pytest.raises(DomainError):
        record.add_note("n1", "   ", "admin", AT)
    note = record.add_note("n2", " 偏好週末收貨 ", "admin", AT)
    assert note["text"] == "偏好週末收貨" and note["author_id"] == "admin"
