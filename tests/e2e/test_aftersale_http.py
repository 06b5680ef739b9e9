"""Returns and disputes over HTTP: each workflow end to end (SQLite and MariaDB), every illegal
step (409), who may see and do what (404 for strangers), the return window by clock, stock
back as a RETURN movement, the lost-dispute flag, and a dispute refund racing a return refund
on one order (MariaDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import ClientFactory, container_of
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import (
    add_to_cart,
    checkout,
    seller,
    stocked_product,
    warehouse,
)
from tests.support.concurrency import race

CARD = {
    "number": "4242424242424242",
    "expiryMonth": 12,
    "expiryYear": 2031,
    "cvv": "123",
    "holderName": "WANG XIAO MING",
}


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


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json())


def paid_order(
    client: TestClient, buyer: User, *lines: tuple[str, int], method: str = "CREDIT_CARD"
) -> dict[str, Any]:
    for pid, qty in lines:
        add_to_cart(client, buyer, pid, qty)
    order = ok(checkout(client, buyer, paymentMethod=method), 201)
    if method == "CREDIT_CARD":
        ok(
            client.post(
                f"/api/sales/orders/{order['orderId']}/payments",
                json={
                    "paymentMethod": "CREDIT_CARD",
                    "paymentData": {"cardDetails": CARD},
                    "amount": order["total"],
                },
                headers=buyer.auth,
            )
        )
    return order


def deliver(client: TestClient, boss: User, oid: str) -> None:
    auth = boss.auth
    ok(client.put(f"/api/sales/orders/{oid}/status", json={"status": "PROCESSING"}, headers=auth))
    ok(
        client.post(
            f"/api/sales/orders/{oid}/shipments",
            json={"carrier": "BLACK_CAT", "trackingNumber": f"TC{oid[:8].upper()}"},
            headers=auth,
        ),
        201,
    )
    ok(client.put(f"/api/sales/orders/{oid}/status", json={"status": "DELIVERED"}, headers=auth))


def delivered_order(
    client: TestClient, boss: User, buyer: User, *lines: tuple[str, int]
) -> dict[str, Any]:
    order = paid_order(client, buyer, *lines)
    deliver(client, boss, order["orderId"])
    return order


def ask_return(client: TestClient, buyer: User, order: dict[str, Any], *units: int) -> Any:
    items = [
        {"orderItemId": item["orderItemId"], "quantity": n}
        for item, n in zip(order["items"], units, strict=False)
    ]
    return client.post(
        f"/api/sales/orders/{order['orderId']}/returns",
        json={"items": items, "reason": "尺寸不合"},
        headers=buyer.auth,
    )


def step(client: TestClient, who: User, rid: str, action: str, **body: Any) -> Any:
    return client.post(f"/api/sales/returns/{rid}/{action}", json=body, headers=who.auth)


def notes(client: TestClient, who: User) -> list[dict[str, Any]]:
    wait(client)
    return list(client.get("/api/notifications", headers=who.auth).json()["notifications"])


def kinds(client: TestClient, who: User) -> list[str]:
    return [n["type"] for n in notes(client, who)]


def refunded(client: TestClient, who: User, oid: str) -> list[dict[str, Any]]:
    wait(client)
    return list(ok(client.get(f"/api/sales/orders/{oid}/refunds", headers=who.auth))["refunds"])


def money_sum(refunds: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(str(r["amount"]["value"])) for r in refunds), Decimal(0))


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
    movements = ok(
        client.get(f"/api/inventory/movements?productId={pid}", headers=seller_.auth)
    )["movements"]
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
        ({"items": [{"orderItemId": "nope", "quantity": 1}], "reason": "x"}, "items[0].orderItemId"),
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
    ok(ask_return(client, buyer, order, 2), 201)
    r = ask_return(client, buyer, order, 1)
    assert r.status_code == 409 and error(r)["code"] == "RETURN_ALREADY_EXISTS"
    wait(client)
    assert ok(client.get(path, headers=buyer.auth))["pagination"]["totalItems"] == 1


def test_every_illegal_return_step_is_refused(shop: Any) -> None:
    client, boss, seller_, buyer = shop
    pid = stocked_product(client, boss, seller_, quantity=9, price=300)
    rid = ok(ask_return(client, buyer, delivered_order(client, boss, buyer, (pid, 2)), 1), 201)[
        "returnId"
    ]
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
    ok(step(client, boss, rid, "receive", warehouseId=where))  # an admin may act for the seller
    refused(seller_, "receive", 409, "INVALID_RETURN_STATUS", warehouseId=where)

    second = ok(ask_return(client, buyer, delivered_order(client, boss, buyer, (pid, 1)), 1), 201)
    r = step(client, seller_, second["returnId"], "reject", reason="已使用")
    assert ok(r)["status"] == "REJECTED" and "RETURN_REJECTED" in kinds(client, buyer)
    r = step(client, buyer, second["returnId"], "ship-back", carrier="c", trackingNumber="t")
    assert r.status_code == 409 and error(r)["code"] == "INVALID_RETURN_STATUS"
    r = step(client, seller_, "not-an-id", "approve")
    assert r.status_code == 404 and error(r)["code"] == "RETURN_NOT_FOUND"


# --- disputes -------------------------------------------------------------------------------
def dispute(client: TestClient, who: User, oid: str, **extra: Any) -> Any:
    body = {"reason": "商品與描述不符", "text": "顏色不同", **extra}
    return client.post(f"/api/sales/orders/{oid}/disputes", json=body, headers=who.auth)


def resolve(client: TestClient, boss: User, did: str, resolution: str, **extra: Any) -> Any:
    body = {"resolution": resolution, "note": "依據雙方陳述", **extra}
    return client.post(f"/api/sales/disputes/{did}/resolve", json=body, headers=boss.auth)


def test_a_dispute_is_argued_by_both_sides_and_resolved_with_a_partial_refund(
    market: Any,
) -> None:
    client, boss, seller_, buyer = market
    pid = stocked_product(client, boss, seller_, quantity=5, price=500)
    order = delivered_order(client, boss, buyer, (pid, 2))
    oid = order["orderId"]
    opened = ok(dispute(client, buyer, oid), 201)
    did = opened["disputeId"]
    assert opened["status"] == "OPEN" and opened["openerRole"] == "buyer"
    assert opened["sellerId"] == seller_.user_id and opened["statements"] == []
    assert "DISPUTE_OPENED" in kinds(client, seller_)

    path = f"/api/sales/disputes/{did}/statements"
    said = ok(client.post(path, json={"text": "已附出貨照片"}, headers=seller_.auth), 201)
    assert [s["role"] for s in said["statements"]] == ["seller"]
    assert "DISPUTE_STATEMENT" in kinds(client, buyer)
    ok(client.post(path, json={"text": "照片是別的商品"}, headers=buyer.auth), 201)
    wait(client)  # the admin reads another user's write
    queue = ok(client.get("/api/admin/disputes", headers=boss.auth))["disputes"]
    assert [d["disputeId"] for d in queue] == [did] and queue[0]["statementCount"] == 2

    done = ok(resolve(client, boss, did, "REFUND_PARTIAL", amount={"value": 200, "currency": "TWD"}))
    assert done["status"] == "RESOLVED"
    assert done["resolution"]["resolution"] == "REFUND_PARTIAL"
    assert done["resolution"]["refund"]["amount"]["value"] == 200.0
    assert done["resolution"]["refund"]["status"] == "COMPLETED"
    assert money_sum(refunded(client, buyer, oid)) == Decimal(200)
    assert "DISPUTE_RESOLVED" in kinds(client, buyer) and "DISPUTE_RESOLVED" in kinds(
        client, seller_
    )
    assert ok(client.get("/api/admin/disputes", headers=boss.auth))["disputes"] == []
    seen = ok(client.get(f"/api/sales/disputes/{did}", headers=seller_.auth))
    assert [s["text"] for s in seen["statements"]] == ["已附出貨照片", "照片是別的商品"]
    assert seen["resolution"]["refund"]["status"] == "COMPLETED"

    r = client.post(path, json={"text": "還有話說"}, headers=buyer.auth)
    assert r.status_code == 409 and error(r)["code"] == "DISPUTE_CLOSED"
    r = resolve(client, boss, did, "REJECTED")
    assert r.status_code == 409 and error(r)["code"] == "DISPUTE_CLOSED"
    stranger, rival = verified_user(client), seller(client, boss)
    for who in (stranger, rival):
        r = client.get(f"/api/sales/disputes/{did}", headers=who.auth)
        assert r.status_code == 404 and error(r)["code"] == "DISPUTE_NOT_FOUND"
        r = client.post(path, json={"text": "路人"}, headers=who.auth)
        assert r.status_code == 404
        assert dispute(client, who, oid).status_code == 404


def test_dispute_rules_and_resolutions(shop: Any) -> None:
    client, boss, seller_, buyer = shop
    pid = stocked_product(client, boss, seller_, quantity=20, price=500)
    unpaid = ok(_unpaid(client, buyer, pid), 201)
    r = dispute(client, buyer, unpaid["orderId"])
    assert r.status_code == 409 and error(r)["code"] == "INVALID_ORDER_STATUS"

    order = paid_order(client, buyer, (pid, 1))  # a paid order may be disputed before delivery
    oid = order["orderId"]
    for bad in ({"reason": ""}, {"text": ""}, {"note": "x"}, {"sellerId": buyer.user_id}):
        r = dispute(client, buyer, oid, **bad)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", (bad, r.text)
    did = ok(dispute(client, seller_, oid), 201)["disputeId"]  # the seller may open it too
    r = dispute(client, buyer, oid)
    assert r.status_code == 409 and error(r)["code"] == "DISPUTE_ALREADY_EXISTS"
    r = resolve(client, buyer, did, "REJECTED")
    assert r.status_code == 403
    for bad in (
        {"resolution": "REFUND_PARTIAL"},
        {"resolution": "REFUND_FULL", "amount": {"value": 1, "currency": "TWD"}},
        {"resolution": "REFUND_PARTIAL", "amount": {"value": 1.001, "currency": "TWD"}},
        {"resolution": "MAYBE"},
    ):
        r = resolve(client, boss, did, **bad)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", (bad, r.text)
    r = resolve(client, boss, did, "REFUND_PARTIAL", amount={"value": 99999, "currency": "TWD"})
    assert r.status_code == 422 and error(r)["code"] == "REFUND_FAILED"
    full = ok(resolve(client, boss, did, "REFUND_FULL"))["resolution"]["refund"]
    assert full["amount"]["value"] == order["total"]["value"]
    assert money_sum(refunded(client, buyer, oid)) == Decimal(str(order["total"]["value"]))

    other = paid_order(client, buyer, (pid, 1))
    rejected = ok(dispute(client, buyer, other["orderId"]), 201)["disputeId"]
    done = ok(resolve(client, boss, rejected, "REJECTED"))
    assert done["resolution"]["refund"] is None and refunded(client, buyer, other["orderId"]) == []
    wait(client)
    record = ok(client.get(f"/api/admin/sellers/{seller_.user_id}/dispute-record", headers=boss.auth))
    assert record["disputesLost"] == 1 and record["flagged"] is False  # REJECTED is not lost


def _unpaid(client: TestClient, buyer: User, pid: str) -> Any:
    add_to_cart(client, buyer, pid, 1)
    return checkout(client, buyer, paymentMethod="CREDIT_CARD")


def test_a_buyer_names_the_seller_of_a_dispute_when_an_order_has_several(shop: Any) -> None:
    client, boss, seller_, buyer = shop
    second = seller(client, boss)
    mine = stocked_product(client, boss, seller_, price=300)
    theirs = stocked_product(client, boss, second, price=200)
    order = paid_order(client, buyer, (mine, 1), (theirs, 1))
    oid = order["orderId"]
    r = dispute(client, buyer, oid)
    assert r.status_code == 400 and error(r)["details"]["field"] == "sellerId"
    did = ok(dispute(client, buyer, oid, sellerId=second.user_id), 201)["disputeId"]
    r = client.get(f"/api/sales/disputes/{did}", headers=seller_.auth)
    assert r.status_code == 404  # the other seller of the order is no party
    assert ok(client.get(f"/api/sales/orders/{oid}/disputes", headers=seller_.auth))[
        "disputes"
    ] == []
    refund = ok(resolve(client, boss, did, "REFUND_FULL"))["resolution"]["refund"]
    assert refund["amount"]["value"] == 210.0  # that seller's item with tax, not the shipping


def test_a_seller_losing_too_many_disputes_is_flagged_for_admin_review(
    make_client: ClientFactory,
) -> None:
    client = make_client(dispute_losses_to_flag=2)
    boss = admin(client)
    seller_, buyer = seller(client, boss), verified_user(client)
    pid = stocked_product(client, boss, seller_, quantity=20, price=100)
    dids = [
        ok(dispute(client, buyer, paid_order(client, buyer, (pid, 1))["orderId"]), 201)[
            "disputeId"
        ]
        for _ in range(3)
    ]
    ok(resolve(client, boss, dids[0], "REFUND_PARTIAL", amount={"value": 10, "currency": "TWD"}))
    ok(resolve(client, boss, dids[1], "REJECTED"))
    wait(client)
    assert ok(client.get("/api/admin/sellers/dispute-records", headers=boss.auth))["sellers"] == []
    assert "SELLER_FLAGGED" not in kinds(client, boss)
    ok(resolve(client, boss, dids[2], "REFUND_FULL"))
    wait(client)
    flagged = ok(client.get("/api/admin/sellers/dispute-records", headers=boss.auth))["sellers"]
    assert [(s["sellerId"], s["lostInWindow"], s["windowDays"]) for s in flagged] == [
        (seller_.user_id, 2, 90)
    ]
    told = [n for n in notes(client, boss) if n["type"] == "SELLER_FLAGGED"]
    assert len(told) == 1 and told[0]["data"]["sellerId"] == seller_.user_id
    assert client.get("/api/admin/sellers/dispute-records", headers=seller_.auth).status_code == 403

    path = f"/api/admin/sellers/{seller_.user_id}/dispute-record/clear-flag"
    cleared = ok(client.post(path, json={"note": "已改善"}, headers=boss.auth))
    assert cleared["flagged"] is False and cleared["clearNote"] == "已改善"
    r = client.post(path, json={}, headers=boss.auth)
    assert r.status_code == 409
    wait(client)
    assert ok(client.get("/api/admin/sellers/dispute-records", headers=boss.auth))["sellers"] == []


# --- the race -------------------------------------------------------------------------------
@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_a_dispute_refund_racing_a_return_refund_never_exceeds_the_payment(market: Any) -> None:
    client, boss, seller_, buyer = market
    pid = stocked_product(client, boss, seller_, quantity=20, price=400)
    where = warehouse(client, boss)
    for _ in range(2):
        order = delivered_order(client, boss, buyer, (pid, 2))
        oid = order["orderId"]
        rid = ok(ask_return(client, buyer, order, 2), 201)["returnId"]
        ok(step(client, seller_, rid, "approve"))
        ok(step(client, buyer, rid, "ship-back", carrier="c", trackingNumber="t"))
        did = ok(dispute(client, buyer, oid), 201)["disputeId"]
        answers = race(
            2,
            lambda n, rid=rid, did=did: step(client, seller_, rid, "receive", warehouseId=where)
            if n == 0
            else resolve(client, boss, did, "REFUND_FULL"),
        )
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        total = Decimal(str(order["total"]["value"]))
        refunds = refunded(client, buyer, oid)
        assert money_sum(refunds) <= total
        # whichever came second got what was left: together exactly the payment
        assert money_sum(refunds) == total, refunds
