"""Password change and reset over HTTP, and their rate limits."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.support.accounts import TOKEN_RE, User, login, mails_to, register


def reset_token(client: TestClient, user: User) -> str:
    mails = [m for m in mails_to(client, user.email, 2) if m["Subject"] == "Reset your password"]
    assert mails, "no reset mail"
    body = mails[-1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    match = TOKEN_RE.search(body)
    assert match, body
    return match.group(1)


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def test_a_reset_link_sets_a_new_password_ends_every_session_and_lifts_the_lockout(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    user = login(client, register(client))
    for _ in range(5):  # lock the account
        client.post("/api/auth/login", json={"email": user.email, "password": "wrong guess!"})
    assert (
        client.post(
            "/api/auth/login", json={"email": user.email, "password": user.password}
        ).status_code
        == 423
    )
    r = client.post("/api/auth/forgot-password", json={"email": user.email.upper()})
    assert r.status_code == 202 and r.json() == {"status": "sent"}
    token = reset_token(client, user)
    weak = client.post("/api/auth/reset-password", json={"token": token, "newPassword": "12345678"})
    assert weak.status_code == 400 and error(weak)["details"]["field"] == "newPassword"
    new = "Alishan-tea-2027"
    r = client.post("/api/auth/reset-password", json={"token": token, "newPassword": new})
    assert r.status_code == 200 and r.json() == {"userId": user.user_id, "passwordReset": True}
    assert client.get("/api/users/me", headers=user.auth).status_code == 401  # session ended
    again = client.post("/api/auth/reset-password", json={"token": token, "newPassword": new})
    assert again.status_code == 400 and error(again)["code"] == "VALIDATION_ERROR"  # used
    old = client.post("/api/auth/login", json={"email": user.email, "password": user.password})
    assert old.status_code == 401
    user.password = new
    login(client, user)  # not locked any more


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    user = login(client, register(client))
    other = login(client, User(user.user_id, user.email, user.username, user.password))
    url = "/api/auth/change-password"
    r = client.post(
        url,
        json={"currentPassword": "not it at all", "newPassword": "Alishan-tea-2027"},
        headers=user.auth,
    )
    assert r.status_code == 400
    assert (error(r)["details"]["field"], error(r)["details"]["problem"]) == (
        "currentPassword",
        "WRONG_PASSWORD",
    )
    r = client.post(
        url,
        json={"currentPassword": user.password, "newPassword": user.username},
        headers=user.auth,
    )
    assert r.status_code == 400 and error(r)["details"]["field"] == "newPassword"
    r = client.post(
        url,
        json={"currentPassword": user.password, "newPassword": "Alishan-tea-2027"},
        headers=user.auth,
    )
    assert r.status_code == 204, r.text
    assert client.get("/api/users/me", headers=user.auth).status_code == 200  # this session
    assert client.get("/api/users/me", headers=other.auth).status_code == 401  # the others end
    user.password = "Alishan-tea-2027"
    login(client, user)


def test_forgot_password_tells_nothing_and_is_rate_limited_per_account(
    make_client: ClientFactory,
) -> None:
    client = make_client(auth_rate_limits=True)  # the real defaults: 5 an hour per account
    r = client.post("/api/auth/forgot-password", json={"email": "nobody@example.com"})
    assert r.status_code == 202 and r.json() == {"status": "sent"}
    assert "X-Event-Position" not in r.headers  # nothing recorded, so no mail queued
    bad = {"token": "x.y", "newPassword": "Alishan-tea-2027"}
    assert client.post("/api/auth/reset-password", json=bad).status_code == 400
    user = register(client)
    codes = [
        client.post("/api/auth/forgot-password", json={"email": user.email}).status_code
        for _ in range(6)
    ]
    assert codes == [202] * 5 + [429]
    r = client.post("/api/auth/forgot-password", json={"email": user.email})
    assert error(r)["code"] == "RATE_LIMITED" and int(r.headers["Retry-After"]) >= 1
