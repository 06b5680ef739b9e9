"""Messages over HTTP: who may write to whom, conversations and unread counts, the rules on
text, the rate limit (shared through Redis), on SQLite and MariaDB."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import ClientFactory
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product


@pytest.fixture
def market(make_client: ClientFactory, database_url: str) -> Any:
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


def send(client: TestClient, sender: User, to: User | str, text: str = "你好", **kw: Any) -> Any:
    body = {"toUserId": to if isinstance(to, str) else to.user_id, "text": text, **kw}
    return client.post("/api/messages", json=body, headers=sender.auth)


def error(r: Any) -> dict[str, Any]:
    return dict(r.json()["error"])


def conversations(client: TestClient, who: User) -> list[dict[str, Any]]:
    """As ``who`` sees them once the read models have caught up (another user's writes are
    read eventually; one's own at once)."""
    wait(client)
    r = client.get("/api/messages/conversations", headers=who.auth)
    assert r.status_code == 200, r.text
    return list(r.json()["conversations"])


def test_a_buyer_writes_to_a_seller_who_reads_and_answers(market: Any) -> None:
    client, _, shop, buyer = market
    r = send(client, buyer, shop, "請問有現貨嗎？")
    assert r.status_code == 201, r.text
    sent = r.json()
    assert sent["senderId"] == buyer.user_id and sent["receiverId"] == shop.user_id
    assert sent["text"] == "請問有現貨嗎？" and "X-Event-Position" in r.headers

    (entry,) = conversations(client, shop)
    assert entry["conversationId"] == sent["conversationId"]
    assert entry["otherParty"]["userId"] == buyer.user_id
    assert entry["lastMessage"]["text"] == "請問有現貨嗎？" and entry["unreadCount"] == 1
    assert conversations(client, buyer)[0]["unreadCount"] == 0  # one's own message is read

    wait(client)
    notes = client.get("/api/notifications", headers=shop.auth).json()["notifications"]
    (note,) = [n for n in notes if n["type"] == "MESSAGE_RECEIVED"]
    assert note["data"]["conversationId"] == sent["conversationId"]
    assert note["data"]["senderId"] == buyer.user_id

    path = f"/api/messages/conversations/{sent['conversationId']}"
    peek = client.get(path, params={"markRead": "false"}, headers=shop.auth)
    assert peek.status_code == 200 and peek.json()["unreadCount"] == 1
    page = client.get(path, headers=shop.auth)
    assert page.status_code == 200 and "X-Event-Position" in page.headers
    assert page.json()["unreadCount"] == 0
    assert [m["text"] for m in page.json()["messages"]] == ["請問有現貨嗎？"]
    assert conversations(client, shop)[0]["unreadCount"] == 0

    assert send(client, shop, buyer, "有的，今天出貨").status_code == 201
    assert send(client, buyer, shop, "謝謝").status_code == 201
    wait(client)
    texts = [m["text"] for m in client.get(path, headers=buyer.auth).json()["messages"]]
    assert texts == ["請問有現貨嗎？", "有的，今天出貨", "謝謝"]  # oldest first
    assert conversations(client, shop)[0]["unreadCount"] == 1

    stranger = verified_user(client)
    r = client.get(path, headers=stranger.auth)
    assert r.status_code == 404 and error(r)["code"] == "CONVERSATION_NOT_FOUND"
    assert conversations(client, stranger) == []


def test_a_seller_writes_first_only_to_a_buyer_who_ordered_naming_the_order(market: Any) -> None:
    client, boss, shop, buyer = market
    r = send(client, shop, buyer, "新品上市")
    assert r.status_code == 403 and error(r)["details"]["reason"] == "NO_ORDER_WITH_RECIPIENT"
    pid = stocked_product(client, boss, shop)
    add_to_cart(client, buyer, pid)
    order = checkout(client, buyer, paymentMethod="COD").json()
    other = verified_user(client)
    r = send(client, shop, other, "您的訂單", orderId=order["orderId"])
    assert r.status_code == 400 and error(r)["details"]["field"] == "orderId"
    r = send(client, shop, buyer, "您的訂單已出貨", orderId=order["orderId"])
    assert r.status_code == 201 and r.json()["orderId"] == order["orderId"]
    assert send(client, shop, buyer, "請留意簡訊").status_code == 201  # the conversation exists


def test_who_may_write_and_what_text_is_refused(market: Any) -> None:
    client, boss, shop, buyer = market
    other = verified_user(client)
    r = send(client, buyer, other)
    assert r.status_code == 403 and error(r)["details"]["reason"] == "NOT_A_SELLER"
    assert send(client, boss, other, "平台通知").status_code == 201  # admins write to anyone
    assert send(client, other, boss, "收到").status_code == 201
    r = send(client, buyer, buyer)
    assert r.status_code == 400 and error(r)["details"]["field"] == "toUserId"
    r = send(client, buyer, str(uuid4()))
    assert r.status_code == 404 and error(r)["code"] == "USER_NOT_FOUND"
    assert send(client, buyer, "not-an-id").status_code == 404
    for bad in ("", "   ", "x" * 2001, "響鈴\x07", "\x1b[31m紅字"):
        r = send(client, buyer, shop, bad)
        assert r.status_code == 400, (bad, r.text)
        assert [p["field"] for p in error(r)["details"]["errors"]] == ["text"]
    r = client.post(
        "/api/messages",
        json={"toUserId": shop.user_id, "text": "hi", "cc": buyer.user_id},
        headers=buyer.auth,
    )
    assert r.status_code == 400
    r = send(client, buyer, shop, "看這個", productId=str(uuid4()))
    assert r.status_code == 400 and error(r)["details"]["field"] == "productId"
    assert send(client, buyer, shop, "第一行\n第二行").status_code == 201
    assert conversations(client, shop)[0]["lastMessage"]["text"] == "第一行\n第二行"


def test_a_disabled_account_neither_sends_nor_receives(market: Any) -> None:
    client, boss, shop, buyer = market
    assert send(client, buyer, shop).status_code == 201
    r = client.put(f"/api/users/{shop.user_id}", json={"status": "disabled"}, headers=boss.auth)
    assert r.status_code == 200, r.text
    r = send(client, buyer, shop)
    assert r.status_code == 404 and error(r)["code"] == "USER_NOT_FOUND"
    r = client.put(f"/api/users/{buyer.user_id}", json={"status": "disabled"}, headers=boss.auth)
    assert r.status_code == 200, r.text
    assert send(client, buyer, boss).status_code in (401, 403)


def test_two_users_writing_first_at_once_share_one_conversation(market: Any) -> None:
    client, boss, shop, _ = market
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda pair: send(client, pair[0], pair[1], "hi"), [(boss, shop), (shop, boss)]
            )
        )
    assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
    assert answers[0].json()["conversationId"] == answers[1].json()["conversationId"]
    (entry,) = conversations(client, shop)
    wait(client)
    page = client.get(f"/api/messages/conversations/{entry['conversationId']}", headers=shop.auth)
    assert [m["senderId"] for m in page.json()["messages"]].count(shop.user_id) == 1
    assert len(page.json()["messages"]) == 2


def test_the_rate_limit_answers_429_with_retry_after(
    make_client: ClientFactory, database_url: str
) -> None:
    client = make_client(database_url, message_rate_limit=3)
    boss = admin(client)
    shop = seller(client, boss)
    buyer = verified_user(client)
    assert [send(client, buyer, shop).status_code for _ in range(3)] == [201, 201, 201]
    r = send(client, buyer, shop)
    assert r.status_code == 429 and error(r)["code"] == "RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert send(client, shop, buyer).status_code == 201  # per sender


def test_the_rate_limit_is_shared_by_api_processes_through_redis(
    make_client: ClientFactory, database_url: str, redis_url: str
) -> None:
    prefix = f"t{uuid4().hex[:10]}"
    first = make_client(
        database_url, redis_url=redis_url, queue_prefix=prefix, message_rate_limit=4
    )
    second = make_client(
        database_url, redis_url=redis_url, queue_prefix=prefix, message_rate_limit=4
    )
    boss = admin(first)
    shop = seller(first, boss)
    buyer = verified_user(first)
    codes = [send(c, buyer, shop).status_code for c in (first, second, first, second, second)]
    assert codes == [201, 201, 201, 201, 429]
