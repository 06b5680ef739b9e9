"""Reviews over HTTP: who may review what and when, edits, the seller's reply, moderation, and
the rating summaries on reviews lists, product detail and search (SQLite and MariaDB)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import ClientFactory, container_of
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product


@pytest.fixture
def market(make_client: ClientFactory, database_url: str) -> Any:
    """(client, admin, an approved seller, a verified buyer), on SQLite and on MariaDB."""
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def delivered_order(
    client: TestClient, boss: User, buyer: User, *product_ids: str, deliver: bool = True
) -> str:
    for pid in product_ids:
        add_to_cart(client, buyer, pid)
    r = checkout(client, buyer, paymentMethod="COD")
    assert r.status_code == 201, r.text
    oid = str(r.json()["orderId"])
    if deliver:
        r = client.put(
            f"/api/sales/orders/{oid}/status", json={"status": "PROCESSING"}, headers=boss.auth
        )
        assert r.status_code == 200, r.text
        shipped = client.post(
            f"/api/sales/orders/{oid}/shipments",
            json={"carrier": "BLACK_CAT", "trackingNumber": f"TC{oid[:8].upper()}"},
            headers=boss.auth,
        )
        assert shipped.status_code == 201, shipped.text
        r = client.put(
            f"/api/sales/orders/{oid}/status", json={"status": "DELIVERED"}, headers=boss.auth
        )
        assert r.status_code == 200, r.text
    return oid


def review(
    client: TestClient, buyer: User, oid: str, pid: str, product: int = 9, shop: int = 8, **kw: Any
) -> Any:
    body = {"productId": pid, "productScore": product, "sellerScore": shop, **kw}
    return client.post(f"/api/sales/orders/{oid}/reviews", json=body, headers=buyer.auth)


def test_a_buyer_reviews_a_delivered_order_once_and_the_seller_is_told(market: Any) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop, name="保濕乳液")
    pending = delivered_order(client, boss, buyer, pid, deliver=False)
    r = review(client, buyer, pending, pid)
    assert r.status_code == 409 and error(r)["code"] == "INVALID_ORDER_STATUS"

    oid = delivered_order(client, boss, buyer, pid)
    r = review(client, buyer, oid, pid, text="  很好用 ", images=["https://img.example.com/a.jpg"])
    assert r.status_code == 201, r.text
    written = r.json()
    assert written["productScore"] == 9 and written["sellerScore"] == 8
    assert written["text"] == "很好用" and written["images"] == ["https://img.example.com/a.jpg"]
    assert written["productId"] == pid and written["sellerId"] == shop.user_id
    assert written["reply"] is None and written["edited"] is False
    assert "X-Event-Position" in r.headers

    again = review(client, buyer, oid, pid, product=1)
    assert again.status_code == 409 and error(again)["code"] == "REVIEW_ALREADY_EXISTS"
    stranger = verified_user(client)
    r = review(client, stranger, oid, pid)
    assert r.status_code == 404 and error(r)["code"] == "ORDER_NOT_FOUND"
    other = stocked_product(client, boss, shop, name="洗髮精")
    r = review(client, buyer, oid, other)
    assert r.status_code == 400 and error(r)["details"]["field"] == "productId"

    wait(client)
    notes = client.get("/api/notifications", headers=shop.auth).json()["notifications"]
    received = [n for n in notes if n["type"] == "REVIEW_RECEIVED"]
    assert len(received) == 1
    assert received[0]["data"]["reviewId"] == written["reviewId"]
    assert "保濕乳液" in received[0]["body"]
    one = client.get(f"/api/reviews/{written['reviewId']}")
    assert one.status_code == 200 and one.json()["text"] == "很好用"
    assert not {"hidden", "buyerId", "orderId"} & set(one.json())  # private to author and admins


def test_bad_reviews_are_refused_with_every_field_named(market: Any) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop)
    oid = delivered_order(client, boss, buyer, pid)
    body = {
        "productId": pid,
        "productScore": 0,
        "sellerScore": "9",
        "text": "x" * 2001,
        "images": [f"https://img.example.com/{n}.jpg" for n in range(6)],
    }
    r = client.post(f"/api/sales/orders/{oid}/reviews", json=body, headers=buyer.auth)
    assert r.status_code == 400
    fields = {p["field"] for p in error(r)["details"]["errors"]}
    assert {"productScore", "sellerScore", "text", "images"} <= fields
    for bad in (
        {"productScore": 11},
        {"productScore": 9.5},
        {"productScore": True},
        {"images": ["javascript:alert(1)"]},
        {"text": "bell\x07"},
        {"text": "正品保證，絕非仿冒品"},  # a default banned keyword
        {"rating": 5},  # unknown field
    ):
        r = review(client, buyer, oid, pid, **bad)
        assert r.status_code == 400, (bad, r.text)
        assert error(r)["code"] == "VALIDATION_ERROR"
    r = client.get(f"/api/catalog/products/{pid}/reviews")
    assert r.json()["summary"]["count"] == 0  # nothing was written by any refusal


def test_ratings_show_on_lists_detail_and_search_and_sort_it(market: Any) -> None:
    client, boss, shop, buyer = market
    good = stocked_product(client, boss, shop, name="好評商品")
    fair = stocked_product(client, boss, shop, name="普通商品")
    unrated = stocked_product(client, boss, shop, name="新商品")
    second = verified_user(client)
    review(client, buyer, delivered_order(client, boss, buyer, good, fair), good, 10, 9)
    review(client, second, delivered_order(client, boss, second, good), good, 7, 6)
    oid = delivered_order(client, boss, buyer, fair)
    assert review(client, buyer, oid, fair, 6, 10, text="普通").status_code == 201

    wait(client)
    listed = client.get(f"/api/catalog/products/{good}/reviews").json()
    assert listed["summary"]["average"] == 8.5 and listed["summary"]["count"] == 2
    assert listed["summary"]["histogram"]["10"] == 1 and listed["summary"]["histogram"]["7"] == 1
    assert [x["productScore"] for x in listed["reviews"]] == [7, 10]  # newest first
    highest = client.get(f"/api/catalog/products/{good}/reviews", params={"sort": "highest"})
    assert [x["productScore"] for x in highest.json()["reviews"]] == [10, 7]
    lowest = client.get(f"/api/catalog/products/{good}/reviews", params={"sort": "lowest"})
    assert [x["productScore"] for x in lowest.json()["reviews"]] == [7, 10]
    assert client.get(
        f"/api/catalog/products/{good}/reviews", params={"sort": "best"}
    ).status_code in (400, 422)

    detail = client.get(f"/api/catalog/products/{good}").json()
    assert detail["rating"] == 8.5 and detail["reviewCount"] == 2
    assert client.get(f"/api/catalog/products/{unrated}").json()["rating"] is None

    ranked = client.get("/api/catalog/products", params={"sort": "rating"}).json()["products"]
    assert [p["productId"] for p in ranked] == [good, fair, unrated]
    assert [p["rating"] for p in ranked] == [8.5, 6.0, None]
    assert [p["reviewCount"] for p in ranked] == [2, 1, 0]

    sellers = client.get(f"/api/sellers/{shop.user_id}/reviews").json()
    assert sellers["summary"]["count"] == 3
    assert sellers["summary"]["average"] == 8.3  # (9 + 6 + 10) / 3, one decimal
    assert client.get(f"/api/sellers/{buyer.user_id}/reviews").status_code == 404
    assert client.get("/api/sellers/not-an-id/reviews").status_code == 404
    assert client.get("/api/catalog/products/not-an-id/reviews").status_code == 404


def test_the_buyer_edits_within_thirty_days_and_the_averages_follow(market: Any) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop)
    oid = delivered_order(client, boss, buyer, pid)
    rid = review(client, buyer, oid, pid, 10, 10).json()["reviewId"]
    r = client.put(f"/api/reviews/{rid}", json={"productScore": 4}, headers=buyer.auth)
    assert r.status_code == 200 and r.json()["productScore"] == 4 and r.json()["edited"] is True
    assert r.json()["sellerScore"] == 10  # left out: kept
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").json()["rating"] == 4.0
    summary = client.get(f"/api/catalog/products/{pid}/reviews").json()["summary"]
    assert summary["histogram"]["10"] == 0 and summary["histogram"]["4"] == 1

    stranger = verified_user(client)
    r = client.put(f"/api/reviews/{rid}", json={"productScore": 1}, headers=stranger.auth)
    assert r.status_code == 404 and error(r)["code"] == "REVIEW_NOT_FOUND"
    assert client.put(f"/api/reviews/{rid}", json={}, headers=buyer.auth).status_code == 400
    r = client.put(f"/api/reviews/{rid}", json={"text": None}, headers=buyer.auth)
    assert r.status_code == 400
    # History is kept: the review's events are Written then Edited.
    container = container_of(client)
    events = [type(e).__name__ for e in container.app.events.get(UUID(rid))]
    assert events == ["Written", "Edited"]


def test_a_review_older_than_thirty_days_can_no_longer_be_edited(market: Any) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop)
    oid = delivered_order(client, boss, buyer, pid)
    container = container_of(client)
    real = container.bus.clock
    container.bus.clock = lambda: real() - timedelta(days=30, minutes=1)  # written back then
    rid = review(client, buyer, oid, pid).json()["reviewId"]
    container.bus.clock = real
    r = client.put(f"/api/reviews/{rid}", json={"productScore": 5}, headers=buyer.auth)
    assert r.status_code == 409 and error(r)["code"] == "REVIEW_NOT_EDITABLE"


def test_the_seller_replies_once_and_no_one_else_can(market: Any) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop)
    rid = review(client, buyer, delivered_order(client, boss, buyer, pid), pid).json()["reviewId"]
    rival = seller(client, boss)
    r = client.post(f"/api/reviews/{rid}/reply", json={"text": "謝謝"}, headers=rival.auth)
    assert r.status_code == 404 and error(r)["code"] == "REVIEW_NOT_FOUND"
    r = client.post(f"/api/reviews/{rid}/reply", json={"text": "謝謝"}, headers=buyer.auth)
    assert r.status_code == 403
    r = client.post(f"/api/reviews/{rid}/reply", json={"text": ""}, headers=shop.auth)
    assert r.status_code == 400
    r = client.post(f"/api/reviews/{rid}/reply", json={"text": "謝謝您的支持"}, headers=shop.auth)
    assert r.status_code == 201 and r.json()["reply"]["text"] == "謝謝您的支持"
    r = client.post(f"/api/reviews/{rid}/reply", json={"text": "再次感謝"}, headers=shop.auth)
    assert r.status_code == 409 and error(r)["code"] == "REVIEW_ALREADY_REPLIED"
    wait(client)
    shown = client.get(f"/api/catalog/products/{pid}/reviews").json()["reviews"][0]
    assert shown["reply"]["text"] == "謝謝您的支持" and shown["reply"]["repliedAt"]


def test_a_hidden_review_leaves_every_list_and_average_until_restored(market: Any) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop)
    rid = review(client, buyer, delivered_order(client, boss, buyer, pid), pid, 2, 3).json()[
        "reviewId"
    ]
    second = verified_user(client)
    review(client, second, delivered_order(client, boss, second, pid), pid, 8, 9)
    path = f"/api/reviews/{rid}"
    assert (
        client.post(f"{path}/hide", json={"reason": "spam"}, headers=shop.auth).status_code == 403
    )
    assert client.post(f"{path}/hide", json={}, headers=boss.auth).status_code == 400
    r = client.post(f"{path}/hide", json={"reason": "含個人資料"}, headers=boss.auth)
    assert r.status_code == 200 and r.json()["hidden"] is True
    again = client.post(f"{path}/hide", json={"reason": "again"}, headers=boss.auth)
    assert again.status_code == 409

    wait(client)
    public = client.get(f"/api/catalog/products/{pid}/reviews").json()
    assert [x["productScore"] for x in public["reviews"]] == [8]
    assert public["summary"]["average"] == 8.0 and public["summary"]["count"] == 1
    assert client.get(f"/api/catalog/products/{pid}").json()["rating"] == 8.0
    assert client.get(f"/api/sellers/{shop.user_id}/reviews").json()["summary"]["average"] == 9.0
    assert client.get(path).status_code == 404
    moderated = client.get(f"/api/catalog/products/{pid}/reviews", headers=boss.auth).json()
    assert [x["hidden"] for x in moderated["reviews"]] == [False, True]
    assert moderated["reviews"][1]["hiddenReason"] == "含個人資料"
    assert all(x["orderId"] for x in moderated["reviews"])

    r = client.post(f"{path}/restore", json={"reason": "申訴成立"}, headers=boss.auth)
    assert r.status_code == 200 and r.json()["hidden"] is False
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").json()["rating"] == 5.0
    assert client.get(f"/api/catalog/products/{pid}/reviews").json()["summary"]["count"] == 2


def test_two_racing_submissions_of_one_review_leave_exactly_one(market: Any) -> None:
    client, boss, shop, buyer = market
    pid = stocked_product(client, boss, shop)
    oid = delivered_order(client, boss, buyer, pid)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda n: review(client, buyer, oid, pid, n + 1), range(4)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409, 409], [r.text for r in answers]
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}/reviews").json()["summary"]["count"] == 1
    assert client.get(f"/api/catalog/products/{pid}").json()["reviewCount"] == 1
