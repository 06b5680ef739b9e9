"""Processing, partial shipments, shipment status, receipt confirmation, COD and invoices
over HTTP."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

from tests.support.accounts import verified_user, wait
from tests.support.catalog import add_to_cart, checkout, receive, seller, stocked_product, warehouse


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def order_of(client: Any, who: Any, oid: str) -> dict[str, Any]:
    wait(client)
    return dict(client.get(f"/api/sales/orders/{oid}", headers=who.auth).json())


def paid_order(
    client: Any, boss: Any, buyer: Any, *lines: tuple[str, int], method: str = "CREDIT_CARD"
) -> dict[str, Any]:
    for pid, qty in lines:
        add_to_cart(client, buyer, pid, qty)
    r = checkout(client, buyer, paymentMethod=method)
    assert r.status_code == 201, r.text
    order = r.json()
    if method != "COD":
        assert (
            client.put(
                f"/api/sales/orders/{order['orderId']}/status",
                json={"status": "PAID"},
                headers=boss.auth,
            ).status_code
            == 200
        )
    return dict(order)


def ship(
    client: Any, who: Any, oid: str, items: list[tuple[str, int]] | None = None, **extra: Any
) -> Any:
    body: dict[str, Any] = {
        "carrier": "BLACK_CAT",
        "trackingNumber": f"TC{uuid4().hex[:10].upper()}",
        **extra,
    }
    if items is not None:
        body["items"] = [{"orderItemId": i, "quantity": q} for i, q in items]
    return client.post(f"/api/sales/orders/{oid}/shipments", json=body, headers=who.auth)


def move(client: Any, who: Any, sid: str, status: str, **extra: Any) -> Any:
    return client.put(
        f"/api/sales/shipments/{sid}/status", json={"status": status, **extra}, headers=who.auth
    )


def stock(client: Any, who: Any, pid: str) -> dict[str, Any]:
    wait(client)
    return dict(
        client.get("/api/inventory/stock", params={"productId": pid}, headers=who.auth).json()
    )


def types(client: Any, who: Any) -> list[str]:
    wait(client)
    return [
        n["type"]
        for n in client.get("/api/notifications", headers=who.auth).json()["notifications"]
    ]


def test_an_order_is_processed_shipped_in_parts_and_delivered(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 10, 200)
    order = paid_order(client, boss, buyer, (pid, 3))
    oid, item = order["orderId"], order["items"][0]["orderItemId"]
    r = ship(client, shop, oid)
    assert r.status_code == 409 and "process" in error(r)["message"]  # paid, not yet processed
    r = client.put(
        f"/api/sales/orders/{oid}/process",
        json={"processedBy": "倉管小王", "estimatedShippingDate": "2026-12-01", "notes": "fragile"},
        headers=shop.auth,
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["status"] == "PROCESSING"
        and r.json()["processedBy"] == "倉管小王"
        and r.json()["estimatedShippingDate"] == "2026-12-01"
    )
    assert (
        client.put(f"/api/sales/orders/{oid}/process", json={}, headers=shop.auth).status_code
        == 409
    )  # already
    r = ship(client, shop, oid, [(item, 2)], packageInfo={"weight": 1.2, "weightUnit": "kg"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "SHIPPED" and first["orderStatus"] == "PROCESSING"
    assert (
        first["trackingUrl"]
        == f"https://www.t-cat.com.tw/Inquire/TraceDetail.aspx?BillID={first['trackingNumber']}"
    )
    assert first["items"][0]["quantity"] == 2
    assert stock(client, shop, pid)["totals"] == {
        "onHand": 8,
        "reserved": 1,
        "available": 7,
    }  # shipped units left
    now = order_of(client, buyer, oid)
    assert (
        now["shippingStatus"] == "PARTIALLY_SHIPPED"
        and now["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    )
    r = ship(client, shop, oid, [(item, 2)])
    assert r.status_code == 409 and error(r)["details"]["remaining"] == 1
    r = client.put(
        f"/api/sales/orders/{oid}/cancel", json={"reason": "too slow"}, headers=buyer.auth
    )
    assert r.status_code == 409 and error(r)["details"]["reason"] == "PARTLY_SHIPPED"
    second = ship(client, shop, oid).json()  # the rest
    assert second["orderStatus"] == "SHIPPED" and second["items"][0]["quantity"] == 1
    assert stock(client, shop, pid)["totals"] == {"onHand": 7, "reserved": 0, "available": 7}
    r = client.put(
        f"/api/sales/orders/{oid}/cancel", json={"reason": "too late"}, headers=buyer.auth
    )
    assert r.status_code == 409 and error(r)["code"] == "INVALID_ORDER_STATUS"
    r = client.post(f"/api/sales/orders/{oid}/confirm-receipt", headers=buyer.auth)
    assert r.status_code == 409 and error(r)["details"]["reason"] == "NOT_DELIVERED"
    for status in ("IN_TRANSIT", "OUT_FOR_DELIVERY"):
        assert (
            move(
                client,
                shop,
                first["shipmentId"],
                status,
                location={"city": "台中", "country": "TW"},
            ).status_code
            == 200
        )
    r = move(client, shop, first["shipmentId"], "SHIPPED")
    assert (
        r.status_code == 409
        and error(r)["code"] == "CONFLICT"
        and error(r)["details"]["reason"] == "INVALID_SHIPMENT_STATUS"
    )
    r = move(client, shop, first["shipmentId"], "DELIVERED", notifyCustomer=False)
    assert (
        r.status_code == 200
        and r.json()["allDelivered"] is False
        and r.json()["notificationSent"] is False
    )
    r = move(client, boss, second["shipmentId"], "DELIVERED")
    assert r.json()["allDelivered"] is True and r.json()["orderStatus"] == "SHIPPED"
    wait(client)
    shipments = client.get(f"/api/sales/orders/{oid}/shipments", headers=buyer.auth).json()
    assert [s["status"] for s in shipments["shipments"]] == ["DELIVERED", "DELIVERED"]
    assert shipments["shipments"][0]["currentLocation"] == {"city": "台中", "country": "TW"}
    assert [h["status"] for h in shipments["shipments"][0]["history"]] == [
        "SHIPPED",
        "IN_TRANSIT",
        "OUT_FOR_DELIVERY",
        "DELIVERED",
    ]
    assert (
        client.post(f"/api/sales/orders/{oid}/confirm-receipt", headers=shop.auth).status_code
        == 403
    )
    r = client.post(f"/api/sales/orders/{oid}/confirm-receipt", headers=buyer.auth)
    assert r.status_code == 200 and r.json()["status"] == "DELIVERED"
    again = client.post(f"/api/sales/orders/{oid}/confirm-receipt", headers=buyer.auth)
    assert again.status_code == 200 and again.json() == r.json()  # idempotent: no new event
    now = order_of(client, buyer, oid)
    assert [t["status"] for t in now["timeline"]] == [
        "CREATED",
        "PAID",
        "PROCESSING",
        "SHIPPED",
        "DELIVERED",
    ]
    assert now["shippingStatus"] == "DELIVERED" and now["fulfillmentStatus"] == "DELIVERED"
    notes = types(client, buyer)
    listed = client.get("/api/notifications", headers=buyer.auth).json()["notifications"]
    assert [n["data"]["status"] for n in listed if n["type"] == "SHIPMENT_UPDATED"] == [
        "DELIVERED",
        "OUT_FOR_DELIVERY",
        "IN_TRANSIT",
    ]
    assert (
        notes.count("ORDER_SHIPPED") == 2
        and notes.count("SHIPMENT_UPDATED") == 3
        and "ORDER_DELIVERED" in notes
    )
    events = client.get(f"/api/sales/orders/{oid}/timeline", headers=buyer.auth).json()["events"]
    kinds = [e["type"] for e in events]
    assert kinds.count("ShipmentStatusChanged") == 4 and kinds.count("Delivered") == 1
    assert kinds[-1] == "Delivered"


def test_processing_allocates_the_reserved_stock_to_the_chosen_warehouse(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5, 100)  # 5 in a first warehouse
    north = warehouse(client, boss)
    receive(client, shop, pid, north, 2)
    order = paid_order(client, boss, buyer, (pid, 2))
    before = {w["warehouseId"]: w["reserved"] for w in stock(client, shop, pid)["warehouses"]}
    assert before[north] == 0  # the fullest warehouse was reserved at checkout
    r = client.put(
        f"/api/sales/orders/{order['orderId']}/process",
        json={"warehouseId": north},
        headers=shop.auth,
    )
    assert r.status_code == 200, r.text
    after = {
        w["warehouseId"]: (w["onHand"], w["reserved"])
        for w in stock(client, shop, pid)["warehouses"]
    }
    assert after[north] == (2, 2)
    assert ship(client, shop, order["orderId"]).status_code == 201
    after = {
        w["warehouseId"]: (w["onHand"], w["reserved"])
        for w in stock(client, shop, pid)["warehouses"]
    }
    assert after[north] == (0, 0) and sum(v[0] for v in after.values()) == 5
    other = paid_order(client, boss, buyer, (pid, 3))
    r = client.put(
        f"/api/sales/orders/{other['orderId']}/process",
        json={"warehouseId": north},
        headers=shop.auth,
    )
    assert r.status_code == 422 and error(r)["code"] == "INSUFFICIENT_STOCK"
    r = client.put(
        f"/api/sales/orders/{other['orderId']}/process",
        json={"warehouseId": str(uuid4())},
        headers=shop.auth,
    )
    assert r.status_code == 400 and error(r)["details"]["field"] == "warehouseId"


def test_each_seller_processes_and_ships_only_its_own_items(market) -> None:
    client, boss, shop, buyer = market
    other_shop = seller(client, boss)
    mine = stocked_product(client, boss, shop, 5, 100)
    theirs = stocked_product(client, boss, other_shop, 5, 300)
    order = paid_order(client, boss, buyer, (mine, 1), (theirs, 2))
    oid = order["orderId"]
    their_item = next(i["orderItemId"] for i in order["items"] if i["productId"] == theirs)
    stranger = verified_user(client)
    assert (
        client.put(f"/api/sales/orders/{oid}/process", json={}, headers=stranger.auth).status_code
        == 404
    )
    assert (
        client.put(f"/api/sales/orders/{oid}/process", json={}, headers=buyer.auth).status_code
        == 403
    )
    assert (
        client.put(f"/api/sales/orders/{oid}/process", json={}, headers=shop.auth).status_code
        == 200
    )
    assert (
        client.put(f"/api/sales/orders/{oid}/process", json={}, headers=other_shop.auth).status_code
        == 200
    )
    r = ship(client, shop, oid, [(their_item, 1)])
    assert r.status_code == 403
    r = ship(client, shop, oid)
    assert (
        r.status_code == 201
        and [i["productId"] for i in r.json()["items"]] == [mine]
        and r.json()["orderStatus"] == "PROCESSING"
    )
    sid = r.json()["shipmentId"]
    assert move(client, other_shop, sid, "IN_TRANSIT").status_code == 404  # not its parcel
    assert move(client, stranger, sid, "IN_TRANSIT").status_code == 404
    r = move(client, shop, str(uuid4()), "IN_TRANSIT")
    assert r.status_code == 404 and error(r)["code"] == "SHIPMENT_NOT_FOUND"
    assert move(client, shop, "not-an-id", "IN_TRANSIT").status_code == 404
    assert move(client, shop, sid, "LOST").status_code == 400
    assert ship(client, other_shop, oid).json()["orderStatus"] == "SHIPPED"
    wait(client)
    seen = client.get(f"/api/sales/orders/{oid}/shipments", headers=other_shop.auth).json()[
        "shipments"
    ]
    assert [[i["productId"] for i in s["items"]] for s in seen] == [[theirs]]
    assert (
        len(
            client.get(f"/api/sales/orders/{oid}/shipments", headers=buyer.auth).json()["shipments"]
        )
        == 2
    )
    assert (
        client.get(f"/api/sales/orders/{oid}/shipments", headers=stranger.auth).status_code == 404
    )
    wait(client)
    r = client.post(
        f"/api/sales/orders/{oid}/shipments",
        json={"carrier": "x", "trackingNumber": "1"},
        headers=shop.auth,
    )
    assert r.status_code == 409  # nothing of its own left to ship
    assert ship(client, shop, oid, carrier="bad\x00name").status_code == 400


def test_a_shipment_can_report_an_exception_and_recover(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5, 100)
    order = paid_order(client, boss, buyer, (pid, 1))
    client.put(f"/api/sales/orders/{order['orderId']}/process", json={}, headers=shop.auth)
    parcel = ship(client, shop, order["orderId"], carrier="順豐速運 SF").json()
    assert (
        parcel["carrier"] == "順豐速運 SF" and parcel["trackingUrl"] is None
    )  # a carrier we have no page for
    sid = parcel["shipmentId"]
    assert move(client, shop, sid, "EXCEPTION", notes="address unreadable").status_code == 200
    assert move(client, shop, sid, "EXCEPTION").status_code == 409
    assert move(client, shop, sid, "PROCESSING").status_code == 409
    assert move(client, shop, sid, "OUT_FOR_DELIVERY").status_code == 200
    assert move(client, shop, sid, "DELIVERED").status_code == 200
    for status in ("EXCEPTION", "IN_TRANSIT", "DELIVERED"):
        assert move(client, shop, sid, status).status_code == 409


def test_cash_on_delivery_ships_unpaid_and_is_paid_on_delivery(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 5, 100)
    order = paid_order(client, boss, buyer, (pid, 1), method="COD")
    oid = order["orderId"]
    assert (
        client.put(f"/api/sales/orders/{oid}/process", json={}, headers=shop.auth).status_code
        == 200
    )
    sid = ship(client, shop, oid).json()["shipmentId"]
    assert order_of(client, buyer, oid)["paymentStatus"] == "PENDING"
    assert move(client, shop, sid, "DELIVERED").status_code == 200
    now = order_of(client, buyer, oid)
    assert now["paymentStatus"] == "COMPLETED" and now["status"] == "SHIPPED"
    assert [(p["method"], p["provider"], p["amount"]) for p in now["payments"]] == [
        ("COD", "COD", order["total"])
    ]
    assert "ORDER_PAID" in types(client, shop)
    assert (
        client.post(f"/api/sales/orders/{oid}/confirm-receipt", headers=buyer.auth).json()["status"]
        == "DELIVERED"
    )


# --- invoices ---------------------------------------------------------------------------------
def test_one_invoice_per_paid_order_numbered_on_the_track(market) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, 10, 100)
    add_to_cart(client, buyer, pid, 1)
    unpaid = checkout(client, buyer, paymentMethod="CREDIT_CARD").json()
    r = client.post(f"/api/sales/orders/{unpaid['orderId']}/invoices", json={}, headers=buyer.auth)
    assert r.status_code == 409 and error(r)["details"]["reason"] == "NOT_PAID"
    order = paid_order(client, boss, buyer, (pid, 2))
    oid = order["orderId"]
    body = {
        "invoiceDate": "2026-11-23",
        "dueDate": "2026-12-23",
        "recipientInfo": {"name": "好物有限公司", "email": "ap@example.com", "taxId": "12345675"},
    }
    assert (
        client.post(
            f"/api/sales/orders/{oid}/invoices", json=body, headers=verified_user(client).auth
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/api/sales/orders/{oid}/invoices",
            json={**body, "dueDate": "2026-11-01"},
            headers=buyer.auth,
        ).status_code
        == 400
    )
    assert (
        client.post(
            f"/api/sales/orders/{oid}/invoices",
            json={"recipientInfo": {"name": "x", "taxId": "123"}},
            headers=buyer.auth,
        ).status_code
        == 400
    )
    r = client.post(
        f"/api/sales/orders/{oid}/invoices", json=body, headers=shop.auth
    )  # the order's only seller
    assert r.status_code == 201, r.text
    inv = r.json()
    assert re.fullmatch(r"SL\d{8}", inv["invoiceNumber"]) and inv["status"] == "ISSUED"
    assert (inv["subtotal"], inv["tax"], inv["total"]) == (
        order["subtotal"],
        order["tax"],
        order["total"],
    )
    assert inv["recipientInfo"]["taxId"] == "12345675" and inv["dueDate"] == "2026-12-23"
    r = client.post(f"/api/sales/orders/{oid}/invoices", json=body, headers=boss.auth)
    assert r.status_code == 409 and error(r)["code"] == "INVOICE_ALREADY_EXISTS"
    wait(client)
    listed = client.get(f"/api/sales/orders/{oid}/invoices", headers=buyer.auth).json()["invoices"]
    assert [(i["invoiceNumber"], i["orderVersion"]) for i in listed] == [
        (inv["invoiceNumber"], inv["orderVersion"])
    ]
    assert listed[0]["total"] == order["total"]
    # numbers are sequential on the track
    second = paid_order(client, boss, buyer, (pid, 1))
    nxt = client.post(
        f"/api/sales/orders/{second['orderId']}/invoices", json={}, headers=boss.auth
    ).json()["invoiceNumber"]
    assert int(nxt[2:]) == int(inv["invoiceNumber"][2:]) + 1
