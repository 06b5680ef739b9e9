"""Projection locks on each back end: a set of projections is taken at once, without waiting,
and a second holder (another process, here another lock table) gets only what is free."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from projections.locks import ProjectionLocks


@pytest.fixture(params=["sqlite", "mariadb"])
def two_holders(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ProjectionLocks, ...]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'locks.db'}"
    else:
        url = str(request.getfixturevalue("mariadb_url"))
    engine = create_engine(url)
    request.addfinalizer(engine.dispose)
    # Two lock tables on one database stand for two processes (the thread locks are per table).
    return ProjectionLocks(engine), ProjectionLocks(engine)


def test_a_second_holder_gets_only_the_projections_nobody_holds(
    two_holders: tuple[ProjectionLocks, ProjectionLocks],
) -> None:
    first, second = two_holders
    with first.hold_many(["orders", "catalog"]) as held:
        assert held == ["orders", "catalog"]
        with second.hold_many(["catalog", "carts", "orders"]) as also:
            assert also == ["carts"]
    with second.hold_many(["orders", "catalog", "carts"]) as after:
        assert after == ["orders", "catalog", "carts"]  # all released on leaving
    with first.hold_many([]) as nothing:
        assert nothing == []


def test_one_holder_and_a_single_lock_exclude_each_other(
    two_holders: tuple[ProjectionLocks, ProjectionLocks],
) -> None:
    first, second = two_holders
    with first.hold("orders") as got:
        assert got
        with second.hold_many(["orders", "carts"]) as held:
            assert held == ["carts"]
    with second.hold("orders") as again:
        assert again
