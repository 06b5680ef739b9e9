"""Disputes over HTTP: the workflow end to end (SQLite and MariaDB), illegal steps (409), who
may see and do what, resolutions and their refunds, the lost-dispute flag, and a dispute refund
racing a return refund on one order (MariaDB)."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from tests.e2e.conftest import ClientFactory
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.aftersale import (
    CountingGateway,
    ask_return,
    assert_rebuilds_equal,
    delivered_order,
    dispute,
    error,
    kinds,
    money_sum,
    notes,
    ok,
    paid_order,
    refunded,
    resolve,
    step,
)
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product, warehouse
from tests.support.concurrency import race


@pytest.fixture
def market(make_client: ClientFactory, database_url: str) -> Any:
    """(client, admin, an approved seller, a verified buyer), on SQLite and on MariaDB."""
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


@pytest.fixture
def shop(make_client: ClientFactory) -> Any:
    """The same on SQLite only (the breadth of the rules)."""
    client = make_client()
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


# --- disputes -------------------------------------------------------------------------------
def test_a_dispute_is_argued_by_both_sides_and_resolved_with_a_partial_refund(
    market: Any,
) -> None:
    client, boss, seller_, buyer = market
    pid = stocked_product(client, boss, seller_, quantity=5, price=500)
    order = delivered_order(client, boss, buyer, (pid, 2))
    oid = order["orderId"]
    opened = ok(dispute(client, buyer, oid), 201)
    did = opened["disputeId"]
    assert opened["status"] == "OPEN" and opened["openerRole"] == "buyer"
    assert opened["sellerId"] == seller_.user_id and opened["statements"] == []
    assert "DISPUTE_OPENED" in kinds(client, seller_)

    path = f"/api/sales/disputes/{did}/statements"
    said = ok(client.post(path, json={"text": "已附出貨照片"}, headers=seller_.auth), 201)
    assert [s["role"] for s in said["statements"]] == ["seller"]
    assert "DISPUTE_STATEMENT" in kinds(client, buyer)
    ok(client.post(path, json={"text": "照片是別的商品"}, headers=buyer.auth), 201)
    wait(client)  # the admin reads another user's write
    queue = ok(client.get("/api/admin/disputes", headers=boss.auth))["disputes"]
    assert [d["disputeId"] for d in queue] == [did] and queue[0]["statementCount"] == 2

    done = ok(
        resolve(client, boss, did, "REFUND_PARTIAL", amount={"value": 200, "currency": "TWD"})
    )
    assert done["status"] == "RESOLVED"
    assert done["resolution"]["resolution"] == "REFUND_PARTIAL"
    assert done["resolution"]["refund"]["amount"]["value"] == 200.0
    assert done["resolution"]["refund"]["status"] == "COMPLETED"
    assert money_sum(refunded(client, buyer, oid)) == Decimal(200)
    assert "DISPUTE_RESOLVED" in kinds(client, buyer) and "DISPUTE_RESOLVED" in kinds(
        client, seller_
    )
    assert ok(client.get("/api/admin/disputes", headers=boss.auth))["disputes"] == []
    seen = ok(client.get(f"/api/sales/disputes/{did}", headers=seller_.auth))
    assert [s["text"] for s in seen["statements"]] == ["已附出貨照片", "照片是別的商品"]
    assert seen["resolution"]["refund"]["status"] == "COMPLETED"

    r = client.post(path, json={"text": "還有話說"}, headers=buyer.auth)
    assert r.status_code == 409 and error(r)["code"] == "DISPUTE_CLOSED"
    r = resolve(client, boss, did, "REJECTED")
    assert r.status_code == 409 and error(r)["code"] == "DISPUTE_CLOSED"
    stranger, rival = verified_user(client), seller(client, boss)
    for who in (stranger, rival):
        r = client.get(f"/api/sales/disputes/{did}", headers=who.auth)
        assert r.status_code == 404 and error(r)["code"] == "DISPUTE_NOT_FOUND"
        r = client.post(path, json={"text": "路人"}, headers=who.auth)
        assert r.status_code == 404
        assert dispute(client, who, oid).status_code == 404


def test_dispute_rules_and_resolutions(shop: Any) -> None:
    client, boss, seller_, buyer = shop
    pid = stocked_product(client, boss, seller_, quantity=20, price=500)
    unpaid = ok(_unpaid(client, buyer, pid), 201)
    r = dispute(client, buyer, unpaid["orderId"])
    assert r.status_code == 409 and error(r)["code"] == "INVALID_ORDER_STATUS"

    order = paid_order(client, buyer, (pid, 1))  # a paid order may be disputed before delivery
    oid = order["orderId"]
    for bad in ({"reason": ""}, {"text": ""}, {"note": "x"}, {"sellerId": buyer.user_id}):
        r = dispute(client, buyer, oid, **bad)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", (bad, r.text)
    did = ok(dispute(client, seller_, oid), 201)["disputeId"]  # the seller may open it too
    r = dispute(client, buyer, oid)
    assert r.status_code == 409 and error(r)["code"] == "DISPUTE_ALREADY_EXISTS"
    r = resolve(client, buyer, did, "REJECTED")
    assert r.status_code == 403
    for bad in (
        {"resolution": "REFUND_PARTIAL"},
        {"resolution": "REFUND_FULL", "amount": {"value": 1, "currency": "TWD"}},
        {"resolution": "REFUND_PARTIAL", "amount": {"value": 1.001, "currency": "TWD"}},
        {"resolution": "MAYBE"},
    ):
        r = resolve(client, boss, did, **bad)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", (bad, r.text)
    r = resolve(client, boss, did, "REFUND_PARTIAL", amount={"value": 99999, "currency": "TWD"})
    assert r.status_code == 422 and error(r)["code"] == "REFUND_FAILED"
    full = ok(resolve(client, boss, did, "REFUND_FULL"))["resolution"]["refund"]
    assert full["amount"]["value"] == order["total"]["value"]
    assert money_sum(refunded(client, buyer, oid)) == Decimal(str(order["total"]["value"]))

    other = paid_order(client, buyer, (pid, 1))
    rejected = ok(dispute(client, buyer, other["orderId"]), 201)["disputeId"]
    done = ok(resolve(client, boss, rejected, "REJECTED"))
    assert done["resolution"]["refund"] is None and refunded(client, buyer, other["orderId"]) == []
    wait(client)
    record = ok(
        client.get(f"/api/admin/sellers/{seller_.user_id}/dispute-record", headers=boss.auth)
    )
    assert record["disputesLost"] == 1 and record["flagged"] is False  # REJECTED is not lost


def _unpaid(client: Any, buyer: User, pid: str) -> Any:
    add_to_cart(client, buyer, pid, 1)
    return checkout(client, buyer, paymentMethod="CREDIT_CARD")


def test_a_buyer_names_the_seller_of_a_dispute_when_an_order_has_several(shop: Any) -> None:
    client, boss, seller_, buyer = shop
    second = seller(client, boss)
    mine = stocked_product(client, boss, seller_, price=300)
    theirs = stocked_product(client, boss, second, price=200)
    order = paid_order(client, buyer, (mine, 1), (theirs, 1))
    oid = order["orderId"]
    r = dispute(client, buyer, oid)
    assert r.status_code == 400 and error(r)["details"]["field"] == "sellerId"
    did = ok(dispute(client, buyer, oid, sellerId=second.user_id), 201)["disputeId"]
    r = client.get(f"/api/sales/disputes/{did}", headers=seller_.auth)
    assert r.status_code == 404  # the other seller of the order is no party
    assert (
        ok(client.get(f"/api/sales/orders/{oid}/disputes", headers=seller_.auth))["disputes"] == []
    )
    refund = ok(resolve(client, boss, did, "REFUND_FULL"))["resolution"]["refund"]
    assert refund["amount"]["value"] == 210.0  # that seller's item with tax, not the shipping


def test_a_seller_losing_too_many_disputes_is_flagged_for_admin_review(
    make_client: ClientFactory,
) -> None:
    client = make_client(dispute_losses_to_flag=2)
    boss = admin(client)
    seller_, buyer = seller(client, boss), verified_user(client)
    pid = stocked_product(client, boss, seller_, quantity=20, price=100)
    dids = [
        ok(dispute(client, buyer, paid_order(client, buyer, (pid, 1))["orderId"]), 201)["disputeId"]
        for _ in range(3)
    ]
    ok(resolve(client, boss, dids[0], "REFUND_PARTIAL", amount={"value": 10, "currency": "TWD"}))
    ok(resolve(client, boss, dids[1], "REJECTED"))
    wait(client)
    assert ok(client.get("/api/admin/sellers/dispute-records", headers=boss.auth))["sellers"] == []
    assert "SELLER_FLAGGED" not in kinds(client, boss)
    ok(resolve(client, boss, dids[2], "REFUND_FULL"))
    wait(client)
    flagged = ok(client.get("/api/admin/sellers/dispute-records", headers=boss.auth))["sellers"]
    assert [(s["sellerId"], s["lostInWindow"], s["windowDays"]) for s in flagged] == [
        (seller_.user_id, 2, 90)
    ]
    told = [n for n in notes(client, boss) if n["type"] == "SELLER_FLAGGED"]
    assert len(told) == 1 and told[0]["data"]["sellerId"] == seller_.user_id
    assert client.get("/api/admin/sellers/dispute-records", headers=seller_.auth).status_code == 403

    path = f"/api/admin/sellers/{seller_.user_id}/dispute-record/clear-flag"
    cleared = ok(client.post(path, json={"note": "已改善"}, headers=boss.auth))
    assert cleared["flagged"] is False and cleared["clearNote"] == "已改善"
    r = client.post(path, json={}, headers=boss.auth)
    assert r.status_code == 409
    wait(client)
    assert ok(client.get("/api/admin/sellers/dispute-records", headers=boss.auth))["sellers"] == []
    assert_rebuilds_equal(client, "aftersale", "notifications")


# --- the race -------------------------------------------------------------------------------
def _receive_or_resolve(
    client: Any, seller_: User, boss: User, rid: str, did: str, where: str, n: int
) -> Any:
    if n == 0:
        return step(client, seller_, rid, "receive", warehouseId=where)
    return resolve(client, boss, did, "REFUND_FULL")


@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_a_dispute_refund_racing_a_return_refund_never_exceeds_the_payment(market: Any) -> None:
    client, boss, seller_, buyer = market
    gateway = CountingGateway()
    client.app.state.card_gateway = gateway
    pid = stocked_product(client, boss, seller_, quantity=20, price=400)
    where = warehouse(client, boss)
    paid_in = Decimal(0)
    for _ in range(2):
        order = delivered_order(client, boss, buyer, (pid, 2))
        oid = order["orderId"]
        rid = ok(ask_return(client, buyer, order, 2), 201)["returnId"]
        ok(step(client, seller_, rid, "approve"))
        ok(step(client, buyer, rid, "ship-back", carrier="c", trackingNumber="t"))
        did = ok(dispute(client, buyer, oid), 201)["disputeId"]
        answers = race(2, partial(_receive_or_resolve, client, seller_, boss, rid, did, where))
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        total = Decimal(str(order["total"]["value"]))
        paid_in += total
        refunds = refunded(client, buyer, oid)
        assert money_sum(refunds) <= total
        # whichever came second got what was left: together exactly the payment
        assert money_sum(refunds) == total, refunds
    assert sum(gateway.refunded, Decimal(0)) == paid_in  # the card got back exactly that
