"""Accounts on SQLite and MariaDB: registration races, lockout races, snapshots, rebuild."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from sqlalchemy import select

from aggregates.accounts import Account
from projections.accounts import Accounts
from projections.accounts import live as accounts_live
from projections.rebuild import rebuild
from tests.support.accounts import (
    PASSWORD,
    admin,
    container_of,
    login,
    register,
    verified_user,
    wait,
)


def _race(client, bodies: list[dict[str, str]]) -> list[int]:
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, str]) -> int:
        barrier.wait()
        return client.post("/api/auth/register", json=body).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_two_concurrent_registrations_of_one_email_give_exactly_one_201(
    database_url, make_client
) -> None:
    client = make_client(database_url)
    for round_ in range(3):
        codes = _race(
            client,
            [
                {
                    "email": f"Race{round_}@example.com",
                    "username": f"racer{round_}a",
                    "password": PASSWORD,
                },
                {
                    "email": f"race{round_}@EXAMPLE.com",
                    "username": f"racer{round_}b",
                    "password": PASSWORD,
                },
            ],
        )
        assert sorted(codes) == [201, 409], codes
    wait(client)
    with container_of(client).engine.connect() as conn:
        emails = conn.execute(select(accounts_live["accounts"].c.email)).scalars().all()
    assert sorted(emails) == ["race0@example.com", "race1@example.com", "race2@example.com"]


def test_concurrent_registrations_of_one_username_give_exactly_one_201(
    database_url, make_client
) -> None:
    client = make_client(database_url)
    codes = _race(
        client,
        [
            {"email": f"u{i}@example.com", "username": "TheSame", "password": PASSWORD}
            for i in range(4)
        ],
    )
    assert sorted(codes) == [201, 409, 409, 409], codes


def test_concurrent_wrong_passwords_lock_after_exactly_five_counted_failures(
    database_url, make_client
) -> None:
    client = make_client(database_url)
    user = register(client)
    barrier = threading.Barrier(10)

    def attempt(_: int) -> int:
        barrier.wait()
        return client.post(
            "/api/auth/login", json={"email": user.email, "password": "wrong wrong"}
        ).status_code

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(attempt, range(10)))
    assert set(codes) <= {401, 423}
    assert (
        client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD}).status_code
        == 423
    )
    wait(client)
    from commands.accounts import lookup_account_id

    c = container_of(client)
    account_id = lookup_account_id(c.app, "email", user.email)
    assert account_id is not None
    account: Account = c.app.repository.get(account_id)
    assert account.locked_until is not None


def test_an_account_with_many_events_loads_from_a_snapshot(database_url, make_client) -> None:
    client = make_client(database_url)
    user = register(client)
    for _ in range(60):
        login(client, user)
    assert client.get("/api/users/me", headers=user.auth).status_code == 200
    c = container_of(client)
    snapshots = list(c.app.snapshots.get(UUID(user.user_id)))  # type: ignore[union-attr]
    assert snapshots, "a snapshot was taken"
    account: Account = c.app.repository.get(UUID(user.user_id))
    assert account.version == 2 + 60  # registered, verification issued, 60 logins


def test_accounts_rebuild_equals_incremental_processing(database_url, make_client) -> None:
    client = make_client(database_url)
    boss = admin(client)
    users = [verified_user(client) for _ in range(3)]
    client.post(
        "/api/users/me/addresses",
        headers=users[0].auth,
        json={
            "name": "A",
            "phone": "0912345678",
            "street": "S",
            "city": "C",
            "district": "D",
            "postalCode": "100",
            "country": "TW",
        },
    )
    client.post("/api/auth/login", json={"email": users[1].email, "password": "nope nope"})
    client.put(f"/api/users/{users[2].user_id}", json={"status": "disabled"}, headers=boss.auth)
    client.patch("/api/users/me", json={"displayName": "Renamed"}, headers=users[1].auth)
    c = container_of(client)
    c.catch_up()

    def snapshot() -> dict[str, list[tuple[object, ...]]]:
        with c.engine.connect() as conn:
            return {
                name: sorted(tuple(r) for r in conn.execute(select(table)))
                for name, table in accounts_live.items()
            }

    before = snapshot()
    assert len(before["accounts"]) == 4 and len(before["addresses"]) == 1
    rebuild(c.app, Accounts, c.locks)
    assert snapshot() == before
