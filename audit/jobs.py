"""Background work of the audit log: verification jobs and the timed checkpoint.

* Verification (``GET /api/audit/verify``): embedded, a thread of the API process, its status
  in memory; scaled, an RQ job on ``<prefix>-audit`` run by ``shopledger worker``, its
  progress in the job's meta, so any API process answers its status.
* Checkpoints every ``SHOPLEDGER_AUDIT_CHECKPOINT_INTERVAL``: embedded, a thread; scaled, each
  worker's ticker enqueues one checkpoint job per interval slot (``SET NX`` in Redis lets one
  worker win, like the deadline sweep). Signing the same head twice records it once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from audit.checkpoints import create_checkpoint, keys_of
from audit.verify import Report, verify_store
from workers.loop import WakeableLoop

if TYPE_CHECKING:
    from shopledger.bootstrap import Container

log = logging.getLogger(__name__)

VERIFY_TIMEOUT = 3600
RESULT_TTL = 7 * 24 * 3600
#: Embedded mode keeps this many finished jobs' status.
KEEP_JOBS = 100


@dataclass
class VerifyStatus:
    job_id: str
    status: str  # queued, running, passed, failed, error
    start: int | None
    stop: int | None
    checked: int = 0
    position: int = 0  # the last position verified so far
    first_bad_position: int | None = None
    problem: str | None = None  # changed, missing, inserted, link, checkpoint
    message: str | None = None
    checkpoints: int = 0
    queued_at: str = field(default_factory=lambda: _now())
    started_at: str | None = None
    finished_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def run_verification(
    container: Container, status: VerifyStatus, on_update: Callable[[], None] = lambda: None
) -> VerifyStatus:
    """Run the verification ``status`` describes, updating it as it goes."""
    status.status, status.started_at = "running", _now()
    on_update()
    last_update = [time.monotonic()]

    def progress(position: int, _last: int) -> None:
        status.position = position
        if time.monotonic() - last_update[0] >= 0.5:
            last_update[0] = time.monotonic()
            on_update()

    recorder: Any = container.app.recorder
    try:
        report: Report = verify_store(
            container.engine,
            recorder.events_record_cls.__table__,
            keys_of(container.tokens.keys),
            start=status.start,
            stop=status.stop,
            on_progress=progress,
        )
    except Exception as exc:
        log.exception("verification failed to run")
        status.status, status.message = "error", f"{type(exc).__name__}"
    else:
        status.checked, status.position = report.checked, report.last
        status.checkpoints = report.checkpoints
        if status.stop is None:
            status.stop = report.stop
        if report.problem is None:
            status.status, status.message = "passed", report.summary()
        else:
            status.status = "failed"
            status.first_bad_position = report.problem.position
            status.problem = report.problem.kind
            status.message = report.problem.message
    status.finished_at = _now()
    on_update()
    return status


class VerificationBusy(Exception):
    """Embedded mode runs one verification at a time; ``job_id`` is the one running."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class ThreadVerifyJobs:
    """Embedded mode: each verification in a daemon thread, statuses kept in memory."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._jobs: OrderedDict[str, VerifyStatus] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, start: int | None, stop: int | None) -> VerifyStatus:
        status = VerifyStatus(uuid4().hex, "queued", start, stop)
        with self._lock:
            busy = [j for j in self._jobs.values() if j.status in ("queued", "running")]
            if busy:  # each run reads the whole range: one at a time per process
                raise VerificationBusy(busy[0].job_id)
            self._jobs[status.job_id] = status
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        threading.Thread(
            target=run_verification,
            args=(self.container, status),
            name=f"audit-verify-{status.job_id[:8]}",
            daemon=True,
        ).start()
        return status

    def get(self, job_id: str) -> VerifyStatus | None:
        with self._lock:
            found = self._jobs.get(job_id)
            return None if found is None else VerifyStatus(**found.as_dict())


def audit_queue_name(prefix: str) -> str:
    return f"{prefix}-audit"


class RqVerifyJobs:
    """Scaled mode: an RQ job per verification; the status lives in the job's meta."""

    def __init__(self, container: Container) -> None:
        dispatcher = container.dispatcher
        assert dispatcher is not None
        from rq import Queue

        self.prefix = dispatcher.prefix
        self.redis = dispatcher.redis
        self.queue = Queue(audit_queue_name(self.prefix), connection=self.redis)

    def start(self, start: int | None, stop: int | None) -> VerifyStatus:
        status = VerifyStatus(f"{self.prefix}-verify-{uuid4().hex}", "queued", start, stop)
        self.queue.enqueue(
            verify_job,
            status.as_dict(),
            job_id=status.job_id,
            job_timeout=VERIFY_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=RESULT_TTL,
            meta={"status": status.as_dict()},
        )
        return status

    def get(self, job_id: str) -> VerifyStatus | None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        if not job_id.startswith(f"{self.prefix}-verify-"):
            return None
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return None
        status = VerifyStatus(**job.get_meta(refresh=True).get("status", {}))
        if job.is_failed and status.status not in ("passed", "failed"):
            status.status, status.message = "error", "the verification job failed"
        return status


