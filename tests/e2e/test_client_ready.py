"""What a client written only to the contract relies on: it reads its own writes with no special
header, CORS for browser apps, bodies capped before they are read, proxy headers believed only
from configured proxies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.support.accounts import PASSWORD, admin, login, register, verification_token
from tests.support.journey import Session, run_journey


def _sessions(client: TestClient, consistency: str) -> Session:
    # A client of its own (own cookie jar) around the same app; not entered, so the app's
    # background threads are not started a second time.
    other = TestClient(client.app)
    return Session(other, other, consistency)


@pytest.mark.parametrize("consistency", ["session", "explicit"])
def test_a_client_reads_every_write_at_once_with_or_without_a_consistency_header(
    make_client: ClientFactory, consistency: str
) -> None:
    client = make_client()
    boss = admin(client)
    stale = run_journey(
        lambda: _sessions(client, consistency),
        lambda address: verification_token(client, address),
        boss.email,
    )
    assert stale == []


@pytest.fixture
def frozen(make_client: ClientFactory) -> Iterator[tuple[TestClient, str]]:
    """An API whose projections do not run: every read model stays where it is."""
    client = make_client(background=False, min_position_wait="PT0.3S")
    boss = admin(client)
    yield client, boss.access


def test_a_read_waits_for_the_callers_own_write_then_answers_503_with_retry_after(
    frozen: tuple[TestClient, str],
) -> None:
    client, token = frozen
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/catalog/categories", json={"name": "茶葉"}, headers=auth)
    assert r.status_code == 201
    written = int(r.headers["X-Event-Position"])
    r = client.get("/api/catalog/categories", headers=auth)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json()["error"]["details"]["minPosition"] == written


def test_eventual_consistency_and_an_explicit_position_override_the_callers_mark(
    frozen: tuple[TestClient, str],
) -> None:
    client, token = frozen
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/catalog/categories", json={"name": "茶葉"}, headers=auth).is_success
    r = client.get("/api/catalog/categories", headers={**auth, "X-Consistency": "eventual"})
    assert r.status_code == 200 and "茶葉" not in r.text
    r = client.get("/api/catalog/categories", headers={**auth, "X-Min-Position": "0"})
    assert r.status_code == 200
    r = client.get("/api/catalog/categories", headers={**auth, "X-Consistency": "strong"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_another_callers_write_does_not_make_me_wait(frozen: tuple[TestClient, str]) -> None:
    client, token = frozen
    assert client.post(
        "/api/catalog/categories",
        json={"name": "茶葉"},
        headers={"Authorization": f"Bearer {token}"},
    ).is_success
    stranger = TestClient(client.app)  # no token, no cookie: no mark
    assert stranger.get("/api/catalog/categories").status_code == 200


def test_an_anonymous_writer_is_followed_by_a_signed_cookie_that_cannot_be_forged(
    frozen: tuple[TestClient, str],
) -> None:
    client, _ = frozen
    anonymous = TestClient(client.app)
    r = anonymous.post(
        "/api/auth/register",
        json={"email": "ann@example.com", "username": "ann", "password": PASSWORD},
    )
    assert r.status_code == 201
    position = r.headers["X-Event-Position"]
    assert anonymous.cookies["sl_pos"].startswith(f"{position}.")
    assert anonymous.get("/api/catalog/categories").status_code == 503  # waits for its write
    forged = TestClient(client.app, cookies={"sl_pos": "999999.0000"})
    assert forged.get("/api/catalog/categories").status_code == 200  # a bad MAC is no mark


def test_a_refused_login_answers_with_the_position_of_the_attempt_it_recorded(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    user = register(client)
    r = client.post("/api/auth/login", json={"email": user.email, "password": "not it at all"})
    assert r.status_code == 401 and int(r.headers["X-Event-Position"]) > 0
    r = client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "x" * 12})
    assert r.status_code == 401 and "X-Event-Position" not in r.headers  # nothing recorded


def test_cors_preflight_and_exposed_headers_for_a_configured_origin(
    make_client: ClientFactory,
) -> None:
    client = make_client(cors_origins="https://shop.example.tw, http://localhost:5173")
    r = client.options(
        "/api/cart/items",
        headers={
            "Origin": "https://shop.example.tw",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://shop.example.tw"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "idempotency-key" in r.headers["access-control-allow-headers"].lower()
    boss = admin(client)
    r = client.post(
        "/api/catalog/categories",
        json={"name": "茶葉"},
        headers={**boss.auth, "Origin": "http://localhost:5173"},
    )
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "x-event-position" in exposed and "retry-after" in exposed
    r = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_headers_unless_origins_are_configured(make_client: ClientFactory) -> None:
    client = make_client()
    r = client.options(
        "/api/cart/items",
        headers={"Origin": "https://shop.example.tw", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(
    make_client: ClientFactory,
) -> None:
    client = make_client(max_body_bytes=4096)
    r = client.post(
        "/api/auth/login",
        content=b'{"email": "' + b"a" * 10_000 + b'", "password": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"email": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'", "password": "x"}'

    r = client.post(
        "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    r = client.post(
        "/api/auth/login",
        json={"email": "a@example.com", "password": "not the password"},
    )
    assert r.status_code == 401  # an ordinary body still gets through


def _history_ip(client: TestClient, user_access: str) -> str:
    r = client.get(
        "/api/users/me/login-history", headers={"Authorization": f"Bearer {user_access}"}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["entries"][0]["ip"])


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(make_client: ClientFactory) -> None:
    client = make_client(trusted_proxies="10.0.0.0/8")
    user = register(client)
    spoof = {"X-Forwarded-For": "6.6.6.6"}
    # Straight from a client (not a proxy): its header is ignored.
    direct = TestClient(client.app, client=("198.51.100.7", 40000))
    r = direct.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}, headers=spoof
    )
    assert r.status_code == 200
    assert _history_ip(direct, r.json()["accessToken"]) == "198.51.100.7"
    # Through the trusted proxy, which appends the real peer: the client's own entry is ignored.
    proxied = TestClient(client.app, client=("10.1.2.3", 40000))
    r = proxied.post(
        "/api/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 200
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert _history_ip(proxied, r.json()["accessToken"]) == "203.0.113.9"


def test_a_promoted_user_with_an_old_token_is_told_to_refresh_it(
    make_client: ClientFactory,
) -> None:
    from tests.support.accounts import verified_user

    client = make_client()
    boss = admin(client)
    user = verified_user(client)
    assert client.post(
        "/api/users/me/seller-application", json={"shopName": "好店"}, headers=user.auth
    ).is_success
    assert client.post(f"/api/admin/sellers/{user.user_id}/approve", headers=boss.auth).is_success
    r = client.get("/api/inventory/warehouses", headers=user.auth)
    assert r.status_code == 403
    assert r.json()["error"]["details"]["reason"] == "TOKEN_ROLE_OUTDATED"
    assert "refresh" in r.json()["error"]["message"]
    r = client.post("/api/auth/refresh", json={"refreshToken": user.refresh})
    assert r.status_code == 200
    fresh = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    assert client.get("/api/inventory/warehouses", headers=fresh).status_code == 200


def test_every_problem_of_a_sign_up_form_is_reported_at_once_with_its_field(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    r = client.post(
        "/api/auth/register",
        json={"email": "not-an-email", "username": "a b", "password": "short", "extra": 1},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    problems = {(e["field"], e["problem"]) for e in error["details"]["errors"]}
    assert problems == {
        ("email", "INVALID_EMAIL"),
        ("username", "INVALID_USERNAME"),
        ("password", "WEAK_PASSWORD"),
        ("extra", "UNKNOWN_FIELD"),
    }
    assert all(e["message"] for e in error["details"]["errors"])


def test_product_rule_problems_come_with_schema_problems_and_json_paths(
    make_client: ClientFactory,
) -> None:
    from tests.support.catalog import category, seller

    client = make_client()
    boss = admin(client)
    shop = seller(client, boss)
    cat = category(client, boss)
    r = client.post(
        "/api/catalog/products",
        json={
            "name": "名" * 101,
            "description": "全新 仿冒 名牌包",
            "categoryId": cat,
            "price": {"value": "abc", "currency": "TWD"},
            "images": ["https://x.example/a.jpg", 5],
        },
        headers=shop.auth,
    )
    assert r.status_code == 400
    problems = {(e["field"], e["problem"]) for e in r.json()["error"]["details"]["errors"]}
    assert ("name", "TOO_LONG") in problems
    assert ("description", "BANNED_KEYWORD") in problems
    assert ("price.value", "WRONG_TYPE") in problems
    assert ("images[1]", "WRONG_TYPE") in problems


def test_a_rule_error_from_a_command_has_the_same_shape(make_client: ClientFactory) -> None:
    client = make_client()
    boss = admin(client)
    r = client.put("/api/catalog/banned-keywords", json={"keywords": ["  "]}, headers=boss.auth)
    assert r.status_code == 400
    [only] = r.json()["error"]["details"]["errors"]
    assert only["field"] == "keywords" and only["problem"] and only["message"]


def test_the_verification_link_opens_a_page_whose_button_confirms_the_address(
    make_client: ClientFactory,
) -> None:
    from urllib.parse import urlsplit

    from tests.support.accounts import mails_to

    client = make_client()
    user = register(client)
    body = mails_to(client, user.email)[-1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    link = urlsplit(next(w for w in body.split() if "token=" in w))
    page = client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    token = verification_token(client, user.email)
    me = login(client, user).auth
    assert client.get("/api/users/me", headers=me).json()["emailVerified"] is False  # not yet
    done = client.post("/verify-email", data={"token": token})
    assert done.status_code == 200 and "Email confirmed" in done.text
    assert client.get("/api/users/me", headers=me).json()["emailVerified"] is True
    again = client.post("/verify-email", data={"token": token})
    assert again.status_code == 400 and "expired" in again.text
    assert "<script>" not in client.get("/verify-email?token=<script>").text
