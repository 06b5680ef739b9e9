"""The payment-recovery rule in embedded mode: payments and refunds whose request died between
the start and the gateway's answer are settled from the gateway's books, exactly once.

A request that "dies" is simulated by running its first half through the bus (and, where it
got that far, the gateway) and never recording the answer; the rule runs in the app's own
thread with a short delay (SHOPLEDGER_PAYMENT_RECOVERY_AFTER=PT0.3S).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from fastapi.testclient import TestClient
from sqlalchemy import select

from commands.application import EventMeta
from commands.payments import FinishCardPayment, RefundOrder, StartCardPayment
from gateways.cards import validate_card
from gateways.sandbox import Lookup, SandboxGateway
from tests.support.accounts import User, admin, container_of, verified_user
from tests.support.aftersale import assert_rebuilds_equal
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product
from workers.payment_recovery import PaymentRecovery

GOOD = "4242424242424242"
DECLINED = "4000000000000002"
SLOW_GOOD = "4000000000000309"
FAST = {"payment_recovery_after": "PT0.3S", "sandbox_slow_card_delay": "PT1S"}


def _market(client: TestClient, orders: int = 1) -> tuple[User, User, list[dict[str, Any]]]:
    boss = admin(client)
    shop = seller(client, boss)
    buyer = verified_user(client)
    pid = stocked_product(client, boss, shop, 10, 500)
    placed = []
    for _ in range(orders):
        add_to_cart(client, buyer, pid, 2)
        r = checkout(client, buyer, paymentMethod="CREDIT_CARD")
        assert r.status_code == 201, r.text
        placed.append(dict(r.json()))
    return boss, buyer, placed


def _card_body(number: str, order: dict[str, Any]) -> dict[str, Any]:
    return {
        "paymentMethod": "CREDIT_CARD",
        "paymentData": {
            "cardDetails": {"number": number, "expiryMonth": 12, "expiryYear": 2031, "cvv": "123"}
        },
        "amount": {"value": order["total"]["value"], "currency": "TWD"},
    }


def _die_mid_payment(
    client: TestClient, buyer: User, order: dict[str, Any], number: str | None
) -> str:
    """What a payment request did before its process died: PaymentStarted, then (unless
    ``number`` is None) the gateway's charge; the answer is never recorded."""
    container = container_of(client)
    payment_id = str(uuid4())
    card = validate_card(number or GOOD, 12, 2031, "123", None, today=date.today())
    amount = Decimal(str(order["total"]["value"]))
    container.bus.execute(
        StartCardPayment(
            UUID(order["orderId"]),
            buyer.user_id,
            payment_id,
            "CREDIT_CARD",
            amount,
            card.public_info(),
        ),
        EventMeta(buyer.user_id, "died"),
    )
    if number is not None:
        assert container.card_gateway is not None
        container.card_gateway.charge(payment_id, card, amount, "TWD")
    return payment_id


