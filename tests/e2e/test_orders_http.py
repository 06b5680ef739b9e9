"""Cart, coupons, checkout, orders, status, cancellation and notifications over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from tests.support.accounts import container_of, login, register, verified_user, wait
from tests.support.catalog import ADDRESS, add_to_cart, category, checkout, seller, stocked_product


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def stock_of(client: Any, user: Any, pid: str) -> dict[str, int]:
    wait(client)
    return dict(
        client.get("/api/inventory/stock", params={"productId": pid}, headers=user.auth).json()[
            "totals"
        ]
    )


# --- cart -------------------------------------------------------------------------------------
def test_the_cart_adds_changes_removes_and_prices_lines(market) -> None:
    client, boss, shop, buyer = market
    a = stocked_product(client, boss, shop, 5, 350, name="保濕乳液")
    b = stocked_product(client, boss, shop, 5, "99.5", name="化妝水")
    add_to_cart(client, buyer, a, 1)
    add_to_cart(client, buyer, a, 1)
    r = client.post("/api/cart/items", json={"productId": b, "quantity": 1}, headers=buyer.auth)
    assert r.status_code == 201
    view = r.json()
    assert [(i["name"], i["quantity"], i["subtotal"]["value"]) for i in view["items"]] == [
        ("保濕乳液", 2, 700),
        ("化妝水", 1, 99.5),
    ]
    assert view["subtotal"] == {"value": 799.5, "currency": "TWD"}
    assert (
        client.put(f"/api/cart/items/{a}", json={"quantity": 3}, headers=buyer.auth).json()[
            "subtotal"
        ]["value"]
        == 1149.5
    )
    assert client.delete(f"/api/cart/items/{b}", headers=buyer.auth).status_code == 200
    wait(client)
    assert [
        i["productId"] for i in client.get("/api/cart", headers=buyer.auth).json()["items"]
    ] == [a]
    assert client.get("/api/cart", headers=verified_user(client).auth).json() == {
        "items": [],
        "subtotal": {"value": 0, "currency": "TWD"},
    }
    for bad in (0, -1, 100, 1.5, "2"):
        assert (
            client.post(
                "/api/cart/items", json={"productId": a, "quantity": bad}, headers=buyer.auth
            ).status_code
            == 400
        )
    assert (
        client.post(
            "/api/cart/items", json={"productId": str(uuid4()), "quantity": 1}, headers=buyer.auth
        ).status_code
        == 404
    )
    assert (
        client.put(f"/api/cart/items/{b}", json={"quantity": 1}, headers=buyer.auth).status_code
        == 404
    )
    client.post(f"/api/catalog/products/{a}/delist", headers=shop.auth)
    r = client.post("/api/cart/items", json={"productId": a, "quantity": 1}, headers=buyer.auth)
    assert r.status_code == 422 and error(r)["code"] == "PRODUCT_UNAVAILABLE"
    assert client.get("/api/cart").status_code == 401


# --- checkout ---------------------------------------------------------------------------------
def test_checkout_prices_reserves_redeems_and_empties_the_cart(market) -> None:
    client, boss, shop, buyer = market
    other_shop = seller(client, boss)
    a = stocked_product(client, boss, shop, 5, 350, name="保濕乳液")
    b = stocked_product(client, boss, other_shop, 5, "99.5", name="化妝水")
    assert (
        client.post(
            "/api/coupons",
            json={"code": "save50", "type": "FIXED", "value": 50, "usageLimit": 10},
            headers=boss.auth,
        ).status_code
        == 201
    )
    add_to_cart(client, buyer, a, 2)
    add_to_cart(client, buyer, b, 1)
    r = checkout(
        client, buyer, couponCode="SAVE50", paymentMethod="BANK_TRANSFER", notes="請小心輕放"
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert re.fullmatch(r"SL\d{16}", order["orderNumber"])
    assert order["status"] == "CREATED" and order["userId"] == buyer.user_id
    assert order["subtotal"]["value"] == 799.5
    assert order["discount"] == {
        "value": 50,
        "currency": "TWD",
        "couponCode": "SAVE50",
        "pointsRedeemed": 0,
    }
    assert order["tax"]["value"] == 37.48 and order["shipping"] == {
        "value": 60,
        "currency": "TWD",
        "method": "STANDARD",
    }
    assert order["total"]["value"] == 846.98
    assert [(i["name"], i["quantity"], i["unitPrice"]["value"]) for i in order["items"]] == [
        ("保濕乳液", 2, 350),
        ("化妝水", 1, 99.5),
    ]
    assert order["shippingAddress"] == ADDRESS and order["billingAddress"] == ADDRESS
    assert order["paymentUrl"].startswith(
        f"http://127.0.0.1:8000/api/sales/orders/{order['orderId']}/pay?sig="
    )
    created, expires = (
        datetime.fromisoformat(order["createdAt"]),
        datetime.fromisoformat(order["expiresAt"]),
    )
    assert expires - created == timedelta(minutes=30)
    assert order["notes"] == "請小心輕放"
    assert stock_of(client, shop, a) == {"onHand": 5, "reserved": 2, "available": 3}
    assert client.get("/api/cart", headers=buyer.auth).json()["items"] == []
    assert client.get("/api/coupons/save50", headers=buyer.auth).json()["used"] == 1
    # every seller hears about it at once
    for who in (shop, other_shop):
        notes = client.get("/api/notifications", headers=who.auth).json()["notifications"]
        assert "ORDER_PLACED" in [n["type"] for n in notes]
        assert any(n["data"].get("orderId") == order["orderId"] for n in notes)


def test_cod_orders_do_not_expire_and_card_orders_have_no_payment_page(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5)
    add_to_cart(client, buyer, pid)
    cod = checkout(client, buyer, paymentMethod="COD", shippingMethod="PICKUP").json()
    assert cod["expiresAt"] is None and cod["paymentUrl"] is None and cod["shipping"]["value"] == 0
    add_to_cart(client, buyer, pid)
    card = checkout(client, buyer, paymentMethod="CREDIT_CARD", shippingMethod="EXPRESS").json()
    assert (
        card["paymentUrl"] is None
        and card["expiresAt"] is not None
        and card["shipping"]["value"] == 120
    )


def test_checkout_rejections_write_nothing(market) -> None:
    client, boss, shop, buyer = market
    r = checkout(client, buyer)
    assert (
        r.status_code == 404
        and error(r)["code"] == "NOT_FOUND"
        and error(r)["details"]["reason"] == "CART_EMPTY"
    )
    pid = stocked_product(client, boss, shop, 2, 100, name="限量杯")
    add_to_cart(client, buyer, pid, 3)
    r = checkout(client, buyer)
    assert r.status_code == 422 and error(r)["code"] == "INSUFFICIENT_STOCK"
    assert error(r)["details"]["productId"] == pid and "限量杯" in error(r)["message"]
    assert error(r)["details"]["available"] == 2
    client.put(f"/api/cart/items/{pid}", json={"quantity": 2}, headers=buyer.auth)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"couponCode": "NOPE"}, "INVALID_COUPON"),
        ({"shippingMethod": "DRONE"}, "VALIDATION_ERROR"),
        ({"paymentMethod": "CASH"}, "VALIDATION_ERROR"),
        ({"shippingAddress": {"name": "x"}}, "VALIDATION_ERROR"),
        ({"billingAddressSameAsShipping": False}, "VALIDATION_ERROR"),
        ({"extra": 1}, "VALIDATION_ERROR"),
    ]
    for body, code in cases:
        r = checkout(client, buyer, **body)
        assert r.status_code == 400 and error(r)["code"] == code, (body, r.text)
    unverified = login(client, register(client))
    r = checkout(client, unverified)
    assert r.status_code == 403 and error(r)["code"] == "EMAIL_NOT_VERIFIED"
    assert stock_of(client, shop, pid) == {"onHand": 2, "reserved": 0, "available": 2}
    assert [i["quantity"] for i in client.get("/api/cart", headers=buyer.auth).json()["items"]] == [
        2
    ]
    client.post(f"/api/catalog/products/{pid}/delist", headers=shop.auth)
    r = checkout(client, buyer)
    assert (
        r.status_code == 422
        and error(r)["code"] == "PRODUCT_UNAVAILABLE"
        and error(r)["details"]["productId"] == pid
    )


def test_orders_above_nt_100000_are_refused(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5, 50000)
    add_to_cart(client, buyer, pid, 2)
    r = checkout(client, buyer)
    assert r.status_code == 422 and error(r)["code"] == "ORDER_LIMIT_EXCEEDED"
    client.put(f"/api/cart/items/{pid}", json={"quantity": 1}, headers=buyer.auth)
    assert checkout(client, buyer).status_code == 201


def test_coupon_rules_at_checkout(market) -> None:
    client, boss, shop, buyer = market
    other_shop = seller(client, boss)
    root = category(client, boss)
    sub = category(client, boss, parent=root)
    mine = stocked_product(client, boss, shop, 20, 100, category_id=sub)
    theirs = stocked_product(client, boss, other_shop, 20, 300)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    coupons = [
        {"code": "SHOP10", "type": "PERCENT", "value": 10},  # created by `shop`: its products only
        {"code": "CAT20", "type": "PERCENT", "value": 20, "maxDiscount": 15, "categoryId": root},
        {"code": "BIG", "type": "FIXED", "value": 100, "minSpend": 1000},
        {"code": "SOON", "type": "FIXED", "value": 5, "startsAt": later},
        {"code": "ONCE", "type": "FIXED", "value": 5, "perUserLimit": 1},
    ]
    r = client.post("/api/coupons", json=coupons[0], headers=shop.auth)
    assert r.status_code == 201 and r.json()["sellerId"] == shop.user_id
    assert (
        client.post(
            "/api/coupons",
            json={**coupons[0], "code": "X1", "sellerId": other_shop.user_id},
            headers=shop.auth,
        ).status_code
        == 403
    )
    for c in coupons[1:]:
        assert client.post("/api/coupons", json=c, headers=boss.auth).status_code == 201, c
    assert client.post("/api/coupons", json=coupons[2], headers=boss.auth).status_code == 409
    assert (
        client.post(
            "/api/coupons", json={"code": "B1", "type": "FIXED", "value": 5}, headers=buyer.auth
        ).status_code
        == 403
    )
    add_to_cart(client, buyer, mine, 2)
    add_to_cart(client, buyer, theirs, 1)

    def try_coupon(code: str) -> Any:
        return checkout(client, buyer, couponCode=code, paymentMethod="COD")

    for code, reason in [
        ("BIG", "MIN_SPEND_NOT_MET"),
        ("SOON", "NOT_STARTED"),
        ("NOPE", "UNKNOWN_CODE"),
    ]:
        r = try_coupon(code)
        assert (
            r.status_code == 400
            and error(r)["code"] == "INVALID_COUPON"
            and error(r)["details"]["reason"] == reason
        )
    order = try_coupon("shop10").json()
    assert (
        order["discount"]["value"] == 20
    )  # 10% of the shop's 200 only, not of the other seller's 300
    add_to_cart(client, buyer, mine, 2)
    add_to_cart(client, buyer, theirs, 1)
    assert try_coupon("CAT20").json()["discount"]["value"] == 15  # 20% of 200 = 40, capped at 15
    add_to_cart(client, buyer, mine, 1)
    assert try_coupon("ONCE").status_code == 201
    add_to_cart(client, buyer, mine, 1)
    r = try_coupon("ONCE")
    assert r.status_code == 400 and error(r)["details"]["reason"] == "PER_USER_LIMIT_REACHED"


def test_checkout_honours_idempotency_keys(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5)
    add_to_cart(client, buyer, pid, 1)
    headers = {**buyer.auth, "Idempotency-Key": "checkout-1"}
    body = {"shippingAddress": ADDRESS, "paymentMethod": "COD", "shippingMethod": "STANDARD"}
    first = client.post("/api/sales/orders", json=body, headers=headers)
    again = client.post("/api/sales/orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert stock_of(client, shop, pid)["reserved"] == 1
    wait(client)
    assert (
        client.get("/api/sales/orders", headers=buyer.auth).json()["pagination"]["totalItems"] == 1
    )


def test_checkout_can_use_a_saved_address(market) -> None:
    client, boss, shop, buyer = market
    address_id = client.post("/api/users/me/addresses", json=ADDRESS, headers=buyer.auth).json()[
        "addressId"
    ]
    add_to_cart(client, buyer, stocked_product(client, boss, shop, 5))
    r = client.post(
        "/api/sales/orders",
        headers=buyer.auth,
        json={
            "shippingAddressId": address_id,
            "paymentMethod": "COD",
            "shippingMethod": "STANDARD",
        },
    )
    assert r.status_code == 201 and r.json()["shippingAddress"] == ADDRESS


# --- reading orders ---------------------------------------------------------------------------
def _place(
    client: Any, boss: Any, buyer: Any, *shops_and_qty: tuple[Any, int], method: str = "COD"
) -> dict[str, Any]:
    for shop, qty in shops_and_qty:
        add_to_cart(client, buyer, stocked_product(client, boss, shop, 10, 100), qty)
    r = checkout(client, buyer, paymentMethod=method)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_each_party_sees_only_what_is_theirs(market) -> None:
    client, boss, shop, buyer = market
    other_shop = seller(client, boss)
    stranger = verified_user(client)
    order = _place(client, boss, buyer, (shop, 2), (other_shop, 3))
    oid = order["orderId"]
    wait(client)
    assert (
        client.get(f"/api/sales/orders/{oid}", headers=buyer.auth).json()["total"] == order["total"]
    )
    seen = client.get(f"/api/sales/orders/{oid}", headers=shop.auth).json()
    assert [i["quantity"] for i in seen["items"]] == [2] and seen["sellerSubtotal"]["value"] == 200
    assert seen["total"]["value"] == 200 and "billingAddress" not in seen and "tax" not in seen
    for path in (
        f"/api/sales/orders/{oid}",
        f"/api/sales/orders/{oid}/timeline",
        f"/api/sales/orders/{uuid4()}",
        "/api/sales/orders/x",
    ):
        r = client.get(path, headers=stranger.auth)
        assert r.status_code == 404 and error(r)["code"] == "ORDER_NOT_FOUND", path
    r = client.put(f"/api/sales/orders/{oid}/cancel", json={"reason": "x"}, headers=stranger.auth)
    assert r.status_code == 404
    assert client.get("/api/sales/orders", headers=stranger.auth).json()["orders"] == []
    queue = client.get(
        "/api/sales/orders", params={"sellerId": "me"}, headers=other_shop.auth
    ).json()["orders"]
    assert [(o["orderId"], o["sellerSubtotal"]["value"]) for o in queue] == [(oid, 300)]
    assert (
        client.get(
            "/api/sales/orders", params={"userId": buyer.user_id}, headers=stranger.auth
        ).status_code
        == 403
    )
    assert (
        client.get(
            "/api/sales/orders", params={"sellerId": shop.user_id}, headers=other_shop.auth
        ).status_code
        == 403
    )
    everything = client.get(
        "/api/sales/orders", params={"userId": buyer.user_id}, headers=boss.auth
    ).json()
    assert [o["orderId"] for o in everything["orders"]] == [oid]


def test_order_lists_filter_and_page(market) -> None:
    client, boss, shop, buyer = market
    first = _place(client, boss, buyer, (shop, 1))
    second = _place(client, boss, buyer, (shop, 1), method="CREDIT_CARD")
    client.put(
        f"/api/sales/orders/{first['orderId']}/cancel",
        json={"reason": "changed my mind"},
        headers=buyer.auth,
    )
    wait(client)

    def ids(**params: Any) -> list[str]:
        r = client.get("/api/sales/orders", params=params, headers=buyer.auth)
        assert r.status_code == 200, r.text
        return [o["orderId"] for o in r.json()["orders"]]

    assert ids() == [second["orderId"], first["orderId"]]
    assert ids(status="CANCELLED") == [first["orderId"]]
    assert ids(paymentStatus="PENDING", status="CREATED") == [second["orderId"]]
    assert ids(shippingStatus="NOT_SHIPPED", pageSize=1, page=2) == [first["orderId"]]
    today = datetime.now(UTC).date()
    assert (
        len(
            ids(
                fromDate=(today - timedelta(days=1)).isoformat(),
                toDate=(today + timedelta(days=1)).isoformat(),
            )
        )
        == 2
    )
    assert ids(toDate=(today - timedelta(days=2)).isoformat()) == []
    for bad in (
        {"status": "LOST"},
        {"fromDate": "2026-13-01"},
        {"pageSize": 0},
        {"fromDate": "2026-02-01", "toDate": "2026-01-01"},
    ):
        assert client.get("/api/sales/orders", params=bad, headers=buyer.auth).status_code == 400, (
            bad
        )


def test_timeline_and_the_order_as_of_a_past_moment_or_version(market) -> None:
    client, boss, shop, buyer = market
    container = container_of(client)
    t0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    container.bus.clock = lambda: t0
    order = _place(client, boss, buyer, (shop, 1), method="CREDIT_CARD")
    oid = order["orderId"]
    container.bus.clock = lambda: t0 + timedelta(minutes=10)
    assert (
        client.put(
            f"/api/sales/orders/{oid}/status", json={"status": "PAID"}, headers=boss.auth
        ).status_code
        == 200
    )
    container.bus.clock = lambda: t0 + timedelta(minutes=20)
    assert (
        client.put(
            f"/api/sales/orders/{oid}/status",
            json={"status": "PROCESSING", "notes": "packing"},
            headers=boss.auth,
        ).status_code
        == 200
    )
    wait(client)
    now = client.get(f"/api/sales/orders/{oid}", headers=buyer.auth).json()
    assert now["status"] == "PROCESSING" and now["paymentStatus"] == "COMPLETED"
    assert [s["status"] for s in now["timeline"]] == ["CREATED", "PAID", "PROCESSING"]
    before_paid = client.get(
        f"/api/sales/orders/{oid}",
        params={"asOf": (t0 + timedelta(minutes=5)).isoformat()},
        headers=buyer.auth,
    ).json()
    assert before_paid["status"] == "CREATED" and before_paid["paymentStatus"] == "PENDING"
    v2 = client.get(f"/api/sales/orders/{oid}", params={"version": 2}, headers=buyer.auth).json()
    assert v2["status"] == "CREATED" and v2["lastStatusUpdate"]["status"] == "PAID"
    v3 = client.get(f"/api/sales/orders/{oid}", params={"version": 3}, headers=buyer.auth).json()
    assert v3["status"] == "PAID" and v3["version"] == 3
    assert (
        client.get(
            f"/api/sales/orders/{oid}", params={"asOf": "2020-01-01T00:00:00Z"}, headers=buyer.auth
        ).status_code
        == 404
    )
    assert (
        client.get(
            f"/api/sales/orders/{oid}", params={"asOf": "2026-06-01T00:00:00"}, headers=buyer.auth
        ).status_code
        == 400
    )
    events = client.get(f"/api/sales/orders/{oid}/timeline", headers=buyer.auth).json()["events"]
    # each PUT .../status records the update (notes, notifyCustomer), then the transition
    # (and payment starts the ship-reminder timer, its due time recorded with it)
    assert [e["type"] for e in events] == [
        "Placed",
        "AdminStatusUpdated",
        "PaymentCompleted",
        "DeadlineSet",
        "AdminStatusUpdated",
        "Processed",
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[0]["actor"] == buyer.user_id and events[2]["actor"] == boss.user_id
    assert (
        events[3]["data"]["timer"] == "ship-reminder"
        and events[3]["data"]["dueAt"] == (t0 + timedelta(minutes=10, days=7)).isoformat()
    )
    assert (
        events[5]["data"]["notes"] == "packing"
        and events[4]["data"]["notes"] == "packing"
        and events[2]["at"] == (t0 + timedelta(minutes=10)).isoformat()
    )
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    assert now["timeline"][2] | {"timestamp": None} == {
        "status": "PROCESSING",
        "timestamp": None,
        "notes": "packing",
        "by": "admin",
    }


# --- status and cancellation ------------------------------------------------------------------
def test_admins_move_orders_along_the_status_machine_only(market) -> None:
    client, boss, shop, buyer = market
    card = _place(client, boss, buyer, (shop, 1), method="CREDIT_CARD")["orderId"]

    def put(status: str, who: Any = boss) -> Any:
        return client.put(
            f"/api/sales/orders/{card}/status", json={"status": status}, headers=who.auth
        )

    assert put("PAID", buyer).status_code == 403
    assert put("LOST").status_code == 400
    r = put("SHIPPED")
    assert r.status_code == 409 and error(r)["code"] == "INVALID_ORDER_STATUS"
    assert put("PROCESSING").status_code == 409  # unpaid card order
    assert put("PAID").json()["status"] == "PAID"
    assert put("PROCESSING").status_code == 200
    r = put("SHIPPED")  # an order is SHIPPED by its shipments, not by decree
    assert r.status_code == 409 and "shipments" in error(r)["message"]
    assert (
        client.post(
            f"/api/sales/orders/{card}/shipments",
            json={"carrier": "HCT", "trackingNumber": "T1"},
            headers=shop.auth,
        ).status_code
        == 201
    )
    r = client.put(f"/api/sales/orders/{card}/cancel", json={"reason": "late"}, headers=buyer.auth)
    assert r.status_code == 409 and error(r)["code"] == "INVALID_ORDER_STATUS"
    assert put("DELIVERED").status_code == 200
    assert put("PAID").status_code == 409
    assert (
        client.put(
            f"/api/sales/orders/{uuid4()}/status", json={"status": "PAID"}, headers=boss.auth
        ).status_code
        == 404
    )
    cod = _place(client, boss, buyer, (shop, 1), method="COD")["orderId"]
    r = client.put(
        f"/api/sales/orders/{cod}/status", json={"status": "PROCESSING"}, headers=boss.auth
    )
    assert r.status_code == 200  # cash on delivery is processed unpaid


def test_cancelling_releases_stock_and_coupon_and_refunds_paid_orders(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5, 100)
    client.post(
        "/api/coupons",
        json={"code": "ONE", "type": "FIXED", "value": 10, "usageLimit": 1},
        headers=boss.auth,
    )
    add_to_cart(client, buyer, pid, 2)
    order = checkout(client, buyer, couponCode="ONE").json()
    assert stock_of(client, shop, pid)["reserved"] == 2
    r = client.put(
        f"/api/sales/orders/{order['orderId']}/cancel",
        json={"reason": "ordered by mistake"},
        headers=buyer.auth,
    )
    assert (
        r.status_code == 200
        and r.json()["status"] == "CANCELLED"
        and r.json()["refundStatus"] == "NOT_APPLICABLE"
    )
    assert stock_of(client, shop, pid) == {"onHand": 5, "reserved": 0, "available": 5}
    assert client.get("/api/coupons/ONE", headers=buyer.auth).json()["used"] == 0
    assert (
        client.put(
            f"/api/sales/orders/{order['orderId']}/cancel",
            json={"reason": "again"},
            headers=buyer.auth,
        ).status_code
        == 409
    )
    # the coupon's use came back: the next order may take it
    add_to_cart(client, buyer, pid, 1)
    paid = checkout(client, buyer, couponCode="ONE").json()
    client.put(
        f"/api/sales/orders/{paid['orderId']}/status", json={"status": "PAID"}, headers=boss.auth
    )
    r = client.put(
        f"/api/sales/orders/{paid['orderId']}/cancel",
        json={"reason": "out of stock locally"},
        headers=shop.auth,
    )
    assert r.status_code == 200
    assert (
        r.json()["refundStatus"] == "COMPLETED"
        and r.json()["refundDetails"]["amount"] == paid["total"]
    )
    assert r.json()["paymentStatus"] == "REFUNDED" and r.json()["refundDetails"][
        "transactionId"
    ].startswith("MANUAL-")
    wait(client)
    notes = client.get("/api/notifications", headers=buyer.auth).json()["notifications"]
    assert [n["type"] for n in notes].count("ORDER_CANCELLED") == 2
    assert "ORDER_PAID" in [n["type"] for n in notes]


# --- notifications ----------------------------------------------------------------------------
def test_notifications_list_newest_first_and_are_marked_read(market) -> None:
    client, boss, shop, buyer = market
    _place(client, boss, buyer, (shop, 1))
    wait(client)
    notes = client.get("/api/notifications", headers=shop.auth).json()["notifications"]
    assert [n["type"] for n in notes] == ["ORDER_PLACED", "SELLER_APPROVED"]
    assert all(n["readAt"] is None for n in notes)
    nid = notes[0]["notificationId"]
    assert client.post(f"/api/notifications/{nid}/read", headers=buyer.auth).status_code == 404
    assert client.post(f"/api/notifications/{nid}/read", headers=shop.auth).status_code == 200
    assert (
        client.post(f"/api/notifications/{nid}/read", headers=shop.auth).status_code == 200
    )  # idempotent
    wait(client)
    unread = client.get("/api/notifications", params={"unread": "true"}, headers=shop.auth).json()
    assert [n["type"] for n in unread["notifications"]] == ["SELLER_APPROVED"]
    assert unread["pagination"]["totalItems"] == 1


def test_paid_orders_feed_the_bestsellers_and_the_bestselling_sort(market) -> None:
    client, boss, shop, buyer = market
    cat = category(client, boss)
    tea = stocked_product(client, boss, shop, 50, 100, category_id=cat, name="烏龍茶")
    cake = stocked_product(client, boss, shop, 50, 100, category_id=cat, name="鳳梨酥")
    orders = []
    for pid, qty in ((tea, 2), (cake, 5), (tea, 4)):
        add_to_cart(client, buyer, pid, qty)
        orders.append(checkout(client, buyer).json()["orderId"])
    wait(client)
    assert (
        client.get("/api/catalog/bestsellers", params={"categoryId": cat}).json()["products"] == []
    )  # unpaid
    for oid in orders:
        assert (
            client.put(
                f"/api/sales/orders/{oid}/status", json={"status": "PAID"}, headers=boss.auth
            ).status_code
            == 200
        )
    wait(client)
    ranked = client.get("/api/catalog/bestsellers", params={"categoryId": cat}).json()["products"]
    assert [(p["name"], p["unitsSold"]) for p in ranked] == [("烏龍茶", 6), ("鳳梨酥", 5)]
    client.put(
        f"/api/sales/orders/{orders[2]}/cancel", json={"reason": "refund"}, headers=boss.auth
    )
    wait(client)
    ranked = client.get("/api/catalog/bestsellers", params={"categoryId": cat}).json()["products"]
    assert [(p["name"], p["unitsSold"]) for p in ranked] == [("鳳梨酥", 5), ("烏龍茶", 2)]
    by_sales = client.get(
        "/api/catalog/products", params={"categoryId": cat, "sort": "bestselling"}
    ).json()["products"]
    assert [(p["name"], p["unitsSold"]) for p in by_sales] == [("鳳梨酥", 5), ("烏龍茶", 2)]


def test_a_seller_cannot_cancel_an_order_holding_other_sellers_items(market) -> None:
    client, boss, shop, buyer = market
    other_shop = seller(client, boss)
    shared = _place(client, boss, buyer, (shop, 1), (other_shop, 2))["orderId"]
    r = client.put(f"/api/sales/orders/{shared}/cancel", json={"reason": "no"}, headers=shop.auth)
    assert r.status_code == 403
    own = _place(client, boss, buyer, (shop, 1))["orderId"]
    assert (
        client.put(
            f"/api/sales/orders/{own}/cancel", json={"reason": "out of stock"}, headers=shop.auth
        ).status_code
        == 200
    )
    r = client.put(
        f"/api/sales/orders/{shared}/status",
        json={"status": "CANCELLED", "notes": "fraud check"},
        headers=boss.auth,
    )
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"


def test_a_product_taken_down_after_it_was_stocked_cannot_be_checked_out(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5)
    add_to_cart(client, buyer, pid, 1)
    client.post(
        f"/api/catalog/products/{pid}/suspend", json={"reason": "report"}, headers=boss.auth
    )
    r = checkout(client, buyer)
    assert r.status_code == 422 and error(r)["code"] == "PRODUCT_UNAVAILABLE"
    client.post(f"/api/catalog/products/{pid}/reinstate", headers=boss.auth)
    assert checkout(client, buyer).status_code == 201


def test_unpaid_orders_expire_releasing_stock_and_coupon_and_the_rule_is_idempotent(market) -> None:
    from uuid import UUID

    from commands.application import EventMeta
    from commands.orders import ExpireOrder

    client, boss, shop, buyer = market
    container = container_of(client)
    pid = stocked_product(client, boss, shop, 3)
    client.post(
        "/api/coupons",
        json={"code": "LAST", "type": "FIXED", "value": 5, "usageLimit": 1},
        headers=boss.auth,
    )
    add_to_cart(client, buyer, pid, 2)
    order = checkout(client, buyer, couponCode="LAST").json()
    oid = UUID(order["orderId"])
    meta = EventMeta("system:unpaid-expiry", "test")
    assert container.bus.execute(ExpireOrder(oid), meta).result is False  # not due yet
    real = container.bus.clock
    container.bus.clock = lambda: real() + timedelta(minutes=31)
    assert container.bus.execute(ExpireOrder(oid), meta).result is True
    assert container.bus.execute(ExpireOrder(oid), meta).result is False  # duplicate job: no-op
    container.bus.clock = real
    wait(client)
    got = client.get(f"/api/sales/orders/{oid}", headers=buyer.auth).json()
    assert got["status"] == "CANCELLED" and got["cancellation"]["reason"] == "EXPIRED"
    assert stock_of(client, shop, str(pid))["reserved"] == 0
    assert client.get("/api/coupons/LAST", headers=buyer.auth).json()["used"] == 0
    assert "ORDER_EXPIRED" in [
        n["type"]
        for n in client.get("/api/notifications", headers=buyer.auth).json()["notifications"]
    ]
    events = client.get(f"/api/sales/orders/{oid}/timeline", headers=buyer.auth).json()["events"]
    assert events[-1]["type"] == "Expired" and events[-1]["actor"] == "system:unpaid-expiry"
    paid_cod = _place(client, boss, buyer, (shop, 1), method="COD")["orderId"]
    container.bus.clock = lambda: real() + timedelta(days=30)
    assert (
        container.bus.execute(ExpireOrder(UUID(paid_cod)), meta).result is False
    )  # COD never expires
    container.bus.clock = real


def test_cart_adds_honour_idempotency_keys_and_odd_coupons_are_refused(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5)
    wait(client)
    headers = {**buyer.auth, "Idempotency-Key": "add-1"}
    for _ in range(2):
        r = client.post("/api/cart/items", json={"productId": pid, "quantity": 1}, headers=headers)
        assert r.status_code == 201
    assert r.headers["Idempotent-Replayed"] == "true" and r.json()["items"][0]["quantity"] == 1
    for bad in (
        {"usageLimit": 2**31},
        {"perUserLimit": 10**19},
        {"startsAt": "0001-01-01T00:00:00+01:00"},
        {"endsAt": "9999-12-31T23:00:00-05:00"},
        {"value": 1e12},
    ):
        body = {"code": f"ODD{uuid4().hex[:6]}", "type": "FIXED", "value": 5, **bad}
        r = client.post("/api/coupons", json=body, headers=boss.auth)
        assert r.status_code == 400, (bad, r.text)
    r = client.post(
        "/api/coupons",
        json={"code": "FORBUYER", "type": "FIXED", "value": 5, "sellerId": buyer.user_id},
        headers=boss.auth,
    )
    assert r.status_code == 400
