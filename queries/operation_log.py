"""The operation log, filtered and paged by position (keyset: ``after`` a position, never an
offset), from the ``operation_log`` projection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from projections.base import naive_utc
from projections.operation_log import live

_log = live["log"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class LogFilter:
    actor: str | None = None
    aggregate_id: str | None = None
    event_type: str | None = None
    aggregate_type: str | None = None
    correlation_id: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


def operation_log(
    engine: Engine, criteria: LogFilter, after: int = 0, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """Up to ``limit`` events after position ``after``, oldest first; ``next`` is the cursor
    for the following page (None when this page is the last one so far)."""
    conditions = [_log.c.position > after]
    for column, value in (
        (_log.c.actor, criteria.actor),
        (_log.c.aggregate_id, criteria.aggregate_id),
        (_log.c.event_type, criteria.event_type),
        (_log.c.aggregate_type, criteria.aggregate_type),
        (_log.c.correlation_id, criteria.correlation_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if criteria.start is not None:
        conditions.append(_log.c.at >= naive_utc(criteria.start))
    if criteria.end is not None:
        conditions.append(_log.c.at < naive_utc(criteria.end))
    statement = select(_log).where(*conditions).order_by(_log.c.position).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "events": [_event(row) for row in rows],
        "next": rows[-1].position if more else None,
    }


def _event(row: Any) -> dict[str, Any]:
    return {
        "position": row.position,
        "at": None if row.at is None else row.at.replace(tzinfo=UTC).isoformat(),
        "type": row.event_type,
        "aggregateType": row.aggregate_type,
        "aggregateId": row.aggregate_id,
        "version": row.version,
        "actor": row.actor,
        "correlationId": row.correlation_id,
    }
