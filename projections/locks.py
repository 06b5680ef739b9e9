"""Per-projection mutual exclusion across threads and processes.

The compare-and-set on the tracking row is what makes processing exactly-once; this lock is
what keeps two projector processes from doing the same work twice and lets a rebuild pause the
live projector while it swaps tables in. MySQL/MariaDB: ``GET_LOCK`` (released by the server
if the process dies). SQLite file: ``flock`` on a file beside the database. In-memory SQLite:
a thread lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from commands.persistence import is_mysql


class ProjectionLocks:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thread_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        database = engine.url.database or ""
        self._memory = engine.dialect.name == "sqlite" and database in ("", ":memory:")
        self._lock_dir = (
            None if self._memory or is_mysql(engine) else Path(database).resolve().parent
        )

    @contextlib.contextmanager
    def hold(self, name: str, timeout: float = 0.0) -> Iterator[bool]:
        """Yield True while holding the lock for ``name``; False if it could not be had in time."""
        with self._thread_lock(name, timeout) as local:
            if not local:
                yield False
                return
            if is_mysql(self.engine):
                with self._mysql(name, timeout) as got:
                    yield got
            elif self._lock_dir is not None:
                with self._flock(name, timeout) as got:
                    yield got
            else:
                yield True

    @contextlib.contextmanager
    def hold_many(self, names: list[str]) -> Iterator[list[str]]:
        """Yield the names of ``names`` whose locks could be had at once, held until the end.
        Never waits, so two holders of overlapping sets cannot deadlock. On MySQL every lock
        is taken on one connection (one GET_LOCK each), not a connection per projection."""
        with contextlib.ExitStack() as stack:
            local = [n for n in names if stack.enter_context(self._thread_lock(n, 0.0))]
            if is_mysql(self.engine):
                yield stack.enter_context(self._mysql_many(local))
            elif self._lock_dir is not None:
                yield [n for n in local if stack.enter_context(self._flock(n, 0.0))]
            else:
                yield local

    def _lock_name(self, name: str) -> str:
        # GET_LOCK names are server-wide: qualify with the database so test databases don't meet.
        return f"sl:{self.engine.url.database}:{name}"[:64]

    @contextlib.contextmanager
    def _mysql_many(self, names: list[str]) -> Iterator[list[str]]:
        got: list[str] = []
        with self.engine.connect() as conn:
            try:
                if names:
                    # One round trip for all: SELECT GET_LOCK(a, 0), GET_LOCK(b, 0), ...
                    try:
                        row = conn.execute(
                            select(*(func.get_lock(self._lock_name(n), 0) for n in names))
                        ).one()
                    except BaseException:
                        # Cut off partway, the session may hold some of them: close it (the
                        # server frees a closed session's locks) rather than pool it.
                        conn.invalidate()
                        raise
                    got = [n for n, ok in zip(names, row, strict=True) if ok]
                yield got
            finally:
                if got:
                    conn.execute(select(*(func.release_lock(self._lock_name(n)) for n in got)))
                conn.rollback()

    @contextlib.contextmanager
    def _thread_lock(self, name: str, timeout: float) -> Iterator[bool]:
        with self._guard:
            lock = self._thread_locks.setdefault(name, threading.Lock())
        got = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()

    @contextlib.contextmanager
    def _mysql(self, name: str, timeout: float) -> Iterator[bool]:
        lock_name = self._lock_name(name)
        with self.engine.connect() as conn:
            got = conn.execute(
                text("SELECT GET_LOCK(:n, :t)"), {"n": lock_name, "t": max(0, int(timeout))}
            ).scalar()
            try:
                yield bool(got)
            finally:
                if got:
                    conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": lock_name})
                conn.rollback()

    @contextlib.contextmanager
    def _flock(self, name: str, timeout: float) -> Iterator[bool]:
        assert self._lock_dir is not None
        path = self._lock_dir / f".{Path(self.engine.url.database or 'db').name}.{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        got = False
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    got = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.02)
            yield got
        finally:
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
