"""The catalog folds a batch of new listings into a few bulk writes (projections/catalog.py):
whatever the batch boundaries, it must write exactly the rows the one-event handlers write,
on SQLite and MariaDB, and an edit must leave no stale search postings behind."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from aggregates.accounts import Account
from aggregates.catalog import Category, Product
from commands.application import EventMeta, recording_as
from projections.base import Envelope, Projection
from projections.catalog import Catalog
from projections.catalog import live as catalog_live
from projections.rebuild import rebuild
from queries.catalog import ProductSearch, search_products
from queries.common import PageRequest
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings

WORDS = ["保濕", "乳液", "洗髮精", "咖啡", "豆", "café", "200ml", "茶葉", "禮盒", "Cafe", "有機"]


class OneEventAtATime(Catalog):
    """The catalog as its one-event handlers alone write it (no batch folding)."""

    def apply_many(self, session: Any, envelopes: list[Envelope]) -> None:
        Projection.apply_many(self, session, envelopes)


@pytest.fixture
def catalog_container(database_url: str, tmp_path: Path) -> Iterator[Container]:
    c = bootstrap(make_settings(database_url, tmp_path))
    yield c
    c.close()


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _seller(rng: random.Random, i: int) -> Account:
    return Account.register(
        _uuid(rng),
        email=f"s{i}@example.test",
        username=f"s{i}",
        password_hash="x",
        display_name=f"店{i}",
        phone=None,
        role="seller",
        email_verified=True,
    )


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _history(c: Container, rng: random.Random, products: int = 60) -> list[Product]:
    """Sellers, categories and products with price changes, edits, status changes and seller
    changes interleaved, saved a few aggregates at a time (as requests would)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with recording_as(EventMeta("system:test", "batches")):
        root = Category.create(_uuid(rng), "根", None)
        leaves = [Category.create(_uuid(rng), f"葉{i}", root) for i in range(3)]
        c.app.save(root, *leaves)
        sellers = [_seller(rng, i) for i in range(4)]
        c.app.save(*sellers)
        made: list[Product] = []
        for n in range(products):
            at += timedelta(minutes=1)
            seller = rng.choice(sellers)
            product = Product.list_new(
                _uuid(rng),
                seller_id=str(seller.id),
                name=_text(rng, 2),
                description=_text(rng, rng.randint(0, 6)),
                category_id=str(rng.choice(leaves).id),
                price=Decimal(rng.randint(10, 900)),
                images=[],
                supplier_ids=[],
                banned=(),
                at=at,
                under_review=rng.random() < 0.25,  # SHOPLEDGER_PRODUCT_REVIEW
            )
            for _ in range(rng.choice([0, 0, 1, 3])):  # price changes in the same save
                at += timedelta(seconds=30)
                product.change_price(Decimal(rng.randint(10, 900)), at)
            made.append(product)
            touched: list[Any] = [product]
            roll = rng.random()
            if roll < 0.15 and len(made) > 1:  # an earlier product changes
                other = rng.choice(made[:-1])
                action = rng.choice(
                    ["edit", "price", "delist", "suspend", "review-edit", "approve", "reject"]
                )
                at += timedelta(seconds=10)
                if action == "edit":
                    other.edit(
                        name=_text(rng, 2),
                        description=_text(rng, 3),
                        category_id=str(rng.choice(leaves).id),
                        banned=(),
                        at=at,
                    )
                elif action == "price":
                    other.change_price(Decimal(rng.randint(10, 900)), at)
                elif action == "delist" and other.status == "active":
                    other.delist(at)
                elif action == "suspend" and other.status != "suspended":
                    other.suspend("test", at)
                elif action == "review-edit":
                    other.edit(
                        name=_text(rng, 2),
                        category_id=str(rng.choice(leaves).id),
                        banned=(),
                        at=at,
                        review_required=True,
                    )
                elif action in ("approve", "reject") and other.review_pending:
                    if action == "approve":
                        other.approve(at)
                    else:
                        other.reject("test", at)
                touched.append(other)
            elif roll < 0.22:  # a seller loses or regains listing rights, or is disabled
                account = rng.choice(sellers)
                if account.listing_suspended:
                    account.restore_listing_rights()
                elif rng.random() < 0.5:
                    account._listing_suspended(3)
                elif account.status == "active":
                    account.disable("test")
                else:
                    account.enable()
                touched.append(account)
            if n == products // 2:  # a category renamed, another moved under a sibling
                leaves[0].rename(f"改名{rng.randint(0, 99)}")
                leaves[1].move(str(leaves[2].id), [*leaves[2].path, str(leaves[2].id)])
                touched.extend(leaves[:2])
            c.app.save(*touched)
        return made


