"""The live channel: every new notification and message of the signed-in user, pushed as JSON
over a WebSocket (``/api/ws``) or as Server-Sent Events (``/api/notifications/stream``).

Items are ``{"type": "notification"|"message", "position": P, ...}``; ``after=P`` (or SSE's
``Last-Event-ID``) first sends what the user missed since P. An expired or revoked token ends
the channel: WebSocket close code 4401, an SSE ``error`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, load_account
from api.deps import ACCESS_COOKIE
from api.errors import ApiError
from api.openapi import documented
from api.push import PushHub, missed
from commands.credentials import InvalidJWT
from shopledger.bootstrap import Container

log = logging.getLogger(__name__)
router = APIRouter(tags=["notifications"])

#: WebSocket close code for a missing, invalid, expired or revoked token.
UNAUTHORIZED_CLOSE = 4401
#: How often an open channel re-checks that its session is still valid (logout, disable).
RECHECK_SECONDS = 15.0
#: A client that opens a socket without a token has this long to send {"type": "auth"}.
AUTH_TIMEOUT = 10.0
LIVE_PROJECTIONS = ("notifications", "messages")


class Unauthorized(Exception):
    pass


@dataclass
class Caller:
    user_id: str
    session_id: str
    expires_at: datetime


def authenticate(container: Container, token: str) -> Caller:
    """The caller behind an access token, as the REST dependency checks it (blocking)."""
    try:
        claims = container.tokens.verify(token, "access")
    except InvalidJWT as exc:
        raise Unauthorized(f"invalid access token: {exc}") from None
    account = load_account(container, claims.sub)
    if account is None or not account.is_active:
        raise Unauthorized("the account is unknown or disabled")
    if not account.session_valid(claims.sid, container.bus.clock()):
        raise Unauthorized("the session has ended")
    return Caller(claims.sub, claims.sid, claims.exp)


def still_valid(container: Container, caller: Caller) -> bool:
    if container.bus.clock() >= caller.expires_at:
        return False
    account = load_account(container, caller.user_id)
    return (
        account is not None
        and account.is_active
        and account.session_valid(caller.session_id, container.bus.clock())
    )


def projected_position(container: Container) -> int:
    """Every item at or below this position is in the read models: a safe ``after``."""
    positions = container.positions()
    return min(positions[name] for name in LIVE_PROJECTIONS)


async def replay(container: Container, user_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
    while True:
        items = await run_in_threadpool(missed, container.engine, user_id, after)
        for item in items:
            yield item
        if len(items) < 500:
            return
        after = items[-1]["position"]


async def items_for(
    container: Container, hub: PushHub, caller: Caller, after: int | None
) -> AsyncIterator[dict[str, Any] | None]:
    """The channel's items: the ready item, what was missed, then live ones; None when it is
    time to check the session again; ends when the token expires or the session ended."""
    subscriber = hub.subscribe(caller.user_id)  # before the replay: nothing falls between
    try:
        yield {
            "type": "ready",
            "userId": caller.user_id,
            "position": await run_in_threadpool(projected_position, container),
        }
        # Per kind: the notifications and messages projections commit independently, so a
        # replay may hold a position's message and not yet its notification.
        sent = dict.fromkeys(("notification", "message"), -1 if after is None else after)
        if after is not None:
            async for item in replay(container, caller.user_id, after):
                sent[item["type"]] = max(sent[item["type"]], item["position"])
                yield item
        while True:
            left = (caller.expires_at - container.bus.clock()).total_seconds()
            if left <= 0:
                return
            try:
                item = await asyncio.wait_for(
                    subscriber.queue.get(), timeout=min(RECHECK_SECONDS, left)
                )
            except TimeoutError:
                if not await run_in_threadpool(still_valid, container, caller):
                    return
                yield None
                continue
            if item["position"] > sent[item["type"]]:  # not sent by the replay already
                yield item
    finally:
        hub.unsubscribe(subscriber)


def _origin_allowed(websocket: WebSocket, container: Container) -> bool:
    """Cookie sessions only from our own pages or the CORS origins (no cross-site hijack)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    settings = container.settings
    allowed = {settings.public_url.rstrip("/"), *settings.cors_origin_list}
    return origin.rstrip("/") in allowed or "*" in allowed


