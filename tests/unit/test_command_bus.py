from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from aggregates.errors import Conflict
from commands.application import EventMeta
from commands.errors import ConcurrencyConflict
from shopledger.bootstrap import Container
from tests.support.ledger import (
    Credit,
    Debit,
    InsufficientFunds,
    Ledger,
    LedgerNotFound,
    OpenLedger,
)

META = EventMeta(actor="user-42", correlation_id="req-1", idempotency_key="key-9")


def stored_meta(c: Container) -> list[dict[str, str]]:
    notes = c.app.recorder.select_notifications(start=1, limit=1000)
    return [c.app.meta_mapper.decode_state(n)["__meta__"] for n in notes]


def test_every_event_records_actor_correlation_id_and_idempotency_key(
    memory_container: Container,
) -> None:
    c = memory_container
    ledger_id = c.bus.execute(OpenLedger("cash"), META).result
    c.bus.execute(Credit(ledger_id, 10), EventMeta("system:expiry", "req-2"))
    assert stored_meta(c) == [
        {"actor": "user-42", "correlationId": "req-1", "idempotencyKey": "key-9"},
        {"actor": "system:expiry", "correlationId": "req-2"},
    ]


def test_metadata_does_not_leak_into_the_domain_event(memory_container: Container) -> None:
    ledger_id = memory_container.bus.execute(OpenLedger("cash"), META).result
    events: list[Any] = list(memory_container.app.events.get(ledger_id))
    assert not hasattr(events[0], "__meta__") and events[0].name == "cash"


def test_a_command_reports_the_global_position_of_its_last_event(
    memory_container: Container,
) -> None:
    first = memory_container.bus.execute(OpenLedger("a"), META)
    second = memory_container.bus.execute(OpenLedger("b"), META)
    assert (first.position, second.position) == (1, 2)
    assert memory_container.head_position() == 2


def test_a_refused_command_writes_nothing(memory_container: Container) -> None:
    ledger_id = memory_container.bus.execute(OpenLedger("a"), META).result
    with pytest.raises(InsufficientFunds):
        memory_container.bus.execute(Debit(ledger_id, 5), META)
    assert memory_container.head_position() == 1


def test_an_unknown_aggregate_is_a_not_found_error(memory_container: Container) -> None:
    with pytest.raises(LedgerNotFound):
        memory_container.bus.execute(Credit(uuid4(), 5), META)


def _stale_then_fresh(c: Container, stale_attempts: int):
    """A handler that, for its first attempts, holds a copy read before another writer's commit."""
    attempts = {"n": 0}

    def handler(uow, cmd):
        attempts["n"] += 1
        if attempts["n"] <= stale_attempts:
            ledger = c.app.repository.get(cmd.ledger_id, version=1)
        else:
            ledger = uow.get(Ledger, cmd.ledger_id)
        ledger.credit(cmd.amount)
        uow.add(ledger)
        return ledger.balance

    return handler


def test_a_version_conflict_is_retried_and_then_succeeds(memory_container: Container) -> None:
    c = memory_container
    ledger_id = c.bus.execute(OpenLedger("a"), META).result
    c.bus.execute(Credit(ledger_id, 1), META)  # the other writer's commit
    c.bus.register(Credit, _stale_then_fresh(c, stale_attempts=1))
    outcome = c.bus.execute(Credit(ledger_id, 10), META)
    assert outcome.result == 11 and c.bus.conflicts == 1
    assert c.app.repository.get(ledger_id).balance == 11


def test_retries_are_bounded_and_end_in_a_conflict_error(memory_container: Container) -> None:
    c = memory_container
    ledger_id = c.bus.execute(OpenLedger("a"), META).result
    c.bus.execute(Credit(ledger_id, 1), META)
    c.bus.register(Credit, _stale_then_fresh(c, stale_attempts=100))
    c.bus.max_attempts = 3
    with pytest.raises(ConcurrencyConflict) as info:
        c.bus.execute(Credit(ledger_id, 10), META)
    assert isinstance(info.value, Conflict) and c.bus.conflicts == 3
    assert c.app.repository.get(ledger_id).balance == 1