def _dump(c: Container) -> dict[str, list[tuple[object, ...]]]:
    with c.engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(select(t)))) for name, t in catalog_live.items()
        }


def test_batched_catch_up_writes_exactly_the_rows_of_one_event_at_a_time(
    catalog_container: Container,
) -> None:
    c = catalog_container
    _history(c, random.Random(7))
    rebuild(c.app, OneEventAtATime, c.locks)
    expected = _dump(c)
    assert len(expected["products"]) == 60 and len(expected["terms"]) > 100
    for batch_size in (10_000, 7, 1):
        rebuild(c.app, Catalog, c.locks, batch_size=batch_size)
        assert _dump(c) == expected, f"batch size {batch_size}"
    _history(c, random.Random(8), products=15)  # more, applied by the live runner
    c.catch_up()
    incremental = _dump(c)
    rebuild(c.app, OneEventAtATime, c.locks)
    assert incremental == _dump(c)
    assert len(incremental["products"]) == 75


def test_an_edited_product_is_found_by_its_new_words_only(catalog_container: Container) -> None:
    c = catalog_container
    rng = random.Random(3)
    at = datetime(2026, 2, 1, tzinfo=UTC)
    with recording_as(EventMeta("system:test", "edit")):
        leaf = Category.create(_uuid(rng), "葉", None)
        seller = _seller(rng, 0)
        product = Product.list_new(
            _uuid(rng),
            seller_id=str(seller.id),
            name="保濕乳液",
            description="有機 茶葉",
            category_id=str(leaf.id),
            price=Decimal(100),
            images=[],
            supplier_ids=[],
            banned=(),
            at=at,
        )
        c.app.save(leaf, seller, product)
        c.catch_up()
        product.edit(name="咖啡豆", description="禮盒", banned=(), at=at + timedelta(hours=1))
        c.app.save(product)
    c.catch_up()

    def found(q: str) -> int:
        answer = search_products(c.engine, ProductSearch(q=q), PageRequest(1, 20))
        return int(answer["pagination"]["totalItems"])

    assert (found("咖啡"), found("禮盒"), found("乳液"), found("茶葉")) == (1, 1, 0, 0)
    with c.engine.connect() as conn:
        terms = catalog_live["terms"]
        left = set(conn.execute(select(terms.c.term)).scalars())
    assert left == {"咖啡", "啡豆", "咖", "啡", "豆", "禮盒"}


