"""Helpers for return and dispute tests over HTTP: paid and delivered orders, return steps,
disputes and refunds."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from gateways import SandboxGateway
from tests.support.accounts import User, wait
from tests.support.catalog import add_to_cart, checkout

CARD = {
    "number": "4242424242424242",
    "expiryMonth": 12,
    "expiryYear": 2031,
    "cvv": "123",
    "holderName": "WANG XIAO MING",
}


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


def deliver(client: TestClient, boss: User, oid: str, buyer: User | None = None) -> None:
    """Process and ship every item; then an admin marks it DELIVERED, or (``buyer`` given) the
    carrier delivers the parcel (a COD order is paid then) and the buyer confirms receipt."""
    auth = boss.auth
    ok(client.put(f"/api/sales/orders/{oid}/status", json={"status": "PROCESSING"}, headers=auth))
    parcel = ok(
        client.post(
            f"/api/sales/orders/{oid}/shipments",
            json={"carrier": "BLACK_CAT", "trackingNumber": f"TC{oid[:8].upper()}"},
            headers=auth,
        ),
        201,
    )
    if buyer is None:
        path, body = f"/api/sales/orders/{oid}/status", {"status": "DELIVERED"}
        ok(client.put(path, json=body, headers=auth))
        return
    path = f"/api/sales/shipments/{parcel['shipmentId']}/status"
    ok(client.put(path, json={"status": "DELIVERED"}, headers=auth))
    ok(client.post(f"/api/sales/orders/{oid}/confirm-receipt", headers=buyer.auth))


def delivered_order(
    client: TestClient,
    boss: User,
    buyer: User,
    *lines: tuple[str, int],
    method: str = "CREDIT_CARD",
) -> dict[str, Any]:
    """A card order delivered by an admin, or a COD order the carrier delivered (and the
    buyer confirmed)."""
    order = paid_order(client, buyer, *lines, method=method)
    deliver(client, boss, order["orderId"], buyer if method == "COD" else None)
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


def dispute(client: TestClient, who: User, oid: str, **extra: Any) -> Any:
    body = {"reason": "商品與描述不符", "text": "顏色不同", **extra}
    return client.post(f"/api/sales/orders/{oid}/disputes", json=body, headers=who.auth)


def resolve(client: TestClient, boss: User, did: str, resolution: str, **extra: Any) -> Any:
    body = {"resolution": resolution, "note": "依據雙方陳述", **extra}
    return client.post(f"/api/sales/disputes/{did}/resolve", json=body, headers=boss.auth)


def assert_rebuilds_equal(client: TestClient, *names: str) -> None:
    """Rebuilding each named projection from zero gives exactly the rows incremental
    processing built."""
    from sqlalchemy import select

    from projections.rebuild import rebuild
    from tests.support.accounts import container_of

    container = container_of(client)
    container.catch_up()

    def dump() -> dict[str, Any]:
        out = {}
        with container.engine.connect() as conn:
            for name in names:
                for key, table in container.live_projection(name).tables.items():
                    out[f"{name}.{key}"] = sorted(map(tuple, conn.execute(select(table))))
        return out

    before = dump()
    for name in names:
        rebuild(container.app, container.projections[name], container.locks)
    assert dump() == before


class CountingGateway(SandboxGateway):
    """The sandbox, adding up what each refund really paid back (slowly, to widen races);
    ``refuse`` makes every refund fail."""

    def __init__(self, refuse: bool = False) -> None:
        self.refunded: list[Decimal] = []
        self.refuse = refuse
        self.lock = threading.Lock()

    def refund(self, payment_transaction_id: str, refund_id: str, amount: Decimal) -> str:
        time.sleep(0.05)
        if self.refuse:
            raise ConnectionError("the acquirer is down")
        with self.lock:
            self.refunded.append(amount)
        return super().refund(payment_transaction_id, refund_id, amount)
