"""Runs projections: read a batch of notifications, apply it, advance tracking, one transaction.

Exactly once: view rows and the tracking position commit together, and the position is
advanced by compare-and-set, so a crash between the two or a second projector process can
never apply an event twice. Event ids may have permanent gaps (a rolled-back append burns its
id), so we always read *after* the tracked position and never assume contiguity.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from eventsourcing.persistence import Notification
from sqlalchemy.orm import Session

from commands.application import META_KEY, ShopledgerApplication
from commands.reachability import Outage, unreachable
from projections.base import Envelope, Projection
from projections.locks import ProjectionLocks
from projections.tracking import (
    StaleTracking,
    advance,
    advance_many,
    read_position,
    read_positions,
)
from projections.wakeup import Progress, Wakeup

log = logging.getLogger(__name__)


class Decoded:
    """States decoded lately, by position, shared by the projections of one runner: fifteen
    projections stepping over the same new events decode each event once, not fifteen times
    (decompressing and JSON-decoding a state was most of what a projection paid per event)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._states: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, position: int) -> dict[str, Any] | None:
        return self._states.get(position)

    def put(self, position: int, state: dict[str, Any]) -> None:
        with self._lock:
            self._states[position] = state
            if len(self._states) > self.size:
                self._states.popitem(last=False)  # the oldest


def envelope_for(
    app: ShopledgerApplication, notification: Notification, decoded: Decoded | None = None
) -> Envelope:
    mapper = app.meta_mapper
    state = decoded.get(notification.id) if decoded is not None else None
    if state is None:
        state = mapper.decode_state(notification)
        if decoded is not None:
            decoded.put(notification.id, state)
    return Envelope(
        position=notification.id,
        originator_id=notification.originator_id,  # type: ignore[arg-type]
        originator_version=notification.originator_version,
        topic=notification.topic,
        state=state,
        meta=state.get(META_KEY) or {},
        _decode=lambda: mapper.event_from_state(notification, state),
    )


def apply_batch(
    app: ShopledgerApplication,
    projection: Projection,
    session: Session,
    batch: Iterable[Notification],
    decoded: Decoded | None = None,
) -> None:
    envelopes = [envelope_for(app, n, decoded) for n in batch if projection.wants(n.topic)]
    if envelopes:
        projection.apply_many(session, envelopes)


class ProjectionWorker:
    """Advances one projection one batch at a time."""

    def __init__(
        self,
        app: ShopledgerApplication,
        projection: Projection,
        locks: ProjectionLocks,
        batch_size: int = 500,
        decoded: Decoded | None = None,
        catch_up_batch_size: int | None = None,
    ) -> None:
        self.app = app
        self.projection = projection
        self.locks = locks
        self.batch_size = batch_size
        self.catch_up_batch_size = max(batch_size, catch_up_batch_size or batch_size)
        self.decoded = decoded if decoded is not None else Decoded()
        self.failures = 0
        self.position = 0  # after the last batch this worker applied

    @property
    def name(self) -> str:
        return self.projection.name

    def limit(self, start: int, head: int) -> int:
        """Events to read after ``start``: larger batches while far behind."""
        return self.catch_up_batch_size if head - start > self.batch_size else self.batch_size

    def step(self) -> int:
        """Process one batch; return how many positions it moved past (0: idle or busy).

        Only the events the projection handles are read (by topic, in the database); when
        fewer than a batch of them are left, the projection moves to the head read before
        them, past every event it does not handle: appends commit in id order (see
        commands/persistence.py), so nothing can still appear below that head."""
        with self.locks.hold(self.name) as got:
            if not got:
                return 0  # another thread or process is running this projection
            recorder = self.app.recorder
            with recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
                start = read_position(session, self.name)
            head = recorder.max_notification_id() or 0
            if head <= start:
                return 0
            limit = self.limit(start, head)
            batch = recorder.select_notifications(
                start=start,
                limit=limit,
                stop=head,
                topics=self.projection.topics(),
                inclusive_of_start=False,
            )
            end = batch[-1].id if len(batch) == limit else head
            try:
                with recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                    # Claim the batch first: on MySQL this row lock also serializes rivals.
                    advance(session, self.name, start, end)
                    apply_batch(self.app, self.projection, session, batch, self.decoded)
            except StaleTracking:
                log.info("projection moved by another process", extra={"projection": self.name})
                return 0
            self.position = end
            return end - start


#: Seconds between progress lines of a projection that is catching up.
REPORT_EVERY = 5.0


