"""Embedded mode (no Redis): the timed rules from a thread of the API process.

The same sweep and firing as the RQ jobs (workers/rules.py), run inline: every ``tick`` (or
sooner, when the deadlines projection reports a new deadline, or when the earliest pending one
comes due) the thread fires whatever is due. Mail keeps its own thread (workers/mail.py).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from projections.deadlines import Deadline
from workers.rules import TimedRules

log = logging.getLogger(__name__)


class RulesThread:
    def __init__(self, rules: TimedRules, tick: timedelta = timedelta(seconds=1)) -> None:
        self.rules = rules
        self.tick = tick
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rounds = 0

    def deadlines_changed(self, _deadlines: list[Deadline]) -> None:
        """Hook of the deadlines projection (after its commit): look again now."""
        self._wake.set()

    def run_once(self) -> float:
        """Fire every due deadline; return how long to sleep before the next look."""
        rules = self.rules
        now = rules.clock()

        def fire(deadline: Deadline) -> None:
            try:
                rules.fire(deadline.order_id, deadline.rule)
            except Exception:
                log.exception("timed rule failed", extra={"rule": deadline.rule, "orderId": deadline.order_id})

        report = rules.sweep(now, now + self.tick, fire_now=fire)
        self._rounds += 1
        if self._rounds % 60 == 1:
            rules.forget_finished()
        if report.full:
            return 0.0
        if report.next_due is not None:
            return max(0.0, min(self.tick, report.next_due - rules.clock()).total_seconds())
        return self.tick.total_seconds()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="timed-rules", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.run_once()
            except Exception:
                log.exception("timed rules loop error")
                wait = self.tick.total_seconds()
            self._wake.wait(wait)