def test_a_category_page_is_the_same_whether_sorted_from_the_category_or_walked(
    catalog_container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small categories are paged by sorting their matches (their own index), large ones by
    walking the sort's index: both give the same pages, in the documented order."""
    c = catalog_container
    made = _history(c, random.Random(11), products=45)
    c.catch_up()
    import queries.catalog as catalog_queries

    with c.engine.connect() as conn:
        products = catalog_live["products"]
        categories = catalog_live["categories"]
        root = conn.execute(select(categories.c.category_id).where(categories.c.depth == 0))
        root_id = root.scalar_one()
        listed = conn.execute(
            select(products.c.product_id, products.c.price_minor).where(products.c.listed)
        ).all()
    assert 10 < len(listed) <= len(made)
    by_price = [r.product_id for r in sorted(listed, key=lambda r: (r.price_minor, r.product_id))]

    def pages(sort: str) -> list[str]:
        found: list[str] = []
        for page in range(1, 5):
            answer = search_products(
                c.engine, ProductSearch(category_id=root_id, sort=sort), PageRequest(page, 7)
            )
            assert answer["pagination"]["totalItems"] == len(listed)
            found += [p["productId"] for p in answer["products"]]
        return found

    sorted_from_category = {s: pages(s) for s in ("price", "-price", "newest", "bestselling")}
    monkeypatch.setattr(catalog_queries, "CATEGORY_SORT_LIMIT", 0)
    walked = {s: pages(s) for s in ("price", "-price", "newest", "bestselling")}
    assert sorted_from_category == walked
    assert sorted_from_category["price"] == by_price[:28]


def test_a_restart_after_a_rebuild_adds_no_second_copy_of_an_index(
    database_url: str, tmp_path: Path
) -> None:
    """A rebuilt table keeps its shadow's index names; startup must still see them."""
    from sqlalchemy import inspect

    products = catalog_live["products"]
    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        rebuild(c.app, Catalog, c.locks)
    finally:
        c.close()
    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        columns = [tuple(ix["column_names"]) for ix in inspect(c.engine).get_indexes(products.name)]
    finally:
        c.close()
    assert len(columns) == len(set(columns)) == len(products.indexes)


def test_an_index_added_by_a_newer_version_is_created_on_an_existing_database(
    database_url: str, tmp_path: Path
) -> None:
    products = catalog_live["products"]
    (index,) = [ix for ix in products.indexes if ix.columns.keys()[0] == "category_id"]
    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        index.drop(c.engine)  # as a database made by the version before it
    finally:
        c.close()
    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        from sqlalchemy import inspect

        names = {ix["name"] for ix in inspect(c.engine).get_indexes(products.name)}
        assert index.name in names
    finally:
        c.close()


def _as_before_reviews(c: Container) -> None:
    """Make the products table look as the version before reviews made it."""
    from sqlalchemy import text

    products = catalog_live["products"]
    (index,) = [ix for ix in products.indexes if "rating_x10" in ix.columns]
    index.drop(c.engine)
    quote = c.engine.dialect.identifier_preparer.quote
    with c.engine.begin() as conn:
        for column in ("rating_sum", "review_count", "rating_x10"):
            conn.execute(text(f"ALTER TABLE {quote(products.name)} DROP COLUMN {quote(column)}"))


def test_columns_added_by_a_newer_version_are_added_to_an_existing_database(
    database_url: str, tmp_path: Path
) -> None:
    """Product ratings came with reviews: a catalog built before them gains the columns (no
    product had a review then) and the sort index at the next start, and keeps working."""
    from sqlalchemy import inspect

    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        _history(c, random.Random(7), products=5)
        c.catch_up()
        _as_before_reviews(c)
    finally:
        c.close()
    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        products = catalog_live["products"]
        names = {col["name"] for col in inspect(c.engine).get_columns(products.name)}
        assert {"rating_sum", "review_count", "rating_x10"} <= names
        indexes = [tuple(ix["column_names"]) for ix in inspect(c.engine).get_indexes(products.name)]
        assert sorted(indexes) == sorted(tuple(ix.columns.keys()) for ix in products.indexes)
        found = search_products(c.engine, ProductSearch(sort="rating"), PageRequest(1, 50))
        assert found["products"] and all(
            p["rating"] is None and p["reviewCount"] == 0 for p in found["products"]
        )
    finally:
        c.close()


def test_a_missing_column_that_history_feeds_stops_startup_naming_the_rebuild(
    database_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import text

    from shopledger.bootstrap import StartupError

    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        quote = c.engine.dialect.identifier_preparer.quote
        with c.engine.begin() as conn:
            table = quote(catalog_live["prices"].name)
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {quote('actor')}"))
    finally:
        c.close()
    with pytest.raises(StartupError, match="projections rebuild catalog"):
        bootstrap(make_settings(database_url, tmp_path))
