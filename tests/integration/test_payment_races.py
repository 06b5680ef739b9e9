"""Payments, ECPay notices, shipments and invoices under concurrency, on SQLite and MariaDB."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from commands.payments import ecpay_amount
from gateways.ecpay import TEST_MERCHANT, check_mac_value
from tests.support.accounts import admin, verified_user, wait
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product
from tests.support.concurrency import race

CARD = {"number": "4242424242424242", "expiryMonth": 12, "expiryYear": 2031, "cvv": "123"}


def whole_dollars(order: dict[str, Any]) -> int:
    """ECPay's amount: the total rounded half-up to whole dollars."""
    return ecpay_amount(Decimal(str(order["total"]["value"])))




def _market(make_client: Any, database_url: str) -> tuple[Any, Any, Any, Any, str]:
    client = make_client(database_url)
    boss = admin(client)
    shop = seller(client, boss)
    return client, boss, shop, verified_user(client), stocked_product(client, boss, shop, 50, 250)


def _order(client: Any, buyer: Any, pid: str, method: str = "CREDIT_CARD") -> dict[str, Any]:
    add_to_cart(client, buyer, pid, 1)
    r = checkout(client, buyer, paymentMethod=method)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_two_concurrent_payments_of_one_order_complete_exactly_one(database_url, make_client) -> None:
    client, _, _, buyer, pid = _market(make_client, database_url)
    for _ in range(2):  # twice, to give the race more than one chance
        order = _order(client, buyer, pid)
        body = {"paymentMethod": "CREDIT_CARD", "paymentData": {"cardDetails": CARD}, "amount": order["total"]}
        url = f"/api/sales/orders/{order['orderId']}/payments"
        results = race(4, lambda _, url=url, body=body: client.post(url, json=body, headers=buyer.auth))
        codes = Counter(r.status_code for r in results)
        assert codes[200] == 1 and set(codes) <= {200, 409}, [r.text for r in results]
        assert {r.json()["error"]["details"].get("reason") for r in results if r.status_code == 409} <= {"ALREADY_PAID", "PAYMENT_IN_PROGRESS"}
        wait(client)
        payments = client.get(f"/api/sales/orders/{order['orderId']}/payments", headers=buyer.auth).json()["payments"]
        assert [p["status"] for p in payments] == ["COMPLETED"]


def test_repeated_ecpay_notices_racing_record_one_payment(database_url, make_client) -> None:
    client, _, _, buyer, pid = _market(make_client, database_url)
    order = _order(client, buyer, pid, "BANK_TRANSFER")
    params = {
        "MerchantID": TEST_MERCHANT.merchant_id, "MerchantTradeNo": order["orderNumber"], "RtnCode": "1",
        "RtnMsg": "Succeeded", "TradeNo": "2311230000000001", "TradeAmt": str(whole_dollars(order)),
        "PaymentDate": "2026/11/23 12:00:00", "PaymentType": "ATM_TAISHIN", "TradeDate": "2026/11/23 11:59:00",
        "SimulatePaid": "0",
    }
    params["CheckMacValue"] = check_mac_value(params, TEST_MERCHANT.hash_key, TEST_MERCHANT.hash_iv)
    answers = race(4, lambda _: client.post("/api/sales/payments/ecpay/notify", data=params).text)
    assert answers == ["1|OK"] * 4
    wait(client)
    doc = client.get(f"/api/sales/orders/{order['orderId']}", headers=buyer.auth).json()
    assert [p["status"] for p in doc["payments"]] == ["COMPLETED"] and doc["status"] == "PAID"


def test_concurrent_invoices_get_one_per_order_and_distinct_sequential_numbers(database_url, make_client) -> None:
    client, boss, _, buyer, pid = _market(make_client, database_url)
    orders = [_order(client, buyer, pid) for _ in range(4)]
    for o in orders:
        assert client.put(f"/api/sales/orders/{o['orderId']}/status", json={"status": "PAID"}, headers=boss.auth).status_code == 200
    # the same order from four requests: exactly one invoice
    same = race(4, lambda _: client.post(f"/api/sales/orders/{orders[0]['orderId']}/invoices", json={}, headers=boss.auth))
    assert Counter(r.status_code for r in same) == {201: 1, 409: 3}
    assert {r.json()["error"]["code"] for r in same if r.status_code == 409} == {"INVOICE_ALREADY_EXISTS"}
    # three orders at once: three numbers, no gaps, none reused
    rest = race(3, lambda i: client.post(f"/api/sales/orders/{orders[i + 1]['orderId']}/invoices", json={}, headers=buyer.auth))
    assert [r.status_code for r in rest] == [201, 201, 201]
    numbers = sorted(int(r.json()["invoiceNumber"][2:]) for r in [*rest, *(r for r in same if r.status_code == 201)])
    assert numbers == list(range(numbers[0], numbers[0] + 4))


def test_racing_shipments_of_the_same_items_ship_them_once(database_url, make_client) -> None:
    client, _, shop, buyer, pid = _market(make_client, database_url)
    add_to_cart(client, buyer, pid, 2)
    order = checkout(client, buyer, paymentMethod="COD").json()
    assert client.put(f"/api/sales/orders/{order['orderId']}/process", json={}, headers=shop.auth).status_code == 200
    body = {"carrier": "HCT", "trackingNumber": "RACE1", "items": [{"orderItemId": order["items"][0]["orderItemId"], "quantity": 2}]}
    results = race(3, lambda _: client.post(f"/api/sales/orders/{order['orderId']}/shipments", json=body, headers=shop.auth))
    assert Counter(r.status_code for r in results) == {201: 1, 409: 2}
    wait(client)
    totals = client.get("/api/inventory/stock", params={"productId": pid}, headers=shop.auth).json()["totals"]
    assert totals == {"onHand": 48, "reserved": 0, "available": 48}
