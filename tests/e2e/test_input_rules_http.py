"""Text people type and money they send, over HTTP: every field family goes through the one
text rule (a 400 naming the field; nothing recorded) and every money input through the one
Money rule (docs/API.md "Text in requests", "Money in requests")."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import admin, verified_user, wait
from tests.support.catalog import category, product, seller

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202efdp.exe" shows as "invoiceexe.pdf"
ZERO_WIDTH = "\u200b\u200d\u2060\ufeff"
ADDRESS = {
    "name": "王小明",
    "phone": "0912-345-678",
    "street": "信義路五段7號",
    "city": "台北市",
    "district": "信義區",
    "postalCode": "110",
    "country": "TW",
}


def refused(r: Any, field: str, problem: str) -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_ERROR"
    assert (err["details"]["field"], err["details"]["errors"][0]["problem"]) == (field, problem)
    assert field in err["message"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One app for the whole module: every request here is refused or harmless."""
    from api.app import create_app
    from shopledger.bootstrap import bootstrap
    from tests.conftest import make_settings

    tmp = tmp_path_factory.mktemp("input")
    container = bootstrap(make_settings(f"sqlite:///{tmp / 'shop.db'}", tmp))
    with TestClient(create_app(container)) as client:
        boss = admin(client)
        shop = seller(client, boss)
        buyer = verified_user(client)
        yield client, boss, shop, buyer, category(client, boss)


# --- names and display names ----------------------------------------------------------------
def test_display_names_refuse_bidi_controls_and_invisible_only_text(world: Any) -> None:
    client, _, _, buyer, _ = world
    name = f"u{uuid4().hex[:8]}"
    body = {"email": f"{name}@example.com", "username": name, "password": "Taipei101-sunrise"}
    r = client.post("/api/auth/register", json={**body, "displayName": f"admin{RLO}nimda"})
    refused(r, "displayName", "BIDI_CONTROL")
    assert r.json()["error"]["details"]["character"] == "U+202E"
    for bad, problem in ((ZERO_WIDTH, "BLANK"), ("王\x00明", "CONTROL_CHARACTER")):
        r = client.patch("/api/users/me", json={"displayName": bad}, headers=buyer.auth)
        refused(r, "displayName", problem)
    # Ordinary text of any script, emoji with joiners included, is stored in NFC.
    r = client.patch(
        "/api/users/me",
        json={"displayName": "王小明 👨\u200d👩\u200d👧 Cafe\u0301"},
        headers=buyer.auth,
    )
    assert r.status_code == 200 and r.json()["displayName"] == "王小明 👨\u200d👩\u200d👧 Café"


def test_addresses_refuse_control_characters_line_breaks_and_bidi_by_field(world: Any) -> None:
    client, _, _, buyer, _ = world
    cases = [
        ({"name": "王\x07小明"}, "name", "CONTROL_CHARACTER"),
        ({"street": "信義路\n五段"}, "street", "CONTROL_CHARACTER"),
        ({"city": f"台北{RLO}市"}, "city", "BIDI_CONTROL"),
        ({"district": ZERO_WIDTH}, "district", "BLANK"),
    ]
    for change, field, problem in cases:
        r = client.post("/api/users/me/addresses", json={**ADDRESS, **change}, headers=buyer.auth)
        refused(r, field, problem)
    r = client.get("/api/users/me/addresses", headers=buyer.auth)
    assert r.json()["addresses"] == []  # nothing was saved
    r = client.post(
        "/api/sales/orders",
        json={
            "shippingAddress": {**ADDRESS, "street": f"a{RLO}b"},
            "paymentMethod": "COD",
            "shippingMethod": "STANDARD",
        },
        headers=buyer.auth,
    )
    refused(r, "shippingAddress.street", "BIDI_CONTROL")


# --- catalog ----------------------------------------------------------------------------------
def test_product_names_are_one_line_and_descriptions_may_have_line_breaks(world: Any) -> None:
    client, boss, shop, _, cat = world
    base = {
        "name": "阿里山烏龍茶",
        "description": "清香回甘",
        "categoryId": cat,
        "price": {"value": 680, "currency": "TWD"},
    }
    cases = [
        ({"name": f"茶{RLO}葉"}, "name", "BIDI_CONTROL"),
        ({"name": "茶\n葉"}, "name", "CONTROL_CHARACTER"),
        ({"name": ZERO_WIDTH}, "name", "BLANK"),
        ({"description": "好喝\x1b[31m"}, "description", "CONTROL_CHARACTER"),
        ({"description": "\u2066hidden\u2069"}, "description", "BIDI_CONTROL"),
    ]
    for change, field, problem in cases:
        r = client.post("/api/catalog/products", json={**base, **change}, headers=shop.auth)
        refused(r, field, problem)
    r = client.post("/api/catalog/categories", json={"name": "\u3164"}, headers=boss.auth)
    refused(r, "name", "BLANK")
    made = product(client, shop, cat, "高山茶 🍵", description="第一行\n第二行\t完")
    assert made["description"] == "第一行\n第二行\t完" and made["name"] == "高山茶 🍵"


