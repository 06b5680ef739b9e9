"""The live channel through the app (embedded mode, TestClient): WebSocket and SSE push each
new notification and message, a reconnect with ``after`` loses nothing, a bad or ended
session closes the socket with 4401. Served processes (both modes) are in
tests/integration/test_live_push_served.py."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.e2e.conftest import ClientFactory, container_of
from tests.support.accounts import User, admin, verified_user
from tests.support.catalog import seller


@pytest.fixture
def market(make_client: ClientFactory, database_url: str) -> Any:
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


def send(client: TestClient, sender: User, to: User, text: str) -> Any:
    r = client.post(
        "/api/messages", json={"toUserId": to.user_id, "text": text}, headers=sender.auth
    )
    assert r.status_code == 201, r.text
    return r.json()


def token(user: User) -> str:
    return user.auth["Authorization"].split(" ", 1)[1]


def receive(ws: Any, kinds: tuple[str, ...] = ("message", "notification")) -> dict[str, Any]:
    while True:
        item = ws.receive_json()
        if item["type"] in kinds:
            return dict(item)


def test_a_message_is_pushed_to_both_sides_with_the_receivers_notification(market: Any) -> None:
    client, _, shop, buyer = market
    with client.websocket_connect(f"/api/ws?token={token(shop)}") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["userId"] == shop.user_id
        sent = send(client, buyer, shop, "請問有貨嗎")
        got = [receive(ws), receive(ws)]
        by_type = {g["type"]: g for g in got}
        assert by_type["message"]["messageId"] == sent["messageId"]
        assert by_type["message"]["text"] == "請問有貨嗎"
        assert by_type["notification"]["kind"] == "MESSAGE_RECEIVED"
        assert all(isinstance(g["position"], int) for g in got)
    with client.websocket_connect("/api/ws") as ws:  # token as the first message
        ws.send_json({"type": "auth", "token": token(buyer)})
        assert ws.receive_json()["type"] == "ready"
        send(client, shop, buyer, "有的")
        assert receive(ws, ("message",))["senderId"] == shop.user_id
        ws.send_json({"type": "ping"})
        assert receive(ws, ("pong",))["type"] == "pong"


def test_a_reconnect_with_after_receives_exactly_what_was_missed(market: Any) -> None:
    client, _, shop, buyer = market
    with client.websocket_connect(f"/api/ws?token={token(shop)}") as ws:
        ws.receive_json()
        send(client, buyer, shop, "第一則")
        first = receive(ws, ("message",))
    missed = [send(client, buyer, shop, f"離線時第{n}則")["messageId"] for n in range(3)]
    with client.websocket_connect(f"/api/ws?token={token(shop)}&after={first['position']}") as ws:
        assert ws.receive_json()["type"] == "ready"
        replayed = [ws.receive_json() for _ in range(6)]  # 3 messages, 3 notifications
        assert [i["messageId"] for i in replayed if i["type"] == "message"] == missed
        notes = [i["position"] for i in replayed if i["type"] == "notification"]
        assert notes == sorted(set(notes)) and len(notes) == 3  # each once, in order
        assert all(i["position"] > first["position"] for i in replayed)
        live = send(client, buyer, shop, "之後的")
        item = receive(ws, ("message",))
        assert item["messageId"] == live["messageId"]  # nothing sent twice in between


def test_a_bad_token_closes_the_socket_with_4401(market: Any) -> None:
    client = market[0]
    for path in ("/api/ws?token=not-a-token", "/api/ws?token="):
        with client.websocket_connect(path) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.send_json({"type": "auth", "token": "nope"})
            ws.receive_json()
        assert closed.value.code == 4401
    with client.websocket_connect("/api/ws") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.send_json({"type": "hello"})
        ws.receive_json()
    assert closed.value.code == 4401


def test_an_ended_session_closes_an_open_socket(
    market: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, shop, _ = market
    monkeypatch.setattr("api.routes.live.RECHECK_SECONDS", 0.2)
    with client.websocket_connect(f"/api/ws?token={token(shop)}") as ws:
        ws.receive_json()
        assert client.post("/api/auth/logout", headers=shop.auth).status_code in (200, 204)
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(50):
                ws.receive_json()
        assert closed.value.code == 4401


def test_an_expired_token_closes_the_socket(market: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, shop, _ = market
    monkeypatch.setattr("api.routes.live.RECHECK_SECONDS", 0.2)
    container = container_of(client)
    with client.websocket_connect(f"/api/ws?token={token(shop)}") as ws:
        ws.receive_json()
        real = container.bus.clock
        later = container.settings.access_token_ttl + timedelta(minutes=1)
        container.bus.clock = lambda: real() + later  # past the token's expiry
        try:
            with pytest.raises(WebSocketDisconnect) as closed:
                for _ in range(50):
                    ws.receive_json()
        finally:
            container.bus.clock = real
        assert closed.value.code == 4401


def test_the_same_stream_as_server_sent_events(market: Any) -> None:
    client, _, shop, buyer = market
    assert client.get("/api/notifications/stream").status_code == 401
    with client.stream("GET", "/api/notifications/stream", headers=shop.auth) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        ready = _next_event(lines)
        assert ready["event"] == "ready"
        sent = send(client, buyer, shop, "SSE 測試")
        got = [_next_event(lines), _next_event(lines)]
        message = next(g for g in got if g["event"] == "message")
        assert message["data"]["messageId"] == sent["messageId"]
        assert message["id"] == str(message["data"]["position"])
    after = int(message["id"])
    send(client, buyer, shop, "錯過的")
    with client.stream(
        "GET", "/api/notifications/stream", headers={**shop.auth, "Last-Event-ID": str(after)}
    ) as r:
        lines = r.iter_lines()
        assert _next_event(lines)["event"] == "ready"
        replayed = [_next_event(lines), _next_event(lines)]
        assert {e["event"] for e in replayed} == {"message", "notification"}
        assert all(int(e["id"]) > after for e in replayed)


def _next_event(lines: Any) -> dict[str, Any]:
    event: dict[str, Any] = {}
    deadline = time.monotonic() + 10
    for line in lines:
        if line.startswith(("retry:", ":")):
            continue
        if not line:
            if "event" in event:
                return event
            continue
        key, _, value = line.partition(": ")
        event[key] = json.loads(value) if key == "data" else value
        assert time.monotonic() < deadline
    raise AssertionError("the stream ended")
