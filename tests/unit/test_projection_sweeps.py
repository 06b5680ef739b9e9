"""How the projector sweeps: only the events a projection handles are read, projections at the
same position go together (one read, one transaction), and a failing one stalls alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session

from commands.application import EventMeta
from projections.base import Envelope, Projection, handles
from projections.tracking import read_position
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings
from tests.support.ledger import HANDLERS, Credit, Ledger, LedgerBalances, OpenLedger

META = EventMeta(actor="user-1", correlation_id="req")


class LedgerNames(Projection):
    """Handles one event type of the ledger: every other event is of no interest to it."""

    name = "test_ledger_names"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {
            "names": Table(
                f"test_ledger_names{suffix}",
                metadata,
                Column("ledger_id", String(36), primary_key=True),
                Column("name", String(100), nullable=False),
            )
        }

    @handles(Ledger.Opened)
    def _opened(self, session: Session, env: Envelope) -> None:
        session.execute(
            insert(self.tables["names"]).values(
                ledger_id=str(env.originator_id), name=env.event.name
            )
        )


@pytest.fixture
def two(tmp_path: Any) -> Iterator[Container]:
    c = bootstrap(
        make_settings("sqlite:///:memory:", tmp_path),
        projections=[LedgerBalances, LedgerNames],
        handlers=HANDLERS,
    )
    yield c
    c.close()


def seed(c: Container) -> None:
    for i in range(3):
        ledger = c.bus.execute(OpenLedger(f"l{i}"), META).result
        for j in range(4):
            c.bus.execute(Credit(ledger, j + 1), META)


def position(c: Container, name: str) -> int:
    with c.app.recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
        return read_position(session, name)


def names(c: Container) -> list[str]:
    table = c.live_projection("test_ledger_names").tables["names"]
    with c.engine.connect() as conn:
        return sorted(r.name for r in conn.execute(select(table)))


def reads(c: Container) -> list[tuple[str, ...]]:
    """Record the topics of every notification read (and let it run)."""
    seen: list[tuple[str, ...]] = []
    real = c.app.recorder.select_notifications

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(tuple(kwargs.get("topics", ())))
        return real(*args, **kwargs)

    c.app.recorder.select_notifications = spy  # type: ignore[method-assign]
    return seen


def test_a_projection_reads_only_its_events_and_still_reaches_the_head(two: Container) -> None:
    seed(two)  # the last events are credits, which the names projection does not handle
    seen = reads(two)
    runner = two.runner(["test_ledger_names"])
    runner.catch_up()
    assert names(two) == ["l0", "l1", "l2"]
    assert position(two, "test_ledger_names") == two.head_position() == 15
    assert seen == [LedgerNames({}).topics()]  # one read, of Opened events only


def test_projections_at_one_position_are_stepped_together(two: Container) -> None:
    seed(two)
    seen = reads(two)
    two.runner().run_once()
    assert len(seen) == 1  # one read for both
    assert position(two, "test_ledgers") == position(two, "test_ledger_names") == 15
    assert names(two) == ["l0", "l1", "l2"]
    two.catch_up()  # nothing applied twice
    table = two.live_projection("test_ledgers").tables["ledgers"]
    with two.engine.connect() as conn:
        assert sorted(r.balance for r in conn.execute(select(table))) == [10, 10, 10]


def test_a_failing_projection_stalls_alone_when_stepped_together(two: Container) -> None:
    seed(two)
    topic = LedgerBalances._credited.__handles__[0]  # type: ignore[attr-defined]
    original = LedgerBalances.handlers[topic]

    def crash(self: Any, session: Session, env: Envelope) -> None:
        raise RuntimeError("a bug in one projection")

    LedgerBalances.handlers[topic] = crash
    runner = two.runner()
    try:
        runner.run_once()
    finally:
        LedgerBalances.handlers[topic] = original
    assert position(two, "test_ledgers") == 0  # rolled back, waiting for its retry
    assert position(two, "test_ledger_names") == 15 and names(two) == ["l0", "l1", "l2"]
    runner._retry_at.clear()  # the retry is due
    runner.catch_up()
    assert position(two, "test_ledgers") == 15
