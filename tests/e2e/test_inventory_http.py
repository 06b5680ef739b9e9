"""Inventory over HTTP: warehouses and suppliers, receipts, transfers, adjustments, stock
levels and movements, ownership."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from tests.support.accounts import admin as make_admin
from tests.support.accounts import login, register, wait
from tests.support.catalog import category, product, receive, seller, warehouse


@pytest.fixture
def stocked(make_client) -> Any:
    client = make_client()
    boss = make_admin(client)
    owner = seller(client, boss)
    pid = product(client, owner, category(client, boss), "保濕乳液")["productId"]
    north, south = warehouse(client, boss, "TPE-1"), warehouse(client, boss, "KHH-1")
    return client, boss, owner, pid, north, south


def levels(client: Any, user: Any, pid: str) -> dict[str, Any]:
    wait(client)
    r = client.get("/api/inventory/stock", params={"productId": pid}, headers=user.auth)
    assert r.status_code == 200, r.text
    return {w["code"]: (w["onHand"], w["reserved"], w["available"]) for w in r.json()["warehouses"]}


def test_warehouses_and_suppliers_are_managed_by_admins(make_client) -> None:
    client = make_client()
    boss = make_admin(client)
    owner = seller(client, boss)
    buyer = login(client, register(client))
    r = client.post(
        "/api/inventory/warehouses",
        json={"code": "tpe-1", "name": "台北倉", "address": "台北市"},
        headers=boss.auth,
    )
    assert r.status_code == 201 and r.json()["code"] == "TPE-1"
    assert (
        client.post(
            "/api/inventory/warehouses", json={"code": "TPE-1", "name": "dup"}, headers=boss.auth
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/inventory/warehouses", json={"code": "x", "name": "短"}, headers=boss.auth
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/inventory/warehouses", json={"code": "AB1", "name": "n"}, headers=owner.auth
        ).status_code
        == 403
    )
    r = client.post(
        "/api/inventory/suppliers",
        json={
            "name": "大同供應",
            "contactEmail": "sales@supplier.example",
            "phone": "02-1234-5678",
        },
        headers=boss.auth,
    )
    assert r.status_code == 201
    supplier_id = r.json()["supplierId"]
    assert (
        client.post(
            "/api/inventory/suppliers", json={"name": "大同供應"}, headers=boss.auth
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/inventory/suppliers",
            json={"name": "x", "contactEmail": "nope"},
            headers=boss.auth,
        ).status_code
        == 400
    )
    assert (
        client.post("/api/inventory/suppliers", json={"name": "y"}, headers=owner.auth).status_code
        == 403
    )
    wait(client)
    assert [
        w["code"]
        for w in client.get("/api/inventory/warehouses", headers=owner.auth).json()["warehouses"]
    ] == ["TPE-1"]
    assert client.get("/api/inventory/warehouses", headers=buyer.auth).status_code == 403
    # products link to suppliers, many to many
    cat = category(client, boss)
    other = client.post(
        "/api/inventory/suppliers", json={"name": "第二供應商"}, headers=boss.auth
    ).json()["supplierId"]
    p1 = product(client, owner, cat, "A", supplierIds=[supplier_id, other])["productId"]
    p2 = product(client, owner, cat, "B", supplierIds=[supplier_id])["productId"]
    wait(client)
    assert sorted(
        client.get(f"/api/inventory/suppliers/{supplier_id}", headers=owner.auth).json()[
            "productIds"
        ]
    ) == sorted([p1, p2])
    linked = client.get(
        "/api/inventory/suppliers", params={"productId": p1}, headers=owner.auth
    ).json()["suppliers"]
    assert {s["supplierId"] for s in linked} == {supplier_id, other}
    client.put(f"/api/catalog/products/{p1}", json={"supplierIds": [other]}, headers=owner.auth)
    wait(client)
    assert client.get(f"/api/inventory/suppliers/{supplier_id}", headers=owner.auth).json()[
        "productIds"
    ] == [p2]


def test_receipts_transfers_and_adjustments_move_stock(stocked) -> None:
    client, boss, owner, pid, north, south = stocked
    supplier_id = client.post(
        "/api/inventory/suppliers", json={"name": "S"}, headers=boss.auth
    ).json()["supplierId"]
    r = client.post(
        "/api/inventory/receipts",
        json={"productId": pid, "warehouseId": north, "quantity": 10, "supplierId": supplier_id},
        headers=owner.auth,
    )
    assert r.status_code == 201 and r.json()["stock"]["totals"] == {
        "onHand": 10,
        "reserved": 0,
        "available": 10,
    }
    r = client.post(
        "/api/inventory/transfers",
        json={"productId": pid, "fromWarehouseId": north, "toWarehouseId": south, "quantity": 4},
        headers=owner.auth,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/inventory/adjustments",
        json={
            "productId": pid,
            "warehouseId": south,
            "quantityChange": -1,
            "reason": "DAMAGED",
            "note": "破損",
        },
        headers=owner.auth,
    )
    assert r.status_code == 201, r.text
    assert levels(client, owner, pid) == {"TPE-1": (6, 0, 6), "KHH-1": (3, 0, 3)}
    assert client.get(f"/api/catalog/products/{pid}").json()["stock"] == 9
    moves = client.get(
        "/api/inventory/movements", params={"productId": pid}, headers=owner.auth
    ).json()["movements"]
    assert [(m["kind"], m["onHandChange"]) for m in moves] == [
        ("ADJUST_DAMAGED", -1),
        ("TRANSFER_IN", 4),
        ("TRANSFER_OUT", -4),
        ("RECEIPT", 10),
    ]
    assert {m["actor"] for m in moves} == {owner.user_id}
    # admins may move any seller's stock
    assert receive(client, boss, pid, south, 2)["stock"]["totals"]["onHand"] == 11


def test_stock_never_goes_negative(stocked) -> None:
    client, _, owner, pid, north, south = stocked
    receive(client, owner, pid, north, 5)
    r = client.post(
        "/api/inventory/transfers",
        json={"productId": pid, "fromWarehouseId": north, "toWarehouseId": south, "quantity": 6},
        headers=owner.auth,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "INSUFFICIENT_STOCK"
    assert r.json()["error"]["details"]["available"] == 5
    r = client.post(
        "/api/inventory/transfers",
        json={"productId": pid, "fromWarehouseId": south, "toWarehouseId": north, "quantity": 1},
        headers=owner.auth,
    )
    assert r.status_code == 422
    r = client.post(
        "/api/inventory/adjustments",
        json={"productId": pid, "warehouseId": north, "quantityChange": -6, "reason": "LOST"},
        headers=owner.auth,
    )
    assert r.status_code == 422
    assert levels(client, owner, pid) == {"TPE-1": (5, 0, 5)}


@pytest.mark.parametrize("quantity", [0, -3, 1.5, "3", True, None, 1_000_001])
def test_quantities_must_be_positive_whole_numbers(stocked, quantity: Any) -> None:
    client, _, owner, pid, north, south = stocked
    for path, payload in [
        ("receipts", {"productId": pid, "warehouseId": north, "quantity": quantity}),
        (
            "transfers",
            {
                "productId": pid,
                "fromWarehouseId": north,
                "toWarehouseId": south,
                "quantity": quantity,
            },
        ),
    ]:
        r = client.post(f"/api/inventory/{path}", json=payload, headers=owner.auth)
        assert r.status_code == 400, (path, quantity, r.text)
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_bad_references_and_reasons_are_400(stocked) -> None:
    client, _, owner, pid, north, _south = stocked
    cases = [
        ("receipts", {"productId": pid, "warehouseId": str(uuid4()), "quantity": 1}, "warehouseId"),
        (
            "receipts",
            {"productId": pid, "warehouseId": north, "quantity": 1, "supplierId": str(uuid4())},
            "supplierId",
        ),
        (
            "transfers",
            {"productId": pid, "fromWarehouseId": north, "toWarehouseId": north, "quantity": 1},
            "toWarehouseId",
        ),
        (
            "adjustments",
            {"productId": pid, "warehouseId": north, "quantityChange": 1, "reason": "MAGIC"},
            "reason",
        ),
        (
            "adjustments",
            {"productId": pid, "warehouseId": north, "quantityChange": 0, "reason": "COUNT"},
            "quantityChange",
        ),
    ]
    for path, payload, field in cases:
        r = client.post(f"/api/inventory/{path}", json=payload, headers=owner.auth)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["details"]["field"] == field
    r = client.post(
        "/api/inventory/receipts",
        json={"productId": str(uuid4()), "warehouseId": north, "quantity": 1},
        headers=owner.auth,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "PRODUCT_NOT_FOUND"


def test_another_sellers_stock_is_not_yours_to_see_or_move(stocked) -> None:
    client, boss, owner, pid, north, _ = stocked
    intruder = seller(client, boss)
    buyer = login(client, register(client))
    receive(client, owner, pid, north, 3)
    wait(client)
    assert (
        client.get(
            "/api/inventory/stock", params={"productId": pid}, headers=intruder.auth
        ).status_code
        == 404
    )
    assert (
        client.get(
            "/api/inventory/movements", params={"productId": pid}, headers=intruder.auth
        ).status_code
        == 404
    )
    assert (
        client.get(
            "/api/inventory/stock", params={"productId": pid}, headers=buyer.auth
        ).status_code
        == 403
    )
    r = client.post(
        "/api/inventory/receipts",
        json={"productId": pid, "warehouseId": north, "quantity": 1},
        headers=intruder.auth,
    )
    assert r.status_code == 403
    assert (
        client.post(
            "/api/inventory/receipts",
            json={"productId": pid, "warehouseId": north, "quantity": 1},
            headers=buyer.auth,
        ).status_code
        == 403
    )
    assert (
        client.get("/api/inventory/stock", params={"productId": pid}, headers=boss.auth).status_code
        == 200
    )
    assert levels(client, owner, pid) == {"TPE-1": (3, 0, 3)}
