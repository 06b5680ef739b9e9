"""Returns over HTTP: the workflow end to end (SQLite and MariaDB), every illegal step (409),
who may see and do what (404 for strangers), the return window by clock, and the stock back as
a RETURN movement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ClientFactory, container_of
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.aftersale import (
    CountingGateway,
    ask_return,
    assert_rebuilds_equal,
    delivered_order,
    error,
    kinds,
    ok,
    paid_order,
    refunded,
    step,
)
from tests.support.catalog import seller, stocked_product, warehouse


@pytest.fixture
def market(make_client: ClientFactory, database_url: str) -> Any:
    """(client, admin, an approved seller, a verified buyer), on SQLite and on MariaDB."""
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


@pytest.fixture
def shop(make_client: ClientFactory) -> Any:
    """The same on SQLite only (the breadth of the rules)."""
    client = make_client()
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


# --- returns --------------------------------------------------------------------------------
def test_a_return_is_requested_approved_shipped_back_and_received_into_stock_with_a_refund(
    market: Any,
) -> None:
    client, boss, seller_, buyer = market
    pid = stocked_product(client, boss, seller_, quantity=5, price=500)
    order = delivered_order(client, boss, buyer, (pid, 2))
    oid = order["orderId"]

    answer = ask_return(client, buyer, order, 1)
    made = ok(answer, 201)
    assert "X-Event-Position" in answer.headers
    assert made["status"] == "REQUESTED" and made["sellerId"] == seller_.user_id
    assert made["items"][0]["quantity"] == 1 and made["refund"] is None
    rid = made["returnId"]
    assert "RETURN_REQUESTED" in kinds(client, seller_)

    approved = ok(step(client, seller_, rid, "approve", note="請寄回"))
    assert approved["status"] == "APPROVED" and approved["decisionNote"] == "請寄回"
    assert "RETURN_APPROVED" in kinds(client, buyer)
    shipped = ok(step(client, buyer, rid, "ship-back", carrier="黑貓", trackingNumber="TC1"))
    assert shipped["status"] == "SHIPPED_BACK" and shipped["trackingNumber"] == "TC1"
    assert "RETURN_SHIPPED_BACK" in kinds(client, seller_)

    back_to = warehouse(client, boss)
    received = ok(step(client, seller_, rid, "receive", warehouseId=back_to))
    assert received["status"] == "RECEIVED" and received["warehouseId"] == back_to
    refund = received["refund"]
    # one of two units of NT$500: its share of the goods with 5% tax
    assert refund["status"] == "COMPLETED" and refund["amount"]["value"] == 525.0
    assert "RETURN_RECEIVED" in kinds(client, buyer) and "REFUND_ISSUED" in kinds(client, buyer)

    refunds = refunded(client, buyer, oid)
    assert [r["refundId"] for r in refunds] == [refund["refundId"]]
    wait(client)
    assert ok(client.get(f"/api/sales/orders/{oid}", headers=buyer.auth))["paymentStatus"] == (
        "PARTIALLY_REFUNDED"
    )
    movements = ok(client.get(f"/api/inventory/movements?productId={pid}", headers=seller_.auth))[
        "movements"
    ]
    back = [m for m in movements if m["kind"] == "RETURN"]
    assert len(back) == 1 and back[0]["warehouseId"] == back_to
    assert back[0]["onHandChange"] == 1 and back[0]["reference"] == rid
    stock = ok(client.get(f"/api/inventory/stock?productId={pid}", headers=seller_.auth))
    there = [w for w in stock["warehouses"] if w["warehouseId"] == back_to]
    assert there and there[0]["onHand"] == 1

    for who in (buyer, seller_, boss):
        assert ok(client.get(f"/api/sales/returns/{rid}", headers=who.auth))["status"] == "RECEIVED"
    listed = ok(client.get(f"/api/sales/orders/{oid}/returns", headers=buyer.auth))["returns"]
    assert [r["refund"]["status"] for r in listed] == ["COMPLETED"]
    mine = ok(client.get("/api/sales/returns?sellerId=me", headers=seller_.auth))["returns"]
    assert [r["returnId"] for r in mine] == [rid]
    stranger, rival = verified_user(client), seller(client, boss)
    for who in (stranger, rival):
        r = client.get(f"/api/sales/returns/{rid}", headers=who.auth)
        assert r.status_code == 404 and error(r)["code"] == "RETURN_NOT_FOUND"
        assert step(client, who, rid, "approve").status_code == 404
        r = client.get(f"/api/sales/orders/{oid}/returns", headers=who.auth)
        assert r.status_code == 404 and error(r)["code"] == "ORDER_NOT_FOUND"
        assert ok(client.get("/api/sales/returns", headers=who.auth))["returns"] == []


def test_a_return_request_is_checked_against_the_order_and_the_window(shop: Any) -> None:
    client, boss, seller_, buyer = shop
    pid = stocked_product(client, boss, seller_, quantity=9, price=300)
    pending = paid_order(client, buyer, (pid, 1))
    r = ask_return(client, buyer, pending, 1)
    assert r.status_code == 409 and error(r)["code"] == "INVALID_ORDER_STATUS"

    container = container_of(client)
    t0 = datetime.now(UTC)
    container.bus.clock = lambda: t0
    order = delivered_order(client, boss, buyer, (pid, 2))
    oid, item = order["orderId"], order["items"][0]["orderItemId"]
    path = f"/api/sales/orders/{oid}/returns"
    for body, field in (
        ({"items": [{"orderItemId": item, "quantity": 3}], "reason": "x"}, "items[0].quantity"),
        (
            {"items": [{"orderItemId": "nope", "quantity": 1}], "reason": "x"},
            "items[0].orderItemId",
        ),
        ({"items": [], "reason": "x"}, "items"),
        ({"items": [{"orderItemId": item, "quantity": 0}], "reason": "x"}, "items[0].quantity"),
        ({"items": [{"orderItemId": item, "quantity": 1}], "reason": " "}, "reason"),
        ({"items": [{"orderItemId": item, "quantity": 1}], "reason": "x", "extra": 1}, "extra"),
        (
            {"items": [{"orderItemId": item, "quantity": 1}], "reason": "x", "images": ["ftp:x"]},
            "images",
        ),
    ):
        r = client.post(path, json=body, headers=buyer.auth)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", (body, r.text)
        problems = [p["field"] for p in error(r)["details"].get("errors", [])]
        assert field in problems + [error(r)["details"].get("field")], (field, r.text)
    other = verified_user(client)
    r = ask_return(client, other, order, 1)
    assert r.status_code == 404 and error(r)["code"] == "ORDER_NOT_FOUND"

    container.bus.clock = lambda: t0 + timedelta(days=7, minutes=1)
    r = ask_return(client, buyer, order, 1)
    assert r.status_code == 409 and error(r)["code"] == "RETURN_WINDOW_CLOSED"
    container.bus.clock = lambda: t0 + timedelta(days=6, hours=23)
    body = {"items": [{"orderItemId": item, "quantity": 2}], "reason": "x"}
    keyed = {**buyer.auth, "Idempotency-Key": "return-once"}
    first = ok(client.post(path, json=body, headers=keyed), 201)
    repeat = client.post(path, json=body, headers=keyed)  # a retried request: the same answer
    assert ok(repeat, 201) == first and repeat.headers["Idempotent-Replayed"] == "true"
    r = ask_return(client, buyer, order, 1)
    assert r.status_code == 409 and error(r)["code"] == "RETURN_ALREADY_EXISTS"
    wait(client)
    assert ok(client.get(path, headers=buyer.auth))["pagination"]["totalItems"] == 1


def test_every_illegal_return_step_is_refused(shop: Any) -> None:
    client, boss, seller_, buyer = shop
    pid = stocked_product(client, boss, seller_, quantity=9, price=300)
    cod = delivered_order(client, boss, buyer, (pid, 2), method="COD")  # paid to the carrier
    rid = ok(ask_return(client, buyer, cod, 1), 201)["returnId"]
    where = warehouse(client, boss)

    def refused(who: User, action: str, status: int, code: str, **body: Any) -> None:
        r = step(client, who, rid, action, **body)
        assert r.status_code == status and error(r)["code"] == code, (action, r.text)

    refused(seller_, "ship-back", 403, "FORBIDDEN", carrier="c", trackingNumber="t")
    refused(buyer, "approve", 403, "FORBIDDEN")
    refused(buyer, "ship-back", 409, "INVALID_RETURN_STATUS", carrier="c", trackingNumber="t")
    refused(seller_, "receive", 409, "INVALID_RETURN_STATUS", warehouseId=where)
    refused(seller_, "reject", 400, "VALIDATION_ERROR")  # a reason is required
    ok(step(client, seller_, rid, "approve"))
    refused(seller_, "approve", 409, "INVALID_RETURN_STATUS")
    refused(seller_, "reject", 409, "INVALID_RETURN_STATUS", reason="late")
    refused(seller_, "receive", 409, "INVALID_RETURN_STATUS", warehouseId=where)
    ok(step(client, buyer, rid, "ship-back", carrier="c", trackingNumber="t"))
    refused(buyer, "ship-back", 409, "INVALID_RETURN_STATUS", carrier="c", trackingNumber="t")
    refused(seller_, "receive", 400, "VALIDATION_ERROR", warehouseId="not-a-warehouse")
    refused(buyer, "receive", 403, "FORBIDDEN", warehouseId=where)  # a seller's step
    received = ok(step(client, boss, rid, "receive", warehouseId=where))  # an admin may, too
    # money that came cash on delivery goes back by transfer: recorded at once, no gateway
    assert received["refund"]["status"] == "COMPLETED"
    assert received["refund"]["amount"]["value"] == 315.0  # 300 + 5% tax
    assert [r["status"] for r in refunded(client, buyer, cod["orderId"])] == ["COMPLETED"]
    refused(seller_, "receive", 409, "INVALID_RETURN_STATUS", warehouseId=where)

    second = ok(ask_return(client, buyer, delivered_order(client, boss, buyer, (pid, 1)), 1), 201)
    r = step(client, seller_, second["returnId"], "reject", reason="已使用")
    assert ok(r)["status"] == "REJECTED" and "RETURN_REJECTED" in kinds(client, buyer)
    r = step(client, buyer, second["returnId"], "ship-back", carrier="c", trackingNumber="t")
    assert r.status_code == 409 and error(r)["code"] == "INVALID_RETURN_STATUS"
    r = step(client, seller_, "not-an-id", "approve")
    assert r.status_code == 404 and error(r)["code"] == "RETURN_NOT_FOUND"
    assert_rebuilds_equal(client, "aftersale", "notifications", "inventory")


def test_a_refund_the_card_gateway_refuses_leaves_the_return_received_and_refundable(
    shop: Any,
) -> None:
    client, boss, seller_, buyer = shop
    pid = stocked_product(client, boss, seller_, quantity=5, price=500)
    order = delivered_order(client, boss, buyer, (pid, 1))
    rid = ok(ask_return(client, buyer, order, 1), 201)["returnId"]
    ok(step(client, seller_, rid, "approve"))
    ok(step(client, buyer, rid, "ship-back", carrier="c", trackingNumber="t"))
    client.app.state.card_gateway = CountingGateway(refuse=True)
    r = step(client, seller_, rid, "receive", warehouseId=warehouse(client, boss))
    assert r.status_code == 422 and error(r)["code"] == "REFUND_FAILED"
    assert error(r)["details"]["returnId"] == rid
    wait(client)
    seen = ok(client.get(f"/api/sales/returns/{rid}", headers=seller_.auth))
    assert seen["status"] == "RECEIVED" and seen["refund"]["status"] == "FAILED"
    # the amount is refundable again through the order's refund path
    client.app.state.card_gateway = CountingGateway()
    item = order["items"][0]["orderItemId"]
    again = client.post(
        f"/api/sales/orders/{order['orderId']}/refunds",
        json={"reason": "退貨", "refundItems": [{"orderItemId": item, "quantity": 1}]},
        headers=seller_.auth,
    )
    assert ok(again)["status"] == "COMPLETED"
