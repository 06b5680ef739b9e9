"""Read-your-writes across processes: the same client journey against two ``shopledger serve``
processes (MariaDB, Redis, a separate projector and worker), every write sent to one and every
read to the other, once with no consistency header and once with ``X-Min-Position``."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import shared_jwt_key
from tests.integration.test_scaled_mode import verification_token
from tests.support.accounts import PASSWORD
from tests.support.journey import Session, run_journey
from tests.support.processes import answers, cli_env, free_port, run, spawn, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.mariadb, pytest.mark.redis]


def _up(base: str) -> bool:
    return answers(f"{base}/healthz", timeout=1)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], Path]]:
    """Two API processes, a projector and a worker on one MariaDB database and Redis."""
    import pymysql

    from tests.conftest import DB_PREFIX, MARIADB_ADMIN_URL, REDIS_URL

    tmp_path = tmp_path_factory.mktemp("scaled")
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    mail_dir = tmp_path / "mail"
    env = cli_env(
        f"{MARIADB_ADMIN_URL}/{name}?charset=utf8mb4",
        tmp_path,
        SHOPLEDGER_REDIS_URL=REDIS_URL,
        SHOPLEDGER_QUEUE_PREFIX=f"c{uuid.uuid4().hex[:10]}",
        SHOPLEDGER_MAIL_URL=f"file://{mail_dir}",
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=shared_jwt_key(),
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        created = run(["create-admin", "--email", "boss@example.com", "--password", PASSWORD], env)
        assert created.returncode == 0, created.stderr
        ports = [free_port(), free_port()]
        procs += [spawn(["serve", "--port", str(p)], env, tmp_path / f"api{p}.log") for p in ports]
        procs.append(spawn(["projections", "run"], env, tmp_path / "projector.log"))
        procs.append(spawn(["worker"], env, tmp_path / "worker.log"))
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base in bases:
            assert wait_until(lambda b=base: _up(b), 60, 0.1), base  # type: ignore[misc]
        yield bases, mail_dir
    finally:
        for proc in procs:
            stop(proc)
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.mark.parametrize("consistency", ["session", "explicit"])
def test_writes_on_one_api_process_are_read_at_once_on_the_other(
    deployment: tuple[list[str], Path], consistency: str
) -> None:
    (one, two), mail_dir = deployment
    opened: list[httpx.Client] = []

    def session() -> Session:
        writer = httpx.Client(base_url=one, timeout=30)
        reader = httpx.Client(base_url=two, timeout=30)
        opened.extend((writer, reader))
        return Session(writer, reader, consistency)

    try:
        stale = run_journey(
            session, lambda address: verification_token(mail_dir, address), "boss@example.com"
        )
    finally:
        for client in opened:
            client.close()
    assert stale == []
