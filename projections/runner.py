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
from collections.abc import Iterable

from eventsourcing.persistence import Notification
from sqlalchemy.orm import Session

from commands.application import META_KEY, ShopledgerApplication
from projections.base import Envelope, Projection
from projections.locks import ProjectionLocks
from projections.tracking import StaleTracking, advance, read_position, read_positions
from projections.wakeup import Progress, Wakeup

log = logging.getLogger(__name__)


def envelope_for(app: ShopledgerApplication, notification: Notification) -> Envelope:
    mapper = app.meta_mapper
    state = mapper.decode_state(notification)
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
) -> None:
    envelopes = [envelope_for(app, n) for n in batch if projection.wants(n.topic)]
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
    ) -> None:
        self.app = app
        self.projection = projection
        self.locks = locks
        self.batch_size = batch_size
        self.failures = 0
        self.position = 0  # after the last batch this worker applied

    @property
    def name(self) -> str:
        return self.projection.name

    def step(self) -> int:
        """Process one batch; return how many notifications it consumed (0: idle or busy)."""
        with self.locks.hold(self.name) as got:
            if not got:
                return 0  # another thread or process is running this projection
            recorder = self.app.recorder
            with recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
                start = read_position(session, self.name)
            batch = recorder.select_notifications(
                start=start, limit=self.batch_size, inclusive_of_start=False
            )
            if not batch:
                return 0
            try:
                with recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                    # Claim the batch first: on MySQL this row lock also serializes rivals.
                    advance(session, self.name, start, batch[-1].id)
                    apply_batch(self.app, self.projection, session, batch)
            except StaleTracking:
                log.info("projection moved by another process", extra={"projection": self.name})
                return 0
            self.position = batch[-1].id
            return len(batch)


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
    ) -> None:
        self.workers = workers
        self.wakeup = wakeup
        self.progress = progress
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[str, float] = {}
        self._head = 0
        self._reported: dict[str, float] = {}

    def _behind(self) -> set[str]:
        """The projections with events to process: one head and one tracking read for all,
        so a sweep after a commit touches only the projections that are behind."""
        if not self.workers:
            return set()
        recorder = self.workers[0].app.recorder
        head = self._head = recorder.max_notification_id() or 0
        with recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
            positions = read_positions(session, [w.name for w in self.workers])
        return {name for name, position in positions.items() if position < head}

    def run_once(self) -> int:
        done = 0
        behind = self._behind()
        for worker in self.workers:
            if worker.name not in behind or self._retry_at.get(worker.name, 0) > time.monotonic():
                continue
            try:
                n = worker.step()
            except Exception:
                # A failing handler stalls only its projection (visible as lag in /readyz and
                # `projections status`); the batch rolled back, so a retry is safe.
                worker.failures += 1
                delay = min(30.0, 0.5 * 2 ** min(worker.failures, 6))
                self._retry_at[worker.name] = time.monotonic() + delay
                log.exception(
                    "projection batch failed", extra={"projection": worker.name, "retryIn": delay}
                )
                continue
            worker.failures = 0
            done += n
            if n:
                self._report(worker)
            if n:
                # At once, not after the sweep: a reader waits only for the views it reads.
                self.progress.advanced()
        return done

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
            if self.run_once() == 0:
                self.wakeup.wait(self.poll_interval, since=seen)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="projections", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wakeup.interrupt()  # so the loop sees the stop flag now
        if self._thread is not None:
            self._thread.join(timeout)
