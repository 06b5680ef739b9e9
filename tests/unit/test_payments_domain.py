"""The order's payments, refunds, shipments and invoice as pure domain rules (in memory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.errors import DomainError
from aggregates.invoices import InvoiceTrack
from aggregates.order_view import fold
from aggregates.orders import (
    SHIPMENT_FLOW,
    SHIPMENT_STATUSES,
    InvalidOrderStatus,
    InvalidShipmentStatus,
    InvoiceAlreadyExists,
    Order,
    RefundFailed,
)
from commands.payments import ecpay_amount

T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def new_order(quantities: tuple[int, ...] = (2, 1), method: str = "CREDIT_CARD") -> Order:
    oid = uuid4()
    items = [
        {
            "orderItemId": f"{oid}-{n}",
            "productId": str(uuid4()),
            "sellerId": f"seller-{n % 2}",
            "categoryId": "c",
            "name": f"item {n}",
            "quantity": q,
            "unitPrice": "100.00",
            "subtotal": str(Decimal(100) * q),
        }
        for n, q in enumerate(quantities, start=1)
    ]
    subtotal = Decimal(100) * sum(quantities)
    tax = subtotal * Decimal("0.05")
    return Order.place(
        oid,
        order_number="SL2026112300000001",
        buyer_id="buyer",
        items=items,
        subtotal=subtotal,
        discount=Decimal(0),
        coupon_code=None,
        tax=tax,
        shipping=Decimal(60),
        shipping_method="STANDARD",
        total=subtotal + tax + 60,
        shipping_address={},
        billing_address={},
        payment_method=method,
        notes="",
        at=T0,
        expires_at=None if method == "COD" else T0 + timedelta(minutes=30),
    )


def paid(order: Order) -> Order:
    order.complete_payment(
        order.next_payment_id(), "CREDIT_CARD", "SANDBOX", order.total, "tx", None, "R1", T0
    )
    return order


def document(order: Order) -> dict[str, Any]:
    doc: dict[str, Any] | None = None
    for e in order.collect_events():
        doc = fold(doc, e)
    assert doc is not None
    return doc


# --- payments ---------------------------------------------------------------------------------
def test_one_attempt_at_a_time_and_never_a_second_payment() -> None:
    order = new_order()
    order.start_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, None, T0)
    with pytest.raises(InvalidOrderStatus) as busy:
        order.start_payment(
            "p2", "CREDIT_CARD", "SANDBOX", order.total, None, T0 + timedelta(seconds=5)
        )
    assert busy.value.details["reason"] == "PAYMENT_IN_PROGRESS"
    assert not order.expire(T0 + timedelta(hours=1) - timedelta(minutes=59))  # not due and busy
    with pytest.raises(InvalidOrderStatus):
        order.cancel("x", "buyer", "", T0 + timedelta(seconds=5))
    # an abandoned attempt stops blocking after its lease
    order.start_payment(
        "p3", "CREDIT_CARD", "SANDBOX", order.total, None, T0 + timedelta(minutes=3)
    )
    order.complete_payment(
        "p3", "CREDIT_CARD", "SANDBOX", order.total, "tx3", None, "R1", T0 + timedelta(minutes=3)
    )
    assert (order.status, order.payment_status) == ("PAID", "COMPLETED")
    with pytest.raises(InvalidOrderStatus) as again:
        order.start_payment(
            "p4", "CREDIT_CARD", "SANDBOX", order.total, None, T0 + timedelta(minutes=4)
        )
    assert again.value.details["reason"] == "ALREADY_PAID"
    with pytest.raises(DomainError):
        new_order().start_payment("p", "CREDIT_CARD", "SANDBOX", Decimal(1), None, T0)


def test_a_repeated_gateway_notice_is_recorded_once() -> None:
    order = new_order(method="BANK_TRANSFER")
    assert order.complete_payment(
        "a", "BANK_TRANSFER", "ECPAY", order.total, "T1", None, "R1", T0, external_id="ecpay:T1"
    )
    assert not order.complete_payment(
        "b", "BANK_TRANSFER", "ECPAY", order.total, "T1", None, "R2", T0, external_id="ecpay:T1"
    )
    assert order.paid_amount == order.total and len(order.payments) == 1


def test_ecpay_amounts_are_whole_dollars_rounded_half_up() -> None:
    assert [ecpay_amount(Decimal(v)) for v in ("322.5", "322.49", "1519.50", "100")] == [
        323,
        322,
        1520,
        100,
    ]


# --- refunds ----------------------------------------------------------------------------------
refund_step = st.one_of(
    st.tuples(
        st.just("amount"), st.decimals(min_value=Decimal("0.01"), max_value=Decimal(400), places=2)
    ),
    st.tuples(
        st.just("items"),
        st.integers(min_value=0, max_value=1),
        st.integers(min_value=1, max_value=3),
    ),
    st.tuples(st.just("full")),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(refund_step, max_size=8))
def test_refunds_never_exceed_what_was_paid(steps: list[tuple[Any, ...]]) -> None:
    order = paid(new_order((2, 3)))
    for n, step in enumerate(steps):
        before = order.refunded_amount
        try:
            if step[0] == "amount":
                amount, items = order.plan_refund(step[1], False, [])
            elif step[0] == "items":
                amount, items = order.plan_refund(
                    None, False, [(order.items[step[1]]["orderItemId"], step[2], "")]
                )
            else:
                amount, items = order.plan_refund(None, True, [])
            order.request_refund(f"r{n}", amount, "test", items, T0)
            assert (
                order.refundable == order.paid_amount - before - amount
            )  # held while the gateway works
            if n % 3 == 2:  # the gateway refuses now and then: the amount is refundable again
                order.fail_refund(f"r{n}", "declined", T0)
                assert order.refunded_amount == before
            else:
                order.complete_refund(f"r{n}", "tx", T0)
                assert order.refunded_amount == before + amount
        except RefundFailed:
            assert order.refunded_amount == before
        assert Decimal(0) <= order.refunded_amount <= order.paid_amount
        for item in order.items:
            assert order.refunded_qty.get(item["orderItemId"], 0) <= item["quantity"]
        expected = (
            "COMPLETED"
            if order.refunded_amount == 0
            else (
                "REFUNDED" if order.refunded_amount == order.paid_amount else "PARTIALLY_REFUNDED"
            )
        )
        assert order.payment_status == expected
    doc = document(order)
    assert doc["paymentStatus"] == order.payment_status
    assert sum(Decimal(str(r["amount"]["value"])) for r in doc["refunds"]) == order.refunded_amount


def test_an_unpaid_order_cannot_be_refunded_and_a_paid_cancel_is_due_in_full() -> None:
    with pytest.raises(InvalidOrderStatus):
        new_order().plan_refund(Decimal(1), False, [])
    order = paid(new_order())
    assert order.cancel("x", "buyer", "", T0) == order.total


# --- shipments --------------------------------------------------------------------------------
def _allowed(current: str, target: str) -> bool:
    if current == "DELIVERED":
        return False
    if target == "EXCEPTION":
        return current != "EXCEPTION"
    if current == "EXCEPTION":
        return target in ("IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")
    return SHIPMENT_FLOW.index(target) > SHIPMENT_FLOW.index(current)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(SHIPMENT_STATUSES), max_size=10))
def test_a_shipment_follows_its_status_machine(moves: list[str]) -> None:
    order = paid(new_order((1,)))
    order.process(order.seller_ids, "x", None, None, "", T0)
    order.ship("s1", None, "HCT", "1", None, None, "x", None, None, "", None, T0)
    current = "SHIPPED"
    for status in moves:
        if _allowed(current, status):
            delivered = order.update_shipment("s1", status, None, "", None, True, T0)
            assert delivered == (status == "DELIVERED")
            current = status
        else:
            with pytest.raises(InvalidShipmentStatus):
                order.update_shipment("s1", status, None, "", None, True, T0)
        assert order.shipments["s1"]["status"] == current
    assert document(order)["shipments"][0]["status"] == current


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 4)), max_size=8))
def test_items_ship_at_most_once_and_the_order_ships_when_all_have(
    parts: list[tuple[int, int]],
) -> None:
    order = paid(new_order((3, 2)))
    order.process(order.seller_ids, "x", None, None, "", T0)
    for n, (index, qty) in enumerate(parts):
        item = order.items[index]
        left = order.unshipped(item)
        if order.status != "PROCESSING" or qty > left:
            with pytest.raises(InvalidOrderStatus):
                order.ship(
                    f"s{n}",
                    None,
                    "HCT",
                    "1",
                    None,
                    [(item["orderItemId"], qty)],
                    "x",
                    None,
                    None,
                    "",
                    None,
                    T0,
                )
            continue
        order.ship(
            f"s{n}",
            None,
            "HCT",
            "1",
            None,
            [(item["orderItemId"], qty)],
            "x",
            None,
            None,
            "",
            None,
            T0,
        )
        assert order.unshipped(item) == left - qty
    assert (order.status == "SHIPPED") == all(order.unshipped(i) == 0 for i in order.items)
    assert document(order)["shippingStatus"] in (
        ("SHIPPED",) if order.status == "SHIPPED" else ("PARTIALLY_SHIPPED", "NOT_SHIPPED")
    )


def test_timed_rules_are_no_ops_until_due_and_happen_once() -> None:
    order = paid(new_order((1, 1)))
    assert order.remind_ship(T0 + timedelta(days=6), timedelta(days=7)) is None
    assert order.remind_ship(T0 + timedelta(days=7), timedelta(days=7)) == ["seller-0", "seller-1"]
    assert order.remind_ship(T0 + timedelta(days=8), timedelta(days=7)) is None  # once per order
    order.process(order.seller_ids, "x", None, None, "", T0)
    order.ship("s", None, "HCT", "1", None, None, "x", None, None, "", None, T0)
    assert not order.auto_deliver(
        T0 + timedelta(days=30), timedelta(days=3)
    )  # not delivered by the carrier
    order.update_shipment("s", "DELIVERED", None, "", None, True, T0 + timedelta(days=1))
    assert not order.auto_deliver(T0 + timedelta(days=3), timedelta(days=3))
    order.confirm_receipt(T0 + timedelta(days=2))
    assert not order.auto_deliver(
        T0 + timedelta(days=5), timedelta(days=3)
    )  # confirmed first: stale


# --- invoices ---------------------------------------------------------------------------------
def test_invoice_numbers_are_sequential_per_track_and_one_per_order() -> None:
    track = InvoiceTrack.open("AB")
    assert [track.take("o") for _ in range(3)] == ["AB00000001", "AB00000002", "AB00000003"]
    with pytest.raises(DomainError):
        InvoiceTrack.create_id("A1")
    order = paid(new_order())
    order.issue_invoice("i1", "AB00000004", "2026-11-23", None, None, "", T0)
    with pytest.raises(InvoiceAlreadyExists):
        order.issue_invoice("i2", "AB00000005", "2026-11-23", None, None, "", T0)
    with pytest.raises(InvalidOrderStatus):
        new_order().check_invoiceable()


# --- seeds/003 alignment: invoices after refunds, payment methods, COD reminders ----------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(refund_step, st.tuples(st.just("reissue"))), max_size=8))
def test_a_corrected_invoice_always_adds_up_to_what_was_paid_and_not_refunded(
    steps: list[tuple[Any, ...]],
) -> None:
    order = paid(new_order((2, 3)))
    order.issue_invoice("inv-0", "SL00000001", "2026-11-23", None, None, "", T0)
    for n, step in enumerate(steps, start=1):
        try:
            if step[0] == "reissue":
                assert order.invoice is not None
                if order.invoice["status"] == "ISSUED":
                    order.void_invoice(order.invoice["invoiceId"], "correct it", T0)
                order.issue_invoice(f"inv-{n}", f"SL{n:08d}", "2026-11-23", None, None, "", T0)
                inv = order.invoice
                subtotal, discount, tax, shipping, total = inv["amounts"]
                assert total == order.paid_amount - order.refunded_amount > 0
                assert subtotal - discount + tax + shipping == total
                assert min(subtotal, tax, shipping) >= 0 and shipping <= order.shipping
                assert inv["corrects"] is not None
                assert sum(i["quantity"] for i in inv["items"]) == sum(
                    i["quantity"] - order.refunded_qty.get(i["orderItemId"], 0) for i in order.items
                )
                continue
            if step[0] == "amount":
                amount, items = order.plan_refund(step[1], False, [])
            elif step[0] == "items":
                amount, items = order.plan_refund(
                    None, False, [(order.items[step[1]]["orderItemId"], step[2], "")]
                )
            else:
                amount, items = order.plan_refund(None, True, [])
            order.request_refund(f"r{n}", amount, "test", items, T0)
            order.complete_refund(f"r{n}", "tx", T0)
        except (RefundFailed, InvalidOrderStatus) as exc:
            if isinstance(exc, InvalidOrderStatus):  # only a fully refunded order is refused
                assert order.payment_status == "REFUNDED"
        assert order.invoice is not None
        if order.payment_status == "REFUNDED":  # a full refund voids the valid invoice
            assert order.invoice["status"] == "VOID"
    doc = document(order)
    assert doc["invoices"][0]["invoiceId"] == "inv-0"
    assert sum(1 for i in doc["invoices"] if i["status"] == "ISSUED") <= 1


def test_the_way_to_pay_changes_only_while_unpaid_and_cod_stays_cod() -> None:
    order = new_order()
    assert order.choose_payment_method("CREDIT_CARD", T0) is False  # unchanged: no event
    assert order.choose_payment_method("BANK_TRANSFER", T0) is True
    with pytest.raises(DomainError):  # ECPay may have issued an ATM code: no card as well
        order.start_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, None, T0)
    assert order.choose_payment_method("COD", T0) is True and order.expires_at is None
    with pytest.raises(InvalidOrderStatus) as refused:
        order.choose_payment_method("MOBILE_PAYMENT", T0)
    assert refused.value.details["reason"] == "COD_ORDER"
    with pytest.raises(DomainError):
        order.choose_payment_method("COD", T0, order.total + 1)  # the amount is the total
    card = paid(new_order())
    with pytest.raises(InvalidOrderStatus):
        card.choose_payment_method("COD", T0)


def test_a_cod_order_is_reminded_from_placement_and_receipt_is_confirmed_once() -> None:
    week = timedelta(days=7)
    cod = new_order(method="COD")
    assert cod.remind_ship(T0 + week - timedelta(seconds=1), week) is None
    assert cod.remind_ship(T0 + week, week) == ["seller-0", "seller-1"]
    assert cod.remind_ship(T0 + 2 * week, week) is None  # once
    card = new_order()
    assert card.remind_ship(T0 + week, week) is None  # unpaid, not COD: no clock yet
    order = paid(new_order((1,)))
    order.process(order.seller_ids, "admin", None, None, "", T0)
    order.ship("s1", None, "BLACK_CAT", "T1", None, None, "seller-1", None, None, "", None, T0)
    order.update_shipment("s1", "DELIVERED", None, "", None, True, T0)
    assert order.confirm_receipt(T0) is True
    version = order.version
    assert order.confirm_receipt(T0 + week) is False and order.version == version
