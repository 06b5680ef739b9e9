"""Catalog and inventory domain rules, money, search terms and the price-trend helpers, in memory."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from aggregates.catalog import (
    DEFAULT_BANNED_KEYWORDS,
    DESCRIPTION_MAX,
    IMAGE_URL_MAX,
    KEYWORD_MAX,
    MAX_IMAGES,
    NAME_MAX,
    PRODUCT_STATUSES,
    BannedKeyword,
    BannedKeywords,
    Category,
    InvalidProduct,
    Product,
    ProductStateConflict,
    clean_description,
    clean_image_url,
    clean_images,
    clean_keywords,
    clean_name,
    find_banned,
    fold_for_matching,
)
from aggregates.errors import Conflict, DomainError
from aggregates.inventory import (
    MAX_QUANTITY,
    InsufficientStock,
    InvalidQuantity,
    Inventory,
    InventoryConflict,
    Warehouse,
    check_quantity,
)
from aggregates.money import (
    CURRENCY,
    MAX_PRICE,
    InvalidMoney,
    from_minor,
    money,
    parse_amount,
    parse_price,
    quantize,
    to_minor,
)
from projections.search_text import (
    DESCRIPTION_WEIGHT,
    MAX_QUERY_TERMS,
    NAME_WEIGHT,
    document_terms,
    query_terms,
    terms,
)
from queries.catalog import MAX_PERIODS, QueryError, _PriceBag, calendar_periods

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
IMAGE = "https://img.example.com/p/1.png"


def product(
    name: str = "保濕乳液 200ml",
    description: str = "溫和不刺激的保濕乳液",
    price: Decimal = Decimal(350),
    images: list[str] | None = None,
    supplier_ids: list[str] | None = None,
) -> Product:
    return Product.list_new(
        uuid4(),
        seller_id="s1",
        name=name,
        description=description,
        category_id="c1",
        price=price,
        images=[IMAGE] if images is None else images,
        supplier_ids=["sup-b", "sup-a"] if supplier_ids is None else supplier_ids,
        banned=DEFAULT_BANNED_KEYWORDS,
        at=T0,
    )


def listed_product() -> Product:
    """A product with its creation event already collected."""
    p = product()
    p.collect_events()
    return p


def event_names(agg: Any) -> list[str]:
    return [type(e).__name__ for e in agg.collect_events()]


# --- money -----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["0", "0.00", "-1", "-0.01", 0, -5, Decimal("-0")])
def test_a_price_of_zero_or_less_is_refused(raw: Any) -> None:
    with pytest.raises(InvalidMoney) as exc:
        parse_price(raw)
    assert exc.value.details["field"] == "price"


@pytest.mark.parametrize("raw", ["1.005", "0.001", "350.999", Decimal("19.991"), 0.1 + 0.2])
def test_a_price_with_more_than_two_decimals_is_refused_not_rounded(raw: Any) -> None:
    with pytest.raises(InvalidMoney):
        parse_price(raw)
    with pytest.raises(InvalidMoney):
        parse_amount(raw)


@pytest.mark.parametrize(
    "raw", ["NaN", "sNaN", "Infinity", "-Infinity", float("nan"), float("inf"), Decimal("NaN")]
)
def test_a_price_that_is_not_finite_is_refused(raw: Any) -> None:
    with pytest.raises(InvalidMoney):
        parse_price(raw)


@pytest.mark.parametrize("raw", ["abc", "", "1,000", None, [], "12.5.3"])
def test_a_price_that_is_not_a_number_is_refused(raw: Any) -> None:
    with pytest.raises(InvalidMoney):
        parse_price(raw)


@pytest.mark.parametrize("raw", [True, False])
def test_booleans_are_not_amounts(raw: bool) -> None:
    with pytest.raises(InvalidMoney):
        parse_amount(raw)
    with pytest.raises(InvalidMoney):
        parse_price(raw)


@pytest.mark.parametrize("currency", ["USD", "twd", "NTD", ""])
def test_a_price_in_another_currency_than_twd_is_refused(currency: str) -> None:
    with pytest.raises(InvalidMoney) as exc:
        parse_price("100", currency)
    assert exc.value.details["currency"] == currency


def test_the_default_currency_is_twd_and_none_means_unspecified() -> None:
    assert parse_price("100") == Decimal(100)
    assert parse_price("100", "TWD") == Decimal(100)
    assert parse_price("100", None) == Decimal(100)


def test_a_price_may_be_max_price_but_not_a_cent_more() -> None:
    assert parse_price(MAX_PRICE) == MAX_PRICE
    assert parse_price(str(MAX_PRICE)) == MAX_PRICE
    with pytest.raises(InvalidMoney):
        parse_price(MAX_PRICE + Decimal("0.01"))
    with pytest.raises(InvalidMoney):
        parse_price(MAX_PRICE * 10)


@pytest.mark.parametrize("raw", ["1e30", Decimal("1E+28"), 10**28])
def test_a_huge_price_is_refused_as_invalid_money(raw: Any) -> None:
    with pytest.raises(InvalidMoney):
        parse_price(raw)


def test_trailing_zeros_are_not_extra_decimal_places() -> None:
    assert parse_price("1.000") == Decimal("1.00")
    assert parse_price(Decimal("19.90")) == Decimal("19.9")
    assert parse_price(12) == Decimal(12)


two_place_prices = st.decimals(
    min_value=Decimal("0.01"), max_value=MAX_PRICE, places=2, allow_nan=False, allow_infinity=False
)


@settings(max_examples=150)
@given(two_place_prices)
def test_any_positive_two_place_price_up_to_the_maximum_is_accepted_and_round_trips(
    x: Decimal,
) -> None:
    assert parse_price(x) == x
    assert parse_price(str(x)) == x
    minor = to_minor(x)
    assert isinstance(minor, int)
    assert minor == int(x * 100)
    assert from_minor(minor) == x


@settings(max_examples=150)
@given(two_place_prices)
def test_money_is_a_twd_number_and_an_int_when_whole(x: Decimal) -> None:
    wire = money(x)
    assert set(wire) == {"value", "currency"}
    assert wire["currency"] == CURRENCY == "TWD"
    value = wire["value"]
    if x == x.to_integral_value():
        assert type(value) is int
        assert value == int(x)
    else:
        assert type(value) is float
        assert Decimal(str(value)) == x


def test_money_examples() -> None:
    assert money(Decimal(350)) == {"value": 350, "currency": "TWD"}
    assert money(Decimal("350.00")) == {"value": 350, "currency": "TWD"}
    assert money(Decimal("19.9")) == {"value": 19.9, "currency": "TWD"}
    assert money(Decimal("0.005")) == {"value": 0.01, "currency": "TWD"}  # half-up
    assert quantize(Decimal("2.345")) == Decimal("2.35")
    assert quantize(Decimal("2.344")) == Decimal("2.34")


# --- banned keywords -------------------------------------------------------------------------
def test_the_default_banned_list_is_not_empty_and_has_counterfeit_and_pirated() -> None:
    assert DEFAULT_BANNED_KEYWORDS
    assert "仿冒" in DEFAULT_BANNED_KEYWORDS
    assert "盜版" in DEFAULT_BANNED_KEYWORDS


@pytest.mark.parametrize(
    "text",
    [
        "COUNTERFEIT bag",
        "a Counterfeit bag",
        "ＣＯＵＮＴＥＲＦＥＩＴ",
        "cOuNtErFeIt",
        "c o u n t e r f e i t",
        "coun\u200bter\u200bfeit",
        "c\tounter\nfeit",
    ],
)
def test_banned_keywords_match_ignoring_case_width_and_spacing(text: str) -> None:
    assert find_banned(text, DEFAULT_BANNED_KEYWORDS) == "counterfeit"


@pytest.mark.parametrize(
    "text", ["仿冒名牌包", "仿 冒", "仿\u200b冒", "仿\u3000冒", "仿\u00ad冒", "超級仿\ufeff冒品"]
)
def test_chinese_banned_keywords_survive_inserted_spaces_and_invisible_characters(
    text: str,
) -> None:
    assert find_banned(text, DEFAULT_BANNED_KEYWORDS) == "仿冒"


@pytest.mark.parametrize("text", ["正版保濕乳液", "原廠公司貨 200ml", "Moisturizing lotion", ""])
def test_text_without_a_banned_keyword_is_not_flagged(text: str) -> None:
    assert find_banned(text, DEFAULT_BANNED_KEYWORDS) is None


def test_folding_removes_spacing_and_invisible_characters_and_case() -> None:
    assert fold_for_matching(" Ｆｏｏ\u200b Bar\t") == "foobar"


separators = st.one_of(
    st.sampled_from(
        [
            " ",
            "\t",
            "\n",
            "\r",
            "\u3000",
            "\u00a0",
            "\u2009",
            "\u200b",
            "\u200c",
            "\u200d",
            "\u2060",
            "\ufeff",
            "\u00ad",
        ]
    ),
    st.characters(categories=("Zs", "Cf")),
)
filler = st.text(
    alphabet=st.sampled_from(list("正版保濕乳液洗髮精好用 0123456789abxyzXYZ。，!")), max_size=15
)


@st.composite
def disguised(
    draw: st.DrawFn, keyword_pool: tuple[str, ...] = DEFAULT_BANNED_KEYWORDS
) -> tuple[str, str]:
    keyword = draw(st.sampled_from(keyword_pool))
    pieces = []
    for ch in keyword:
        variant = draw(st.sampled_from([ch, ch.upper(), ch.lower(), ch.swapcase()]))
        if ch.isascii() and ch.isalpha() and draw(st.booleans()):
            variant = chr(ord(variant) - 0x21 + 0xFF01)  # full-width form
        pieces.append(variant)
        pieces.append("".join(draw(st.lists(separators, max_size=3))))
    return keyword, draw(filler) + "".join(pieces) + draw(filler)


@settings(max_examples=200)
@given(disguised())
def test_a_keyword_with_random_case_width_and_whitespace_changes_is_still_found(
    case: tuple[str, str],
) -> None:
    keyword, text = case
    assert find_banned(text, [keyword]) == keyword
    assert find_banned(text, DEFAULT_BANNED_KEYWORDS) is not None


# No first character of any default keyword (仿 盜 假 高 c r), so no keyword can appear.
clean_text = st.text(
    alphabet=st.sampled_from(list("正版保濕乳液洗髮精好用公司貨 \u200b0123456789abdefxyzABDEF.,")),
    max_size=60,
)


@settings(max_examples=100)
@given(clean_text)
def test_text_made_of_innocent_characters_is_never_flagged(text: str) -> None:
    assert find_banned(text, DEFAULT_BANNED_KEYWORDS) is None


def test_clean_keywords_strips_and_deduplicates_by_folded_form_keeping_order() -> None:
    assert clean_keywords(
        ["  仿冒 ", "Fake", "FAKE", "ｆａｋｅ", "仿 冒", "盜版", "f\u200bake"]
    ) == ["仿冒", "Fake", "盜版"]


@pytest.mark.parametrize("raw", ["", "   ", "\u200b", "\u3000"])
def test_an_empty_banned_keyword_is_refused(raw: str) -> None:
    with pytest.raises(DomainError) as exc:
        clean_keywords(["仿冒", raw])
    assert exc.value.details["field"] == "keywords"


def test_a_banned_keyword_may_have_at_most_keyword_max_characters() -> None:
    assert clean_keywords(["仿" * KEYWORD_MAX]) == ["仿" * KEYWORD_MAX]
    with pytest.raises(DomainError) as exc:
        clean_keywords(["仿" * (KEYWORD_MAX + 1)])
    assert exc.value.details["field"] == "keywords"


def test_replacing_the_banned_list_with_the_same_keywords_records_nothing() -> None:
    banned = BannedKeywords.define(["仿冒", "盜版"])
    assert banned.keywords == ["仿冒", "盜版"]
    assert banned.id == BannedKeywords.ID
    banned.collect_events()
    banned.replace([" 仿冒", "盜版", "仿 冒"])
    assert banned.collect_events() == []
    banned.replace(["假貨"])
    assert event_names(banned) == ["Replaced"]
    assert banned.keywords == ["假貨"]


@pytest.mark.parametrize(
    ("name", "description", "field"),
    [
        ("仿冒名牌包", "", "name"),
        ("名牌包", "這是 COUNTERFEIT 商品", "description"),
        ("高 仿 包", "", "name"),
    ],
)
def test_listing_a_product_with_banned_text_is_refused(
    name: str, description: str, field: str
) -> None:
    with pytest.raises(BannedKeyword) as exc:
        product(name=name, description=description)
    assert exc.value.details["field"] == field
    assert exc.value.details["keyword"] in DEFAULT_BANNED_KEYWORDS
    assert isinstance(exc.value, InvalidProduct)


def test_editing_a_name_or_description_to_banned_text_is_refused_and_records_nothing() -> None:
    p = listed_product()
    with pytest.raises(BannedKeyword) as exc:
        p.edit(name="盜版 乳液", banned=DEFAULT_BANNED_KEYWORDS, at=LATER)
    assert exc.value.details["field"] == "name"
    with pytest.raises(BannedKeyword) as exc:
        p.edit(description="Replica lotion", banned=DEFAULT_BANNED_KEYWORDS, at=LATER)
    assert exc.value.details["field"] == "description"
    assert p.collect_events() == []
    assert p.name == "保濕乳液 200ml"


def test_edit_checks_banned_keywords_only_when_name_or_description_is_given() -> None:
    p = listed_product()
    newly_banned = ["乳液"]
    # Images only: the (now banned) name is not re-checked.
    p.edit(images=["https://img.example.com/p/2.png"], banned=newly_banned, at=LATER)
    assert event_names(p) == ["Edited"]
    # A new description re-checks the name too.
    with pytest.raises(BannedKeyword) as exc:
        p.edit(description="新的說明", banned=newly_banned, at=LATER)
    assert exc.value.details["field"] == "name"
    assert p.collect_events() == []


# --- product validation ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "   ", "\t\n", "\u3000"])
def test_a_product_needs_a_name(name: str) -> None:
    with pytest.raises(InvalidProduct) as exc:
        product(name=name)
    assert exc.value.details["field"] == "name"


def test_a_name_may_have_100_characters_counting_chinese_characters_as_one() -> None:
    assert len(clean_name("乳" * NAME_MAX)) == NAME_MAX == 100
    assert product(name="乳" * 100).name == "乳" * 100
    with pytest.raises(InvalidProduct) as exc:
        product(name="乳" * 101)
    assert exc.value.details["field"] == "name"
    with pytest.raises(InvalidProduct):
        clean_name("a" * 101)


def test_names_are_trimmed_and_inner_whitespace_collapsed() -> None:
    assert clean_name("  保濕   乳液\t200ml ") == "保濕 乳液 200ml"


def test_a_description_may_have_5000_characters() -> None:
    assert clean_description("字" * DESCRIPTION_MAX) == "字" * 5000
    assert product(description="").description == ""
    with pytest.raises(InvalidProduct) as exc:
        product(description="字" * (DESCRIPTION_MAX + 1))
    assert exc.value.details["field"] == "description"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.png",
        "https://img.example.com/p/1.jpg?w=200#x",
        "https://example.com:8443/a.png",
        "HTTPS://EXAMPLE.COM/A.PNG",
        "http://127.0.0.1/a.png",
        "https://例子.台灣/圖.png",
    ],
)
def test_absolute_http_and_https_image_urls_are_accepted(url: str) -> None:
    assert clean_image_url(url) == url
    assert clean_images([url]) == [url]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "ftp://x/y",
        "/relative.png",
        "relative.png",
        "//example.com/a.png",
        "http://",
        "https://",
        "http:///a.png",
        "http://exa mple.com/a.png",
        "https://example.com/a b.png",
        "https://example.com/a\x00.png",
        "https://example.com:99999/a.png",
        "https://example.com:abc/a.png",
        "file:///etc/passwd",
        "https://example.com/" + "a" * IMAGE_URL_MAX,
        "",
    ],
)
def test_unsafe_or_malformed_image_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidProduct) as exc:
        clean_images([url])
    assert exc.value.details["field"] == "images"
    with pytest.raises(InvalidProduct) as exc:
        product(images=[url])
    assert exc.value.details["field"] == "images"


def test_an_image_url_may_have_2048_characters() -> None:
    prefix = "https://example.com/"
    url = prefix + "a" * (IMAGE_URL_MAX - len(prefix))
    assert len(url) == 2048
    assert clean_image_url(url) == url
    with pytest.raises(InvalidProduct):
        clean_image_url(url + "a")


def test_a_product_has_at_most_ten_images() -> None:
    urls = [f"https://img.example.com/{i}.png" for i in range(MAX_IMAGES + 1)]
    assert clean_images(urls[:10]) == urls[:10]
    with pytest.raises(InvalidProduct) as exc:
        product(images=urls)
    assert exc.value.details["field"] == "images"


def test_an_image_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidProduct) as exc:
        clean_images([IMAGE, f"  {IMAGE} "])
    assert exc.value.details["field"] == "images"


def test_a_new_product_is_active_with_cleaned_fields() -> None:
    p = product(name="  保濕乳液   200ml ")
    assert p.status == "active" and p.is_active
    assert p.name == "保濕乳液 200ml"
    assert p.supplier_ids == ["sup-a", "sup-b"]
    assert p.created_at == p.updated_at == T0
    assert event_names(p) == ["Listed"]


def test_a_category_path_lists_its_ancestors_root_first() -> None:
    root = Category.create(uuid4(), " 美妝  保養 ", None)
    child = Category.create(uuid4(), "臉部保養", root)
    grandchild = Category.create(uuid4(), "乳液", child)
    assert root.name == "美妝 保養" and root.path == [] and root.parent_id is None
    assert child.path == [str(root.id)] and child.parent_id == str(root.id)
    assert grandchild.path == [str(root.id), str(child.id)]
    with pytest.raises(DomainError):
        Category.create(uuid4(), "  ", None)


def test_sibling_keys_are_case_and_width_insensitive_and_scoped_to_the_parent() -> None:
    assert Category.sibling_key(None, "Skin Care") == Category.sibling_key(None, "ＳＫＩＮ  care")
    assert Category.sibling_key(None, "Skin Care") != Category.sibling_key("p1", "Skin Care")
    assert Category.sibling_key("p1", "乳液") != Category.sibling_key("p1", "化妝水")


# --- product status, price and edits --------------------------------------------------------
def test_delisting_then_relisting_a_product() -> None:
    p = listed_product()
    p.delist(LATER)
    assert p.status == "delisted" and not p.is_active and p.updated_at == LATER
    p.relist(LATER)
    assert p.status == "active"
    assert event_names(p) == ["Delisted", "Relisted"]


def test_delisting_a_delisted_product_is_a_conflict() -> None:
    p = listed_product()
    p.delist(LATER)
    p.collect_events()
    with pytest.raises(ProductStateConflict):
        p.delist(LATER)
    assert p.collect_events() == []


def test_relisting_an_active_or_suspended_product_is_a_conflict() -> None:
    p = listed_product()
    with pytest.raises(ProductStateConflict):
        p.relist(LATER)
    p.delist(LATER)
    p.suspend("fake goods", LATER)
    p.collect_events()
    with pytest.raises(ProductStateConflict):
        p.relist(LATER)
    with pytest.raises(ProductStateConflict):
        p.delist(LATER)
    with pytest.raises(ProductStateConflict):
        p.suspend("again", LATER)
    assert p.collect_events() == []
    assert issubclass(ProductStateConflict, Conflict)


@pytest.mark.parametrize("before", ["active", "delisted"])
def test_reinstating_returns_to_the_status_before_suspension(before: str) -> None:
    p = listed_product()
    if before == "delisted":
        p.delist(LATER)
    p.suspend("review", LATER)
    assert p.status == "suspended"
    p.reinstate(LATER)
    assert p.status == before
    assert p.status_before_suspension is None


def test_reinstating_a_product_that_is_not_suspended_is_a_conflict() -> None:
    p = listed_product()
    with pytest.raises(ProductStateConflict):
        p.reinstate(LATER)
    assert p.collect_events() == []


OPERATIONS = ("delist", "relist", "suspend", "reinstate")


def model_step(status: str, before: str | None, op: str) -> tuple[str, str | None] | None:
    """The expected (status, status before suspension) after ``op``, or None if it is refused."""
    if op == "delist":
        return ("delisted", before) if status == "active" else None
    if op == "relist":
        return ("active", before) if status == "delisted" else None
    if op == "suspend":
        return ("suspended", status) if status != "suspended" else None
    return (before or "active", None) if status == "suspended" else None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(OPERATIONS), max_size=25))
def test_random_status_operations_follow_the_model_and_failures_record_nothing(
    ops: list[str],
) -> None:
    p = listed_product()
    status, before = "active", None
    for op in ops:
        expected = model_step(status, before, op)
        try:
            if op == "suspend":
                p.suspend("reason", LATER)
            else:
                getattr(p, op)(LATER)
        except ProductStateConflict:
            assert expected is None, f"{op} refused from {status}"
            assert p.collect_events() == []
        else:
            assert expected is not None, f"{op} allowed from {status}"
            status, before = expected
            assert event_names(p) == [
                {
                    "delist": "Delisted",
                    "relist": "Relisted",
                    "suspend": "Suspended",
                    "reinstate": "Reinstated",
                }[op]
            ]
        assert p.status in PRODUCT_STATUSES
        assert p.status == status
        assert p.is_active == (status == "active")


def test_changing_to_the_same_price_records_nothing() -> None:
    p = listed_product()
    p.change_price(Decimal(350), LATER)
    p.change_price(Decimal("350.00"), LATER)
    assert p.collect_events() == []
    assert p.updated_at == T0


def test_a_new_price_records_price_changed_with_the_previous_price() -> None:
    p = listed_product()
    p.change_price(Decimal("299.5"), LATER)
    events: list[Any] = list(p.collect_events())
    assert [type(e).__name__ for e in events] == ["PriceChanged"]
    assert events[0].price == Decimal("299.5")
    assert events[0].previous == Decimal(350)
    assert p.price == Decimal("299.5") and p.updated_at == LATER


def test_an_edit_with_unchanged_values_records_nothing() -> None:
    p = listed_product()
    p.edit(
        name="  保濕乳液    200ml",
        description=" 溫和不刺激的保濕乳液 ",
        category_id="c1",
        images=[f" {IMAGE}"],
        supplier_ids=["sup-a", "sup-b", "sup-a"],
        banned=DEFAULT_BANNED_KEYWORDS,
        at=LATER,
    )
    p.edit(banned=DEFAULT_BANNED_KEYWORDS, at=LATER)
    assert p.collect_events() == []
    assert p.updated_at == T0


def test_an_edit_records_only_the_changed_fields() -> None:
    p = listed_product()
    p.edit(
        name="保濕乳液 300ml",
        category_id="c1",
        images=[IMAGE],
        banned=DEFAULT_BANNED_KEYWORDS,
        at=LATER,
    )
    events: list[Any] = list(p.collect_events())
    assert [type(e).__name__ for e in events] == ["Edited"]
    assert events[0].changes == {"name": "保濕乳液 300ml"}
    assert p.name == "保濕乳液 300ml" and p.updated_at == LATER


def test_an_edit_with_an_invalid_image_changes_nothing() -> None:
    p = listed_product()
    with pytest.raises(InvalidProduct) as exc:
        p.edit(
            name="新名字", images=["javascript:alert(1)"], banned=DEFAULT_BANNED_KEYWORDS, at=LATER
        )
    assert exc.value.details["field"] == "images"
    assert p.collect_events() == []
    assert p.name == "保濕乳液 200ml"


# --- inventory -------------------------------------------------------------------------------
def inventory(**stock: int) -> Inventory:
    inv = Inventory(product_id="p1", seller_id="s1")
    for warehouse, units in stock.items():
        inv.receive(f"r-{warehouse}", warehouse, units, None, T0)
    inv.collect_events()
    return inv


@pytest.mark.parametrize("quantity", [0, -1, True, False, 1.5, 2.0, "3", None, MAX_QUANTITY + 1])
def test_quantities_are_positive_whole_numbers_up_to_the_maximum(quantity: Any) -> None:
    with pytest.raises(InvalidQuantity):
        check_quantity(quantity)
    inv = inventory(w1=10)
    with pytest.raises(InvalidQuantity):
        inv.receive("r", "w1", quantity, None, T0)
    with pytest.raises(InvalidQuantity):
        inv.transfer("t", "w1", "w2", quantity, T0)
    with pytest.raises(InvalidQuantity):
        inv.reserve("o1", quantity, T0)
    assert inv.collect_events() == []


def test_the_largest_quantity_is_accepted() -> None:
    assert check_quantity(1) == 1
    assert check_quantity(MAX_QUANTITY) == MAX_QUANTITY
    inv = inventory(w1=MAX_QUANTITY)
    assert inv.available == MAX_QUANTITY


@pytest.mark.parametrize("change", [0, True, 1.5, MAX_QUANTITY + 1, -(MAX_QUANTITY + 1)])
def test_an_adjustment_is_a_non_zero_whole_number(change: Any) -> None:
    inv = inventory(w1=10)
    with pytest.raises(InvalidQuantity):
        inv.adjust("a", "w1", change, "COUNT", "", T0)
    assert inv.collect_events() == []


def test_an_adjustment_needs_a_known_reason() -> None:
    inv = inventory(w1=10)
    with pytest.raises(DomainError) as exc:
        inv.adjust("a", "w1", 1, "BECAUSE", "", T0)
    assert exc.value.details["field"] == "reason"


def test_a_transfer_to_the_same_warehouse_is_refused() -> None:
    inv = inventory(w1=10)
    with pytest.raises(DomainError) as exc:
        inv.transfer("t", "w1", "w1", 1, T0)
    assert not isinstance(exc.value, InsufficientStock)
    assert inv.collect_events() == []
    assert inv.on_hand == {"w1": 10}


def test_a_transfer_moves_units_between_warehouses() -> None:
    inv = inventory(w1=10)
    inv.transfer("t", "w1", "w2", 4, T0)
    assert inv.on_hand == {"w1": 6, "w2": 4}
    assert inv.total_on_hand == 10


def test_a_transfer_of_more_than_is_available_is_refused() -> None:
    inv = inventory(w1=10)
    inv.reserve("o1", 7, T0)
    inv.collect_events()
    with pytest.raises(InsufficientStock) as exc:
        inv.transfer("t", "w1", "w2", 4, T0)  # 10 on hand, but 7 reserved
    assert exc.value.details["available"] == 3
    assert exc.value.details["requested"] == 4
    assert inv.collect_events() == []
    inv.transfer("t", "w1", "w2", 3, T0)
    assert inv.on_hand == {"w1": 7, "w2": 3}


def test_a_negative_adjustment_of_more_than_is_available_is_refused() -> None:
    inv = inventory(w1=5)
    inv.reserve("o1", 2, T0)
    inv.collect_events()
    with pytest.raises(InsufficientStock) as exc:
        inv.adjust("a", "w1", -4, "DAMAGED", "dropped", T0)
    assert exc.value.details["available"] == 3
    assert inv.collect_events() == []
    inv.adjust("a", "w1", -3, "DAMAGED", "dropped", T0)
    assert inv.on_hand == {"w1": 2}
    assert inv.available == 0
    with pytest.raises(InsufficientStock):
        inv.adjust("a", "w9", -1, "LOST", "", T0)


def test_reservations_take_from_the_fullest_warehouse_first() -> None:
    inv = inventory(w1=5, w2=10, w3=7)
    assert inv.reserve("o1", 3, T0) == {"w2": 3}
    # now w1=5, w2=7, w3=7 available: the tie goes to the first warehouse id
    assert inv.reserve("o2", 4, T0) == {"w2": 4}
    assert inv.available_in("w2") == 3


def test_a_reservation_can_span_warehouses() -> None:
    inv = inventory(w1=5, w2=10)
    assert inv.reserve("o1", 12, T0) == {"w2": 10, "w1": 2}
    assert inv.reserved == {"w2": 10, "w1": 2}
    assert inv.available == 3
    assert inv.reservations == {"o1": {"w2": 10, "w1": 2}}


def test_reserving_more_than_the_total_available_is_refused() -> None:
    inv = inventory(w1=5, w2=10)
    with pytest.raises(InsufficientStock) as exc:
        inv.reserve("o1", 16, T0)
    assert exc.value.details["available"] == 15
    assert exc.value.details["requested"] == 16
    assert inv.collect_events() == []
    assert inv.reservations == {}
    assert inv.reserve("o1", 15, T0) == {"w2": 10, "w1": 5}


def test_a_second_reservation_for_the_same_order_is_a_conflict() -> None:
    inv = inventory(w1=10)
    inv.reserve("o1", 2, T0)
    inv.collect_events()
    with pytest.raises(InventoryConflict):
        inv.reserve("o1", 1, T0)
    assert inv.collect_events() == []
    assert inv.reserved == {"w1": 2}


def test_releasing_gives_the_units_back() -> None:
    inv = inventory(w1=5, w2=10)
    inv.reserve("o1", 12, T0)
    inv.collect_events()
    assert inv.release("o1", "cancelled", T0) is True
    assert event_names(inv) == ["Released"]
    assert inv.available == 15
    assert inv.reserved == {"w1": 0, "w2": 0}
    assert inv.reservations == {}


def test_releasing_an_unknown_order_is_a_no_op() -> None:
    inv = inventory(w1=5)
    inv.reserve("o1", 2, T0)
    inv.collect_events()
    assert inv.release("o2", "cancelled", T0) is False
    assert inv.collect_events() == []
    inv.release("o1", "cancelled", T0)
    inv.collect_events()
    assert inv.release("o1", "again", T0) is False
    assert inv.collect_events() == []


def test_a_warehouse_code_is_upper_cased_and_checked() -> None:
    w = Warehouse.create(uuid4(), " tpe-01 ", " 台北倉 ", "")
    assert w.code == "TPE-01" and w.name == "台北倉"
    for code in ["A", "-AB", "A B", "X" * 21, "倉庫"]:
        with pytest.raises(DomainError):
            Warehouse.create(uuid4(), code, "倉", "")


WAREHOUSES = ("w1", "w2", "w3")
ORDERS = ("o1", "o2", "o3", "o4")


class InventoryMachine(RuleBasedStateMachine):
    """Random receipts, transfers, adjustments, reservations and releases against a model."""

    @initialize()
    def open(self) -> None:
        self.inv = Inventory(product_id="p1", seller_id="s1")
        self.inv.collect_events()
        self.model_total = 0
        self.model_reservations: dict[str, int] = {}
        self.n = 0

    def _next(self) -> str:
        self.n += 1
        return f"id-{self.n}"

    def _recorded(self, name: str | None) -> None:
        assert event_names(self.inv) == ([] if name is None else [name])

    @rule(warehouse=st.sampled_from(WAREHOUSES), quantity=st.integers(1, 30))
    def receive(self, warehouse: str, quantity: int) -> None:
        self.inv.receive(self._next(), warehouse, quantity, None, T0)
        self.model_total += quantity
        self._recorded("Received")

    @rule(
        source=st.sampled_from(WAREHOUSES),
        destination=st.sampled_from(WAREHOUSES),
        quantity=st.integers(1, 30),
    )
    def transfer(self, source: str, destination: str, quantity: int) -> None:
        available = self.inv.available_in(source)
        try:
            self.inv.transfer(self._next(), source, destination, quantity, T0)
        except InsufficientStock as exc:
            assert source != destination and quantity > available
            assert exc.details["available"] == available
            self._recorded(None)
        except DomainError:
            assert source == destination
            self._recorded(None)
        else:
            assert source != destination and quantity <= available
            self._recorded("Transferred")

    @rule(warehouse=st.sampled_from(WAREHOUSES), change=st.integers(-30, 30).filter(bool))
    def adjust(self, warehouse: str, change: int) -> None:
        available = self.inv.available_in(warehouse)
        try:
            self.inv.adjust(self._next(), warehouse, change, "COUNT", "", T0)
        except InsufficientStock as exc:
            assert change < 0 and -change > available
            assert exc.details["available"] == available
            self._recorded(None)
        else:
            assert change > 0 or -change <= available
            self.model_total += change
            self._recorded("Adjusted")

    @rule(order=st.sampled_from(ORDERS), quantity=st.integers(1, 40))
    def reserve(self, order: str, quantity: int) -> None:
        available = self.inv.available
        try:
            allocation = self.inv.reserve(order, quantity, T0)
        except InventoryConflict:
            assert order in self.model_reservations
            self._recorded(None)
        except InsufficientStock as exc:
            assert order not in self.model_reservations and quantity > available
            assert exc.details["available"] == available
            self._recorded(None)
        else:
            assert order not in self.model_reservations and quantity <= available
            assert sum(allocation.values()) == quantity
            assert all(units > 0 for units in allocation.values())
            self.model_reservations[order] = quantity
            self._recorded("Reserved")

    @rule(order=st.sampled_from(ORDERS))
    def release(self, order: str) -> None:
        released = self.inv.release(order, "cancelled", T0)
        assert released == (order in self.model_reservations)
        self.model_reservations.pop(order, None)
        self._recorded("Released" if released else None)

    @invariant()
    def stock_is_never_negative_nor_over_reserved(self) -> None:
        for warehouse in set(self.inv.on_hand) | set(self.inv.reserved):
            on_hand = self.inv.on_hand.get(warehouse, 0)
            reserved = self.inv.reserved.get(warehouse, 0)
            assert on_hand >= reserved >= 0, (warehouse, on_hand, reserved)
            assert self.inv.available_in(warehouse) >= 0

    @invariant()
    def total_on_hand_matches_receipts_and_adjustments(self) -> None:
        assert self.inv.total_on_hand == self.model_total

    @invariant()
    def reservations_add_up_to_the_reserved_units(self) -> None:
        per_order = {order: sum(alloc.values()) for order, alloc in self.inv.reservations.items()}
        assert per_order == self.model_reservations
        assert sum(per_order.values()) == sum(self.inv.reserved.values())
        per_warehouse: Counter[str] = Counter()
        for alloc in self.inv.reservations.values():
            per_warehouse.update(alloc)
        assert all(self.inv.reserved.get(w, 0) == units for w, units in per_warehouse.items())
        assert self.inv.available == self.model_total - sum(self.model_reservations.values())


InventoryMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
TestInventoryInvariants = InventoryMachine.TestCase


# --- search terms ----------------------------------------------------------------------------
def matches(query: str, name: str, description: str = "") -> bool:
    wanted = query_terms(query)
    return bool(wanted) and set(wanted) <= set(document_terms(name, description))


def test_chinese_text_gives_overlapping_bigrams() -> None:
    assert {"保濕", "濕乳", "乳液"} <= terms("保濕乳液")
    assert terms("保濕乳液") == {"保濕", "濕乳", "乳液"}


def test_a_chinese_query_matches_a_name_containing_it_and_not_another() -> None:
    assert set(query_terms("保濕乳液")) <= set(document_terms("保濕乳液 200ml", ""))
    assert not set(query_terms("保濕乳液")) <= set(document_terms("洗髮精", ""))
    assert matches("保濕乳液", "保濕乳液 200ml")
    assert not matches("保濕乳液", "洗髮精")
    assert not matches("保濕洗髮精", "保濕乳液")  # every term must match


def test_mixed_words_give_the_word_and_its_letter_and_digit_parts() -> None:
    assert {"200ml", "200", "ml"} <= terms("200ml")
    assert matches("200", "保濕乳液 200ml") and matches("ml", "保濕乳液 200ml")


def test_english_is_case_folded() -> None:
    assert terms("Moisturizing Lotion") == {"moisturizing", "lotion"}
    assert matches("moisturizing lotion", "Moisturizing Lotion")
    assert matches("MOISTURIZING", "moisturizing lotion")
    assert matches("ｌｏｔｉｏｎ", "Lotion")  # full width folds too


def test_a_single_chinese_character_finds_names_but_not_descriptions() -> None:
    assert query_terms("乳") == ["乳"]
    assert matches("乳", "保濕乳液")
    assert not matches("乳", "洗髮精", "保濕乳液")


def test_name_terms_weigh_more_than_description_terms() -> None:
    in_name = document_terms("保濕乳液", "")["乳液"]
    in_description = document_terms("洗髮精", "保濕乳液")["乳液"]
    assert in_name == NAME_WEIGHT > in_description == DESCRIPTION_WEIGHT
    assert document_terms("保濕乳液", "好用的乳液")["乳液"] == NAME_WEIGHT + DESCRIPTION_WEIGHT


@pytest.mark.parametrize("query", ["", "   ", "!!!", "，。、「」？！", "...---???", "（）【】《》"])
def test_a_punctuation_only_query_gives_no_terms(query: str) -> None:
    assert query_terms(query) == []


@pytest.mark.parametrize("query", ["・", "･", "゠", "・・・"])
def test_a_katakana_middle_dot_query_gives_no_terms(query: str) -> None:
    assert query_terms(query) == []


punctuation = st.characters(categories=("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"))


@settings(max_examples=100)
@given(st.text(alphabet=st.one_of(punctuation, st.sampled_from(" \t\u3000")), max_size=12))
def test_any_punctuation_only_query_gives_no_terms(query: str) -> None:
    assert query_terms(query) == []


cjk_text = st.text(
    alphabet=st.sampled_from(list("保濕乳液洗髮精面霜化妝水防曬")), min_size=1, max_size=20
)


@settings(max_examples=150)
@given(cjk_text, st.data())
def test_any_part_of_a_chinese_name_finds_it(name: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(name) - 1))
    end = data.draw(st.integers(start + 1, len(name)))
    query = name[start:end]
    found = query_terms(query)
    assert 1 <= len(found) <= MAX_QUERY_TERMS
    assert [len(t) for t in found] == sorted((len(t) for t in found), reverse=True)
    assert matches(query, name)
    assert matches(query.upper(), f"  {name} ")


# --- price trend helpers ---------------------------------------------------------------------
def test_day_periods_have_one_iso_label_per_day() -> None:
    periods = calendar_periods(date(2026, 2, 27), date(2026, 3, 2), "DAY")
    assert [label for label, _, _ in periods] == [
        "2026-02-27",
        "2026-02-28",
        "2026-03-01",
        "2026-03-02",
    ]
    for label, first, following in periods:
        assert following == first + timedelta(days=1)
        assert label == first.isoformat()


def test_week_periods_start_on_monday_and_are_labelled_by_iso_week() -> None:
    periods = calendar_periods(
        date(2026, 11, 25), date(2026, 12, 9), "WEEK"
    )  # a Wednesday to a Wednesday
    assert [label for label, _, _ in periods] == ["2026-W48", "2026-W49", "2026-W50"]
    assert periods[0][1] == date(2026, 11, 23)
    for _, first, following in periods:
        assert first.weekday() == 0
        assert following == first + timedelta(days=7)


def test_week_labels_use_the_iso_year_across_new_year() -> None:
    periods = calendar_periods(date(2026, 12, 30), date(2027, 1, 5), "WEEK")
    assert [(label, first) for label, first, _ in periods] == [
        ("2026-W53", date(2026, 12, 28)),
        ("2027-W01", date(2027, 1, 4)),
    ]


def test_month_periods_cross_the_year_end() -> None:
    periods = calendar_periods(date(2025, 11, 15), date(2026, 2, 1), "MONTH")
    assert periods == [
        ("2025-11", date(2025, 11, 1), date(2025, 12, 1)),
        ("2025-12", date(2025, 12, 1), date(2026, 1, 1)),
        ("2026-01", date(2026, 1, 1), date(2026, 2, 1)),
        ("2026-02", date(2026, 2, 1), date(2026, 3, 1)),
    ]


def test_too_many_periods_is_a_query_error() -> None:
    start = date(2010, 1, 1)
    assert (
        len(calendar_periods(start, start + timedelta(days=MAX_PERIODS - 1), "DAY")) == MAX_PERIODS
    )
    with pytest.raises(QueryError):
        calendar_periods(start, start + timedelta(days=MAX_PERIODS), "DAY")
    with pytest.raises(QueryError):
        calendar_periods(date(1900, 1, 1), date(2300, 1, 1), "MONTH")


@settings(max_examples=100)
@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    st.integers(0, 800),
    st.sampled_from(["DAY", "WEEK", "MONTH"]),
)
def test_periods_are_contiguous_and_cover_the_range(start: date, days: int, group_by: str) -> None:
    end = start + timedelta(days=days)
    periods = calendar_periods(start, end, group_by)
    assert periods[0][1] <= start < periods[0][2]
    assert periods[-1][1] <= end < periods[-1][2]
    for (_, _, following), (_, first, _) in pairwise(periods):
        assert following == first
    assert len({label for label, _, _ in periods}) == len(periods)


@st.composite
def bag_operations(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Random adds and removes; a remove only takes a price that is in the bag."""
    ops: list[tuple[str, int]] = []
    held: list[int] = []
    for _ in range(draw(st.integers(0, 60))):
        remove: bool = draw(st.booleans())
        if held and remove:
            price = held.pop(draw(st.integers(0, len(held) - 1)))
            ops.append(("remove", price))
        else:
            price = draw(st.integers(1, 20) | st.integers(1, 10**9))
            held.append(price)
            ops.append(("add", price))
    return ops


@settings(max_examples=200)
@given(bag_operations())
def test_the_price_bag_agrees_with_a_plain_list(ops: list[tuple[str, int]]) -> None:
    bag = _PriceBag()
    model: list[int] = []
    for op, price in ops:
        if op == "add":
            bag.add(price)
            model.append(price)
        else:
            bag.remove(price)
            model.remove(price)
        assert bag.count == len(model)
        assert bag.total == sum(model)
        if model:
            assert bag.minimum() == min(model)
            assert bag.maximum() == max(model)
