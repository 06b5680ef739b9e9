"""The aggregate cache never serves a state that is not the committed one: not after a
rolled-back save, not after another process's write, not after a conflict (both backends)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from commands.application import EventMeta
from commands.cache import AggregateCache
from projections.rebuild import rebuild
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings
from tests.support.ledger import HANDLERS, Credit, Debit, Ledger, LedgerBalances, OpenLedger

META = EventMeta(actor="user-1", correlation_id="req")


def balance(c: Container, ledger: UUID) -> int:
    return int(c.bus.execute(Credit(ledger, 1), META).result) - 1  # a write reads the truth


@pytest.fixture
def other(database_url: str, tmp_path: Any) -> Iterator[Container]:
    """A second process's container on the same database (its own cache)."""
    c = bootstrap(
        make_settings(database_url, tmp_path / "other"),
        projections=[LedgerBalances],
        handlers=HANDLERS,
    )
    yield c
    c.close()


def loads(c: Container) -> list[UUID]:
    seen: list[UUID] = []
    real = c.app.repository.get

    def spy(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        seen.append(aggregate_id)
        return real(aggregate_id, *args, **kwargs)

    c.app.repository.get = spy  # type: ignore[method-assign]
    return seen


def test_a_second_command_on_an_aggregate_is_served_from_the_cache(container: Container) -> None:
    ledger = container.bus.execute(OpenLedger("cash"), META).result
    seen = loads(container)
    assert container.bus.execute(Credit(ledger, 5), META).result == 5
    assert container.bus.execute(Credit(ledger, 7), META).result == 12
    assert seen == []  # both credits used the state the opening saved
    assert container.bus.cache is not None and container.bus.cache.hits >= 2


def test_a_rolled_back_save_leaves_nothing_in_the_cache(container: Container) -> None:
    ledger = container.bus.execute(OpenLedger("cash"), META).result
    container.bus.execute(Credit(ledger, 10), META)

    def fail_after_save(*_: Any) -> None:
        raise RuntimeError("the transaction dies after the events were written")

    with pytest.raises(RuntimeError):
        container.bus.execute(Credit(ledger, 1000), META, finalize=fail_after_save)
    assert container.bus.execute(Credit(ledger, 1), META).result == 11
    assert container.load(ledger).balance == 11


def test_a_write_by_another_process_is_seen_at_once(container: Container, other: Container) -> None:
    ledger = container.bus.execute(OpenLedger("cash"), META).result
    container.bus.execute(Credit(ledger, 10), META)  # cached here at version 2
    other.bus.execute(Debit(ledger, 4), META)  # the other process moves it to version 3
    assert container.load(ledger).balance == 6  # a read outside a command
    assert container.bus.execute(Credit(ledger, 1), META).result == 7
    assert other.bus.execute(Credit(ledger, 1), META).result == 8


def test_a_write_by_another_process_fast_forwards_the_cached_copy_without_a_load(
    container: Container, other: Container
) -> None:
    ledger = container.bus.execute(OpenLedger("cash"), META).result
    container.bus.execute(Credit(ledger, 10), META)  # cached here at version 2
    other.bus.execute(Debit(ledger, 4), META)
    other.bus.execute(Credit(ledger, 1), META)  # the other process moves it to version 4
    cache = container.bus.cache
    assert cache is not None
    forwarded = cache.stats()["forwarded"]
    seen = loads(container)
    assert container.bus.execute(Credit(ledger, 2), META).result == 9  # 10 - 4 + 1 + 2
    assert seen == []  # the two newer events came with the log read, no load from the store
    assert cache.stats()["forwarded"] == forwarded + 1
    assert container.load(ledger).version == 5
    assert other.bus.execute(Credit(ledger, 1), META).result == 10


def test_a_stale_aggregate_that_slips_through_costs_a_retry_not_a_wrong_write(
    container: Container, other: Container
) -> None:
    ledger = container.bus.execute(OpenLedger("cash"), META).result
    container.bus.execute(Credit(ledger, 10), META)
    cache = container.bus.cache
    assert cache is not None
    real_refresh = cache.refresh
    calls = {"n": 0}

    def late_refresh() -> int:
        # The other process commits between this process's look at the log and its save.
        calls["n"] += 1
        position = real_refresh()
        if calls["n"] == 1:
            other.bus.execute(Debit(ledger, 4), META)
        return position

    cache.refresh = late_refresh  # type: ignore[method-assign]
    retries = container.bus.conflicts
    assert container.bus.execute(Credit(ledger, 1), META).result == 7  # 10 - 4 + 1
    assert container.bus.conflicts == retries + 1
    assert other.load(ledger).balance == 7


def test_the_cache_can_be_switched_off(database_url: str, tmp_path: Any) -> None:
    c = bootstrap(
        make_settings(database_url, tmp_path, aggregate_cache_size=0),
        projections=[LedgerBalances],
        handlers=HANDLERS,
    )
    try:
        ledger = c.bus.execute(OpenLedger("cash"), META).result
        seen = loads(c)
        c.bus.execute(Credit(ledger, 5), META)
        assert c.bus.cache is None and seen == [ledger]
    finally:
        c.close()


def test_a_state_read_before_a_change_the_cache_has_seen_is_not_kept() -> None:
    """Thread A loads version 1 while thread B's refresh reads the change to version 2:
    A's put must not bring version 1 back."""
    ledger = Ledger("cash")
    ledger.collect_events()
    changes: list[tuple[int, UUID, int]] = []
    cache = AggregateCache(lambda after, n: [c for c in changes if c[0] > after][:n], lambda: 10)
    as_of = cache.refresh()  # A looks at the log (position 10)
    changes.append((11, ledger.id, 2))
    cache.refresh()  # B reads the change
    cache.put(ledger, as_of)  # A's version 1 arrives late
    assert cache.get(ledger.id) is None


def _cached_at_version_1(decode: Any) -> tuple[AggregateCache, Ledger, list[tuple[Any, ...]]]:
    ledger = Ledger("cash")
    ledger.collect_events()
    changes: list[tuple[Any, ...]] = []
    cache = AggregateCache(
        lambda after, n: [c for c in changes if c[0] > after][:n], lambda: 10, decode=decode
    )
    cache.put(ledger, cache.refresh())
    return cache, ledger, changes


def test_changes_that_do_not_follow_on_from_the_cached_version_evict_it() -> None:
    other = Ledger("cash")
    other.credit(5)  # version 2
    other.credit(7)  # version 3
    events: dict[int, Any] = {e.originator_version: e for e in other.collect_events()}

    def decode(change: tuple[Any, ...]) -> Any:
        return dataclasses.replace(events[change[2]], originator_id=change[1])

    cache, ledger, changes = _cached_at_version_1(decode)
    changes.append((11, ledger.id, 3))  # version 2 is missing from what was read
    cache.refresh()
    assert cache.get(ledger.id) is None
    cache, ledger, changes = _cached_at_version_1(decode)
    changes.extend([(11, ledger.id, 2), (12, ledger.id, 3)])
    cache.refresh()
    forwarded = cache.get(ledger.id)
    assert isinstance(forwarded, Ledger) and forwarded.version == 3 and forwarded.balance == 12


def test_a_change_that_cannot_be_decoded_evicts_instead_of_serving_the_old_state() -> None:
    def decode(change: tuple[Any, ...]) -> Any:
        raise ValueError("an unknown topic")

    cache, ledger, changes = _cached_at_version_1(decode)
    changes.append((11, ledger.id, 2))
    cache.refresh()
    assert cache.get(ledger.id) is None


def test_the_cache_hands_out_copies() -> None:
    ledger = Ledger("cash")
    ledger.collect_events()
    cache = AggregateCache(lambda after, n: [], lambda: 0)
    cache.put(ledger, cache.refresh())
    copy = cache.get(ledger.id)
    assert isinstance(copy, Ledger) and copy is not ledger
    copy.credit(5)
    again = cache.get(ledger.id)
    assert isinstance(again, Ledger) and again.balance == 0


def test_a_rebuild_of_the_read_side_leaves_cached_aggregates_right(container: Container) -> None:
    ledger = container.bus.execute(OpenLedger("cash"), META).result
    container.bus.execute(Credit(ledger, 10), META)  # cached at version 2
    container.catch_up()
    rebuild(container.app, LedgerBalances, container.locks, batch_size=2)
    assert container.bus.execute(Debit(ledger, 3), META).result == 7
    assert container.load(ledger).balance == 7
    container.catch_up()
    table = container.live_projection("test_ledgers").tables["ledgers"]
    with container.engine.connect() as conn:
        assert [r.balance for r in conn.execute(select(table))] == [7]
