"""Session consistency: a caller reads its own writes without asking for it.

Every response that committed events carries ``X-Event-Position``, and the caller's
high-water mark is raised to it: for a signed-in caller in a :class:`MarkStore` keyed by the
account id (Redis in scaled mode, so every API process sees it; a dict in embedded mode), for an
anonymous caller in a signed cookie. A query then waits (bounded) until the read models it reads
have processed that mark. ``X-Min-Position`` replaces the mark when sent;
``X-Consistency: eventual`` skips the wait.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections import OrderedDict
from http.cookies import SimpleCookie
from typing import Any, Protocol

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands.bus import Writes, current_writes

log = logging.getLogger(__name__)

POSITION_HEADER = "X-Event-Position"
MIN_POSITION_HEADER = "X-Min-Position"
CONSISTENCY_HEADER = "X-Consistency"
POSITION_COOKIE = "sl_pos"
#: How long a caller's mark is kept: far longer than any projection lag worth waiting for.
MARK_TTL_SECONDS = 15 * 60


class MarkStore(Protocol):
    def get(self, subject: str) -> int | None: ...

    def raise_to(self, subject: str, position: int) -> None: ...


class LocalMarks:
    """Marks in this process (embedded mode: one API process); bounded, oldest dropped."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._marks: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, subject: str) -> int | None:
        with self._lock:
            return self._marks.get(subject)

    def raise_to(self, subject: str, position: int) -> None:
        with self._lock:
            if position > self._marks.get(subject, 0):
                self._marks[subject] = position
            self._marks.move_to_end(subject)
            while len(self._marks) > self._max:
                self._marks.popitem(last=False)


# Raise, never lower: two processes answering the same user at once keep the higher mark.
_RAISE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


class RedisMarks:
    """Marks shared by every API process. Redis trouble costs consistency, never a request:
    a failed read answers "no mark" and a failed write is logged."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._redis = client
        self._prefix = f"{prefix}:mark:"
        self._raise = client.register_script(_RAISE)

    def get(self, subject: str) -> int | None:
        try:
            raw = self._redis.get(self._prefix + subject)
        except Exception as exc:  # noqa: BLE001 — degrade to eventual consistency
            log.warning("consistency mark unavailable", extra={"error": str(exc)})
            return None
        return int(raw) if raw is not None else None

    def raise_to(self, subject: str, position: int) -> None:
        try:
            self._raise(keys=[self._prefix + subject], args=[position, MARK_TTL_SECONDS])
        except Exception as exc:  # noqa: BLE001
            log.warning("consistency mark not stored", extra={"error": str(exc)})


class CookieSigner:
    """``<position>.<mac>``: an anonymous caller cannot make the server wait for a position
    that was never written for it."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, position: int) -> str:
        digest = hmac.new(self._key, str(position).encode(), hashlib.sha256).hexdigest()
        return digest[:32]

    def sign(self, position: int) -> str:
        return f"{position}.{self._mac(position)}"

    def read(self, value: str | None) -> int | None:
        if not value:
            return None
        raw, _, mac = value.partition(".")
        if not raw.isdigit() or len(raw) > 18:
            return None
        position = int(raw)
        return position if hmac.compare_digest(mac, self._mac(position)) else None


class ConsistencyMiddleware:
    """Collects what a request committed, answers with ``X-Event-Position`` (error answers
    too), and raises the caller's mark before the answer leaves, so the caller's next request,
    to any process, already sees it."""

    def __init__(
        self, app: ASGIApp, marks: MarkStore, signer: CookieSigner, secure_cookie: bool
    ) -> None:
        self.app = app
        self.marks = marks
        self.signer = signer
        self.secure = secure_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        writes = Writes()
        token = current_writes.set(writes)

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start" and writes.position is not None:
                message["headers"] = await self._stamp(list(message.get("headers", [])), writes)
            await send(message)

        try:
            await self.app(scope, receive, send_with_position)
        finally:
            current_writes.reset(token)

    async def _stamp(self, headers: list[tuple[bytes, bytes]], writes: Writes) -> list[Any]:
        assert writes.position is not None
        name = POSITION_HEADER.lower().encode()
        given = [int(v) for k, v in headers if k.lower() == name and v.isdigit()]
        position = max([writes.position, *given])
        headers = [(k, v) for k, v in headers if k.lower() != name]
        headers.append((name, str(position).encode()))
        if writes.subject is not None:
            await anyio.to_thread.run_sync(self.marks.raise_to, writes.subject, position)
        else:
            cookie = SimpleCookie()
            cookie[POSITION_COOKIE] = self.signer.sign(position)
            morsel = cookie[POSITION_COOKIE]
            morsel["path"] = "/"
            morsel["max-age"] = str(MARK_TTL_SECONDS)
            morsel["httponly"] = True
            morsel["samesite"] = "Lax"
            if self.secure:
                morsel["secure"] = True
            headers.append((b"set-cookie", morsel.OutputString().encode("latin-1")))
        return headers


def note_caller(subject: str) -> None:
    """The request acts for this account (a route that signs the caller in says so, so the
    mark follows the new session rather than an anonymous cookie)."""
    writes = current_writes.get()
    if writes is not None:
        writes.subject = subject


def record_position(position: int | None) -> None:
    """A position the request answers with without committing it now (an idempotent replay)."""
    writes = current_writes.get()
    if writes is not None and position is not None:
        writes.record(position)
