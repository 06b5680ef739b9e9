"""Command dispatch: one handler per command, run in one transaction, retried on conflicts.

A handler receives a :class:`UnitOfWork`, loads aggregates through it, calls one domain method
on each and hands them back with ``uow.add``. The bus saves them atomically with every event
stamped with the command's :class:`~commands.application.EventMeta`, retries a bounded number of
times when another writer got there first, and reports the global position of the last event.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from aggregates.accounts import UniqueKey
from aggregates.errors import DomainError, NotFound
from commands.application import EventMeta, ShopledgerApplication, recording_as
from commands.cache import AggregateCache
from commands.errors import ConcurrencyConflict
from commands.outbox import OutgoingMail, enqueue

log = logging.getLogger(__name__)

A = TypeVar("A", bound=BaseAggregate[UUID])
R = TypeVar("R")

# MySQL error numbers worth a retry: deadlock found, lock wait timeout.
_RETRYABLE_MYSQL_ERRORS = {1213, 1205}


class Command:
    """Marker base for command dataclasses (``@dataclass(frozen=True)``)."""


@dataclass(frozen=True)
class Outcome(Generic[R]):
    result: R
    position: int | None  # global position of the command's last event (None: no events)
    mailed: bool = False


Handler = Callable[["UnitOfWork", Any], Any]


class Writes:
    """What one request (or job) committed: the highest event position so far.

    The HTTP layer puts one in :data:`current_writes` per request, so every response that
    committed events can carry ``X-Event-Position`` — error answers included (a refused login
    still records the attempt) — and the caller's read-your-writes mark can be raised. The
    object is shared, not copied, when the request runs in a worker thread.
    """

    __slots__ = ("position", "subject")

    def __init__(self) -> None:
        self.position: int | None = None
        self.subject: str | None = None  # the caller's account id, once known

    def record(self, position: int) -> None:
        if self.position is None or position > self.position:
            self.position = position


current_writes: ContextVar[Writes | None] = ContextVar("shopledger_writes", default=None)
Finalizer = Callable[[Session, Any, "int | None"], None]


class StaleRead(Exception):
    """An aggregate a command depended on (``UnitOfWork.depend_on``) changed meanwhile."""


class UnitOfWork:
    """What a handler sees: aggregate loading, the aggregates to save, and the SQL session."""

    def __init__(
        self,
        app: ShopledgerApplication,
        session: Session,
        meta: EventMeta,
        now: datetime | None = None,
        cache: AggregateCache | None = None,
    ) -> None:
        self.app = app
        self.session = session
        self.meta = meta
        self.cache = cache if cache is not None and cache.enabled else None
        #: The command's clock reading: handlers pass it to the domain (aggregates do no I/O).
        self.now = now or datetime.now(UTC)
        self.pending: list[BaseAggregate[UUID]] = []
        #: Aggregates read, not changed, that the decision rests on: id -> version read.
        self.depends_on: dict[UUID, int] = {}
        self.mail: list[OutgoingMail] = []
        self._loaded: dict[UUID, BaseAggregate[UUID] | None] = {}

    def _load(self, aggregate_id: UUID) -> BaseAggregate[UUID] | None:
        # Loaded once per attempt: a handler asking exists() then get() (or loading the same
        # inventory for two lines) replays the events once. A retry gets a fresh UnitOfWork.
        if aggregate_id not in self._loaded:
            cached = self.cache.get(aggregate_id) if self.cache is not None else None
            if cached is not None:
                self._loaded[aggregate_id] = cached
                return cached
            try:
                self._loaded[aggregate_id] = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self._loaded[aggregate_id] = None
        return self._loaded[aggregate_id]

    def touched(self) -> list[BaseAggregate[UUID]]:
        """Every aggregate this attempt loaded or saved."""
        found = {a.id: a for a in self._loaded.values() if a is not None}
        found.update((a.id, a) for a in self.pending)
        return list(found.values())

    def exists(self, aggregate_id: UUID) -> bool:
        return self._load(aggregate_id) is not None

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate if it exists (and is a ``cls``), else None."""
        aggregate = self._load(aggregate_id)
        return aggregate if isinstance(aggregate, cls) else None

    def claim(self, kind: str, value: str, owner_id: UUID, taken: DomainError) -> None:
        """Claim a unique value (an email, a warehouse code...) for ``owner_id`` in this save;
        ``taken`` is raised if it is claimed already. Racing claims both try to create version
        1 of the same key: the event store lets one win, the other's retry raises ``taken``."""
        key = UniqueKey.create_id(kind, value)
        if self.exists(key):
            raise taken
        self.add(UniqueKey(kind, value, owner_id))

    def send_mail(self, mail: OutgoingMail) -> None:
        """Queue a message in the outbox, committed with the command's events."""
        self.mail.append(mail)

    def get(self, cls: type[A], aggregate_id: UUID, not_found: type[NotFound] = NotFound) -> A:
        aggregate = self._load(aggregate_id)
        if aggregate is None:
            raise not_found(f"{cls.__name__} not found", id=str(aggregate_id))
        if not isinstance(aggregate, cls):
            raise not_found(f"{cls.__name__} not found", id=str(aggregate_id))
        return aggregate

    def depend_on(self, aggregate: BaseAggregate[UUID]) -> None:
        """The command's decision rests on ``aggregate`` as read (e.g. a seller's listing
        rights): if another command changes it before this one commits, this one is retried
        (and decides again), as if it had been saved too."""
        self.depends_on[aggregate.id] = aggregate.version

    def add(self, *aggregates: BaseAggregate[UUID]) -> None:
        for aggregate in aggregates:
            if aggregate not in self.pending:
                self.pending.append(aggregate)


