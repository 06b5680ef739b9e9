"""Helpers for catalog and inventory tests over HTTP."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient

from tests.support.accounts import User, admin, login, verified_user


def seller(client: TestClient, boss: User | None = None, shop: str | None = None) -> User:
    """A verified user who applied, was approved by an admin, and logged in again as seller."""
    boss = boss or admin(client)
    user = verified_user(client)
    r = client.post(
        "/api/users/me/seller-application",
        json={"shopName": shop or f"shop-{user.username}"},
        headers=user.auth,
    )
    assert r.status_code == 202, r.text
    r = client.post(f"/api/admin/sellers/{user.user_id}/approve", headers=boss.auth)
    assert r.status_code == 200, r.text
    return login(client, user)


def category(
    client: TestClient, boss: User, name: str | None = None, parent: str | None = None
) -> str:
    body: dict[str, Any] = {"name": name or f"cat-{uuid4().hex[:6]}"}
    if parent is not None:
        body["parentId"] = parent
    r = client.post("/api/catalog/categories", json=body, headers=boss.auth)
    assert r.status_code == 201, r.text
    return str(r.json()["categoryId"])


def product(
    client: TestClient,
    owner: User,
    category_id: str,
    name: str = "商品",
    price: float | str = 100,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "name": name,
        "description": extra.pop("description", "說明"),
        "categoryId": category_id,
        "price": {"value": price, "currency": "TWD"},
        **extra,
    }
    r = client.post("/api/catalog/products", json=body, headers=owner.auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


def warehouse(client: TestClient, boss: User, code: str | None = None) -> str:
    r = client.post(
        "/api/inventory/warehouses",
        json={"code": code or f"WH-{uuid4().hex[:6].upper()}", "name": "倉庫"},
        headers=boss.auth,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["warehouseId"])


def receive(
    client: TestClient, user: User, product_id: str, warehouse_id: str, quantity: int
) -> dict[str, Any]:
    r = client.post(
        "/api/inventory/receipts",
        json={"productId": product_id, "warehouseId": warehouse_id, "quantity": quantity},
        headers=user.auth,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


ADDRESS = {
    "name": "王小明",
    "phone": "0912345678",
    "street": "信義路五段7號",
    "city": "台北市",
    "district": "信義區",
    "postalCode": "110",
    "country": "TW",
}


def stocked_product(
    client: TestClient,
    boss: User,
    owner: User,
    quantity: int = 10,
    price: float | str = 100,
    category_id: str | None = None,
    name: str = "商品",
) -> str:
    """A listed product of ``owner`` with ``quantity`` units in a fresh warehouse."""
    pid = str(
        product(client, owner, category_id or category(client, boss), name, price)["productId"]
    )
    if quantity:
        receive(client, owner, pid, warehouse(client, boss), quantity)
    return pid


def add_to_cart(client: TestClient, buyer: User, product_id: str, quantity: int = 1) -> None:
    r = client.post(
        "/api/cart/items", json={"productId": product_id, "quantity": quantity}, headers=buyer.auth
    )
    assert r.status_code == 201, r.text


def checkout(client: TestClient, buyer: User, **overrides: Any) -> Any:
    body = {
        "shippingAddress": ADDRESS,
        "billingAddressSameAsShipping": True,
        "paymentMethod": "CREDIT_CARD",
        "shippingMethod": "STANDARD",
        **overrides,
    }
    return client.post("/api/sales/orders", json=body, headers=buyer.auth)
