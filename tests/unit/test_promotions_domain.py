"""Sale prices on the Product aggregate, in memory: scheduling rules, cancellation, and the
price a buyer pays at any instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.catalog import Product, ProductStateConflict
from aggregates.promotions import (
    MAX_OPEN_SALES,
    InvalidSale,
    SaleNotFound,
    SaleOverlaps,
    SaleStateConflict,
)

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
REGULAR = Decimal(1000)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def listed(price: Decimal = REGULAR) -> Product:
    return Product.list_new(
        uuid4(),
        seller_id="s-1",
        name="烏龍茶",
        description="清香",
        category_id="c-1",
        price=price,
        images=[],
        supplier_ids=[],
        banned=[],
        at=T0,
    )


def sale(product: Product, price: int, start: float | None, end: float, now: float = 0) -> str:
    """Schedule a sale from ``start`` to ``end`` minutes after T0, asked ``now`` minutes in."""
    sale_id = str(uuid4())
    product.schedule_sale(
        sale_id,
        Decimal(price),
        None if start is None else T0 + minutes(start),
        T0 + minutes(end),
        T0 + minutes(now),
    )
    return sale_id


def test_the_sale_price_applies_from_its_start_until_just_before_its_end() -> None:
    p = listed()
    sale(p, 600, 10, 20)
    assert p.price_at(T0 + minutes(10) - timedelta(microseconds=1)) == REGULAR
    assert p.price_at(T0 + minutes(10)) == Decimal(600)
    assert p.price_at(T0 + minutes(20) - timedelta(microseconds=1)) == Decimal(600)
    assert p.price_at(T0 + minutes(20)) == REGULAR
    assert p.price == REGULAR  # the regular price is untouched


@pytest.mark.parametrize(
    ("price", "start", "end", "field"),
    [
        (0, 10, 20, "salePrice"),
        (-5, 10, 20, "salePrice"),
        (1000, 10, 20, "salePrice"),  # not below the regular price
        (1200, 10, 20, "salePrice"),
        (600, 20, 10, "endsAt"),
        (600, 20, 20, "endsAt"),
        (600, None, -1, "endsAt"),  # already over
        (600, -30, -1, "endsAt"),
    ],
)
def test_bad_sales_are_refused_naming_the_field(
    price: int, start: float | None, end: float, field: str
) -> None:
    p = listed()
    with pytest.raises(InvalidSale) as refused:
        sale(p, price, start, end)
    assert refused.value.details["field"] == field
    assert p.sales == {} and not p.pending_events[1:]


def test_a_start_in_the_past_or_none_means_now() -> None:
    p = listed()
    first = sale(p, 600, -60, 10, now=0)
    assert p.sales[first].starts_at == T0
    second = sale(p, 500, None, 30, now=10)
    assert p.sales[second].starts_at == T0 + minutes(10)
    assert p.price_at(T0 + minutes(9)) == Decimal(600)
    assert p.price_at(T0 + minutes(10)) == Decimal(500)


def test_windows_of_one_product_never_overlap_but_may_touch() -> None:
    p = listed()
    first = sale(p, 600, 10, 20)
    for start, end in ((15, 25), (5, 11), (0, 60), (12, 18)):
        with pytest.raises(SaleOverlaps) as refused:
            sale(p, 500, start, end)
        assert refused.value.details["saleId"] == first
    sale(p, 500, 20, 30)  # back to back
    sale(p, 700, 0, 10)
    assert [p.price_at(T0 + minutes(m)) for m in (5, 15, 25, 35)] == [
        Decimal(700),
        Decimal(600),
        Decimal(500),
        REGULAR,
    ]


def test_a_cancelled_scheduled_sale_never_applies_and_frees_its_window() -> None:
    p = listed()
    sale_id = sale(p, 600, 10, 20)
    window = p.cancel_sale(sale_id, T0 + minutes(5))
    assert window.status(T0 + minutes(15)) == "CANCELLED"
    assert p.price_at(T0 + minutes(15)) == REGULAR
    sale(p, 650, 10, 20, now=5)
    assert p.price_at(T0 + minutes(15)) == Decimal(650)


def test_cancelling_a_running_sale_ends_it_then_and_twice_is_a_conflict() -> None:
    p = listed()
    sale_id = sale(p, 600, 0, 20)
    p.cancel_sale(sale_id, T0 + minutes(5))
    assert p.price_at(T0 + minutes(4)) == Decimal(600)
    assert p.price_at(T0 + minutes(5)) == REGULAR
    with pytest.raises(SaleStateConflict) as again:
        p.cancel_sale(sale_id, T0 + minutes(6))
    assert again.value.details["reason"] == "SALE_CANCELLED"


def test_an_ended_or_unknown_sale_cannot_be_cancelled() -> None:
    p = listed()
    sale_id = sale(p, 600, 0, 20)
    with pytest.raises(SaleStateConflict) as ended:
        p.cancel_sale(sale_id, T0 + minutes(20))
    assert ended.value.details["reason"] == "SALE_ENDED"
    with pytest.raises(SaleNotFound):
        p.cancel_sale(str(uuid4()), T0)


def test_a_suspended_product_takes_no_sale() -> None:
    p = listed()
    p.suspend("疑似仿冒", T0)
    with pytest.raises(ProductStateConflict):
        sale(p, 600, 0, 20)


def test_at_most_so_many_sales_wait_at_once() -> None:
    p = listed()
    for n in range(MAX_OPEN_SALES):
        sale(p, 600, n * 10, n * 10 + 10)
    with pytest.raises(SaleStateConflict) as refused:
        sale(p, 600, 10_000, 10_010)
    assert refused.value.details["reason"] == "TOO_MANY_SALES"
    # Once some are over, there is room again.
    sale(p, 600, 10_000, 10_010, now=MAX_OPEN_SALES * 10)


def test_a_regular_price_cut_below_the_sale_price_wins() -> None:
    p = listed()
    sale(p, 600, 0, 20)
    assert p.price_at(T0 + minutes(4)) == Decimal(600)
    p.change_price(Decimal(550), T0 + minutes(5))
    assert p.price_at(T0 + minutes(6)) == Decimal(550)
    assert p.sale_at(T0 + minutes(6)) is None


def test_replaying_the_events_gives_the_same_sales() -> None:
    p = listed()
    sale(p, 600, 10, 20)
    cancelled = sale(p, 500, 30, 40)
    p.cancel_sale(cancelled, T0 + minutes(35))
    copy = None
    for e in p.collect_events():
        copy = e.mutate(copy)
    assert isinstance(copy, Product) and copy.sales == p.sales


attempts = st.lists(
    st.tuples(
        st.integers(1, 1500),  # sale price
        st.integers(-50, 300),  # start, minutes after T0
        st.integers(-50, 300),  # end
        st.integers(0, 200),  # asked at
        st.booleans(),  # cancel it afterwards
        st.integers(0, 300),  # cancelled at
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(attempts, st.lists(st.integers(-60, 400), min_size=1, max_size=10))
def test_at_every_instant_a_buyer_pays_the_one_sale_in_force_or_the_regular_price(
    tries: list[tuple[int, int, int, int, bool, int]], instants: list[int]
) -> None:
    """Whatever sales were asked for (many refused) and cancelled: at any instant at most one
    accepted window covers it, and the price is its sale price (below the regular one), or
    the regular price; never 0 or less, never above the regular price."""
    p = listed()
    for price, start, end, now, cancel, cancel_at in tries:
        try:
            sale_id = sale(p, price, start, end, now)
        except (InvalidSale, SaleOverlaps, SaleStateConflict):
            continue
        window = p.sales[sale_id]
        assert 0 < window.price < REGULAR and window.ends_at > window.starts_at
        if cancel:
            try:
                p.cancel_sale(sale_id, T0 + minutes(cancel_at))
            except SaleStateConflict:
                pass
    for m in instants:
        at = T0 + minutes(m)
        covering = [w for w in p.sales.values() if w.covers(at)]
        assert len(covering) <= 1
        expected = covering[0].price if covering else REGULAR
        assert p.price_at(at) == expected
        assert 0 < p.price_at(at) <= REGULAR


def test_a_category_trend_prices_the_stretch_a_sale_covered_at_the_sale_price() -> None:
    """Regular price intervals are cut where a sale (below that price) was in force."""
    from types import SimpleNamespace as Row

    from projections.catalog import OPEN_END
    from queries.catalog import _with_sales

    day = timedelta(days=1)
    t = datetime(2026, 12, 1)
    intervals = [
        Row(product_id="a", price_minor=1000, valid_from=t, valid_to=t + 10 * day),
        Row(product_id="a", price_minor=500, valid_from=t + 10 * day, valid_to=OPEN_END),
        Row(product_id="b", price_minor=300, valid_from=t, valid_to=OPEN_END),
    ]
    sales = [
        Row(product_id="a", price_minor=600, starts_at=t + 8 * day, until=t + 12 * day),
        Row(product_id="a", price_minor=400, starts_at=t + 2 * day, until=t + 3 * day),
    ]
    assert sorted(_with_sales(intervals, sales), key=lambda p: (p[1], p[0])) == [
        (300, t, OPEN_END),  # b: never on sale
        (1000, t, t + 2 * day),
        (400, t + 2 * day, t + 3 * day),
        (1000, t + 3 * day, t + 8 * day),
        (600, t + 8 * day, t + 10 * day),
        (500, t + 10 * day, OPEN_END),  # the regular price fell below the sale's
    ]
