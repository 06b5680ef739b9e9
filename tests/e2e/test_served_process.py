"""`shopledger serve` as a real process, as `make run` starts it, and in scaled mode."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.processes import SHOPLEDGER, answers, cli_env, free_port, spawn, stop, wait_until

pytestmark = pytest.mark.slow


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = spawn(["serve", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"

    assert wait_until(lambda: answers(f"{base}/healthz", 0.5), 30, 0.1), log.read_text()[-3000:]
    return proc, base


def test_embedded_serve_answers_probes_and_docs_and_logs_json_with_request_ids(
    tmp_path: Path,
) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'var' / 'shop.db'}", tmp_path)
    log = tmp_path / "serve.log"
    proc, base = _serve(env, log)
    try:
        ready = httpx.get(f"{base}/readyz", headers={"X-Request-ID": "probe-1"})
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert "redis" not in ready.json()["checks"]
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "shopledger"
    finally:
        stop(proc, signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells the truth.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()
    assert (tmp_path / "var" / "shop.db").exists()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("requestId") == "probe-1" and e.get("path") == "/readyz" for e in lines)
    assert any(e.get("msg") == "serving" and e.get("mode") == "embedded" for e in lines)


@pytest.mark.mariadb
@pytest.mark.redis
def test_scaled_serve_checks_redis_and_leaves_projections_to_their_own_process(
    mariadb_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = cli_env(mariadb_url, tmp_path, SHOPLEDGER_REDIS_URL=redis_url)
    log = tmp_path / "serve.log"
    proc, base = _serve(env, log)
    try:
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["checks"]["redis"] == {"ok": True}
        assert ready["checks"]["database"] == {"ok": True}
    finally:
        stop(proc)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("mode") == "scaled" and e.get("projectionsInProcess") is False for e in lines)


def test_serve_with_a_bad_setting_exits_with_one_line(tmp_path: Path) -> None:
    env = cli_env(
        f"sqlite:///{tmp_path / 'x.db'}", tmp_path, SHOPLEDGER_MIN_POSITION_WAIT="two seconds"
    )
    result = subprocess.run(
        [*SHOPLEDGER, "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "SHOPLEDGER_MIN_POSITION_WAIT" in result.stderr


def test_a_buyer_signs_up_verifies_from_the_mail_file_and_logs_in_against_a_served_process(
    tmp_path: Path,
) -> None:
    import email
    import re
    from email import policy

    env = cli_env(f"sqlite:///{tmp_path / 'var' / 'shop.db'}", tmp_path)  # mail under $VAR_DIR/mail
    log = tmp_path / "serve.log"
    proc, base = _serve(env, log)
    secret = "a long enough secret"
    try:
        r = httpx.post(
            f"{base}/api/auth/register",
            json={"email": "mei@example.com", "username": "mei", "password": secret},
        )
        assert r.status_code == 201, r.text
        mail_dir = tmp_path / "mail"
        assert wait_until(lambda: any(mail_dir.glob("*.eml")), 10), (
            "the verification mail was not written"
        )
        [path] = list(mail_dir.glob("*.eml"))
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        link = re.search(r"https?://\S+token=\S+", message.get_body().get_content()).group(0)  # type: ignore[union-attr]
        assert link.startswith("http://127.0.0.1:8000/verify-email?token=")
        token = link.split("token=", 1)[1]
        # As a person would: the link opens a page (opening it uses nothing up), its button
        # confirms the address.
        page = httpx.get(link.replace("http://127.0.0.1:8000", base))
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert 'method="post"' in page.text and token in page.text
        done = httpx.post(f"{base}/verify-email", data={"token": token})
        assert done.status_code == 200 and "Email confirmed" in done.text
        r = httpx.post(
            f"{base}/api/auth/login", json={"email": "mei@example.com", "password": secret}
        )
        assert r.status_code == 200
        headers = {
            "Authorization": f"Bearer {r.json()['accessToken']}",
            "X-Min-Position": r.headers["X-Event-Position"],
        }
        me = httpx.get(f"{base}/api/users/me", headers=headers)
        assert me.status_code == 200 and me.json()["emailVerified"] is True
    finally:
        stop(proc, signal.SIGTERM)
    assert secret not in log.read_text()
    assert "$argon2" not in log.read_text()
    assert token.split(".", 1)[1] not in log.read_text()  # the link's secret is not logged
