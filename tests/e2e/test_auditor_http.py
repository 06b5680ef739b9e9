"""The auditor role over HTTP: reads every order and its history, the operation log; writes
nothing (every write route of the app, enumerated, answers 403 before looking at the body)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.openapi import RouteFacts, api_routes
from api.readonly import SESSION_WRITES
from commands.credentials import token_hash
from shopledger.bootstrap import bootstrap
from tests.conftest import make_settings
from tests.support.accounts import (
    TOKEN_RE,
    User,
    admin,
    container_of,
    login,
    mails_to,
    register,
    verified_user,
    wait,
)
from tests.support.catalog import (
    ADDRESS,
    add_to_cart,
    category,
    checkout,
    product,
    receive,
    seller,
    warehouse,
)
from tests.support.ledger import HANDLERS, LedgerBalances
from tests.support.ledger_api import router as ledger_router
from tests.support.operation_log import check_operation_log

CARD_NUMBER = "5555555555554444"
CVV = "987"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One shop for the module (client, admin, approved seller, verified buyer): these tests
    only add to it, and building one costs seconds. The test-only ledger routes are mounted
    too: a route that authenticates no one is still closed to auditors."""
    tmp = tmp_path_factory.mktemp("auditor")
    container = bootstrap(
        make_settings(f"sqlite:///{tmp / 'shop.db'}", tmp),
        projections=[LedgerBalances],
        handlers=HANDLERS,
    )
    with TestClient(create_app(container, extra_routers=[ledger_router])) as client:
        boss = admin(client)
        yield client, boss, seller(client, boss), verified_user(client)


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def make_auditor(client: TestClient, boss: User) -> User:
    """A registered user an admin turns into an auditor; it logs in again for a token that
    says so."""
    user = register(client)
    ok(client.put(f"/api/users/{user.user_id}", json={"role": "auditor"}, headers=boss.auth))
    return login(client, user)


def pay_by_card(client: TestClient, buyer: User, order: dict[str, Any]) -> dict[str, Any]:
    body = {
        "paymentMethod": "CREDIT_CARD",
        "paymentData": {
            "cardDetails": {
                "number": CARD_NUMBER,
                "expiryMonth": 12,
                "expiryYear": 2031,
                "cvv": CVV,
                "holderName": "WANG XIAO MING",
            }
        },
        "amount": order["total"],
    }
    path = f"/api/sales/orders/{order['orderId']}/payments"
    return dict(ok(client.post(path, json=body, headers=buyer.auth)))


def delivered_order(client: TestClient, boss: User, shop: User, buyer: User) -> dict[str, Any]:
    """An order paid by card, processed, shipped, delivered and confirmed, with an invoice, a
    partial refund, a return request and a dispute."""
    wh = warehouse(client, boss)
    pid = product(client, shop, category(client, boss), price=500)["productId"]
    receive(client, shop, pid, wh, 10)
    add_to_cart(client, buyer, pid, 2)
    order = dict(ok(checkout(client, buyer), 201))
    oid, item = order["orderId"], order["items"][0]["orderItemId"]
    payment = pay_by_card(client, buyer, order)
    process = {"warehouseId": wh, "estimatedShippingDate": "2030-01-02"}
    ok(client.put(f"/api/sales/orders/{oid}/process", json=process, headers=shop.auth))
    parcel = {"carrier": "BLACK_CAT", "trackingNumber": "TC123456"}
    shipment = ok(
        client.post(f"/api/sales/orders/{oid}/shipments", json=parcel, headers=shop.auth), 201
    )
    delivered = {"status": "DELIVERED", "location": {"city": "台北市", "country": "TW"}}
    path = f"/api/sales/shipments/{shipment['shipmentId']}/status"
    ok(client.put(path, json=delivered, headers=shop.auth))
    ok(client.post(f"/api/sales/orders/{oid}/confirm-receipt", headers=buyer.auth))
    invoice = {"recipientInfo": {"name": "王小明", "email": "w@example.com"}}
    ok(client.post(f"/api/sales/orders/{oid}/invoices", json=invoice, headers=boss.auth), 201)
    back = {"reason": "瑕疵", "refundItems": [{"orderItemId": item, "quantity": 1}]}
    ok(client.post(f"/api/sales/orders/{oid}/refunds", json=back, headers=boss.auth))
    ret = {"items": [{"orderItemId": item, "quantity": 1}], "reason": "尺寸不合"}
    ok(client.post(f"/api/sales/orders/{oid}/returns", json=ret, headers=buyer.auth), 201)
    dispute = {"reason": "商品與描述不符", "text": "顏色不對"}
    ok(client.post(f"/api/sales/orders/{oid}/disputes", json=dispute, headers=buyer.auth), 201)
    return {"orderId": oid, "paymentId": payment["paymentId"]}


