"""Reports (seeds/003) and analytics over HTTP: the figures of a small shop, who may see what,
and bad parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregates.taipei import local_date
from tests.conftest import ClientFactory
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import add_to_cart, category, checkout, seller, stocked_product

GOOD_CARD = {
    "number": "4242424242424242",
    "expiryMonth": 12,
    "expiryYear": 2031,
    "cvv": "123",
}


def pay(client: TestClient, buyer: User, order: dict[str, Any]) -> None:
    r = client.post(
        f"/api/sales/orders/{order['orderId']}/payments",
        json={
            "paymentMethod": "CREDIT_CARD",
            "paymentData": {"cardDetails": GOOD_CARD},
            "amount": order["total"],
        },
        headers=buyer.auth,
    )
    assert r.status_code == 200, r.text


def buy(client: TestClient, buyer: User, lines: list[tuple[str, int]], paid: bool = True) -> Any:
    for product_id, quantity in lines:
        add_to_cart(client, buyer, product_id, quantity)
    r = checkout(client, buyer)
    assert r.status_code == 201, r.text
    order = r.json()
    if paid:
        pay(client, buyer, order)
    return order


@pytest.fixture
def shop(make_client: ClientFactory) -> Any:
    """Two sellers, three products in two categories, a few orders today."""
    client = make_client()
    boss = admin(client)
    tea_house, pottery = seller(client, boss, "茶行"), seller(client, boss, "陶坊")
    teas, ware = category(client, boss, "茶葉"), category(client, boss, "器皿")
    tea = stocked_product(client, boss, tea_house, 50, 350, name="烏龍茶", category_id=teas)
    cup = stocked_product(client, boss, tea_house, 50, "99.5", name="茶杯", category_id=ware)
    pot = stocked_product(client, boss, pottery, 6, 1200, name="茶壺", category_id=ware)
    mei, lin = verified_user(client), verified_user(client)
    first = buy(client, mei, [(tea, 2), (pot, 1)])  # 700 + 1200
    buy(client, lin, [(tea, 1), (cup, 4)])  # 350 + 398
    buy(client, lin, [(pot, 1)], paid=False)  # never paid: never a sale
    return client, boss, tea_house, pottery, (tea, cup, pot), (mei, lin), first, (teas, ware)


def today() -> str:
    return local_date(datetime.now(UTC)).isoformat()


def get(client: TestClient, who: User, path: str, **params: Any) -> Any:
    # Others' writes are not the reader's own: let the read models catch up with them first.
    wait(client)
    return client.get(path, params=params, headers=who.auth)


def test_the_sales_summary_counts_paid_orders_only_in_goods_value(shop: Any) -> None:
    client, boss, *_ = shop
    r = get(client, boss, "/api/sales/reports/sales-summary", fromDate=today(), toDate=today())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"fromDate": today(), "toDate": today()}
    assert body["totalSales"] == {"value": 2648, "currency": "TWD"}  # 700+1200+350+398
    assert body["totalOrders"] == 2
    assert body["averageOrderValue"] == {"value": 1324, "currency": "TWD"}
    assert body["salesByPeriod"] == [
        {"period": today(), "sales": {"value": 2648, "currency": "TWD"}, "orders": 2}
    ]
    top = body["topSellingProducts"]
    assert [(p["name"], p["quantity"]) for p in top] == [("茶杯", 4), ("烏龍茶", 3), ("茶壺", 1)]
    assert top[1]["revenue"] == {"value": 1050, "currency": "TWD"}
    assert "salesByCategory" not in body


def test_details_add_units_and_breakdowns_by_category_and_seller(shop: Any) -> None:
    client, boss, _tea_house, *_ = shop
    r = get(
        client,
        boss,
        "/api/sales/reports/sales-summary",
        fromDate=today(),
        toDate=today(),
        includeDetails="true",
        groupBy="MONTH",
    )
    body = r.json()
    assert body["totalUnits"] == 8
    assert body["salesByPeriod"][0]["period"] == today()[:7]
    assert {c["category"]: c["revenue"]["value"] for c in body["salesByCategory"]} == {
        "茶葉": 1050,
        "器皿": 1598,
    }
    sellers = {s["shopName"]: (s["orders"], s["revenue"]["value"]) for s in body["salesBySeller"]}
    assert sellers == {"茶行": (2, 1448), "陶坊": (1, 1200)}


def test_product_sales_sorts_filters_and_totals(shop: Any) -> None:
    client, boss, _, _, (tea, cup, pot), *_rest, (_teas, ware) = shop
    r = get(
        client,
        boss,
        "/api/sales/reports/product-sales",
        fromDate=today(),
        toDate=today(),
        sortBy="revenue",
        limit=2,
    )
    body = r.json()
    assert [p["productId"] for p in body["productSales"]] == [pot, tea]
    assert body["productSales"][1]["averageUnitPrice"] == {"value": 350, "currency": "TWD"}
    assert body["productSales"][0]["category"] == "器皿"
    assert body["totalQuantitySold"] == 8  # all products, not only the two listed
    assert body["totalRevenue"] == {"value": 2648, "currency": "TWD"}
    r = get(
        client,
        boss,
        "/api/sales/reports/product-sales",
        fromDate=today(),
        toDate=today(),
        categoryId=ware,
    )
    assert {p["productId"] for p in r.json()["productSales"]} == {cup, pot}
    r = get(
        client,
        boss,
        "/api/sales/reports/product-sales",
        fromDate=today(),
        toDate=today(),
        productId=cup,
    )
    assert [(p["productId"], p["quantity"]) for p in r.json()["productSales"]] == [(cup, 4)]


def test_a_seller_sees_only_its_own_items_and_must_say_me(shop: Any) -> None:
    client, _, tea_house, pottery, *_ = shop
    path = "/api/sales/reports/sales-summary"
    r = get(client, tea_house, path, fromDate=today(), toDate=today(), sellerId="me")
    assert r.status_code == 200
    assert r.json()["totalSales"]["value"] == 1448 and r.json()["totalOrders"] == 2
    assert get(client, tea_house, path, fromDate=today(), toDate=today()).status_code == 403
    other = get(client, tea_house, path, fromDate=today(), toDate=today(), sellerId=pottery.user_id)
    assert other.status_code == 403


def test_buyers_and_strangers_cannot_read_reports(shop: Any) -> None:
    client, *_, (mei, _lin), _first, _cats = shop
    path = "/api/sales/reports/product-sales"
    assert get(client, mei, path, fromDate=today(), toDate=today()).status_code == 403
    assert client.get(path, params={"fromDate": today(), "toDate": today()}).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"fromDate": "2026-13-01", "toDate": "2026-12-31"},
        {"fromDate": "2026-12-02", "toDate": "2026-12-01"},
        {"fromDate": "2026-12-01", "toDate": "2026-12-02", "groupBy": "YEAR"},
        {"fromDate": "2026-12-01", "toDate": "2026-12-02", "includeDetails": "maybe"},
        {"fromDate": "2016-12-01", "toDate": "2026-12-02"},
    ],
)
def test_bad_report_parameters_are_400_with_the_field(shop: Any, params: dict[str, str]) -> None:
    client, boss, *_ = shop
    r = get(client, boss, "/api/sales/reports/sales-summary", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_refunds_subtract_and_a_cancelled_paid_order_leaves_the_counts(shop: Any) -> None:
    client, boss, _tea_house, _pottery, (tea, _cup, pot), (mei, _lin), first, _ = shop
    item = next(i for i in first["items"] if i["productId"] == tea)
    r = client.post(
        f"/api/sales/orders/{first['orderId']}/refunds",
        json={
            "reason": "broken",
            "refundItems": [{"orderItemId": item["orderItemId"], "quantity": 1}],
        },
        headers=boss.auth,
    )
    assert r.status_code == 200, r.text
    body = get(
        client, boss, "/api/sales/reports/sales-summary", fromDate=today(), toDate=today()
    ).json()
    assert body["totalSales"]["value"] == 2648 - 350
    r = client.put(
        f"/api/sales/orders/{first['orderId']}/cancel",
        json={"reason": "customer request"},
        headers=mei.auth,
    )
    assert r.status_code == 200, r.text
    body = get(
        client, boss, "/api/sales/reports/sales-summary", fromDate=today(), toDate=today()
    ).json()
    assert body["totalSales"]["value"] == 748 and body["totalOrders"] == 1
    units = {p["productId"]: p["quantity"] for p in body["topSellingProducts"]}
    assert units.get(pot, 0) == 0 and units[tea] == 1


def test_analytics_sales_compares_with_the_previous_period(shop: Any) -> None:
    client, boss, *_ = shop
    body = get(client, boss, "/api/analytics/sales", fromDate=today(), toDate=today()).json()
    assert body["revenue"]["value"] == 2648 and body["orders"] == 2 and body["units"] == 8
    yesterday = (local_date(datetime.now(UTC)) - timedelta(days=1)).isoformat()
    assert body["previousPeriod"] == {"fromDate": yesterday, "toDate": yesterday}
    assert body["previous"]["orders"] == 0 and body["change"]["revenuePercent"] is None
    assert {s["shopName"] for s in body["bySeller"]} == {"茶行", "陶坊"}
    default = get(client, boss, "/api/analytics/sales").json()  # the last 30 days
    assert len(default["series"]) == 30 and default["revenue"]["value"] == 2648


def test_the_conversion_funnel_counts_each_step(shop: Any) -> None:
    client, boss, tea_house, *_ = shop
    body = get(client, boss, "/api/analytics/conversion", fromDate=today(), toDate=today()).json()
    assert (body["carts"], body["checkouts"], body["paid"]) == (3, 3, 2)
    assert body["rates"]["checkoutToPaid"] == round(2 / 3, 4)
    mine = get(client, tea_house, "/api/analytics/conversion", sellerId="me").json()
    assert (mine["checkouts"], mine["paid"]) == (2, 2)


def test_customers_are_ranked_by_spend(shop: Any) -> None:
    client, boss, tea_house, _, _, (mei, lin), *_ = shop
    body = get(client, boss, "/api/analytics/customers").json()
    assert [(c["buyerId"], c["orders"], c["spend"]["value"]) for c in body["customers"]] == [
        (mei.user_id, 1, 1900),
        (lin.user_id, 1, 748),
    ]
    assert body["customers"][0]["username"] == mei.username
    mine = get(client, tea_house, "/api/analytics/customers", sellerId="me").json()
    assert {c["buyerId"]: c["spend"]["value"] for c in mine["customers"]} == {
        lin.user_id: 748,
        mei.user_id: 700,
    }


def test_low_stock_is_listed_and_notified_once_per_crossing(shop: Any) -> None:
    client, boss, _tea_house, pottery, (_tea, _cup, pot), (mei, _lin), *_ = shop
    # 6 potteries, 2 ordered: 4 available, below the default threshold of 5
    health = get(client, pottery, "/api/analytics/inventory", sellerId="me").json()
    assert [p["productId"] for p in health["lowStock"]] == [pot]
    assert health["products"][0]["unitsSold7Days"] == 1
    notes = get(client, pottery, "/api/notifications").json()["notifications"]
    assert [n["data"]["productId"] for n in notes if n["type"] == "LOW_STOCK"] == [pot]
    r = client.put(
        f"/api/inventory/stock/{pot}/low-stock-threshold",
        json={"threshold": 2},
        headers=pottery.auth,
    )
    assert r.status_code == 200 and r.json()["low"] is False  # 4 > 2: recovered
    buy(client, mei, [(pot, 2)])  # 2 left: low again, notified again
    notes = get(client, pottery, "/api/notifications").json()["notifications"]
    assert len([n for n in notes if n["type"] == "LOW_STOCK"]) == 2
    r = client.put(
        f"/api/inventory/stock/{pot}/low-stock-threshold", json={"threshold": 1}, headers=boss.auth
    )
    assert r.status_code == 200
    other = client.put(
        f"/api/inventory/stock/{pot}/low-stock-threshold", json={"threshold": 1}, headers=mei.auth
    )
    assert other.status_code == 403


def test_a_sold_out_product_stays_on_the_low_stock_list(shop: Any) -> None:
    client, boss, _tea_house, pottery, *_ = shop
    vase = stocked_product(client, boss, pottery, 3, 800, name="花瓶")
    health = get(client, pottery, "/api/analytics/inventory", sellerId="me").json()
    stock = next(p for p in health["products"] if p["productId"] == vase)
    r = client.post(
        "/api/inventory/adjustments",
        json={
            "productId": vase,
            "warehouseId": stock["warehouses"][0]["warehouseId"],
            "quantityChange": -3,
            "reason": "DAMAGED",
        },
        headers=pottery.auth,
    )
    assert r.status_code == 201, r.text
    health = get(client, pottery, "/api/analytics/inventory", sellerId="me").json()
    low = {p["productId"]: p for p in health["lowStock"]}
    assert low[vase]["available"] == 0 and low[vase]["name"] == "花瓶"
    # nothing on hand is not dead stock: there is nothing left to sell
    assert vase not in {p["productId"] for p in health["deadStock"]}


def test_shipping_performance_of_a_shipped_and_delivered_order(shop: Any) -> None:
    client, boss, _tea_house, pottery, (_tea, _cup, pot), (_mei, _lin), first, _ = shop
    oid = first["orderId"]
    assert client.put(f"/api/sales/orders/{oid}/process", json={}, headers=pottery.auth).is_success
    item = next(i for i in first["items"] if i["productId"] == pot)
    r = client.post(
        f"/api/sales/orders/{oid}/shipments",
        json={
            "carrier": "黑貓宅急便",
            "trackingNumber": "123456789",
            "items": [{"orderItemId": item["orderItemId"], "quantity": 1}],
        },
        headers=pottery.auth,
    )
    assert r.status_code == 201, r.text
    shipment = r.json()["shipmentId"]
    r = client.put(
        f"/api/sales/shipments/{shipment}/status",
        json={"status": "DELIVERED"},
        headers=pottery.auth,
    )
    assert r.status_code == 200, r.text
    body = get(client, pottery, "/api/analytics/shipping", sellerId="me").json()
    assert body["ordersPaid"] == 1 and body["ordersShipped"] == 1
    assert body["shippedWithin7Days"] == 1 and body["shippedWithin7DaysShare"] == 1.0
    assert body["hoursToFirstShipment"] == {"p50": 1, "p90": 1}
    assert body["parcelsDelivered"] == 1
    platform = get(client, boss, "/api/analytics/shipping", bySeller="true").json()
    assert {s["shopName"]: s["ordersPaid"] for s in platform["sellers"]} == {"茶行": 2, "陶坊": 1}


def test_timeline_data_is_camel_case_and_money_in_notifications_is_money(shop: Any) -> None:
    client, boss, *_rest, (mei, _lin), first, _ = shop
    item = first["items"][0]
    r = client.post(
        f"/api/sales/orders/{first['orderId']}/refunds",
        json={
            "reason": "broken",
            "refundItems": [{"orderItemId": item["orderItemId"], "quantity": 1}],
        },
        headers=boss.auth,
    )
    assert r.status_code == 200, r.text
    events = get(client, mei, f"/api/sales/orders/{first['orderId']}/timeline").json()["events"]
    keys = {k for e in events for k in e["data"]}
    assert "orderNumber" in keys and "buyerId" in keys
    assert not [k for k in keys if "_" in k], keys
    notes = get(client, mei, "/api/notifications").json()["notifications"]
    refund = next(n for n in notes if n["type"] == "REFUND_ISSUED")
    assert refund["data"]["amount"]["currency"] == "TWD" and refund["data"]["amount"]["value"] > 0


def test_the_reports_on_each_backend(database_url: str, make_client: ClientFactory) -> None:
    client = make_client(database_url)
    boss = admin(client)
    shop_a = seller(client, boss, "茶行")
    tea = stocked_product(client, boss, shop_a, 20, "350.5", name="烏龍茶")
    buyer = verified_user(client)
    order = buy(client, buyer, [(tea, 3)])
    buy(client, buyer, [(tea, 1)], paid=False)
    r = client.post(
        f"/api/sales/orders/{order['orderId']}/refunds",
        json={"reason": "late", "amount": {"value": 100, "currency": "TWD"}},
        headers=boss.auth,
    )
    assert r.status_code == 200, r.text
    summary = get(
        client, boss, "/api/sales/reports/sales-summary", fromDate=today(), toDate=today()
    )
    assert summary.json()["totalSales"] == {"value": 951.5, "currency": "TWD"}  # 1051.50 - 100
    products = get(
        client,
        shop_a,
        "/api/sales/reports/product-sales",
        fromDate=today(),
        toDate=today(),
        sellerId="me",
    ).json()
    assert products["totalQuantitySold"] == 3
    assert products["productSales"][0]["revenue"] == {"value": 951.5, "currency": "TWD"}
    funnel = get(client, boss, "/api/analytics/conversion").json()
    assert (funnel["checkouts"], funnel["paid"]) == (2, 1)
    customers = get(client, boss, "/api/analytics/customers").json()["customers"]
    assert customers[0]["spend"] == {"value": 951.5, "currency": "TWD"}
    assert get(client, boss, "/api/analytics/shipping").json()["ordersPaid"] == 1
    assert (
        get(client, boss, "/api/analytics/inventory").json()["products"][0]["unitsSold30Days"] == 3
    )
