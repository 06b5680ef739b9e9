"""Registration, verification, login, tokens, refresh rotation, logout, lockout, cookies."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aggregates.accounts import Account
from tests.support.accounts import (
    PASSWORD,
    User,
    admin,
    container_of,
    login,
    mails_to,
    register,
    verification_token,
    wait,
)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- registration -------------------------------------------------------------------------
def test_register_answers_201_with_an_unverified_buyer(make_client) -> None:
    client = make_client()
    r = client.post(
        "/api/auth/register",
        json={
            "email": "Alice@Example.COM",
            "username": "alice",
            "password": PASSWORD,
            "displayName": "Alice",
        },
    )
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == "alice@example.com"
    assert body["username"] == "alice"
    assert body["role"] == "buyer"
    assert body["emailVerified"] is False
    assert isinstance(body["userId"], str)
    assert r.headers["X-Event-Position"].isdigit()


@pytest.mark.parametrize(
    ("email", "username", "field"),
    [("ALICE@example.com", "other", "email"), ("other@example.com", "ALICE", "username")],
)
def test_duplicate_email_or_username_is_409_case_insensitively(
    make_client, email, username, field
) -> None:
    client = make_client()
    register(client, "alice")
    r = client.post(
        "/api/auth/register", json={"email": email, "username": username, "password": PASSWORD}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "CONFLICT"
    assert r.json()["error"]["details"]["field"] == field


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "username": "bob", "password": PASSWORD},
        {"email": "bob@example.com", "username": "b", "password": PASSWORD},
        {"email": "bob@example.com", "username": "bob", "password": "short"},
        {"email": "bob@example.com", "username": "bob", "password": "password123"},
        {"email": "bob@example.com", "username": "bob", "password": PASSWORD, "role": "admin"},
        {"email": "bob@example.com", "username": "bob"},
    ],
)
def test_bad_registrations_are_400_and_write_nothing(make_client, body) -> None:
    client = make_client()
    container = container_of(client)
    head = container.head_position()
    r = client.post("/api/auth/register", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert container.head_position() == head


def test_registration_is_replayed_for_the_same_idempotency_key(make_client) -> None:
    client = make_client()
    body = {"email": "carol@example.com", "username": "carol", "password": PASSWORD}
    first = client.post("/api/auth/register", json=body, headers={"Idempotency-Key": "reg-1"})
    head = container_of(client).head_position()
    again = client.post("/api/auth/register", json=body, headers={"Idempotency-Key": "reg-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert container_of(client).head_position() == head


# --- email verification -------------------------------------------------------------------
def test_verification_mail_is_an_rfc5322_file_with_a_one_time_link(make_client) -> None:
    client = make_client()
    user = register(client)
    [message] = mails_to(client, user.email)
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"] and message["Date"] and message["From"]
    token = verification_token(client, user.email)
    assert client.post("/api/auth/verify-email", json={"token": token}).status_code == 200
    again = client.post("/api/auth/verify-email", json={"token": token})
    assert again.status_code == 400
    login(client, user)
    wait(client)
    assert client.get("/api/users/me", headers=user.auth).json()["emailVerified"] is True


def test_the_link_in_the_mail_verifies_with_a_get(make_client) -> None:
    client = make_client()
    user = register(client)
    token = verification_token(client, user.email)
    assert client.get("/api/auth/verify-email", params={"token": token}).status_code == 200


@pytest.mark.parametrize("token", ["nonsense", "0" * 32 + ".abc", "", "a.b.c"])
def test_unknown_verification_tokens_are_400(make_client, token) -> None:
    client = make_client()
    r = client.post("/api/auth/verify-email", json={"token": token})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_tampered_verification_token_is_400(make_client) -> None:
    client = make_client()
    user = register(client)
    token = verification_token(client, user.email)
    assert (
        client.post("/api/auth/verify-email", json={"token": token[:-2] + "xx"}).status_code == 400
    )


def test_an_expired_verification_token_is_400(make_client) -> None:
    client = make_client(email_verification_ttl="PT0.5S")
    user = register(client)
    token = verification_token(client, user.email)
    time.sleep(0.7)
    assert client.post("/api/auth/verify-email", json={"token": token}).status_code == 400


def test_resending_verification_replaces_the_old_link(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    old = verification_token(client, user.email)
    assert client.post("/api/auth/resend-verification", headers=user.auth).status_code == 202
    mails_to(client, user.email, at_least=2)
    new = verification_token(client, user.email)
    assert new != old
    assert client.post("/api/auth/verify-email", json={"token": old}).status_code == 400
    assert client.post("/api/auth/verify-email", json={"token": new}).status_code == 200


# --- login and tokens ---------------------------------------------------------------------
def test_login_gives_an_rs256_access_token_verifiable_with_the_jwks(make_client) -> None:
    client = make_client()
    user = register(client)
    r = client.post("/api/auth/login", json={"email": user.email.upper(), "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 3 * 3600
    assert body["user"]["userId"] == user.user_id and body["user"]["role"] == "buyer"
    header = jwt.get_unverified_header(body["accessToken"])
    assert header["alg"] == "RS256"
    jwks = client.get("/.well-known/jwks.json").json()
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(body["accessToken"], key, algorithms=["RS256"], audience="shopledger")
    assert claims["sub"] == user.user_id
    assert claims["role"] == "buyer"
    assert {"jti", "iat", "exp"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 3 * 3600


def test_login_by_username_works(make_client) -> None:
    client = make_client()
    user = register(client)
    r = client.post("/api/auth/login", json={"email": user.username.upper(), "password": PASSWORD})
    assert r.status_code == 200


@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_wrong_credentials_are_401_without_saying_which(make_client, who) -> None:
    client = make_client()
    user = register(client)
    email = user.email if who == "wrong-password" else "nobody@example.com"
    r = client.post("/api/auth/login", json={"email": email, "password": "not the password"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    assert r.json()["error"]["message"] == "wrong email/username or password"


def _forged_tokens(client, user: User) -> dict[str, str]:
    container = container_of(client)
    good = user.access
    head, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    public_pem = container.tokens.keys.current.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = container.tokens.keys.current.kid
    tampered = _b64({**claims, "role": "admin"})
    hs256 = jwt.encode(
        claims, "a-guessed-secret-of-32-bytes-xx!", algorithm="HS256", headers={"kid": kid}
    )
    # The classic confusion attack: HMAC keyed with the public key, alg header HS256.
    hs_header = _b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    import hashlib
    import hmac

    signing_input = f"{hs_header}.{payload}".encode()
    confused_sig = (
        base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    none_token = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}."
    other_key = rsa.generate_private_key(65537, 2048)
    return {
        "tampered payload": f"{head}.{tampered}.{sig}",
        "alg none": none_token,
        "HS256 with the public key": f"{hs_header}.{payload}.{confused_sig}",
        "HS256 with a guessed secret": hs256,
        "signed by another key with our kid": jwt.encode(
            claims, other_key, algorithm="RS256", headers={"kid": kid}
        ),
        "unknown kid": jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "nope"}),
        "refresh token as access": user.refresh,
        "garbage": "abc.def.ghi",
    }


def test_forged_or_misused_tokens_are_401(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    assert client.get("/api/users/me", headers=user.auth).status_code == 200
    for name, token in _forged_tokens(client, user).items():
        r = client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.json()["error"]["code"] == "UNAUTHORIZED", name


def test_an_expired_access_token_is_401(make_client) -> None:
    client = make_client(access_token_ttl="PT2S")
    user = login(client, register(client))
    assert (
        client.get("/api/users/me", headers=user.auth).status_code == 200
    )  # valid for 1 s at least
    time.sleep(2.1)
    r = client.get("/api/users/me", headers=user.auth)
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


def test_missing_or_malformed_authorization_is_401(make_client) -> None:
    client = make_client()
    assert client.get("/api/users/me").status_code == 401
    assert client.get("/api/users/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_an_access_token_cannot_be_used_to_refresh(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    assert client.post("/api/auth/refresh", json={"refreshToken": user.access}).status_code == 401


def test_a_key_from_a_previous_rotation_still_verifies(make_client, tmp_path) -> None:
    first = make_client(jwt_private_key_file=str(tmp_path / "old.pem"))
    user = login(first, register(first))
    rotated = make_client(
        jwt_private_key_file=str(tmp_path / "new.pem"),
        jwt_previous_key_file=str(tmp_path / "old.pem"),
    )
    # a token signed before the rotation still verifies after it (checked on the key ring:
    # the two test apps do not share their in-memory databases)
    claims = container_of(rotated).tokens.verify(user.access, "access")
    assert claims.sub == user.user_id
    kids = {k["kid"] for k in rotated.get("/.well-known/jwks.json").json()["keys"]}
    assert len(kids) == 2


# --- refresh rotation and logout ----------------------------------------------------------
def test_refresh_rotates_and_reuse_revokes_the_whole_family(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    old_refresh = user.refresh
    r = client.post("/api/auth/refresh", json={"refreshToken": old_refresh})
    assert r.status_code == 200
    new_access, new_refresh = r.json()["accessToken"], r.json()["refreshToken"]
    assert new_refresh != old_refresh
    assert (
        client.get("/api/users/me", headers={"Authorization": f"Bearer {new_access}"}).status_code
        == 200
    )

    reuse = client.post("/api/auth/refresh", json={"refreshToken": old_refresh})
    assert reuse.status_code == 401
    # the whole family is gone: the newest refresh token and every access token of it
    assert client.post("/api/auth/refresh", json={"refreshToken": new_refresh}).status_code == 401
    assert (
        client.get("/api/users/me", headers={"Authorization": f"Bearer {new_access}"}).status_code
        == 401
    )
    assert client.get("/api/users/me", headers=user.auth).status_code == 401
    # other sessions of the same user are untouched
    other = login(client, User(user.user_id, user.email, user.username, user.password))
    assert client.get("/api/users/me", headers=other.auth).status_code == 200


def test_logout_stops_the_access_token_and_the_refresh_token_at_once(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    assert client.post("/api/auth/logout", headers=user.auth).status_code == 204
    assert client.get("/api/users/me", headers=user.auth).status_code == 401
    assert client.post("/api/auth/refresh", json={"refreshToken": user.refresh}).status_code == 401


def test_refresh_token_expires(make_client) -> None:
    client = make_client(refresh_token_ttl="PT1S")
    user = login(client, register(client))
    time.sleep(2.1)
    assert client.post("/api/auth/refresh", json={"refreshToken": user.refresh}).status_code == 401


# --- lockout ------------------------------------------------------------------------------
def test_five_failures_lock_the_account_whatever_the_password_then_it_unlocks(make_client) -> None:
    client = make_client(lockout_duration="PT2S")
    user = register(client)
    for _ in range(5):
        r = client.post(
            "/api/auth/login", json={"email": user.email, "password": "wrong password!"}
        )
        assert r.status_code == 401
    for password in (PASSWORD, "wrong password!"):
        r = client.post("/api/auth/login", json={"email": user.email, "password": password})
        assert r.status_code == 423
        assert r.json()["error"]["code"] == "ACCOUNT_LOCKED"
    time.sleep(2.2)
    login(client, user)
    wait(client)
    history = client.get("/api/users/me/login-history", headers=user.auth).json()
    assert history["pagination"]["totalItems"] == 8
    newest, *rest = history["entries"]
    assert newest["success"] is True
    assert [e["success"] for e in rest] == [False] * 7
    assert newest["ip"] and newest["userAgent"] == "testclient"


def test_a_success_resets_the_failure_count(make_client) -> None:
    client = make_client()
    user = register(client)
    for _ in range(4):
        client.post("/api/auth/login", json={"email": user.email, "password": "wrong password!"})
    login(client, user)
    for _ in range(4):
        r = client.post(
            "/api/auth/login", json={"email": user.email, "password": "wrong password!"}
        )
        assert r.status_code == 401
    login(client, user)


def test_concurrent_failures_lock_after_exactly_five(make_client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = make_client()
    user = register(client)
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    client.post(
                        "/api/auth/login", json={"email": user.email, "password": "bad bad bad"}
                    ).status_code
                ),
                range(8),
            )
        )
    assert codes.count(401) >= 5
    assert (
        client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD}).status_code
        == 423
    )


# --- disabled accounts --------------------------------------------------------------------
def test_a_disabled_account_is_refused_on_its_very_next_request(make_client) -> None:
    client = make_client()
    boss = admin(client)
    user = login(client, register(client))
    assert client.get("/api/users/me", headers=user.auth).status_code == 200
    r = client.put(f"/api/users/{user.user_id}", json={"status": "disabled"}, headers=boss.auth)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    r = client.get("/api/users/me", headers=user.auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "ACCOUNT_DISABLED"
    assert client.post("/api/auth/refresh", json={"refreshToken": user.refresh}).status_code in (
        401,
        403,
    )
    r = client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ACCOUNT_DISABLED"
    # wrong password on a disabled account does not reveal the status
    r = client.post("/api/auth/login", json={"email": user.email, "password": "wrong password!"})
    assert r.status_code == 401
    client.put(f"/api/users/{user.user_id}", json={"status": "active"}, headers=boss.auth)
    login(client, user)


def test_deleting_a_user_disables_it_and_keeps_its_history(make_client) -> None:
    client = make_client()
    boss = admin(client)
    user = login(client, register(client))
    assert client.delete(f"/api/users/{user.user_id}", headers=boss.auth).status_code == 204
    assert client.get("/api/users/me", headers=user.auth).status_code == 403
    wait(client)
    view = client.get(f"/api/users/{user.user_id}", headers=boss.auth).json()
    assert view["status"] == "disabled" and view["deleted"] is True
    history = client.get(f"/api/users/{user.user_id}/login-history", headers=boss.auth).json()
    assert history["pagination"]["totalItems"] == 1
    r = client.put(f"/api/users/{user.user_id}", json={"status": "active"}, headers=boss.auth)
    assert r.status_code == 409


# --- cookie mode --------------------------------------------------------------------------
def test_cookie_mode_needs_the_csrf_header_on_state_changes(make_client) -> None:
    client = make_client()
    user = register(client)
    r = client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD, "useCookies": True}
    )
    assert r.status_code == 200
    body = r.json()
    assert "accessToken" not in body and "refreshToken" not in body
    csrf = body["csrfToken"]
    set_cookie = r.headers.get_list("set-cookie")
    assert any(c.startswith("sl_access=") and "HttpOnly" in c for c in set_cookie)
    assert any(c.startswith("sl_refresh=") and "HttpOnly" in c for c in set_cookie)
    assert client.get("/api/users/me").status_code == 200  # reads need no CSRF token
    assert client.patch("/api/users/me", json={"displayName": "New"}).status_code == 403
    bad = client.patch(
        "/api/users/me", json={"displayName": "New"}, headers={"X-CSRF-Token": "forged"}
    )
    assert bad.status_code == 403
    ok = client.patch("/api/users/me", json={"displayName": "New"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["displayName"] == "New"
    assert client.post("/api/auth/refresh").status_code == 403
    refreshed = client.post("/api/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert refreshed.status_code == 200
    out = client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert client.get("/api/users/me").status_code == 401


# --- hashing, secrets ---------------------------------------------------------------------
@pytest.mark.production_password_hashing
def test_passwords_are_hashed_with_argon2id_at_owasp_strength_or_more(make_client) -> None:
    client = make_client()
    user = register(client)
    from commands.accounts import lookup_account_id

    container = container_of(client)
    account_id = lookup_account_id(container.app, "email", user.email)
    assert account_id is not None
    account: Account = container.app.repository.get(account_id)
    assert account.password_hash.startswith("$argon2id$")
    params = dict(p.split("=") for p in account.password_hash.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2 and int(params["p"]) >= 1


def test_no_password_or_hash_in_any_response_or_log_line(make_client, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    client = make_client()
    secret = "Sup3r-secret-passphrase!"
    responses = []
    r = client.post(
        "/api/auth/register",
        json={"email": "sec@example.com", "username": "secret1", "password": secret},
    )
    responses.append(r)
    responses.append(
        client.post(
            "/api/auth/login", json={"email": "sec@example.com", "password": "wrong " + secret}
        )
    )
    responses.append(
        client.post("/api/auth/login", json={"email": "sec@example.com", "password": secret})
    )
    access = responses[-1].json()["accessToken"]
    responses.append(
        client.post(
            "/api/auth/register",
            json={"email": "sec@example.com", "username": "x", "password": secret, "bogus": 1},
        )
    )
    responses.append(
        client.post(
            "/api/auth/register",
            json={"email": "sec2@example.com", "username": "secret2", "password": "short"},
        )
    )
    wait(client)
    responses.append(client.get("/api/users/me", headers={"Authorization": f"Bearer {access}"}))
    boss = admin(client)
    wait(client)
    responses.append(client.get("/api/users", headers=boss.auth))
    for response in responses:
        assert secret not in response.text
        assert "$argon2" not in response.text
        assert "short" not in response.text or response.status_code != 400
    for record in caplog.records:
        line = record.getMessage() + json.dumps({k: str(v) for k, v in vars(record).items()})
        assert secret not in line
        assert "$argon2" not in line


def test_jwks_lists_only_public_material(make_client) -> None:
    client = make_client()
    for key in client.get("/.well-known/jwks.json").json()["keys"]:
        assert set(key) == {"kty", "use", "alg", "kid", "n", "e"}
        assert key["alg"] == "RS256"


def test_a_burst_of_logins_is_bounded_and_other_requests_still_answer(make_client) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    client = make_client(password_hash_concurrency=1, password_hash_queue=0)
    user = register(client)
    barrier = threading.Barrier(13)

    def attempt(_: int) -> int:
        barrier.wait()
        return client.post(
            "/api/auth/login", json={"email": user.email, "password": "wrong pass"}
        ).status_code

    def health() -> tuple[int, float]:
        barrier.wait()
        time.sleep(0.02)
        started = time.monotonic()
        code = client.get("/healthz").status_code
        return code, time.monotonic() - started

    with ThreadPoolExecutor(13) as pool:
        logins = [pool.submit(attempt, i) for i in range(12)]
        probe = pool.submit(health)
        codes = [f.result() for f in logins]
        health_code, _ = probe.result()
    assert health_code == 200
    assert 503 in codes, codes  # beyond the queue bound callers are told to retry
    assert set(codes) <= {401, 423, 503}


def test_the_overload_answer_carries_retry_after(make_client) -> None:
    import asyncio

    from api.auth import HashPool
    from api.errors import ApiError

    pool = HashPool(concurrency=1, max_waiting=1)

    async def scenario() -> ApiError | None:
        release = asyncio.Event()
        loop = asyncio.get_running_loop()
        blocker = asyncio.ensure_future(
            pool.run(lambda: asyncio.run_coroutine_threadsafe(release.wait(), loop).result())
        )
        await asyncio.sleep(0.05)
        waiter = asyncio.ensure_future(pool.run(lambda: None))
        await asyncio.sleep(0.05)
        try:
            await pool.run(lambda: None)
        except ApiError as exc:
            caught: ApiError | None = exc
        else:
            caught = None
        release.set()
        await blocker
        await waiter
        return caught

    error = asyncio.run(scenario())
    assert error is not None and error.status == 503 and error.headers == {"Retry-After": "1"}
