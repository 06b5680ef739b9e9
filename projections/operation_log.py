"""The operation log (操作日誌, seeds/000): one row per stored event, who did what and when.

Every event of every aggregate, with its position, time, event type, aggregate type and id,
version, actor and correlation id (the event's ``__meta__``). No payload is copied: the log
can never show a password hash, a token digest or card data, whatever an event holds.
Indexed for its filters (actor, aggregate, type, time), each with the position, so a filtered
page is one index range read from the keyset cursor on (``queries/operation_log.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session

from projections.base import Envelope, Projection, Timestamp, naive_utc

ACTOR_MAX = 100
CORRELATION_MAX = 100
TYPE_MAX = 100
AGGREGATE_TYPE_MAX = 60


def event_type(topic: str) -> str:
    """``aggregates.orders:Order.Placed`` → ``Order.Placed`` (the event class's name)."""
    return topic.rsplit(":", 1)[-1][-TYPE_MAX:]


def aggregate_type(topic: str) -> str:
    """``aggregates.orders:Order.Placed`` → ``Order`` (the class the event belongs to)."""
    qualname = topic.rsplit(":", 1)[-1]
    return qualname.rsplit(".", 1)[0][-AGGREGATE_TYPE_MAX:]


def _text(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


class OperationLog(Projection):
    name = "operation_log"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        log = Table(
            f"rm_operation_log{suffix}",
            metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("at", Timestamp),
            Column("event_type", String(TYPE_MAX), nullable=False),
            Column("aggregate_type", String(AGGREGATE_TYPE_MAX), nullable=False),
            Column("aggregate_id", String(36), nullable=False),
            Column("version", Integer, nullable=False),
            Column("actor", String(ACTOR_MAX)),
            Column("correlation_id", String(CORRELATION_MAX)),
        )
        # Each filter with the position after it: "WHERE f = ? AND position > ? ORDER BY
        # position LIMIT n" reads n index entries, however long the log.
        Index(None, log.c.actor, log.c.position)
        Index(None, log.c.aggregate_id, log.c.position)
        Index(None, log.c.event_type, log.c.position)
        Index(None, log.c.aggregate_type, log.c.position)
        Index(None, log.c.correlation_id, log.c.position)
        Index(None, log.c.at)
        return {"log": log}

    def wants(self, topic: str) -> bool:
        return True

    def topics(self) -> tuple[str, ...]:
        return ()  # every event

    def apply_many(self, session: Session, envelopes: list[Envelope]) -> None:
        rows = [self.row(env) for env in envelopes]
        if rows:
            session.execute(insert(self.tables["log"]), rows)  # one executemany per batch

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    @staticmethod
    def row(env: Envelope) -> dict[str, Any]:
        at: datetime | None = env.state.get("timestamp")
        return {
            "position": env.position,
            "at": naive_utc(at),
            "event_type": event_type(env.topic),
            "aggregate_type": aggregate_type(env.topic),
            "aggregate_id": str(env.originator_id),
            "version": env.originator_version,
            "actor": _text(env.meta.get("actor"), ACTOR_MAX),
            "correlation_id": _text(env.meta.get("correlationId"), CORRELATION_MAX),
        }


live = OperationLog.live_tables()
