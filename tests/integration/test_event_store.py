"""The event store on a SQLite file and on MariaDB: large events, concurrency, commit order."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from commands.application import EventMeta, ShopledgerApplication
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings
from tests.support.ledger import HANDLERS, Credit, Ledger, LedgerBalances, OpenLedger

META = EventMeta("user-1", "req-1")


def test_an_event_far_above_64_kb_is_stored_and_read_back(container: Container) -> None:
    memo = os.urandom(150_000).hex()  # 300 KB of incompressible text
    ledger_id = container.bus.execute(OpenLedger("big"), META).result
    container.bus.execute(Credit(ledger_id, 1, memo), META)
    events: list[Any] = list(container.app.events.get(ledger_id))
    assert events[-1].memo == memo


def test_concurrent_writers_on_one_aggregate_lose_no_update(container: Container) -> None:
    ledger_id = container.bus.execute(OpenLedger("shared"), META).result
    errors: list[BaseException] = []

    def credit_many() -> None:
        try:
            for _ in range(15):
                container.bus.execute(Credit(ledger_id, 1), META)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=credit_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ledger: Ledger = container.app.repository.get(ledger_id)
    assert (ledger.balance, ledger.version) == (60, 61)


def _follow(app: ShopledgerApplication, seen: list[int], stop: threading.Event) -> None:
    """Poll like a projector: always read after the last position seen."""
    position = 0
    while True:
        batch = app.recorder.select_notifications(
            start=position, limit=100, inclusive_of_start=False
        )
        seen.extend(n.id for n in batch)
        if batch:
            position = batch[-1].id
        elif stop.is_set():
            return
        time.sleep(0.005)


def _slow_writer_race(app: ShopledgerApplication) -> tuple[list[int], list[int]]:
    """Writer A appends and holds its transaction open; writer B appends meanwhile."""
    seen: list[int] = []
    done = threading.Event()
    follower = threading.Thread(target=_follow, args=(app, seen, done))
    follower.start()
    a_appended = threading.Event()

    def writer_a() -> None:
        with app.recorder.transaction(commit=True):  # type: ignore[attr-defined]
            app.save(Ledger("A"))
            a_appended.set()
            time.sleep(1.0)  # B's append happens in here

    def writer_b() -> None:
        a_appended.wait(5)
        app.save(Ledger("B"))

    threads = [threading.Thread(target=writer_a), threading.Thread(target=writer_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.2)
    done.set()
    follower.join()
    stored = [n.id for n in app.recorder.select_notifications(start=1, limit=100)]
    return stored, seen


@pytest.mark.mariadb
def test_a_follower_sees_an_append_held_open_while_a_later_one_commits(
    mariadb_url: str, tmp_path: Path
) -> None:
    c = bootstrap(make_settings(mariadb_url, tmp_path))
    try:
        stored, seen = _slow_writer_race(c.app)
    finally:
        c.close()
    assert len(stored) == 2
    assert seen == stored


class _StockLibraryApp(ShopledgerApplication):
    name = "stockctl"


@pytest.mark.mariadb
def test_control_without_the_append_lock_the_same_race_loses_an_event(mariadb_url: str) -> None:
    """Shows the test above can fail: the stock library lets the follower skip id 1."""
    app = _StockLibraryApp(
        env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": mariadb_url,
            "CREATE_TABLE": "y",
        }
    )
    try:
        stored, seen = _slow_writer_race(app)
    finally:
        app.close()
    assert len(stored) == 2
    assert stored[0] not in seen  # lost for ever by a position-based follower


def _writer_process(
    database_url: str, var_dir: str, writer: int, singles: int, batches: int
) -> None:
    c = bootstrap(make_settings(database_url, Path(var_dir)), handlers=HANDLERS)
    try:
        meta = EventMeta(f"writer-{writer}", f"w{writer}")
        for i in range(singles):
            c.bus.execute(OpenLedger(f"w{writer}-{i}"), meta)
        for _ in range(batches):  # ten events in one transaction
            ledger = Ledger("batch")
            for k in range(9):
                ledger.credit(k + 1)
            c.app.save(ledger)
    finally:
        c.close()


@pytest.mark.slow
def test_eight_writer_processes_and_a_follower_see_every_event_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    c = bootstrap(
        make_settings(database_url, tmp_path), projections=[LedgerBalances], handlers=HANDLERS
    )
    seen: list[int] = []
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(c.app, seen, stop))
    follower.start()
    singles, batches = 40, 4
    ctx = multiprocessing.get_context("spawn")
    writers = [
        ctx.Process(target=_writer_process, args=(database_url, str(tmp_path), w, singles, batches))
        for w in range(8)
    ]
    try:
        for w in writers:
            w.start()
        for w in writers:
            w.join(180)
        assert [w.exitcode for w in writers] == [0] * 8
        time.sleep(0.3)
    finally:
        stop.set()
        follower.join()
    stored = [n.id for n in c.app.recorder.select_notifications(start=1, limit=100_000)]
    c.close()
    assert len(stored) == 8 * (singles + 10 * batches)
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert sorted(seen) == stored, f"follower missed {sorted(set(stored) - set(seen))[:10]}"
