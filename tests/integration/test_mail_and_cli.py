"""Mail through a real SMTP server, the outbox's retry, and `shopledger create-admin`."""

from __future__ import annotations

import email
import time
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from commands.outbox import mail_outbox
from tests.conftest import shared_jwt_key
from tests.support.accounts import PASSWORD, TOKEN_RE, container_of, register
from tests.support.processes import cli_env, free_port, run, wait_until


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def test_verification_mail_is_delivered_to_a_real_smtp_server(make_client) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        client = make_client(mail_url=f"smtp://127.0.0.1:{port}")
        user = register(client)
        deadline = time.monotonic() + 10
        while not inbox.messages and time.monotonic() < deadline:
            container_of(client).mail.deliver_due()
            time.sleep(0.05)
    finally:
        controller.stop()
    [(sender, recipients, content)] = inbox.messages
    assert recipients == [user.email]
    assert "no-reply@shopledger.local" in sender
    message = email.message_from_bytes(content, policy=policy.default)
    assert TOKEN_RE.search(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]

    def sent() -> Any:
        # The server has the message before the sender records it as sent: wait for that.
        with container_of(client).engine.connect() as conn:
            return conn.execute(select(mail_outbox)).one()

    assert wait_until(lambda: sent().sent_at is not None, 10)
    row = sent()
    assert row.sent_at is not None and row.body is None  # the live link is not kept once sent


def test_undeliverable_mail_stays_in_the_outbox_and_is_retried(make_client) -> None:
    port = free_port()  # nothing listens here
    client = make_client(mail_url=f"smtp://127.0.0.1:{port}", background=False)
    container = container_of(client)
    register(client)
    assert container.mail.deliver_due() == 0
    with container.engine.connect() as conn:
        row = conn.execute(select(mail_outbox)).one()
    assert row.sent_at is None and row.attempts == 1 and row.last_error
    assert row.next_attempt_at > row.created_at  # backed off, not lost
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        container.mail.clock = lambda: row.next_attempt_at  # the retry is due
        assert container.mail.deliver_due() == 1
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


@pytest.mark.slow
def test_create_admin_is_idempotent_and_the_admin_can_log_in(tmp_path: Path, make_client) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    env = cli_env(db, tmp_path, SHOPLEDGER_JWT_PRIVATE_KEY_FILE=str(tmp_path / "k.pem"))
    first = run(["create-admin", "--email", "Boss@Example.com", "--password", PASSWORD], env)
    assert first.returncode == 0, first.stderr
    assert "created admin boss@example.com" in first.stdout
    second = run(
        ["create-admin", "--email", "boss@example.com", "--password", "another password"], env
    )
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stdout
    bad = run(["create-admin", "--email", "boss@example.com", "--password", "short"], env)
    assert bad.returncode == 2 and "password" in bad.stderr

    client = make_client(db, jwt_private_key_file=str(tmp_path / "k.pem"))
    assert (
        container_of(client).head_position() == 3
    )  # account + email key + username key: one run's events
    r = client.post("/api/auth/login", json={"email": "boss@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text  # the second run did not change the password
    assert r.json()["user"]["role"] == "admin"
    assert (
        client.get(
            "/api/users", headers={"Authorization": f"Bearer {r.json()['accessToken']}"}
        ).status_code
        == 200
    )


@pytest.mark.slow
def test_bad_mail_url_or_key_file_stops_startup_with_one_line(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, SHOPLEDGER_MAIL_URL="ftp://nope")
    r = run(["projections", "status"], env)
    assert r.returncode == 2 and "SHOPLEDGER_MAIL_URL" in r.stderr
    key = tmp_path / "notakey.pem"
    key.write_text("hello")
    env = cli_env(
        f"sqlite:///{tmp_path / 'x.db'}", tmp_path, SHOPLEDGER_JWT_PRIVATE_KEY_FILE=str(key)
    )
    r = run(["projections", "status"], env)
    assert (
        r.returncode == 1
        and "JWT signing key" in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
    )
    secret = tmp_path / "link-secret"
    secret.write_text("not hex")
    env = cli_env(
        f"sqlite:///{tmp_path / 'x.db'}",
        tmp_path,
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=shared_jwt_key(),
        SHOPLEDGER_LINK_SECRET_FILE=str(secret),
    )
    r = run(["projections", "status"], env)
    assert (
        r.returncode == 1
        and "SHOPLEDGER_LINK_SECRET_FILE" in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
    )
