"""Event statistics: how many events of each type, first/last position and time.

An operator's view of the log (and the platform's own smoke test of the projection engine).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.orm import Session

from projections.base import Envelope, Projection


class EventStats(Projection):
    name = "event_stats"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {
            "stats": Table(
                f"rm_event_stats{suffix}",
                metadata,
                Column("topic", String(255), primary_key=True),
                Column("event_type", String(100), nullable=False, index=True),
                Column("count", BigInteger, nullable=False),
                Column("first_position", BigInteger, nullable=False),
                Column("last_position", BigInteger, nullable=False),
                Column("last_at", DateTime),
            )
        }

    def wants(self, topic: str) -> bool:
        return True

    def topics(self) -> tuple[str, ...]:
        return ()  # every event

    def apply_many(self, session: Session, envelopes: list[Envelope]) -> None:
        # Fold the batch per topic first: one read and one write per topic, not per event.
        folded: dict[str, dict[str, Any]] = {}
        for env in envelopes:
            at: Any = env.state.get("timestamp")
            at = at.replace(tzinfo=None) if at is not None and at.tzinfo else at
            entry = folded.setdefault(env.topic, {"count": 0, "first": env.position})
            entry.update(count=entry["count"] + 1, last=env.position, at=at)
        table = self.tables["stats"]
        existing = {
            row.topic
            for row in session.execute(select(table.c.topic).where(table.c.topic.in_(list(folded))))
        }
        for topic, entry in folded.items():
            if topic in existing:
                session.execute(
                    update(table)
                    .where(table.c.topic == topic)
                    .values(
                        count=table.c.count + entry["count"],
                        last_position=entry["last"],
                        last_at=entry["at"],
                    )
                )
            else:
                session.execute(
                    insert(table).values(
                        topic=topic,
                        event_type=topic.rsplit(":", 1)[-1][-100:],
                        count=entry["count"],
                        first_position=entry["first"],
                        last_position=entry["last"],
                        last_at=entry["at"],
                    )
                )

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])


live = EventStats.live_tables()
