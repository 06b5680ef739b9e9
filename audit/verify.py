"""Verification: recompute every digest and link of the event store, check every checkpoint.

Two keyset-batched Core selects (events, chain rows) are merged by position, so the first
position where the store and its chain disagree is named with what happened there:

* ``changed``: the event's state or fields (or the chain row's time) differ from what was
  recorded (its digest no longer matches);
* ``missing``: an event was deleted (its chain row is still there), or an event and its chain
  row both were (the next chain row links to a position that is not there);
* ``inserted``: an event has no chain row (added afterwards, or its chain row was deleted), or
  a chain row sits between two rows that link past it;
* ``link``: a chain row's link was altered;
* ``checkpoint``: a signed checkpoint does not verify, or signs a link the chain does not
  have (history up to its position was rewritten, chain included).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, Table, bindparam, func, select, type_coerce
from sqlalchemy.engine import Connection, Engine

from audit.chain import _TWO, _U64, DIGEST_TAG, START, Head, chain, read_head
from audit.checkpoints import CHECKPOINT_TOPIC, CheckpointError, read_checkpoint

_Raw = LargeBinary()
#: Called with (position reached, last position of the range) as verification advances.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Problem:
    position: int
    kind: str  # changed, missing, inserted, link, checkpoint
    message: str


@dataclass
class Report:
    start: int  # the first position of the range
    stop: int  # the last position of the range
    checked: int = 0  # events whose digest and link were recomputed
    last: int = 0  # the last position verified
    checkpoints: int = 0  # checkpoints verified in the range
    seconds: float = 0.0
    problem: Problem | None = None
    checkpoint_positions: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if self.problem is None:
            return (
                f"verified {self.checked} events up to position {self.last}"
                f" ({self.checkpoints} signed checkpoints)"
            )
        p = self.problem
        return f"position {p.position}: {p.kind}: {p.message}"


class _Stream:
    """Events joined with their chain rows, in position order, keyset-batched: the Core
    statement compiled once and run on the DB-API cursor (SQLAlchemy's row objects were most
    of the time; the join reads each position once)."""

    def __init__(self, conn: Connection, events: Table, batch: int) -> None:
        c, k = events.c, chain.c
        statement = (
            select(
                c.id,
                type_coerce(c.originator_id, _Raw),  # raw: a UUID object per row cost a third
                c.originator_version,
                c.topic,
                c.state,
                k.previous,
                k.recorded_at,
                k.digest,
                k.link,
            )
            .select_from(events.outerjoin(chain, k.position == c.id))
            .where(c.id > bindparam("after"), c.id <= bindparam("stop"))
            .order_by(c.id)
            .limit(batch)
        )
        compiled = statement.compile(dialect=conn.dialect)
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.order = tuple(compiled.positiontup or ()) if conn.dialect.positional else None
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def batches(self, first: int, stop: int) -> Iterator[list[Any]]:
        after = first - 1
        try:
            while True:
                values = {**self.defaults, "after": after, "stop": stop}
                params: Any = (
                    tuple(values[k] for k in self.order) if self.order is not None else values
                )
                self.cursor.execute(self.sql, params)
                rows = self.cursor.fetchall()
                if not rows:
                    return
                yield rows
                after = int(rows[-1][0])
        finally:
            self.cursor.close()


def verify_store(
    engine: Engine,
    events: Table,
    keys: Mapping[str, Any],
    *,
    start: int | None = None,
    stop: int | None = None,
    batch: int = 10_000,
    on_progress: ProgressCallback | None = None,
) -> Report:
    """Verify positions ``start``..``stop`` (default: all). Rows before ``start`` are trusted
    for the link the range starts from. ``keys`` maps each ``kid`` to its RSA public key."""
    began = time.monotonic()
    c, k = events.c, chain.c
    with engine.connect() as conn:
        if stop is None:
            stop = max(
                int(conn.execute(select(func.max(c.id))).scalar() or 0),
                int(conn.execute(select(func.max(k.position))).scalar() or 0),
            )
        first = max(1, start or 1)
        report = Report(first, stop)
        previous = read_head(conn, below=first) if first > 1 else None
        head: Head = previous or START
        stream = _Stream(conn, events, batch)
        report.problem = _walk(conn, stream.batches(first, stop), head, keys, report, on_progress)
        if report.problem is None:
            # A chain row after the last event: the newest events were deleted (their chain
            # rows were not); no later event links to them, so the walk could not see it.
            orphan = conn.execute(
                select(func.min(k.position)).where(
                    k.position > max(report.last, head.position), k.position <= stop
                )
            ).scalar()
            if orphan is not None:
                report.problem = Problem(
                    int(orphan), "missing", "the event was deleted (its chain row is still there)"
                )
    report.seconds = time.monotonic() - began
    if on_progress is not None:
        on_progress(report.last, report.stop)
    return report


def _walk(
    conn: Connection,
    batches: Iterator[list[Any]],
    head: Head,
    keys: Mapping[str, Any],
    report: Report,
    on_progress: ProgressCallback | None,
) -> Problem | None:
    prev_pos, prev_link = head.position, head.link
    checked = 0
    # audit/chain.py's event_digest and chain_link, inlined: this loop is the whole cost.
    sha256, pack, pack_one, tag = hashlib.sha256, _TWO.pack, _U64.pack, DIGEST_TAG
    try:
        for rows in batches:
            for row in rows:
                (position, originator, version, topic, state) = row[:5]
                previous, recorded_at, stored_digest, stored_link = row[5:]
                if previous is None:
                    return Problem(
                        position,
                        "inserted",
                        "an event with no chain row (added afterwards, or its chain row was"
                        " deleted; a store from before the chain needs `shopledger audit chain`)",
                    )
                if previous != prev_pos:
                    if previous > prev_pos:
                        return Problem(
                            previous,
                            "missing",
                            f"the chain row at {position} links to position {previous}, whose"
                            " event was deleted (with or without its chain row)",
                        )
                    return Problem(
                        prev_pos,
                        "inserted",
                        f"the chain row at {position} links to position {previous}, past this"
                        " one (inserted, or moved out of order)",
                    )
                if not isinstance(state, bytes):
                    state = bytes(state)
                if not isinstance(originator, bytes):
                    originator = bytes(originator)
                t = topic.encode()
                digest = sha256(
                    tag
                    + pack(position, len(originator))
                    + originator
                    + pack(version, len(t))
                    + t
                    + pack(recorded_at, len(state))
                    + state
                ).digest()
                if digest != stored_digest:
                    return Problem(
                        position,
                        "changed",
                        "the event differs from what was recorded (state, aggregate, version,"
                        " type or time changed)",
                    )
                link = sha256(prev_link + pack_one(position) + digest).digest()
                if link != stored_link:
                    return Problem(
                        position,
                        "link",
                        "the chain row's link was altered"
                        + (
                            " (or the one before, which the range starts from)"
                            if not checked
                            else ""
                        ),
                    )
                if topic == CHECKPOINT_TOPIC:
                    problem = _check_checkpoint(conn, position, state, keys)
                    if problem is not None:
                        return problem
                    report.checkpoints += 1
                    report.checkpoint_positions.append(position)
                prev_pos, prev_link = position, link
                checked += 1
            report.checked, report.last = checked, prev_pos
            if on_progress is not None:
                on_progress(prev_pos, report.stop)
        return None
    finally:
        report.checked = checked
        if checked:
            report.last = prev_pos


def _check_checkpoint(
    conn: Connection, position: int, state: bytes, keys: Mapping[str, Any]
) -> Problem | None:
    try:
        signed = read_checkpoint(state, keys)
    except CheckpointError as exc:
        return Problem(position, "checkpoint", f"the checkpoint recorded here: {exc}")
    row = conn.execute(select(chain.c.link).where(chain.c.position == signed.position)).first()
    if row is None or bytes(row[0]).hex() != signed.link:
        return Problem(
            signed.position,
            "checkpoint",
            f"the checkpoint at {position} signed this position with link {signed.link[:16]}…,"
            " the chain has another: history up to here was rewritten, chain included",
        )
    return None
