"""Shared fixtures: backends (in-memory SQLite, SQLite file, MariaDB) and Redis.

Every test that needs MariaDB or Redis makes its own database / key space and drops it after.
With CI=true a missing server is a failure, never a skip.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

import shopledger.bootstrap
from api.app import create_app
from commands.credentials import Passwords
from shopledger.bootstrap import Container, bootstrap
from shopledger.settings import Settings, load_settings
from tests.support.ledger import HANDLERS, LedgerBalances
from tests.support.ledger_api import router

#: Where the tests' servers are, and what the databases they make are called (README "Tests").
MARIADB_ADMIN_URL = os.environ.get(
    "SHOPLEDGER_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306"
).rstrip("/")
#: The test server on this machine: no TLS, which PyMySQL would otherwise try on every new
#: connection, building a fresh TLS context each time (~15 ms of CPU; hundreds of
#: connections a run). A server elsewhere, or a URL with its own ssl_* option, keeps it.
_SERVER = make_url(MARIADB_ADMIN_URL)
_NO_TLS = (
    "&ssl_disabled=true"
    if _SERVER.host in ("127.0.0.1", "localhost", "::1")
    and not any(k.startswith("ssl") for k in _SERVER.query)
    else ""
)
REDIS_URL = os.environ.get("SHOPLEDGER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DB_PREFIX = os.environ.get("SHOPLEDGER_TEST_DB_PREFIX", "sl_test_")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Test files (tmp_path: SQLite databases, mail, keys) go to memory when the machine has a tmpfs
# at /dev/shm: a SQLite commit there costs no fsync, and the suite is bound by the machine's
# two cores. SHOPLEDGER_TEST_TMPDIR (a path, or "" for the system default) overrides it.
_TMPDIR = os.environ.get("SHOPLEDGER_TEST_TMPDIR", "/dev/shm")
if (
    _TMPDIR
    and os.path.isdir(_TMPDIR)
    and os.access(_TMPDIR, os.W_OK)
    and shutil.disk_usage(_TMPDIR).free >= 2 * 1024**3  # a container's 64 MiB /dev/shm is not
):
    os.environ["TMPDIR"] = _TMPDIR
    tempfile.tempdir = None  # computed again from TMPDIR on next use


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def quick_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps built in the test process hash with argon2id at 1 MiB and one pass (about 1 ms,
    not 20: the suite signs up and in thousands of times). Processes a test starts, and tests
    marked ``production_password_hashing``, keep the production strength."""
    if request.node.get_closest_marker("production_password_hashing") is None:
        quick = functools.partial(Passwords, memory_kib=1024, time_cost=1)
        monkeypatch.setattr(shopledger.bootstrap, "Passwords", quick)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database for this test, dropped afterwards."""
    import pymysql
    from sqlalchemy.engine import make_url

    server = make_url(MARIADB_ADMIN_URL)
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        conn = pymysql.connect(
            host=server.host or "127.0.0.1",
            port=server.port or 3306,
            user=server.username or "root",
            password=server.password or "",
        )
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"MariaDB at {server.host}:{server.port or 3306}", exc)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield f"{MARIADB_ADMIN_URL}/{name}?charset=utf8mb4{_NO_TLS}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis (db 15 unless SHOPLEDGER_TEST_REDIS_URL says otherwise); each test that uses it
    works under its own queue/key prefix."""
    import redis

    url = REDIS_URL
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"Redis at {url}", exc)
    yield url
    client.close()


