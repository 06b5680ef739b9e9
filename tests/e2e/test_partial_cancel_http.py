"""Partial cancellation of unshipped units over HTTP (issue #19): ``PUT .../cancel`` with
``items``."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aggregates.taipei import local_date
from projections.deadlines import AUTO_DELIVER, SHIP_REMINDER
from tests.e2e.conftest import container_of
from tests.e2e.test_fulfilment_http import error, move, order_of, ship, stock, types
from tests.e2e.test_payments_http import ecpay_form, notice, notify, pay, whole_dollars
from tests.support.accounts import User, admin, verified_user
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product
from tests.support.concurrency import race


def cancel(client: Any, who: User, oid: str, *units: tuple[str, int], **extra: Any) -> Any:
    body = {"reason": "缺貨", "items": [{"orderItemId": i, "quantity": q} for i, q in units]}
    return client.put(f"/api/sales/orders/{oid}/cancel", json={**body, **extra}, headers=who.auth)


@dataclass
class Market:
    """Two sellers (a pot at NT$200, a cup at NT$100) and a buyer on one client."""

    client: Any
    boss: User
    buyer: User
    tea: User
    pottery: User
    pot: str
    cup: str

    def order(self, pots: int = 3, cups: int = 2) -> tuple[dict[str, Any], str, str]:
        """A card-paid order: (the order, the pot's and the cup's order item ids)."""
        add_to_cart(self.client, self.buyer, self.pot, pots)
        add_to_cart(self.client, self.buyer, self.cup, cups)
        r = checkout(self.client, self.buyer, paymentMethod="CREDIT_CARD")
        assert r.status_code == 201, r.text
        order = r.json()
        assert pay(self.client, self.buyer, order).status_code == 200
        by_product = {i["productId"]: i["orderItemId"] for i in order["items"]}
        return order, by_product[self.pot], by_product[self.cup]

    def process(self, oid: str) -> None:
        r = self.client.put(f"/api/sales/orders/{oid}/process", json={}, headers=self.boss.auth)
        assert r.status_code == 200, r.text


def open_market(client: Any, stock_each: int = 10) -> Market:
    boss, buyer = admin(client), verified_user(client)
    tea, pottery = seller(client, boss), seller(client, boss)
    pot = stocked_product(client, boss, tea, stock_each, 200)
    cup = stocked_product(client, boss, pottery, stock_each, 100)
    return Market(client, boss, buyer, tea, pottery, pot, cup)


def fire(client: Any, oid: str, rule: str) -> str:
    """Fire a timed rule as a worker would, once it is due."""
    rules = container_of(client).rules
    for _ in range(40):
        container_of(client).catch_up()
        outcome = rules.fire(oid, rule).outcome
        if outcome != "early":
            return str(outcome)
        time.sleep(0.1)
    return "early"


def test_a_seller_cancels_units_of_a_paid_multi_seller_order(database_url, make_client) -> None:
    client = make_client(
        database_url,
        background=False,  # the test fires the timed rules itself
        min_position_wait="PT0.05S",
        ship_reminder_after="PT1S",
        auto_deliver_after="PT1S",
    )
    m = open_market(client)
    boss, buyer, tea, pottery, pot, cup = m.boss, m.buyer, m.tea, m.pottery, m.pot, m.cup
    order, pot_item, _ = m.order()
    oid, total = order["orderId"], order["total"]["value"]

    r = cancel(client, tea, oid, (pot_item, 2))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "PAID" and body["paymentStatus"] == "PARTIALLY_REFUNDED"
    assert body["cancelledItems"] == [
        {"orderItemId": pot_item, "quantity": 2, "amount": {"value": 420, "currency": "TWD"}}
    ]  # 2 × 200 + 5% tax
    refund = body["refundDetails"]
    assert refund["status"] == "COMPLETED" and refund["transactionId"].startswith("re_")
    assert refund["amount"]["value"] == 420
    # the reservation of exactly those units is released
    assert stock(client, tea, pot)["totals"] == {"onHand": 10, "reserved": 1, "available": 9}
    assert stock(client, pottery, cup)["totals"] == {"onHand": 10, "reserved": 2, "available": 8}
    doc = order_of(client, buyer, oid)
    pot_line = next(i for i in doc["items"] if i["orderItemId"] == pot_item)
    assert pot_line["cancelledQuantity"] == 2 and pot_line["subtotal"]["value"] == 200
    assert doc["subtotal"]["value"] == 400 and doc["tax"]["value"] == 20
    assert doc["total"]["value"] == total - 420 and doc["cancelledAmount"]["value"] == 420
    assert [(x["reason"], x["amount"]["value"]) for x in doc["refunds"]] == [
        ("UNITS_CANCELLED", 420)
    ]
    mine = order_of(client, tea, oid)
    assert mine["sellerSubtotal"]["value"] == 200 and "cancelledAmount" not in mine
    queue = client.get("/api/sales/orders", params={"sellerId": "me"}, headers=tea.auth).json()
    assert queue["orders"][0]["sellerSubtotal"]["value"] == 200
    assert "UNITS_CANCELLED" in types(client, buyer) and "UNITS_CANCELLED" in types(client, tea)
    assert "UNITS_CANCELLED" not in types(client, pottery)
    # units sold count only what was not cancelled
    day = local_date(datetime.now(UTC)).isoformat()
    sold = client.get(
        "/api/sales/reports/product-sales",
        params={"fromDate": day, "toDate": day},
        headers=boss.auth,
    ).json()
    assert {p["productId"]: p["quantity"] for p in sold["productSales"]} == {pot: 1, cup: 2}

    # the tea seller ships its last unit: only the pottery is reminded
    m.process(oid)
    first = ship(client, tea, oid)
    assert first.status_code == 201 and first.json()["items"][0]["quantity"] == 1
    assert first.json()["orderStatus"] == "PROCESSING"
    assert fire(client, oid, SHIP_REMINDER) == "applied"
    assert "SHIP_REMINDER" in types(client, pottery) and "SHIP_REMINDER" not in types(client, tea)
    second = ship(client, pottery, oid)
    assert second.json()["orderStatus"] == "SHIPPED"
    for parcel in (first, second):
        assert move(client, boss, parcel.json()["shipmentId"], "DELIVERED").status_code == 200
    assert fire(client, oid, AUTO_DELIVER) == "applied"
    assert order_of(client, buyer, oid)["status"] == "DELIVERED"


def test_who_may_cancel_which_units_and_what_cancelling_the_rest_does(make_client) -> None:
    client = make_client(background=False, min_position_wait="PT0.05S", auto_deliver_after="PT1S")
    m = open_market(client, 20)
    boss, buyer, tea, pottery = m.boss, m.buyer, m.tea, m.pottery
    order, pot_item, cup_item = m.order()
    oid = order["orderId"]
    stranger, other_shop = verified_user(client), seller(client, boss)
    for who in (stranger, other_shop):
        r = cancel(client, who, oid, (pot_item, 1))
        assert r.status_code == 404 and error(r)["code"] == "ORDER_NOT_FOUND"
    r = cancel(client, tea, oid, (cup_item, 1))
    assert r.status_code == 403 and error(r)["details"]["field"] == "items[0].orderItemId"
    r = cancel(client, tea, oid, (pot_item, 4))
    assert r.status_code == 409 and error(r)["details"]["field"] == "items[0].quantity"
    assert error(r)["details"]["cancellable"] == 3
    r = cancel(client, boss, oid, (pot_item, 1), ("nope", 1))
    assert r.status_code == 400 and error(r)["details"]["field"] == "items[1].orderItemId"
    for bad, field in (
        ({"items": []}, "items"),
        ({"items": [{"orderItemId": pot_item, "quantity": 0}]}, "items[0].quantity"),
        ({"items": [{"orderItemId": pot_item, "quantity": "1"}]}, "items[0].quantity"),
        ({"items": [{"orderItemId": pot_item, "quantity": 1, "x": 1}]}, "items[0].x"),
    ):
        r = client.put(
            f"/api/sales/orders/{oid}/cancel", json={"reason": "x", **bad}, headers=buyer.auth
        )
        assert r.status_code == 400 and error(r)["details"]["field"] == field, r.text
    m.process(oid)
    parcel = ship(client, tea, oid, [(pot_item, 1)]).json()
    r = cancel(client, buyer, oid, (cup_item, 1))
    assert r.status_code == 409 and error(r)["details"]["reason"] == "PARTLY_SHIPPED"
    r = cancel(client, tea, oid, (pot_item, 3))
    assert r.status_code == 409 and error(r)["details"]["cancellable"] == 2
    # the sellers still may: the rest of the pots, then the cups, and nothing is left to ship
    assert cancel(client, tea, oid, (pot_item, 2)).json()["status"] == "PROCESSING"
    assert move(client, tea, parcel["shipmentId"], "DELIVERED").status_code == 200
    r = cancel(client, pottery, oid, (cup_item, 2))
    assert r.status_code == 200 and r.json()["status"] == "SHIPPED"
    assert r.json()["refundDetails"]["amount"]["value"] == 210  # 2 × 100 + 5% tax
    doc = order_of(client, buyer, oid)
    assert doc["shippingStatus"] == "SHIPPED" and doc["fulfillmentStatus"] == "SHIPPED"
    assert doc["total"]["value"] == order["total"]["value"] - 420 - 210
    assert fire(client, oid, AUTO_DELIVER) == "applied"  # every parcel left was delivered
    assert order_of(client, buyer, oid)["status"] == "DELIVERED"

    # cancelling every unit left of an order of which nothing shipped cancels the order
    order, pot_item, cup_item = m.order()
    oid = order["orderId"]
    assert cancel(client, buyer, oid, (pot_item, 1)).status_code == 200
    r = cancel(client, buyer, oid, (pot_item, 2), (cup_item, 2))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "CANCELLED" and body["paymentStatus"] == "REFUNDED"
    assert body["refundDetails"]["amount"]["value"] == order["total"]["value"] - 210
    assert "cancelledItems" not in body
    for who, pid in ((tea, m.pot), (pottery, m.cup)):
        assert stock(client, who, pid)["totals"]["reserved"] == 0


def unpaid(m: Market, method: str, pots: int = 3, cups: int = 2) -> tuple[dict[str, Any], str]:
    """An order not paid yet: (the order, the pot's order item id)."""
    add_to_cart(m.client, m.buyer, m.pot, pots)
    add_to_cart(m.client, m.buyer, m.cup, cups)
    r = checkout(m.client, m.buyer, paymentMethod=method)
    assert r.status_code == 201, r.text
    order = r.json()
    return order, next(i["orderItemId"] for i in order["items"] if i["productId"] == m.pot)


def test_units_cancelled_before_payment_are_neither_charged_nor_sold(
    database_url, make_client
) -> None:
    client = make_client(database_url, background=False, min_position_wait="PT0.05S")
    m = open_market(client)
    order, pot_item = unpaid(m, "CREDIT_CARD")
    oid, total = order["orderId"], order["total"]["value"]

    r = cancel(client, m.buyer, oid, (pot_item, 2))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "CREATED" and body["paymentStatus"] == "PENDING"
    assert body["refundDetails"] is None
    assert body["cancelledItems"][0]["amount"] == {"value": 420, "currency": "TWD"}
    assert stock(client, m.tea, m.pot)["totals"]["reserved"] == 1
    doc = order_of(client, m.buyer, oid)
    assert doc["total"]["value"] == total - 420 and doc["refunds"] == []

    # the card pays what is due now, not the total at checkout
    r = pay(client, m.buyer, order)
    assert r.status_code == 400, r.text
    assert error(r)["details"]["expected"]["value"] == total - 420
    r = pay(client, m.buyer, {**order, "total": doc["total"]})
    assert r.status_code == 200, r.text
    doc = order_of(client, m.buyer, oid)
    assert doc["status"] == "PAID" and doc["paymentStatus"] == "COMPLETED"
    assert [p["amount"]["value"] for p in doc["payments"]] == [total - 420]

    # only the units left were sold
    day = local_date(datetime.now(UTC)).isoformat()
    sold = client.get(
        "/api/sales/reports/product-sales",
        params={"fromDate": day, "toDate": day},
        headers=m.boss.auth,
    ).json()
    assert {p["productId"]: p["quantity"] for p in sold["productSales"]} == {m.pot: 1, m.cup: 2}
    summary = client.get(
        "/api/sales/reports/sales-summary",
        params={"fromDate": day, "toDate": day},
        headers=m.boss.auth,
    ).json()
    assert summary["totalSales"]["value"] == 400  # goods value: one pot and two cups


def test_cash_on_delivery_collects_only_what_is_left(make_client) -> None:
    client = make_client(background=False, min_position_wait="PT0.05S")
    m = open_market(client)
    order, pot_item = unpaid(m, "COD", pots=2, cups=1)
    oid, total = order["orderId"], order["total"]["value"]
    m.process(oid)
    assert ship(client, m.pottery, oid).status_code == 201  # the cup goes
    r = cancel(client, m.tea, oid, (pot_item, 1))  # one of the two pots is out of stock
    assert r.status_code == 200, r.text
    assert r.json()["refundDetails"] is None and r.json()["status"] == "PROCESSING"
    parcel = ship(client, m.tea, oid)
    assert parcel.status_code == 201 and parcel.json()["orderStatus"] == "SHIPPED"
    for sid in [s["shipmentId"] for s in order_of(client, m.boss, oid)["shipments"]]:
        assert move(client, m.boss, sid, "DELIVERED").status_code == 200
    doc = order_of(client, m.buyer, oid)
    assert [(p["method"], p["amount"]["value"]) for p in doc["payments"]] == [("COD", total - 210)]
    assert doc["paymentStatus"] == "COMPLETED"


def test_an_atm_code_issued_before_units_were_cancelled_is_paid_and_the_difference_returned(
    make_client,
) -> None:
    client = make_client(background=False, min_position_wait="PT0.05S")
    m = open_market(client)
    order, pot_item = unpaid(m, "BANK_TRANSFER", pots=2, cups=1)
    oid = order["orderId"]
    # the buyer took an ATM code for the whole order; then a pot is cancelled
    assert cancel(client, m.tea, oid, (pot_item, 1)).status_code == 200
    due = order_of(client, m.buyer, oid)["total"]
    _, form = ecpay_form(client, order)  # a new visit asks only what is due
    assert form.fields["TotalAmount"] == str(whole_dollars({"total": due}))
    # a forged amount above what was ever asked is still refused
    assert notify(client, notice(order, amount=whole_dollars(order) + 1)).startswith("0|")
    assert notify(client, notice(order)) == "1|OK"  # the old code is paid in full
    doc = order_of(client, m.buyer, oid)
    assert doc["status"] == "PAID"
    assert [(r["reason"], r["amount"]["value"]) for r in doc["refunds"]] == [
        ("OVERPAID", whole_dollars(order) - whole_dollars({"total": due}))
    ]
    # what was sold is the pot and the cup left; the money paid back was never a sale
    day = local_date(datetime.now(UTC)).isoformat()
    summary = client.get(
        "/api/sales/reports/sales-summary",
        params={"fromDate": day, "toDate": day},
        headers=m.boss.auth,
    ).json()
    assert summary["totalSales"]["value"] == 300


def test_units_refunded_by_item_before_they_ship_no_longer_wait_to_ship(make_client) -> None:
    client = make_client(background=False, min_position_wait="PT0.05S", ship_reminder_after="PT1S")
    m = open_market(client)
    order, pot_item, cup_item = m.order(pots=2, cups=1)
    oid = order["orderId"]
    # a refund of less than the cup's value is a price adjustment: the cup still ships
    r = client.post(
        f"/api/sales/orders/{oid}/refunds",
        json={
            "reason": "小瑕疵",
            "amount": {"value": 10, "currency": "TWD"},
            "refundItems": [{"orderItemId": cup_item, "quantity": 1}],
        },
        headers=m.pottery.auth,
    )
    assert r.status_code == 200, r.text
    assert stock(client, m.pottery, m.cup)["totals"]["reserved"] == 1
    r = client.post(
        f"/api/sales/orders/{oid}/refunds",
        json={"reason": "缺貨", "refundItems": [{"orderItemId": pot_item, "quantity": 2}]},
        headers=m.tea.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["amount"]["value"] == 420
    # the pots' reservation is released, and the tea seller is neither asked nor reminded
    assert stock(client, m.tea, m.pot)["totals"] == {"onHand": 10, "reserved": 0, "available": 10}
    doc = order_of(client, m.buyer, oid)
    assert [(c["reason"], c["refundId"]) for c in doc["unitCancellations"]] == [
        ("REFUNDED", r.json()["refundId"])
    ]
    m.process(oid)
    assert ship(client, m.tea, oid, [(pot_item, 1)]).status_code == 409
    assert fire(client, oid, SHIP_REMINDER) == "applied"
    assert "SHIP_REMINDER" in types(client, m.pottery) and "SHIP_REMINDER" not in types(
        client, m.tea
    )
    assert "UNITS_CANCELLED" in types(client, m.tea)  # "do not ship them"
    # the cup ships: nothing is left to ship, the order is SHIPPED
    assert ship(client, m.pottery, oid).json()["orderStatus"] == "SHIPPED"


def test_a_racing_cancel_and_shipment_of_the_same_units_one_wins(mariadb_url, make_client) -> None:
    m = open_market(make_client(mariadb_url))
    client, tea, pot = m.client, m.tea, m.pot
    order, pot_item, _ = m.order()
    oid = order["orderId"]
    m.process(oid)
    results = race(
        2,
        lambda i: (
            cancel(client, tea, oid, (pot_item, 3))
            if i == 0
            else ship(client, tea, oid, [(pot_item, 3)])
        ),
    )
    codes = Counter(r.status_code for r in results)
    assert codes in (Counter({200: 1, 409: 1}), Counter({201: 1, 409: 1})), [
        r.text for r in results
    ]
    totals = stock(client, tea, pot)["totals"]
    doc = order_of(client, m.buyer, oid)
    line = next(i for i in doc["items"] if i["orderItemId"] == pot_item)
    if codes[200]:  # cancelled: back in stock, nothing shipped
        assert totals == {"onHand": 10, "reserved": 0, "available": 10}
        assert line["cancelledQuantity"] == 3 and not doc["shipments"]
    else:  # shipped: gone from the warehouse, nothing cancelled
        assert totals == {"onHand": 7, "reserved": 0, "available": 7}
        assert "cancelledQuantity" not in line and len(doc["shipments"]) == 1
