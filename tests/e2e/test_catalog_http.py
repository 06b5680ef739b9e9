"""Catalog over HTTP: categories, product rules and ownership, search, visibility, banned
keywords, price history, trends, comparisons and best sellers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import admin, container_of, login, register, verified_user, wait
from tests.support.catalog import category, product, seller


@pytest.fixture
def shop(make_client) -> Any:
    client = make_client()
    boss = admin(client)
    return client, boss, seller(client, boss)


def body(category_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "保濕乳液",
        "description": "清爽不黏膩",
        "categoryId": category_id,
        "price": {"value": 350, "currency": "TWD"},
        **overrides,
    }


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


# --- categories -------------------------------------------------------------------------------
def test_categories_nest_to_any_depth_and_come_back_as_a_tree(shop) -> None:
    client, boss, _ = shop
    parent = None
    chain = []
    for level in range(6):
        parent = category(client, boss, f"level {level}", parent)
        chain.append(parent)
    other_root = category(client, boss, "另一個")
    wait(client)
    tree = client.get("/api/catalog/categories").json()["categories"]
    assert {n["categoryId"] for n in tree} == {chain[0], other_root}
    node = next(n for n in tree if n["categoryId"] == chain[0])
    for expected, depth in zip(chain[1:], range(1, 6)):
        assert len(node["children"]) == 1
        node = node["children"][0]
        assert node["categoryId"] == expected and node["depth"] == depth
    assert node["children"] == []


def test_category_rules(shop) -> None:
    client, boss, a_seller = shop
    root = category(client, boss, "Beauty")
    r = client.post("/api/catalog/categories", json={"name": "beauty"}, headers=boss.auth)
    assert (
        r.status_code == 409 and error(r)["code"] == "CONFLICT"
    )  # sibling names are case-insensitive
    assert (
        client.post(
            "/api/catalog/categories", json={"name": "Beauty", "parentId": root}, headers=boss.auth
        ).status_code
        == 201
    )
    r = client.post(
        "/api/catalog/categories", json={"name": "x", "parentId": str(uuid4())}, headers=boss.auth
    )
    assert r.status_code == 400 and error(r)["details"]["field"] == "parentId"
    assert (
        client.post("/api/catalog/categories", json={"name": "  "}, headers=boss.auth).status_code
        == 400
    )
    assert (
        client.post(
            "/api/catalog/categories", json={"name": "x"}, headers=a_seller.auth
        ).status_code
        == 403
    )
    assert client.post("/api/catalog/categories", json={"name": "x"}).status_code == 401


# --- product validation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "長" * 101}, "name"),
        ({"description": "台灣製造 仿冒 精品"}, "description"),
        ({"description": "100% COUNTERFEIT bag"}, "description"),
        ({"name": "盜 版 光碟"}, "name"),
        ({"price": {"value": 0, "currency": "TWD"}}, "price"),
        ({"price": {"value": -5, "currency": "TWD"}}, "price"),
        ({"price": {"value": 1.999, "currency": "TWD"}}, "price"),
        ({"price": {"value": 10, "currency": "USD"}}, "price"),
        ({"price": {"value": 1e30, "currency": "TWD"}}, "price"),
        ({"images": ["javascript:alert(1)"]}, "images"),
        ({"images": ["not a url"]}, "images"),
        ({"images": ["ftp://example.com/a.png"]}, "images"),
        ({"images": ["/relative.png"]}, "images"),
        ({"categoryId": str(uuid4())}, "categoryId"),
        ({"categoryId": "not-a-uuid"}, "categoryId"),
        ({"supplierIds": [str(uuid4())]}, "supplierIds"),
    ],
)
def test_every_product_rule_gives_a_clear_400_naming_the_field(
    shop, change: dict[str, Any], field: str
) -> None:
    client, boss, a_seller = shop
    cat = category(client, boss)
    r = client.post("/api/catalog/products", json=body(cat, **change), headers=a_seller.auth)
    assert r.status_code == 400, r.text
    err = error(r)
    assert err["code"] == "VALIDATION_ERROR"
    assert err["details"].get("field") == field, err
    wait(client)
    assert (
        client.get("/api/catalog/products").json()["pagination"]["totalItems"] == 0
    )  # no partial write


def test_malformed_product_bodies_are_400_not_500(shop) -> None:
    client, boss, a_seller = shop
    cat = category(client, boss)
    for bad in [
        {**body(cat), "extra": 1},
        {k: v for k, v in body(cat).items() if k != "name"},
        {**body(cat), "price": 350},
        {**body(cat), "price": {"value": "abc"}},
        {**body(cat), "price": {"value": "NaN"}},
        {**body(cat), "images": "http://x.example/a.png"},
    ]:
        r = client.post("/api/catalog/products", json=bad, headers=a_seller.auth)
        assert r.status_code == 400, (bad, r.text)
        assert error(r)["code"] == "VALIDATION_ERROR"


def test_a_valid_product_is_created_with_decimal_price_and_images(shop) -> None:
    client, boss, a_seller = shop
    cat = category(client, boss)
    name = "長" * 100
    created = product(
        client,
        a_seller,
        cat,
        name,
        "1234.5",
        images=["https://cdn.example.com/a.jpg"],
        description="Made in Taiwan",
    )
    assert created["status"] == "active" and created["stock"] == 0
    assert created["price"] == {"value": 1234.5, "currency": "TWD"}
    assert created["sellerId"] == a_seller.user_id and created["name"] == name
    wait(client)
    got = client.get(f"/api/catalog/products/{created['productId']}").json()
    assert got["price"] == {"value": 1234.5, "currency": "TWD"}
    assert got["images"] == ["https://cdn.example.com/a.jpg"]
    assert got["sellerName"].startswith("shop-")


def test_only_approved_sellers_may_list_products(shop) -> None:
    client, boss, _ = shop
    cat = category(client, boss)
    buyer = verified_user(client)
    assert (
        client.post("/api/catalog/products", json=body(cat), headers=buyer.auth).status_code == 403
    )
    assert (
        client.post("/api/catalog/products", json=body(cat), headers=boss.auth).status_code == 403
    )
    assert client.post("/api/catalog/products", json=body(cat)).status_code == 401


def test_a_reported_seller_loses_listing_rights_until_an_admin_restores_them(shop) -> None:
    client, boss, a_seller = shop
    cat = category(client, boss)
    listed = product(client, a_seller, cat, "蜂蜜")
    for _ in range(6):  # more than 5 distinct buyers
        buyer = verified_user(client)
        r = client.post(
            f"/api/sellers/{a_seller.user_id}/reports",
            json={"reason": "fake goods"},
            headers=buyer.auth,
        )
        assert r.status_code in (201, 202), r.text
    r = client.post("/api/catalog/products", json=body(cat), headers=a_seller.auth)
    assert r.status_code == 403 and "suspended" in error(r)["message"]
    r = client.put(
        f"/api/catalog/products/{listed['productId']}",
        json={"name": "新名字"},
        headers=a_seller.auth,
    )
    assert r.status_code == 403
    wait(client)
    # ... and the seller's products leave the public catalogue meanwhile
    assert client.get("/api/catalog/products").json()["products"] == []
    assert client.get(f"/api/catalog/products/{listed['productId']}").status_code == 404
    assert (
        client.post(
            f"/api/admin/sellers/{a_seller.user_id}/restore-listing", headers=boss.auth
        ).status_code
        == 200
    )
    assert (
        client.post("/api/catalog/products", json=body(cat), headers=a_seller.auth).status_code
        == 201
    )
    wait(client)
    assert len(client.get("/api/catalog/products").json()["products"]) == 2


def test_a_seller_can_only_touch_its_own_products(shop) -> None:
    client, boss, owner = shop
    intruder = seller(client, boss)
    cat = category(client, boss)
    pid = product(client, owner, cat)["productId"]
    r = client.put(
        f"/api/catalog/products/{pid}",
        json={"price": {"value": 1, "currency": "TWD"}},
        headers=intruder.auth,
    )
    assert r.status_code == 403 and error(r)["code"] == "FORBIDDEN"
    for path in ("delist", "relist"):
        assert (
            client.post(f"/api/catalog/products/{pid}/{path}", headers=intruder.auth).status_code
            == 403
        )
    assert client.delete(f"/api/catalog/products/{pid}", headers=intruder.auth).status_code == 403
    # once hidden, another seller cannot even tell it exists
    assert client.post(f"/api/catalog/products/{pid}/delist", headers=owner.auth).status_code == 200
    assert (
        client.put(
            f"/api/catalog/products/{pid}", json={"name": "x"}, headers=intruder.auth
        ).status_code
        == 404
    )
    assert (
        client.post(f"/api/catalog/products/{pid}/relist", headers=intruder.auth).status_code == 404
    )
    assert (
        client.put(
            f"/api/catalog/products/{uuid4()!s}", json={"name": "x"}, headers=owner.auth
        ).status_code
        == 404
    )
    wait(client)
    got = client.get(f"/api/catalog/products/{pid}", headers=owner.auth).json()
    assert got["name"] == "商品" and got["price"]["value"] == 100


def test_edits_change_fields_and_reject_banned_words(shop) -> None:
    client, boss, owner = shop
    cat, other = category(client, boss), category(client, boss)
    pid = product(client, owner, cat)["productId"]
    r = client.put(
        f"/api/catalog/products/{pid}", json={"description": "高仿名牌"}, headers=owner.auth
    )
    assert r.status_code == 400 and error(r)["details"]["keyword"] == "高仿"
    r = client.put(
        f"/api/catalog/products/{pid}",
        json={"name": "新品", "categoryId": other, "images": ["http://img.example/x.png"]},
        headers=owner.auth,
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["name"] == "新品" and r.json()["categoryId"] == other and r.json()["version"] == 2
    )
    assert (
        client.put(f"/api/catalog/products/{pid}", json={}, headers=owner.auth).status_code == 400
    )
    assert (
        client.put(
            f"/api/catalog/products/{pid}", json={"status": "active"}, headers=owner.auth
        ).status_code
        == 400
    )


# --- visibility -------------------------------------------------------------------------------
def test_delisted_products_disappear_and_come_back_when_relisted(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    pid = product(client, owner, cat, "紅茶")["productId"]
    r = client.post(f"/api/catalog/products/{pid}/delist", headers=owner.auth)
    assert r.status_code == 200 and r.json()["status"] == "delisted"
    assert client.post(f"/api/catalog/products/{pid}/delist", headers=owner.auth).status_code == 409
    wait(client)
    assert client.get("/api/catalog/products", params={"q": "紅茶"}).json()["products"] == []
    assert client.get(f"/api/catalog/products/{pid}").status_code == 404
    assert (
        client.get(f"/api/catalog/products/{pid}", headers=owner.auth).json()["status"]
        == "delisted"
    )
    mine = client.get(
        "/api/catalog/products", params={"sellerId": "me", "status": "delisted"}, headers=owner.auth
    ).json()
    assert [p["productId"] for p in mine["products"]] == [pid]
    buyer = login(client, register(client))
    r = client.get(
        "/api/catalog/products",
        params={"sellerId": owner.user_id, "status": "all"},
        headers=buyer.auth,
    )
    assert r.status_code == 403
    r = client.post(f"/api/catalog/products/{pid}/relist", headers=owner.auth)
    assert r.status_code == 200 and r.json()["status"] == "active"
    wait(client)
    assert [
        p["productId"]
        for p in client.get("/api/catalog/products", params={"q": "紅茶"}).json()["products"]
    ] == [pid]
    assert client.delete(f"/api/catalog/products/{pid}", headers=owner.auth).status_code == 204
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").status_code == 404


def test_an_admin_suspension_hides_the_product_and_blocks_relisting(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    pid = product(client, owner, cat)["productId"]
    assert (
        client.post(
            f"/api/catalog/products/{pid}/suspend", json={"reason": "x"}, headers=owner.auth
        ).status_code
        == 403
    )
    r = client.post(
        f"/api/catalog/products/{pid}/suspend", json={"reason": "仿冒品檢舉"}, headers=boss.auth
    )
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert client.post(f"/api/catalog/products/{pid}/relist", headers=owner.auth).status_code == 409
    assert client.post(f"/api/catalog/products/{pid}/delist", headers=owner.auth).status_code == 409
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").status_code == 404
    assert (
        client.get(f"/api/catalog/products/{pid}", headers=boss.auth).json()["status"]
        == "suspended"
    )
    r = client.post(f"/api/catalog/products/{pid}/reinstate", headers=boss.auth)
    assert r.status_code == 200 and r.json()["status"] == "active"
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").status_code == 200


def test_products_of_a_disabled_seller_are_hidden(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    pid = product(client, owner, cat)["productId"]
    assert (
        client.put(
            f"/api/users/{owner.user_id}", json={"status": "disabled"}, headers=boss.auth
        ).status_code
        == 200
    )
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").status_code == 404
    assert (
        client.put(
            f"/api/users/{owner.user_id}", json={"status": "active"}, headers=boss.auth
        ).status_code
        == 200
    )
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").status_code == 200


# --- search -----------------------------------------------------------------------------------
def _names(client: TestClient, **params: Any) -> list[str]:
    r = client.get("/api/catalog/products", params=params)
    assert r.status_code == 200, r.text
    return [p["name"] for p in r.json()["products"]]


def test_chinese_keyword_search_finds_the_right_products(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    product(client, owner, cat, "保濕乳液 200ml", description="清爽保濕")
    product(client, owner, cat, "洗髮精", description="去屑 500ml")
    product(client, owner, cat, "玫瑰精油", description="可搭配保濕乳液使用")
    product(client, owner, cat, "乳液瓶", description="空瓶")
    wait(client)
    found = _names(client, q="保濕乳液")
    assert found[0] == "保濕乳液 200ml"  # name matches outrank description matches
    assert set(found) == {"保濕乳液 200ml", "玫瑰精油"}
    assert "洗髮精" not in found
    assert _names(client, q="洗髮") == ["洗髮精"]
    assert set(_names(client, q="乳液")) == {"保濕乳液 200ml", "玫瑰精油", "乳液瓶"}
    assert _names(client, q="200ML") == ["保濕乳液 200ml"]
    assert _names(client, q="沐浴乳") == []
    assert _names(client, q="!!!") == []


def test_english_search_is_case_insensitive_and_needs_every_word(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    product(client, owner, cat, "Organic Green Tea", description="50 tea bags")
    product(client, owner, cat, "Green Apple Shampoo", description="for daily use")
    product(client, owner, cat, "Black Tea", description="Assam, organic")
    wait(client)
    assert set(_names(client, q="green")) == {"Organic Green Tea", "Green Apple Shampoo"}
    assert _names(client, q="GREEN tea") == ["Organic Green Tea"]
    assert _names(client, q="organic tea") == ["Organic Green Tea", "Black Tea"]  # name hit first
    assert _names(client, q="ｓｈａｍｐｏｏ") == ["Green Apple Shampoo"]  # full-width folds


def test_search_filters_sorts_and_pages(shop) -> None:
    client, boss, owner = shop
    other_seller = seller(client, boss)
    root = category(client, boss, "食品")
    tea = category(client, boss, "茶", root)
    green = category(client, boss, "綠茶", tea)
    elsewhere = category(client, boss, "3C")
    product(client, owner, green, "綠茶 A", 300)
    product(client, owner, tea, "紅茶 B", 100)
    product(client, other_seller, root, "餅乾 C", 200)
    product(client, owner, elsewhere, "耳機 D", 1500)
    wait(client)
    assert _names(client, categoryId=root, sort="price") == ["紅茶 B", "餅乾 C", "綠茶 A"]
    assert _names(client, categoryId=tea, sort="-price") == ["綠茶 A", "紅茶 B"]
    assert _names(client, categoryId=green) == ["綠茶 A"]
    assert _names(client, sellerId=other_seller.user_id) == ["餅乾 C"]
    assert _names(client, minPrice=150, maxPrice=300, sort="price") == ["餅乾 C", "綠茶 A"]
    assert _names(client, sort="newest") == ["耳機 D", "餅乾 C", "紅茶 B", "綠茶 A"]
    assert _names(client, categoryId=str(uuid4())) == []
    page = client.get(
        "/api/catalog/products", params={"sort": "price", "page": 2, "pageSize": 3}
    ).json()
    assert [p["name"] for p in page["products"]] == ["耳機 D"]
    assert page["pagination"] == {"page": 2, "pageSize": 3, "totalItems": 4, "totalPages": 2}
    for bad in (
        {"sort": "cheapest"},
        {"minPrice": 10, "maxPrice": 5},
        {"pageSize": 101},
        {"minPrice": "x"},
    ):
        r = client.get("/api/catalog/products", params=bad)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", bad


# --- banned keywords --------------------------------------------------------------------------
def test_admins_replace_the_banned_keyword_list(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    defaults = client.get("/api/catalog/banned-keywords").json()["keywords"]
    assert "仿冒" in defaults and "盜版" in defaults
    assert (
        client.put(
            "/api/catalog/banned-keywords", json={"keywords": ["水貨"]}, headers=owner.auth
        ).status_code
        == 403
    )
    r = client.put(
        "/api/catalog/banned-keywords",
        json={"keywords": ["水貨", " 水貨 ", "Grey Import"]},
        headers=boss.auth,
    )
    assert r.status_code == 200 and r.json()["keywords"] == ["水貨", "Grey Import"]
    wait(client)
    assert client.get("/api/catalog/banned-keywords").json()["keywords"] == ["水貨", "Grey Import"]
    r = client.post(
        "/api/catalog/products", json=body(cat, description="GREY import 相機"), headers=owner.auth
    )
    assert r.status_code == 400 and error(r)["details"]["keyword"] == "Grey Import"
    assert (
        client.post(
            "/api/catalog/products", json=body(cat, description="仿冒"), headers=owner.auth
        ).status_code
        == 201
    )
    assert (
        client.put(
            "/api/catalog/banned-keywords", json={"keywords": [""]}, headers=boss.auth
        ).status_code
        == 400
    )


# --- prices -----------------------------------------------------------------------------------
def _set_clock(client: TestClient, at: datetime) -> None:
    container_of(client).bus.clock = lambda: at


def test_price_history_records_every_change_with_who_and_when(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    start = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    _set_clock(client, start)
    pid = product(client, owner, cat, price=100)["productId"]
    for day, price in [(1, 120), (2, 90), (40, 95.5)]:
        _set_clock(client, start + timedelta(days=day))
        r = client.put(
            f"/api/catalog/products/{pid}",
            json={"price": {"value": price, "currency": "TWD"}},
            headers=owner.auth,
        )
        assert r.status_code == 200
    _set_clock(client, start + timedelta(days=41))
    client.put(
        f"/api/catalog/products/{pid}",
        json={"price": {"value": 95.5, "currency": "TWD"}},
        headers=owner.auth,
    )  # no change
    wait(client)
    points = client.get(f"/api/catalog/products/{pid}/price-history").json()["points"]
    assert [p["price"]["value"] for p in points] == [100, 120, 90, 95.5]
    assert [p["previousPrice"] and p["previousPrice"]["value"] for p in points] == [
        None,
        100,
        120,
        90,
    ]
    assert {p["changedBy"] for p in points} == {owner.user_id}
    assert points[1]["at"] == "2026-01-06T02:00:00+00:00"
    january = client.get(
        f"/api/catalog/products/{pid}/price-history",
        params={"fromDate": "2026-01-06", "toDate": "2026-01-31"},
    ).json()["points"]
    assert [p["price"]["value"] for p in january] == [120, 90]
    r = client.get(
        f"/api/catalog/products/{pid}/price-history",
        params={"fromDate": "2026-02-01", "toDate": "2026-01-01"},
    )
    assert r.status_code == 400
    assert (
        client.get(
            f"/api/catalog/products/{pid}/price-history", params={"fromDate": "yesterday"}
        ).status_code
        == 400
    )
    assert client.get(f"/api/catalog/products/{uuid4()}/price-history").status_code == 404


def test_category_price_trend_per_day_week_and_month(shop) -> None:
    client, boss, owner = shop
    root = category(client, boss, "家電")
    child = category(client, boss, "吹風機", root)
    t0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Taipei
    _set_clock(client, t0)
    a = product(client, owner, root, "電扇", 1000)["productId"]
    product(client, owner, child, "吹風機", 3000)
    _set_clock(client, t0 + timedelta(days=1))
    client.put(
        f"/api/catalog/products/{a}",
        json={"price": {"value": 2000, "currency": "TWD"}},
        headers=owner.auth,
    )
    _set_clock(client, t0 + timedelta(days=2))
    client.post(f"/api/catalog/products/{a}/delist", headers=owner.auth)
    wait(client)
    days = client.get(
        f"/api/catalog/categories/{root}/price-trend",
        params={"fromDate": "2026-03-01", "toDate": "2026-03-05", "groupBy": "DAY"},
    ).json()["series"]
    assert [d["period"] for d in days] == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
    ]
    assert [d["products"] for d in days] == [0, 2, 2, 1, 1]
    assert (
        days[1]["average"]["value"] == 2000
        and days[1]["min"]["value"] == 1000
        and days[1]["max"]["value"] == 3000
    )
    assert days[2]["average"]["value"] == 2500 and days[2]["min"]["value"] == 2000
    assert days[0]["average"] is None
    only_child = client.get(
        f"/api/catalog/categories/{child}/price-trend",
        params={"fromDate": "2026-03-02", "toDate": "2026-03-02"},
    ).json()["series"]
    assert only_child[0]["products"] == 1 and only_child[0]["average"]["value"] == 3000
    weeks = client.get(
        f"/api/catalog/categories/{root}/price-trend",
        params={"fromDate": "2026-02-23", "toDate": "2026-03-15", "groupBy": "WEEK"},
    ).json()["series"]
    assert [w["period"] for w in weeks] == ["2026-W09", "2026-W10", "2026-W11"]
    assert [w["products"] for w in weeks] == [0, 1, 1]
    months = client.get(
        f"/api/catalog/categories/{root}/price-trend",
        params={"fromDate": "2026-02-01", "toDate": "2026-03-31", "groupBy": "MONTH"},
    ).json()["series"]
    assert [(m["period"], m["products"]) for m in months] == [("2026-02", 0), ("2026-03", 1)]
    assert (
        client.get(
            f"/api/catalog/categories/{root}/price-trend", params={"groupBy": "YEAR"}
        ).status_code
        == 400
    )
    assert client.get(f"/api/catalog/categories/{uuid4()}/price-trend").status_code == 404
    r = client.get(
        f"/api/catalog/categories/{root}/price-trend",
        params={"fromDate": "1990-01-01", "groupBy": "DAY"},
    )
    assert r.status_code == 400  # too many periods

    # Only what the public may see: a disabled seller's products drop out of the trend.
    _set_clock(client, datetime.now(UTC))
    boss = login(client, boss)  # its token was issued on the test's clock
    other = seller(client, boss)
    product(client, other, child, "離子夾", 9000)
    wait(client)

    def today() -> Any:
        return client.get(f"/api/catalog/categories/{root}/price-trend").json()["series"][-1]

    assert today()["products"] == 2 and today()["max"]["value"] == 9000
    r = client.put(f"/api/users/{other.user_id}", json={"status": "disabled"}, headers=boss.auth)
    assert r.status_code == 200, r.text
    wait(client)
    assert today()["products"] == 1 and today()["max"]["value"] == 3000


def test_prices_of_several_products_are_compared_over_a_period(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    t0 = datetime(2026, 5, 1, 4, 0, tzinfo=UTC)
    _set_clock(client, t0)
    a = product(client, owner, cat, "A", 100)["productId"]
    b = product(client, owner, cat, "B", 80)["productId"]
    _set_clock(client, t0 + timedelta(days=10))
    client.put(
        f"/api/catalog/products/{a}",
        json={"price": {"value": 150, "currency": "TWD"}},
        headers=owner.auth,
    )
    _set_clock(client, t0 + timedelta(days=20))
    client.put(
        f"/api/catalog/products/{a}",
        json={"price": {"value": 125, "currency": "TWD"}},
        headers=owner.auth,
    )
    wait(client)
    r = client.get(
        "/api/catalog/price-trends/compare",
        params={"productIds": f"{a},{b}", "fromDate": "2026-05-05", "toDate": "2026-05-31"},
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["products"]
    assert first["productId"] == a and second["productId"] == b
    assert [p["price"]["value"] for p in first["points"]] == [100, 150, 125]
    assert first["startPrice"]["value"] == 100 and first["endPrice"]["value"] == 125
    assert first["max"]["value"] == 150 and first["changePercent"] == 25.0
    assert second["changePercent"] == 0.0 and len(second["points"]) == 1
    assert (
        client.get(
            "/api/catalog/price-trends/compare", params={"productIds": f"{a},{uuid4()}"}
        ).status_code
        == 404
    )
    too_many = ",".join(str(uuid4()) for _ in range(11))
    assert (
        client.get("/api/catalog/price-trends/compare", params={"productIds": too_many}).status_code
        == 400
    )


# --- best sellers -----------------------------------------------------------------------------
def test_bestsellers_rank_units_sold_in_the_window_per_category(shop) -> None:
    """The ranking query over the sales read model (fed by paid-order events in the orders
    issue): window, category subtree, only listed products, ranking order."""
    from projections.sales import SalesStats
    from queries.catalog import today_in_taipei

    client, boss, owner = shop
    root = category(client, boss, "運動")
    child = category(client, boss, "球類", root)
    other = category(client, boss, "書籍")
    ball = product(client, owner, child, "籃球")["productId"]
    shoe = product(client, owner, root, "跑鞋")["productId"]
    book = product(client, owner, other, "小說")["productId"]
    hidden = product(client, owner, root, "舊款")["productId"]
    client.post(f"/api/catalog/products/{hidden}/delist", headers=owner.auth)
    wait(client)
    container = container_of(client)
    projection = container.live_projection(SalesStats.name)
    assert isinstance(projection, SalesStats)
    today = today_in_taipei(datetime.now(UTC))
    with container.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
        for pid, days_ago, units in [
            (ball, 0, 5),
            (ball, 3, 4),
            (shoe, 1, 7),
            (book, 0, 20),
            (shoe, 10, 100),
            (hidden, 0, 50),
        ]:
            projection.add_units(
                session, pid, (today - timedelta(days=days_ago)).isoformat(), units
            )
    ranked = client.get("/api/catalog/bestsellers", params={"categoryId": root, "days": 7}).json()[
        "products"
    ]
    assert [(p["name"], p["unitsSold"], p["rank"]) for p in ranked] == [
        ("籃球", 9, 1),
        ("跑鞋", 7, 2),
    ]
    overall = client.get("/api/catalog/bestsellers", params={"days": 30, "limit": 2}).json()[
        "products"
    ]
    assert [p["name"] for p in overall] == ["跑鞋", "小說"]
    assert client.get("/api/catalog/bestsellers", params={"days": 0}).status_code == 400


# --- idempotency and read-your-writes ---------------------------------------------------------
def test_product_creation_honours_idempotency_keys_and_min_position(shop) -> None:
    client, boss, owner = shop
    cat = category(client, boss)
    headers = {**owner.auth, "Idempotency-Key": "create-tea-1"}
    first = client.post("/api/catalog/products", json=body(cat, name="烏龍茶"), headers=headers)
    again = client.post("/api/catalog/products", json=body(cat, name="烏龍茶"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/catalog/products", json=body(cat, name="綠茶"), headers=headers)
    assert other.status_code == 422 and error(other)["code"] == "IDEMPOTENCY_CONFLICT"
    position = first.headers["X-Event-Position"]
    r = client.get(
        "/api/catalog/products", params={"q": "烏龍茶"}, headers={"X-Min-Position": position}
    )
    assert [p["productId"] for p in r.json()["products"]] == [first.json()["productId"]]
