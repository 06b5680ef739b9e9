"""A client's journey written only against the HTTP contract: every write is followed at once
by a read of what it changed, on another connection (another API process in scaled mode).

``consistency="session"`` sends no consistency header at all (the default must be enough);
``"explicit"`` sends ``X-Min-Position`` with the highest position the client has seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx

from tests.support.accounts import PASSWORD
from tests.support.catalog import ADDRESS


@dataclass
class Session:
    """One browser-like client: a cookie jar and the positions it has seen, talking to a
    writer and a reader (the same server, or two processes behind a balancer)."""

    writer: httpx.Client
    reader: httpx.Client
    consistency: str
    token: str | None = None
    seen: list[int] = field(default_factory=lambda: [0])
    stale: list[str] = field(default_factory=list)

    def _headers(self, read: bool) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if read and self.consistency == "explicit":
            headers["X-Min-Position"] = str(max(self.seen))
        return headers

    def _send(self, client: httpx.Client, method: str, path: str, read: bool, **kw: Any) -> Any:
        # Both connections share this session's cookies, as one browser would.
        other = self.reader if client is self.writer else self.writer
        client.cookies.update(other.cookies)
        r = client.request(method, path, headers=self._headers(read), **kw)
        other.cookies.update(client.cookies)
        if "X-Event-Position" in r.headers:
            self.seen.append(int(r.headers["X-Event-Position"]))
        return r

    def write(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        r = self._send(self.writer, method, path, read=False, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        assert "X-Event-Position" in r.headers, f"{method} {path} answered no X-Event-Position"
        return r.json() if r.content else None

    def read(self, path: str, check: Callable[[Any], bool], what: str) -> Any:
        r = self._send(self.reader, "GET", path, read=True)
        assert r.status_code in (200, 404), f"GET {path}: {r.status_code} {r.text}"
        body = r.json() if r.status_code == 200 else None
        if body is None or not check(body):
            self.stale.append(what)
        return body


def log_in(s: Session, email: str, password: str = PASSWORD) -> Session:
    s.token = None
    s.token = s.write("POST", "/api/auth/login", json={"email": email, "password": password})[
        "accessToken"
    ]
    return s


def sign_up(s: Session, token_for: Callable[[str], str], name: str) -> str:
    address = f"{name}@example.com"
    user = s.write(
        "POST",
        "/api/auth/register",
        expect=201,
        json={"email": address, "username": name, "password": PASSWORD},
    )
    s.write("POST", "/api/auth/verify-email", json={"token": token_for(address)})
    log_in(s, address)
    return str(user["userId"])


def run_journey(
    make_session: Callable[[], Session], token_for: Callable[[str], str], admin_email: str
) -> list[str]:
    """Returns the reads that did not show the write just made (empty: read-your-writes held)."""
    tag = uuid4().hex[:6]
    boss = make_session()

    # A refused login records an event: its 401 says where, and the history shows it next.
    r = boss._send(
        boss.writer,
        "POST",
        "/api/auth/login",
        read=False,
        json={"email": admin_email, "password": "wrong password!"},
    )
    assert r.status_code == 401 and "X-Event-Position" in r.headers, r.headers
    log_in(boss, admin_email)
    boss.read(
        "/api/users/me/login-history",
        lambda b: [e["success"] for e in b["entries"][:2]] == [True, False],
        "login history after a refused and a good login",
    )

    category = boss.write(
        "POST", "/api/catalog/categories", expect=201, json={"name": f"保養{tag}"}
    )["categoryId"]
    boss.read(
        "/api/catalog/categories",
        lambda b: category in str(b),
        "category tree after creating a category",
    )
    warehouse = boss.write(
        "POST",
        "/api/inventory/warehouses",
        expect=201,
        json={"code": f"WH-{tag}", "name": "倉庫"},
    )["warehouseId"]
    boss.read(
        "/api/inventory/warehouses",
        lambda b: warehouse in str(b),
        "warehouse list after creating a warehouse",
    )

    shop = make_session()
    seller_id = sign_up(shop, token_for, f"seller{tag}")
    shop.write("POST", "/api/users/me/seller-application", expect=202, json={"shopName": "好店"})
    boss.write("POST", f"/api/admin/sellers/{seller_id}/approve")
    boss.read(
        f"/api/users/{seller_id}", lambda b: b["role"] == "seller", "user after seller approval"
    )
    log_in(shop, f"seller{tag}@example.com")
    product = shop.write(
        "POST",
        "/api/catalog/products",
        expect=201,
        json={
            "name": f"保濕乳液{tag}",
            "description": "說明",
            "categoryId": category,
            "price": {"value": 350, "currency": "TWD"},
        },
    )["productId"]
    shop.read(f"/api/catalog/products/{product}", lambda b: True, "product after creating it")
    for price in (360, 370, 380, 390, 400):
        shop.write(
            "PUT",
            f"/api/catalog/products/{product}",
            json={"price": {"value": price, "currency": "TWD"}},
        )
        shop.read(
            f"/api/catalog/products/{product}",
            lambda b, p=price: b["price"]["value"] == p,  # type: ignore[misc]
            f"product price after PUT {price}",
        )
    shop.write(
        "POST",
        "/api/inventory/receipts",
        expect=201,
        json={"productId": product, "warehouseId": warehouse, "quantity": 9},
    )
    shop.read(
        f"/api/inventory/stock?productId={product}",
        lambda b: b["totals"]["onHand"] == 9,
        "stock after a receipt",
    )

    buyer = make_session()
    sign_up(buyer, token_for, f"buyer{tag}")
    buyer.write("POST", "/api/cart/items", expect=201, json={"productId": product, "quantity": 1})
    buyer.read("/api/cart", lambda b: b["items"][0]["quantity"] == 1, "cart after adding")
    for quantity in (2, 3, 2):
        buyer.write("PUT", f"/api/cart/items/{product}", json={"quantity": quantity})
        buyer.read(
            "/api/cart",
            lambda b, q=quantity: b["items"][0]["quantity"] == q,  # type: ignore[misc]
            f"cart after setting quantity {quantity}",
        )
    order = buyer.write(
        "POST",
        "/api/sales/orders",
        expect=201,
        json={
            "shippingAddress": ADDRESS,
            "billingAddressSameAsShipping": True,
            "paymentMethod": "COD",
            "shippingMethod": "STANDARD",
        },
    )["orderId"]
    buyer.read(f"/api/sales/orders/{order}", lambda b: b["status"] == "CREATED", "order by id")
    buyer.read(
        "/api/sales/orders",
        lambda b: order in [o["orderId"] for o in b["orders"]],
        "order list after checkout",
    )
    buyer.read("/api/cart", lambda b: b["items"] == [], "cart emptied by checkout")
    return boss.stale + shop.stale + buyer.stale
