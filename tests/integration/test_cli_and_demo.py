"""The command line names its database and serves HTTPS; seed-demo's unpaid orders survive a
server started on the demo (the unpaid-order TTL counts from their placement, which is recent)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from projections.notifications import live as notification_tables
from queries import orders as q
from queries.common import PageRequest
from shopledger.bootstrap import bootstrap
from shopledger.cli import database_label, main
from shopledger.seed import seed_demo, unpaid_age
from shopledger.settings import load_settings
from tests.conftest import make_settings, shared_jwt_key
from tests.support.processes import REPO, SHOPLEDGER, cli_env, free_port, spawn, stop, wait_until


def _env_without_database(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLEDGER_")}
    env.update(
        SHOPLEDGER_ENVIRONMENT="test",
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=shared_jwt_key(),
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


def _shopledger(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOPLEDGER, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- the database line ------------------------------------------------------------------------
def test_database_label_masks_passwords_and_makes_sqlite_paths_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mysql = load_settings(database_url="mysql://root:s3cret@db.example:3306/shop?charset=utf8mb4")
    assert database_label(mysql) == "mysql+pymysql://root:***@db.example:3306/shop?charset=utf8mb4"
    monkeypatch.chdir(tmp_path)
    relative = load_settings(database_url="sqlite:///shop.db")
    assert database_label(relative) == f"sqlite:///{tmp_path / 'shop.db'}"
    default = load_settings(database_url="", var_dir=Path("var"))
    assert database_label(default) == f"sqlite:///{tmp_path / 'var' / 'shopledger.db'}"
    assert database_label(load_settings(database_url="sqlite:///:memory:")) == "sqlite:///:memory:"


@pytest.mark.slow
def test_every_command_first_names_the_database_of_the_directory_it_runs_in(
    tmp_path: Path,
) -> None:
    env = _env_without_database(tmp_path, SHOPLEDGER_MAIL_URL=f"file://{tmp_path / 'mail'}")
    first, second = tmp_path / "one", tmp_path / "two"
    commands = {
        first: ["projections", "status"],
        second: ["create-admin", "--email", "boss@example.com", "--password", "long enough pw"],
    }
    for where, args in commands.items():
        where.mkdir()
        done = _shopledger(args, env, where)
        assert done.returncode == 0, done.stderr
        line = done.stderr.splitlines()[0]
        assert line == f"shopledger: database sqlite:///{where / 'var' / 'shopledger.db'}"
        assert "shopledger: database" not in done.stdout  # stdout stays the command's answer


# --- TLS --------------------------------------------------------------------------------------
def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.slow
def test_half_a_tls_pair_or_a_missing_file_stops_serve_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = _self_signed(tmp_path)
    env = cli_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    # as a process: exit status 2 and one line, like any other bad setting
    done = _shopledger(["serve", "--ssl-certfile", str(cert)], env, tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("shopledger: --ssl-certfile and --ssl-keyfile go together")
    assert line.endswith("--ssl-keyfile is missing")
    # the other combinations, in this process (the same main(), without the start-up cost)
    for name in [k for k in os.environ if k.startswith("SHOPLEDGER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("SHOPLEDGER_"):
            monkeypatch.setenv(name, value)
    missing = str(tmp_path / "nope.pem")
    cases = [
        (["serve", "--ssl-keyfile", str(key)], {}, "--ssl-certfile is missing"),
        (
            ["serve"],
            {"SHOPLEDGER_SSL_KEYFILE": str(key)},
            "SHOPLEDGER_SSL_CERTFILE and SHOPLEDGER_SSL_KEYFILE go together",
        ),
        (["serve", "--ssl-certfile", missing, "--ssl-keyfile", str(key)], {}, "does not exist"),
        # a flag completes the pair the environment started (and is checked like it)
        (["serve", "--ssl-certfile", missing], {"SHOPLEDGER_SSL_KEYFILE": str(key)}, "nope.pem"),
    ]
    for args, extra, says in cases:
        with monkeypatch.context() as m:
            for name, value in extra.items():
                m.setenv(name, value)
            assert main(args) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and says in err, (args, err)


@pytest.mark.slow
def test_serve_speaks_https_with_the_flags_and_ignores_forwarded_for_from_localhost(
    tmp_path: Path,
) -> None:
    cert, key = _self_signed(tmp_path)
    env = cli_env(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = spawn(
        ["serve", "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        env,
        log,
    )
    base = f"https://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, verify=False, timeout=10)

    def up() -> bool:
        try:
            return client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_until(up, 30, 0.1), log.read_text()[-3000:]
        # HTTPS on: every answer tells browsers to stay on HTTPS.
        assert client.get("/healthz").headers["strict-transport-security"].startswith("max-age=")
        secret = "a long enough secret"
        r = client.post(
            "/api/auth/register",
            json={"email": "mei@example.com", "username": "mei", "password": secret},
        )
        assert r.status_code == 201, r.text
        r = client.post(
            "/api/auth/login",
            json={"email": "mei", "password": secret},
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        )
        assert r.status_code == 200, r.text
        headers = {
            "Authorization": f"Bearer {r.json()['accessToken']}",
            "X-Min-Position": r.headers["X-Event-Position"],
        }
        history = client.get("/api/users/me/login-history", headers=headers)
        assert history.status_code == 200, history.text
        # uvicorn no longer believes 127.0.0.1's X-Forwarded-For on its own
        assert [e["ip"] for e in history.json()["entries"]] == ["127.0.0.1"]
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)  # TLS only
    finally:
        client.close()
        stop(proc)
    lines = log.read_text().splitlines()
    assert lines[0] == f"shopledger: database sqlite:///{tmp_path / 'shop.db'}"
    assert any('"url": "https://127.0.0.1:' in line for line in lines)


# --- seed-demo and the unpaid-order TTL ---------------------------------------------------------
def test_unpaid_age_stays_well_inside_the_ttl() -> None:
    assert unpaid_age(timedelta(minutes=30), 1.0) == timedelta(minutes=3)  # the default TTL
    assert unpaid_age(timedelta(hours=2), 1.0) == timedelta(minutes=5)  # at most five minutes
    assert unpaid_age(timedelta(seconds=30), 0.5) == timedelta(seconds=1.5)
    assert unpaid_age(timedelta(hours=2), 0.0) == timedelta(0)


@pytest.mark.slow
def test_unpaid_demo_orders_are_recent_and_outlive_the_timed_rules_of_a_server(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'demo.db'}",
        tmp_path,
        unpaid_order_ttl="PT10M",
        ship_reminder_after="PT1S",  # so the rules have work to do on the back-dated orders
        rule_sweep_interval="PT0.2S",
    )
    ttl = settings.unpaid_order_ttl
    container = bootstrap(settings)
    try:
        seeded_at = datetime.now(UTC)
        report = seed_demo(container, orders=20, seed=31)
        assert report.orders["CREATED"] == 2
        container.catch_up(120)
        unpaid = q.list_orders(
            container.engine, q.OrderFilter(status="CREATED"), PageRequest(1, 100)
        )
        ids = [o["orderId"] for o in unpaid["orders"]]
        assert len(ids) == 2
        for oid in ids:
            doc = q.get_order(container.engine, oid)
            assert doc is not None and doc["paymentMethod"] != "COD"
            placed = dt.datetime.fromisoformat(doc["createdAt"])
            expires = dt.datetime.fromisoformat(doc["expiresAt"])
            assert seeded_at - ttl / 10 - timedelta(seconds=1) <= placed <= datetime.now(UTC)
            assert expires == placed + ttl
            assert expires - datetime.now(UTC) > ttl / 2  # payable for most of the TTL

        # What `shopledger serve` does in embedded mode: projections and the timed rules in
        # threads. The rules fire the back-dated orders' ship reminders, not the unpaid expiry.
        container.start_background()
        container.start_rules()
        reminders = notification_tables["notifications"]

        def reminded() -> bool:
            with container.engine.connect() as conn:
                count = conn.execute(
                    select(func.count())
                    .select_from(reminders)
                    .where(reminders.c.type == "SHIP_REMINDER")
                ).scalar_one()
            return bool(count)

        assert wait_until(reminded, 30), "the timed rules did not run"
        time.sleep(1)  # a few more sweeps
        container.catch_up(30)
        for oid in ids:
            doc = q.get_order(container.engine, oid)
            assert doc is not None
            assert (doc["status"], doc["paymentStatus"]) == ("CREATED", "PENDING")
    finally:
        container.close()
