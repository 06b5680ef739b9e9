"""Customer records read model: admins' tags (the user list filters on them) and notes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text, delete, insert
from sqlalchemy.orm import Session

from aggregates.customers import CustomerRecord
from projections.base import Envelope, Projection, Timestamp, handles, naive_utc


class Customers(Projection):
    name = "customers"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        tags = Table(
            f"rm_customer_tags{suffix}",
            metadata,
            Column("user_id", String(36), primary_key=True),
            # casefolded: the filter ?tag=vip finds VIP
            Column("tag_key", String(120), primary_key=True),
            Column("tag", String(120), nullable=False),
            Column("position", BigInteger, nullable=False),
        )
        Index(None, tags.c.tag_key, tags.c.user_id)
        notes = Table(
            f"rm_customer_notes{suffix}",
            metadata,
            Column("note_id", String(36), primary_key=True),
            Column("user_id", String(36), nullable=False),
            Column("text", Text, nullable=False),
            Column("author_id", String(36), nullable=False),
            Column("created_at", Timestamp, nullable=False),
            Column("position", BigInteger, nullable=False),
        )
        Index(None, notes.c.user_id, notes.c.position)
        return {"tags": tags, "notes": notes}

    @handles(CustomerRecord.Tagged)
    def _tagged(self, session: Session, env: Envelope) -> None:
        session.execute(
            insert(self.tables["tags"]).values(
                user_id=env.event.user_id,
                tag_key=env.event.tag.casefold(),
                tag=env.event.tag,
                position=env.position,
            )
        )

    @handles(CustomerRecord.Untagged)
    def _untagged(self, session: Session, env: Envelope) -> None:
        t = self.tables["tags"]
        session.execute(
            delete(t).where(
                t.c.user_id == env.event.user_id, t.c.tag_key == env.event.tag.casefold()
            )
        )

    @handles(CustomerRecord.NoteAdded)
    def _note(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["notes"]).values(
                note_id=e.note_id,
                user_id=env.event.user_id,
                text=e.text,
                author_id=e.author_id,
                created_at=naive_utc(e.at),
                position=env.position,
            )
        )


live = Customers.live_tables()
