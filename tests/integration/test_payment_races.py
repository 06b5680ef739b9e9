"""Payments, ECPay notices, shipments and invoices under concurrency, on SQLite and MariaDB."""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from commands.payments import ecpay_amount
from gateways import SandboxGateway
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


def test_two_concurrent_payments_of_one_order_complete_exactly_one(
    database_url, make_client
) -> None:
    client, _, _, buyer, pid = _market(make_client, database_url)
    for _ in range(2):  # twice, to give the race more than one chance
        order = _order(client, buyer, pid)
        body = {
            "paymentMethod": "CREDIT_CARD",
            "paymentData": {"cardDetails": CARD},
            "amount": order["total"],
        }
        url = f"/api/sales/orders/{order['orderId']}/payments"
        results = race(
            4,
            functools.partial(
                lambda url, body, _: client.post(url, json=body, headers=buyer.auth), url, body
            ),
        )
        codes = Counter(r.status_code for r in results)
        assert codes[200] == 1 and set(codes) <= {200, 409}, [r.text for r in results]
        assert {
            r.json()["error"]["details"].get("reason") for r in results if r.status_code == 409
        } <= {"ALREADY_PAID", "PAYMENT_IN_PROGRESS"}
        wait(client)
        payments = client.get(
            f"/api/sales/orders/{order['orderId']}/payments", headers=buyer.auth
        ).json()["payments"]
        assert [p["status"] for p in payments] == ["COMPLETED"]


def test_repeated_ecpay_notices_racing_record_one_payment(database_url, make_client) -> None:
    client, _, _, buyer, pid = _market(make_client, database_url)
    order = _order(client, buyer, pid, "BANK_TRANSFER")
    params = {
        "MerchantID": TEST_MERCHANT.merchant_id,
        "MerchantTradeNo": order["orderNumber"] + "Z9",
        "RtnCode": "1",
        "RtnMsg": "Succeeded",
        "TradeNo": "2311230000000001",
        "TradeAmt": str(whole_dollars(order)),
        "PaymentDate": "2026/11/23 12:00:00",
        "PaymentType": "ATM_TAISHIN",
        "TradeDate": "2026/11/23 11:59:00",
        "SimulatePaid": "0",
    }
    params["CheckMacValue"] = check_mac_value(params, TEST_MERCHANT.hash_key, TEST_MERCHANT.hash_iv)
    answers = race(4, lambda _: client.post("/api/sales/payments/ecpay/notify", data=params).text)
    assert answers == ["1|OK"] * 4
    wait(client)
    doc = client.get(f"/api/sales/orders/{order['orderId']}", headers=buyer.auth).json()
    assert [p["status"] for p in doc["payments"]] == ["COMPLETED"] and doc["status"] == "PAID"


def test_concurrent_invoices_get_one_per_order_and_distinct_sequential_numbers(
    database_url, make_client
) -> None:
    client, boss, _, buyer, pid = _market(make_client, database_url)
    orders = [_order(client, buyer, pid) for _ in range(4)]
    for o in orders:
        assert (
            client.put(
                f"/api/sales/orders/{o['orderId']}/status",
                json={"status": "PAID"},
                headers=boss.auth,
            ).status_code
            == 200
        )
    # the same order from four requests: exactly one invoice
    same = race(
        4,
        lambda _: client.post(
            f"/api/sales/orders/{orders[0]['orderId']}/invoices", json={}, headers=boss.auth
        ),
    )
    assert Counter(r.status_code for r in same) == {201: 1, 409: 3}
    assert {r.json()["error"]["code"] for r in same if r.status_code == 409} == {
        "INVOICE_ALREADY_EXISTS"
    }
    # three orders at once: three numbers, no gaps, none reused
    rest = race(
        3,
        lambda i: client.post(
            f"/api/sales/orders/{orders[i + 1]['orderId']}/invoices", json={}, headers=buyer.auth
        ),
    )
    assert [r.status_code for r in rest] == [201, 201, 201]
    numbers = sorted(
        int(r.json()["invoiceNumber"][2:])
        for r in [*rest, *(r for r in same if r.status_code == 201)]
    )
    assert numbers == list(range(numbers[0], numbers[0] + 4))


def test_racing_shipments_of_the_same_items_ship_them_once(database_url, make_client) -> None:
    client, _, shop, buyer, pid = _market(make_client, database_url)
    add_to_cart(client, buyer, pid, 2)
    order = checkout(client, buyer, paymentMethod="COD").json()
    assert (
        client.put(
            f"/api/sales/orders/{order['orderId']}/process", json={}, headers=shop.auth
        ).status_code
        == 200
    )
    body = {
        "carrier": "HCT",
        "trackingNumber": "RACE1",
        "items": [{"orderItemId": order["items"][0]["orderItemId"], "quantity": 2}],
    }
    results = race(
        3,
        lambda _: client.post(
            f"/api/sales/orders/{order['orderId']}/shipments", json=body, headers=shop.auth
        ),
    )
    assert Counter(r.status_code for r in results) == {201: 1, 409: 2}
    wait(client)
    totals = client.get(
        "/api/inventory/stock", params={"productId": pid}, headers=shop.auth
    ).json()["totals"]
    assert totals == {"onHand": 48, "reserved": 0, "available": 48}


class CountingGateway(SandboxGateway):
    """The sandbox, counting the money each refund really paid back (slowly, to widen races)."""

    def __init__(self) -> None:
        self.refunded: list[Decimal] = []
        self.lock = threading.Lock()

    def refund(self, payment_transaction_id: str, refund_id: str, amount: Decimal) -> str:
        time.sleep(0.05)
        with self.lock:
            self.refunded.append(amount)
        return super().refund(payment_transaction_id, refund_id, amount)


def test_racing_refunds_never_pay_back_more_than_was_paid(database_url, make_client) -> None:
    client, boss, _, buyer, pid = _market(make_client, database_url)
    gateway = CountingGateway()
    client.app.state.card_gateway = gateway
    add_to_cart(client, buyer, pid, 4)  # 1000 + 50 tax + 60 shipping
    order = checkout(client, buyer, paymentMethod="CREDIT_CARD").json()
    body = {
        "paymentMethod": "CREDIT_CARD",
        "paymentData": {"cardDetails": CARD},
        "amount": order["total"],
    }
    assert (
        client.post(
            f"/api/sales/orders/{order['orderId']}/payments", json=body, headers=buyer.auth
        ).status_code
        == 200
    )
    url = f"/api/sales/orders/{order['orderId']}/refunds"
    results = race(
        4,
        lambda _: client.post(
            url,
            json={"reason": "r", "amount": {"value": 666, "currency": "TWD"}},
            headers=boss.auth,
        ),
    )
    assert Counter(r.status_code for r in results) == {200: 1, 422: 3}, [r.text for r in results]
    assert gateway.refunded == [Decimal(666)]  # the gateway was asked once
    # cancelling is refused once shipped; here the rest is refunded in full, once
    full = race(
        2,
        lambda _: client.post(
            url, json={"reason": "rest", "isFullRefund": True}, headers=boss.auth
        ),
    )
    assert sorted(r.status_code for r in full) == [200, 422]
    assert sum(gateway.refunded) == Decimal(str(order["total"]["value"]))
    wait(client)
    doc = client.get(f"/api/sales/orders/{order['orderId']}", headers=buyer.auth).json()
    assert (
        doc["paymentStatus"] == "REFUNDED"
        and sum(r["amount"]["value"] for r in doc["refunds"]) == order["total"]["value"]
    )
