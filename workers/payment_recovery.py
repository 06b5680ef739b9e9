"""The payment-recovery rule: card payments and refunds never left in limbo.

A card payment records ``PaymentStarted``, asks the gateway, then records the answer. If the
API process dies in between (kill -9, OOM, a deploy), nobody records the answer: the buyer sees
"payment running" until the order expires, although the card may have been charged. Likewise a
card refund held on the order (``RefundRequested``) whose gateway call never came back.

Every sweep, this rule takes each payment or refund that has been in flight for longer than
SHOPLEDGER_PAYMENT_RECOVERY_AFTER (projections/payment_checks.py), asks the gateway what became
of it by our payment or refund id, and records the answer through the ordinary commands
(``FinishCardPayment``, ``SettleRefund``) with actor ``system:payment-recovery``:

- charged: ``PaymentCompleted`` (an order cancelled meanwhile gets the money back, as when a
  late answer arrives on the normal path); declined: ``PaymentFailed`` with its decline code;
- never asked (no entry in the gateway's books that long after the start): ``PaymentFailed``
  with ``not_charged``, and the order is payable again;
- a held refund the gateway paid back: ``Refunded``; refused or never asked: ``RefundFailed``
  (the amount is refundable again).

The order decides by payment and refund id: the original request answering late, two sweeps
at once or a projection that has not caught up yet record nothing twice. The sweep runs from
the embedded rules' thread (no Redis) or inside the RQ sweep job (workers/jobs.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Table, select

from commands.application import EventMeta
from commands.bus import CommandBus
from commands.orders import PendingRefund
from commands.payments import FinishCardPayment, SettleRefund
from commands.sqltypes import utcnow
from gateways.sandbox import CardGateway
from projections.payment_checks import PAYMENT, InFlight, PaymentChecks
from workers.loop import WakeableLoop

log = logging.getLogger(__name__)

ACTOR = "system:payment-recovery"
#: The decline code of a payment the gateway never heard of.
NOT_CHARGED = "not_charged"
#: The failure of a held refund the gateway never heard of.
NOT_REFUNDED = "not_refunded"

_live: dict[str, Table] = PaymentChecks.live_tables()


@dataclass
class RecoveryReport:
    completed: int = 0  # payments found charged
    failed: int = 0  # payments found declined or never charged
    refunded: int = 0  # held refunds found paid back
    refund_failed: int = 0  # held refunds found refused or never asked
    unchanged: int = 0  # settled meanwhile (by the request, or an earlier sweep)
    errors: int = 0  # the gateway or the command failed: tried again next sweep

    @property
    def settled(self) -> int:
        return self.completed + self.failed + self.refunded + self.refund_failed


class PaymentRecovery:
    def __init__(
        self,
        transaction: Callable[[bool], Any],
        bus: CommandBus,
        gateway: CardGateway | None,
        after: timedelta,
        clock: Callable[[], datetime] = utcnow,
        limit: int = 200,
    ) -> None:
        self.transaction = transaction
        self.bus = bus
        self.gateway = gateway
        self.after = after
        self.clock = clock
        self.limit = limit

    def stalled(self, now: datetime) -> list[InFlight]:
        """Payments and refunds in flight since before ``now - after``, oldest first."""
        t = _live["in_flight"]
        with self.transaction(False) as session:
            rows = session.execute(
                select(t)
                .where(t.c.started_at <= now - self.after)
                .order_by(t.c.started_at)
                .limit(self.limit)
            ).all()
        return [InFlight.from_row(r) for r in rows]

    def sweep(self) -> RecoveryReport:
        """Settle every stalled payment and refund (nothing without a card gateway)."""
        report = RecoveryReport()
        if self.gateway is None:
            return report
        for item in self.stalled(self.clock()):
            try:
                outcome = (
                    self._payment(item, self.gateway)
                    if item.kind == PAYMENT
                    else self._refund(item, self.gateway)
                )
            except Exception:
                log.exception(
                    "payment recovery failed",
                    extra={"kind": item.kind, "orderId": item.order_id, "refId": item.ref_id},
                )
                report.errors += 1
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome != "unchanged":
                log.info(
                    "payment recovered",
                    extra={
                        "kind": item.kind,
                        "orderId": item.order_id,
                        "refId": item.ref_id,
                        "outcome": outcome,
                        "stalledSeconds": round((self.clock() - item.started_at).total_seconds()),
                    },
                )
        return report

    def _meta(self, item: InFlight) -> EventMeta:
        return EventMeta(ACTOR, f"payment-recovery:{item.kind}:{item.ref_id}")

    def _payment(self, item: InFlight, gateway: CardGateway) -> str:
        found = gateway.lookup_charge(item.ref_id)
        approved = found.found and found.approved
        if not found.found:
            code: str | None = NOT_CHARGED
        else:
            code = None if approved else found.decline_code or "declined"
        done = self.bus.execute(
            FinishCardPayment(
                UUID(item.order_id),
                item.ref_id,
                item.method or "CREDIT_CARD",
                item.amount,
                item.card or {},
                approved,
                found.transaction_id or "",
                code,
            ),
            self._meta(item),
        )
        if done.position is None:
            return "unchanged"
        if done.result.refund is not None:  # paid for an order cancelled meanwhile: pay it back
            self._pay_back(done.result.refund, gateway, item)
        if done.result.excess is not None:  # more than is due now (units cancelled meanwhile)
            self._pay_back(done.result.excess, gateway, item)
        return "completed" if approved else "failed"

    def _pay_back(self, pending: PendingRefund, gateway: CardGateway, item: InFlight) -> None:
        try:
            transaction_id: str | None = gateway.refund(
                pending.payment_transaction_id, pending.refund_id, pending.amount
            )
            failure = None
        except Exception as exc:  # noqa: BLE001 - recorded as a failed refund
            transaction_id, failure = None, type(exc).__name__
        self.bus.execute(
            SettleRefund(pending.order_id, pending.refund_id, transaction_id, failure),
            self._meta(item),
        )

    def _refund(self, item: InFlight, gateway: CardGateway) -> str:
        found = gateway.lookup_refund(item.ref_id)
        paid_back: str | None = None
        if not found.found:
            failure: str | None = NOT_REFUNDED
        elif found.approved and found.transaction_id:
            paid_back, failure = found.transaction_id, None
        else:
            failure = found.decline_code or "declined"
        done = self.bus.execute(
            SettleRefund(UUID(item.order_id), item.ref_id, paid_back, failure), self._meta(item)
        )
        if done.position is None:
            return "unchanged"
        return "refunded" if paid_back else "refund_failed"


class PaymentRecoveryThread(WakeableLoop):
    """Embedded mode: the sweep from a thread of the API process, every ``tick``."""

    name = "payment-recovery"

    def __init__(self, recovery: PaymentRecovery, tick: timedelta) -> None:
        super().__init__()
        self.recovery = recovery
        self.tick = tick

    def run_once(self) -> float:
        self.recovery.sweep()
        return self.tick.total_seconds()


def recovery_tick(after: timedelta, sweep_interval: timedelta) -> timedelta:
    """How often the embedded thread looks: the sweep interval, or half the rule's delay when
    shorter (so a payment is settled at most about 1.5 times the delay after it started)."""
    return max(timedelta(milliseconds=200), min(sweep_interval, after / 2))