def verify_job(status: dict[str, Any]) -> dict[str, Any]:
    """RQ job: run one verification, publishing its progress in the job's meta."""
    from rq import get_current_job

    from workers.jobs import current

    job = get_current_job()
    state = VerifyStatus(**status)

    def publish() -> None:
        if job is not None:
            job.meta["status"] = state.as_dict()
            job.save_meta()

    return run_verification(current(), state, publish).as_dict()


_registry_lock = threading.Lock()


def verify_jobs_for(holder: Any, container: Container) -> ThreadVerifyJobs | RqVerifyJobs:
    """The verification jobs of an API process (kept on ``holder``, the app's state)."""
    with _registry_lock:
        jobs = getattr(holder, "audit_verify_jobs", None)
        if jobs is None:
            jobs = (
                RqVerifyJobs(container)
                if container.dispatcher is not None
                else ThreadVerifyJobs(container)
            )
            holder.audit_verify_jobs = jobs
        return jobs


# --- the timed checkpoint ---------------------------------------------------------------------
def checkpoint_now(container: Container) -> None:
    try:
        result = create_checkpoint(container)
    except Exception:
        log.exception("audit checkpoint failed")
        return
    if result.created and result.signed is not None:
        log.info(
            "audit checkpoint",
            extra={"signedPosition": result.signed.position, "eventPosition": result.position},
        )


class CheckpointThread(WakeableLoop):
    """Embedded mode: sign the chain's head every interval."""

    name = "audit-checkpoints"

    def __init__(self, container: Container) -> None:
        super().__init__()
        self.container = container
        self.interval = container.settings.audit_checkpoint_interval.total_seconds()
        self._first = True

    def run_once(self) -> float:
        if self._first:  # not at start-up: the first interval starts now
            self._first = False
            return self.interval
        checkpoint_now(self.container)
        return self.interval


def checkpoint_job() -> str:
    """RQ job: sign the chain's head (a no-op when it has not moved)."""
    from workers.jobs import current

    checkpoint_now(current())
    return "done"


class CheckpointTicker:
    """Each worker's ticker: enqueue one checkpoint job per interval slot across workers."""

    def __init__(self, container: Container) -> None:
        dispatcher = container.dispatcher
        assert dispatcher is not None
        from rq import Queue

        self.prefix = dispatcher.prefix
        self.redis = dispatcher.redis
        self.queue = Queue(audit_queue_name(self.prefix), connection=self.redis)
        self.interval = container.settings.audit_checkpoint_interval.total_seconds()
        self._stop = threading.Event()

    def tick(self, now: float | None = None) -> bool:
        slot = int((now if now is not None else time.time()) // self.interval)
        try:
            won = bool(
                self.redis.set(
                    f"{self.prefix}:checkpoint-slot:{slot}",
                    os.getpid(),
                    nx=True,
                    ex=max(60, int(self.interval * 3)),
                )
            )
            if won:
                self.queue.enqueue(
                    checkpoint_job,
                    job_id=f"{self.prefix}-checkpoint-{slot}",
                    job_timeout=300,
                    result_ttl=3600,
                    failure_ttl=RESULT_TTL,
                )
        except Exception as exc:  # noqa: BLE001 - Redis down: the next slot tries again
            log.warning("checkpoint tick failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False
        return won

    def start(self) -> None:
        threading.Thread(target=self._run, name="checkpoint-ticker", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        # The first slot boundary after start, then every interval.
        while not self._stop.wait(self.interval - time.time() % self.interval + 0.01):
            self.tick()
