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

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, Table, func, select, type_coerce
from sqlalchemy.engine import Connection, Engine

from audit.chain import START, Head, chain, chain_link, event_digest, read_head, uuid_text
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


def _batches(conn: Connection, statement_for: Callable[[int], Any], start: int) -> Iterator[Any]:
    after = start - 1
    while True:
        rows = conn.execute(statement_for(after)).all()
        if not rows:
            return
        yield from rows
        after = int(rows[-1][0])


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
        event_rows = _batches(
            conn,
            # The id raw: a UUID object per row was a third of the time.
            lambda after: (
                select(
                    c.id,
                    type_coerce(c.originator_id, _Raw),
                    c.originator_version,
                    c.topic,
                    c.state,
                )
                .where(c.id > after, c.id <= stop)
                .order_by(c.id)
                .limit(batch)
            ),
            first,
        )
        chain_rows = _batches(
            conn,
            lambda after: (
                select(k.position, k.previous, k.recorded_at, k.digest, k.link)
                .where(k.position > after, k.position <= stop)
                .order_by(k.position)
                .limit(batch)
            ),
            first,
        )
        report.problem = _walk(conn, event_rows, chain_rows, head, keys, report, on_progress)
    report.seconds = time.monotonic() - began
    if on_progress is not None:
        on_progress(report.last, report.stop)
    return report


def _walk(
    conn: Connection,
    event_rows: Iterator[Any],
    chain_rows: Iterator[Any],
    head: Head,
    keys: Mapping[str, Any],
    report: Report,
    on_progress: ProgressCallback | None,
) -> Problem | None:
    never = 1 << 62
    prev_pos, prev_link = head.position, head.link
    ev = next(event_rows, None)
    ch = next(chain_rows, None)
    checked = 0
    next_report = 10_000
    digest_of, link_of, text_of = event_digest, chain_link, uuid_text
    try:
        while ev is not None or ch is not None:
            ep = ev[0] if ev is not None else never
            cp = ch[0] if ch is not None else never
            if ep < cp:
                return Problem(
                    ep,
                    "inserted",
                    "an event with no chain row (added afterwards, or its chain row was deleted;"
                    " a store from before the chain needs `shopledger audit chain`)",
                )
            if cp < ep:
                return Problem(
                    cp, "missing", "the event was deleted (its chain row is still there)"
                )
            assert ev is not None and ch is not None
            position, previous, recorded_at, stored_digest, stored_link = ch
            if previous != prev_pos:
                if previous > prev_pos:
                    return Problem(
                        previous,
                        "missing",
                        f"the chain row at {position} links to position {previous}, which is"
                        " gone (its event and its chain row were deleted)",
                    )
                return Problem(
                    prev_pos,
                    "inserted",
                    f"the chain row at {position} links to position {previous}, past this one"
                    " (inserted, or moved out of order)",
                )
            state = ev[4]
            if not isinstance(state, bytes):
                state = bytes(state)
            digest = digest_of(position, text_of(ev[1]), ev[2], ev[3], recorded_at, state)
            if digest != stored_digest:
                return Problem(
                    position,
                    "changed",
                    "the event differs from what was recorded (state, aggregate, version, type"
                    " or time changed)",
                )
            link = link_of(prev_link, position, digest)
            if link != stored_link:
                return Problem(
                    position,
                    "link",
                    "the chain row's link was altered"
                    + (" (or the one before, which the range starts from)" if not checked else ""),
                )
            if ev[3] == CHECKPOINT_TOPIC:
                problem = _check_checkpoint(conn, position, state, keys)
                if problem is not None:
                    return problem
                report.checkpoints += 1
                report.checkpoint_positions.append(position)
            prev_pos, prev_link = position, link
            checked += 1
            if checked >= next_report:
                next_report += 10_000
                report.checked, report.last = checked, position
                if on_progress is not None:
                    on_progress(position, report.stop)
            ev = next(event_rows, None)
            ch = next(chain_rows, None)
        return None
    finally:
        report.checked = checked
        report.last = prev_pos if checked else report.last


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
