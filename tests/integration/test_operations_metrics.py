"""The scrape-time gauges of GET /metrics on each back end, and the counters fed by hooks.

The deadline and outbox figures are SQL over the read model and the outbox (CASE, MIN,
COUNT with NULL tests), so they run on SQLite and on MariaDB; rows are written directly so
every case (due, held, derived from a delay, failed mail) is there at once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from api.metrics import Metrics
from commands.application import EventMeta
from commands.errors import ConcurrencyConflict
from commands.outbox import mail_outbox
from commands.sqltypes import utcnow
from projections.deadlines import live as deadline_tables
from shopledger.bootstrap import Container
from tests.support.ledger import Credit, Ledger, OpenLedger

META = EventMeta("test", "metrics")


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def deadline(rule: str, **times: Any) -> dict[str, Any]:
    now = utcnow()
    row = {"starts_at": now, "due_at": None, "hold_until": None, **times}
    return {"order_id": str(uuid.uuid4()), "rule": rule, "revision": 1, **row}


def test_deadline_and_outbox_gauges(container: Container) -> None:
    now = utcnow()
    hour = timedelta(hours=1)
    rows = [
        deadline("unpaid-expiry", due_at=now + hour),  # pending, not due
        deadline("unpaid-expiry", due_at=now - 2 * hour),  # two hours overdue
        deadline("unpaid-expiry", due_at=now - 5 * hour, hold_until=now + hour),  # held
        # Due when its payment's lease ended, 30 minutes ago (not when due_at said).
        deadline("unpaid-expiry", due_at=now - 3 * hour, hold_until=now - hour / 2),
        # Ship reminders: one with its due time recorded, one from its start plus 7 days.
        deadline("ship-reminder", starts_at=now - timedelta(days=1)),
        deadline("ship-reminder", starts_at=now - timedelta(days=8)),
        deadline("ship-reminder", due_at=now - 3 * hour, starts_at=now - timedelta(days=7)),
    ]
    mails = [
        {"sent_at": None, "failed_at": None, "created_at": now - hour},
        {"sent_at": None, "failed_at": None, "created_at": now},
        {"sent_at": now, "failed_at": None, "created_at": now - 2 * hour},
        {"sent_at": None, "failed_at": now, "created_at": now - 3 * hour},
    ]
    with container.engine.begin() as conn:
        conn.execute(insert(deadline_tables["deadlines"]), rows)
        conn.execute(
            insert(mail_outbox),
            [
                {
                    "message_id": uuid.uuid4().hex,
                    "to_addr": "a@example.com",
                    "subject": "s",
                    "body": "b",
                    "next_attempt_at": now,
                    "attempts": 0,
                    **mail,
                }
                for mail in mails
            ],
        )
    got = samples(Metrics(container))

    def gauge(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert gauge("shopledger_deadlines_pending", rule="unpaid-expiry") == 4
    assert gauge("shopledger_deadlines_overdue", rule="unpaid-expiry") == 2
    late = gauge("shopledger_deadline_oldest_overdue_seconds", rule="unpaid-expiry")
    assert 2 * 3600 - 5 <= late <= 2 * 3600 + 60
    assert gauge("shopledger_deadlines_pending", rule="ship-reminder") == 3
    assert gauge("shopledger_deadlines_overdue", rule="ship-reminder") == 2
    late = gauge("shopledger_deadline_oldest_overdue_seconds", rule="ship-reminder")
    assert 24 * 3600 - 5 <= late <= 24 * 3600 + 60  # started 8 days ago, due after 7
    assert gauge("shopledger_deadlines_pending", rule="auto-deliver") == 0
    assert gauge("shopledger_deadline_oldest_overdue_seconds", rule="auto-deliver") == 0
    assert gauge("shopledger_outbox_backlog") == 2
    assert 3600 - 5 <= gauge("shopledger_outbox_oldest_seconds") <= 3600 + 60
    assert gauge("shopledger_outbox_failed") == 1
    assert gauge("shopledger_metrics_source_up", source="database") == 1


def _stale_credit(c: Container, stale_attempts: int) -> Any:
    attempts = {"n": 0}

    def handler(uow: Any, cmd: Any) -> Any:
        attempts["n"] += 1
        stale = attempts["n"] <= stale_attempts
        ledger = (
            c.app.repository.get(cmd.ledger_id, version=1)
            if stale
            else uow.get(Ledger, cmd.ledger_id)
        )
        ledger.credit(cmd.amount)
        uow.add(ledger)
        return ledger.balance

    return handler


def test_command_retries_and_conflicts_and_firing_delays_are_counted(
    memory_container: Container,
) -> None:
    c = memory_container
    metrics = Metrics(c)
    ledger_id = c.bus.execute(OpenLedger("a"), META).result
    c.bus.execute(Credit(ledger_id, 1), META)  # another writer's commit
    c.bus.register(Credit, _stale_credit(c, stale_attempts=2))
    c.bus.execute(Credit(ledger_id, 10), META)  # two retries, then it goes through
    c.bus.register(Credit, _stale_credit(c, stale_attempts=100))
    c.bus.max_attempts = 3
    with pytest.raises(ConcurrencyConflict):
        c.bus.execute(Credit(ledger_id, 10), META)  # three retries, then CONFLICT
    assert c.rules.on_applied is not None  # the timed rules report each firing's delay
    c.rules.on_applied("unpaid-expiry", 0.7)
    got = samples(metrics)
    retries = ("shopledger_command_retries_total", (("command", "Credit"), ("reason", "conflict")))
    assert got[retries] == 5
    assert got[("shopledger_command_conflicts_total", (("command", "Credit"),))] == 1
    delay = "shopledger_deadline_firing_delay_seconds"
    assert got[(delay + "_count", (("rule", "unpaid-expiry"),))] == 1
    assert got[(delay + "_bucket", (("le", "0.5"), ("rule", "unpaid-expiry")))] == 0
    assert got[(delay + "_bucket", (("le", "1.0"), ("rule", "unpaid-expiry")))] == 1
