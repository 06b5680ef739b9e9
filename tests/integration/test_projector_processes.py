"""Projectors as real processes: two at once, kill -9 and restart, rebuild, Redis wake-up."""

from __future__ import annotations

import functools
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commands.application import EventMeta
from projections.event_stats import live as stats_live
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings
from tests.support.ledger import HANDLERS, Credit, OpenLedger
from tests.support.processes import cli_env, run, spawn, stop, wait_until

pytestmark = pytest.mark.slow
META = EventMeta("user-1", "req")


def counted_by_projection(c: Container) -> dict[str, int]:
    with c.engine.connect() as conn:
        return {r.topic: r._mapping["count"] for r in conn.execute(select(stats_live["stats"]))}


def counted_in_store(c: Container) -> dict[str, int]:
    records = c.app.recorder.events_record_cls  # type: ignore[attr-defined]
    with c.engine.connect() as conn:
        rows = conn.execute(select(records.topic, func.count()).group_by(records.topic))
        return {topic: n for topic, n in rows}


def tracked(c: Container) -> int:
    return c.positions()["event_stats"]


def reached(c: Container, position: int | None) -> bool:
    return position is not None and tracked(c) >= position


def write_steadily(c: Container, ledgers: int, credits: int, pause: float = 0.0) -> None:
    for i in range(ledgers):
        ledger_id = c.bus.execute(OpenLedger(f"l{i}"), META).result
        for _ in range(credits):
            c.bus.execute(Credit(ledger_id, 1), META)
            if pause:
                time.sleep(pause)


def test_two_projector_processes_and_a_kill_9_apply_every_event_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    c = bootstrap(make_settings(database_url, tmp_path), handlers=HANDLERS)
    env = cli_env(
        database_url,
        tmp_path,
        SHOPLEDGER_PROJECTION_BATCH_SIZE="7",
        SHOPLEDGER_PROJECTION_POLL_INTERVAL="PT0.05S",
    )
    log = tmp_path / "projectors.log"
    first = spawn(["projections", "run", "event_stats"], env, log)
    second = spawn(["projections", "run", "event_stats"], env, log)
    writer = threading.Thread(target=write_steadily, args=(c, 30, 10, 0.001))
    writer.start()
    try:
        assert wait_until(lambda: tracked(c) > 50, 30), log.read_text()[-2000:]
        first.send_signal(signal.SIGKILL)  # mid-run, no clean-up at all
        first.wait(10)
        third = spawn(["projections", "run", "event_stats"], env, log)
        writer.join(120)
        head = c.head_position()
        assert head == 30 * 11
        assert wait_until(lambda: tracked(c) == head, 60), log.read_text()[-2000:]
        stop(third)
    finally:
        for proc in (first, second):
            stop(proc)
    assert counted_by_projection(c) == counted_in_store(c)
    c.close()


def test_rebuild_from_the_cli_equals_incremental_processing_even_while_a_projector_runs(
    database_url: str, tmp_path: Path
) -> None:
    c = bootstrap(make_settings(database_url, tmp_path), handlers=HANDLERS)
    write_steadily(c, 20, 9)
    env = cli_env(database_url, tmp_path, SHOPLEDGER_PROJECTION_POLL_INTERVAL="PT0.05S")
    log = tmp_path / "projector.log"
    projector = spawn(["projections", "run"], env, log)
    try:
        assert wait_until(lambda: tracked(c) == c.head_position(), 30), log.read_text()[-2000:]
        incremental = counted_by_projection(c)
        writer = threading.Thread(target=write_steadily, args=(c, 5, 9, 0.002))
        writer.start()
        result = run(["projections", "rebuild", "event_stats"], env)
        writer.join(60)
        assert result.returncode == 0, result.stderr
        assert "rebuilt event_stats" in result.stdout
        assert wait_until(lambda: tracked(c) == c.head_position(), 30)
    finally:
        stop(projector)
    after = counted_by_projection(c)
    assert after == counted_in_store(c)
    assert sum(after.values()) == sum(incremental.values()) + 5 * 10
    status = run(["projections", "status"], env)
    assert status.returncode == 0 and "event_stats" in status.stdout
    assert "Ledger.Credited" in status.stdout and "events by type" in status.stdout
    c.close()


def test_rebuild_of_an_unknown_projection_is_refused(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    result = run(["projections", "rebuild", "nope"], env)
    assert result.returncode == 2 and "unknown projection 'nope'" in result.stderr


@pytest.mark.redis
def test_a_projector_process_is_woken_through_redis_long_before_its_poll(
    mariadb_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(mariadb_url, tmp_path, redis_url=redis_url)
    c = bootstrap(settings, handlers=HANDLERS)
    env = cli_env(
        mariadb_url,
        tmp_path,
        SHOPLEDGER_REDIS_URL=redis_url,
        SHOPLEDGER_PROJECTION_POLL_INTERVAL="PT60S",
    )
    log = tmp_path / "projector.log"
    projector = spawn(["projections", "run", "event_stats"], env, log)
    try:
        time.sleep(1.5)  # let it start and subscribe (it then sleeps for 60 s unless woken)
        started = time.monotonic()
        seen = False
        for _ in range(5):
            position = c.bus.execute(OpenLedger("wake"), META).position
            if wait_until(functools.partial(reached, c, position), 2.0):
                seen = True
                break
        elapsed = time.monotonic() - started
    finally:
        stop(projector)
        c.close()
    assert seen and elapsed < 10, log.read_text()[-2000:]
