"""Waking projectors the moment events are appended, instead of waiting for the next poll.

In-process: a condition variable. Across processes (scaled mode): Redis pub/sub on a channel
named after the database, so several API processes wake one projector process. Losing Redis
only costs latency: projectors still poll.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def relay(
    client: Any, channel: str, wake: Callable[[], None], closing: threading.Event, what: str
) -> None:
    """Call ``wake`` for every message on ``channel`` until ``closing``; after losing Redis,
    log once per loss and subscribe again after a pause."""
    while not closing.is_set():
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(channel)
            while not closing.is_set():
                if pubsub.get_message(timeout=1.0) is not None:
                    wake()
        except Exception as exc:  # noqa: BLE001 - reconnect after a pause
            if closing.is_set():
                return
            log.warning(f"{what} listener lost Redis", extra={"error": str(exc)})
            closing.wait(2.0)


class Wakeup:
    def __init__(self, redis_url: str | None = None, database_url: str = "") -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._redis_url = redis_url
        digest = hashlib.sha1(database_url.encode()).hexdigest()[:16]
        self.channel = f"shopledger:appended:{digest}"
        self._redis = None
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=2, socket_connect_timeout=2
            )

    def appended(self, position: int) -> None:
        """Called after a commit that appended events up to ``position``."""
        self._wake()
        if self._redis is not None:
            try:
                self._redis.publish(self.channel, str(position))
            except Exception as exc:  # noqa: BLE001 - polling still covers it
                log.warning("wakeup publish failed", extra={"error": str(exc)})

    @property
    def generation(self) -> int:
        """Counts wake-ups; pass it to :meth:`wait` to catch one that came in meanwhile."""
        with self._cond:
            return self._generation

    def wait(self, timeout: float, since: int | None = None) -> None:
        """Until woken (or ``timeout``); with ``since``, a wake-up after that generation that
        already happened returns at once, so one arriving mid-batch is never lost."""
        with self._cond:
            seen = self._generation if since is None else since
            self._cond.wait_for(lambda: self._generation != seen, timeout=timeout)

    def listen(self) -> None:
        """Start relaying Redis notifications to local waiters (projector processes)."""
        if self._redis is None or self._listener is not None:
            return
        self._listener = threading.Thread(target=self._listen, name="wakeup-listener", daemon=True)
        self._listener.start()

    def interrupt(self) -> None:
        """Wake local waiters without announcing anything (used on shutdown)."""
        self._wake()

    def close(self) -> None:
        self._closing.set()
        if self._redis is not None:
            self._redis.close()

    def _wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _listen(self) -> None:
        assert self._redis is not None
        relay(self._redis, self.channel, self._wake, self._closing, "wakeup")


class Progress:
    """Projections have committed something: lets queries wait for them to pass a position
    (X-Min-Position) and the live push look for new rows at once.

    In-process: a condition variable with a generation counter. With Redis (scaled mode)
    every advance is also published, and :meth:`listen` relays the projector's advances to
    the waiters of an API process, which runs no projection itself. Losing Redis only costs
    latency: waiters poll.
    """

    def __init__(self, redis_url: str | None = None, database_url: str = "") -> None:
        self._cond = threading.Condition()
        self._generation = 0
        digest = hashlib.sha1(database_url.encode()).hexdigest()[:16]
        self.channel = f"shopledger:projected:{digest}"
        self._redis = None
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()
        self._publish_failed = False
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=2, socket_connect_timeout=2
            )

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def _wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def advanced(self) -> None:
        self._wake()
        if self._redis is not None and self._listener is None:  # a projector: announce it
            try:
                self._redis.publish(self.channel, b"1")
                self._publish_failed = False
            except Exception as exc:  # noqa: BLE001 - API processes still poll
                if not self._publish_failed:
                    log.warning("progress publish failed", extra={"error": str(exc)})
                self._publish_failed = True

    def wait(self, timeout: float, since: int | None = None) -> None:
        """Until an advance (or ``timeout``); with ``since`` (a :attr:`generation` read
        earlier), an advance that happened after it returns at once."""
        with self._cond:
            seen = self._generation if since is None else since
            self._cond.wait_for(lambda: self._generation != seen, timeout=timeout)

    def listen(self) -> None:
        """Relay the projector's advances to this process's waiters (API processes in
        scaled mode)."""
        if self._redis is None or self._listener is not None:
            return
        self._listener = threading.Thread(
            target=self._listen, name="progress-listener", daemon=True
        )
        self._listener.start()

    def _listen(self) -> None:
        assert self._redis is not None
        relay(self._redis, self.channel, self._wake, self._closing, "progress")

    def interrupt(self) -> None:
        self._wake()

    def close(self) -> None:
        self._closing.set()
        self._wake()
        if self._redis is not None:
            self._redis.close()