def test_an_auditor_reads_another_buyers_order_and_all_its_history(market: Any) -> None:
    client, boss, shop, buyer = market
    ids = delivered_order(client, boss, shop, buyer)
    oid = ids["orderId"]
    auditor = make_auditor(client, boss)
    wait(client)
    read = auditor.auth
    as_buyer = ok(client.get(f"/api/sales/orders/{oid}", headers=buyer.auth))
    assert ok(client.get(f"/api/sales/orders/{oid}", headers=read)) == as_buyer
    listed = ok(client.get("/api/sales/orders", params={"userId": buyer.user_id}, headers=read))
    assert [o["orderId"] for o in listed["orders"]] == [oid]
    timeline = ok(client.get(f"/api/sales/orders/{oid}/timeline", headers=read))
    assert timeline == ok(client.get(f"/api/sales/orders/{oid}/timeline", headers=buyer.auth))
    assert len(timeline["events"]) >= 8
    first = ok(client.get(f"/api/sales/orders/{oid}", params={"version": 1}, headers=read))
    assert first["status"] == "CREATED"
    placed_at = timeline["events"][0]["at"]
    then = ok(client.get(f"/api/sales/orders/{oid}", params={"asOf": placed_at}, headers=read))
    assert then["status"] == "CREATED" and then["orderId"] == oid
    payments = ok(client.get(f"/api/sales/orders/{oid}/payments", headers=read))["payments"]
    assert [p["paymentId"] for p in payments] == [ids["paymentId"]]
    one = ok(client.get(f"/api/sales/orders/{oid}/payments/{ids['paymentId']}", headers=read))
    assert one["paymentId"] == ids["paymentId"]
    refunds = ok(client.get(f"/api/sales/orders/{oid}/refunds", headers=read))["refunds"]
    assert len(refunds) == 1
    shipments = ok(client.get(f"/api/sales/orders/{oid}/shipments", headers=read))["shipments"]
    assert [s["status"] for s in shipments] == ["DELIVERED"]
    invoices = ok(client.get(f"/api/sales/orders/{oid}/invoices", headers=read))["invoices"]
    assert [i["status"] for i in invoices] == ["ISSUED"]
    returns = ok(client.get(f"/api/sales/orders/{oid}/returns", headers=read))["returns"]
    assert len(returns) == 1
    rid = returns[0]["returnId"]
    assert ok(client.get(f"/api/sales/returns/{rid}", headers=read))["returnId"] == rid
    assert [
        r["returnId"] for r in ok(client.get("/api/sales/returns", headers=read))["returns"]
    ] == [rid]
    disputes = ok(client.get(f"/api/sales/orders/{oid}/disputes", headers=read))["disputes"]
    did = disputes[0]["disputeId"]
    assert ok(client.get(f"/api/sales/disputes/{did}", headers=read))["disputeId"] == did
    listed_disputes = ok(client.get("/api/sales/disputes", headers=read))["disputes"]
    assert [d["disputeId"] for d in listed_disputes] == [did]
    # ...and the operation log of that order: every one of its events, in order
    log = ok(client.get("/api/audit/events", params={"aggregateId": oid}, headers=read))
    assert [e["version"] for e in log["events"]] == list(range(1, len(log["events"]) + 1))
    assert log["events"][0]["type"] == "Order.Placed"
    assert log["events"][0]["actor"] == buyer.user_id
    # user administration (personal data) stays with admins
    r = client.get(f"/api/users/{buyer.user_id}", headers=read)
    assert r.status_code == 403 and error(r)["code"] == "FORBIDDEN"


