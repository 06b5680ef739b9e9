"""Messages read model: each conversation's messages (oldest first), and per participant the
conversation list entry: the other party, the last message, the unread count (newest first).

``position`` on every message is the event's global position: a live client that reconnects
with ``after=<position>`` is sent the messages it missed from here (api/push.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    update,
)
from sqlalchemy.orm import Session

from aggregates.messages import Conversation
from projections.base import Envelope, Projection, Timestamp, handles, naive_utc


class Messages(Projection):
    name = "messages"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        messages = Table(
            f"rm_messages{suffix}",
            metadata,
            Column("message_id", String(50), primary_key=True),  # <conversation id>-<seq>
            Column("conversation_id", String(36), nullable=False),
            Column("seq", Integer, nullable=False),
            Column("position", BigInteger, nullable=False),
            Column("sender_id", String(36), nullable=False),
            Column("receiver_id", String(36), nullable=False),
            Column("text", Text, nullable=False),
            Column("order_id", String(64)),
            Column("product_id", String(64)),
            Column("created_at", Timestamp, nullable=False),
        )
        Index(None, messages.c.conversation_id, messages.c.seq)
        Index(None, messages.c.receiver_id, messages.c.position)
        Index(None, messages.c.sender_id, messages.c.position)
        members = Table(
            f"rm_conversation_members{suffix}",
            metadata,
            Column("conversation_id", String(36), primary_key=True),
            Column("user_id", String(36), primary_key=True),
            Column("other_id", String(36), nullable=False),
            Column("last_seq", Integer, nullable=False),
            Column("read_seq", Integer, nullable=False),
            Column("last_text", Text),
            Column("last_sender_id", String(36)),
            Column("last_message_at", Timestamp),
            Column("started_at", Timestamp, nullable=False),
        )
        Index(None, members.c.user_id, members.c.last_message_at)
        return {"messages": messages, "members": members}

    def _member(self, session: Session, env: Envelope, user_id: str, **values: Any) -> None:
        m = self.tables["members"]
        session.execute(
            update(m)
            .where(m.c.conversation_id == str(env.originator_id), m.c.user_id == user_id)
            .values(**values)
        )

    @handles(Conversation.Started)
    def _started(self, session: Session, env: Envelope) -> None:
        first, second = env.event.user_ids
        at = naive_utc(env.event.at)
        session.execute(
            insert(self.tables["members"]),
            [
                {
                    "conversation_id": str(env.originator_id),
                    "user_id": user,
                    "other_id": other,
                    "last_seq": 0,
                    "read_seq": 0,
                    "last_text": None,
                    "last_sender_id": None,
                    "last_message_at": None,
                    "started_at": at,
                }
                for user, other in ((first, second), (second, first))
            ],
        )

    @handles(Conversation.Posted)
    def _posted(self, session: Session, env: Envelope) -> None:
        e = env.event
        conversation_id = str(env.originator_id)
        receiver = e.receiver_id
        at = naive_utc(e.at)
        session.execute(
            insert(self.tables["messages"]).values(
                message_id=f"{conversation_id}-{e.seq}",
                conversation_id=conversation_id,
                seq=e.seq,
                position=env.position,
                sender_id=e.sender_id,
                receiver_id=receiver,
                text=e.text,
                order_id=e.order_id,
                product_id=e.product_id,
                created_at=at,
            )
        )
        last = {
            "last_seq": e.seq,
            "last_text": e.text,
            "last_sender_id": e.sender_id,
            "last_message_at": at,
        }
        self._member(session, env, e.sender_id, read_seq=e.seq, **last)
        self._member(session, env, receiver, **last)

    @handles(Conversation.Read)
    def _read(self, session: Session, env: Envelope) -> None:
        self._member(session, env, env.event.user_id, read_seq=env.event.seq)


live = Messages.live_tables()
