"""``shopledger worker``: an RQ worker (with RQ's scheduler) for the timed rules and the mail.

Why RQ's ``SimpleWorker``: jobs run in the worker process itself, against the one container it
built at start. The default forking worker would have to build the whole application in every
job's child (a fork must not reuse the parent's database connections: a child that did
corrupted a SQLite file). Building it takes 110-230 ms on MariaDB here and a firing 15-25 ms,
so forking would cost ten times the work it protects. A hung job is still stopped by the job
timeout (SIGALRM), and a worker killed mid-job loses nothing: the command either committed or
it did not, and the sweep fires anything left.

RQ's scheduler runs in a process forked from this one (``with_scheduler``). A child forked here
gets ``engine.dispose(close=False)`` (it must not touch the parent's pooled connections) and,
on Linux, dies with the worker (PR_SET_PDEATHSIG): otherwise a worker killed with ``kill -9``
would leave its scheduler running alone.

The periodic sweep: RQ has no built-in periodic job that survives every worker (``rq cron``
is a separate process kind and absent from RQ 2.0), so each worker runs a small ticker thread
that, once per sweep interval, enqueues the sweep job for that time slot. A ``SET NX`` per slot
in Redis lets one worker win, so N workers enqueue one sweep; flushing Redis only resets the
slots. The ticker enqueues the sweep directly (not with ``enqueue_at``), so the sweep keeps
running even if RQ's scheduler is down.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from commands.reachability import Outage, unreachable, until_reachable
from workers import jobs

if TYPE_CHECKING:
    from shopledger.bootstrap import Container
    from workers.jobs import RqDispatcher

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        log.debug("PR_SET_PDEATHSIG unavailable", exc_info=True)


class SweepTicker:
    """Enqueues the sweep job once per slot of ``interval`` seconds across all workers."""

    def __init__(
        self, dispatcher: RqDispatcher, interval: float, outage: Outage | None = None
    ) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self.outage = outage  # Redis, as this worker sees it: one line per outage
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: float | None = None) -> bool:
        """Enqueue this slot's sweep unless another worker did; True if this one did."""
        slot = int((now if now is not None else time.time()) // self.interval)
        key = f"{self.dispatcher.prefix}:sweep-slot:{slot}"
        try:
            won = bool(
                self.dispatcher.redis.set(
                    key, os.getpid(), nx=True, ex=max(60, int(self.interval * 3))
                )
            )
        except Exception as exc:  # noqa: BLE001 - Redis down: the next tick tries again
            if self.outage is not None and unreachable(exc):
                self.outage.down(exc)
            else:
                log.warning("sweep tick failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False
        if self.outage is not None:
            self.outage.up()
        if won:
            self.dispatcher.sweep_now(slot)
        return won

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sweep-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            self.tick()
            now = time.time()
            if self._stop.wait(self.interval - now % self.interval + 0.01):
                return


def run_worker(
    container: Container,
    *,
    burst: bool = False,
    with_scheduler: bool = True,
    name: str | None = None,
) -> int:
    """Work the rules and mail queues until stopped (SIGTERM/SIGINT: finish the job, then quit)."""
    from rq import SimpleWorker
    from rq.exceptions import StopRequested

    dispatcher = container.dispatcher
    if dispatcher is None:
        raise ValueError("shopledger worker needs SHOPLEDGER_REDIS_URL")
    jobs.use(container)
    engine = container.engine

    def after_fork() -> None:
        engine.dispose(close=False)
        _die_with_parent()

    os.register_at_fork(after_in_child=after_fork)
    max_delay = container.settings.reconnect_max_delay.total_seconds()
    redis_down = Outage("Redis", log, max_delay)
    _use_patient_scheduler(max_delay)
    quiet = _OneLinePerOutage(redis_down)
    logging.getLogger("rq.worker").addFilter(quiet)
    ticker = SweepTicker(
        dispatcher, container.settings.rule_sweep_interval.total_seconds(), redis_down
    )
    # Redis down or not started yet: wait for it (one line, then one when it is back).
    until_reachable(dispatcher.redis.ping, redis_down)
    log.info(
        "worker starting",
        extra={
            "queues": [q.name for q in dispatcher.queues],
            "scheduler": with_scheduler,
            "sweepInterval": ticker.interval,
        },
    )
    from audit.jobs import CheckpointTicker

    checkpoints = CheckpointTicker(container)  # signs the event chain's head every interval
    if burst:
        ticker.tick()
    else:
        ticker.start()
        checkpoints.start()
    stopping = threading.Event()
    try:
        while True:
            worker = SimpleWorker(dispatcher.queues, connection=dispatcher.redis, name=name)
            try:
                worker.work(
                    burst=burst,
                    with_scheduler=with_scheduler,
                    logging_level=container.settings.log_level,
                )
            except Exception as exc:
                if _stop_was_requested(worker) and (
                    isinstance(exc, StopRequested) or unreachable(exc)
                ):
                    # RQ took SIGTERM/SIGINT (its handler runs wherever this thread was, e.g.
                    # joining RQ's scheduler during an outage) and then failed on a lost
                    # connection or stopped with StopRequested: the signal is spent, so
                    # starting a new RQ worker would ignore it until kill -9.
                    return 0
                # RQ retries a lost connection while it waits for jobs; elsewhere (starting,
                # a heartbeat) it gives up: wait for Redis and start a new RQ worker.
                if not unreachable(exc):
                    raise
                redis_down.down(exc)
            else:
                if burst or getattr(worker, "_shutdown_requested_date", True) is not None:
                    return 0  # drained, or SIGTERM/SIGINT: a normal end
                # RQ quits its loop (returning normally) on an error it does not handle, such
                # as Redis lost around a job: start a new RQ worker rather than exit.
                log.info("RQ worker stopped on an error; starting a new one")
            # Between two RQ workers, SIGTERM/SIGINT end this process (RQ's handlers are
            # those of the worker that quit).
            signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            signal.signal(signal.SIGINT, lambda *_: stopping.set())
            if stopping.wait(1.0) or not until_reachable(
                dispatcher.redis.ping, redis_down, stopping
            ):
                return 0
            try:
                worker.register_death()  # so the same --name can register again
            except Exception:  # its key expires anyway
                log.debug("could not deregister the lost RQ worker", exc_info=True)
            if stopping.is_set():
                return 0
    finally:
        ticker.stop()
        checkpoints.stop()
        logging.getLogger("rq.worker").removeFilter(quiet)


def _use_patient_scheduler(max_delay: float) -> None:
    """RQ's scheduler process dies with a traceback when Redis goes away, and RQ starts a
    new one only at its next maintenance (ten minutes later): scheduled firings would wait for
    the sweep meanwhile. In this process (ours alone) RQ's worker builds ours instead."""
    import rq.worker.base
    from rq.scheduler import RQScheduler

    class PatientScheduler(RQScheduler):
        # RQ stops its scheduler with SIGTERM (the worker's teardown sends it, then joins the
        # process without a timeout): a scheduler waiting out an outage must stop at once,
        # or the worker's shutdown waits for Redis to come back.
        _stopping: threading.Event | None = None

        def request_stop(self, signum: object = None, frame: object = None) -> None:
            super().request_stop(signum, frame)
            if self._stopping is not None:
                self._stopping.set()

        def work(self) -> None:
            self._stopping = threading.Event()
            outage = Outage("Redis (RQ scheduler)", log, max_delay)
            while True:
                try:
                    super().work()
                    return
                except Exception as exc:
                    if not unreachable(exc):
                        raise
                    outage.down(exc)
                    if self._stop_requested or not until_reachable(
                        self.connection.ping, outage, self._stopping
                    ):
                        return  # stopped during the outage: its locks expire on their own

    if getattr(rq.worker.base, "RQScheduler", None) is RQScheduler:
        rq.worker.base.RQScheduler = PatientScheduler  # type: ignore[misc]


def _stop_was_requested(worker: object) -> bool:
    """True if RQ's signal handler took a SIGTERM/SIGINT meant for this process."""
    return getattr(worker, "_shutdown_requested_date", None) is not None


class _OneLinePerOutage(logging.Filter):
    """RQ logs "could not connect to Redis" at every retry of its own; this process reports
    the outage once (and its end, from the sweep ticker) instead."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if "found an unhandled exception" in message or "Redis connection timeout" in message:
            error = record.exc_info[1] if record.exc_info else None
            if error is None or unreachable(error):  # Redis lost around a job
                self.outage.down(error or "connection timeout")
                return False
            return True
        if "could not connect to Redis" not in message:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        self.outage.down(str(args[1]) if len(args) > 1 else "connection lost")
        return False