def dummy(name: str) -> str:
    return "SAVE50" if name in ("code", "tag") else str(uuid4())


def write_routes(client: TestClient) -> list[tuple[str, str, RouteFacts]]:
    """(method, path with dummy ids, facts) for every state-changing route of the app."""
    found = []
    for route in api_routes(client.app):  # type: ignore[arg-type]
        for method in sorted(route.methods or ()):
            if method in ("GET", "HEAD", "OPTIONS"):
                continue
            path = re.sub(r"{(\w+)}", lambda m: dummy(m.group(1)), route.path_format)
            found.append((method, path, route.path_format, RouteFacts(route)))
    return [(m, p, f) for m, p, fmt, f in found if (m, fmt) not in SESSION_WRITES]


def refused_everywhere(client: TestClient, routes: list[Any], **request: Any) -> None:
    container = container_of(client)
    before = container.head_position()
    answers = {}
    for method, path, _ in routes:
        r = client.request(method, path, json={}, **request)
        answers[f"{method} {path}"] = (r.status_code, r.json()["error"]["code"])
    refused = {k: v for k, v in answers.items() if v != (403, "FORBIDDEN")}
    assert refused == {}
    # not one event written by a request (a timed rule of the shared shop may fire meanwhile)
    recorder, mapper = container.app.recorder, container.app.meta_mapper
    actors = {
        mapper.decode_state(n).get("__meta__", {}).get("actor", "")
        for n in recorder.select_notifications(before + 1, 10_000)
    }
    assert {a for a in actors if not a.startswith("system:")} == set()


def test_an_auditor_gets_403_on_every_write_route_before_its_body_is_read(market: Any) -> None:
    client, boss, _, _ = market
    auditor = make_auditor(client, boss)
    routes = write_routes(client)
    assert len(routes) > 60  # the whole app, not a sample
    assert ("POST", "/test/ledgers") in [(m, p) for m, p, _ in routes]  # authenticates no one
    refused_everywhere(client, routes, headers=auditor.auth)
    # the same in cookie mode, even with a valid CSRF token
    r = client.post(
        "/api/auth/login",
        json={"email": auditor.email, "password": auditor.password, "useCookies": True},
    )
    assert r.status_code == 200, r.text
    csrf = r.json()["csrfToken"]
    refused_everywhere(client, routes[:10], headers={"X-CSRF-Token": csrf})
    client.cookies.clear()
    # the exemptions: its own session only
    pair = ok(client.post("/api/auth/refresh", json={"refreshToken": auditor.refresh}))
    auditor.access = pair["accessToken"]
    assert ok(client.get("/api/users/me", headers=auditor.auth))["role"] == "auditor"
    changed = client.post(
        "/api/auth/change-password",
        json={"currentPassword": auditor.password, "newPassword": "Another-Passw0rd-2026"},
        headers=auditor.auth,
    )
    assert changed.status_code == 204, changed.text
    assert client.post("/api/auth/logout", headers=auditor.auth).status_code == 204
    assert client.get("/api/users/me", headers=auditor.auth).status_code == 401


