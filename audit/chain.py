"""The hash chain over the event store: a digest per event and a link per position.

Every stored event gets one row in ``shopledger_event_chain``, written in the append
transaction itself (commands/persistence.py), in position order:

* ``digest`` = SHA-256 over a length-prefixed encoding of (position, originator id, version,
  topic, recorded_at, state bytes). An export can hand out a digest instead of an event, so
  one order's events are provable without revealing anybody else's.
* ``link`` = SHA-256(previous link || position || digest); the first link's previous link is
  32 zero bytes (``GENESIS``).
* ``previous`` is the position of the previous chain row: an id burnt by a rolled-back
  append is a recorded jump, not a silent gap, and a deleted row shows at the next link.
* ``recorded_at`` is the append time in microseconds since the Unix epoch (UTC); the events
  table has no time of its own, and the digest covers it.

This module has no I/O besides the few SQL helpers at the end; it is shared by the recorder,
the verifier, the export and the offline export verifier.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    bindparam,
    insert,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

GENESIS = bytes(32)
#: Domain separation: a digest of ours is never a digest of something else.
DIGEST_TAG = b"shopledger-event-v1\x00"

_U64 = struct.Struct(">Q")
_TWO = struct.Struct(">QQ")
_Hash = LargeBinary(32).with_variant(mysql.VARBINARY(32), "mysql", "mariadb")

chain_metadata = MetaData()
chain = Table(
    "shopledger_event_chain",
    chain_metadata,
    # On SQLite an INTEGER primary key is the rowid itself: one B-tree to write, not two.
    Column(
        "position",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("previous", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Column("digest", _Hash, nullable=False),
    Column("link", _Hash, nullable=False),
)


def originator_bytes(originator_id: object) -> bytes:
    """The aggregate id as the digest encodes it: a UUID's 16 bytes (as the events table
    stores it), whether given as a UUID, those bytes, or its text."""
    if isinstance(originator_id, UUID):
        return originator_id.bytes
    if isinstance(originator_id, bytes | bytearray | memoryview):
        return bytes(originator_id)
    text = str(originator_id)
    try:
        return UUID(text).bytes
    except ValueError:
        return text.encode()


def event_digest(
    position: int,
    originator_id: object,
    version: int,
    topic: str,
    recorded_at: int,
    state: bytes,
) -> bytes:
    """SHA-256 of one event's canonical encoding: ``DIGEST_TAG``, then big-endian 64-bit
    position, length of the id, the id (a UUID's 16 bytes), version, length of the topic, the
    topic (UTF-8), recorded_at, length of the state, the state. Every variable-length field is
    prefixed with its length, so no two different events encode alike."""
    originator = originator_bytes(originator_id)
    topic_bytes = topic.encode()
    return hashlib.sha256(
        DIGEST_TAG
        + _TWO.pack(position, len(originator))
        + originator
        + _TWO.pack(version, len(topic_bytes))
        + topic_bytes
        + _TWO.pack(recorded_at, len(state))
        + state
    ).digest()


def chain_link(previous_link: bytes, position: int, digest: bytes) -> bytes:
    """SHA-256(previous link || position || digest)."""
    return hashlib.sha256(previous_link + _U64.pack(position) + digest).digest()


def now_micros() -> int:
    return time.time_ns() // 1000


def micros_to_datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


@dataclass(frozen=True)
class Head:
    """The last chain row: what the next link builds on."""

    position: int
    link: bytes

    @property
    def link_hex(self) -> str:
        return self.link.hex()


START = Head(0, GENESIS)


def chain_rows(
    head: Head,
    events: Iterable[tuple[int, object, int, str, bytes]],
    recorded_at: int,
) -> list[dict[str, Any]]:
    """Chain rows for ``events`` ((position, originator id, version, topic, state), in
    position order) appended after ``head``."""
    rows: list[dict[str, Any]] = []
    previous, link = head.position, head.link
    for position, originator_id, version, topic, state in events:
        digest = event_digest(position, originator_id, version, topic, recorded_at, state)
        link = chain_link(link, position, digest)
        rows.append(
            {
                "position": position,
                "previous": previous,
                "recorded_at": recorded_at,
                "digest": digest,
                "link": link,
            }
        )
        previous = position
    return rows


def read_head(session: Session | Connection, below: int | None = None) -> Head | None:
    """The last chain row (or the last one before position ``below``); one indexed read."""
    statement = select(chain.c.position, chain.c.link)
    if below is not None:
        statement = statement.where(chain.c.position < below)
    row = session.execute(statement.order_by(chain.c.position.desc()).limit(1)).first()
    return None if row is None else Head(int(row[0]), bytes(row[1]))


def read_links(session: Session | Connection, positions: Sequence[int]) -> dict[int, bytes]:
    """The stored links at ``positions`` (those that have a chain row)."""
    if not positions:
        return {}
    rows = session.execute(
        select(chain.c.position, chain.c.link).where(chain.c.position.in_(list(positions)))
    )
    return {int(p): bytes(link) for p, link in rows}


_HEAD = select(chain.c.position, chain.c.link).order_by(chain.c.position.desc()).limit(1)
_INSERT = insert(chain).values({c.name: bindparam(c.name) for c in chain.c})


class AppendStatements:
    """The append path's head read and chain insert, compiled from the Core statements above
    once per dialect and run on the append's own DB-API cursor (same connection, same
    transaction, positional parameters): SQLAlchemy's per-execute work was about a third of an
    append's CPU time, the queries themselves microseconds."""

    def __init__(self, dialect: Dialect) -> None:
        head = _HEAD.compile(dialect=dialect)
        rows = _INSERT.compile(dialect=dialect)
        self.head_sql, self.insert_sql = str(head), str(rows)
        self.positional = bool(dialect.positional)
        self.head_params: Any = (
            tuple(head.params[k] for k in head.positiontup or ())
            if self.positional
            else dict(head.params)
        )
        self.insert_keys = tuple(rows.positiontup or ()) if self.positional else ()

    def head(self, cursor: Any) -> Head | None:
        cursor.execute(self.head_sql, self.head_params)
        row = cursor.fetchone()
        return None if row is None else Head(int(row[0]), bytes(row[1]))

    def insert(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        if self.positional:
            keys = self.insert_keys
            cursor.executemany(self.insert_sql, [tuple(r[k] for k in keys) for r in rows])
        else:
            cursor.executemany(self.insert_sql, rows)
