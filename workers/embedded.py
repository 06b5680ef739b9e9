"""Embedded mode (no Redis): the timed rules from a thread of the API process.

The same sweep and firing as the RQ jobs (workers/rules.py), run inline: every ``tick`` (or
sooner, when the deadlines projection reports a new deadline, or when the earliest pending one
comes due) the thread fires whatever is due. Mail keeps its own thread (workers/mail.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from projections.deadlines import Deadline
from workers.loop import WakeableLoop
from workers.rules import TimedRules

log = logging.getLogger(__name__)


class RulesThread(WakeableLoop):
    name = "timed-rules"

    def __init__(self, rules: TimedRules, tick: timedelta = timedelta(seconds=1)) -> None:
        super().__init__()
        self.rules = rules
        self.tick = tick
        self._rounds = 0

    def deadlines_changed(self, _deadlines: list[Deadline]) -> None:
        """Hook of the deadlines projection (after its commit): look again now."""
        self.wake()

    def run_once(self) -> float:
        """Fire every due deadline; return how long to sleep before the next look."""
        rules = self.rules
        now = rules.clock()

        def fire(deadline: Deadline) -> None:
            try:
                rules.fire(deadline.order_id, deadline.rule)
            except Exception:
                log.exception(
                    "timed rule failed", extra={"rule": deadline.rule, "orderId": deadline.order_id}
                )

        report = rules.sweep(now, now + self.tick, fire_now=fire)
        self._rounds += 1
        if self._rounds % 60 == 1:
            rules.forget_finished()
        if report.full:
            return 0.0
        if report.next_due is not None:
            return max(0.0, min(self.tick, report.next_due - rules.clock()).total_seconds())
        return self.tick.total_seconds()
