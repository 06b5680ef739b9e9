"""`shopledger audit ...` through the CLI entry point: checkpoint, verify (clean and tampered),
export an order and verify the file with only the public key, the migration command."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from audit.chain import chain
from commands.application import EventMeta, recording_as
from shopledger.bootstrap import bootstrap
from shopledger.cli import main
from tests.conftest import make_settings, shared_jwt_key
from tests.support.ledger import HANDLERS, Ledger


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A SQLite store with 12 ledgers (24 events); the CLI's environment points at it."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for name, value in {
        "SHOPLEDGER_DATABASE_URL": url,
        "SHOPLEDGER_VAR_DIR": str(tmp_path),
        "SHOPLEDGER_JWT_PRIVATE_KEY_FILE": shared_jwt_key(),
        "SHOPLEDGER_ENVIRONMENT": "test",
        "SHOPLEDGER_MAIL_URL": f"file://{tmp_path / 'mail'}",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOPLEDGER_REDIS_URL", raising=False)
    c = bootstrap(make_settings(url, tmp_path), handlers=HANDLERS)
    ledgers = []
    with recording_as(EventMeta("test", "test")):
        for i in range(12):
            ledger = Ledger(f"l{i}")
            ledger.credit(i + 1)
            c.app.save(ledger)
            ledgers.append(ledger)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(c.tokens.keys.jwks()))
    engine_events = c.app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
    info = {"container": c, "ledgers": ledgers, "jwks": jwks, "events": engine_events}
    yield info
    c.close()


def test_verify_passes_then_exits_non_zero_naming_the_first_bad_position(
    shop: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "checkpoint"]) == 0
    assert "signed position 24" in capsys.readouterr().out
    assert main(["audit", "checkpoint"]) == 0
    assert "no new checkpoint" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    assert "verified 25 events up to position 25 (1 signed checkpoints)" in capsys.readouterr().out
    assert main(["audit", "chain"]) == 0
    assert "every event is chained already" in capsys.readouterr().out

    events = shop["events"]
    with shop["container"].engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == 7).values(topic="x:Forged"))
        conn.execute(update(chain).where(chain.c.position == 9).values(link=bytes(32)))
    assert main(["audit", "verify"]) == 1
    assert "FAILED at position 7: changed" in capsys.readouterr().err
    assert main(["audit", "verify", "--from", "8"]) == 1
    assert "FAILED at position 9: link" in capsys.readouterr().err
    assert main(["audit", "verify", "--from", "11", "--to", "20"]) == 0


def test_an_order_export_verifies_elsewhere_with_the_public_key_only(
    shop: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "order.jsonl"
    order = str(shop["ledgers"][4].id)
    assert main(["audit", "export", "--order", order, "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    full = [line for line in lines if line["kind"] == "event"]
    assert [(e["position"], e["originator"]) for e in full] == [(9, order), (10, order)]
    assert all("state" not in line for line in lines if line["kind"] == "digest")
    capsys.readouterr()
    args = ["audit", "verify", "--file", str(out), "--public-key", str(shop["jwks"])]
    assert main(args) == 0
    assert "verified 2 events and 22 digests, positions 1..24" in capsys.readouterr().out
    full[0]["version"] = 2
    out.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert main(args) == 1
    assert "position 9: changed" in capsys.readouterr().err

    out = tmp_path / "range.jsonl"  # a range export, then bad arguments
    assert main(["audit", "export", "--from", "3", "--to", "5", "--out", str(out)]) == 0
    kinds = [json.loads(line)["kind"] for line in out.read_text().splitlines()]
    assert kinds.count("event") == 3 and kinds[0] == "header" and kinds[-1] == "end"
    assert main(["audit", "export", "--from", "3", "--to", "99"]) == 1
    assert "past the chain's head" in capsys.readouterr().err
    for bad in (
        ["audit", "export", "--from", "3"],
        ["audit", "export", "--order", "x", "--from", "1", "--to", "2"],
        ["audit", "verify", "--from", "5", "--to", "2"],
        ["audit", "verify", "--file", str(out)],
        ["audit", "verify", "--public-key", str(shop["jwks"])],
        ["audit", "export", "--order", "not-an-id"],
    ):
        assert main(bad) == 2, bad


def test_the_chain_command_migrates_events_recorded_without_the_chain(
    shop: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    recorder: Any = shop["container"].app.recorder
    with shop["container"].engine.begin() as conn:  # as a version without the chain left it
        conn.execute(chain.delete())
    recorder.chain_complete = False
    shop["container"].app.save(Ledger("later"))  # left unchained until the migration
    assert main(["audit", "verify"]) == 1
    assert "FAILED at position 1: inserted" in capsys.readouterr().err
    assert main(["audit", "chain", "--batch", "10"]) == 0
    assert "chained 25 events up to position 25" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    assert main(["audit", "chain"]) == 0
    assert "every event is chained already" in capsys.readouterr().out


def test_an_export_withholds_account_events_and_still_verifies(
    shop: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["create-admin", "--email", "boss@example.com", "--password", "correct horse battery"]
    assert main(args) == 0
    head = shop["container"].head_position()
    out = tmp_path / "range.jsonl"
    assert main(["audit", "export", "--from", "20", "--to", str(head), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    withheld = [line for line in lines if line.get("withheld") == "secrets"]
    assert withheld and all(line["kind"] == "digest" for line in withheld)
    assert all(
        not line["topic"].startswith("aggregates.accounts:")
        for line in lines
        if line["kind"] == "event"
    )
    states = [
        zlib.decompress(base64.b64decode(line["state"])).decode()
        for line in lines
        if line["kind"] == "event"
    ]
    assert states and not any("password_hash" in state or "argon2" in state for state in states)
    capsys.readouterr()
    assert main(["audit", "verify", "--file", str(out), "--public-key", str(shop["jwks"])]) == 0
