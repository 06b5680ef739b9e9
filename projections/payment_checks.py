"""Card payments and refunds in flight: what the payment-recovery rule may have to settle.

A card payment is two commands around the gateway call (``PaymentStarted``, then
``PaymentCompleted`` or ``PaymentFailed``), and a card refund likewise (``RefundRequested``,
then ``Refunded`` or ``RefundFailed``). A row lives here from the first event to the second,
with what the rule needs to record the outcome through the normal command (method, amount,
card's public info). An API process that dies between the two leaves its row behind; the rule
(workers/payment_recovery.py) asks the gateway what happened once a row is old enough.

Rows depend on the events only (``started_at`` is the event's time), so a rebuild gives the
same table. A refund settled in the same transaction that held it (money that did not come by
card) is inserted and deleted within one batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, MetaData, String, Table, Text, delete, insert
from sqlalchemy.orm import Session

from aggregates.orders import Order
from projections.base import Envelope, Projection, Timestamp, handles, naive_utc

PAYMENT = "payment"
REFUND = "refund"


@dataclass(frozen=True)
class InFlight:
    """One card payment or refund that has started and has no recorded outcome yet."""

    kind: str  # payment or refund
    ref_id: str  # our payment id or refund id
    order_id: str
    started_at: datetime  # naive UTC
    method: str | None  # payments: CREDIT_CARD or DEBIT_CARD
    amount: Decimal
    card: dict[str, Any] | None  # payments: brand, last 4, expiry (never the number)

    @classmethod
    def from_row(cls, row: Any) -> InFlight:
        return cls(
            row.kind,
            row.ref_id,
            row.order_id,
            row.started_at,
            row.method,
            Decimal(row.amount),
            None if row.card is None else dict(json.loads(row.card)),
        )


class PaymentChecks(Projection):
    name = "payment-checks"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        table = Table(
            f"rm_payment_checks{suffix}",
            metadata,
            Column("kind", String(10), primary_key=True),
            Column("ref_id", String(64), primary_key=True),
            Column("order_id", String(36), nullable=False),
            Column("started_at", Timestamp, nullable=False),
            Column("method", String(20)),
            Column("amount", String(40), nullable=False),
            Column("card", Text),
        )
        Index(None, table.c.started_at)
        return {"in_flight": table}

    def _insert(self, session: Session, env: Envelope, kind: str, ref_id: str, **row: Any) -> None:
        t = self.tables["in_flight"]
        # A replayed batch (or a rebuild over a half-built table) must not trip the key.
        session.execute(delete(t).where(t.c.kind == kind, t.c.ref_id == ref_id))
        session.execute(
            insert(t).values(kind=kind, ref_id=ref_id, order_id=str(env.originator_id), **row)
        )

    def _remove(self, session: Session, kind: str, ref_id: str) -> None:
        t = self.tables["in_flight"]
        session.execute(delete(t).where(t.c.kind == kind, t.c.ref_id == ref_id))

    @handles(Order.PaymentStarted)
    def _payment_started(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._insert(
            session,
            env,
            PAYMENT,
            e.payment_id,
            started_at=naive_utc(e.at),
            method=e.method,
            amount=str(e.amount),
            card=None if e.card is None else json.dumps(e.card, ensure_ascii=False),
        )

    @handles(Order.PaymentCompleted, Order.PaymentFailed)
    def _payment_ended(self, session: Session, env: Envelope) -> None:
        self._remove(session, PAYMENT, env.event.payment_id)

    @handles(Order.RefundRequested)
    def _refund_requested(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._insert(
            session,
            env,
            REFUND,
            e.refund_id,
            started_at=naive_utc(e.at),
            method=None,
            amount=str(e.amount),
            card=None,
        )

    @handles(Order.Refunded, Order.RefundFailed)
    def _refund_ended(self, session: Session, env: Envelope) -> None:
        self._remove(session, REFUND, env.event.refund_id)
