"""Exports for an outside auditor, and their offline verification with only the public key.

An export is JSON Lines (format ``shopledger-audit-export/1``):

1. ``{"kind": "header", "format", "scope", "exportedAt", "start": {"position", "link", "jws"},
   "checkpoints": [jws, ...]}``: the chain is walked from ``start`` (a signed checkpoint's
   position and link, or position 0 and 32 zero bytes: the genesis), and ``checkpoints`` are
   the signed heads inside the exported positions; the last one signs the last position.
2. One line per chained position after ``start``, in order, up to that last checkpoint:
   ``{"kind": "event", "position", "previous", "originator", "version", "topic", "recordedAt",
   "timestamp", "state", "digest", "link"}`` (``state`` base64, as stored) for the exported
   events, ``{"kind": "digest", "position", "previous", "digest", "link"}`` for every other
   position (their contents stay private; their digests let the links be recomputed), and
   for an exported account event, which holds secrets (marked ``"withheld": "secrets"``).
3. ``{"kind": "end", "positions", "events"}``, so a cut-off file is noticed.

Verifying recomputes each event's digest from its fields, every link from the one before,
checks each ``previous``, and checks every checkpoint's signature and link. Limitation: a
digest line proves a position's existence, not what it holds, so an order export shows that
its events are authentic and in place, not that no other event of the order was withheld.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select

from audit.chain import GENESIS, chain, chain_link, event_digest, micros_to_datetime
from audit.checkpoints import (
    CHECKPOINT_TOPIC,
    CheckpointError,
    create_checkpoint,
    decode_state,
    verify_jws,
)

if TYPE_CHECKING:
    from shopledger.bootstrap import Container

FORMAT = "shopledger-audit-export/1"
#: Events an export never hands out in full (password hashes, token digests, sessions): they
#: are written as digest lines marked ``"withheld": "secrets"``, so the chain still verifies.
WITHHELD_TOPICS = ("aggregates.accounts:",)


class ExportError(Exception):
    """The export cannot be made, or does not verify; the message names the position."""


# --- writing --------------------------------------------------------------------------------
def _checkpoints(conn: Any, events: Any) -> list[tuple[int, str]]:
    """(signed position, JWS) of every checkpoint event, by signed position."""
    c = events.c
    found: dict[int, str] = {}
    for (state,) in conn.execute(select(c.state).where(c.topic == CHECKPOINT_TOPIC)):
        try:
            fields = decode_state(bytes(state))
            found.setdefault(int(fields["signed_position"]), str(fields["jws"]))
        except (CheckpointError, KeyError, TypeError, ValueError):
            continue  # `audit verify` names it; an export just does not lean on it
    return sorted(found.items())


def export_events(
    container: Container,
    out: IO[bytes],
    *,
    order: UUID | None = None,
    start: int | None = None,
    stop: int | None = None,
    batch: int = 5000,
) -> str:
    """Write the export of one aggregate's events (``order``) or of positions
    ``start``..``stop``; returns a one-line summary. Signs a checkpoint first when none
    covers the last exported event yet."""
    recorder: Any = container.app.recorder
    events = recorder.events_record_cls.__table__
    c, k = events.c, chain.c
    with container.engine.connect() as conn:
        if order is not None:
            wanted_rows = conn.execute(
                select(c.id, c.originator_id, c.originator_version, c.topic, c.state)
                .where(c.originator_id == order)
                .order_by(c.id)
            ).all()
            if not wanted_rows:
                raise ExportError(f"no events of {order}")
            first, last = int(wanted_rows[0][0]), int(wanted_rows[-1][0])
            scope: dict[str, Any] = {"order": str(order)}
        else:
            assert start is not None and stop is not None
            head = int(
                conn.execute(select(chain.c.position).order_by(k.position.desc()).limit(1)).scalar()
                or 0
            )
            if stop > head:
                raise ExportError(f"--to {stop} is past the chain's head ({head})")
            first, last = start, stop
            wanted_rows = []
            scope = {"from": start, "to": stop}
        checkpoints = _checkpoints(conn, events)
    if not any(s >= last for s, _ in checkpoints):
        create_checkpoint(container)
        with container.engine.connect() as conn:
            checkpoints = _checkpoints(conn, events)
    covering = [(s, jws) for s, jws in checkpoints if s >= last]
    if not covering:
        raise ExportError(
            f"no signed checkpoint covers position {last} yet; run `shopledger audit checkpoint`"
            " after the next append"
        )
    end = covering[0][0]
    before = [(s, jws) for s, jws in checkpoints if s < first]
    begin, begin_jws = before[-1] if before else (0, None)
    inside = [jws for s, jws in checkpoints if begin < s <= end]
    wanted = {int(r[0]): r for r in wanted_rows}

    with container.engine.connect() as conn:
        begin_link = GENESIS
        if begin:
            row = conn.execute(select(k.link).where(k.position == begin)).first()
            if row is None:
                raise ExportError(f"the chain row at {begin} (a signed checkpoint) is missing")
            begin_link = bytes(row[0])
        _line(
            out,
            {
                "kind": "header",
                "format": FORMAT,
                "scope": scope,
                "exportedAt": datetime.now(UTC).isoformat(),
                "start": {"position": begin, "link": begin_link.hex(), "jws": begin_jws},
                "checkpoints": inside,
            },
        )
        positions = full = secret = 0
        after = begin
        while after < end:
            rows = conn.execute(
                select(k.position, k.previous, k.recorded_at, k.digest, k.link)
                .where(k.position > after, k.position <= end)
                .order_by(k.position)
                .limit(batch)
            ).all()
            if not rows:
                raise ExportError(f"the chain stops before position {end}: run `audit verify`")
            low, high = int(rows[0][0]), int(rows[-1][0])
            if order is None and high >= first and low <= last:
                wanted = {
                    int(r[0]): r
                    for r in conn.execute(
                        select(c.id, c.originator_id, c.originator_version, c.topic, c.state)
                        .where(c.id >= max(low, first), c.id <= min(high, last))
                        .order_by(c.id)
                    )
                }
                chained = {int(r[0]) for r in rows}
                unchained = sorted(set(wanted) - chained)
                if unchained:
                    raise ExportError(
                        f"position {unchained[0]} has no chain row: run `shopledger audit verify`"
                    )
            for position, previous, recorded_at, digest, link in rows:
                position = int(position)
                event = wanted.get(position)
                withheld = event is not None and str(event[3]).startswith(WITHHELD_TOPICS)
                if event is not None and not withheld:
                    full += 1
                    state = bytes(event[4])
                    _line(
                        out,
                        {
                            "kind": "event",
                            "position": position,
                            "previous": int(previous),
                            "originator": str(event[1]),
                            "version": int(event[2]),
                            "topic": event[3],
                            "recordedAt": int(recorded_at),
                            "timestamp": micros_to_datetime(int(recorded_at)).isoformat(),
                            "state": base64.b64encode(state).decode(),
                            "digest": bytes(digest).hex(),
                            "link": bytes(link).hex(),
                        },
                    )
                else:
                    line: dict[str, Any] = {
                        "kind": "digest",
                        "position": position,
                        "previous": int(previous),
                        "digest": bytes(digest).hex(),
                        "link": bytes(link).hex(),
                    }
                    if withheld:
                        line["withheld"] = "secrets"
                        secret += 1
                    _line(out, line)
                positions += 1
            after = high
    if order is not None and full + secret != len(wanted_rows):
        raise ExportError("some of the order's events have no chain row: run `audit verify`")
    _line(out, {"kind": "end", "positions": positions, "events": full})
    return (
        f"exported {full} events and {positions - full} digests ({secret} account events"
        f" withheld), positions {begin + 1}..{end}, covered by the checkpoint of position {end}"
    )


def _line(out: IO[bytes], value: dict[str, Any]) -> None:
    out.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")


# --- verifying ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportResult:
    first: int
    last: int
    events: int
    digests: int
    checkpoints: list[str]  # "position by kid at time", for people

    def summary(self) -> str:
        return (
            f"verified {self.events} events and {self.digests} digests, positions"
            f" {self.first}..{self.last}; signed checkpoints: {', '.join(self.checkpoints)}"
        )


def _hex(value: Any, what: str, position: int) -> bytes:
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        raise ExportError(f"position {position}: {what} is not hex") from None
    if len(raw) != 32:
        raise ExportError(f"position {position}: {what} is not 32 bytes")
    return raw


def verify_export(lines: Iterable[bytes], keys: Mapping[str, Any]) -> ExportResult:
    """Check an export with the service's public keys only (kid → RSA public key)."""
    iterator = iter(lines)
    try:
        header = json.loads(next(iterator))
    except StopIteration:
        raise ExportError("the file is empty") from None
    except ValueError:
        raise ExportError("line 1 is not JSON") from None
    if not isinstance(header, dict) or header.get("kind") != "header":
        raise ExportError("line 1 is not an export header")
    if header.get("format") != FORMAT:
        raise ExportError(f"unknown export format {header.get('format')!r}")
    start = header.get("start") or {}
    try:
        prev_pos = int(start.get("position", -1))
    except (TypeError, ValueError):
        raise ExportError("the header's start position is not a number") from None
    if prev_pos < 0:
        raise ExportError("the header has no start position")
    prev_link = _hex(start.get("link"), "the start link", prev_pos)
    signed: list[str] = []
    if prev_pos == 0:
        if prev_link != GENESIS:
            raise ExportError("position 0: the genesis link must be 32 zero bytes")
    else:
        head = _verified(start.get("jws"), keys, prev_pos)
        if head.position != prev_pos or head.link != prev_link.hex():
            raise ExportError(f"position {prev_pos}: the start does not match its checkpoint")
        signed.append(f"{head.position} by {head.kid} at {head.signed_at}")
    expected: dict[int, Any] = {}
    for jws in header.get("checkpoints") or []:
        head = _verified(jws, keys, prev_pos)
        expected[head.position] = head
    if not expected:
        raise ExportError("no signed checkpoint covers the export")
    end_position = max(expected)
    first = prev_pos + 1
    events = digests = 0
    number = 1
    for raw in iterator:
        number += 1
        try:
            line = json.loads(raw)
        except ValueError:
            raise ExportError(f"line {number} is not JSON") from None
        kind = line.get("kind") if isinstance(line, dict) else None
        if kind == "end":
            if line.get("positions") != events + digests or line.get("events") != events:
                raise ExportError("the end line's counts differ from the lines read")
            if prev_pos != end_position:
                raise ExportError(
                    f"position {prev_pos + 1}: the export stops before its last checkpoint"
                    f" ({end_position})"
                )
            if expected:
                raise ExportError(f"position {min(expected)}: a checkpoint was never reached")
            return ExportResult(first, prev_pos, events, digests, signed)
        if kind not in ("event", "digest"):
            raise ExportError(f"line {number}: unknown kind {kind!r}")
        try:
            position = int(line["position"])
            previous = int(line["previous"])
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"line {number}: no position/previous") from None
        if previous != prev_pos:
            if previous > prev_pos:
                raise ExportError(f"position {previous}: missing (position {position} links to it)")
            raise ExportError(
                f"position {position}: inserted or out of order (it links to {previous},"
                f" the line before is {prev_pos})"
            )
        if position <= prev_pos:
            raise ExportError(f"position {position}: out of order")
        digest = _hex(line.get("digest"), "the digest", position)
        if kind == "event":
            try:
                state = base64.b64decode(str(line["state"]), validate=True)
                recomputed = event_digest(
                    position,
                    str(line["originator"]),
                    int(line["version"]),
                    str(line["topic"]),
                    int(line["recordedAt"]),
                    state,
                )
            except (KeyError, TypeError, ValueError):
                raise ExportError(f"position {position}: malformed event line") from None
            if recomputed != digest:
                raise ExportError(
                    f"position {position}: changed (the event differs from its digest)"
                )
            events += 1
        else:
            digests += 1
        link = chain_link(prev_link, position, digest)
        if link != _hex(line.get("link"), "the link", position):
            raise ExportError(f"position {position}: the link differs (altered)")
        head = expected.pop(position, None)
        if head is not None:
            if head.link != link.hex():
                raise ExportError(
                    f"position {position}: the signed checkpoint has another link (rewritten)"
                )
            signed.append(f"{head.position} by {head.kid} at {head.signed_at}")
        prev_pos, prev_link = position, link
    raise ExportError(f"position {prev_pos + 1}: the file is cut off (no end line)")


def _verified(jws: Any, keys: Mapping[str, Any], position: int) -> Any:
    try:
        return verify_jws(str(jws or ""), keys)
    except CheckpointError as exc:
        raise ExportError(f"position {position}: checkpoint: {exc}") from None
