"""Pieces of payment recovery in memory: the sandbox's books and lookups, the slow test cards,
the order recording one outcome per payment id."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from gateways.cards import ValidCard, validate_card
from gateways.sandbox import Lookup, MemoryLedger, SandboxGateway
from tests.unit.test_payments_domain import T0, new_order

SLOW_APPROVED = "4000000000000309"
SLOW_DECLINED = "4000000000000408"


def card(number: str) -> ValidCard:
    return validate_card(number, 12, 2031, "123", today=date(2026, 12, 1))


def test_the_sandbox_answers_lookups_from_its_books() -> None:
    gw = SandboxGateway(MemoryLedger())
    assert gw.lookup_charge("pay-1") == Lookup(False)
    charged = gw.charge("pay-1", card("4242424242424242"), Decimal("10.50"), "TWD")
    declined = gw.charge("pay-2", card("4000000000000002"), Decimal(10), "TWD")
    assert gw.lookup_charge("pay-1") == Lookup(True, True, charged.transaction_id, None)
    assert gw.lookup_charge("pay-2") == Lookup(
        True, False, declined.transaction_id, "card_declined"
    )
    assert gw.lookup_refund("ref-1") == Lookup(False)
    refund_tx = gw.refund(charged.transaction_id, "ref-1", Decimal(5))
    assert gw.lookup_refund("ref-1") == Lookup(True, True, refund_tx, None)
    assert gw.lookup_charge("ref-1") == Lookup(False)  # charges and refunds are apart
    assert SandboxGateway().lookup_charge("pay-1") == Lookup(False)  # no books, nothing known


@pytest.mark.parametrize(("number", "approved"), [(SLOW_APPROVED, True), (SLOW_DECLINED, False)])
def test_slow_test_cards_are_on_the_books_before_they_answer(number: str, approved: bool) -> None:
    books = MemoryLedger()
    seen_while_waiting: list[Lookup] = []

    def sleep(seconds: float) -> None:
        assert seconds == 7.0
        seen_while_waiting.append(gw.lookup_charge("pay-slow"))

    gw = SandboxGateway(books, 7.0, sleep=sleep)
    result = gw.charge("pay-slow", card(number), Decimal(100), "TWD")
    assert result.approved is approved
    assert seen_while_waiting == [
        Lookup(True, approved, result.transaction_id, result.decline_code)
    ]
    # Without a delay configured, they answer at once like any card.
    assert (
        SandboxGateway(MemoryLedger(), 0.0, sleep=sleep)
        .charge("pay-fast", card(number), Decimal(1), "TWD")
        .approved
        is approved
    )
    assert len(seen_while_waiting) == 1


def test_the_books_keep_the_first_answer_for_a_payment_id() -> None:
    gw = SandboxGateway(MemoryLedger())
    first = gw.charge("pay-1", card("4000000000000002"), Decimal(10), "TWD")
    again = gw.charge("pay-1", card("4242424242424242"), Decimal(10), "TWD")
    assert (again.approved, again.transaction_id) == (False, first.transaction_id)


def test_an_order_records_one_outcome_per_payment_id() -> None:
    order = new_order()
    order.start_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, None, T0)
    assert order.complete_payment(
        "p1", "CREDIT_CARD", "SANDBOX", order.total, "tx1", None, "R1", T0
    )
    # The request's answer and the recovery rule's: the second records nothing.
    assert not order.complete_payment(
        "p1", "CREDIT_CARD", "SANDBOX", order.total, "tx1", None, "R2", T0
    )
    assert not order.fail_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, "x", None, T0)
    assert [p["status"] for p in order.payments] == ["COMPLETED"]
    assert order.paid_amount == order.total


def test_money_taken_after_a_payment_was_failed_is_still_recorded() -> None:
    """The rule failed a payment the gateway had not seen; the request then charged after
    all: the money is on the card, so the order records it (and is paid)."""
    order = new_order()
    order.start_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, None, T0)
    assert order.fail_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, "not_charged", None, T0)
    assert not order.fail_payment("p1", "CREDIT_CARD", "SANDBOX", order.total, "again", None, T0)
    assert order.complete_payment(
        "p1", "CREDIT_CARD", "SANDBOX", order.total, "tx1", None, "R1", T0
    )
    assert (order.status, order.payment_outcome("p1")) == ("PAID", "COMPLETED")