def test_an_account_made_auditor_stops_writing_at_once_with_its_old_token(market: Any) -> None:
    client, boss, _, _ = market
    user = verified_user(client)  # its token says buyer
    ok(client.put(f"/api/users/{user.user_id}", json={"role": "auditor"}, headers=boss.auth))
    authenticated = [r for r in write_routes(client) if r[2].auth_required]
    refused_everywhere(client, authenticated, headers=user.auth)
    # an admin made auditor keeps reading (every order), and stops administering
    other = admin(client)
    ok(client.put(f"/api/users/{other.user_id}", json={"role": "auditor"}, headers=boss.auth))
    assert client.get("/api/sales/orders", headers=other.auth).status_code == 200
    r = client.put(f"/api/users/{user.user_id}", json={"role": "buyer"}, headers=other.auth)
    assert r.status_code == 403 and error(r)["details"]["reason"] == "READ_ONLY_ROLE"


def test_only_auditors_and_admins_read_the_operation_log(market: Any) -> None:
    client, boss, shop, buyer = market
    for who in (buyer, shop):
        r = client.get("/api/audit/events", headers=who.auth)
        assert r.status_code == 403 and error(r)["code"] == "FORBIDDEN"
    assert client.get("/api/audit/events").status_code == 401
    auditor = make_auditor(client, boss)
    wait(client)
    for who in (auditor, boss):
        assert ok(client.get("/api/audit/events", headers=who.auth))["events"]


def test_the_operation_log_pages_and_filters_every_event(market: Any) -> None:
    client, boss, _, _ = market
    check_operation_log(client, boss)  # on MariaDB too: tests/integration/test_operation_log.py


def test_the_operation_log_reads_the_callers_own_write_at_once(market: Any) -> None:
    client, boss, _, _ = market
    made = ok(
        client.post("/api/catalog/categories", json={"name": "新分類"}, headers=boss.auth), 201
    )
    # no wait(): the query waits for the caller's own last write
    log = ok(client.get("/api/audit/events", params={"actor": boss.user_id}, headers=boss.auth))
    assert made["categoryId"] in [e["aggregateId"] for e in log["events"]]
    assert all(e["correlationId"] and e["actor"] == boss.user_id for e in log["events"])


def test_the_operation_log_shows_no_password_hash_token_or_card_data(market: Any) -> None:
    client, boss, shop, _ = market
    password = "a secret Pa55phrase"
    buyer = register(client, password=password)
    body = mails_to(client, buyer.email)[-1].get_body(preferencelist=("plain",))
    verification = TOKEN_RE.search(body.get_content()).group(1)  # type: ignore[union-attr]
    ok(client.post("/api/auth/verify-email", json={"token": verification}))
    login(client, buyer)
    wh = warehouse(client, boss)
    pid = product(client, shop, category(client, boss), price=300)["productId"]
    receive(client, shop, pid, wh, 5)
    add_to_cart(client, buyer, pid, 1)
    order = ok(checkout(client, buyer, shippingAddress=ADDRESS), 201)
    pay_by_card(client, buyer, order)
    account = container_of(client).load(UUID(buyer.user_id))
    secrets = {
        "password": password,
        "password hash": account.password_hash,
        "argon2 hash prefix": "$argon2",
        "verification token": verification,
        "verification token digest": token_hash(verification),
        "access token": buyer.access,
        "refresh token": buyer.refresh,
        "refresh token digest": token_hash(buyer.refresh),
        "card number": CARD_NUMBER,
        "card number spaced": "5555 5555",
    }
    auditor = make_auditor(client, boss)
    wait(client)
    pages, after = [], 0
    while True:
        page = ok(client.get("/api/audit/events", params={"after": after}, headers=auditor.auth))
        pages.append(json.dumps(page, ensure_ascii=False))
        if page["next"] is None:
            break
        after = page["next"]
    everything = "\n".join(pages)
    types = {e["type"] for p in pages for e in json.loads(p)["events"]}
    assert {"Account.Registered", "Account.LoginSucceeded", "Order.Placed"} <= types, types
    leaked = [name for name, secret in secrets.items() if secret in everything]
    assert leaked == []
    assert f'"{CVV}"' not in everything and "cvv" not in everything.lower()
    # not even the last 4 digits (as a value: ids and times may hold "4444" by chance)
    assert '"4444"' not in everything and "last4" not in everything.lower()
