"""How many events of each type the log holds (from the ``event_stats`` projection)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from projections.event_stats import live

_stats = live["stats"]


@dataclass(frozen=True)
class EventTypeCount:
    event_type: str
    count: int
    last_position: int
    last_at: datetime | None


def event_counts(engine: Engine) -> list[EventTypeCount]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                _stats.c.event_type, _stats.c.count, _stats.c.last_position, _stats.c.last_at
            ).order_by(_stats.c.count.desc(), _stats.c.event_type)
        )
        return [EventTypeCount(t, n, p, at) for t, n, p, at in rows]