class ProjectionRunner:
    """Keeps a set of projections up to date until stopped."""

    def __init__(
        self,
        workers: list[ProjectionWorker],
        wakeup: Wakeup,
        progress: Progress,
        poll_interval: float = 1.0,
        max_retry_delay: float = 30.0,
    ) -> None:
        self.workers = workers
        #: The database lost: one log line, a capped backoff, one line when it is back.
        self.database = Outage("the database", log, max_retry_delay)
        self.wakeup = wakeup
        self.progress = progress
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[str, float] = {}
        self._head = 0
        self._reported: dict[str, float] = {}

    def _behind(self) -> dict[str, int]:
        """The projections with events to process, with their positions: one head and one
        tracking read for all, so a sweep after a commit touches only those behind."""
        if not self.workers:
            return {}
        recorder = self.workers[0].app.recorder
        head = self._head = recorder.max_notification_id() or 0
        with recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
            positions = read_positions(session, [w.name for w in self.workers])
        return {name: position for name, position in positions.items() if position < head}

    def run_once(self) -> int:
        """One sweep. Projections at the same position (all of them, after a commit, when
        they keep up) go together: one read, each event decoded once, one transaction."""
        done = 0
        behind = self._behind()
        now = time.monotonic()
        by_position: dict[int, list[ProjectionWorker]] = {}
        for worker in self.workers:
            if worker.name in behind and self._retry_at.get(worker.name, 0) <= now:
                by_position.setdefault(behind[worker.name], []).append(worker)
        for position, group in by_position.items():
            together = self._step_together(position, group) if len(group) > 1 else None
            if together is not None:
                done += together
                continue
            for worker in group:  # alone, or the group could not go together
                done += self._step_one(worker)
        return done

    def _step_one(self, worker: ProjectionWorker) -> int:
        try:
            n = worker.step()
        except Exception as exc:
            if unreachable(exc):
                raise  # not this projection's fault: the run loop waits for the database
            # A failing handler stalls only its projection (visible as lag in /readyz and
            # `projections status`); the batch rolled back, so a retry is safe.
            worker.failures += 1
            delay = min(30.0, 0.5 * 2 ** min(worker.failures, 6))
            self._retry_at[worker.name] = time.monotonic() + delay
            log.exception(
                "projection batch failed", extra={"projection": worker.name, "retryIn": delay}
            )
            return 0
        worker.failures = 0
        if n:
            self._report(worker)
            # At once, not after the sweep: a reader waits only for the views it reads.
            self.progress.advanced()
        return n

    def _step_together(self, position: int, group: list[ProjectionWorker]) -> int | None:
        """Advance the projections of ``group``, all at ``position``, by one batch in one
        transaction; None if fewer than two could go (the caller steps them one by one) or
        the batch failed (rolled back: stepped alone, a failing projection stalls alone)."""
        first = group[0]
        recorder = first.app.recorder
        with first.locks.hold_many([w.name for w in group]) as held:
            members = [w for w in group if w.name in held]
            if len(members) < 2:
                return None
            with recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
                positions = read_positions(session, [w.name for w in members])
            members = [w for w in members if positions[w.name] == position]
            if len(members) < 2:
                return None
            head = recorder.max_notification_id() or 0
            if head <= position:
                return 0
            wanted = [w.projection.topics() for w in members]
            topics = () if not all(wanted) else tuple(sorted({t for ts in wanted for t in ts}))
            try:
                limit = first.limit(position, head)
                batch = recorder.select_notifications(
                    start=position,
                    limit=limit,
                    stop=head,
                    topics=topics,
                    inclusive_of_start=False,
                )
                end = batch[-1].id if len(batch) == limit else head
                envelopes = [envelope_for(first.app, n, first.decoded) for n in batch]
                with recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                    advance_many(session, [w.name for w in members], position, end)
                    for worker in members:
                        mine = [e for e in envelopes if worker.projection.wants(e.topic)]
                        if mine:
                            worker.projection.apply_many(session, mine)
            except Exception as exc:
                if unreachable(exc):
                    raise
                log.info(
                    "projections stepped together failed; stepping each alone",
                    extra={"projections": [w.name for w in members]},
                    exc_info=True,
                )
                return None
        for worker in members:
            worker.position = end
            worker.failures = 0
            self._report(worker)
        self.progress.advanced()
        return (end - position) * len(members)

    def _report(self, worker: ProjectionWorker) -> None:
        """Progress of a long catch-up (a new projection starting from the first event, a
        rebuilt one, a projector back after downtime): one log line per projection every few
        seconds while it is more than a batch behind, and one when it has caught up."""
        behind = self._head - worker.position
        now = time.monotonic()
        started = self._reported.get(worker.name)
        if behind > worker.batch_size and (started is None or now - started >= REPORT_EVERY):
            log.info(
                "projection catching up",
                extra={
                    "projection": worker.name,
                    "position": worker.position,
                    "head": self._head,
                    "percent": round(100 * worker.position / max(self._head, 1), 1),
                },
            )
            self._reported[worker.name] = now
        elif behind <= worker.batch_size and started is not None:
            log.info(
                "projection caught up",
                extra={"projection": worker.name, "position": worker.position},
            )
            del self._reported[worker.name]

    def catch_up(self, timeout: float = 30.0) -> None:
        """Run until every projection has nothing left to do (tests, rebuild, CLI)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.run_once() == 0:
                # Idle here, but another thread may hold a projection's lock mid-batch: done
                # only when no healthy projection is behind.
                waiting = {
                    n for n in self._behind() if self._retry_at.get(n, 0) <= time.monotonic()
                }
                if not waiting:
                    return
                time.sleep(0.005)
            if time.monotonic() > deadline:
                raise TimeoutError("projections did not catch up in time")

    def run(self) -> None:
        while not self._stop.is_set():
            seen = self.wakeup.generation
            try:
                done = self.run_once()
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._stop.wait(self.database.down(exc))
                continue
            self.database.up()
            if done == 0:
                self.wakeup.wait(self.poll_interval, since=seen)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="projections", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wakeup.interrupt()  # so the loop sees the stop flag now
        if self._thread is not None:
            self._thread.join(timeout)
