"""Aggregates kept in memory between commands, never ahead of what is committed.

Loading an aggregate means one query and a replay of its events (or snapshot); a checkout
loaded about twenty. The cache keeps the last state of recently used aggregates and hands out
copies, under three rules:

* **Only committed state goes in**: an aggregate read from the store (committed by someone),
  or one this process saved, put in *after* its transaction committed. A rolled-back attempt
  puts nothing and evicts what it touched.
* **Other writers are seen before use**: every use first reads the event log past the
  position the cache has seen (one query for any number of aggregates, usually a few rows:
  the events other processes appended meanwhile) and evicts each aggregate that has a newer
  version there. Appends commit in id order (commands/persistence.py), so after that read the
  cache is as fresh as a load would have been.
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
#: (position after, limit) -> [(position, originator id, version)] in position order
Changes = Callable[[int, int], list[tuple[int, UUID, int]]]


class AggregateCache:
    def __init__(self, changes: Changes, head: Callable[[], int], size: int = 20_000) -> None:
        self.size = size
        self._changes = changes
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
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def refresh(self) -> int:
        """Evict what other writers changed since the last look (one query); answer the
        position the cache is now fresh up to (give it back to :meth:`put`)."""
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
                for row in rows:
                    _, originator_id, version = row
                    cached = self._items.get(originator_id)
                    if cached is not None and cached.version < version:
                        del self._items[originator_id]
                    self._recent.append(row)
                while len(self._recent) > MAX_TAIL:
                    self._floor = self._recent.popleft()[0]
                if rows:
                    self.seen = rows[-1][0]
                return self.seen

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
        return {"size": len(self._items), "hits": self.hits, "misses": self.misses}

    def load(self, get: Callable[[UUID], Aggregate], aggregate_id: UUID) -> Aggregate:
        """A read outside a command (the account behind a token): a fresh copy, from the
        cache when it has it, else through ``get`` (the repository), then kept."""
        as_of = self.refresh()
        found = self.get(aggregate_id) if self.enabled else None
        if found is None:
            found = get(aggregate_id)
            self.put(found, as_of)
        return found