class CommandBus:
    def __init__(
        self,
        app: ShopledgerApplication,
        handlers: dict[type, Handler],
        *,
        max_attempts: int = 8,
        on_commit: Callable[[int], None] | None = None,
        on_mail: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        policies: list[Callable[[UnitOfWork], None]] | None = None,
        cache: AggregateCache | None = None,
    ) -> None:
        self.app = app
        #: Aggregates between commands (commands/cache.py); None or size 0: always load.
        self.cache = cache if cache is not None and cache.enabled else None
        #: Rules that apply to whatever a command changed, run after its handler and before
        #: the save, inside the same transaction (e.g. low-stock alerts on any inventory).
        self.policies = list(policies or [])
        self.on_mail = on_mail
        self.clock = clock
        self.handlers = dict(handlers)
        self.max_attempts = max_attempts
        self.on_commit = on_commit
        self.conflicts = 0  # retries taken since start (exposed for metrics and tests)
        #: Since start, for GET /metrics: retries by (command, reason), and commands that ran
        #: out of attempts (answered CONFLICT) by command.
        self.retries: Counter[tuple[str, str]] = Counter()
        self.exhausted: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def register(self, command_type: type, handler: Handler) -> None:
        self.handlers[command_type] = handler

    def execute(
        self, command: Any, meta: EventMeta, finalize: Finalizer | None = None
    ) -> Outcome[Any]:
        """Run ``command``'s handler; ``finalize`` runs in the same transaction after the save."""
        handler = self.handlers[type(command)]
        for attempt in range(1, self.max_attempts + 1):
            try:
                outcome = self._attempt(handler, command, meta, finalize)
            except (IntegrityError, StaleRead):
                self._back_off(attempt, command, "version conflict")
                continue
            except OperationalError as exc:
                if _mysql_errno(exc) not in _RETRYABLE_MYSQL_ERRORS:
                    raise
                self._back_off(attempt, command, "deadlock or lock timeout")
                continue
            if outcome.position is not None:
                writes = current_writes.get()
                if writes is not None:
                    writes.record(outcome.position)
                if self.on_commit is not None:
                    self.on_commit(outcome.position)
            if outcome.mailed and self.on_mail is not None:
                self.on_mail()
            return outcome
        with self._stats_lock:
            self.exhausted[type(command).__name__] += 1
        raise ConcurrencyConflict(
            "the object was changed by another request; please retry",
            attempts=self.max_attempts,
        )

    def _attempt(
        self, handler: Handler, command: Any, meta: EventMeta, finalize: Finalizer | None
    ) -> Outcome[Any]:
        cache = self.cache
        as_of = cache.refresh() if cache is not None else 0
        uow: UnitOfWork | None = None
        try:
            with self.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                uow = UnitOfWork(self.app, session, meta, self.clock(), cache)
                result = handler(uow, command)
                for policy in self.policies:
                    policy(uow)
                position = None
                if uow.pending:
                    with recording_as(meta):
                        recordings = self.app.save(*uow.pending)
                    if recordings:
                        position = max(r.notification.id for r in recordings)
                    if uow.depends_on:
                        self._check_reads(session, uow)
                if uow.mail:
                    enqueue(session, uow.mail)
                if finalize is not None:
                    finalize(session, result, position)
        except BaseException:
            if cache is not None and uow is not None:
                # Nothing of a failed attempt stays: a conflict's retry reloads from the store.
                cache.evict(a.id for a in uow.touched())
            raise
        if cache is not None:
            for aggregate in uow.touched():  # committed: what was read, and what was saved
                cache.put(aggregate, as_of)
        return Outcome(result, position, bool(uow.mail))

    def _check_reads(self, session: Any, uow: UnitOfWork) -> None:
        read = {i: v for i, v in uow.depends_on.items() if all(a.id != i for a in uow.pending)}
        if not read:
            return
        now = self.app.recorder.latest_versions(session, list(read))  # type: ignore[attr-defined]
        changed = sorted(str(i) for i, v in read.items() if now.get(i, 0) != v)
        if changed:
            raise StaleRead(changed)

    def _back_off(self, attempt: int, command: Any, why: str) -> None:
        self.conflicts += 1
        with self._stats_lock:
            self.retries[(type(command).__name__, why)] += 1
        log.info(
            "command retry",
            extra={"command": type(command).__name__, "attempt": attempt, "reason": why},
        )
        if attempt < self.max_attempts:
            # Full jitter, so the losers of one round do not collide again in the next.
            time.sleep(random.uniform(0, min(0.1, 0.003 * 2**attempt)))


def retryable_on_mysql(exc: BaseException) -> bool:
    """A deadlock or lock wait timeout: the transaction is worth running again."""
    return _mysql_errno(exc) in _RETRYABLE_MYSQL_ERRORS


def _mysql_errno(exc: BaseException) -> int | None:
    cause: BaseException | None = exc
    while cause is not None:
        args = getattr(cause, "args", ())
        if args and isinstance(args[0], int):
            return args[0]
        orig = getattr(cause, "orig", None)
        cause = orig if orig is not None else cause.__cause__
    return None