@pytest.fixture(params=["sqlite", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Integration tests run once on a SQLite file and once on MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shopledger.db'}"
    return str(request.getfixturevalue("mariadb_url"))


_SHARED_KEY: list[str] = []


def shared_jwt_key() -> str:
    """One RSA key for the whole run (generating one per test costs ~100 ms each)."""
    if not _SHARED_KEY:
        import tempfile

        from commands.credentials import load_or_create_private_key

        where = tempfile.mkdtemp(prefix="sl-test-keys-")
        atexit.register(shutil.rmtree, where, True)
        path = os.path.join(where, "jwt.pem")
        load_or_create_private_key(Path(path))
        _SHARED_KEY.append(path)
    return _SHARED_KEY[0]


def make_settings(database_url: str, tmp_path, **overrides: object) -> Settings:
    overrides.setdefault("jwt_private_key_file", shared_jwt_key())
    overrides.setdefault("mail_url", f"file://{tmp_path / 'mail'}")
    overrides.setdefault("environment", "test")
    # Tests sign up and in many times from one address; the sign-in rate limit tests turn
    # the limits back on (with their real defaults: tests/e2e/test_auth_rate_limits_http.py).
    overrides.setdefault("auth_rate_limits", False)
    return load_settings(
        database_url=database_url,
        var_dir=tmp_path,
        projection_poll_interval="PT0.2S",
        **overrides,
    )


@pytest.fixture
def memory_container(tmp_path) -> Iterator[Container]:
    """The whole write and read side on in-memory SQLite, with the ledger test domain."""
    container = bootstrap(
        make_settings("sqlite:///:memory:", tmp_path),
        projections=[LedgerBalances],
        handlers=HANDLERS,
    )
    yield container
    container.close()


@pytest.fixture
def container(database_url: str, tmp_path) -> Iterator[Container]:
    """Same as ``memory_container`` on each real back end."""
    c = bootstrap(
        make_settings(database_url, tmp_path), projections=[LedgerBalances], handlers=HANDLERS
    )
    yield c
    c.close()


ClientFactory = Callable[..., TestClient]

_SCHEMA_TEMPLATE: list[Path] = []


def fresh_sqlite(path: Path) -> str:
    """A new SQLite database as bootstrap leaves it, copied from one bootstrapped once per test
    process: creating the ~80 tables costs each test about 0.1 s of CPU. (Tests of schema
    creation and upgrades make their own databases.)"""
    if not _SCHEMA_TEMPLATE:
        where = Path(tempfile.mkdtemp(prefix="sl-test-schema-"))
        made = bootstrap(
            make_settings(f"sqlite:///{where / 'template.db'}", where),
            projections=[LedgerBalances],
            handlers=HANDLERS,
        )
        assert made.head_position() == 0  # a schema, no events
        made.close()
        atexit.register(shutil.rmtree, where, True)
        _SCHEMA_TEMPLATE.append(where / "template.db")
    # SQLite's backup API, not a file copy: the store runs in WAL mode, and a copy of the main
    # file alone could miss what is still in the write-ahead log.
    with (
        contextlib.closing(sqlite3.connect(_SCHEMA_TEMPLATE[0])) as source,
        contextlib.closing(sqlite3.connect(path)) as target,
    ):
        source.backup(target)
    return f"sqlite:///{path}"


@pytest.fixture
def make_client(tmp_path, request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """Build a TestClient around a fresh container; keyword arguments become settings."""
    if "database_url" in request.fixturenames:
        # Set the database up first, so that it is dropped only after the clients (and their
        # projection threads) have stopped, whatever order the test names the two in.
        request.getfixturevalue("database_url")
    opened: list[TestClient] = []

    def factory(
        database_url: str | None = None, background: bool = True, **settings: object
    ) -> TestClient:
        # A SQLite file, not ":memory:": in-memory SQLite shares one connection between every
        # thread, so a query's rollback could undo a projector's transaction mid-flight.
        database_url = database_url or fresh_sqlite(tmp_path / f"client{len(opened)}.db")
        container = bootstrap(
            make_settings(database_url, tmp_path, **settings),
            projections=[LedgerBalances],
            handlers=HANDLERS,
        )
        client = TestClient(
            create_app(
                container, run_background=background, run_mail=background, extra_routers=[router]
            )
        )
        client.__enter__()
        opened.append(client)
        return client

    yield factory
    for client in opened:
        client.__exit__(None, None, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by the servers it needs, so `-m "not mariadb and not redis"` (make
    test-fast) selects what runs on SQLite and in memory alone."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec is not None else None
        if "mariadb_url" in names or backend == "mariadb":
            item.add_marker(pytest.mark.mariadb)
        if "redis_url" in names:
            item.add_marker(pytest.mark.redis)
