"""Timed rules: when each deadline is due, which command it sends, and the sweep.

The deadlines themselves are a projection (projections/deadlines.py). Firing one sends an
ordinary command with actor ``system:<rule>``; the order decides, so a late, duplicate or
stale firing is a no-op and nothing here needs to be exactly-once. What this module adds is
bookkeeping that keeps the sweep cheap and fair: ``rule_attempts`` remembers, per deadline
revision, that a firing was dispatched (a lease, so two sweeps do not both dispatch it and a
job lost with its worker is dispatched again later) or that the order said no (a back-off, so
a deadline the order keeps refusing is not retried at every sweep forever).

Everything here works on the database and the command bus only: the RQ jobs (workers/jobs.py)
and the embedded thread (workers/embedded.py) are two ways of calling it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError as StoreIntegrityError
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from commands.application import EventMeta
from commands.bus import CommandBus
from commands.loyalty import ReviewLevel
from commands.orders import AutoDeliverOrder, ExpireOrder, SendShipReminder
from commands.sqltypes import Timestamp, utcnow
from projections.deadlines import (
    AUTO_DELIVER,
    FIXED_DUE,
    LEVEL_REVIEW,
    RULES,
    SHIP_REMINDER,
    UNPAID_EXPIRY,
    Deadline,
)
from projections.deadlines import live as deadline_tables

log = logging.getLogger(__name__)

#: Who a rule's events are recorded as.
ACTORS = {
    UNPAID_EXPIRY: "system:unpaid-expiry",
    SHIP_REMINDER: "system:ship-reminder",
    AUTO_DELIVER: "system:auto-delivery",
    LEVEL_REVIEW: "system:level-review",
}
#: A deadline the order keeps refusing is retried at most this rarely.
MAX_BACKOFF = timedelta(hours=1)

metadata = MetaData()
rule_attempts = Table(
    "rule_attempts",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("rule", String(20), primary_key=True),
    Column("revision", BigInteger, nullable=False),  # the deadline row this is about
    Column("attempts", Integer, nullable=False),
    Column("retry_at", Timestamp, nullable=False),  # the sweep leaves it alone until then
    Column("outcome", String(20), nullable=False),  # dispatched, noop, error
)


def delays_for(
    ship_reminder_after: timedelta, auto_deliver_after: timedelta
) -> dict[str, timedelta]:
    """Each rule's delay after its deadline's ``starts_at`` (expiry and level reviews carry
    their own due time)."""
    return {
        UNPAID_EXPIRY: timedelta(0),
        LEVEL_REVIEW: timedelta(0),
        SHIP_REMINDER: ship_reminder_after,
        AUTO_DELIVER: auto_deliver_after,
    }


def due_of(deadline: Deadline, delays: Mapping[str, timedelta]) -> datetime:
    """When ``deadline`` is due (naive UTC): the due time recorded with it, or (deadlines
    from before timers recorded theirs) its start plus the delay configured now."""
    due = (
        deadline.due_at
        if deadline.due_at is not None
        else deadline.starts_at + delays[deadline.rule]
    )
    if deadline.hold_until is not None and deadline.hold_until > due:
        return deadline.hold_until
    return due


def command_for(rule: str, order_id: UUID, delays: Mapping[str, timedelta]) -> Any:
    if rule == UNPAID_EXPIRY:
        return ExpireOrder(order_id)
    if rule == SHIP_REMINDER:
        return SendShipReminder(order_id, delays[rule])
    if rule == AUTO_DELIVER:
        return AutoDeliverOrder(order_id, delays[rule])
    if rule == LEVEL_REVIEW:  # the deadline's key is a points account, not an order
        return ReviewLevel(order_id)
    raise ValueError(f"unknown rule {rule!r}")


@dataclass(frozen=True)
class Fired:
    """What firing a deadline did: ``applied`` (the order changed), ``noop`` (the order said
    no: paid, confirmed, already done...), ``gone`` (no such deadline any more) or ``early``
    (not due yet, see ``due``)."""

    outcome: str
    due: datetime | None = None


@dataclass
class SweepReport:
    fired: int = 0  # due deadlines dispatched now
    scheduled: int = 0  # deadlines coming due within the horizon, handed to the scheduler
    next_due: datetime | None = None  # the earliest deadline within the horizon not yet due
    full: bool = False  # the batch limit was reached: sweep again at once


class TimedRules:
    def __init__(
        self,
        transaction: Callable[[bool], Any],
        bus: CommandBus,
        delays: Mapping[str, timedelta],
        retry_after: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # The event store's own transactions (they also serialize in-memory SQLite).
        self.transaction = transaction
        self.bus = bus
        self.delays = dict(delays)
        self.retry_after = retry_after
        self.clock = clock
        #: Called with (rule, seconds late) for every firing the order applied (GET /metrics).
        self.on_applied: Callable[[str, float], None] | None = None

    def due_of(self, deadline: Deadline) -> datetime:
        return due_of(deadline, self.delays)

    # --- reading deadlines -------------------------------------------------------------------
    def get(self, order_id: str, rule: str) -> Deadline | None:
        d = deadline_tables["deadlines"]
        with self.transaction(False) as session:
            row = session.execute(
                select(d).where(d.c.order_id == order_id, d.c.rule == rule)
            ).first()
        return Deadline.from_row(row) if row is not None else None

    def pending(
        self, now: datetime, horizon: datetime, limit: int = 1000
    ) -> list[tuple[Deadline, datetime]]:
        """Deadlines due by ``horizon`` that no lease or back-off holds at ``now``, soonest
        first (at most ``limit`` per rule)."""
        d, a = deadline_tables["deadlines"], rule_attempts
        joined = d.outerjoin(
            a,
            and_(a.c.order_id == d.c.order_id, a.c.rule == d.c.rule, a.c.revision == d.c.revision),
        )
        free = or_(a.c.retry_at.is_(None), a.c.retry_at <= now)
        found: list[tuple[Deadline, datetime]] = []
        with self.transaction(False) as session:
            for rule in RULES:
                if rule in FIXED_DUE:  # due at a moment the events fixed
                    cond = and_(
                        d.c.due_at <= horizon,
                        or_(d.c.hold_until.is_(None), d.c.hold_until <= horizon),
                    )
                    order = d.c.due_at
                else:  # due when the order recorded (DeadlineSet), else a delay after start
                    cond = or_(
                        d.c.due_at <= horizon,
                        and_(d.c.due_at.is_(None), d.c.starts_at <= horizon - self.delays[rule]),
                    )
                    order = d.c.starts_at
                rows = session.execute(
                    select(d)
                    .select_from(joined)
                    .where(d.c.rule == rule, cond, free)
                    .order_by(order)
                    .limit(limit)
                ).all()
                found.extend((dl, self.due_of(dl)) for dl in map(Deadline.from_row, rows))
        found.sort(key=lambda pair: pair[1])
        return found

    # --- firing ------------------------------------------------------------------------------
    def fire(self, order_id: str, rule: str) -> Fired:
        """Send the rule's command if the deadline exists and is due; the order decides."""
        deadline = self.get(order_id, rule)
        if deadline is None:
            return Fired("gone")
        now = self.clock()
        due = self.due_of(deadline)
        if due > now:
            return Fired("early", due)
        meta = EventMeta(ACTORS[rule], f"deadline:{rule}:{order_id}")
        try:
            outcome = self.bus.execute(command_for(rule, UUID(order_id), self.delays), meta)
        except Exception:
            self._back_off(deadline, "error")
            raise
        if outcome.result:
            if self.on_applied is not None:
                self.on_applied(rule, max(0.0, (now - due).total_seconds()))
            log.info(
                "timed rule applied",
                extra={
                    "rule": rule,
                    "orderId": order_id,
                    "lateSeconds": round((now - due).total_seconds(), 3),
                },
            )
            return Fired("applied", due)
        # Usually the order moved on and the projection has not caught up yet; if the row
        # stays, the back-off keeps the sweep from asking again and again.
        self._back_off(deadline, "noop")
        return Fired("noop", due)

    def claim(self, deadline: Deadline, now: datetime) -> bool:
        """Take the lease on dispatching ``deadline`` (False: another sweep has it, or a
        back-off holds it). A lost job is dispatched again once the lease ends."""
        a = rule_attempts
        retry_at = now + self.retry_after
        key = (a.c.order_id == deadline.order_id, a.c.rule == deadline.rule)
        with self.transaction(True) as session:
            # attempts before revision: MySQL evaluates SET assignments left to right.
            taken = session.execute(
                update(a)
                .where(*key, or_(a.c.revision != deadline.revision, a.c.retry_at <= now))
                .ordered_values(
                    (
                        a.c.attempts,
                        case((a.c.revision == deadline.revision, a.c.attempts + 1), else_=1),
                    ),
                    (a.c.revision, deadline.revision),
                    (a.c.retry_at, retry_at),
                    (a.c.outcome, "dispatched"),
                )
            ).rowcount
        if taken:
            return True
        return self._insert_attempt(deadline, retry_at, "dispatched")

    def _insert_attempt(self, deadline: Deadline, retry_at: datetime, outcome: str) -> bool:
        try:
            with self.transaction(True) as session:
                session.execute(
                    insert(rule_attempts).values(
                        order_id=deadline.order_id,
                        rule=deadline.rule,
                        revision=deadline.revision,
                        attempts=1,
                        retry_at=retry_at,
                        outcome=outcome,
                    )
                )
        except (IntegrityError, StoreIntegrityError):
            return False
        return True

    def _back_off(self, deadline: Deadline, outcome: str) -> None:
        """The order refused (or the command failed): wait longer before the next try."""
        a = rule_attempts
        key = (a.c.order_id == deadline.order_id, a.c.rule == deadline.rule)
        try:
            with self.transaction(True) as session:
                row = session.execute(select(a).where(*key)).first()
                attempts = (
                    row.attempts if row is not None and row.revision == deadline.revision else 1
                )
                retry_at = self.clock() + min(MAX_BACKOFF, self.retry_after * 2 ** (attempts - 1))
                if row is not None:
                    session.execute(
                        update(a)
                        .where(*key)
                        .values(
                            revision=deadline.revision,
                            attempts=attempts,
                            retry_at=retry_at,
                            outcome=outcome,
                        )
                    )
            if row is None:
                self._insert_attempt(deadline, retry_at, outcome)
        except Exception:
            log.warning("could not record a timed-rule attempt", exc_info=True)

    # --- the sweep ---------------------------------------------------------------------------
    def sweep(
        self,
        now: datetime,
        horizon: datetime,
        fire_now: Callable[[Deadline], None],
        fire_at: Callable[[Deadline, datetime], None] | None = None,
        limit: int = 1000,
    ) -> SweepReport:
        """Dispatch every due deadline once (``fire_now``, after taking its lease) and hand
        those coming due by ``horizon`` to ``fire_at`` (RQ's ``enqueue_at``)."""
        report = SweepReport()
        pending = self.pending(now, horizon, limit)
        # More may be due than one read returned; the ones claimed now are skipped next time.
        report.full = sum(1 for _, due in pending if due <= now) >= limit
        for deadline, due in pending:
            if due <= now:
                if self.claim(deadline, now):
                    fire_now(deadline)
                    report.fired += 1
            else:
                if fire_at is not None:
                    fire_at(deadline, due)
                    report.scheduled += 1
                if report.next_due is None or due < report.next_due:
                    report.next_due = due
        return report

    def forget_finished(self) -> int:
        """Drop the bookkeeping of deadlines that no longer exist."""
        a, d = rule_attempts, deadline_tables["deadlines"]
        with self.transaction(True) as session:
            return int(
                session.execute(
                    delete(a).where(
                        ~exists().where(d.c.order_id == a.c.order_id, d.c.rule == a.c.rule)
                    )
                ).rowcount
            )