def _timeline(client: TestClient, who: User, order_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/sales/orders/{order_id}/timeline", headers=who.auth)
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def _settled(client: TestClient, who: User, order_id: str, *types: str) -> list[dict[str, Any]]:
    """Wait (at most 5 s) until the order's timeline holds one of ``types``."""
    deadline = time.monotonic() + 5
    while True:
        events = _timeline(client, who, order_id)
        if any(e["type"] in types for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def _in_flight(client: TestClient) -> set[tuple[str, str, str]]:
    container = container_of(client)
    table = container.live_projection("payment-checks").tables["in_flight"]
    with container.engine.connect() as conn:
        return {(r.kind, r.ref_id, r.order_id) for r in conn.execute(select(table))}


def _order(client: TestClient, who: User, order_id: str) -> dict[str, Any]:
    container_of(client).catch_up()
    return dict(client.get(f"/api/sales/orders/{order_id}", headers=who.auth).json())


def test_payments_left_open_are_settled_from_the_gateways_books_once(make_client) -> None:
    """Charged: PAID by one PaymentCompleted (a late answer of the request adds nothing);
    declined: failed with its code; never charged: failed as ``not_charged``. The failed
    orders can be paid again."""
    client = make_client(**FAST)
    _, buyer, (charged, declined, unasked) = _market(client, 3)
    payment_id = _die_mid_payment(client, buyer, charged, GOOD)
    _die_mid_payment(client, buyer, declined, DECLINED)
    _die_mid_payment(client, buyer, unasked, None)  # died before asking the gateway

    ends = ("PaymentCompleted", "PaymentFailed")
    events = _settled(client, buyer, charged["orderId"], *ends)
    completed = [e for e in events if e["type"] == "PaymentCompleted"]
    assert [(e["actor"], e["data"]["paymentId"]) for e in completed] == [
        ("system:payment-recovery", payment_id)
    ]
    assert not any(e["type"] == "PaymentFailed" for e in events)
    now = _order(client, buyer, charged["orderId"])
    assert (now["status"], now["paymentStatus"]) == ("PAID", "COMPLETED")
    # The request's own answer arriving late records nothing more: the order decides.
    late = container_of(client).bus.execute(
        FinishCardPayment(
            UUID(charged["orderId"]),
            payment_id,
            "CREDIT_CARD",
            Decimal(str(charged["total"]["value"])),
            {},
            True,
            completed[0]["data"]["transactionId"],
            None,
        ),
        EventMeta(buyer.user_id, "late"),
    )
    assert late.position is None
    types = [e["type"] for e in _timeline(client, buyer, charged["orderId"])]
    assert types.count("PaymentCompleted") == 1

    for order, reason in ((declined, "card_declined"), (unasked, "not_charged")):
        events = _settled(client, buyer, order["orderId"], *ends)
        assert [
            (e["type"], e["actor"], e["data"]["reason"]) for e in events if e["type"] in ends
        ] == [("PaymentFailed", "system:payment-recovery", reason)]
        assert _order(client, buyer, order["orderId"])["paymentStatus"] == "FAILED"
        r = client.post(
            f"/api/sales/orders/{order['orderId']}/payments",
            json=_card_body(GOOD, order),
            headers=buyer.auth,
        )
        assert r.status_code == 200, r.text
        assert _order(client, buyer, order["orderId"])["status"] == "PAID"


def test_a_slow_card_answered_after_the_rule_settled_it_is_one_payment(make_client) -> None:
    """The documented slow card: the charge is on the gateway's books at once, the answer
    comes late (here: only once the rule has recorded the payment). The request's answer
    then records nothing and still reports the payment."""
    client = make_client(**FAST)
    _, buyer, (order,) = _market(client)
    oid = order["orderId"]
    container = container_of(client)
    assert isinstance(container.card_gateway, SandboxGateway)

    def until_the_rule_settled_it(_seconds: float) -> None:
        deadline = time.monotonic() + 10
        while container.load(UUID(oid)).pending_payment is not None:
            assert time.monotonic() < deadline, "the rule did not settle the payment"
            time.sleep(0.05)

    client.app.state.card_gateway = SandboxGateway(
        container.card_gateway.ledger, 1.0, sleep=until_the_rule_settled_it
    )
    r = client.post(
        f"/api/sales/orders/{oid}/payments", json=_card_body(SLOW_GOOD, order), headers=buyer.auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "COMPLETED"
    events = _timeline(client, buyer, oid)
    completed = [e for e in events if e["type"] == "PaymentCompleted"]
    assert [(e["actor"], e["data"]["paymentId"]) for e in completed] == [
        ("system:payment-recovery", r.json()["paymentId"])
    ]


def test_held_card_refunds_are_completed_or_failed_from_the_gateways_books(make_client) -> None:
    client = make_client(**FAST)
    boss, buyer, (order,) = _market(client)
    oid = order["orderId"]
    r = client.post(
        f"/api/sales/orders/{oid}/payments", json=_card_body(GOOD, order), headers=buyer.auth
    )
    assert r.status_code == 200, r.text
    container = container_of(client)
    gateway = container.card_gateway
    assert gateway is not None

    def hold(amount: str) -> Any:
        _, _, pending = container.bus.execute(
            RefundOrder(
                UUID(oid), boss.user_id, True, str(uuid4()), "test", Decimal(amount), False
            ),
            EventMeta(boss.user_id, "died"),
        ).result
        assert pending is not None
        return pending

    paid_back = hold("100")  # the gateway paid it back; the answer was never recorded
    refund_tx = gateway.refund(paid_back.payment_transaction_id, paid_back.refund_id, Decimal(100))
    never_asked = hold("50")  # the process died before asking the gateway

    deadline = time.monotonic() + 5
    while True:
        events = _timeline(client, boss, oid)
        ends = {
            e["data"]["refundId"]: e for e in events if e["type"] in ("Refunded", "RefundFailed")
        }
        if len(ends) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    done, failed = ends[paid_back.refund_id], ends[never_asked.refund_id]
    assert (done["type"], done["actor"], done["data"]["transactionId"]) == (
        "Refunded",
        "system:payment-recovery",
        refund_tx,
    )
    assert (failed["type"], failed["data"]["reason"]) == ("RefundFailed", "not_refunded")
    now = _order(client, boss, oid)
    assert now["paymentStatus"] == "PARTIALLY_REFUNDED"
    # The failed refund's amount is refundable again: the whole rest can be refunded.
    r = client.post(
        f"/api/sales/orders/{oid}/refunds",
        json={"reason": "rest", "isFullRefund": True},
        headers=boss.auth,
    )
    assert r.status_code in (200, 201), r.text
    assert Decimal(str(r.json()["amount"]["value"])) == Decimal(str(order["total"]["value"])) - 100


def test_a_charge_found_for_an_order_cancelled_meanwhile_is_paid_back(make_client) -> None:
    """The payment started over two minutes ago (its lease ran out), the buyer cancelled,
    and only then the rule finds the charge: it records the money and refunds it through the
    gateway at once (a sweep while the gateway is down records nothing). A second sweep finds
    nothing left to do. The payment-checks read model
    holds exactly what is in flight, and rebuilds to the same rows."""
    client = make_client(payment_recovery_after="PT1H")  # the app's own rule stays away
    _, buyer, (order,) = _market(client)
    oid = order["orderId"]
    container = container_of(client)
    real_clock = container.bus.clock
    container.bus.clock = lambda: real_clock() - timedelta(minutes=3)
    try:
        payment_id = _die_mid_payment(client, buyer, order, GOOD)
    finally:
        container.bus.clock = real_clock
    r = client.put(f"/api/sales/orders/{oid}/cancel", json={"reason": "late"}, headers=buyer.auth)
    assert r.status_code == 200, r.text
    assert container.card_gateway is not None
    rule = PaymentRecovery(
        container.rules.transaction, container.bus, container.card_gateway, timedelta(minutes=1)
    )
    container.catch_up()
    assert _in_flight(client) == {("payment", payment_id, oid)}
    assert_rebuilds_equal(client, "payment-checks")

    class Down(SandboxGateway):
        def lookup_charge(self, payment_id: str) -> Lookup:
            raise ConnectionError("the acquirer is down")

    down = PaymentRecovery(container.rules.transaction, container.bus, Down(), timedelta(minutes=1))
    assert (down.sweep().errors, down.sweep().settled) == (1, 0)  # nothing recorded; next sweep
    report = rule.sweep()
    assert (report.completed, report.errors) == (1, 0)
    events = _timeline(client, buyer, oid)
    tail = [(e["type"], e["actor"]) for e in events][-3:]
    assert tail == [
        ("PaymentCompleted", "system:payment-recovery"),
        ("RefundRequested", "system:payment-recovery"),
        ("Refunded", "system:payment-recovery"),
    ]
    assert events[-3]["data"]["paymentId"] == payment_id
    refund_id = events[-1]["data"]["refundId"]
    assert container.card_gateway.lookup_refund(refund_id).found
    assert _order(client, buyer, oid)["paymentStatus"] == "REFUNDED"
    container.catch_up()
    assert _in_flight(client) == set()
    assert_rebuilds_equal(client, "payment-checks")
    assert rule.sweep().settled == 0
