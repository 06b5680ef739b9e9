"""Chaos proof in CI: the scaled deployment (an API process, a projector, a worker on MariaDB
and Redis) under a small order-and-pay load, ``kill -9`` of an API process, the
projector and the worker in turn, and the deletion of its Redis keys; then nothing acknowledged
is lost, nothing is doubled, every reservation, expiry and payment is accounted for.

The harness is ``bench/chaos.py`` (``python -m bench.chaos`` runs it with a bigger load). Run
this with ``-s`` to see the figures (orders, payments, kills, recovery times).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.chaos import FAULTS, KILL_API_DURING_PAYMENTS, ChaosConfig, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.mariadb, pytest.mark.redis]


def test_nothing_acknowledged_is_lost_doubled_or_stuck_after_kill_9_and_a_redis_flush(
    mariadb_url: str, redis_url: str, tmp_path: Path
) -> None:
    outcome = run_chaos(mariadb_url, redis_url, tmp_path / "run", ChaosConfig(apis=1))
    print("\n" + outcome.summary())
    (tmp_path / "chaos-summary.json").write_text(json.dumps(outcome.figures, default=str))

    assert outcome.problems == [], outcome.summary()
    # the run did strike as it says, under load, and every process came back
    assert [f.kind for f in outcome.faults] == list(FAULTS)
    assert not [f for f in outcome.faults if "did not" in f.note or "no sweep" in f.note], (
        outcome.summary()
    )
    # and the load exercised every path the checks are about
    statuses = outcome.figures["orders by status"]
    assert outcome.figures["orders expired (deadline fired)"] >= 1, outcome.summary()
    assert statuses.get("PAID", 0) >= 1 and statuses.get("CANCELLED", 0) >= 2, outcome.summary()
    assert outcome.payments_ok and outcome.cancels_ok, outcome.summary()
    if KILL_API_DURING_PAYMENTS:  # the API died in the middle of a card payment
        assert outcome.broken["POST /api/sales/orders/{id}/payments"] >= 1, outcome.summary()
