"""The chain's digest and link functions, and the offline verifier of exports."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.chain import GENESIS, START, Head, chain_link, chain_rows, event_digest
from audit.checkpoints import CheckpointError, keys_of, sign_head, verify_jws
from audit.export import FORMAT, ExportError, verify_export
from commands.credentials import KeyRing, load_or_create_private_key
from tests.conftest import shared_jwt_key

RING = KeyRing(load_or_create_private_key(Path(shared_jwt_key())))
KEYS = keys_of(RING)

fields = st.tuples(
    st.integers(0, 2**40),
    st.uuids().map(str),
    st.integers(1, 2**31),
    st.text(min_size=1, max_size=30),
    st.integers(0, 2**60),
    st.binary(max_size=64),
)


@given(fields, st.integers(0, 5), st.data())
def test_changing_any_field_changes_the_digest(
    event: tuple[Any, ...], which: int, data: st.DataObject
) -> None:
    changed = list(event)
    original = changed[which]
    if isinstance(original, int):
        changed[which] = data.draw(st.integers(0, 2**60).filter(lambda v: v != original))
    elif isinstance(original, bytes):
        changed[which] = data.draw(st.binary(max_size=64).filter(lambda v: v != original))
    else:
        changed[which] = data.draw(st.text(min_size=1, max_size=30).filter(lambda v: v != original))
    assert event_digest(*event) != event_digest(*changed)


def test_length_prefixes_keep_field_boundaries_apart() -> None:
    a = event_digest(1, "ab", 1, "c", 0, b"")
    b = event_digest(1, "a", 1, "bc", 0, b"")
    assert a != b
    assert event_digest(1, "a", 1, "t", 0, b"xy") != event_digest(1, "a", 1, "tx", 0, b"y")


@given(
    st.binary(min_size=32, max_size=32), st.integers(0, 2**40), st.binary(min_size=32, max_size=32)
)
def test_a_link_depends_on_the_previous_link_position_and_digest(
    previous: bytes, position: int, digest: bytes
) -> None:
    link = chain_link(previous, position, digest)
    assert len(link) == 32
    assert link != chain_link(bytes(b ^ 1 for b in previous), position, digest)
    assert link != chain_link(previous, position + 1, digest)
    assert link != chain_link(previous, position, bytes(b ^ 1 for b in digest))


def test_rows_record_the_previous_position_across_a_gap() -> None:
    rows = chain_rows(START, [(1, "a", 1, "t", b"x"), (4, "b", 1, "t", b"y")], 7)
    assert [(r["position"], r["previous"]) for r in rows] == [(1, 0), (4, 1)]
    assert rows[0]["link"] == chain_link(GENESIS, 1, rows[0]["digest"])
    assert rows[1]["link"] == chain_link(rows[0]["link"], 4, rows[1]["digest"])


def test_a_checkpoint_jws_verifies_with_the_public_key_only() -> None:
    signed = sign_head(RING, Head(9, bytes(range(32))), datetime.now(UTC), "https://shop")
    head = verify_jws(signed.jws, KEYS)
    assert (head.position, head.link, head.kid) == (9, bytes(range(32)).hex(), RING.current.kid)
    with pytest.raises(CheckpointError):
        verify_jws(signed.jws[:-4] + "AAAA", KEYS)
    with pytest.raises(CheckpointError, match="unknown key"):
        verify_jws(signed.jws, {"other": RING.current.public_key})


# --- exports ------------------------------------------------------------------------------------
def make_export(positions: list[int], full: set[int]) -> list[bytes]:
    events = [
        (p, f"agg-{p % 3}", p, "mod:Thing.Happened", f"state {p}".encode()) for p in positions
    ]
    rows = chain_rows(START, events, 1_700_000_000_000_000)
    last = Head(rows[-1]["position"], rows[-1]["link"])
    signed = sign_head(RING, last, datetime.now(UTC), "https://shop")
    lines: list[dict[str, Any]] = [
        {
            "kind": "header",
            "format": FORMAT,
            "scope": {},
            "start": {"position": 0, "link": GENESIS.hex(), "jws": None},
            "checkpoints": [signed.jws],
        }
    ]
    for (p, originator, version, topic, state), row in zip(events, rows, strict=True):
        line: dict[str, Any] = {
            "kind": "event" if p in full else "digest",
            "position": p,
            "previous": row["previous"],
            "digest": row["digest"].hex(),
            "link": row["link"].hex(),
        }
        if p in full:
            line.update(
                originator=originator,
                version=version,
                topic=topic,
                recordedAt=row["recorded_at"],
                state=base64.b64encode(state).decode(),
            )
        lines.append(line)
    lines.append({"kind": "end", "positions": len(events), "events": len(full)})
    return [json.dumps(line).encode() for line in lines]


exports = st.lists(st.integers(1, 10_000), min_size=2, max_size=25, unique=True).map(sorted)


@settings(max_examples=40, deadline=None)
@given(exports, st.data())
def test_an_intact_export_verifies(positions: list[int], data: st.DataObject) -> None:
    full = set(data.draw(st.lists(st.sampled_from(positions), max_size=len(positions))))
    result = verify_export(make_export(positions, full), KEYS)
    assert (result.first, result.last) == (1, positions[-1])
    assert (result.events, result.digests) == (len(full), len(positions) - len(full))


@settings(max_examples=40, deadline=None)
@given(exports, st.data())
def test_a_changed_event_in_an_export_is_named(positions: list[int], data: st.DataObject) -> None:
    lines = make_export(positions, set(positions))
    index = data.draw(st.integers(1, len(positions)))
    line = json.loads(lines[index])
    line["state"] = base64.b64encode(b"forged").decode()
    lines[index] = json.dumps(line).encode()
    with pytest.raises(ExportError, match=f"position {line['position']}: changed"):
        verify_export(lines, KEYS)


@settings(max_examples=40, deadline=None)
@given(exports, st.data())
def test_a_dropped_line_of_an_export_is_named_missing(
    positions: list[int], data: st.DataObject
) -> None:
    lines = make_export(positions, set())
    index = data.draw(st.integers(1, len(positions) - 1))  # not the last: the end line says
    dropped = json.loads(lines.pop(index))["position"]
    with pytest.raises(ExportError, match=f"position {dropped}: missing"):
        verify_export(lines, KEYS)


def test_swapped_lines_of_an_export_are_found() -> None:
    lines = make_export([1, 2, 3, 5, 8], {2, 3})
    lines[2], lines[3] = lines[3], lines[2]
    with pytest.raises(ExportError, match="position 2: missing"):
        verify_export(lines, KEYS)


def test_an_export_cut_short_or_signed_by_another_key_fails() -> None:
    lines = make_export([1, 2, 3], {2})
    with pytest.raises(ExportError, match="cut off"):
        verify_export(lines[:-1], KEYS)
    with pytest.raises(ExportError, match="unknown key"):
        verify_export(lines, {"someone-else": RING.current.public_key})


def test_embedded_mode_runs_one_verification_at_a_time() -> None:
    from audit.jobs import ThreadVerifyJobs, VerificationBusy, VerifyStatus

    jobs = ThreadVerifyJobs(container=None)  # type: ignore[arg-type]
    jobs._jobs["running"] = VerifyStatus("running", "running", None, None)
    with pytest.raises(VerificationBusy) as busy:
        jobs.start(None, None)
    assert busy.value.job_id == "running"
    jobs._jobs["running"].status = "passed"
    assert jobs.get("running") is not None and jobs.get("nope") is None
