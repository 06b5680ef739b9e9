"""Persistence factory for eventsourcing-sqlalchemy with the fixes our deployment needs.

* MySQL/MariaDB: appends are serialized by locking a one-row table inside the append
  transaction, so notification ids commit in order and followers never skip an event
  (EVENTSOURCING.md, trap 1). The library only does this on PostgreSQL.
* MySQL/MariaDB: event and snapshot ``state`` columns are LONGBLOB (the library's BLOB
  stops at 64 KB, trap 5).
* SQLite: a generous busy timeout, because the library silently ignores a failed commit
  caused by "database is locked".
* Every append also extends the tamper-evident hash chain (audit/chain.py) in the same
  transaction, after the ids are known and while appends are serialized.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory

# The library declares these behind a redefined `Base`, which hides them from type checkers.
from eventsourcing_sqlalchemy.models import (  # type: ignore[attr-defined]
    SnapshotRecord,
    StoredEventRecord,
)
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.mysql import LONGBLOB
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session

from audit.chain import (
    START,
    AppendStatements,
    chain,
    chain_metadata,
    chain_rows,
    now_micros,
    read_head,
)

log = logging.getLogger(__name__)

MYSQL_DIALECTS = ("mysql", "mariadb")
_WideBinary = LargeBinary().with_variant(LONGBLOB(), *MYSQL_DIALECTS)

lock_metadata = MetaData()
append_lock = Table(
    "shopledger_append_lock",
    lock_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
)


class WideStoredEventRecord(StoredEventRecord):
    __abstract__ = True
    # The datastore copies __table_args__ from this class's own __dict__: without this line
    # the unique (originator_id, originator_version) index, which *is* optimistic
    # concurrency control, would silently disappear.
    __table_args__ = StoredEventRecord.__table_args__
    state = Column(_WideBinary, nullable=False)


class WideSnapshotRecord(SnapshotRecord):
    __abstract__ = True
    state = Column(_WideBinary, nullable=False)


def is_mysql(engine: Engine) -> bool:
    return engine.dialect.name in MYSQL_DIALECTS


class Datastore(SQLAlchemyDatastore):
    base_stored_event_record_cls = WideStoredEventRecord
    base_snapshot_record_cls = WideSnapshotRecord
    # The base class declares this cache as an instance attribute; it is shared on purpose.
    record_classes: dict[str, Any] = {}  # noqa: RUF012

    def __init__(self, *, url: str | None = None, **kwargs: Any) -> None:
        if url and url.startswith("sqlite") and ":memory:" not in url:
            kwargs.setdefault("connect_args", {"timeout": 30})
        elif url and url.startswith(("mysql", "mariadb")):
            # READ COMMITTED: no gap locks between concurrent appends, and pollers see
            # new commits without reopening their transaction.
            kwargs.setdefault("isolation_level", "READ COMMITTED")
            kwargs.setdefault("pool_pre_ping", False)
            kwargs.setdefault("pool_recycle", 3600)
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 20)
        super().__init__(url=url, **kwargs)


class ApplicationRecorder(SQLAlchemyApplicationRecorder):
    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        # One Core INSERT instead of the library's ORM add/flush: the ORM unit of work was
        # most of the time spent *inside* the append lock (see bench/README.md).
        if not stored_events:
            return []
        table = self.events_record_cls.__table__
        rows = [
            {
                "originator_id": e.originator_id,
                "originator_version": e.originator_version,
                "topic": e.topic,
                "state": e.state,
            }
            for e in stored_events
        ]
        self._lock_table(session)
        dialect = session.get_bind().dialect
        if dialect.insert_executemany_returning_sort_by_parameter_order:
            statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids = list(session.execute(statement, rows).scalars())
        else:
            # MySQL 8 has no RETURNING. A multi-row INSERT reports its first id; the rest follow
            # consecutively because the append lock keeps every other insert out meanwhile.
            result = session.execute(insert(table).values(rows))
            first = int(cast("CursorResult[Any]", result).lastrowid)
            ids = list(range(first, first + len(rows)))
        self._extend_chain(session, ids, stored_events)
        return ids

    #: Set once this process has seen a chain that covers every earlier event; from then on
    #: an append skips that check (only `shopledger audit chain` ever closes such a gap).
    chain_complete = False
    #: Tests and the append benchmark switch the chain off to measure its cost.
    chain_enabled = True
    _chain_statements: AppendStatements | None = None

    def _extend_chain(
        self, session: Session, ids: Sequence[int], stored_events: Sequence[StoredEvent]
    ) -> None:
        """Chain the events just inserted. Runs while appends are serialized (MySQL: the
        append lock; SQLite: this transaction is the writer since its INSERT), so the head
        read here is the one every concurrent append would read: no forks."""
        if not self.chain_enabled:
            return
        statements = self._chain_statements
        if statements is None:
            statements = self._chain_statements = AppendStatements(session.get_bind().dialect)
        cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            head = statements.head(cursor) or START
            if not self.chain_complete:
                c = self.events_record_cls.__table__.c
                before = session.execute(select(func.max(c.id)).where(c.id < ids[0])).scalar()
                if before is not None and int(before) > head.position:
                    # Events from before the chain existed: leave these unchained too, so the
                    # chain stays one prefix; `shopledger audit chain` chains them all, in order.
                    _warn_unchained(before, head.position)
                    return
                self.chain_complete = True
            statements.insert(
                cursor,
                chain_rows(
                    head,
                    (
                        (i, e.originator_id, e.originator_version, e.topic, e.state)
                        for i, e in zip(ids, stored_events, strict=True)
                    ),
                    now_micros(),
                ),
            )
        finally:
            cursor.close()

    def chain_unchained(
        self, batch: int = 5000, on_progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Chain every event that has no chain row yet (the one-off migration of a store
        from before the chain), in position order, ``batch`` events per transaction, each
        holding the append lock. Resumable: it starts after the chain's head. Returns how
        many events it chained. Appends meanwhile leave their events unchained until the
        chain reaches them; a later batch of this loop chains those too."""
        table = self.events_record_cls.__table__
        c = table.c
        done = 0
        while True:
            with self.transaction(commit=True) as session:
                self._lock_for_migration(session)
                head = read_head(session) or START
                rows = session.execute(
                    select(c.id, c.originator_id, c.originator_version, c.topic, c.state)
                    .where(c.id > head.position)
                    .order_by(c.id)
                    .limit(batch)
                ).all()
                last = session.execute(select(func.max(c.id))).scalar() or 0
                if rows:
                    session.execute(
                        insert(chain),
                        chain_rows(
                            head,
                            ((int(i), o, int(v), t, bytes(s)) for i, o, v, t, s in rows),
                            now_micros(),
                        ),
                    )
            done += len(rows)
            if on_progress is not None:
                on_progress(int(rows[-1][0]) if rows else head.position, int(last))
            if len(rows) < batch:
                return done

    def unchained_count(self) -> int:
        """How many events have no chain row after the chain's head."""
        c = self.events_record_cls.__table__.c
        with self.transaction(commit=False) as session:
            head = read_head(session) or START
            return int(
                session.execute(select(func.count()).where(c.id > head.position)).scalar() or 0
            )

    def _lock_for_migration(self, session: Session) -> None:
        assert self.datastore.engine is not None
        if self.datastore.engine.dialect.name in MYSQL_DIALECTS:
            self._lock_table(session)
        else:
            # SQLite: become the writer now, so the head read next is the latest one.
            session.execute(update(append_lock).where(append_lock.c.id == 1).values(id=1))

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        # A Core SELECT of plain tuples: the library builds and compiles an ORM Query per
        # aggregate load, which was most of an aggregate load's time (perf/PROFILE.md shape).
        c = self.events_record_cls.__table__.c
        statement = select(c.originator_id, c.originator_version, c.topic, c.state).where(
            c.originator_id == originator_id
        )
        if gt is not None:
            statement = statement.where(c.originator_version > gt)
        if lte is not None:
            statement = statement.where(c.originator_version <= lte)
        statement = statement.order_by(
            c.originator_version.desc() if desc else c.originator_version
        )
        if limit is not None:
            statement = statement.limit(limit)
        with self.transaction(commit=False) as session:
            return [
                StoredEvent(
                    originator_id=originator,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state) if isinstance(state, memoryview) else state,
                )
                for originator, version, topic, state in session.execute(statement)
            ]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        # A Core SELECT of plain tuples: the library's ORM query built an entity per row
        # (40-75 us each on this machine), which was most of a projection's catch-up time.
        table = self.events_record_cls.__table__
        c = table.c
        statement = select(c.id, c.originator_id, c.originator_version, c.topic, c.state)
        if start is not None:
            statement = statement.where(c.id >= start if inclusive_of_start else c.id > start)
        if stop is not None:
            statement = statement.where(c.id <= stop)
        if topics:
            statement = statement.where(c.topic.in_(list(topics)))
        statement = statement.order_by(c.id).limit(limit)
        with self.transaction(commit=False) as session:
            return [
                Notification(
                    id=id_,
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state) if isinstance(state, memoryview) else state,
                )
                for id_, originator_id, version, topic, state in session.execute(statement)
            ]

    def changes_after(self, position: int, limit: int) -> list[tuple[int, UUID, int, str, bytes]]:
        """(position, originator id, version, topic, state) of the events after ``position``,
        in order: what the aggregate cache needs to fast-forward what it holds."""
        c = self.events_record_cls.__table__.c
        statement = (
            select(c.id, c.originator_id, c.originator_version, c.topic, c.state)
            .where(c.id > position)
            .order_by(c.id)
            .limit(limit)
        )
        with self.transaction(commit=False) as session:
            return [
                (int(p), o, int(v), t, bytes(s) if isinstance(s, memoryview) else s)
                for p, o, v, t, s in session.execute(statement)
            ]

    def latest_versions(self, session: Session, ids: Sequence[UUID]) -> dict[UUID, int]:
        """Each aggregate's last stored version, as committed now: on MySQL/MariaDB a locking
        read (a plain read would see the transaction's older snapshot); SQLite serializes
        writers, and this runs after the append made the transaction the writer."""
        c = self.events_record_cls.__table__.c
        statement = (
            select(c.originator_id, func.max(c.originator_version))
            .where(c.originator_id.in_(list(ids)))
            .group_by(c.originator_id)
        )
        assert self.datastore.engine is not None
        if self.datastore.engine.dialect.name in MYSQL_DIALECTS:
            statement = statement.with_for_update(read=True)
        return {UUID(str(i)): int(v) for i, v in session.execute(statement).all()}

    def max_notification_id(self) -> int | None:
        table = self.events_record_cls.__table__
        with self.transaction(commit=False) as session:
            return cast("int | None", session.execute(select(func.max(table.c.id))).scalar())

    def _lock_table(self, session: Session) -> None:
        assert self.datastore.engine is not None
        if self.datastore.engine.dialect.name in MYSQL_DIALECTS:
            # Held until the append transaction commits: ids are assigned and committed in
            # the same order, so "seen id N" implies "every id below N is settled".
            session.execute(select(append_lock.c.id).where(append_lock.c.id == 1).with_for_update())
        else:
            super()._lock_table(session)

    def create_table(self) -> None:
        super().create_table()
        engine = self.datastore.engine
        assert isinstance(engine, Engine)
        lock_metadata.create_all(engine, checkfirst=True)
        chain_metadata.create_all(engine, checkfirst=True)
        with engine.begin() as conn:
            if conn.execute(select(append_lock.c.id)).first() is None:
                try:
                    conn.execute(insert(append_lock).values(id=1))
                except SAIntegrityError:  # another process created it first
                    pass


_warned_unchained = False


def _warn_unchained(before: int, head: int) -> None:
    global _warned_unchained
    if not _warned_unchained:
        _warned_unchained = True
        log.warning(
            "events without a chain row: run `shopledger audit chain`",
            extra={"unchainedFrom": head + 1, "upTo": before},
        )


class Factory(SQLAlchemyFactory):
    datastore_class = Datastore
    application_recorder_class = ApplicationRecorder
