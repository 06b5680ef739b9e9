from __future__ import annotations

import pytest
from sqlalchemy import select

from commands.application import EventMeta
from projections.event_stats import EventStats
from projections.rebuild import rebuild
from projections.runner import ProjectionWorker
from projections.tracking import StaleTracking, advance_many, read_position, set_position
from shopledger.bootstrap import Container
from tests.support.ledger import Credit, LedgerBalances, OpenLedger

META = EventMeta(actor="user-1", correlation_id="req")


def balances(c: Container) -> list[tuple]:
    table = LedgerBalances.define_tables(
        __import__("projections.base", fromlist=["x"]).new_metadata()
    )["ledgers"]
    with c.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.ledger_id))]


def position(c: Container, name: str) -> int:
    with c.app.recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
        return read_position(session, name)


def seed(c: Container, ledgers: int = 3, credits: int = 5) -> None:
    for i in range(ledgers):
        ledger_id = c.bus.execute(OpenLedger(f"l{i}"), META).result
        for j in range(credits):
            c.bus.execute(Credit(ledger_id, j + 1), EventMeta(f"user-{j}", "req"))


def test_projection_applies_each_event_once_and_tracks_the_head(
    memory_container: Container,
) -> None:
    seed(memory_container)
    memory_container.catch_up()
    rows = balances(memory_container)
    assert [(r[2], r[3]) for r in rows] == [(15, 5)] * 3
    assert {r[4] for r in rows} == {"user-4"}  # metadata reaches projections
    assert position(memory_container, "test_ledgers") == memory_container.head_position() == 18
    memory_container.catch_up()  # nothing new: nothing applied twice
    assert [(r[2], r[3]) for r in balances(memory_container)] == [(15, 5)] * 3


def test_a_failing_batch_leaves_views_and_tracking_untouched(memory_container: Container) -> None:
    c = memory_container
    seed(c, ledgers=1, credits=2)
    worker = ProjectionWorker(c.app, c.live_projection("test_ledgers"), c.locks)
    original = LedgerBalances.handlers[LedgerBalances._credited.__handles__[0]]  # type: ignore[attr-defined]

    def crash(self, session, env):
        original(self, session, env)
        raise RuntimeError("power cut after the view update, before tracking")

    LedgerBalances.handlers[LedgerBalances._credited.__handles__[0]] = crash  # type: ignore[attr-defined]
    try:
        with pytest.raises(RuntimeError):
            worker.step()
    finally:
        LedgerBalances.handlers[LedgerBalances._credited.__handles__[0]] = original  # type: ignore[attr-defined]
    assert balances(c) == [] and position(c, "test_ledgers") == 0
    worker.step()
    assert [(r[2], r[3]) for r in balances(c)] == [(3, 2)]


def test_a_stale_worker_cannot_apply_a_batch_twice(memory_container: Container) -> None:
    c = memory_container
    seed(c, ledgers=1, credits=3)
    first = ProjectionWorker(c.app, c.live_projection("test_ledgers"), c.locks)
    second = ProjectionWorker(c.app, c.live_projection("test_ledgers"), c.locks)
    real_read = c.app.recorder.select_notifications

    # The second worker reads the batch, then the first commits the same batch before it.
    def interleaved(*args, **kwargs):
        batch = real_read(*args, **kwargs)
        c.app.recorder.select_notifications = real_read
        with c.locks.hold("other-name"):
            pass
        first.locks = type(c.locks)(c.engine)  # separate lock table: simulate another process
        assert first.step() == 4
        return batch

    c.app.recorder.select_notifications = interleaved  # type: ignore[method-assign]
    assert second.step() == 0  # compare-and-set refused the stale batch
    assert [(r[2], r[3]) for r in balances(c)] == [(6, 3)]
    assert position(c, "test_ledgers") == 4


def test_projections_advanced_together_move_only_if_none_was_moved_meanwhile(
    memory_container: Container,
) -> None:
    c = memory_container
    names = ["test_ledgers", "event_stats"]
    with c.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
        set_position(session, "event_stats", 5)  # another process moved this one on
    with pytest.raises(StaleTracking), c.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
        advance_many(session, names, 0, 7)
    assert [position(c, n) for n in names] == [0, 5]  # rolled back: neither moved
    with c.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
        set_position(session, "event_stats", 0)
        advance_many(session, names, 0, 7)
    assert [position(c, n) for n in names] == [7, 7]


def test_notification_gaps_are_skipped_not_waited_for(memory_container: Container) -> None:
    c = memory_container
    seed(c, ledgers=1, credits=1)
    with pytest.raises(RuntimeError), c.app.recorder.transaction(commit=True):  # type: ignore[attr-defined]
        c.bus.execute(OpenLedger("rolled back"), META)  # burns id 3 inside our transaction
        raise RuntimeError("abort")
    seed(c, ledgers=1, credits=1)
    c.catch_up()
    assert len(balances(c)) == 2
    assert position(c, "test_ledgers") == c.head_position()


def test_rebuild_from_zero_equals_incremental_processing(memory_container: Container) -> None:
    c = memory_container
    seed(c, ledgers=4, credits=6)
    c.catch_up()
    before = balances(c)
    seen: list[tuple[int, int]] = []
    report = rebuild(
        c.app, LedgerBalances, c.locks, batch_size=7, on_progress=lambda p, h: seen.append((p, h))
    )
    assert report.events == c.head_position() == report.position
    assert balances(c) == before
    assert seen and seen[-1][0] == report.position
    seed(c, ledgers=1, credits=1)  # the swapped-in tables keep working incrementally
    c.catch_up()
    assert len(balances(c)) == 5


def test_event_stats_counts_every_event_type(memory_container: Container) -> None:
    seed(memory_container, ledgers=2, credits=3)
    memory_container.catch_up()
    from projections.event_stats import live

    with memory_container.engine.connect() as conn:
        rows = {r.event_type: r._mapping["count"] for r in conn.execute(select(live["stats"]))}
    assert rows == {"Ledger.Opened": 2, "Ledger.Credited": 6}
    assert EventStats.name in memory_container.positions()


def test_a_long_catch_up_reports_its_progress_and_its_end(
    memory_container: Container, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from projections import runner as runner_module

    monkeypatch.setattr(runner_module, "REPORT_EVERY", 0.0)
    seed(memory_container, ledgers=4, credits=5)  # 24 events
    runner = memory_container.runner(["test_ledgers"])
    for worker in runner.workers:
        worker.batch_size = worker.catch_up_batch_size = 5
    with caplog.at_level(logging.INFO, logger="projections.runner"):
        runner.catch_up()
    progress = [r for r in caplog.records if r.getMessage() == "projection catching up"]
    assert progress and all(r.projection == "test_ledgers" for r in progress)  # type: ignore[attr-defined]
    assert [r.position for r in progress] == sorted(r.position for r in progress)  # type: ignore[attr-defined]
    assert any(r.getMessage() == "projection caught up" for r in caplog.records)
