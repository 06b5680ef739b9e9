"""The back office over HTTP. Moderation: seller applications refused (and made again), the
product review queue (SHOPLEDGER_PRODUCT_REVIEW=on), categories renamed, moved and deleted.
Customer records (seeds/000 顧客管理): tags, the user list filtered by tag, private notes, a
customer's orders and spend (paid minus refunded).

One journey per workflow on SQLite and MariaDB; the breadth (authorization, illegal
transitions, what the public can see of a waiting product) on SQLite."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ClientFactory
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import (
    add_to_cart,
    category,
    checkout,
    product,
    receive,
    seller,
    warehouse,
)


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def notifications(client: TestClient, user: User) -> list[dict[str, Any]]:
    r = client.get("/api/notifications", headers=user.auth)
    assert r.status_code == 200, r.text
    return list(r.json()["notifications"])


def search_ids(client: TestClient, who: User | None = None, **params: Any) -> list[str]:
    headers = who.auth if who is not None else {}
    r = client.get("/api/catalog/products", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [p["productId"] for p in r.json()["products"]]


def queue_ids(client: TestClient, boss: User) -> list[str]:
    r = client.get("/api/catalog/review-queue", headers=boss.auth)
    assert r.status_code == 200, r.text
    return [p["productId"] for p in r.json()["products"]]


# --- journeys (SQLite and MariaDB, one app: booting one costs seconds on MariaDB) -----------
def test_back_office_journeys(make_client: ClientFactory, database_url: str) -> None:
    client = make_client(database_url, product_review="on")
    boss = admin(client)
    moderation_journey(client, boss)
    customer_records_journey(client, boss)


def moderation_journey(client: TestClient, boss: User) -> None:
    # A seller application refused with a reason, then made again and approved.
    applicant = verified_user(client)
    r = client.post(
        "/api/users/me/seller-application", json={"shopName": "阿明茶行"}, headers=applicant.auth
    )
    assert r.status_code == 202, r.text
    r = client.post(
        f"/api/admin/sellers/{applicant.user_id}/reject",
        json={"reason": "請補上營業登記"},
        headers=boss.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["sellerApplication"]["status"] == "rejected"
    assert r.json()["role"] == "buyer"
    wait(client)
    told = notifications(client, applicant)
    assert told[0]["type"] == "SELLER_REJECTED" and told[0]["data"]["reason"] == "請補上營業登記"
    me = client.get("/api/users/me", headers=applicant.auth).json()
    assert me["sellerApplication"]["rejectionReason"] == "請補上營業登記"
    r = client.post(
        "/api/users/me/seller-application",
        json={"shopName": "阿明茶行", "description": "已補件"},
        headers=applicant.auth,
    )
    assert r.status_code == 202, r.text
    assert client.post(
        f"/api/admin/sellers/{applicant.user_id}/approve", headers=boss.auth
    ).is_success

    # A new product waits for review; rejected, edited (back in the queue), approved.
    shop = seller(client, boss)
    buyer = verified_user(client)
    tea = category(client, boss, "茶葉")
    made = product(client, shop, tea, name="凍頂烏龍茶")
    pid = made["productId"]
    assert made["reviewStatus"] == "pending" and made["status"] == "active"
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").status_code == 404
    assert pid not in search_ids(client, q="烏龍")
    assert (
        client.get(f"/api/catalog/products/{pid}", headers=shop.auth).json()["reviewStatus"]
        == "pending"
    )
    assert queue_ids(client, boss) == [pid]
    r = client.post(
        f"/api/catalog/products/{pid}/reject", json={"reason": "圖片不足"}, headers=boss.auth
    )
    assert r.status_code == 200 and r.json()["reviewStatus"] == "rejected"
    assert r.json()["reviewReason"] == "圖片不足"
    wait(client)
    assert notifications(client, shop)[0]["type"] == "PRODUCT_REJECTED"
    r = client.put(
        f"/api/catalog/products/{pid}",
        json={"images": ["https://img.example.com/oolong.jpg"]},
        headers=shop.auth,
    )
    assert r.status_code == 200 and r.json()["reviewStatus"] == "pending"
    r = client.post(f"/api/catalog/products/{pid}/approve", headers=boss.auth)
    assert r.status_code == 200 and r.json()["reviewStatus"] == "approved"
    assert client.post(f"/api/catalog/products/{pid}/approve", headers=boss.auth).status_code == 409
    wait(client)
    public = client.get(f"/api/catalog/products/{pid}").json()
    assert public["name"] == "凍頂烏龍茶" and "reviewStatus" not in public
    assert pid in search_ids(client, q="烏龍")

    # An edit of the live product waits; the public keeps the live version until approval.
    r = client.put(
        f"/api/catalog/products/{pid}", json={"name": "凍頂高山烏龍茶"}, headers=shop.auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "凍頂烏龍茶"
    assert r.json()["pendingChanges"] == {"name": "凍頂高山烏龍茶"}
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").json()["name"] == "凍頂烏龍茶"
    assert pid not in search_ids(client, q="高山")
    receive(client, shop, pid, warehouse(client, boss), 5)
    add_to_cart(client, buyer, pid)  # the live version stays on sale
    assert client.post(f"/api/catalog/products/{pid}/approve", headers=boss.auth).is_success
    wait(client)
    assert client.get(f"/api/catalog/products/{pid}").json()["name"] == "凍頂高山烏龍茶"
    assert pid in search_ids(client, q="高山")

    # Categories: renamed, moved (never under their own subtree), deleted only when empty.
    drinks = category(client, boss, "飲品")
    green = category(client, boss, "綠茶", parent=tea)
    r = client.put(f"/api/catalog/categories/{tea}", json={"name": "台灣茶"}, headers=boss.auth)
    assert r.status_code == 200 and r.json()["name"] == "台灣茶"
    r = client.put(f"/api/catalog/categories/{tea}", json={"parentId": green}, headers=boss.auth)
    assert r.status_code == 409 and error(r)["code"] == "CONFLICT"
    r = client.put(f"/api/catalog/categories/{tea}", json={"parentId": drinks}, headers=boss.auth)
    assert r.status_code == 200 and r.json()["depth"] == 1
    wait(client)
    tree = client.get("/api/catalog/categories").json()["categories"]
    moved = next(c for c in tree if c["categoryId"] == drinks)["children"][0]
    assert moved["name"] == "台灣茶" and moved["children"][0]["depth"] == 2
    assert pid in search_ids(client, categoryId=drinks)  # the subtree came along
    r = client.delete(f"/api/catalog/categories/{drinks}", headers=boss.auth)
    assert r.status_code == 409  # has a subcategory
    r = client.delete(f"/api/catalog/categories/{tea}", headers=boss.auth)
    assert r.status_code == 409  # has a subcategory and a product
    assert client.delete(f"/api/catalog/categories/{green}", headers=boss.auth).status_code == 204
    wait(client)
    r = client.post(
        "/api/catalog/categories", json={"name": "x", "parentId": green}, headers=boss.auth
    )
    assert r.status_code == 400 and error(r)["details"]["field"] == "parentId"
    assert green not in str(client.get("/api/catalog/categories").json())


# --- breadth (SQLite) -----------------------------------------------------------------------
def test_a_waiting_product_is_for_its_seller_and_admins_only(make_client: ClientFactory) -> None:
    """Admin-only routes (403 to sellers and buyers), another seller's waiting product (404),
    no cart, no public search (any query), the queue oldest first, decisions taken once."""
    client = make_client(product_review="on")
    boss = admin(client)
    shop, other = seller(client, boss), seller(client, boss)
    buyer = verified_user(client)
    cat = category(client, boss)
    live = product(client, shop, cat, name="高山茶 禮盒", price=300)["productId"]
    assert client.post(f"/api/catalog/products/{live}/approve", headers=boss.auth).is_success
    waiting = product(client, shop, cat, name="高山茶 新品", price=300)["productId"]
    rejected = product(client, shop, cat, name="冬茶", price=250)["productId"]
    r = client.put(f"/api/catalog/products/{live}", json={"name": "高山茶 春季"}, headers=shop.auth)
    assert r.json()["reviewStatus"] == "pending"
    wait(client)
    assert queue_ids(client, boss) == [waiting, rejected, live]

    for who in (shop, buyer):
        calls = [
            client.get("/api/catalog/review-queue", headers=who.auth),
            client.post(f"/api/catalog/products/{waiting}/approve", headers=who.auth),
            client.post(
                f"/api/catalog/products/{waiting}/reject", json={"reason": "no"}, headers=who.auth
            ),
            client.put(f"/api/catalog/categories/{cat}", json={"name": "y"}, headers=who.auth),
            client.delete(f"/api/catalog/categories/{cat}", headers=who.auth),
            client.post(
                f"/api/admin/sellers/{buyer.user_id}/reject",
                json={"reason": "no"},
                headers=who.auth,
            ),
        ]
        assert [r.status_code for r in calls] == [403] * len(calls)
    assert client.get("/api/catalog/review-queue").status_code == 401

    for caller in (None, buyer, other):
        r = client.get(f"/api/catalog/products/{waiting}", headers=caller.auth if caller else {})
        assert r.status_code == 404 and error(r)["code"] == "PRODUCT_NOT_FOUND"
    r = client.put(f"/api/catalog/products/{waiting}", json={"name": "搶"}, headers=other.auth)
    assert r.status_code == 404
    r = client.post(
        "/api/cart/items", json={"productId": waiting, "quantity": 1}, headers=buyer.auth
    )
    assert r.status_code == 404 and error(r)["code"] == "PRODUCT_NOT_FOUND"
    public = client.get(f"/api/catalog/products/{live}", headers=other.auth).json()
    assert public["name"] == "高山茶 禮盒" and "pendingChanges" not in public
    mine = client.get(
        "/api/catalog/products", params={"sellerId": "me", "status": "all"}, headers=shop.auth
    ).json()["products"]
    assert {p["productId"]: p["reviewStatus"] for p in mine} == {
        live: "pending",
        waiting: "pending",
        rejected: "pending",
    }

    r = client.post(
        f"/api/catalog/products/{rejected}/reject", json={"reason": "x"}, headers=boss.auth
    )
    assert r.status_code == 200
    r = client.post(
        f"/api/catalog/products/{rejected}/reject", json={"reason": "x"}, headers=boss.auth
    )
    assert r.status_code == 409 and error(r)["code"] == "CONFLICT"
    r = client.post(f"/api/catalog/products/{rejected}/approve", headers=boss.auth)
    assert r.status_code == 409
    wait(client)

    @settings(
        max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        q=st.sampled_from([None, "高山茶", "新品", "春季", "冬茶", "茶"]),
        category_id=st.sampled_from([None, cat]),
        seller_id=st.sampled_from([None, shop.user_id]),
        sort=st.sampled_from(["relevance", "price", "-price", "newest", "bestselling", "rating"]),
        max_price=st.sampled_from([None, 280, 1000]),
        caller=st.sampled_from([None, buyer, other]),
    )
    def search(**params: Any) -> None:
        caller = params.pop("caller")
        names = {"category_id": "categoryId", "seller_id": "sellerId", "max_price": "maxPrice"}
        query = {names.get(k, k): v for k, v in params.items() if v is not None}
        found = search_ids(client, caller, **query)
        assert waiting not in found and rejected not in found
        if params["q"] in ("新品", "春季", "冬茶"):  # only versions never approved say this
            assert found == []

    search()

    # Stocked while waiting, it is on sale as soon as it is approved.
    receive(client, shop, waiting, warehouse(client, boss), 3)
    assert client.post(f"/api/catalog/products/{waiting}/approve", headers=boss.auth).is_success
    add_to_cart(client, buyer, waiting)
    assert checkout(client, buyer, paymentMethod="COD").status_code == 201


def test_review_off_category_rules_and_customer_record_rules(make_client: ClientFactory) -> None:
    client = make_client()  # review off: products go live at once
    boss = admin(client)
    shop = seller(client, boss)
    a = category(client, boss, "A")
    b = category(client, boss, "B", parent=a)
    category(client, boss, "C")
    made = product(client, shop, a)
    pid = made["productId"]
    assert made["reviewStatus"] == "approved"
    wait(client)
    assert pid in search_ids(client) and queue_ids(client, boss) == []
    decisions: list[tuple[str, dict[str, Any] | None]] = [
        ("approve", None),
        ("reject", {"reason": "x"}),
    ]
    for action, body in decisions:
        r = client.post(f"/api/catalog/products/{pid}/{action}", json=body, headers=boss.auth)
        assert r.status_code == 409 and error(r)["code"] == "CONFLICT"
    for bad in ({}, {"reason": "x", "extra": 1}):
        r = client.post(f"/api/catalog/products/{pid}/reject", json=bad, headers=boss.auth)
        assert r.status_code == 400
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        client.post(f"/api/catalog/products/{missing}/approve", headers=boss.auth).status_code
        == 404
    )

    for under in (a, b):
        r = client.put(f"/api/catalog/categories/{a}", json={"parentId": under}, headers=boss.auth)
        assert r.status_code == 409, under
    r = client.put(f"/api/catalog/categories/{b}", json={"parentId": None}, headers=boss.auth)
    assert r.status_code == 200 and r.json()["parentId"] is None and r.json()["depth"] == 0
    r = client.put(f"/api/catalog/categories/{b}", json={"name": "c"}, headers=boss.auth)
    assert r.status_code == 409  # a root named C exists (names compare without case)
    for change in ({}, {"name": " "}, {"name": "x", "extra": 1}):
        r = client.put(f"/api/catalog/categories/{b}", json=change, headers=boss.auth)
        assert r.status_code == 400, change
    r = client.put(f"/api/catalog/categories/{b}", json={"parentId": missing}, headers=boss.auth)
    assert r.status_code == 400 and error(r)["details"]["field"] == "parentId"
    r = client.put(f"/api/catalog/categories/{missing}", json={"name": "x"}, headers=boss.auth)
    assert r.status_code == 404
    r = client.delete(f"/api/catalog/categories/{a}", headers=boss.auth)
    assert r.status_code == 409 and error(r)["details"]["reason"] == "HAS_PRODUCTS"
    assert client.delete(f"/api/catalog/categories/{b}", headers=boss.auth).status_code == 204
    assert client.delete(f"/api/catalog/categories/{b}", headers=boss.auth).status_code == 404
    r = client.post(
        "/api/catalog/products",
        json={
            "name": "n",
            "description": "d",
            "categoryId": b,
            "price": {"value": 1, "currency": "TWD"},
        },
        headers=shop.auth,
    )
    assert r.status_code == 400 and error(r)["details"]["field"] == "categoryId"
    category(client, boss, "B")  # the name is free again once its category is gone
    customer_records_breadth(client, boss, shop)


# --- customer records -------------------------------------------------------------------------
CARD = {
    "number": "4242424242424242",
    "expiryMonth": 12,
    "expiryYear": 2031,
    "cvv": "123",
    "holderName": "WANG XIAO MING",
}


def tag(client: TestClient, boss: User, user: User, value: str) -> Any:
    return client.post(f"/api/users/{user.user_id}/tags", json={"tag": value}, headers=boss.auth)


def tagged(client: TestClient, boss: User, value: str) -> set[str]:
    r = client.get("/api/users", params={"tag": value, "pageSize": 100}, headers=boss.auth)
    assert r.status_code == 200, r.text
    return {u["userId"] for u in r.json()["users"]}


def paid_order(client: TestClient, buyer: User, pid: str, qty: int) -> dict[str, Any]:
    add_to_cart(client, buyer, pid, qty)
    r = checkout(client, buyer, paymentMethod="CREDIT_CARD")
    assert r.status_code == 201, r.text
    order = dict(r.json())
    r = client.post(
        f"/api/sales/orders/{order['orderId']}/payments",
        json={
            "paymentMethod": "CREDIT_CARD",
            "paymentData": {"cardDetails": CARD},
            "amount": order["total"],
        },
        headers=buyer.auth,
    )
    assert r.status_code == 200, r.text
    return order


def customer_records_journey(client: TestClient, boss: User) -> None:
    """Tags, the user list filtered by tag, private notes, orders and spend."""
    shop = seller(client, boss)
    buyer, other = verified_user(client), verified_user(client)

    r = tag(client, boss, buyer, "VIP")
    assert r.status_code == 201 and r.json() == {"userId": buyer.user_id, "tags": ["VIP"]}
    assert tag(client, boss, buyer, " wholesale ").json()["tags"] == ["VIP", "wholesale"]
    assert tag(client, boss, other, "wholesale").status_code == 201
    r = tag(client, boss, buyer, "vip")
    assert r.status_code == 409 and error(r)["code"] == "CONFLICT"
    assert tagged(client, boss, "vip") == {buyer.user_id}
    assert tagged(client, boss, "WHOLESALE") == {buyer.user_id, other.user_id}
    profile = client.get(f"/api/users/{buyer.user_id}", headers=boss.auth).json()
    assert profile["tags"] == ["VIP", "wholesale"]
    r = client.delete(f"/api/users/{other.user_id}/tags/Wholesale", headers=boss.auth)
    assert r.status_code == 204
    assert tagged(client, boss, "wholesale") == {buyer.user_id}

    r = client.post(
        f"/api/users/{buyer.user_id}/notes", json={"text": "偏好週末收貨"}, headers=boss.auth
    )
    assert r.status_code == 201, r.text
    assert r.json()["text"] == "偏好週末收貨" and r.json()["authorId"] == boss.user_id
    client.post(
        f"/api/users/{buyer.user_id}/notes", json={"text": "曾反映包裝破損"}, headers=boss.auth
    )
    notes = client.get(f"/api/users/{buyer.user_id}/notes", headers=boss.auth).json()
    assert [n["text"] for n in notes["notes"]] == ["曾反映包裝破損", "偏好週末收貨"]

    # Orders and spend: two paid orders, one partly refunded, one left unpaid.
    pid = product(client, shop, category(client, boss), price=500)["productId"]
    assert client.post(f"/api/catalog/products/{pid}/approve", headers=boss.auth).is_success
    receive(client, shop, pid, warehouse(client, boss), 20)
    first = paid_order(client, buyer, pid, 2)  # 1000 + 50 tax + 60 shipping = 1110
    second = paid_order(client, buyer, pid, 1)  # 500 + 25 + 60 = 585
    r = client.post(
        f"/api/sales/orders/{first['orderId']}/refunds",
        json={"reason": "damaged", "amount": {"value": 110, "currency": "TWD"}},
        headers=boss.auth,
    )
    assert r.status_code == 200, r.text
    add_to_cart(client, buyer, pid)
    assert checkout(client, buyer, paymentMethod="CREDIT_CARD").status_code == 201
    wait(client)
    r = client.get(f"/api/users/{buyer.user_id}/orders", params={"pageSize": 2}, headers=boss.auth)
    assert r.status_code == 200, r.text
    history = r.json()
    assert history["spend"] == {
        "orderCount": 3,
        "paidOrderCount": 2,
        "totalPaid": {"value": 1695, "currency": "TWD"},
        "totalRefunded": {"value": 110, "currency": "TWD"},
        "netSpend": {"value": 1585, "currency": "TWD"},
    }
    assert history["pagination"]["totalItems"] == 3 and len(history["orders"]) == 2
    assert history["orders"][1]["orderId"] == second["orderId"]  # newest first
    assert history["orders"][1]["paid"] == {"value": 585, "currency": "TWD"}

    # The buyer sees none of it.
    me = client.get("/api/users/me", headers=buyer.auth).json()
    assert "tags" not in me and "notes" not in me


def customer_records_breadth(client: TestClient, boss: User, shop: User) -> None:
    """Admin-only (403 to buyers and sellers), validated, 404 for unknown users."""
    buyer = verified_user(client)
    uid = buyer.user_id
    for who in (buyer, shop):
        calls = [
            client.post(f"/api/users/{uid}/tags", json={"tag": "VIP"}, headers=who.auth),
            client.delete(f"/api/users/{uid}/tags/VIP", headers=who.auth),
            client.post(f"/api/users/{uid}/notes", json={"text": "x"}, headers=who.auth),
            client.get(f"/api/users/{uid}/notes", headers=who.auth),
            client.get(f"/api/users/{uid}/orders", headers=who.auth),
            client.get("/api/users", params={"tag": "VIP"}, headers=who.auth),
        ]
        assert [r.status_code for r in calls] == [403] * len(calls)
    assert client.get(f"/api/users/{uid}/notes").status_code == 401

    for bad in ("", "x" * 31, "VIP!", "<script>", "a/b"):
        r = client.post(f"/api/users/{uid}/tags", json={"tag": bad}, headers=boss.auth)
        assert r.status_code == 400 and error(r)["code"] == "VALIDATION_ERROR", bad
    r = client.post(
        f"/api/users/{uid}/tags", json={"tag": "VIP", "color": "red"}, headers=boss.auth
    )
    assert r.status_code == 400
    r = client.get("/api/users", params={"tag": "VIP!"}, headers=boss.auth)
    assert r.status_code == 400
    for body in ({"text": "   "}, {"text": "x" * 2001}, {}):
        r = client.post(f"/api/users/{uid}/notes", json=body, headers=boss.auth)
        assert r.status_code == 400, body
    r = client.delete(f"/api/users/{uid}/tags/VIP", headers=boss.auth)
    assert r.status_code == 404

    missing = "00000000-0000-4000-8000-000000000000"
    for r in (
        client.post(f"/api/users/{missing}/tags", json={"tag": "VIP"}, headers=boss.auth),
        client.post(f"/api/users/{missing}/notes", json={"text": "x"}, headers=boss.auth),
        client.get(f"/api/users/{missing}/notes", headers=boss.auth),
        client.get(f"/api/users/{missing}/orders", headers=boss.auth),
        client.get("/api/users/not-an-id/orders", headers=boss.auth),
    ):
        assert r.status_code == 404, r.text

    r = client.get(f"/api/users/{uid}/orders", headers=boss.auth)
    assert r.json()["spend"]["orderCount"] == 0 and r.json()["orders"] == []
