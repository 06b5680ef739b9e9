"""Rebuild a projection from position 0 into fresh tables, then swap them in.

The live projection keeps serving while the shadow tables fill. For the swap we take the
projection's lock (pausing its projector), replay the last few events, rename the tables and
set the tracking position, then release. Queries never see a half-built table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from commands.application import ShopledgerApplication
from commands.persistence import is_mysql
from projections.base import Projection, new_metadata
from projections.locks import ProjectionLocks
from projections.runner import apply_batch
from projections.tracking import ensure_row, set_position

ProgressCallback = Callable[[int, int], None]  # (position reached, head)


class RebuildError(Exception):
    pass


@dataclass(frozen=True)
class RebuildReport:
    name: str
    position: int
    events: int
    seconds: float


def rebuild(
    app: ShopledgerApplication,
    projection_cls: type[Projection],
    locks: ProjectionLocks,
    *,
    batch_size: int = 2000,
    on_progress: ProgressCallback | None = None,
    lock_timeout: float = 60.0,
) -> RebuildReport:
    engine: Engine = app.factory.datastore.engine  # type: ignore[attr-defined]
    started = time.monotonic()
    suffix = f"__r{time.time_ns() // 1_000_000 % 10**10}"
    metadata = new_metadata()
    shadow_tables = projection_cls.define_tables(metadata, suffix)
    live_tables = projection_cls.define_tables(new_metadata(), "")
    metadata.create_all(engine)
    shadow = projection_cls(shadow_tables)
    head = app.recorder.max_notification_id() or 0
    position, events = 0, 0
    try:
        position, events = _replay(app, shadow, position, batch_size, head, on_progress)
        with locks.hold(projection_cls.name, timeout=lock_timeout) as got:
            if not got:
                raise RebuildError(
                    f"could not pause the running projector of {projection_cls.name!r}"
                    f" within {lock_timeout:.0f} s"
                )
            head = app.recorder.max_notification_id() or 0
            position, more = _replay(app, shadow, position, batch_size, head, on_progress)
            events += more
            _swap(app, engine, projection_cls.name, live_tables, shadow_tables, suffix, position)
    except BaseException:
        metadata.drop_all(engine)
        raise
    return RebuildReport(projection_cls.name, position, events, time.monotonic() - started)


def _replay(
    app: ShopledgerApplication,
    projection: Projection,
    position: int,
    batch_size: int,
    head: int,
    on_progress: ProgressCallback | None,
) -> tuple[int, int]:
    """Apply the events after ``position`` up to ``head``: how far it got, how many
    positions that moved past (only the events the projection handles are read)."""
    count = 0
    while position < head:
        batch = app.recorder.select_notifications(
            start=position,
            limit=batch_size,
            stop=head,
            topics=projection.topics(),
            inclusive_of_start=False,
        )
        if batch:
            with app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                apply_batch(app, projection, session, batch)
        end = batch[-1].id if len(batch) == batch_size else head
        count += end - position
        position = end
        if on_progress is not None:
            on_progress(position, head)
    return position, count


def _swap(
    app: ShopledgerApplication,
    engine: Engine,
    name: str,
    live: dict,
    shadow: dict,
    suffix: str,
    position: int,
) -> None:
    quote = engine.dialect.identifier_preparer.quote
    existing = set(inspect(engine).get_table_names())
    # Identifiers below come from our own table definitions, never from input; DDL cannot
    # take bound parameters, so they are quoted by the dialect.
    pairs = [(live[k].name, shadow[k].name, f"{live[k].name}__old{suffix}") for k in live]
    if is_mysql(engine):
        renames = []
        for live_name, shadow_name, old_name in pairs:
            if live_name in existing:
                renames.append(f"{quote(live_name)} TO {quote(old_name)}")
            renames.append(f"{quote(shadow_name)} TO {quote(live_name)}")
        with engine.begin() as conn:
            conn.execute(text("RENAME TABLE " + ", ".join(renames)))  # atomic in MySQL
        with app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
            _set_tracking(session, name, position)
    else:
        with app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
            for live_name, shadow_name, old_name in pairs:
                if live_name in existing:
                    session.execute(
                        text(f"ALTER TABLE {quote(live_name)} RENAME TO {quote(old_name)}")
                    )
                session.execute(
                    text(f"ALTER TABLE {quote(shadow_name)} RENAME TO {quote(live_name)}")
                )
            _set_tracking(session, name, position)
    with app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
        for live_name, _, old_name in pairs:
            if live_name in existing:
                session.execute(text(f"DROP TABLE {quote(old_name)}"))


def _set_tracking(session: Session, name: str, position: int) -> None:
    ensure_row(session, name)
    set_position(session, name, position)
