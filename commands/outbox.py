"""The durable mail outbox: messages are written in the command's own transaction.

A command that sends mail (a verification link, later order notices) adds an
:class:`OutgoingMail` to its unit of work; the bus inserts it in the same transaction as the
events, so a mail exists exactly when the change that caused it was committed. Delivery is a
separate, retried step (workers/mail.py).
"""

from __future__ import annotations

from dataclasses import dataclass

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
)
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.orm import Session

from commands.sqltypes import Timestamp, utcnow

metadata = MetaData()
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("to_addr", String(320), nullable=False),
    Column("subject", String(255), nullable=False),
    # Cleared once sent: a body may hold a live one-time link.
    Column("body", Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")),
    Column("created_at", Timestamp, nullable=False),
    Column("next_attempt_at", Timestamp, nullable=False, index=True),
    Column("lease_until", Timestamp),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_at", Timestamp),
    Column("failed_at", Timestamp),
    Column("last_error", String(500)),
)
# The unsent part (the backlog GET /metrics reports) without scanning every message ever sent.
Index("ix_mail_outbox_unsent", mail_outbox.c.sent_at, mail_outbox.c.failed_at)


@dataclass(frozen=True)
class OutgoingMail:
    message_id: str
    to: str
    subject: str
    body: str


def enqueue(session: Session, mails: list[OutgoingMail]) -> None:
    now = utcnow()
    session.execute(
        insert(mail_outbox),
        [
            {
                "message_id": m.message_id,
                "to_addr": m.to,
                "subject": m.subject,
                "body": m.body,
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            }
            for m in mails
        ],
    )
