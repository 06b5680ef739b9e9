"""Returns and disputes as pure domain rules (in memory): the return window and quantities, the
step machines, what a return's refund may still cover, and the lost-dispute flag."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.disputes import Dispute, DisputeClosed, SellerDisputeRecord
from aggregates.errors import Conflict, DomainError
from aggregates.orders import InvalidOrderStatus, Order
from aggregates.returns import (
    InvalidReturnStatus,
    ReturnRequest,
    ReturnWindowClosed,
    plan_return,
    refund_lines,
)
from shopledger.settings import SettingsError, load_settings
from tests.unit.test_payments_domain import T0, new_order, paid

WINDOW = timedelta(days=7)


def delivered(quantities: tuple[int, ...] = (2, 1)) -> Order:
    order = paid(new_order(quantities))
    order.change_status("PROCESSING", "", T0)
    order.ship("s1", None, "C", "T1", None, None, "admin", None, None, "", None, T0)
    order.change_status("DELIVERED", "", T0)
    return order


def lines_of(order: Order, *units: int) -> list[tuple[str, int]]:
    return [(i["orderItemId"], n) for i, n in zip(order.items, units, strict=False) if n]


def test_a_return_is_asked_within_the_window_after_delivery_only() -> None:
    order = paid(new_order((2,)))
    with pytest.raises(InvalidOrderStatus):
        plan_return(order, lines_of(order, 1), T0, WINDOW)
    order = delivered((2,))
    seller, lines = plan_return(order, lines_of(order, 2), T0 + WINDOW, WINDOW)
    assert seller == "seller-1" and lines[0]["quantity"] == 2
    with pytest.raises(ReturnWindowClosed):
        plan_return(order, lines_of(order, 1), T0 + WINDOW + timedelta(seconds=1), WINDOW)


def test_a_return_names_known_items_of_one_seller_within_what_is_not_refunded() -> None:
    order = delivered((2, 1))  # items of seller-1 and seller-0
    with pytest.raises(DomainError) as mixed:
        plan_return(order, lines_of(order, 1, 1), T0, WINDOW)
    assert mixed.value.details["field"] == "items"
    with pytest.raises(DomainError) as unknown:
        plan_return(order, [("nope", 1)], T0, WINDOW)
    assert unknown.value.details["field"] == "items[0].orderItemId"
    first = order.items[0]["orderItemId"]
    amount, covered = order.plan_refund(None, False, [(first, 1, "damaged")])
    order.request_refund("r1", amount, "damaged", covered, T0)
    with pytest.raises(DomainError) as too_many:
        plan_return(order, [(first, 2)], T0, WINDOW)
    assert too_many.value.details == {"field": "items[0].quantity", "returnableQuantity": 1}
    assert plan_return(order, [(first, 1)], T0, WINDOW)[1][0]["quantity"] == 1


@settings(max_examples=60, deadline=None)
@given(bought=st.integers(1, 6), refunded=st.integers(0, 6), returned=st.integers(1, 6))
def test_a_received_return_refunds_only_units_still_refundable(
    bought: int, refunded: int, returned: int
) -> None:
    order = delivered((bought,))
    item = order.items[0]["orderItemId"]
    refunded = min(refunded, bought)
    if refunded:
        amount, covered = order.plan_refund(None, False, [(item, refunded, "")])
        order.request_refund("earlier", amount, "", covered, T0)
    due = refund_lines(order, [{"orderItemId": item, "quantity": returned}])
    units = sum(q for _, q, _ in due)
    assert units == min(returned, bought - refunded)
    if due:  # and they can always be refunded: never more than paid
        amount, _ = order.plan_refund(None, False, due)
        assert amount <= order.refundable


def new_return() -> ReturnRequest:
    return ReturnRequest.request(
        order_id="o",
        order_number="SL1",
        buyer_id="b",
        seller_id="s",
        items=[],
        reason=" 尺寸  不合 ",
        images=[],
        at=T0,
    )


def test_a_return_moves_one_step_at_a_time() -> None:
    ret = new_return()
    assert ret.reason == "尺寸 不合"
    for illegal in (
        lambda: ret.ship_back("c", "t", T0),
        lambda: ret.receive("s", "w", None, T0),
    ):
        with pytest.raises(InvalidReturnStatus):
            illegal()
    with pytest.raises(DomainError):
        ret.reject("s", "   ", T0)  # a rejection needs a reason
    ret.approve("s", "", T0)
    with pytest.raises(InvalidReturnStatus):
        ret.reject("s", "late", T0)
    ret.ship_back("c", "t", T0)
    ret.receive("s", "w", None, T0)
    assert ret.status == "RECEIVED"
    rejected = new_return()
    rejected.reject("s", "used", T0)
    with pytest.raises(InvalidReturnStatus):
        rejected.approve("s", "", T0)


def test_a_dispute_takes_statements_until_it_is_resolved_once() -> None:
    dispute = Dispute.open(
        order_id="o",
        order_number="SL1",
        buyer_id="b",
        seller_id="s",
        opened_by="b",
        opener_role="buyer",
        reason="not as described",
        text="blue, not red",
        at=T0,
    )
    assert dispute.party("b") == "buyer" and dispute.party("x") is None
    dispute.add_statement("s", "seller", "photo attached", T0)
    with pytest.raises(DomainError):
        dispute.add_statement("s", "seller", "bell\x07", T0)
    with pytest.raises(DomainError):
        dispute.check_resolvable("REFUND_PARTIAL", None)
    with pytest.raises(DomainError):
        dispute.check_resolvable("REFUND_FULL", Decimal(1))
    dispute.resolve("admin", "REJECTED", "signed for", None, T0)
    assert not dispute.seller_lost
    for after in (
        lambda: dispute.add_statement("b", "buyer", "more", T0),
        lambda: dispute.check_resolvable("REFUND_FULL", None),
    ):
        with pytest.raises(DisputeClosed):
            after()


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 60), min_size=1, max_size=12),
    limit=st.integers(1, 5),
)
def test_a_seller_is_flagged_once_when_losses_within_the_window_reach_the_limit(
    gaps: list[int], limit: int
) -> None:
    window = timedelta(days=90)
    record = SellerDisputeRecord.start("s")
    at = T0
    flags: list[int] = []
    for n, gap in enumerate(gaps):
        at += timedelta(days=gap)
        flagged_now = record.record_loss(f"d{n}", at, window, limit, ["admin"])
        recent = sum(1 for seen in record.losses if at - seen <= window)
        assert flagged_now == (recent >= limit and not flags)
        if flagged_now:
            flags.append(n)
    assert record.flagged == bool(flags)
    if not flags:
        with pytest.raises(Conflict):
            record.clear_flag("admin", "", at)
    else:
        record.clear_flag("admin", "reviewed", at)
        assert not record.flagged and record.flag is not None
        assert record.flag["clearedBy"] == "admin"
        # the next loss flags again if the count in the window is (still) at the limit
        again = record.record_loss("again", at, window, limit, ["admin"])
        assert again == (record.lost_within(window, at) >= limit)


def test_after_sale_settings_default_and_refuse_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.return_window == timedelta(days=7)
    assert s.dispute_losses_to_flag == 5 and s.dispute_loss_window == timedelta(days=90)
    monkeypatch.setenv("SHOPLEDGER_DISPUTE_LOSSES_TO_FLAG", "3")
    monkeypatch.setenv("SHOPLEDGER_RETURN_WINDOW", "P14D")
    s = load_settings()
    assert s.dispute_losses_to_flag == 3 and s.return_window == timedelta(days=14)
    for variable, value in (
        ("SHOPLEDGER_DISPUTE_LOSSES_TO_FLAG", "0"),
        ("SHOPLEDGER_DISPUTE_LOSS_WINDOW", "P3M"),
        ("SHOPLEDGER_RETURN_WINDOW", "PT0S"),
    ):
        monkeypatch.setenv(variable, value)
        with pytest.raises(SettingsError) as info:
            load_settings()
        assert variable in str(info.value)
        monkeypatch.delenv(variable)
