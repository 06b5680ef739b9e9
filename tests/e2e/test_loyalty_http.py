"""Loyalty over HTTP: points earned on delivery at the level's multiplier, spent at checkout
(never with a coupon, at most 20% of the subtotal), given back and taken back by refunds and
cancellations; the level reviewed by the timed rule; GET /api/users/me/points and the level
on GET /api/users/me (SQLite and MariaDB)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aggregates.loyalty import PointsAccount
from commands.application import EventMeta
from commands.orders import ExpireOrder
from projections.deadlines import LEVEL_REVIEW
from projections.rebuild import rebuild
from shopledger.bootstrap import Container
from tests.e2e.conftest import ClientFactory, container_of
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product

#: SILVER from NT$500 of delivered orders in the window (multipliers stay 1, 1.2, 1.5, 2).
LOW_LEVELS = {"loyalty_level_thresholds": "500,5000,50000"}


@pytest.fixture
def shop(make_client: ClientFactory) -> Any:
    """(client, admin, an approved seller, a verified buyer, a NT$1000 product), SQLite."""
    client = make_client(**LOW_LEVELS)
    boss = admin(client)
    owner = seller(client, boss)
    return (
        client,
        boss,
        owner,
        verified_user(client),
        stocked_product(client, boss, owner, 50, 1000),
    )


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def place(client: TestClient, buyer: User, pid: str, qty: int = 1, **body: Any) -> Any:
    add_to_cart(client, buyer, pid, qty)
    return checkout(client, buyer, **body)


def status(client: TestClient, boss: User, oid: str, to: str) -> None:
    r = client.put(f"/api/sales/orders/{oid}/status", json={"status": to}, headers=boss.auth)
    assert r.status_code == 200, r.text


def deliver(client: TestClient, boss: User, oid: str) -> None:
    """Paid (manually), processed, shipped and delivered, by an admin."""
    status(client, boss, oid, "PAID")
    status(client, boss, oid, "PROCESSING")
    r = client.post(
        f"/api/sales/orders/{oid}/shipments",
        json={"carrier": "BLACK_CAT", "trackingNumber": f"TC{oid[:8].upper()}"},
        headers=boss.auth,
    )
    assert r.status_code == 201, r.text
    status(client, boss, oid, "DELIVERED")


def refund(client: TestClient, boss: User, oid: str, **body: Any) -> None:
    r = client.post(
        f"/api/sales/orders/{oid}/refunds", json={"reason": "退貨", **body}, headers=boss.auth
    )
    assert r.status_code in (200, 201), r.text


def points(client: TestClient, user: User, **params: Any) -> dict[str, Any]:
    wait(client)
    r = client.get("/api/users/me/points", params=params, headers=user.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


def level_becomes(client: TestClient, user: User, code: str, timeout: float = 10) -> dict[str, Any]:
    """The level on GET /api/users/me once the level-review rule has run."""
    end = time.monotonic() + timeout
    while True:
        wait(client)
        me = client.get("/api/users/me", headers=user.auth).json()
        if me["level"]["code"] == code or time.monotonic() > end:
            assert me["level"]["code"] == code, me["level"]
            return dict(me)
        time.sleep(0.05)


def dump(container: Container, *names: str) -> dict[str, Any]:
    out = {}
    with container.engine.connect() as conn:
        for name in names:
            for key, table in container.live_projection(name).tables.items():
                out[f"{name}.{key}"] = sorted(map(tuple, conn.execute(select(table))))
    return out


def test_points_are_earned_spent_and_taken_back_and_the_level_multiplies_them(
    make_client: ClientFactory, database_url: str
) -> None:
    client = make_client(database_url, **LOW_LEVELS)
    boss = admin(client)
    owner = seller(client, boss)
    buyer = verified_user(client)
    pid = stocked_product(client, boss, owner, 50, 1000)

    # 1000 + 50 VAT + 60 shipping = 1110 paid -> 11 points at REGULAR
    first = place(client, buyer, pid).json()["orderId"]
    deliver(client, boss, first)
    mine = points(client, buyer)
    assert mine["balance"] == 11 and mine["owed"] == 0
    assert [(e["type"], e["points"], e["orderId"]) for e in mine["ledger"]] == [
        ("EARNED", 11, first)
    ]
    assert mine["ledger"][0]["details"]["level"] == "REGULAR"

    # the timed rule reviews the level: NT$1110 in the window is SILVER (1.2x)
    me = level_becomes(client, buyer, "SILVER")
    assert me["level"]["pointsMultiplier"] == 1.2 and me["level"]["name"] == "銀"
    assert me["level"]["qualifyingSpend"] == {"value": 1110, "currency": "TWD"}
    assert me["email"] == buyer.email  # the profile is all there still
    # the next review is when that order leaves the 12-month window
    account_id = str(PointsAccount.create_id(buyer.user_id))
    review = container_of(client).rules.get(account_id, LEVEL_REVIEW)
    reviewed_at = datetime.fromisoformat(me["level"]["reviewedAt"])
    assert review is not None and review.due_at is not None
    assert review.due_at - reviewed_at.replace(tzinfo=None) < timedelta(days=365)
    assert review.due_at > reviewed_at.replace(tzinfo=None) + timedelta(days=364)

    # spend the 11 points: discount 11, VAT on 989, total 989 + 49.45 + 60
    r = place(client, buyer, pid, pointsToRedeem=11)
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["discount"] == {
        "value": 11,
        "currency": "TWD",
        "couponCode": None,
        "pointsRedeemed": 11,
    }
    assert second["tax"]["value"] == 49.45 and second["total"]["value"] == 1098.45
    assert points(client, buyer)["balance"] == 0

    # delivered at SILVER: floor(10.9845 x 1.2) = 13
    deliver(client, boss, second["orderId"])
    mine = points(client, buyer)
    assert mine["balance"] == 13
    assert mine["ledger"][0]["details"]["multiplier"] == "1.2"

    # a full refund of the second order: the 13 earned go, the 11 spent come back
    refund(client, boss, second["orderId"], isFullRefund=True)
    mine = points(client, buyer)
    assert mine["balance"] == 11 and mine["owed"] == 0
    assert {(e["type"], e["points"]) for e in mine["ledger"][:2]} == {
        ("RETURNED", 11),
        ("REVOKED", -13),
    }
    # half of the first order back: 11 x 555 / 1110 = 5.5 -> 6 points go
    refund(client, boss, first, amount={"value": 555, "currency": "TWD"})
    mine = points(client, buyer, pageSize=2)
    assert mine["balance"] == 5
    assert mine["pagination"] == {"page": 1, "pageSize": 2, "totalItems": 6, "totalPages": 3}
    assert all(e["balance"] >= 0 for e in points(client, buyer, pageSize=100)["ledger"])

    # the points read model and the deadlines rebuild from the events to the same rows
    container = container_of(client)
    container.catch_up()
    before = dump(container, "loyalty", "deadlines")
    assert before["loyalty.ledger"]
    for name in ("loyalty", "deadlines"):
        rebuild(container.app, container.projections[name], container.locks)
    assert dump(container, "loyalty", "deadlines") == before


def test_points_never_stack_with_a_coupon_have_explicit_limits_and_are_private(shop: Any) -> None:
    client, boss, owner, buyer, pid = shop
    deliver(client, boss, place(client, buyer, pid, 2).json()["orderId"])  # 2160 paid: 21
    r = client.post(
        "/api/coupons", json={"code": "LOYAL50", "type": "FIXED", "value": 50}, headers=boss.auth
    )
    assert r.status_code == 201, r.text
    add_to_cart(client, buyer, pid, 1)

    r = checkout(client, buyer, couponCode="LOYAL50", pointsToRedeem=10)
    assert r.status_code == 400 and error(r)["code"] == "INVALID_POINTS"
    assert error(r)["details"]["reason"] == "COUPON_USED"
    assert error(r)["details"]["field"] == "pointsToRedeem"
    r = checkout(client, buyer, pointsToRedeem=22)
    assert r.status_code == 409 and error(r)["code"] == "INSUFFICIENT_POINTS"
    assert error(r)["details"] == {"balance": 21, "requested": 22}
    # a NT$50 cart: points may pay at most NT$10 of it
    add_to_cart(client, buyer, stocked_product(client, boss, owner, 5, 50), 1)
    client.delete(f"/api/cart/items/{pid}", headers=buyer.auth)
    r = checkout(client, buyer, pointsToRedeem=11)  # 20% of 50 is 10
    assert r.status_code == 400 and error(r)["code"] == "INVALID_POINTS"
    assert error(r)["details"]["reason"] == "ABOVE_LIMIT" and error(r)["details"]["maxPoints"] == 10
    for bad in (-1, 1.5, "3", True):
        r = checkout(client, buyer, pointsToRedeem=bad)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", (bad, r.text)
    assert points(client, buyer)["balance"] == 21  # nothing was spent by any refusal
    r = checkout(client, buyer, pointsToRedeem=10)
    assert r.status_code == 201 and r.json()["total"]["value"] == 40 * 1.05 + 60

    # another user sees only their own (empty) points; no token, no points
    stranger = verified_user(client)
    theirs = points(client, stranger)
    assert theirs["balance"] == 0 and theirs["ledger"] == []
    assert theirs["level"]["code"] == "REGULAR" and theirs["level"]["nextLevel"]["code"] == "SILVER"
    assert client.get("/api/users/me/points").status_code == 401
    r = client.get("/api/users/me/points", params={"pageSize": 101}, headers=buyer.auth)
    assert r.status_code == 400


def test_points_spent_on_a_cancelled_or_expired_order_come_back(shop: Any) -> None:
    client, boss, _, buyer, pid = shop
    deliver(client, boss, place(client, buyer, pid).json()["orderId"])  # 11 points
    oid = place(client, buyer, pid, pointsToRedeem=11).json()["orderId"]
    assert points(client, buyer)["balance"] == 0
    r = client.put(f"/api/sales/orders/{oid}/cancel", json={"reason": "買錯了"}, headers=buyer.auth)
    assert r.status_code == 200, r.text
    mine = points(client, buyer)
    assert mine["balance"] == 11
    assert mine["ledger"][0]["type"] == "RETURNED"
    assert mine["ledger"][0]["details"]["reason"] == "ORDER_CANCELLED"

    unpaid = place(client, buyer, pid, pointsToRedeem=5).json()
    container = container_of(client)
    expires_at = datetime.fromisoformat(unpaid["expiresAt"])
    container.bus.clock = lambda: expires_at + timedelta(seconds=1)
    expired = container.bus.execute(
        ExpireOrder(UUID(unpaid["orderId"])), EventMeta("system:unpaid-expiry", "test")
    )
    assert expired.result is True
    mine = points(client, buyer)
    assert mine["balance"] == 11
    assert [e["type"] for e in mine["ledger"][:2]] == ["RETURNED", "SPENT"]
