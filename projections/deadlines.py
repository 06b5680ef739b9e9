"""Deadlines of the timed rules: one row per (order, rule) while that rule's clock runs.

Built from the events that start and stop each rule, so the deadlines are as durable as the
event store (Redis may lose every scheduled job: the sweep re-reads this table) and rebuildable
(event data only, no clock):

- ``unpaid-expiry``: starts when an order is placed with an ``expires_at`` (not COD). Due at
  that moment, which checkout computed from the TTL (``due_at``); not before a payment
  attempt's lease ends while one is in flight (``hold_until``). Stops when a payment
  completes, or the order is cancelled or expired.
- ``ship-reminder``: starts when a payment makes the order PAID, or when a COD order is
  placed (or an order's method becomes COD: then from placement). Due at the ``due_at`` the
  order recorded (``DeadlineSet``, in the command that started it, from the settings of the
  process that handled that command: SHOPLEDGER_SHIP_REMINDER_AFTER after ``starts_at``), so
  every process fires it then and a changed setting applies only to timers started later.
  Orders from before timers carried their due time: the firing process's setting. Stops when
  every item has shipped, the reminder was sent, or the order is cancelled or delivered.
- ``auto-deliver``: starts when the carrier has delivered every shipment; due likewise
  (SHOPLEDGER_AUTO_DELIVER_AFTER). Stops when the order is DELIVERED.
- ``level-review`` (keyed by a loyalty points account, not an order): due at once when points
  are earned or taken back (the spend that sets the level changed), then at the moment the
  last review named (the next counted order leaving the 12-month window); stops when no
  counted order is left in the window.

Firing is the workers' business (workers/rules.py): the aggregate decides, so a deadline that
is fired late, twice, or after the order moved on is a no-op. ``revision`` is the position of
the event that last changed the row; the workers key their retry bookkeeping on it.

After a batch commits, the live projection hands the deadlines it started or moved to
``on_change`` (the scheduler: an RQ ``enqueue_at`` or a nudge of the embedded thread). A
rebuild builds its projection without that hook, so replaying history schedules nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    delete,
    event,
    insert,
    update,
)
from sqlalchemy.orm import Session

from aggregates.loyalty import PointsAccount
from aggregates.orders import AUTO_DELIVER_TIMER, PAYMENT_LEASE, SHIP_REMINDER_TIMER, Order
from projections.base import (
    Envelope,
    Projection,
    Timestamp,
    handles,
    naive_utc,
    rows_changed,
)

UNPAID_EXPIRY = "unpaid-expiry"
SHIP_REMINDER = SHIP_REMINDER_TIMER
AUTO_DELIVER = AUTO_DELIVER_TIMER
LEVEL_REVIEW = "level-review"
RULES = (UNPAID_EXPIRY, SHIP_REMINDER, AUTO_DELIVER, LEVEL_REVIEW)
#: Rules due at a moment the events fixed (``due_at``); the others when the order recorded
#: (``DeadlineSet``), or a setting after ``starts_at`` for orders from before that.
FIXED_DUE = (UNPAID_EXPIRY, LEVEL_REVIEW)


@dataclass(frozen=True)
class Deadline:
    """One pending deadline as stored (timestamps naive UTC)."""

    order_id: str
    rule: str
    starts_at: datetime
    due_at: datetime | None  # fixed by the events; None: starts_at + the rule's delay setting
    hold_until: datetime | None  # not before this (a payment attempt in flight)
    revision: int

    @classmethod
    def from_row(cls, row: Any) -> Deadline:
        return cls(row.order_id, row.rule, row.starts_at, row.due_at, row.hold_until, row.revision)


DeadlineHook = Callable[[list[Deadline]], None]


class Deadlines(Projection):
    name = "deadlines"

    def __init__(self, tables: dict[str, Table], on_change: DeadlineHook | None = None) -> None:
        super().__init__(tables)
        self.on_change = on_change
        self._changed: dict[tuple[str, str], Deadline | None] | None = None

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        deadlines = Table(
            f"rm_deadlines{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("rule", String(20), primary_key=True),
            Column("starts_at", Timestamp, nullable=False),
            Column("due_at", Timestamp),
            Column("hold_until", Timestamp),
            Column("revision", BigInteger, nullable=False),
        )
        Index(None, deadlines.c.rule, deadlines.c.starts_at)
        Index(None, deadlines.c.rule, deadlines.c.due_at)
        return {"deadlines": deadlines}

    # --- batch and post-commit hook ----------------------------------------------------------
    def apply_many(self, session: Session, envelopes: list[Envelope]) -> None:
        self._changed = {}
        try:
            super().apply_many(session, envelopes)
            started = [d for d in self._changed.values() if d is not None]
        finally:
            self._changed = None
        hook = self.on_change
        if started and hook is not None:
            # Never talk to Redis inside the projection's transaction: only once it committed.
            event.listen(session, "after_commit", lambda _s: hook(started), once=True)

    def _start(
        self,
        session: Session,
        env: Envelope,
        rule: str,
        starts_at: datetime,
        due_at: datetime | None = None,
    ) -> None:
        t = self.tables["deadlines"]
        order_id = str(env.originator_id)
        session.execute(delete(t).where(t.c.order_id == order_id, t.c.rule == rule))
        row = Deadline(order_id, rule, naive_utc(starts_at), naive_utc(due_at), None, env.position)  # type: ignore[arg-type]
        session.execute(insert(t).values(**asdict(row)))
        self._note(row)

    def _stop(self, session: Session, env: Envelope, *rules: str) -> None:
        t = self.tables["deadlines"]
        order_id = str(env.originator_id)
        session.execute(delete(t).where(t.c.order_id == order_id, t.c.rule.in_(rules or RULES)))
        if self._changed is not None:
            for rule in rules or RULES:
                self._changed[(order_id, rule)] = None

    def _note(self, row: Deadline) -> None:
        if self._changed is not None:
            self._changed[(row.order_id, row.rule)] = row

    def _hold(self, session: Session, env: Envelope, until: datetime | None) -> None:
        t = self.tables["deadlines"]
        order_id = str(env.originator_id)
        where = (t.c.order_id == order_id, t.c.rule == UNPAID_EXPIRY)
        changed = rows_changed(
            session,
            update(t).where(*where).values(hold_until=naive_utc(until), revision=env.position),
        )
        if changed and self._changed is not None:
            row = session.execute(t.select().where(*where)).one()
            self._note(Deadline.from_row(row))

    # --- unpaid expiry -----------------------------------------------------------------------
    @handles(Order.Placed)
    def _placed(self, session: Session, env: Envelope) -> None:
        e = env.event
        if e.expires_at is not None:
            self._start(session, env, UNPAID_EXPIRY, e.at, e.expires_at)
        if e.payment_method == "COD":  # paid to the carrier: the reminder runs from placement
            self._start(session, env, SHIP_REMINDER, e.at)

    @handles(Order.PaymentMethodChosen)
    def _payment_method_chosen(self, session: Session, env: Envelope) -> None:
        if env.event.method == "COD":  # COD orders do not expire; the reminder clock runs
            self._stop(session, env, UNPAID_EXPIRY)
            self._start(session, env, SHIP_REMINDER, env.event.placed_at)

    @handles(Order.PaymentStarted)
    def _payment_started(self, session: Session, env: Envelope) -> None:
        # Order.expire refuses while a payment attempt holds its lease.
        self._hold(session, env, env.event.at + PAYMENT_LEASE)

    @handles(Order.PaymentFailed)
    def _payment_failed(self, session: Session, env: Envelope) -> None:
        self._hold(session, env, None)

    @handles(Order.PaymentCompleted)
    def _payment_completed(self, session: Session, env: Envelope) -> None:
        self._stop(session, env, UNPAID_EXPIRY)
        # Only the payment that made the order PAID starts the clock (money arriving twice
        # must not restart it).
        if (
            env.event.status == "PAID"
            and getattr(env.event, "previous_status", "CREATED") == "CREATED"
        ):
            self._start(session, env, SHIP_REMINDER, env.event.at)

    @handles(Order.StatusChanged)
    def _status_changed(self, session: Session, env: Envelope) -> None:
        # Orders recorded before payments and shipments were events of their own.
        status = env.event.status
        if status != "CREATED":
            self._stop(session, env, UNPAID_EXPIRY)
        if status == "PAID" and env.event.previous == "CREATED":
            self._start(session, env, SHIP_REMINDER, env.event.at)
        if status in ("SHIPPED", "DELIVERED"):
            self._stop(session, env, SHIP_REMINDER)
        if status == "DELIVERED":
            self._stop(session, env, AUTO_DELIVER)

    # --- ship reminder -----------------------------------------------------------------------
    @handles(Order.ShipmentCreated)
    def _shipment_created(self, session: Session, env: Envelope) -> None:
        if env.event.fully_shipped:
            self._stop(session, env, SHIP_REMINDER)

    @handles(Order.UnitsCancelled)
    def _units_cancelled(self, session: Session, env: Envelope) -> None:
        # Cancelling the last units waiting to ship leaves a shipped order: no reminder, and
        # the buyer's confirmation window starts if the carrier has delivered every parcel.
        if env.event.status == "SHIPPED":
            self._stop(session, env, SHIP_REMINDER)
        if env.event.all_delivered:
            self._start(session, env, AUTO_DELIVER, env.event.at)

    @handles(Order.ShipReminderSent)
    def _reminded(self, session: Session, env: Envelope) -> None:
        self._stop(session, env, SHIP_REMINDER)

    # --- auto-delivery -----------------------------------------------------------------------
    @handles(Order.ShipmentStatusChanged)
    def _shipment_status(self, session: Session, env: Envelope) -> None:
        if env.event.all_delivered:
            self._start(session, env, AUTO_DELIVER, env.event.at)

    # --- due times recorded by the order (timers started since they carry them) ---------------
    @handles(Order.DeadlineSet)
    def _deadline_set(self, session: Session, env: Envelope) -> None:
        e = env.event
        t = self.tables["deadlines"]
        where = (t.c.order_id == str(env.originator_id), t.c.rule == e.timer)
        changed = rows_changed(
            session,
            update(t).where(*where).values(due_at=naive_utc(e.due_at), revision=env.position),
        )
        if changed and self._changed is not None:
            self._note(Deadline.from_row(session.execute(t.select().where(*where)).one()))

    # --- the end of an order -----------------------------------------------------------------
    @handles(Order.Delivered, Order.Cancelled, Order.Expired)
    def _closed(self, session: Session, env: Envelope) -> None:
        self._stop(session, env)

    # --- loyalty levels (keyed by the points account) ----------------------------------------
    @handles(PointsAccount.Earned, PointsAccount.Revoked)
    def _spend_changed(self, session: Session, env: Envelope) -> None:
        self._start(session, env, LEVEL_REVIEW, env.event.at, env.event.at)

    @handles(PointsAccount.LevelReviewed)
    def _level_reviewed(self, session: Session, env: Envelope) -> None:
        due = env.event.next_review_at
        if due is None:
            self._stop(session, env, LEVEL_REVIEW)
        else:
            self._start(session, env, LEVEL_REVIEW, env.event.at, due)


live = Deadlines.live_tables()
