"""The signed checkpoints of the event chain, by the position of their event (keyset pages)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, insert
from sqlalchemy.orm import Session

from aggregates.checkpoints import Checkpoint
from projections.base import Envelope, Projection, handles


class AuditCheckpoints(Projection):
    name = "audit_checkpoints"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {
            "checkpoints": Table(
                f"rm_audit_checkpoints{suffix}",
                metadata,
                Column("position", BigInteger, primary_key=True, autoincrement=False),
                Column("signed_position", BigInteger, nullable=False),
                Column("link", String(64), nullable=False),
                Column("signed_at", String(40), nullable=False),
                Column("kid", String(100), nullable=False),
                Column("jws", Text, nullable=False),
            )
        }

    @handles(Checkpoint.Signed)
    def _signed(self, session: Session, env: Envelope) -> None:
        s = env.state
        session.execute(
            insert(self.tables["checkpoints"]).values(
                position=env.position,
                signed_position=int(s["signed_position"]),
                link=str(s["link"]),
                signed_at=str(s["signed_at"]),
                kid=str(s["kid"]),
                jws=str(s["jws"]),
            )
        )


live = AuditCheckpoints.live_tables()
