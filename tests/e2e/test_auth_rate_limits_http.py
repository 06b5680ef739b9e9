"""Sign-in rate limits over HTTP: per client address and per account, 429 RATE_LIMITED with
Retry-After, failures only for logins, shared by API processes through Redis."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.support.accounts import PASSWORD, User, login, register


def from_address(client: TestClient, address: str) -> TestClient:
    """The same app (already running), seen from another client address."""
    return TestClient(client.app, client=(address, 40000))


def attempt(client: TestClient, who: str, password: str = "wrong password!") -> int:
    r = client.post("/api/auth/login", json={"email": who, "password": password})
    return r.status_code


def throttled(r: Any, window: int) -> None:
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert err["code"] == "RATE_LIMITED" and err["details"]["windowSeconds"] == window
    assert 1 <= int(r.headers["Retry-After"]) <= window
    assert err["details"]["retryAfter"] == int(r.headers["Retry-After"])


def test_a_burst_of_five_wrong_passwords_from_one_address_cannot_lock_the_account(
    make_client: ClientFactory,
) -> None:
    client = make_client(auth_rate_limits=True)  # the real default limits
    victim = register(client)
    codes = [attempt(client, victim.email) for _ in range(4)]
    assert codes == [401, 401, 401, 401]
    r = client.post("/api/auth/login", json={"email": victim.email, "password": "guess 5"})
    throttled(r, 15 * 60)
    # Even the right password waits there: the address is out of tries, whatever it sends.
    assert attempt(client, victim.username, PASSWORD) == 429
    # The owner, elsewhere, is neither locked out nor throttled; logins that succeed use up
    # nothing, and the owner's own typos count like anyone's.
    owner = from_address(client, "198.51.100.7")
    for _ in range(3):  # were successes counted, the second failure below would be refused
        login(owner, victim)
    assert [attempt(owner, victim.email) for _ in range(5)] == [401] * 4 + [429]
    # Verification mails: 3 an hour per account.
    sent = [
        owner.post("/api/auth/resend-verification", headers=victim.auth).status_code
        for _ in range(3)
    ]
    assert sent == [202, 202, 202]
    throttled(owner.post("/api/auth/resend-verification", headers=victim.auth), 3600)


def test_per_account_limits_span_addresses_and_every_name_of_the_account(
    make_client: ClientFactory,
) -> None:
    client = make_client(
        auth_rate_limits=True,
        login_rate_limit_per_address="2/PT1M",
        login_rate_limit_per_account="3/PT10M",
        register_rate_limit_per_address="2/PT1H",
    )
    victim = register(from_address(client, "192.0.2.1"))
    first, second, third, fourth = (from_address(client, f"203.0.113.{n}") for n in range(1, 5))
    assert [attempt(first, victim.email), attempt(first, victim.username)] == [401, 401]
    assert attempt(first, victim.email) == 429  # the address
    assert attempt(second, victim.username.upper()) == 401  # the account's third
    throttled(second.post("/api/auth/login", json={"email": victim.email, "password": "x"}), 600)
    assert attempt(third, victim.email) == 429  # a fresh address, the same account
    # Unknown accounts are limited alike: the answer tells nothing about who exists.
    ghost = f"ghost{uuid4().hex[:6]}@example.com"
    assert [attempt(fourth, ghost), attempt(fourth, ghost)] == [401, 401]
    assert attempt(fourth, ghost) == 429

    # Sign-ups: 3 an hour per email address (default), from wherever they come.
    body = {"email": victim.email, "username": f"u{uuid4().hex[:8]}", "password": PASSWORD}
    taken = [
        from_address(client, f"192.0.2.{n}").post("/api/auth/register", json=body) for n in (2, 3)
    ]
    assert [r.status_code for r in taken] == [409, 409]
    throttled(from_address(client, "192.0.2.4").post("/api/auth/register", json=body), 3600)
    # ... and 2 per client address here, an IPv6 address counting by its /64 (one subscriber).
    register(from_address(client, "2001:db8:1:2::5"))
    register(from_address(client, "2001:db8:1:2::6"))
    name = f"u{uuid4().hex[:8]}"
    r = from_address(client, "2001:db8:1:2:ffff::1").post(
        "/api/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
    )
    throttled(r, 3600)
    assert (
        from_address(client, "2001:db8:1:3::1")
        .post(
            "/api/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
        )
        .status_code
        == 201
    )


def test_the_limits_are_shared_by_api_processes_through_redis(
    make_client: ClientFactory, redis_url: str, tmp_path: Any
) -> None:
    import redis

    prefix = f"t{uuid4().hex[:10]}"
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = (
        make_client(database, redis_url=redis_url, queue_prefix=prefix, auth_rate_limits=True)
        for _ in range(2)
    )
    victim: User = register(first)
    codes = [attempt(api, victim.email) for api in (first, second, first, second)]
    assert codes == [401, 401, 401, 401]
    throttled(second.post("/api/auth/login", json={"email": victim.email, "password": "x"}), 900)
    assert attempt(first, victim.email) == 429
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = [str(k) for k in store.keys(f"{prefix}:rate:auth:*")]
    assert keys and not any(victim.email in k or victim.username in k for k in keys)
