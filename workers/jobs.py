"""RQ jobs (module-level functions with plain arguments) and the side that enqueues them.

A job builds nothing at import: it asks :func:`current` for this process's container, which
is built on first use *in the process that runs the job* (RQ's forking worker runs each job in
a child; a container inherited across a fork shares database connections with its parent, so
the cache is keyed by process id). ``shopledger worker`` uses RQ's SimpleWorker and installs
the container it built at start (see workers/worker.py).

Jobs:

- :func:`fire_deadline`: fire one deadline (the order decides; a late or duplicate job is a
  no-op). Enqueued for its due time with ``enqueue_at`` by whoever sees it within one sweep
  interval of being due: the deadlines projection right after its commit (short delays, or a
  deadline already due), else the sweep, which looks one interval ahead. Redis thus holds the
  next few seconds of firings; the database holds every deadline.
- :func:`sweep_deadlines`: every sweep interval (enqueued by each worker's ticker, once per time
  slot across all workers): dispatch every due deadline the scheduler missed (Redis flushed, a
  worker killed, the scheduler down), schedule the ones coming due, settle card payments and
  refunds left in flight (workers/payment_recovery.py), and make sure due mail has a delivery
  job.
- :func:`deliver_mail`: deliver the outbox; failures back off per message in the outbox, and
  the job schedules its own follow-up for the earliest retry.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

from commands.reachability import Outage, cut_off
from projections.deadlines import Deadline
from workers.rules import Fired, due_of

if TYPE_CHECKING:
    from redis import Redis
    from rq import Queue

    from shopledger.bootstrap import Container

log = logging.getLogger(__name__)

#: A job that starts this close before its due time waits instead of being rescheduled (RQ's
#: scheduler truncates due times to whole seconds, so it routinely starts up to 1 s early).
EARLY_WAIT = timedelta(seconds=2)
FIRE_TIMEOUT = 60
SWEEP_TIMEOUT = 300
MAIL_TIMEOUT = 600
RESULT_TTL = 300
FAILURE_TTL = 7 * 24 * 3600

# --- the per-process container ------------------------------------------------------------------
_lock = threading.Lock()
_current: tuple[int, Container] | None = None


def use(container: Container | None) -> None:
    """Make ``container`` the one jobs of this process use (``shopledger worker``; None: forget)."""
    global _current
    with _lock:
        _current = None if container is None else (os.getpid(), container)


def current() -> Container:
    """This process's container; built from the environment on first use in a process that
    has none (a job run by a plain ``rq worker``, or in the child of a forking worker)."""
    global _current
    with _lock:
        if _current is None or _current[0] != os.getpid():
            from shopledger.bootstrap import bootstrap
            from shopledger.settings import load_settings

            _current = (os.getpid(), bootstrap(load_settings()))
        return _current[1]


def _aware(at: datetime) -> datetime:
    # RQ reads a naive datetime as local time; ours are naive UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


# --- jobs ----------------------------------------------------------------------------------------
#: The database as this process's jobs see it: one log line when it is lost, one when back.
_database = Outage(
    "the database", log, retrying="jobs give up until it is back; the sweep redoes their work"
)
_Job = TypeVar("_Job", bound=Callable[..., Any])


def _while_database_is_down(job: _Job) -> _Job:
    """A job that cannot reach the database gives up quietly (one line per outage, not a
    traceback per job): deadlines and mail live in the database, so the next sweep after it
    is back dispatches whatever the job would have done."""

    @functools.wraps(job)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = job(*args, **kwargs)
        except Exception as exc:
            if cut_off(exc) != "the database":
                raise
            _database.down(exc)
            return "database unreachable"
        _database.up()
        return result

    return run  # type: ignore[return-value]


@_while_database_is_down
def fire_deadline(order_id: str, rule: str) -> str:
    """Fire one deadline now (the order decides). Returns what happened."""
    container = current()
    rules = container.rules
    fired: Fired = rules.fire(order_id, rule)
    due = fired.due
    if fired.outcome == "early" and due is not None:
        wait = due - rules.clock()
        if wait <= EARLY_WAIT:
            time.sleep(max(0.0, wait.total_seconds()) + 0.001)
            fired = rules.fire(order_id, rule)
        elif container.dispatcher is not None:
            deadline = rules.get(order_id, rule)
            if deadline is not None:  # its due time moved later (or the scheduler was early)
                container.dispatcher.fire_at(deadline, due)
    return fired.outcome


@_while_database_is_down
def sweep_deadlines() -> dict[str, Any]:
    """Dispatch due deadlines, schedule those coming due within one interval, nudge mail."""
    container = current()
    dispatcher = container.dispatcher
    assert dispatcher is not None, "the sweep job runs on RQ only (embedded mode has a thread)"
    rules = container.rules
    interval = container.settings.rule_sweep_interval
    started = time.monotonic()
    total = 0
    while True:
        now = rules.clock()
        report = rules.sweep(
            now,
            now + interval + EARLY_WAIT,
            fire_now=dispatcher.fire_now,
            fire_at=dispatcher.fire_at,
        )
        total += report.fired
        if not report.full or time.monotonic() - started > SWEEP_TIMEOUT / 2:
            break
    rules.forget_finished()
    recovered = _recover_payments(container)
    mail_due = container.mail.due_count(rules.clock())
    if mail_due:
        dispatcher.mail_soon()
    log.info(
        "deadline sweep", extra={"fired": total, "scheduled": report.scheduled, "mailDue": mail_due}
    )
    return {
        "fired": total,
        "scheduled": report.scheduled,
        "mailDue": mail_due,
        "paymentsRecovered": recovered,
    }


def _recover_payments(container: Container) -> int:
    """The payment-recovery rule (workers/payment_recovery.py), once per sweep; a failure
    is logged and never stops the deadline sweep."""
    if container.payment_recovery is None:
        return 0
    try:
        return container.payment_recovery.sweep().settled
    except Exception:
        log.exception("payment recovery sweep failed")
        return 0


@_while_database_is_down
def deliver_mail() -> int:
    """Deliver every due message of the outbox; schedule a follow-up for the earliest retry."""
    container = current()
    dispatcher = container.dispatcher
    if dispatcher is not None:
        dispatcher.mail_started()
    sent = 0
    while True:
        n = container.mail.deliver_due()
        sent += n
        if n == 0:
            break
    retry_at = container.mail.next_retry_at()
    if retry_at is not None and dispatcher is not None:
        dispatcher.mail_at(retry_at)
    return sent


# --- enqueueing ------------------------------------------------------------------------------------
def fire_job_id(prefix: str, deadline: Deadline, due: datetime) -> str:
    """One id per deadline and due time: scheduling the same firing twice keeps one job."""
    millis = int(due.replace(tzinfo=UTC).timestamp() * 1000)
    return f"{prefix}-fire-{deadline.rule}-{deadline.order_id}-{millis}"


class RqDispatcher:
    """Puts jobs on the queues: ``<prefix>-rules`` (deadlines, sweeps) and ``<prefix>-mail``;
    every job id starts with the prefix too.

    Called after commits (never inside a transaction). Failing to reach Redis is logged and
    otherwise ignored: the deadlines and the outbox are in the database, and the next sweep
    dispatches whatever a lost enqueue missed.
    """

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        delays: Mapping[str, timedelta],
        sweep_interval: timedelta,
    ) -> None:
        from redis import Redis
        from rq import Queue

        self.prefix = prefix
        self.delays = dict(delays)
        #: How far ahead firings are put in Redis: the sweep schedules anything due later when
        #: it comes this close, so Redis holds the next few seconds, the database everything.
        self.horizon = sweep_interval + EARLY_WAIT
        self.redis: Redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.rules_queue: Queue = Queue(f"{prefix}-rules", connection=self.redis)
        self.mail_queue: Queue = Queue(f"{prefix}-mail", connection=self.redis)
        # Audit checkpoints and verifications (audit/jobs.py): served last, so a long
        # verification never holds up a deadline or a mail already queued.
        self.audit_queue: Queue = Queue(f"{prefix}-audit", connection=self.redis)

    @property
    def queues(self) -> list[Queue]:
        return [self.rules_queue, self.mail_queue, self.audit_queue]  # rules first

    @property
    def mail_flag(self) -> str:
        return f"{self.prefix}:mail-queued"

    def close(self) -> None:
        self.redis.close()

    # deadlines
    def deadlines_changed(self, deadlines: list[Deadline]) -> None:
        """The deadlines projection committed new or moved deadlines: schedule those due
        within the horizon (a 30-minute expiry is scheduled by the sweep, seconds before)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        for deadline in deadlines:
            due = due_of(deadline, self.delays)
            if due <= now:
                self.fire_now(deadline)
            elif due <= now + self.horizon:
                self.fire_at(deadline, due)

    def fire_at(self, deadline: Deadline, due: datetime) -> None:
        ahead = max(0.0, (due - datetime.now(UTC).replace(tzinfo=None)).total_seconds())
        self._safely(
            self.rules_queue.enqueue_at,
            _aware(due),
            fire_deadline,
            deadline.order_id,
            deadline.rule,
            job_id=fire_job_id(self.prefix, deadline, due),
            job_timeout=FIRE_TIMEOUT,
            # Without a scheduler (`worker --without-scheduler`) the job would wait for ever.
            ttl=int(ahead) + 3600,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )

    def fire_now(self, deadline: Deadline) -> None:
        self._safely(
            self.rules_queue.enqueue,
            fire_deadline,
            deadline.order_id,
            deadline.rule,
            job_id=f"{self.prefix}-fire-{deadline.rule}-{deadline.order_id}-now-{uuid4().hex[:8]}",
            job_timeout=FIRE_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )

    def sweep_now(self, slot: int) -> None:
        self._safely(
            self.rules_queue.enqueue,
            sweep_deadlines,
            job_id=f"{self.prefix}-sweep-{slot}",
            job_timeout=SWEEP_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )

    # mail
    def mail_soon(self) -> None:
        """A commit queued mail: make sure one delivery job is waiting."""
        from rq import Retry

        try:
            if not self.redis.set(self.mail_flag, "1", nx=True, ex=60):
                return  # one is queued and has not started yet: it will see this mail
        except Exception as exc:  # noqa: BLE001
            log.warning("mail job not enqueued", extra={"error": f"{type(exc).__name__}: {exc}"})
            return
        try:
            self.mail_queue.enqueue(
                deliver_mail,
                job_id=f"{self.prefix}-mail-{uuid4().hex[:12]}",
                job_timeout=MAIL_TIMEOUT,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                retry=Retry(max=3, interval=[5, 30, 120]),
            )
        except Exception as exc:  # noqa: BLE001 - the sweep makes up for it
            log.warning("mail job not enqueued", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._safely(self.redis.delete, self.mail_flag)

    def mail_started(self) -> None:
        # Before reading the outbox: mail committed from now on enqueues a job of its own.
        self._safely(self.redis.delete, self.mail_flag)

    def mail_at(self, when: datetime) -> None:
        millis = int(_aware(when).timestamp() * 1000)
        self._safely(
            self.mail_queue.enqueue_at,
            _aware(when),
            deliver_mail,
            job_id=f"{self.prefix}-mail-{millis}",
            job_timeout=MAIL_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )

    def _safely(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the sweep makes up for it
            log.warning("enqueue failed", extra={"error": f"{type(exc).__name__}: {exc}"})
