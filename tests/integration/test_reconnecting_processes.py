"""Real processes that cannot reach Redis or the database wait for it instead of exiting.

``shopledger worker`` started while its Redis port is closed (and later cut off), and ``shopledger projections
run`` started before its MariaDB database exists and later cut off from the server, each
log ONE line when the outage starts and one when it ends (never a traceback), retry with a
capped backoff (SHOPLEDGER_RECONNECT_MAX_DELAY, 1 s here) and then do their work. The
servers come and go through a port this test opens and closes (tests/support/forwarder.py).
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pymysql
import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from commands.application import EventMeta
from commands.outbox import OutgoingMail, enqueue
from shopledger.bootstrap import bootstrap
from tests.conftest import DB_PREFIX, MARIADB_ADMIN_URL, make_settings
from tests.support.forwarder import Forwarder, free_port_in
from tests.support.ledger import HANDLERS, LedgerBalances, OpenLedger
from tests.support.processes import cli_env, spawn, stop, wait_until

# Real processes, and the servers themselves (reached directly, not through the fixtures).
pytestmark = pytest.mark.slow

#: This file's ports (the ops helper's range): worker test, projector test.
WORKER_PORTS = (18500, 18549)
PROJECTOR_PORTS = (18550, 18599)


def _seen(log: Path, text: str, times: int = 1) -> bool:
    return len(_lines(log, text)) >= times


def _lines(log: Path, text: str) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text(errors="replace").splitlines() if text in line]


def outbox(database: str, subject: str) -> None:
    """Put one message in the outbox, as a command would."""
    engine = create_engine(database)
    with Session(engine) as session, session.begin():
        enqueue(session, [OutgoingMail(uuid.uuid4().hex, "buyer@example.com", subject, "hi")])
    engine.dispose()


def _forget(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.redis
def test_a_worker_started_without_redis_waits_for_it_and_then_delivers_mail(
    tmp_path: Path, redis_url: str
) -> None:
    real = make_url(redis_url)
    forwarder = Forwarder(
        free_port_in(*WORKER_PORTS), (real.host or "127.0.0.1", real.port or 6379)
    )
    database = f"sqlite:///{tmp_path / 'shop.db'}"
    prefix = f"rc{uuid.uuid4().hex[:10]}"
    log = tmp_path / "worker.log"
    mail = tmp_path / "mail"
    env = cli_env(
        database,
        tmp_path,
        SHOPLEDGER_REDIS_URL=f"redis://127.0.0.1:{forwarder.port}/{real.database or 0}",
        SHOPLEDGER_QUEUE_PREFIX=prefix,
        SHOPLEDGER_MAIL_URL=f"file://{mail}",
        SHOPLEDGER_RULE_SWEEP_INTERVAL="PT1S",
        SHOPLEDGER_RECONNECT_MAX_DELAY="PT1S",
        SHOPLEDGER_LOG_FORMAT="text",
    )
    proc = spawn(["worker", "--name", prefix], env, log)
    try:
        assert wait_until(lambda: _seen(log, "cannot reach Redis"), 20), log.read_text()
        # The worker made the tables before it looked for Redis: a message for the outbox.
        outbox(database, "first")
        assert wait_until(lambda: proc.poll() is not None, 1.2) is False, "it must not exit"
        forwarder.open()
        assert wait_until(lambda: _seen(log, "Redis is reachable again"), 10), log.read_text()
        assert wait_until(lambda: any(mail.glob("*.eml")), 15), log.read_text()
        # Redis lost while it runs: the worker and RQ's scheduler each wait (one line each),
        # then carry on: a second message is delivered.
        forwarder.close()
        assert wait_until(lambda: _seen(log, "cannot reach Redis;", 2), 10), log.read_text()
        assert wait_until(lambda: _seen(log, "cannot reach Redis (RQ scheduler)"), 10), (
            log.read_text()
        )
        outbox(database, "second")
        forwarder.open()
        assert wait_until(lambda: _seen(log, "Redis is reachable again", 2), 10), log.read_text()
        assert wait_until(lambda: len(list(mail.glob("*.eml"))) == 2, 15), log.read_text()
        assert proc.poll() is None, log.read_text()
    finally:
        stop(proc, signal.SIGTERM)
        forwarder.close()
        _forget(redis_url, prefix)
    text = log.read_text()
    # One line per outage and process, not one per retry.
    assert len(_lines(log, "cannot reach Redis;")) == 2, text
    assert len(_lines(log, "cannot reach Redis (RQ scheduler)")) == 1, text
    assert "Traceback" not in text, text
    assert proc.returncode == 0, text


@pytest.mark.mariadb
def test_a_projector_waits_for_its_database_to_be_created_and_for_a_lost_server(
    tmp_path: Path,
) -> None:
    server = make_url(MARIADB_ADMIN_URL)
    host, port = server.host or "127.0.0.1", server.port or 3306
    try:
        admin = pymysql.connect(
            host=host, port=port, user=server.username or "root", password=server.password or ""
        )
    except Exception as exc:  # noqa: BLE001 - the fixture's rule: skip locally, fail in CI
        from tests.conftest import _unavailable

        _unavailable(f"MariaDB at {host}:{port}", exc)
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    forwarder = Forwarder(free_port_in(*PROJECTOR_PORTS), (host, port))
    forwarder.open()
    through = server.set(host="127.0.0.1", port=forwarder.port, database=name)
    direct = f"{MARIADB_ADMIN_URL}/{name}?charset=utf8mb4"
    log = tmp_path / "projector.log"
    env = cli_env(
        through.render_as_string(hide_password=False) + "?charset=utf8mb4",
        tmp_path,
        SHOPLEDGER_RECONNECT_MAX_DELAY="PT1S",
        SHOPLEDGER_PROJECTION_POLL_INTERVAL="PT0.2S",
        SHOPLEDGER_LOG_FORMAT="text",
    )
    # Only the ledger projection of the test domain: the product's projections are no part
    # of what is tested here, and a lighter process starts faster.
    proc = spawn(["projections", "run", "accounts"], env, log)
    container = None
    try:
        assert wait_until(lambda: _seen(log, "cannot reach the database"), 20), log.read_text()
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        assert wait_until(lambda: _seen(log, "database is reachable again"), 10), log.read_text()
        assert wait_until(lambda: _seen(log, "projections running"), 10), log.read_text()
        container = bootstrap(
            make_settings(direct, tmp_path), projections=[LedgerBalances], handlers=HANDLERS
        )

        def projected() -> bool:
            assert container is not None
            return container.positions()["accounts"] == container.head_position()

        container.bus.execute(OpenLedger("before"), EventMeta("test", "t1"))
        assert wait_until(projected, 10), log.read_text()

        forwarder.close()  # the server is gone for the projector (the test writes directly)
        assert wait_until(lambda: len(_lines(log, "cannot reach the database")) == 2, 15), (
            log.read_text()
        )
        container.bus.execute(OpenLedger("during"), EventMeta("test", "t2"))
        assert not projected()
        forwarder.open()
        assert wait_until(lambda: len(_lines(log, "database is reachable again")) == 2, 10), (
            log.read_text()
        )
        assert wait_until(projected, 10), log.read_text()
        assert proc.poll() is None, log.read_text()
    finally:
        stop(proc, signal.SIGTERM)
        forwarder.close()
        if container is not None:
            container.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
    text = log.read_text()
    # One line per outage (the start-up wait, then the lost server), however many retries.
    assert len(_lines(log, "cannot reach the database")) == 2, text
    assert "Traceback" not in text, text
