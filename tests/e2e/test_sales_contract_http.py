"""Seeds/003 points over HTTP: every payment method on POST .../payments, the notes and
notifyCustomer of PUT .../status, VOID and corrected invoices, an idempotent receipt
confirmation (in test_fulfilment_http.py) and the COD ship reminder (test_timed_rules.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.test_payments_http import card, error, order_of, pay, place, refund
from tests.support.accounts import admin, verified_user, wait
from tests.support.catalog import seller


@pytest.fixture
def shop_on(make_client, database_url: str) -> Any:
    """(client, admin, seller, buyer) on SQLite and on MariaDB."""
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


def choose(client: Any, who: Any, order: dict[str, Any], method: str, **extra: Any) -> Any:
    body = {"paymentMethod": method, "amount": order["total"], **extra}
    return client.post(
        f"/api/sales/orders/{order['orderId']}/payments", json=body, headers=who.auth
    )


def notices(client: Any, who: Any, oid: str) -> list[dict[str, Any]]:
    wait(client)
    found = client.get("/api/notifications", params={"pageSize": 100}, headers=who.auth).json()
    return [n for n in found["notifications"] if n["data"].get("orderId") == oid]


def set_status(client: Any, boss: Any, oid: str, status: str, **extra: Any) -> Any:
    return client.put(
        f"/api/sales/orders/{oid}/status", json={"status": status, **extra}, headers=boss.auth
    )


def test_every_payment_method_is_accepted_and_may_change_how_an_unpaid_order_is_paid(
    shop_on,
) -> None:
    client, boss, shop, buyer = shop_on
    order = place(client, boss, shop, buyer)  # CREDIT_CARD at checkout
    oid = order["orderId"]

    r = choose(client, buyer, order, "BANK_TRANSFER")
    assert r.status_code == 200, r.text
    intent = r.json()
    assert intent["status"] == "PENDING" and intent["method"] == "BANK_TRANSFER"
    assert intent["amount"] == order["total"] and intent["expiresAt"] == order["expiresAt"]
    link = urlsplit(intent["paymentUrl"])
    assert link.path == f"/api/sales/orders/{oid}/pay" and link.query.startswith("sig=")
    page = client.get(f"{link.path}?{link.query}")  # the ECPay page opens without a token
    assert page.status_code == 200 and "AioCheckOut" in page.text
    now = order_of(client, buyer, order)
    assert now["paymentMethod"] == "BANK_TRANSFER" and now["paymentUrl"] == intent["paymentUrl"]

    again = choose(client, buyer, order, "BANK_TRANSFER")  # unchanged: no new event
    assert again.status_code == 200 and again.json() == intent
    assert order_of(client, buyer, order)["version"] == now["version"]
    r = choose(client, buyer, order, "MOBILE_PAYMENT")
    assert r.status_code == 200 and r.json()["paymentUrl"] == intent["paymentUrl"]

    # wrong amount, card details on a non-card method, another buyer, an unknown order
    r = choose(client, buyer, order, "COD", amount={"value": 1, "currency": "TWD"})
    assert r.status_code == 400 and error(r)["details"]["field"] == "amount.value"
    r = choose(client, buyer, order, "COD", paymentData={"cardDetails": card()})
    assert r.status_code == 400 and error(r)["details"]["field"] == "paymentData.cardDetails"
    assert choose(client, verified_user(client), order, "COD").status_code == 404

    r = choose(client, buyer, order, "COD")
    assert r.status_code == 200, r.text
    assert r.json() | {"amount": None} == {
        "orderId": oid,
        "status": "PENDING",
        "amount": None,
        "method": "COD",
        "paymentUrl": None,
        "expiresAt": None,  # a COD order does not expire unpaid
    }
    now = order_of(client, buyer, order)
    assert now["paymentMethod"] == "COD" and now["expiresAt"] is None and now["paymentUrl"] is None
    assert choose(client, buyer, order, "COD").status_code == 200  # the intent stands
    r = choose(client, buyer, order, "BANK_TRANSFER")  # it has no deadline to expire by
    assert r.status_code == 409 and error(r)["details"]["reason"] == "COD_ORDER"
    # the seller may process the COD order unpaid
    r = client.put(f"/api/sales/orders/{oid}/process", json={}, headers=shop.auth)
    assert r.status_code == 200, r.text
    events = client.get(f"/api/sales/orders/{oid}/timeline", headers=buyer.auth).json()["events"]
    assert [e["type"] for e in events].count("PaymentMethodChosen") == 3

    # A card-paid order takes no other method.
    paid = place(client, boss, shop, buyer)
    assert pay(client, buyer, paid).status_code == 200
    r = choose(client, buyer, paid, "MOBILE_PAYMENT")
    assert r.status_code == 409 and error(r)["details"]["reason"] == "ALREADY_PAID"


def test_status_updates_keep_their_notes_and_tell_the_buyer_only_when_asked(market) -> None:
    client, boss, shop, buyer = market
    quiet = place(client, boss, shop, buyer)["orderId"]
    r = set_status(client, boss, quiet, "PAID", notes="轉帳已對帳", notifyCustomer=False)
    assert r.status_code == 200 and r.json()["status"] == "PAID"
    r = set_status(client, boss, quiet, "PROCESSING", notes="已通知倉庫備貨")
    assert r.status_code == 200
    doc = order_of(client, buyer, {"orderId": quiet})  # the admin wrote: the buyer waits
    assert [(t["status"], t.get("notes")) for t in doc["timeline"]] == [
        ("CREATED", None),
        ("PAID", "轉帳已對帳"),
        ("PROCESSING", "已通知倉庫備貨"),
    ]
    told = notices(client, buyer, quiet)
    assert [n["type"] for n in told] == ["ORDER_STATUS_UPDATED"]  # PAID was not told
    assert told[0]["data"]["status"] == "PROCESSING" and "已通知倉庫備貨" in told[0]["body"]
    sellers = notices(client, shop, quiet)
    assert [n["type"] for n in sellers] == ["ORDER_PAID", "ORDER_PLACED"]  # sellers are told
    assert "轉帳已對帳" not in sellers[0]["body"]  # the note is the buyer's

    loud = place(client, boss, shop, buyer)["orderId"]
    r = set_status(client, boss, loud, "PAID", notes="已收到款項")  # notifyCustomer defaults on
    assert r.status_code == 200
    r = set_status(client, boss, loud, "CANCELLED", notes="缺貨", notifyCustomer=False)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    told = notices(client, buyer, loud)[::-1]
    assert [n["type"] for n in told] == ["ORDER_PAID", "REFUND_ISSUED"]  # not CANCELLED
    assert told[0]["body"].endswith("Note: 已收到款項")
    assert "ORDER_CANCELLED" in [n["type"] for n in notices(client, shop, loud)]
    doc = order_of(client, buyer, {"orderId": loud})
    assert doc["lastStatusUpdate"]["notifyCustomer"] is False
    assert doc["timeline"][-1] | {"timestamp": None} == {
        "status": "CANCELLED",
        "timestamp": None,
        "notes": "缺貨",
        "by": "admin",
    }
    r = set_status(client, boss, loud, "PAID", notes="x")  # no way back: nothing recorded
    assert r.status_code == 409
    assert (
        client.get(f"/api/sales/orders/{loud}", headers=buyer.auth).json()["version"]
        == (doc["version"])
    )


def invoice(client: Any, who: Any, oid: str) -> Any:
    return client.post(f"/api/sales/orders/{oid}/invoices", json={}, headers=who.auth)


def void(client: Any, who: Any, oid: str, invoice_id: str, reason: str = "重開") -> Any:
    return client.post(
        f"/api/sales/orders/{oid}/invoices/{invoice_id}/void",
        json={"reason": reason},
        headers=who.auth,
    )


def test_an_invoice_is_voided_by_hand_or_by_a_full_refund_and_a_corrected_one_follows(
    shop_on,
) -> None:
    client, boss, shop, buyer = shop_on
    order = place(client, boss, shop, buyer, qty=2, price=500)  # 1000 + 50 tax + 60 = 1110
    oid = order["orderId"]
    assert pay(client, buyer, order).status_code == 200
    first = invoice(client, buyer, oid)
    assert first.status_code == 201 and first.json()["total"]["value"] == 1110
    first_id = first.json()["invoiceId"]
    item = order["items"][0]["orderItemId"]
    r = refund(client, boss, order, refundItems=[{"orderItemId": item, "quantity": 1}])
    assert r.status_code == 200 and r.json()["amount"]["value"] == 525
    r = invoice(client, buyer, oid)
    assert r.status_code == 409 and error(r)["code"] == "INVOICE_ALREADY_EXISTS"

    assert void(client, buyer, oid, first_id).status_code == 403  # the buyer asks the seller
    stranger = seller(client, boss)
    assert void(client, stranger, oid, first_id).status_code == 404
    r = void(client, shop, oid, "no-such-invoice")
    assert r.status_code == 404 and error(r)["code"] == "INVOICE_NOT_FOUND"
    r = void(client, shop, oid, first_id, "部分退款，重開發票")
    assert r.status_code == 200, r.text
    assert r.json() | {"voidedAt": None} == {
        "invoiceId": first_id,
        "invoiceNumber": first.json()["invoiceNumber"],
        "orderId": oid,
        "status": "VOID",
        "voidedAt": None,
        "voidReason": "部分退款，重開發票",
    }
    r = void(client, boss, oid, first_id)
    assert r.status_code == 409 and error(r)["code"] == "INVALID_INVOICE_STATUS"

    r = invoice(client, buyer, oid)
    assert r.status_code == 201, r.text
    corrected = r.json()
    assert corrected["corrects"] == first_id
    assert corrected["invoiceNumber"] != first.json()["invoiceNumber"]
    assert [(i["orderItemId"], i["quantity"]) for i in corrected["items"]] == [(item, 1)]
    assert {k: corrected[k]["value"] for k in ("subtotal", "discount", "tax", "shipping")} == {
        "subtotal": 500,
        "discount": 0,
        "tax": 25,
        "shipping": 60,
    }
    assert corrected["total"]["value"] == 1110 - 525
    wait(client)
    listed = client.get(f"/api/sales/orders/{oid}/invoices", headers=buyer.auth).json()
    assert [(i["invoiceId"], i["status"]) for i in listed["invoices"]] == [
        (first_id, "VOID"),
        (corrected["invoiceId"], "ISSUED"),
    ]
    assert listed["invoices"][1]["total"] == corrected["total"]

    # The rest refunded: the corrected invoice is VOID by itself, and nothing is left to invoice.
    assert refund(client, boss, order, isFullRefund=True).status_code == 200
    wait(client)
    listed = client.get(f"/api/sales/orders/{oid}/invoices", headers=buyer.auth).json()
    assert [(i["status"], i.get("voidReason")) for i in listed["invoices"]] == [
        ("VOID", "部分退款，重開發票"),
        ("VOID", "FULLY_REFUNDED"),
    ]
    r = invoice(client, buyer, oid)
    assert r.status_code == 409 and error(r)["details"]["reason"] == "FULLY_REFUNDED"

    # Cancelling a paid, invoiced order voids its invoice.
    other = place(client, boss, shop, buyer)
    assert pay(client, buyer, other).status_code == 200
    assert invoice(client, buyer, other["orderId"]).status_code == 201
    r = client.put(
        f"/api/sales/orders/{other['orderId']}/cancel",
        json={"reason": "不要了"},
        headers=buyer.auth,
    )
    assert r.status_code == 200, r.text
    doc = order_of(client, buyer, other)
    assert [(i["status"], i["voidReason"]) for i in doc["invoices"]] == [
        ("VOID", "ORDER_CANCELLED")
    ]


def test_braces_in_a_users_reason_reach_the_notification_as_typed(market) -> None:
    client, boss, shop, buyer = market
    order = place(client, boss, shop, buyer)
    reason = "尺寸 {size} 不對 }{"
    r = client.put(
        f"/api/sales/orders/{order['orderId']}/cancel", json={"reason": reason}, headers=buyer.auth
    )
    assert r.status_code == 200, r.text
    told = notices(client, shop, order["orderId"])  # the projection did not stop on it
    assert told[0]["type"] == "ORDER_CANCELLED" and told[0]["body"].endswith(reason)
    paid = place(client, boss, shop, buyer)
    assert pay(client, buyer, paid).status_code == 200
    r = client.post(
        f"/api/sales/orders/{paid['orderId']}/disputes",
        json={"reason": reason, "text": "{}"},
        headers=buyer.auth,
    )
    assert r.status_code == 201, r.text
    told = notices(client, shop, paid["orderId"])
    assert told[0]["type"] == "DISPUTE_OPENED" and told[0]["body"].endswith(reason)
