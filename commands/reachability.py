"""Losing the database or Redis for a while: one log line when it goes, one when it is back.

Long-running processes (``shopledger worker``, ``shopledger projections run``) must survive a
database or Redis that is down, restarting or not created yet: they wait with a capped
exponential backoff and carry on, instead of printing a traceback and exiting.
:func:`unreachable` tells a lost connection from a real error; :class:`Outage` keeps the log
readable (the first failure of an outage is logged, the retries are not, the recovery is).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: MySQL/MariaDB errors that mean "no usable server or database (yet)", not a bad statement:
#: can't connect (2002, 2003), gone away or lost (2006, 2013, 2055), unknown database (1049,
#: e.g. not created yet), access denied (1045, a user not created yet), too many connections
#: (1040), shutting down (1053), connection killed (1927), closed for inactivity (4031).
_MYSQL_CONNECTION_ERRORS = frozenset(
    {1040, 1045, 1049, 1053, 1927, 2002, 2003, 2006, 2013, 2055, 4031}
)
_SQLITE_CONNECTION_ERRORS = ("unable to open database file", "disk i/o error")

#: Backoff of a process waiting for a server: the first pause, doubled up to the cap.
FIRST_DELAY = 0.5
MAX_DELAY = 30.0


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        cause = todo.pop()
        if cause is None or any(cause is s for s in seen) or len(seen) > 20:
            continue
        seen.append(cause)
        todo += [getattr(cause, "orig", None), cause.__cause__, cause.__context__]
    return seen


def cut_off(exc: BaseException) -> str | None:
    """``"Redis"`` or ``"the database"`` if ``exc`` (or what caused it) means that server
    cannot be reached; None for any other error."""
    import pymysql
    import redis.exceptions

    chain = _chain(exc)
    for cause in chain:
        if isinstance(cause, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return "Redis"
    for cause in chain:
        if isinstance(cause, (pymysql.err.OperationalError, pymysql.err.InterfaceError)):
            args = cause.args
            if not args or not isinstance(args[0], int) or args[0] in _MYSQL_CONNECTION_ERRORS:
                return "the database"
        sqlite = type(cause).__module__ == "sqlite3" and type(cause).__name__ == "OperationalError"
        if sqlite and any(text in str(cause).lower() for text in _SQLITE_CONNECTION_ERRORS):
            return "the database"
    for cause in chain:
        if isinstance(cause, (ConnectionError, TimeoutError)):  # refused, reset, timed out
            return "the database"
    return None


def unreachable(exc: BaseException) -> bool:
    """True if ``exc`` (or what caused it) means the database or Redis cannot be reached."""
    return cut_off(exc) is not None


def reason(exc: BaseException) -> str:
    """One short line saying why (no traceback, no password: URLs are never in these)."""
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Outage:
    """Whether ``what`` ("the database", "Redis") is reachable, as seen by one process.

    :meth:`down` logs one warning when an outage starts and returns how long to wait before
    the next try (0.5 s, doubling, at most ``max_delay``); :meth:`up` logs one line when it
    ends. Thread-safe: a projector's threads or a worker's jobs may report the same outage.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        max_delay: float = MAX_DELAY,
        first_delay: float = FIRST_DELAY,
        retrying: str | None = None,
    ) -> None:
        self.what = what
        #: What the warning says happens meanwhile (default: the backoff of :meth:`down`).
        self.retrying = retrying
        self.log = logger
        self.max_delay = max(first_delay, max_delay)
        self.first_delay = first_delay
        self.failures = 0
        self.since: float | None = None
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        return self.since is not None

    def down(self, exc: BaseException | str) -> float:
        """Report a failed try; the seconds to wait before the next one."""
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()
                self.failures = 0
                why = exc if isinstance(exc, str) else reason(exc)
                retrying = self.retrying or (
                    f"retrying with backoff (at most every {self.max_delay:g} s) until it is back"
                )
                self.log.warning(f"cannot reach {self.what}; {retrying}", extra={"error": why})
            self.failures += 1
            delay: float = self.first_delay * 2.0 ** min(self.failures - 1, 20)
            return min(self.max_delay, delay)

    def up(self) -> None:
        """Report a successful try (logs only if an outage just ended)."""
        if self.since is None:
            return
        with self._lock:
            if self.since is None:
                return
            seconds = round(time.monotonic() - self.since, 1)
            self.since = None
            self.failures = 0
        self.log.warning(f"{self.what} is reachable again", extra={"downSeconds": seconds})


def until_reachable(
    attempt: Callable[[], object],
    outage: Outage,
    stop: threading.Event | None = None,
) -> bool:
    """Call ``attempt`` until it does not fail with :func:`unreachable` (other errors
    propagate); False if ``stop`` was set while waiting."""
    while True:
        try:
            attempt()
        except Exception as exc:
            if not unreachable(exc):
                raise
            delay = outage.down(exc)
            if stop is not None:
                if stop.wait(delay):
                    return False
            else:
                time.sleep(delay)
            continue
        outage.up()
        return True
