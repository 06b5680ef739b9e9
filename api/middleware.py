"""ASGI middleware: request ids and access log, body limit, security headers, trusted proxies."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopledger.logging import request_id_var

log = logging.getLogger("shopledger.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class RequestContextMiddleware:
    """Takes ``X-Request-ID`` from the client (if sane) or makes one; echoes it; logs the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "durationMs": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses a request body above ``max_bytes`` with 413 before reading it in full: at once
    when Content-Length says so, else as soon as the streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: Sequence[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        received = 0
        started = rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now; to the app the client has gone, and what it says is dropped.
                    rejected = True
                    if not started:
                        await _too_large(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "PAYLOAD_TOO_LARGE",
                "message": f"the request body is larger than {limit} bytes",
                "details": {"maxBytes": limit},
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return str(value.decode("latin-1").strip())
    return None


class SecurityHeadersMiddleware:
    """``Strict-Transport-Security`` on every answer when the service speaks HTTPS (directly,
    or behind a trusted proxy that says so), plus ``X-Content-Type-Options: nosniff``."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hsts = self.hsts or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff")]
                if hsts:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TrustedProxyMiddleware:
    """Believes ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only from the configured proxies.

    The client is the right-most address of X-Forwarded-For that is not itself a trusted proxy
    (what a client writes into the header itself lies further left and is ignored), so login
    history records the real address and cannot be spoofed. From any other peer the headers
    are ignored and the peer address is the client.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[IPv4Network | IPv6Network]) -> None:
        self.app = app
        self.trusted = list(trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            if peer and self._is_trusted(peer[0]):
                forwarded = _header(scope, b"x-forwarded-for")
                if forwarded:
                    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
                    client = next((h for h in reversed(hops) if not self._is_trusted(h)), None)
                    if client is None and hops:
                        client = hops[0]
                    if client is not None:
                        scope = {**scope, "client": (client, 0)}
                proto = _header(scope, b"x-forwarded-proto")
                if proto in ("http", "https"):
                    scheme = (
                        proto if scope["type"] == "http" else ("wss" if proto == "https" else "ws")
                    )
                    scope = {**scope, "scheme": scheme}
        await self.app(scope, receive, send)


class ContextMiddleware:
    """Sets a context variable for the duration of each request (state that validators,
    which see no request, need)."""

    def __init__(self, app: ASGIApp, var: ContextVar[Any], value: Any) -> None:
        self.app = app
        self.var = var
        self.value = value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self.var.set(self.value)
        try:
            await self.app(scope, receive, send)
        finally:
            self.var.reset(token)
