"""The live channel against served processes with a real WebSocket client: embedded (one
process, SQLite) and scaled (two API processes and a projector on MariaDB and Redis: a message
posted on one API process is pushed by the other within a second), and a reconnect with
``after`` loses nothing."""

from __future__ import annotations

import functools
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import shared_jwt_key
from tests.support.accounts import PASSWORD
from tests.support.processes import answers, cli_env, free_port, run, spawn, stop, wait_until

pytestmark = [pytest.mark.slow]


def _admin(env: dict[str, str], name: str) -> None:
    made = run(["create-admin", "--email", f"{name}@example.com", "--password", PASSWORD], env)
    assert made.returncode == 0, made.stderr


def _login(base: str, name: str) -> tuple[str, str]:
    r = httpx.post(
        f"{base}/api/auth/login",
        json={"email": f"{name}@example.com", "password": PASSWORD},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["user"]["userId"], r.json()["accessToken"]


def _up(base: str) -> bool:
    return answers(f"{base}/healthz")


def _next(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next item of that type; items of other types are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        item = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if item["type"] == kind:
            return dict(item)


def _both(ws: Any, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """The message and the receiver's notification it makes, in whichever order they come."""
    got: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(got) < 2:
        item = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        got[item["type"]] = item
    return got


def _exercise(writer: str, reader: str, env: dict[str, str], *, reconnect: bool = True) -> None:
    """``first`` posts through ``writer``; ``second`` listens on ``reader``; then (with
    ``reconnect``) a reconnect with ``after`` and a forged token."""
    _admin(env, "first")
    _admin(env, "second")
    first_id, first = _login(writer, "first")
    second_id, second = _login(reader, "second")
    ws_base = reader.replace("http://", "ws://")
    with connect(f"{ws_base}/api/ws?token={second}", open_timeout=10) as ws:
        assert _next(ws, "ready")["userId"] == second_id
        started = time.monotonic()
        r = httpx.post(
            f"{writer}/api/messages",
            json={"toUserId": second_id, "text": "即時訊息"},
            headers={"Authorization": f"Bearer {first}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        got = _both(ws)
        delay = time.monotonic() - started
        pushed, note = got["message"], got["notification"]
        assert pushed["messageId"] == r.json()["messageId"] and pushed["senderId"] == first_id
        assert delay < 1.0, f"pushed {delay:.2f} s after the post"
        assert note["kind"] == "MESSAGE_RECEIVED"
        last = max(pushed["position"], note["position"])
    if not reconnect:
        return
    missed = [
        httpx.post(
            f"{writer}/api/messages",
            json={"toUserId": second_id, "text": f"離線{n}"},
            headers={"Authorization": f"Bearer {first}"},
            timeout=30,
        ).json()["messageId"]
        for n in range(3)
    ]
    with connect(f"{ws_base}/api/ws?token={second}&after={last}", open_timeout=10) as ws:
        _next(ws, "ready")
        replayed = [_next(ws, "message")["messageId"] for _ in missed]
        assert replayed == missed
    with connect(f"{ws_base}/api/ws?token=forged", open_timeout=10) as ws:
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=5)
        assert getattr(closed.value, "rcvd", None) is not None
        assert closed.value.rcvd.code == 4401  # type: ignore[attr-defined]


def test_embedded_mode_pushes_to_a_real_websocket_client(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)
    _admin(env, "boss")  # creates the database before the server starts
    port = free_port()
    log = tmp_path / "serve.log"
    proc = spawn(["serve", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _up(base), 60, 0.1), log.read_text()[-2000:]
        _exercise(base, base, env)
    finally:
        stop(proc)


@pytest.mark.mariadb
@pytest.mark.redis
def test_scaled_mode_pushes_from_the_other_api_process(
    mariadb_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = cli_env(
        mariadb_url,
        tmp_path,
        SHOPLEDGER_REDIS_URL=redis_url,
        SHOPLEDGER_QUEUE_PREFIX=f"p{uuid.uuid4().hex[:10]}",
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=shared_jwt_key(),
    )
    _admin(env, "boss")
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"{n}.log" for n in ("api1", "api2", "projector")]
    procs: list[subprocess.Popen[bytes]] = [
        spawn(["serve", "--port", str(ports[0])], env, logs[0]),
        spawn(["serve", "--port", str(ports[1])], env, logs[1]),
        spawn(["projections", "run"], env, logs[2]),
    ]
    one, two = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        for base in (one, two):
            up = wait_until(functools.partial(_up, base), 60, 0.1)
            assert up, "\n".join(p.read_text()[-1500:] for p in logs if p.exists())
        _exercise(one, two, env, reconnect=False)  # reconnects: the embedded test
    finally:
        for proc in procs:
            stop(proc)
