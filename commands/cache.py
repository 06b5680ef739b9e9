"""Aggregates kept in memory between commands, never ahead of what is committed.

Loading an aggregate means one query and a replay of its events (or snapshot); a checkout
loaded about twenty. The cache keeps the last state of recently used aggregates and hands out
copies, under three rules:

* **Only committed state goes in**: an aggregate read from the store (committed by someone),
  or one this process saved, put in *after* its transaction committed. A rolled-back attempt
  puts nothing and evicts what it touched.
* **Other writers are seen before use**: every use first reads the event log past the
  position the cache has seen (one query for any number of aggregates, usually a few rows:
  the events other processes appended meanwhile). A cached aggregate with newer events there
  is fast-forwarded: those events, read by the same query, are applied to a copy that then
  replaces it (no second query, no replay from a snapshot). Anything that does not apply
  cleanly (a version gap, an event that cannot be decoded) evicts instead. Appends commit in
  id order (commands/persistence.py), so after that read the cache is as fresh as a load
  would have been.
* **Copies out**: a handler mutates what it gets; the cached object is never handed out.

A stale read that slips through the gap between that read and the save (another process
committing in between) is caught like any concurrent write: the save's version check fails,
the command bus evicts and retries.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import BaseAggregate

#: More changes than this since the last look: forget everything rather than read them all.
MAX_TAIL = 5_000

Aggregate = BaseAggregate[UUID]
#: One event of the log: (position, originator id, version, ...); what follows the version
#: (topic and stored state, in production) is only read by the ``decode`` function.
Change = tuple[Any, ...]
#: (position after, limit) -> the changes, in position order
Changes = Callable[[int, int], list[Change]]
#: A change -> its domain event (to apply to the cached aggregate)
Decode = Callable[[Change], Any]


class AggregateCache:
    def __init__(
        self,
        changes: Changes,
        head: Callable[[], int],
        size: int = 20_000,
        decode: Decode | None = None,
    ) -> None:
        self.size = size
        self._changes = changes
        self._decode = decode  # None: evict what changed instead of fast-forwarding it
        self._head = head
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self.seen: int | None = None  # the log position the cache is fresh up to
        # The changes read lately, complete from position ``_floor``: an aggregate loaded (or
        # saved) while another thread moved ``seen`` on is checked against them before it
        # goes in, so the cache never keeps a state that a change it already read replaced.
        self._recent: deque[tuple[int, UUID, int]] = deque()
        self._floor = 0
        self._last_read = 0  # monotonic ns when the latest read of the log began
        self.hits = self.misses = self.forwarded = 0

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def refresh(self) -> int:
        """Bring the cache up to what other writers changed since the last look (one query):
        fast-forward or evict; answer the position the cache is now fresh up to (give it
        back to :meth:`put`)."""
        if not self.enabled:
            return 0
        arrived = time.monotonic_ns()
        with self._refresh_lock:
            if self._last_read > arrived and self.seen is not None:
                # Another thread read the log after this call began (and has finished: we
                # hold the lock): that read is as fresh as ours would be. Under concurrent
                # requests most refreshes cost nothing.
                return self.seen
            self._last_read = time.monotonic_ns()
            if self.seen is None:
                self.seen = self._floor = self._head()
                return self.seen
            rows = self._changes(self.seen, MAX_TAIL + 1)
            with self._lock:
                if len(rows) > MAX_TAIL:
                    self._items.clear()
                    self._recent.clear()
                    self.seen = self._floor = self._head()
                    return self.seen
                behind: dict[UUID, list[Change]] = {}
                for row in rows:
                    position, originator_id, version = row[:3]
                    cached = self._items.get(originator_id)
                    if cached is not None and cached.version < version:
                        behind.setdefault(originator_id, []).append(row)
                    self._recent.append((position, originator_id, version))
                for originator_id, newer in behind.items():
                    self._forward(originator_id, newer)
                while len(self._recent) > MAX_TAIL:
                    self._floor = self._recent.popleft()[0]
                if rows:
                    self.seen = rows[-1][0]
                return self.seen

    def _forward(self, aggregate_id: UUID, newer: list[Change]) -> None:
        """Apply ``newer`` (in version order) to a copy of the cached aggregate and keep the
        copy; evict when they do not follow on from it. Called holding ``_lock``."""
        cached = self._items[aggregate_id]
        if self._decode is None:
            del self._items[aggregate_id]
            return
        forwarded = copy.deepcopy(cached)  # the cached object may be being copied out
        try:
            for change in newer:
                if change[2] <= forwarded.version:
                    continue  # this process's own save, already in
                if change[2] != forwarded.version + 1:
                    raise LookupError("a version gap")
                forwarded = self._decode(change).mutate(forwarded)
        except Exception:  # noqa: BLE001 - a load from the store will do it right
            del self._items[aggregate_id]
            return
        self._items[aggregate_id] = forwarded
        self.forwarded += 1

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        """A copy of the cached aggregate, or None."""
        with self._lock:
            found = self._items.get(aggregate_id)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(aggregate_id)
            self.hits += 1
        return copy.deepcopy(found)

    def put(self, aggregate: Aggregate, as_of: int) -> None:
        """Keep a copy of a committed state, read or saved after the cache was fresh up to
        ``as_of`` (what :meth:`refresh` answered): unless a change read since replaced it."""
        if not self.enabled or aggregate.pending_events:
            return
        kept = copy.deepcopy(aggregate)
        with self._lock:
            if self.seen is None or as_of < self._floor:
                return  # the changes since as_of are no longer all known
            if as_of < self.seen:
                for position, originator_id, version in reversed(self._recent):
                    if position <= as_of:
                        break
                    if originator_id == aggregate.id and version > kept.version:
                        return
            current = self._items.get(aggregate.id)
            if current is not None and current.version > kept.version:
                return
            self._items[aggregate.id] = kept
            self._items.move_to_end(aggregate.id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def evict(self, ids: Iterable[UUID]) -> None:
        with self._lock:
            for aggregate_id in ids:
                self._items.pop(aggregate_id, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "size": len(self._items),
            "hits": self.hits,
            "misses": self.misses,
            "forwarded": self.forwarded,
        }

    def load(self, get: Callable[[UUID], Aggregate], aggregate_id: UUID) -> Aggregate:
        """A read outside a command (the account behind a token): a fresh copy, from the
        cache when it has it, else through ``get`` (the repository), then kept."""
        as_of = self.refresh()
        found = self.get(aggregate_id) if self.enabled else None
        if found is None:
            found = get(aggregate_id)
            self.put(found, as_of)
        return found
