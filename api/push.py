"""Live push: new notifications and messages to the users connected to this API process.

One tail per process: a thread reads the rows the ``notifications`` and ``messages``
projections committed since it last looked (two indexed queries, whatever the number of
connected users) and hands each to the queues of its user's sockets and streams. It looks as
soon as a projection commits: in this process (embedded mode) through ``Progress``, from the
projector process (scaled mode) through Redis pub/sub, so every API process pushes what any
of them wrote; a slow poll covers a lost signal. Every item carries the event's position: a
client that reconnects with ``after=<position>`` is first sent what it missed, from the read
models, then the live items past it, so nothing is lost or sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from projections.messages import live as messages_live
from projections.notifications import live as notifications_live
from projections.wakeup import Progress
from queries.messages import message_view, messages_after
from queries.notifications import notification_view

log = logging.getLogger(__name__)

_n = notifications_live["notifications"]
_m = messages_live["messages"]
#: Without a signal, look anyway this often (a lost Redis message costs at most this).
POLL_SECONDS = 1.0
#: Rows read per look and per replay.
BATCH = 500


def notification_item(row: Any) -> dict[str, Any]:
    """A notification row as pushed: its ``type`` becomes ``kind`` (``type`` names the item)."""
    view = notification_view(row)
    return {"type": "notification", "position": row.position, "kind": view.pop("type"), **view}


def message_item(row: Any) -> dict[str, Any]:
    return {"type": "message", **message_view(row)}


def missed(engine: Engine, user_id: str, after: int, limit: int = BATCH) -> list[dict[str, Any]]:
    """What ``user_id`` was pushed after ``after``, oldest first (for a reconnect)."""
    with engine.connect() as conn:
        notes = conn.execute(
            select(_n)
            .where(_n.c.user_id == user_id, _n.c.position > after)
            .order_by(_n.c.position)
            .limit(limit)
        ).all()
    items = [notification_item(r) for r in notes] + [
        {"type": "message", **m} for m in messages_after(engine, user_id, after, limit)
    ]
    return sorted(items, key=lambda i: (i["position"], i["type"]))[:limit]


@dataclass(eq=False)
class Subscriber:
    user_id: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def offer(self, item: dict[str, Any]) -> None:
        """From the tail thread: hand the item over on the subscriber's event loop."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: the subscriber is gone
            pass


class PushHub:
    def __init__(self, engine: Engine, progress: Progress) -> None:
        self._engine = engine
        self._progress = progress
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._seen: tuple[int, int] | None = None  # (notifications, messages) positions
        self.delivered = 0

    # --- subscribers -----------------------------------------------------------------------
    def subscribe(self, user_id: str) -> Subscriber:
        subscriber = Subscriber(user_id, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.setdefault(user_id, set()).add(subscriber)
            self._start()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            mine = self._subscribers.get(subscriber.user_id)
            if mine is not None:
                mine.discard(subscriber)
                if not mine:
                    del self._subscribers[subscriber.user_id]

    @property
    def connections(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())

    # --- the tail --------------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None:
            self._seen = self._heads()
            self._thread = threading.Thread(target=self._run, name="push-tail", daemon=True)
            self._thread.start()

    def _heads(self) -> tuple[int, int]:
        with self._engine.connect() as conn:
            notes = conn.execute(select(func.max(_n.c.position))).scalar() or 0
            messages = conn.execute(select(func.max(_m.c.position))).scalar() or 0
        return int(notes), int(messages)

    def _run(self) -> None:
        while not self._stopping.is_set():
            generation = self._progress.generation
            try:
                while self.look() >= BATCH:
                    pass  # far behind: keep reading before waiting
            except Exception as exc:  # noqa: BLE001 - keep pushing after a database hiccup
                log.warning("push tail failed; retrying", extra={"error": str(exc)})
                self._stopping.wait(1.0)
            self._progress.wait(POLL_SECONDS, since=generation)

    def look(self) -> int:
        """Hand the rows committed since the last look to their users; how many were read."""
        assert self._seen is not None
        seen_n, seen_m = self._seen
        with self._engine.connect() as conn:
            notes = conn.execute(
                select(_n).where(_n.c.position > seen_n).order_by(_n.c.position).limit(BATCH)
            ).all()
            messages = conn.execute(
                select(_m).where(_m.c.position > seen_m).order_by(_m.c.position).limit(BATCH)
            ).all()
        if notes:
            seen_n = notes[-1].position
        if messages:
            seen_m = messages[-1].position
        self._seen = (seen_n, seen_m)
        with self._lock:
            if not self._subscribers:
                return len(notes) + len(messages)
            targets = [(n.user_id, notification_item(n)) for n in notes]
            for m in messages:
                item = message_item(m)
                targets += [(m.receiver_id, item), (m.sender_id, item)]
            for user_id, item in targets:
                for subscriber in self._subscribers.get(user_id, ()):
                    subscriber.offer(item)
                    self.delivered += 1
        return len(notes) + len(messages)

    def stop(self) -> None:
        self._stopping.set()
        self._progress.interrupt()
        if self._thread is not None:
            self._thread.join(5)
