"""Checkout under concurrency on SQLite and MariaDB: no oversell, no coupon over-use, one
order per idempotent retry."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import ADDRESS, add_to_cart, checkout, seller, stocked_product
from tests.support.concurrency import race


def _buyers(client: Any, n: int) -> list[User]:
    return [verified_user(client) for _ in range(n)]


def test_racing_buyers_take_exactly_the_stock(database_url, make_client) -> None:
    client = make_client(database_url)
    boss = admin(client)
    shop = seller(client, boss)
    pid = stocked_product(client, boss, shop, 3, 100)
    buyers = _buyers(client, 6)
    for b in buyers:
        add_to_cart(client, b, pid, 1)
    statuses = race(6, lambda i: checkout(client, buyers[i], paymentMethod="COD").status_code)
    assert Counter(statuses) == {201: 3, 422: 3}
    wait(client)
    totals = client.get(
        "/api/inventory/stock", params={"productId": pid}, headers=shop.auth
    ).json()["totals"]
    assert totals == {"onHand": 3, "reserved": 3, "available": 0}
    queue = client.get("/api/sales/orders", params={"sellerId": "me"}, headers=shop.auth).json()
    assert queue["pagination"]["totalItems"] == 3


def test_racing_checkouts_never_use_a_coupon_beyond_its_limit(database_url, make_client) -> None:
    client = make_client(database_url)
    boss = admin(client)
    shop = seller(client, boss)
    pid = stocked_product(client, boss, shop, 50, 100)
    assert (
        client.post(
            "/api/coupons",
            json={"code": "FIRST2", "type": "FIXED", "value": 30, "usageLimit": 2},
            headers=boss.auth,
        ).status_code
        == 201
    )
    buyers = _buyers(client, 6)
    for b in buyers:
        add_to_cart(client, b, pid, 1)
    results = race(
        6, lambda i: checkout(client, buyers[i], couponCode="FIRST2", paymentMethod="COD")
    )
    statuses = Counter(r.status_code for r in results)
    assert statuses == {201: 2, 400: 4}, [r.text for r in results]
    assert {r.json()["error"]["details"]["reason"] for r in results if r.status_code == 400} == {
        "USAGE_LIMIT_REACHED"
    }
    wait(client)
    assert client.get("/api/coupons/FIRST2", headers=buyers[0].auth).json()["used"] == 2


def test_a_retried_checkout_with_one_idempotency_key_places_one_order(
    database_url, make_client
) -> None:
    client = make_client(database_url)
    boss = admin(client)
    shop = seller(client, boss)
    buyer = verified_user(client)
    pid = stocked_product(client, boss, shop, 5, 100)
    add_to_cart(client, buyer, pid, 1)
    body = {"shippingAddress": ADDRESS, "paymentMethod": "COD", "shippingMethod": "STANDARD"}
    headers = {**buyer.auth, "Idempotency-Key": "same-checkout"}
    results = race(4, lambda _: client.post("/api/sales/orders", json=body, headers=headers))
    codes = Counter(r.status_code for r in results)
    assert codes[201] >= 1 and set(codes) <= {201, 409}, codes
    assert len({r.json()["orderId"] for r in results if r.status_code == 201}) == 1
    wait(client)
    assert (
        client.get("/api/sales/orders", headers=buyer.auth).json()["pagination"]["totalItems"] == 1
    )


def test_order_side_rebuilds_equal_incremental_processing(database_url, make_client) -> None:
    from sqlalchemy import select

    from projections.rebuild import rebuild
    from tests.support.accounts import container_of

    client = make_client(database_url)
    boss = admin(client)
    shop = seller(client, boss)
    buyer = verified_user(client)
    pid = stocked_product(client, boss, shop, 20, 100)
    client.post(
        "/api/coupons", json={"code": "RB10", "type": "PERCENT", "value": 10}, headers=boss.auth
    )
    orders = []
    for coupon in ("RB10", None, None):
        add_to_cart(client, buyer, pid, 2)
        orders.append(
            checkout(client, buyer, couponCode=coupon, paymentMethod="COD").json()["orderId"]
        )
    client.put(f"/api/sales/orders/{orders[0]}/status", json={"status": "PAID"}, headers=boss.auth)
    client.put(f"/api/sales/orders/{orders[1]}/cancel", json={"reason": "x"}, headers=buyer.auth)
    client.put(
        f"/api/sales/orders/{orders[0]}/cancel", json={"reason": "refund"}, headers=boss.auth
    )
    # the whole fulfilment path: card payment, partial refund, a unit cancelled, process, two
    # shipments, delivery, invoice
    add_to_cart(client, buyer, pid, 4)
    full = checkout(client, buyer, paymentMethod="CREDIT_CARD").json()
    card = {"number": "4242424242424242", "expiryMonth": 12, "expiryYear": 2031, "cvv": "123"}
    assert (
        client.post(
            f"/api/sales/orders/{full['orderId']}/payments",
            headers=buyer.auth,
            json={
                "paymentMethod": "CREDIT_CARD",
                "paymentData": {"cardDetails": card},
                "amount": full["total"],
            },
        ).status_code
        == 200
    )
    item = full["items"][0]["orderItemId"]
    assert (
        client.post(
            f"/api/sales/orders/{full['orderId']}/refunds",
            headers=boss.auth,
            json={"reason": "dented", "refundItems": [{"orderItemId": item, "quantity": 1}]},
        ).status_code
        == 200
    )
    r = client.put(
        f"/api/sales/orders/{full['orderId']}/cancel",
        headers=shop.auth,
        json={"reason": "short", "items": [{"orderItemId": item, "quantity": 1}]},
    )
    assert r.status_code == 200 and r.json()["status"] == "PAID"
    assert (
        client.put(
            f"/api/sales/orders/{full['orderId']}/process", json={}, headers=shop.auth
        ).status_code
        == 200
    )
    for n, qty in enumerate((1, 1)):  # 4 units: one refunded before shipping, one cancelled
        r = client.post(
            f"/api/sales/orders/{full['orderId']}/shipments",
            headers=shop.auth,
            json={
                "carrier": "HCT",
                "trackingNumber": f"H{n}",
                "items": [{"orderItemId": item, "quantity": qty}],
            },
        )
        assert r.status_code == 201
        assert (
            client.put(
                f"/api/sales/shipments/{r.json()['shipmentId']}/status",
                json={"status": "DELIVERED"},
                headers=shop.auth,
            ).status_code
            == 200
        )
    assert (
        client.post(
            f"/api/sales/orders/{full['orderId']}/confirm-receipt", headers=buyer.auth
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/api/sales/orders/{full['orderId']}/invoices", json={}, headers=buyer.auth
        ).status_code
        == 201
    )
    add_to_cart(client, buyer, pid, 1)
    wait(client)
    note = client.get("/api/notifications", headers=shop.auth).json()["notifications"][0][
        "notificationId"
    ]
    client.post(f"/api/notifications/{note}/read", headers=shop.auth)
    container = container_of(client)
    container.catch_up()
    names = ["orders", "notifications", "carts", "coupons", "sales_stats", "catalog", "inventory"]

    def dump() -> dict[str, Any]:
        out = {}
        with container.engine.connect() as conn:
            for name in names:
                for key, table in container.live_projection(name).tables.items():
                    out[f"{name}.{key}"] = sorted(map(tuple, conn.execute(select(table))))
        return out

    before = dump()
    assert before["orders.orders"] and before["sales_stats.daily"]
    for name in names:
        rebuild(container.app, container.projections[name], container.locks)
    assert dump() == before
