"""What a projection is: a name, the read-model tables it owns, one handler per event type.

Handlers must depend on the events alone (no clock, no other tables), so a rebuild from
position 0 produces exactly the rows incremental processing did.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import DateTime, MetaData, Table, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


#: Read-model timestamps: naive UTC with microseconds on every backend (plain DATETIME on MySQL
#: drops them, which reorders "newest first" and moves instants across day boundaries).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
#: Text that may exceed MySQL's 64 KiB TEXT (JSON lists of long URLs or keywords).
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


#: Column.info of a column a later version added to an existing table, which no past event
#: feeds (it starts NULL or at its server default): startup adds it (shopledger/bootstrap.py).
ADDED = {"added_later": True}


def naive_utc(at: datetime | None) -> datetime | None:
    """Read-model timestamps are stored as naive UTC (SQLite keeps no offset)."""
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(UTC).replace(tzinfo=None)


def new_metadata() -> MetaData:
    # Index names derive from the table name, so a shadow table built for a rebuild never
    # collides with the live one (SQLite index names are global to the database).
    return MetaData(naming_convention=NAMING_CONVENTION)


@dataclass
class Envelope:
    """One event as a projection sees it: global position, metadata, and the event itself."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: dict[str, Any]
    meta: dict[str, Any]
    _decode: Callable[[], Any] = field(repr=False)
    _event: Any = field(default=None, repr=False)

    @property
    def event(self) -> Any:
        if self._event is None:
            self._event = self._decode()
        return self._event

    @property
    def actor(self) -> str | None:
        return self.meta.get("actor")


EventHandler = Callable[[Any, Session, Envelope], None]


def handles(*event_classes: type) -> Callable[[EventHandler], EventHandler]:
    """Mark a projection method as the handler of the given event classes."""

    def mark(func: EventHandler) -> EventHandler:
        func.__handles__ = tuple(get_topic(c) for c in event_classes)  # type: ignore[attr-defined]
        return func

    return mark


class Projection(ABC):
    """Subclass: set ``name``, implement ``define_tables``, decorate handlers with ``handles``."""

    name: ClassVar[str]
    handlers: ClassVar[dict[str, EventHandler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, EventHandler] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for topic in getattr(attr, "__handles__", ()):
                    found[topic] = attr
        cls.handlers = found

    def __init__(self, tables: Mapping[str, Table]) -> None:
        self.tables = dict(tables)

    @classmethod
    @abstractmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        """Declare this projection's tables in ``metadata``, each name ending with ``suffix``."""

    @classmethod
    def live_tables(cls) -> dict[str, Table]:
        """The live tables (no suffix), declared once per process and shared by every
        application it builds: declaring a SQLAlchemy table costs about a millisecond, and
        each start declares every projection's."""
        tables = _LIVE_TABLES.get(cls)
        if tables is None:
            tables = _LIVE_TABLES[cls] = cls.define_tables(new_metadata())
        return tables

    def wants(self, topic: str) -> bool:
        return topic in self.handlers

    def topics(self) -> tuple[str, ...]:
        """The topics :meth:`wants`, for the database to filter on; empty means every one.
        A subclass that overrides ``wants`` overrides this too."""
        return tuple(self.handlers)

    def apply(self, session: Session, envelope: Envelope) -> None:
        handler = self.handlers.get(envelope.topic)
        if handler is not None:
            handler(self, session, envelope)

    def apply_many(self, session: Session, envelopes: list[Envelope]) -> None:
        """Apply a batch in order. Override to fold a batch into fewer statements."""
        for envelope in envelopes:
            self.apply(session, envelope)


_LIVE_TABLES: dict[type[Projection], dict[str, Table]] = {}


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and answer how many rows it matched."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount
