"""Sale prices over HTTP: a seller's sale is what search, product detail, the cart and
checkout charge during its window, and the regular price comes back when it ends (the bus
clock is moved, as the timed-rule tests do); validation, ownership, overlaps, cancellation,
price history and how a coupon meets a sale."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import ClientFactory, container_of
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import add_to_cart, category, checkout, seller, stocked_product


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def value(money: dict[str, Any] | None) -> float | None:
    return None if money is None else money["value"]


def at(minutes: float, t0: datetime) -> str:
    return (t0 + timedelta(minutes=minutes)).isoformat()


@contextmanager
def frozen(client: TestClient) -> Iterator[Callable[[float], None]]:
    """The app's clock, stopped at a moment of our choosing (minutes after the start)."""
    container = container_of(client)
    real = container.bus.clock
    t0 = real()
    container.bus.clock = lambda: t0

    def move(minutes: float) -> None:
        container.bus.clock = lambda: t0 + timedelta(minutes=minutes)

    try:
        yield move
    finally:
        container.bus.clock = real


def put_on_sale(client: TestClient, owner: User, pid: str, price: float, **window: Any) -> Any:
    body = {"salePrice": {"value": price, "currency": "TWD"}, **window}
    return client.post(f"/api/catalog/products/{pid}/sale-prices", json=body, headers=owner.auth)


def search(client: TestClient, user: User, **params: Any) -> list[str]:
    r = client.get("/api/catalog/products", params=params, headers=user.auth)
    assert r.status_code == 200, r.text
    return [p["productId"] for p in r.json()["products"]]


@pytest.fixture
def market(make_client: ClientFactory, database_url: str) -> Any:
    """(client, admin, an approved seller, a verified buyer), on SQLite and on MariaDB."""
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


def test_a_sale_is_charged_during_its_window_and_the_regular_price_comes_back_after(
    market: Any,
) -> None:
    client, boss, shop, buyer = market
    cat = category(client, boss)
    tea = stocked_product(client, boss, shop, 10, price=1000, category_id=cat, name="烏龍茶")
    cups = stocked_product(client, boss, shop, 10, price=700, category_id=cat, name="茶杯")
    with frozen(client) as move:
        t0 = container_of(client).bus.clock()
        r = put_on_sale(client, shop, tea, 600, startsAt=at(10, t0), endsAt=at(20, t0))
        assert r.status_code == 201, r.text
        sale = r.json()
        assert sale["status"] == "SCHEDULED" and value(sale["salePrice"]) == 600
        assert value(sale["regularPrice"]) == 1000 and "X-Event-Position" in r.headers
        wait(client)  # the buyer reads next: let the seller's write reach the catalog

        detail = client.get(f"/api/catalog/products/{tea}", headers=buyer.auth).json()
        assert value(detail["price"]) == 1000 and detail["salePrice"] is None

        move(15)  # inside the window: no event marks its start
        detail = client.get(f"/api/catalog/products/{tea}", headers=buyer.auth).json()
        assert (value(detail["price"]), value(detail["regularPrice"])) == (600, 1000)
        assert value(detail["salePrice"]) == 600
        assert datetime.fromisoformat(detail["saleEndsAt"]) == t0 + timedelta(minutes=20)
        assert search(client, buyer, categoryId=cat, sort="price") == [tea, cups]
        assert search(client, buyer, categoryId=cat, sort="-price") == [cups, tea]
        assert search(client, buyer, sort="price", sellerId=shop.user_id, pageSize=1, page=2) == [
            cups
        ]
        assert search(client, buyer, sort="-price", categoryId=cat, pageSize=1, page=2) == [tea]
        assert search(client, buyer, sort="price", categoryId=cat, maxPrice=1000) == [tea, cups]
        assert search(client, buyer, sort="price", categoryId=cat, minPrice=900) == []
        bounded = {"categoryId": cat, "sort": "price", "maxPrice": 650, "minPrice": 1}
        r = client.get("/api/catalog/products", params=bounded)
        assert r.json()["pagination"]["totalItems"] == 1
        assert search(client, buyer, categoryId=cat, maxPrice=650) == [tea]
        assert search(client, buyer, categoryId=cat, minPrice=650) == [cups]
        listed = client.get("/api/catalog/products", params={"q": "烏龍茶"}).json()["products"]
        assert [value(p["price"]) for p in listed if p["productId"] == tea] == [600]

        add_to_cart(client, buyer, tea, 2)
        line = client.get("/api/cart", headers=buyer.auth).json()["items"][0]
        assert (value(line["unitPrice"]), value(line["regularPrice"])) == (600, 1000)
        assert value(line["subtotal"]) == 1200 and value(line["salePrice"]) == 600
        r = checkout(client, buyer, paymentMethod="COD")
        assert r.status_code == 201, r.text
        order = r.json()
        assert value(order["subtotal"]) == 1200
        assert [value(i["unitPrice"]) for i in order["items"]] == [600]

        move(20)  # the window is over: back to the regular price everywhere
        detail = client.get(f"/api/catalog/products/{tea}", headers=buyer.auth).json()
        assert value(detail["price"]) == 1000 and detail["salePrice"] is None
        assert detail["saleEndsAt"] is None
        assert search(client, buyer, categoryId=cat, sort="price") == [cups, tea]
        assert search(client, buyer, categoryId=cat, maxPrice=650) == []
        add_to_cart(client, buyer, tea, 1)
        line = client.get("/api/cart", headers=buyer.auth).json()["items"][0]
        assert value(line["unitPrice"]) == 1000 and line["salePrice"] is None
        r = checkout(client, buyer, paymentMethod="COD")
        assert r.status_code == 201 and value(r.json()["subtotal"]) == 1000

        history = client.get(f"/api/catalog/products/{tea}/price-history").json()["points"]
        assert [(p["change"], value(p["price"]), value(p["salePrice"])) for p in history] == [
            ("PRICE", 1000, None),
            ("SALE_START", 600, 600),
            ("SALE_END", 1000, None),
        ]
        assert all(value(p["regularPrice"]) == 1000 for p in history)
        assert value(history[2]["previousPrice"]) == 600
        mine = client.get(f"/api/catalog/products/{tea}/sale-prices", headers=shop.auth).json()
        assert [s["status"] for s in mine["salePrices"]] == ["ENDED"]
        assert mine["pagination"]["totalItems"] == 1


@pytest.fixture
def sqlite_market(make_client: ClientFactory) -> Any:
    """The same shop on SQLite alone: the breadth of the rules runs here."""
    client = make_client()
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


def test_bad_sales_are_400s_naming_the_field_and_write_nothing(sqlite_market: Any) -> None:
    client, boss, shop, _ = sqlite_market
    pid = stocked_product(client, boss, shop, 1, price=1000)
    now = container_of(client).bus.clock()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"salePrice": {"value": 0, "currency": "TWD"}, "endsAt": at(60, now)}, "salePrice"),
        ({"salePrice": {"value": -1, "currency": "TWD"}, "endsAt": at(60, now)}, "salePrice"),
        ({"salePrice": {"value": 1000, "currency": "TWD"}, "endsAt": at(60, now)}, "salePrice"),
        ({"salePrice": {"value": 1500, "currency": "TWD"}, "endsAt": at(60, now)}, "salePrice"),
        ({"salePrice": {"value": 9.999, "currency": "TWD"}, "endsAt": at(60, now)}, "salePrice"),
        ({"salePrice": {"value": 500, "currency": "USD"}, "endsAt": at(60, now)}, "salePrice"),
        (
            {
                "salePrice": {"value": 500, "currency": "TWD"},
                "startsAt": at(60, now),
                "endsAt": at(30, now),
            },
            "endsAt",
        ),
        ({"salePrice": {"value": 500, "currency": "TWD"}, "endsAt": at(-1, now)}, "endsAt"),
        (
            {"salePrice": {"value": 500, "currency": "TWD"}, "endsAt": "2027-01-01T00:00:00"},
            "endsAt",
        ),  # no offset
        ({"salePrice": {"value": 500, "currency": "TWD"}}, "endsAt"),
        (
            {"salePrice": {"value": 500, "currency": "TWD"}, "endsAt": at(60, now), "percent": 10},
            "percent",
        ),
    ]
    for body, field in cases:
        r = client.post(f"/api/catalog/products/{pid}/sale-prices", json=body, headers=shop.auth)
        assert r.status_code == 400, (body, r.text)
        assert error(r)["code"] == "VALIDATION_ERROR"
        assert error(r)["details"]["field"] == field, (body, r.text)
    mine = client.get(f"/api/catalog/products/{pid}/sale-prices", headers=shop.auth).json()
    assert mine["salePrices"] == []


def test_only_the_products_seller_sets_lists_and_cancels_its_sales(sqlite_market: Any) -> None:
    client, boss, shop, buyer = sqlite_market
    pid = stocked_product(client, boss, shop, 1, price=1000)
    rival = seller(client, boss)
    now = container_of(client).bus.clock()
    window = {"endsAt": at(60, now)}
    r = put_on_sale(client, rival, pid, 500, **window)
    assert r.status_code == 404 and error(r)["code"] == "PRODUCT_NOT_FOUND"
    assert put_on_sale(client, buyer, pid, 500, **window).status_code == 403
    assert put_on_sale(client, boss, pid, 500, **window).status_code == 403
    sale_id = put_on_sale(client, shop, pid, 500, **window).json()["saleId"]
    url = f"/api/catalog/products/{pid}/sale-prices"
    r = client.get(url, headers=rival.auth)
    assert r.status_code == 404 and error(r)["code"] == "PRODUCT_NOT_FOUND"
    assert client.get(url, headers=buyer.auth).status_code == 404
    wait(client)  # the admin has not written: let the seller's sale reach the catalog
    assert [s["saleId"] for s in client.get(url, headers=boss.auth).json()["salePrices"]] == [
        sale_id
    ]
    r = client.delete(f"{url}/{sale_id}", headers=rival.auth)
    assert r.status_code == 404 and error(r)["code"] == "PRODUCT_NOT_FOUND"
    assert client.delete(f"{url}/{sale_id}", headers=buyer.auth).status_code == 403
    r = client.delete(f"{url}/not-a-sale", headers=shop.auth)
    assert r.status_code == 404 and error(r)["code"] == "NOT_FOUND"
    missing = "5f0c3a9e-8b1d-4c2e-9f6a-1b2c3d4e5f60"
    assert client.delete(f"{url}/{missing}", headers=shop.auth).status_code == 404
    assert put_on_sale(client, shop, missing, 500, **window).status_code == 404


