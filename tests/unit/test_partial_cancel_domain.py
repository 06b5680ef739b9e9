"""Partial cancellation of unshipped units (issue #19): the Order and Inventory rules."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.accounts import NotAllowed
from aggregates.errors import DomainError
from aggregates.inventory import Inventory
from aggregates.orders import CancelledUnits, InvalidOrderStatus, Order, RefundFailed
from tests.unit.test_payments_domain import T0, document, new_order, paid

DAY = timedelta(days=1)


def ship(order: Order, sid: str, item: dict[str, Any], qty: int) -> None:
    order.ship(
        sid, None, "HCT", "1", None, [(item["orderItemId"], qty)], "x", None, None, "", None, T0
    )


def cancel(
    order: Order, units: list[tuple[str, int]], role: str = "admin", actor: str = "admin"
) -> CancelledUnits:
    """Cancel units and settle their refund, as the command does."""
    done = order.cancel_units(units, role, actor, "x", "", T0)
    if done.refund_due is not None:
        assert done.refund_id is not None
        items = [{**i, "reason": "UNITS_CANCELLED"} for i in done.items]
        order.request_refund(done.refund_id, done.refund_due, "x", items, T0)
        order.complete_refund(done.refund_id, "tx", T0)
    return done


def processing(quantities: tuple[int, ...] = (3, 2)) -> Order:
    order = paid(new_order(quantities))
    order.process(order.seller_ids, "x", None, None, "", T0)
    return order


def test_cancelled_units_are_refunded_at_their_value_and_no_longer_wait_to_ship() -> None:
    order = processing()
    first, second = order.items  # seller-1: 3 × 100, seller-0: 2 × 100
    done = cancel(order, [(first["orderItemId"], 2)], "seller", "seller-1")
    assert not done.whole and done.refund_due == Decimal("210.00")  # 200 + 5% tax, no shipping
    assert order.unshipped(first) == 1 and order.cancellable(first) == 1
    assert order.status == "PROCESSING"
    ship(order, "s1", first, 1)
    ship(order, "s2", second, 2)
    assert order.status == "SHIPPED" and order.fully_shipped
    doc = document(order)
    assert doc["items"][0]["cancelledQuantity"] == 2
    assert doc["items"][0]["subtotal"]["value"] == 100
    assert doc["subtotal"]["value"] == 300 and doc["tax"]["value"] == 15
    assert doc["total"]["value"] == float(order.total - Decimal(210))
    assert doc["cancelledAmount"]["value"] == 210
    assert doc["shippingStatus"] == "SHIPPED"


def test_cancelling_the_last_units_left_to_ship_makes_the_order_shipped_and_delivered() -> None:
    order = processing()
    first, second = order.items
    ship(order, "s1", first, 3)
    order.update_shipment("s1", "DELIVERED", None, "", None, True, T0)
    assert order.carrier_delivered_at is None  # the other seller still has to ship
    assert order.remind_ship(T0 + 8 * DAY, 7 * DAY) == ["seller-0"]
    done = order.cancel_units([(second["orderItemId"], 2)], "seller", "seller-0", "x", "", T0)
    assert not done.whole and order.status == "SHIPPED"
    assert order.carrier_delivered_at == T0  # the buyer's confirmation window starts now
    assert order.auto_deliver(T0 + 3 * DAY, 3 * DAY) and order.status == "DELIVERED"


def test_a_seller_whose_remaining_units_are_cancelled_is_not_reminded() -> None:
    order = processing()
    first, second = order.items
    order.cancel_units([(second["orderItemId"], 2)], "admin", "admin", "x", "", T0)
    ship(order, "s1", first, 1)
    assert order.remind_ship(T0 + 8 * DAY, 7 * DAY) == ["seller-1"]
    other = processing()
    ship(other, "s1", other.items[0], 3)
    other.cancel_units([(other.items[1]["orderItemId"], 1)], "seller", "seller-0", "x", "", T0)
    other.cancel_units([(other.items[1]["orderItemId"], 1)], "seller", "seller-0", "x", "", T0)
    assert other.status == "SHIPPED"
    assert other.remind_ship(T0 + 8 * DAY, 7 * DAY) is None


def test_cancelling_every_unit_of_an_unshipped_order_cancels_the_order() -> None:
    order = processing()
    first, second = order.items
    cancel(order, [(first["orderItemId"], 1)], "buyer", "buyer")
    done = cancel(order, [(first["orderItemId"], 2), (second["orderItemId"], 2)], "buyer", "buyer")
    assert done.whole and order.status == "CANCELLED"
    assert done.refund_due == order.total - Decimal("105.00")  # the rest, shipping included


def test_who_may_cancel_which_units() -> None:
    order = processing()
    first, second = order.items
    with pytest.raises(NotAllowed) as other:
        order.cancel_units([(second["orderItemId"], 1)], "seller", "seller-1", "x", "", T0)
    assert other.value.details["field"] == "items[0].orderItemId"
    with pytest.raises(DomainError) as unknown:
        order.cancel_units([(first["orderItemId"], 1), ("nope", 1)], "admin", "admin", "x", "", T0)
    assert unknown.value.details["field"] == "items[1].orderItemId"
    with pytest.raises(InvalidOrderStatus) as too_many:
        order.cancel_units([(first["orderItemId"], 4)], "admin", "admin", "x", "", T0)
    assert too_many.value.details["field"] == "items[0].quantity"
    assert too_many.value.details["cancellable"] == 3
    ship(order, "s1", first, 1)
    with pytest.raises(InvalidOrderStatus) as shipped:
        order.cancel_units([(second["orderItemId"], 1)], "buyer", "buyer", "x", "", T0)
    assert shipped.value.details["reason"] == "PARTLY_SHIPPED"
    paying = new_order()
    paying.start_payment("p1", "CREDIT_CARD", "SANDBOX", paying.total, None, T0)
    with pytest.raises(InvalidOrderStatus) as busy:
        paying.cancel_units([(paying.items[0]["orderItemId"], 1)], "buyer", "buyer", "x", "", T0)
    assert busy.value.details["reason"] == "PAYMENT_IN_PROGRESS"


def test_units_cancelled_before_payment_lower_the_amount_due_and_refund_nothing() -> None:
    order = new_order((3, 2))  # 5 units at 100, 5% tax: 525
    first = order.items[0]
    done = order.cancel_units([(first["orderItemId"], 1)], "buyer", "buyer", "x", "", T0)
    assert done.refund_due is None and done.refund_id is None and not done.whole
    assert done.items[0]["amount"] == "105.00"
    assert order.status == "CREATED" and order.amount_due == order.total - Decimal("105.00")
    with pytest.raises(DomainError) as old_total:
        order.start_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, None, T0)
    assert old_total.value.details["expected"]["value"] == float(order.amount_due)
    order.start_payment("p1", "CREDIT_CARD", "SANDBOX", order.amount_due, None, T0)
    order.complete_payment("p1", "CREDIT_CARD", "SANDBOX", order.amount_due, "tx", None, "R", T0)
    left = order.total - Decimal("105.00")  # shipping included
    assert order.status == "PAID" and order.refundable == left
    # what is left is what a later cancellation pays back
    assert order.cancel("x", "buyer", "", T0) == left
    doc = document(order)
    assert doc["total"]["value"] == float(left) and doc["items"][0]["cancelledQuantity"] == 1


def test_an_admin_marking_a_partly_cancelled_order_paid_records_the_amount_due() -> None:
    order = new_order((2, 1))
    order.cancel_units([(order.items[1]["orderItemId"], 1)], "admin", "admin", "x", "", T0)
    order.change_status("PAID", "bank transfer seen", T0)
    assert order.paid_amount == order.amount_due == order.total - Decimal("105.00")


def refund_items(
    order: Order, units: list[tuple[str, int]], refund_id: str = "r1", paid_back: bool = True
) -> list[tuple[str, int]]:
    """Refund by items as the refund command does: the units not shipped are cancelled once
    the refund is paid back (``paid_back=False``: the gateway refuses it)."""
    amount, items = order.plan_refund(None, False, [(i, q, "") for i, q in units])
    cancels = order.unshipped_in_refund(items)
    order.request_refund(refund_id, amount, "x", items, T0, None, cancels, "admin")
    if not paid_back:
        order.fail_refund(refund_id, "declined", T0)
        return []
    order.complete_refund(refund_id, "tx", T0)
    done = order.cancel_refunded_units(refund_id, T0)
    return [(c["orderItemId"], c["quantity"]) for c in done]


def test_a_refused_refund_cancels_nothing_and_a_retry_cancels_only_its_units() -> None:
    order = processing()
    first = order.items[0]
    assert refund_items(order, [(first["orderItemId"], 1)], "r1", paid_back=False) == []
    assert order.unshipped(first) == 3 and order.refund_cancels == {}
    assert refund_items(order, [(first["orderItemId"], 1)], "r2") == [(first["orderItemId"], 1)]
    assert order.unshipped(first) == 2 and order.refunded_qty[first["orderItemId"]] == 1


def test_units_shipped_while_their_refund_was_at_the_gateway_are_not_cancelled() -> None:
    order = processing()
    first = order.items[0]
    amount, items = order.plan_refund(None, False, [(first["orderItemId"], 2, "")])
    cancels = order.unshipped_in_refund(items)
    order.request_refund("r1", amount, "x", items, T0, None, cancels, "admin")
    ship(order, "s1", first, 2)  # the seller ships meanwhile (the refund is money back then)
    order.complete_refund("r1", "tx", T0)
    assert [c["quantity"] for c in order.cancel_refunded_units("r1", T0)] == [1]
    assert order.unshipped(first) == 0


def test_units_refunded_before_they_ship_stop_waiting_to_ship() -> None:
    order = processing()  # 3 + 2 units, two sellers, nothing shipped
    first, second = order.items
    assert refund_items(order, [(first["orderItemId"], 2)]) == [(first["orderItemId"], 2)]
    assert order.unshipped(first) == 1 and order.cancellable(first) == 1
    with pytest.raises(InvalidOrderStatus):  # refunded already: not cancelled (and paid) twice
        order.cancel_units([(first["orderItemId"], 2)], "admin", "admin", "x", "", T0)
    # refunding the last unit of the first seller's item leaves it nothing to ship
    refund_items(order, [(first["orderItemId"], 1)], "r2")
    assert order.remind_ship(T0 + 8 * DAY, 7 * DAY) == [second["sellerId"]]
    # the other seller ships its units: nothing is left, the order is SHIPPED
    ship(order, "s1", second, 2)
    assert order.status == "SHIPPED"


def test_a_refund_by_items_counts_against_shipped_units_first() -> None:
    order = processing((3, 2))
    first, second = order.items
    ship(order, "s1", first, 1)
    assert refund_items(order, [(first["orderItemId"], 1)]) == []  # the damaged parcel
    assert order.unshipped(first) == 2
    # two more: the shipped one is refunded already, so these two will not ship
    assert refund_items(order, [(first["orderItemId"], 2)], "r2") == [(first["orderItemId"], 2)]
    assert order.unshipped(first) == 0
    ship(order, "s2", second, 2)
    assert order.status == "SHIPPED"


def test_units_cancelled_before_payment_are_never_refunded_by_item() -> None:
    order = new_order((3, 2))
    first = order.items[0]
    order.cancel_units([(first["orderItemId"], 2)], "admin", "admin", "x", "", T0)
    paid_due = order.amount_due
    order.complete_payment("p", "CREDIT_CARD", "SANDBOX", paid_due, "tx", None, "R", T0)
    with pytest.raises(RefundFailed) as too_many:
        order.plan_refund(None, False, [(first["orderItemId"], 2, "")])
    assert too_many.value.details["refundableQuantity"] == 1
    # a corrected invoice lists only units paid for and not refunded
    order.issue_invoice("i1", "SL00000001", "2026-11-23", None, None, "", T0)
    order.void_invoice("i1", "x", T0)
    assert [i["quantity"] for i in order.corrected_amounts()["items"]] == [1, 2]


def test_points_spent_on_units_cancelled_before_payment_come_back() -> None:
    order = new_order((3, 1))
    assert order.taken_off() == (order.total, Decimal(0))
    order.cancel_units([(order.items[0]["orderItemId"], 1)], "buyer", "buyer", "x", "", T0)
    assert order.taken_off() == (order.total, Decimal("105.00"))
    order.complete_payment("p", "CREDIT_CARD", "SANDBOX", order.amount_due, "tx", None, "R", T0)
    assert order.taken_off() == (order.total, Decimal("105.00"))


def test_the_discount_is_shared_pro_rata_and_no_line_goes_negative() -> None:
    oid = uuid4()
    items: list[dict[str, Any]] = [
        {
            "orderItemId": f"{oid}-{n}",
            "productId": str(uuid4()),
            "sellerId": "s",
            "categoryId": "c",
            "name": f"item {n}",
            "quantity": q,
            "unitPrice": price,
            "subtotal": str(Decimal(price) * q),
        }
        for n, (q, price) in enumerate(((3, "33.33"), (1, "0.01")), start=1)
    ]
    order = Order.place(
        oid,
        order_number="SL2026112300000002",
        buyer_id="buyer",
        items=items,
        subtotal=Decimal("100.00"),
        discount=Decimal("99.00"),
        coupon_code="BIG",
        tax=Decimal("0.05"),
        shipping=Decimal(60),
        shipping_method="STANDARD",
        total=Decimal("61.05"),
        shipping_address={},
        billing_address={},
        payment_method="CREDIT_CARD",
        notes="",
        at=T0,
        expires_at=None,
    )
    paid(order)
    done = order.cancel_units([(items[0]["orderItemId"], 2)], "admin", "admin", "x", "", T0)
    unit = done.items[0]
    assert Decimal(unit["discount"]) <= Decimal(unit["subtotal"])
    assert done.refund_due == Decimal(unit["amount"]) == Decimal("0.70")  # 66.66 × 1.05/100
    doc = document(order)
    for key in ("subtotal", "discount", "tax", "total"):
        assert doc[key]["value"] >= 0
    assert all(i["subtotal"]["value"] >= 0 for i in doc["items"])


def test_an_inventory_gives_back_only_the_cancelled_units() -> None:
    inventory = Inventory(product_id="p", seller_id="s")
    inventory.receive("r1", "w1", 2, None, T0)
    inventory.receive("r2", "w2", 2, None, T0)
    inventory.reserve("o1", 4, T0)
    assert inventory.release("o1", "UNITS_CANCELLED", T0, 3)
    assert inventory.available == 3 and inventory.reservations == {"o1": {"w2": 1}}
    with pytest.raises(DomainError):
        inventory.release("o1", "UNITS_CANCELLED", T0, 2)
    assert inventory.release("o1", "ORDER_CANCELLED", T0)  # the rest
    assert inventory.available == 4 and inventory.reservations == {}
    assert not inventory.release("o1", "ORDER_CANCELLED", T0)


step = st.one_of(
    st.tuples(st.just("ship"), st.integers(0, 1), st.integers(1, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 1), st.integers(1, 3)),
    st.tuples(st.just("refund"), st.integers(0, 1), st.integers(1, 3)),
    st.tuples(st.just("amount"), st.integers(1, 300)),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(step, max_size=10))
def test_units_ship_or_cancel_once_refunds_stay_within_payment(steps: list[Any]) -> None:
    order = processing((3, 2))
    for n, s in enumerate(steps):
        try:
            if s[0] == "ship":
                ship(order, f"s{n}", order.items[s[1]], s[2])
            elif s[0] == "cancel":
                cancel(order, [(order.items[s[1]]["orderItemId"], s[2])])
            elif s[0] == "refund":
                refund_items(order, [(order.items[s[1]]["orderItemId"], s[2])], f"r{n}")
            else:
                amount, items = order.plan_refund(Decimal(s[1]), False, [])
                order.request_refund(f"r{n}", amount, "x", items, T0)
                order.complete_refund(f"r{n}", "tx", T0)
        except (InvalidOrderStatus, RefundFailed, DomainError):
            pass
        for item in order.items:
            item_id = item["orderItemId"]
            done_units = order.shipped_qty.get(item_id, 0) + order.cancelled_qty.get(item_id, 0)
            assert done_units <= item["quantity"]
            # every unit refunded by item has shipped, or was cancelled (it will not ship)
            assert order.refunded_qty.get(item_id, 0) <= done_units
        assert Decimal(0) <= order.refunded_amount <= order.paid_amount
        if order.status != "CANCELLED":
            remaining_shipped = all(order.unshipped(i) == 0 for i in order.items)
            # (refunding every unit before anything ships leaves a paid order with nothing
            # to ship: it is not SHIPPED, it is closed by cancelling it)
            assert (order.status == "SHIPPED") == (remaining_shipped and bool(order.shipments))
    doc = document(order)
    assert doc["status"] == order.status
    for item in doc["items"]:
        assert item["subtotal"]["value"] >= 0


def test_an_invoice_after_a_partial_cancellation_covers_the_units_left() -> None:
    order = processing()
    first, second = order.items
    cancel(order, [(first["orderItemId"], 2)])
    cancel(order, [(second["orderItemId"], 2)])
    order.issue_invoice("i1", "AB12345678", "2026-11-23", None, None, "", T0)
    assert order.invoice is not None
    assert [(i["orderItemId"], i["quantity"]) for i in order.invoice["items"]] == [
        (first["orderItemId"], 1)
    ]
    subtotal, discount, tax, shipping, total = order.invoice["amounts"]
    assert (subtotal, discount, tax, shipping) == (Decimal(100), 0, Decimal(5), Decimal(60))
    assert total == order.paid_amount - order.refunded_amount == Decimal(165)
    invoice = document(order)["invoices"][0]
    assert [i["quantity"] for i in invoice["items"]] == [1]
    assert invoice["total"]["value"] == 165
