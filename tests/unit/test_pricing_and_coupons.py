"""Order totals and coupons (pure domain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.coupons import Coupon, CouponNotApplicable, InvalidCouponDefinition
from aggregates.money import InvalidMoney
from aggregates.pricing import (
    DEFAULT_SHIPPING_FEES,
    ORDER_LIMIT,
    Line,
    OrderLimitExceeded,
    UnknownShippingMethod,
    check_order_limit,
    compute_totals,
    shipping_fee,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(50000), places=2)
lines = st.lists(st.builds(Line, prices, st.integers(1, 20)), min_size=1, max_size=8)


def coupon(**overrides: object) -> Coupon:
    values: dict[str, object] = {
        "code": "SAVE10",
        "kind": "FIXED",
        "value": 10,
        "created_by": "admin",
    }
    values.update(overrides)
    return Coupon.define(**values)  # type: ignore[arg-type]


# --- totals ---------------------------------------------------------------------------------
def test_totals_follow_the_spec_example() -> None:
    t = compute_totals(
        [Line(Decimal(350), 2), Line(Decimal("99.5"), 1)], Decimal(50), shipping_fee("STANDARD")
    )
    assert t.subtotal == Decimal("799.50")
    assert t.discount == Decimal(50)
    assert t.tax == Decimal("37.48")  # 5% of 749.50 = 37.475, half-up
    assert t.shipping == Decimal(60)
    assert t.total == Decimal("846.98")


def test_shipping_fees_default_to_the_api_table_and_unknown_methods_are_refused() -> None:
    assert {m: shipping_fee(m) for m in DEFAULT_SHIPPING_FEES} == {
        "STANDARD": 60,
        "EXPRESS": 120,
        "SAME_DAY": 200,
        "PICKUP": 0,
    }
    with pytest.raises(UnknownShippingMethod):
        shipping_fee("DRONE")


@settings(max_examples=300)
@given(
    lines,
    st.decimals(min_value=Decimal(0), max_value=Decimal(1000000), places=2),
    st.sampled_from(sorted(DEFAULT_SHIPPING_FEES)),
)
def test_total_is_subtotal_minus_discount_plus_tax_plus_shipping_and_never_negative(
    order_lines: list[Line], discount: Decimal, method: str
) -> None:
    t = compute_totals(order_lines, discount, shipping_fee(method))
    assert t.total == t.subtotal - t.discount + t.tax + t.shipping
    assert Decimal(0) <= t.discount <= t.subtotal
    assert t.tax == ((t.subtotal - t.discount) * Decimal("0.05")).quantize(
        Decimal("0.01"), "ROUND_HALF_UP"
    )
    assert t.total >= 0
    for amount in (t.subtotal, t.discount, t.tax, t.shipping, t.total):
        assert amount == amount.quantize(Decimal("0.01"))


def test_orders_above_the_limit_are_refused() -> None:
    at_limit = compute_totals([Line(Decimal(100000), 1)], Decimal("4761.91"), Decimal(0))
    assert at_limit.total <= ORDER_LIMIT
    check_order_limit(at_limit)
    with pytest.raises(OrderLimitExceeded):
        check_order_limit(compute_totals([Line(Decimal("95238.10"), 1)], Decimal(0), Decimal(0)))


# --- coupon definitions ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "x"}, "code"),
        ({"code": "has space"}, "code"),
        ({"kind": "BOGO"}, "type"),
        ({"value": 0}, "value"),
        ({"kind": "PERCENT", "value": 101}, "value"),
        ({"max_discount": 50}, "maxDiscount"),
        ({"kind": "PERCENT", "value": 10, "max_discount": 0}, "maxDiscount"),
        ({"min_spend": -1}, "minSpend"),
        ({"starts_at": NOW, "ends_at": NOW}, "endsAt"),
        ({"usage_limit": 0}, "usageLimit"),
        ({"per_user_limit": 0}, "perUserLimit"),
    ],
)
def test_bad_coupon_definitions_are_refused(overrides: dict[str, object], field: str) -> None:
    with pytest.raises((InvalidCouponDefinition, InvalidMoney)) as info:
        coupon(**overrides)
    assert info.value.details["field"] == field


def test_codes_are_case_insensitive_and_give_the_id() -> None:
    assert coupon(code=" save10 ").code == "SAVE10"
    assert Coupon.create_id("save10") == Coupon.create_id("SAVE10") == coupon().id


# --- applying -------------------------------------------------------------------------------
def reason(c: Coupon, subtotal: str, buyer: str = "b1", at: datetime = NOW) -> str:
    with pytest.raises(CouponNotApplicable) as info:
        c.discount_for(Decimal(subtotal), buyer, at)
    return str(info.value.details["reason"])


def test_fixed_and_percent_discounts_with_cap() -> None:
    assert coupon(value=100).discount_for(Decimal(80), "b1", NOW) == Decimal(
        80
    )  # never above the items
    assert coupon(value=100).discount_for(Decimal(500), "b1", NOW) == Decimal(100)
    percent = coupon(kind="PERCENT", value=15, max_discount=100)
    assert percent.discount_for(Decimal("333.33"), "b1", NOW) == Decimal("50.00")
    assert percent.discount_for(Decimal(1000), "b1", NOW) == Decimal(100)


def test_every_reason_a_coupon_does_not_apply() -> None:
    assert reason(coupon(starts_at=NOW + timedelta(hours=1)), "100") == "NOT_STARTED"
    assert reason(coupon(ends_at=NOW), "100") == "EXPIRED"
    assert reason(coupon(min_spend=500), "499.99") == "MIN_SPEND_NOT_MET"
    assert reason(coupon(), "0") == "NO_ELIGIBLE_ITEMS"
    limited = coupon(usage_limit=2)
    limited.redeem("o1", "b1", Decimal(100), NOW)
    limited.redeem("o2", "b2", Decimal(100), NOW)
    assert reason(limited, "100", "b3") == "USAGE_LIMIT_REACHED"
    per_user = coupon(per_user_limit=1)
    per_user.redeem("o1", "b1", Decimal(100), NOW)
    assert reason(per_user, "100", "b1") == "PER_USER_LIMIT_REACHED"
    assert per_user.discount_for(Decimal(100), "b2", NOW) == Decimal(10)


def test_releasing_a_redemption_gives_the_use_back_once() -> None:
    c = coupon(usage_limit=1)
    c.redeem("o1", "b1", Decimal(100), NOW)
    assert reason(c, "100", "b2") == "USAGE_LIMIT_REACHED"
    assert c.release("o1", "cancelled", NOW) is True
    assert c.release("o1", "cancelled", NOW) is False
    assert c.redeem("o2", "b2", Decimal(100), NOW) == Decimal(10)


@settings(max_examples=100)
@given(
    st.integers(1, 5),
    st.integers(1, 3),
    st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=25),
)
def test_a_coupon_is_never_used_beyond_its_limits(
    limit: int, per_user: int, attempts: list[tuple[str, bool]]
) -> None:
    c = coupon(usage_limit=limit, per_user_limit=per_user)
    open_orders: list[str] = []
    for n, (buyer, cancel_one) in enumerate(attempts):
        if cancel_one and open_orders:
            c.release(open_orders.pop(0), "cancelled", NOW)
            continue
        try:
            c.redeem(f"o{n}", buyer, Decimal(100), NOW)
            open_orders.append(f"o{n}")
        except CouponNotApplicable:
            pass
        assert len(c.redemptions) <= limit
        assert all(c.uses_by(b) <= per_user for b in "abc")


# --- cart -----------------------------------------------------------------------------------
def test_a_cart_adds_changes_removes_and_empties_on_checkout() -> None:
    from aggregates.cart import MAX_QUANTITY_PER_LINE, Cart, CartLineNotFound, InvalidCartQuantity

    cart = Cart(buyer_id="b1")
    assert cart.id == Cart.create_id("b1")
    cart.add("p1", 2)
    cart.add("p1", 3)
    cart.add("p2", 1)
    assert cart.items == {"p1": 5, "p2": 1}
    cart.add("p2", MAX_QUANTITY_PER_LINE)
    assert cart.items["p2"] == MAX_QUANTITY_PER_LINE  # capped, not refused
    cart.change("p1", 1)
    cart.remove("p2")
    assert cart.items == {"p1": 1}
    for bad in (0, -1, 100, True):
        with pytest.raises(InvalidCartQuantity):
            cart.add("p3", bad)
    with pytest.raises(CartLineNotFound):
        cart.change("p9", 1)
    with pytest.raises(CartLineNotFound):
        cart.remove("p9")
    pending = len(cart.collect_events())
    cart.change("p1", 1)  # unchanged: nothing recorded
    assert cart.collect_events() == [] and pending > 0
    cart.check_out("o1")
    assert cart.items == {}