def test_overlapping_windows_are_409_and_cancelling_frees_the_window(sqlite_market: Any) -> None:
    client, boss, shop, buyer = sqlite_market
    raced = stocked_product(client, boss, shop, 1, price=1000)
    now = container_of(client).bus.clock()
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda n: put_on_sale(client, shop, raced, 500 + n, endsAt=at(60 + n, now)),
                range(4),
            )
        )
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409]  # racing: one wins

    pid = stocked_product(client, boss, shop, 1, price=1000)
    url = f"/api/catalog/products/{pid}/sale-prices"
    with frozen(client) as move:
        t0 = container_of(client).bus.clock()
        first = put_on_sale(client, shop, pid, 600, endsAt=at(30, t0)).json()
        assert first["status"] == "ACTIVE"
        r = put_on_sale(client, shop, pid, 500, startsAt=at(20, t0), endsAt=at(40, t0))
        assert r.status_code == 409 and error(r)["code"] == "CONFLICT"
        assert error(r)["details"]["reason"] == "SALE_OVERLAP"
        assert error(r)["details"]["saleId"] == first["saleId"]
        later = put_on_sale(client, shop, pid, 500, startsAt=at(30, t0), endsAt=at(40, t0))
        assert later.status_code == 201  # back to back is fine

        move(10)
        r = client.delete(f"{url}/{first['saleId']}", headers=shop.auth)
        assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
        assert "X-Event-Position" in r.headers
        wait(client)
        detail = client.get(f"/api/catalog/products/{pid}", headers=buyer.auth).json()
        assert value(detail["price"]) == 1000 and detail["salePrice"] is None
        r = client.delete(f"{url}/{first['saleId']}", headers=shop.auth)
        assert r.status_code == 409 and error(r)["details"]["reason"] == "SALE_CANCELLED"
        assert put_on_sale(client, shop, pid, 550, endsAt=at(30, t0)).status_code == 201

        move(45)
        r = client.delete(f"{url}/{later.json()['saleId']}", headers=shop.auth)
        assert r.status_code == 409 and error(r)["details"]["reason"] == "SALE_ENDED"
        listed = client.get(url, headers=shop.auth).json()["salePrices"]
        assert [(s["status"], value(s["salePrice"])) for s in listed] == [
            ("ENDED", 500),
            ("ENDED", 550),
            ("CANCELLED", 600),
        ]
        raced_sales = client.get(f"/api/catalog/products/{raced}/sale-prices", headers=shop.auth)
        assert raced_sales.json()["pagination"]["totalItems"] == 1
        history = client.get(f"/api/catalog/products/{pid}/price-history").json()["points"]
        assert [(p["change"], value(p["price"]), value(p["previousPrice"])) for p in history] == [
            ("PRICE", 1000, None),
            ("SALE_START", 600, 1000),
            ("SALE_START", 550, 600),  # cancelled and replaced at minute 10: one point
            ("SALE_START", 500, 550),  # handed over at minute 30
            ("SALE_END", 1000, 500),
        ]


def test_a_coupon_does_not_cover_items_on_sale_nor_count_them_for_its_minimum_spend(
    sqlite_market: Any,
) -> None:
    client, boss, shop, buyer = sqlite_market
    on_sale = stocked_product(client, boss, shop, 5, price=1000)
    regular = stocked_product(client, boss, shop, 5, price=300)
    assert put_on_sale(client, shop, on_sale, 800, endsAt=at(60, datetime.now(UTC))).status_code
    for code, body in (
        ("TENOFF", {"type": "PERCENT", "value": 10}),
        ("SPEND500", {"type": "FIXED", "value": 50, "minSpend": 500}),
    ):
        r = client.post("/api/coupons", json={"code": code, **body}, headers=shop.auth)
        assert r.status_code == 201, r.text
    add_to_cart(client, buyer, on_sale)
    r = checkout(client, buyer, couponCode="TENOFF")
    assert r.status_code == 400 and error(r)["code"] == "INVALID_COUPON"
    assert error(r)["details"]["reason"] == "NO_ELIGIBLE_ITEMS"

    add_to_cart(client, buyer, regular)
    # 800 + 300 would meet a minimum of 500, but only the regular item counts.
    r = checkout(client, buyer, couponCode="SPEND500")
    assert r.status_code == 400 and error(r)["details"]["reason"] == "MIN_SPEND_NOT_MET"
    r = checkout(client, buyer, couponCode="TENOFF")
    assert r.status_code == 201, r.text
    order = r.json()
    assert value(order["subtotal"]) == 1100 and value(order["discount"]) == 30
