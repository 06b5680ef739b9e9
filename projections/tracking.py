"""Tracking positions: one row per projection, advanced in the same transaction as its views."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from projections.base import rows_changed

metadata = MetaData()
projection_tracking = Table(
    "projection_tracking",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


class StaleTracking(Exception):
    """Another process advanced the projection first; this batch is rolled back."""


def ensure_row(conn: Connection | Session, name: str) -> None:
    if conn.execute(
        select(projection_tracking.c.name).where(projection_tracking.c.name == name)
    ).first():
        return
    try:
        conn.execute(insert(projection_tracking).values(name=name, position=0))
    except IntegrityError:
        pass  # created by a concurrent process


def read_position(conn: Connection | Session, name: str) -> int:
    row = conn.execute(
        select(projection_tracking.c.position).where(projection_tracking.c.name == name)
    ).first()
    return int(row[0]) if row else 0


def read_positions(conn: Connection | Session, names: list[str]) -> dict[str, int]:
    rows = conn.execute(
        select(projection_tracking.c.name, projection_tracking.c.position).where(
            projection_tracking.c.name.in_(names)
        )
    ).all()
    found = {str(r[0]): int(r[1]) for r in rows}
    return {n: found.get(n, 0) for n in names}


def advance(session: Session, name: str, expected: int, new: int) -> None:
    """Compare-and-set: fails (rolling back the batch) if someone else moved the position."""
    advance_many(session, [name], expected, new)


def advance_many(session: Session, names: list[str], expected: int, new: int) -> None:
    """:func:`advance` for projections all at ``expected``, in one statement: all move, or
    none (StaleTracking) when any of them was moved meanwhile."""
    changed = rows_changed(
        session,
        update(projection_tracking)
        .where(projection_tracking.c.name.in_(names), projection_tracking.c.position == expected)
        .values(position=new),
    )
    if changed != len(names):
        raise StaleTracking(", ".join(names))


def set_position(session: Session, name: str, position: int) -> None:
    session.execute(
        update(projection_tracking)
        .where(projection_tracking.c.name == name)
        .values(position=position)
    )
