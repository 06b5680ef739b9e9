"""Checks of the operation log (GET /api/audit/events) that run on any back end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from projections.operation_log import OperationLog, live
from projections.rebuild import rebuild
from tests.support.accounts import User, container_of, wait


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def ledger_events(client: Any, actor: str, credits: int) -> str:
    """A test ledger opened and credited by ``actor``: 1 + ``credits`` events."""
    who = {"X-Test-User": actor}
    ledger = ok(client.post("/test/ledgers", json={"name": actor}, headers=who), 201)["ledgerId"]
    for amount in range(1, credits + 1):
        ok(client.post(f"/test/ledgers/{ledger}/credits", json={"amount": amount}, headers=who))
    return str(ledger)


def every_page(
    client: Any, reader: User, limit: int, after: int = 0, **filters: Any
) -> list[dict[str, Any]]:
    """Every event the filters match after ``after``, page by page (``next`` to ``after``)."""
    events: list[dict[str, Any]] = []
    while True:
        params = {**filters, "after": after, "limit": limit}
        page = ok(client.get("/api/audit/events", params=params, headers=reader.auth))
        assert len(page["events"]) <= limit
        events += page["events"]
        if page["next"] is None:
            return events
        assert page["next"] == page["events"][-1]["position"]
        after = page["next"]


def stored_positions(container: Any) -> list[int]:
    return [n.id for n in container.app.recorder.select_notifications(1, 100_000)]


def check_operation_log(client: Any, boss: User) -> None:
    """Keyset pages hold every stored event once, in order, whatever the page size and while
    events keep arriving; filters combine; bad filters are 400; a rebuild gives the same rows.
    Needs the test-only ledger routes (tests/support/ledger_api.py) mounted. A timed rule may
    append meanwhile, so pages are compared with the store as it is after them: what was
    stored before paging must all be there, and the pages must be a prefix of the store."""
    container = container_of(client)
    alice = ledger_events(client, "alice", 6)
    ledger_events(client, "bob", 2)
    wait(client)
    stored = container.app.recorder.select_notifications(start=1, limit=10_000)
    positions = [n.id for n in stored]

    # keyset pages: every stored event once, in order, whatever the page size
    for limit in (5, 1000):
        paged = every_page(client, boss, limit)
        got = [e["position"] for e in paged]
        assert got == stored_positions(container)[: len(got)] and got[: len(positions)] == positions
    one = paged[positions.index(stored[-1].id)]
    assert one["type"] == "Ledger.Credited" and one["aggregateType"] == "Ledger"
    assert one["actor"] == "bob" and one["version"] == 3 and one["correlationId"]
    assert datetime.fromisoformat(one["at"]).utcoffset() is not None

    # events arriving between pages are not skipped and not repeated
    first = ok(client.get("/api/audit/events", params={"limit": 3}, headers=boss.auth))
    ledger_events(client, "carol", 2)
    wait(client)
    rest = every_page(client, boss, 2, after=first["next"]) if first["next"] else []
    seen = [e["position"] for e in first["events"] + rest]
    now = stored_positions(container)
    assert seen == now[: len(seen)] and len(seen) >= len(positions) + 3  # carol: 3 events

    # filters (AND), each paged too
    by_alice = every_page(client, boss, 2, actor="alice")
    assert [e["version"] for e in by_alice] == list(range(1, 8))
    assert every_page(client, boss, 1, actor="alice") == by_alice  # one event a page
    assert {e["aggregateId"] for e in by_alice} == {alice}
    assert every_page(client, boss, 3, aggregateId=alice) == by_alice
    opened = every_page(client, boss, 2, type="Ledger.Opened")
    assert [e["actor"] for e in opened] == ["alice", "bob", "carol"]
    ledgers = every_page(client, boss, 5, aggregateType="Ledger")
    assert len(ledgers) == 7 + 3 + 3
    both = every_page(client, boss, 5, actor="bob", type="Ledger.Opened")
    assert [e["actor"] for e in both] == ["bob"]
    admin_events = every_page(client, boss, 10, aggregateId=boss.user_id)
    assert admin_events[0]["type"] == "Account.Registered"
    same_request = every_page(client, boss, 10, correlationId=by_alice[0]["correlationId"])
    assert [e["position"] for e in same_request] == [by_alice[0]["position"]]
    # a time window: from is inclusive, to exclusive
    start, end = by_alice[2]["at"], by_alice[5]["at"]
    window = every_page(client, boss, 2, actor="alice", **{"from": start, "to": end})
    assert [e["version"] for e in window] == [3, 4, 5]
    assert every_page(client, boss, 2, actor="nobody") == []

    # bad filters are 400 in the envelope, never a 500
    for params in (
        {"aggregateId": "not-a-uuid"},
        {"from": "2030-01-01T00:00:00"},  # no offset
        {"from": end, "to": start},
        {"limit": 0},
        {"limit": 1001},
        {"after": -1},
    ):
        r = client.get("/api/audit/events", params=params, headers=boss.auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR", params

    # rebuilt from position 0, the log is the same rows
    table = live["log"]
    with container.engine.connect() as conn:
        before = conn.execute(select(table).order_by(table.c.position)).all()
    rebuild(container.app, OperationLog, container.locks)
    with container.engine.connect() as conn:
        rebuilt = conn.execute(select(table).order_by(table.c.position)).all()
    assert rebuilt[: len(before)] == before