@router.websocket("/api/ws")
async def live_socket(
    websocket: WebSocket,
    token: Annotated[str | None, Query(max_length=4096)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> None:
    """WebSocket: the token as ``?token=``, the access cookie, or a first message
    ``{"type": "auth", "token": "..."}``; ``?after=<position>`` to catch up first."""
    container: Container = websocket.app.state.container
    hub: PushHub = websocket.app.state.push
    await websocket.accept()
    presented = token or websocket.cookies.get(ACCESS_COOKIE)
    if token is None and presented is not None and not _origin_allowed(websocket, container):
        await websocket.close(UNAUTHORIZED_CLOSE, "cookie sessions only from allowed origins")
        return
    try:
        if presented is None:
            first = await asyncio.wait_for(websocket.receive_json(), timeout=AUTH_TIMEOUT)
            presented = first.get("token") if isinstance(first, dict) else None
            if not isinstance(presented, str) or first.get("type") != "auth":
                raise Unauthorized('send {"type": "auth", "token": "<access token>"} first')
        caller = await run_in_threadpool(authenticate, container, presented)
    except (Unauthorized, TimeoutError, ValueError) as exc:
        await websocket.close(UNAUTHORIZED_CLOSE, str(exc)[:120] or "unauthorized")
        return
    except WebSocketDisconnect:
        return

    async def read_frames() -> None:
        # The client may ping ({"type": "ping"} -> {"type": "pong"}); anything else is ignored.
        while True:
            message = await websocket.receive_text()
            with contextlib.suppress(ValueError):
                if json.loads(message).get("type") == "ping":
                    await websocket.send_json({"type": "pong"})

    async def pump() -> None:
        async for item in items_for(container, hub, caller, after):
            if item is not None:
                await websocket.send_json(item)
        await websocket.close(UNAUTHORIZED_CLOSE, "the token expired or the session ended")

    # Whichever ends first ends both: the client leaving (or the server shutting down) stops
    # the pump at once instead of at its next item or session check.
    tasks = {asyncio.create_task(read_frames()), asyncio.create_task(pump())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


def _sse(item: dict[str, Any]) -> str:
    data = json.dumps(item, ensure_ascii=False)
    return f"id: {item['position']}\nevent: {item['type']}\ndata: {data}\n\n"


@router.get(
    "/api/notifications/stream",
    response_class=StreamingResponse,
    responses={
        **documented(errors={401: "UNAUTHORIZED", 400: "VALIDATION_ERROR"}),
        200: {
            "description": "text/event-stream: `ready`, `notification` and `message` events "
            "(`id` is the position), a comment every 15 s; `error` when the token expires",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def stream(
    request: Request,
    principal: CurrentUser,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> StreamingResponse:
    """The live channel as Server-Sent Events, for clients without WebSockets.

    ``after`` (or the ``Last-Event-ID`` header a browser sends when it reconnects) first
    sends what was missed since that position. The same items as WebSocket ``/api/ws``:
    ``{"type": "notification"|"message", "position", ...}``."""
    container: Container = request.app.state.container
    hub: PushHub = request.app.state.push
    last_id = request.headers.get("last-event-id")
    if after is None and last_id is not None:
        if not last_id.strip().isdigit() or len(last_id.strip()) > 18:
            raise ApiError(400, "VALIDATION_ERROR", "Last-Event-ID must be a position")
        after = int(last_id)
    token = request.headers.get("authorization", "").partition(" ")[2].strip() or (
        request.cookies.get(ACCESS_COOKIE, "")
    )
    # The dependency checked the token and the account; only the expiry is still needed.
    expires = container.tokens.verify(token, "access").exp
    caller = Caller(principal.account_id, principal.session_id, expires)

    async def events() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        async for item in items_for(container, hub, caller, after):
            if await request.is_disconnected():
                return
            yield ": keep-alive\n\n" if item is None else _sse(item)
        now = datetime.now(UTC).isoformat()
        yield f"event: error\ndata: {json.dumps({'code': 'UNAUTHORIZED', 'at': now})}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