# --- reviews, messages, reasons ----------------------------------------------------------------
def test_review_message_and_reason_texts_refuse_bidi_control_and_blank_text(world: Any) -> None:
    client, _, shop, buyer, _ = world
    order = str(uuid4())  # the body is checked before the order is looked up
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (
            f"/api/sales/orders/{order}/reviews",
            {"productId": str(uuid4()), "productScore": 9, "sellerScore": 9, "text": f"讚{RLO}"},
            "text",
            "BIDI_CONTROL",
        ),
        ("/api/messages", {"toUserId": shop.user_id, "text": ZERO_WIDTH}, "text", "BLANK"),
        (
            "/api/messages",
            {"toUserId": shop.user_id, "text": "hi\x00"},
            "text",
            "CONTROL_CHARACTER",
        ),
        (
            f"/api/sales/orders/{order}/returns",
            {"items": [{"orderItemId": f"{order}-1", "quantity": 1}], "reason": f"a{RLO}b"},
            "reason",
            "BIDI_CONTROL",
        ),
        (
            f"/api/sales/orders/{order}/disputes",
            {"reason": "未收到", "text": "\u200b"},
            "text",
            "BLANK",
        ),
        (f"/api/sellers/{shop.user_id}/reports", {"reason": f"x{RLO}"}, "reason", "BIDI_CONTROL"),
    ]
    for path, body, field, problem in cases:
        refused(client.post(path, json=body, headers=buyer.auth), field, problem)
    r = client.put(f"/api/sales/orders/{order}/cancel", json={"reason": "\x7f"}, headers=buyer.auth)
    refused(r, "reason", "CONTROL_CHARACTER")
    wait(client)
    r = client.get("/api/messages/conversations", headers=buyer.auth)
    assert r.json()["conversations"] == []  # nothing was sent
    r = client.post(
        "/api/messages",
        json={"toUserId": shop.user_id, "text": "有貨嗎？\n謝謝 🙏"},
        headers=buyer.auth,
    )
    assert r.status_code == 201, r.text


# --- money ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "field", "problem"),
    [
        ({"value": True, "currency": "TWD"}, "price.value", "WRONG_TYPE"),
        ({"value": "1e3", "currency": "TWD"}, "price.value", "WRONG_TYPE"),
        ({"value": "Infinity", "currency": "TWD"}, "price.value", "WRONG_TYPE"),
        ({"value": None, "currency": "TWD"}, "price.value", "WRONG_TYPE"),
        ({"value": 120}, "price.currency", "REQUIRED"),
        ({"value": 0.30000000000000004, "currency": "TWD"}, "price", "TOO_PRECISE"),
        ({"value": "120.505", "currency": "TWD"}, "price", "TOO_PRECISE"),
        ({"value": "-1", "currency": "TWD"}, "price", "TOO_SMALL"),
        ({"value": 5, "currency": "USD"}, "price", "NOT_ALLOWED_VALUE"),
    ],
)
def test_a_price_breaking_the_money_rule_is_a_400_naming_it(
    world: Any, price: dict[str, Any], field: str, problem: str
) -> None:
    client, _, shop, _, cat = world
    body = {"name": "茶", "description": "", "categoryId": cat, "price": price}
    refused(client.post("/api/catalog/products", json=body, headers=shop.auth), field, problem)


def test_a_price_is_a_json_number_or_a_decimal_string(world: Any) -> None:
    client, _, shop, _, cat = world
    for value in (120, 120.5, "120.50"):
        made = product(client, shop, cat, "茶", price=value)
        assert made["price"]["value"] == (120 if value == 120 else 120.5)
    pid = made["productId"]
    r = client.put(
        f"/api/catalog/products/{pid}",
        json={"price": {"value": "99.9", "currency": "TWD"}},
        headers=shop.auth,
    )
    assert r.status_code == 200 and r.json()["price"] == {"value": 99.9, "currency": "TWD"}
    r = client.put(
        f"/api/catalog/products/{pid}", json={"price": {"value": "9e1"}}, headers=shop.auth
    )
    assert r.status_code == 400
    problems = {(e["field"], e["problem"]) for e in r.json()["error"]["details"]["errors"]}
    assert problems == {("price.value", "WRONG_TYPE"), ("price.currency", "REQUIRED")}


def test_coupon_amounts_follow_the_same_number_rule(world: Any) -> None:
    client, boss, _, _, _ = world

    def coupon(**change: Any) -> Any:
        body = {"code": f"C{uuid4().hex[:8]}", "type": "FIXED", "value": 50, **change}
        return client.post("/api/coupons", json=body, headers=boss.auth)

    refused(coupon(value="5e1"), "value", "WRONG_TYPE")
    refused(coupon(minSpend=False), "minSpend", "WRONG_TYPE")
    refused(coupon(value=0.1 + 0.2), "value", "TOO_PRECISE")
    r = coupon(value="50.50", minSpend=1000)
    assert r.status_code == 201 and r.json()["value"]["value"] == 50.5, r.text
