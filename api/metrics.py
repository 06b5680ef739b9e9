"""``GET /metrics``: the Prometheus text format, one registry per API process.

What is counted in this process (since it started; each API process serves its own, so
Prometheus scrapes every process, not the load balancer):

- ``shopledger_http_requests_total`` and ``shopledger_http_request_duration_seconds`` by
  method, route template (``/api/sales/orders/{orderId}``, never the raw path: ids would make
  a series per order) and status; a path no route matches is ``route="unmatched"``;
- ``shopledger_command_retries_total`` (by command and reason: ``conflict`` for a version
  conflict, ``deadlock`` for a MySQL deadlock or lock wait) and
  ``shopledger_command_conflicts_total`` (commands that ran out of attempts: 409 CONFLICT);
- ``shopledger_deadline_firing_delay_seconds``: how late each applied timed-rule firing was
  (observed where rules fire: here in embedded mode, in ``shopledger worker`` when scaled).

What is read at scrape time by :class:`OperationsCollector` (the same in every process, as
it comes from the shared database and Redis): the event store's head, each projection's
position and lag, the pending and overdue deadlines per rule and the most overdue one's
delay, the mail outbox backlog, and in scaled mode the RQ queues' lengths. A source that
cannot be read is reported by ``shopledger_metrics_source_up{source=...} 0`` and its
series are left out, so a scrape never fails because the database or Redis is down.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands.sqltypes import utcnow
from queries.operations import deadline_stats, outbox_stats, tracked_positions

if TYPE_CHECKING:
    from shopledger.bootstrap import Container

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
#: Methods counted by name; any other (a client may send any token) is ``OTHER``, so a
#: client cannot make new series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Request latency buckets (seconds): most answers take milliseconds, a checkout tens of them,
#: a query waiting for its read model up to 2 s, a hash-bound login a few hundred.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Timed-rule lateness buckets (seconds): scheduled firings land within a second or two; the
#: sweep catches the rest within its interval; minutes mean workers are missing.
FIRING_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
_RETRY_REASONS = {"version conflict": "conflict", "deadlock or lock timeout": "deadlock"}


class Metrics:
    """The process's registry and the instruments the middleware and hooks feed."""

    def __init__(self, container: Container) -> None:
        disable_created_metrics()  # no *_created series: Prometheus does not need them
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "shopledger_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "shopledger_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of its body), by route template.",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.firing_delay = Histogram(
            "shopledger_deadline_firing_delay_seconds",
            "How late a timed rule's firing was applied after its deadline, by rule"
            " (observed in the process that fired it).",
            ("rule",),
            buckets=FIRING_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(OperationsCollector(container))
        container.rules.on_applied = self.observe_firing

    def observe_firing(self, rule: str, seconds_late: float) -> None:
        self.firing_delay.labels(rule).observe(seconds_late)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (pure ASGI: streaming
    answers are timed to their last byte and nothing is buffered)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the application's router's routes, matched for a template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is what the client gets

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = str(scope.get("method", ""))
            self.metrics.observe_request(
                method if method in METHODS else "OTHER",
                self.template(scope),
                status,
                time.perf_counter() - started,
            )

    def template(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        partial: str | None = None
        for candidate in self.routes:  # set by inner middleware on a copy of the scope
            path = getattr(candidate, "path", None)
            if not isinstance(path, str):
                continue  # e.g. a router included as a whole: no one template
            match, _ = candidate.matches(scope)
            if match == Match.FULL:
                return path
            if match == Match.PARTIAL and partial is None:
                partial = path  # the path exists, not with this method (405)
        return partial or UNMATCHED


class OperationsCollector(Collector):
    """Series computed at scrape time from the database, Redis and this process's bus."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def describe(self) -> list[Metric]:
        return []  # the series depend on what can be read at scrape time

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "shopledger_metrics_source_up",
            "1 if this scrape could read the source (database, redis), else 0.",
            labels=("source",),
        )
        yield from self._bus()
        try:
            database = list(self._database())
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even then
            log.warning("metrics: database not readable", extra={"error": type(exc).__name__})
            database = []
        up.add_metric(("database",), 1 if database else 0)
        yield from database
        if self.container.dispatcher is not None:
            try:
                queues = list(self._queues())
            except Exception as exc:  # noqa: BLE001
                log.warning("metrics: Redis not readable", extra={"error": type(exc).__name__})
                queues = []
            up.add_metric(("redis",), 1 if queues else 0)
            yield from queues
        yield up

    def _bus(self) -> Iterator[Metric]:
        bus = self.container.bus
        retries = CounterMetricFamily(
            "shopledger_command_retries",
            "Command attempts retried by this process, by command and reason"
            " (conflict: another writer saved first; deadlock: MySQL deadlock or lock wait).",
            labels=("command", "reason"),
        )
        for (command, why), n in sorted(bus.retries.items()):
            retries.add_metric((command, _RETRY_REASONS.get(why, why)), n)
        conflicts = CounterMetricFamily(
            "shopledger_command_conflicts",
            "Commands that ran out of attempts in this process (answered 409 CONFLICT).",
            labels=("command",),
        )
        for command, n in sorted(bus.exhausted.items()):
            conflicts.add_metric((command,), n)
        yield retries
        yield conflicts

    def _database(self) -> Iterator[Metric]:
        container = self.container
        now = utcnow()
        with container.engine.connect() as conn:
            head = container.head_position()
            positions = tracked_positions(conn)
            deadlines = deadline_stats(conn, now, container.rules.delays)
            outbox = outbox_stats(conn, now)
        yield GaugeMetricFamily(
            "shopledger_event_store_head_position",
            "Position of the last event in the event store.",
            value=head,
        )
        position = GaugeMetricFamily(
            "shopledger_projection_position",
            "Last event position a projection has processed.",
            labels=("projection",),
        )
        lag = GaugeMetricFamily(
            "shopledger_projection_lag_events",
            "Events a projection has still to process (head position minus its position).",
            labels=("projection",),
        )
        for name in container.projections:
            at = positions.get(name, 0)
            position.add_metric((name,), at)
            lag.add_metric((name,), max(0, head - at))
        yield position
        yield lag
        pending = GaugeMetricFamily(
            "shopledger_deadlines_pending",
            "Running timers of the timed rules, by rule.",
            labels=("rule",),
        )
        overdue = GaugeMetricFamily(
            "shopledger_deadlines_overdue",
            "Deadlines due now or earlier that have not fired yet, by rule.",
            labels=("rule",),
        )
        oldest = GaugeMetricFamily(
            "shopledger_deadline_oldest_overdue_seconds",
            "How long the most overdue deadline of a rule has been due (0: none is).",
            labels=("rule",),
        )
        for rule, stats in deadlines.items():
            pending.add_metric((rule,), stats.pending)
            overdue.add_metric((rule,), stats.overdue)
            oldest.add_metric((rule,), stats.oldest_overdue_seconds)
        yield pending
        yield overdue
        yield oldest
        yield GaugeMetricFamily(
            "shopledger_outbox_backlog",
            "Mail in the outbox not delivered yet (still to be tried).",
            value=outbox.backlog,
        )
        yield GaugeMetricFamily(
            "shopledger_outbox_oldest_seconds",
            "Age of the oldest undelivered mail in the outbox (0: none).",
            value=outbox.oldest_seconds,
        )
        yield GaugeMetricFamily(
            "shopledger_outbox_failed",
            "Mail the outbox gave up on.",
            value=outbox.failed,
        )

    def _queues(self) -> Iterator[Metric]:
        dispatcher = self.container.dispatcher
        assert dispatcher is not None
        length = GaugeMetricFamily(
            "shopledger_rq_queue_length",
            "Jobs waiting in an RQ queue (scaled mode).",
            labels=("queue",),
        )
        scheduled = GaugeMetricFamily(
            "shopledger_rq_scheduled_jobs",
            "Jobs scheduled for later on an RQ queue (timed-rule firings, mail retries).",
            labels=("queue",),
        )
        for queue in dispatcher.queues:
            length.add_metric((queue.name,), queue.count)
            scheduled.add_metric(
                (queue.name,), queue.scheduled_job_registry.get_job_count(cleanup=False)
            )
        yield length
        yield scheduled


def token_matches(expected: str | None, authorization: str | None) -> bool:
    """No token configured: open. Else ``Authorization: Bearer <token>``, compared in
    constant time."""
    if not expected:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )
