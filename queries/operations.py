"""What an operator watches, read from the database at scrape time (GET /metrics).

Every query here is small and bounded by an index or by a table that stays short: the
projections' tracking rows (one per projection), the pending deadlines (one row per running
timer, read per rule through the (rule, due_at) and (rule, starts_at) indexes) and the unsent
part of the mail outbox (through its (sent_at, failed_at) index).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from commands.outbox import mail_outbox
from projections.deadlines import FIXED_DUE, RULES
from projections.deadlines import live as deadline_tables
from projections.tracking import projection_tracking


@dataclass(frozen=True)
class DeadlineStats:
    pending: int  # running timers of this rule
    overdue: int  # due now or earlier and not yet fired
    oldest_overdue_seconds: float  # how late the most overdue one is (0: none is)


@dataclass(frozen=True)
class OutboxStats:
    backlog: int  # messages not sent yet that will still be tried
    oldest_seconds: float  # age of the oldest of them (0: none)
    failed: int  # messages given up on


def tracked_positions(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(projection_tracking.c.name, projection_tracking.c.position))
    return {str(name): int(position) for name, position in rows}


def deadline_stats(
    conn: Connection, now: datetime, delays: Mapping[str, timedelta]
) -> dict[str, DeadlineStats]:
    """Per rule; ``now`` naive UTC like the table, ``delays`` each rule's delay after
    ``starts_at`` for timers that did not record their own due time."""
    d = deadline_tables["deadlines"]
    counts = {
        str(r): int(n) for r, n in conn.execute(select(d.c.rule, func.count()).group_by(d.c.rule))
    }
    stats: dict[str, DeadlineStats] = {}
    for rule in RULES:
        oldest: datetime | None = None
        overdue = 0
        if rule in FIXED_DUE:
            # Due at due_at, or later while a payment attempt holds it (hold_until).
            due = case(
                (d.c.hold_until.is_not(None) & (d.c.hold_until > d.c.due_at), d.c.hold_until),
                else_=d.c.due_at,
            )
            row = conn.execute(
                select(func.count(), func.min(due)).where(
                    d.c.rule == rule,
                    d.c.due_at <= now,
                    d.c.hold_until.is_(None) | (d.c.hold_until <= now),
                )
            ).one()
            overdue, oldest = int(row[0]), row[1]
        else:
            recorded = conn.execute(
                select(func.count(), func.min(d.c.due_at)).where(
                    d.c.rule == rule, d.c.due_at <= now
                )
            ).one()
            delay = delays.get(rule, timedelta(0))
            derived = conn.execute(
                select(func.count(), func.min(d.c.starts_at)).where(
                    d.c.rule == rule, d.c.due_at.is_(None), d.c.starts_at <= now - delay
                )
            ).one()
            overdue = int(recorded[0]) + int(derived[0])
            candidates = [recorded[1], None if derived[1] is None else derived[1] + delay]
            present = [c for c in candidates if c is not None]
            oldest = min(present) if present else None
        late = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        stats[rule] = DeadlineStats(counts.get(rule, 0), overdue, late)
    return stats


def outbox_stats(conn: Connection, now: datetime) -> OutboxStats:
    t = mail_outbox
    row = conn.execute(
        select(func.count(), func.min(t.c.created_at)).where(
            t.c.sent_at.is_(None), t.c.failed_at.is_(None)
        )
    ).one()
    failed = conn.execute(
        select(func.count()).where(t.c.sent_at.is_(None), t.c.failed_at.is_not(None))
    ).scalar_one()
    oldest = row[1]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return OutboxStats(int(row[0]), age, int(failed))
