"""Helpers for tests that sign users up and in over HTTP."""

from __future__ import annotations

import email
import re
import time
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient

from aggregates.accounts import normalize_email, normalize_username
from commands.accounts import EnsureAdmin, Register
from commands.application import EventMeta
from shopledger.bootstrap import Container

PASSWORD = "correct horse battery"
TOKEN_RE = re.compile(r"token=([0-9a-f]{32}\.[A-Za-z0-9_-]+)")


@dataclass
class User:
    user_id: str
    email: str
    username: str
    password: str
    access: str = ""
    refresh: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def container_of(client: TestClient) -> Container:
    return client.app.state.container  # type: ignore[attr-defined]


def mail_dir(client: TestClient) -> Path:
    return Path(container_of(client).settings.resolved_mail_url.removeprefix("file://"))


def deliver(client: TestClient) -> None:
    container_of(client).mail.deliver_due()


def mails_to(
    client: TestClient, address: str, at_least: int = 1
) -> list[email.message.EmailMessage]:
    """Messages delivered to ``address``, oldest first (waits briefly: the mail thread may
    hold the lease on a message while it writes it)."""
    deadline = time.monotonic() + 5
    while True:
        deliver(client)
        found = []
        directory = mail_dir(client)
        paths = (
            sorted(directory.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
            if directory.exists()
            else []
        )
        for path in paths:
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == address:
                found.append(message)
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def verification_token(client: TestClient, address: str) -> str:
    messages = mails_to(client, address)
    assert messages, f"no mail to {address}"
    body = messages[-1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    match = TOKEN_RE.search(body)
    assert match, body
    return match.group(1)


def register(
    client: TestClient, name: str | None = None, password: str = PASSWORD, **extra: Any
) -> User:
    name = name or f"u{uuid4().hex[:10]}"
    address = f"{name}@example.com"
    r = client.post(
        "/api/auth/register",
        json={"email": address, "username": name, "password": password, **extra},
    )
    assert r.status_code == 201, r.text
    return User(r.json()["userId"], address, name, password)


def login(client: TestClient, user: User, **extra: Any) -> User:
    r = client.post(
        "/api/auth/login", json={"email": user.email, "password": user.password, **extra}
    )
    assert r.status_code == 200, r.text
    user.access, user.refresh = r.json()["accessToken"], r.json()["refreshToken"]
    return user


def verified_user(client: TestClient, name: str | None = None) -> User:
    user = register(client, name)
    r = client.post(
        "/api/auth/verify-email", json={"token": verification_token(client, user.email)}
    )
    assert r.status_code == 200, r.text
    return login(client, user)


def admin(client: TestClient, name: str | None = None) -> User:
    """An admin made the way `shopledger create-admin` makes one."""
    container = container_of(client)
    name = name or f"admin{uuid4().hex[:8]}"
    address = f"{name}@example.com"
    command = EnsureAdmin(
        Register(
            account_id=uuid4(),
            email=normalize_email(address),
            username=name,
            username_key=normalize_username(name),
            password_hash=container.passwords.hash(PASSWORD),
            display_name=name,
            phone=None,
            verification=None,
            role="admin",
            email_verified=True,
        )
    )
    _, account = container.bus.execute(command, EventMeta("system:test", "test")).result
    return login(client, User(str(account.id), address, name, PASSWORD))


def wait(client: TestClient) -> None:
    """Let the projections catch up (tests that read right after a command)."""
    container_of(client).catch_up()
