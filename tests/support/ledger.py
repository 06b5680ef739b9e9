"""A small test domain (a ledger) to exercise the platform without business features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    insert,
    update,
)
from sqlalchemy.orm import Session

from aggregates.errors import Conflict, NotFound
from commands.bus import Command, Handler, UnitOfWork
from projections.base import Envelope, Projection, handles


class InsufficientFunds(Conflict):
    pass


class LedgerNotFound(NotFound):
    pass


class Ledger(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        Credited: ClassVar[Any]
        Debited: ClassVar[Any]

    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.balance = 0

    def credit(self, amount: int, memo: str = "") -> None:
        if amount <= 0:
            raise Conflict("amount must be positive")
        self._credited(amount, memo)

    def debit(self, amount: int) -> None:
        if amount > self.balance:
            raise InsufficientFunds("not enough funds", balance=self.balance)
        self._debited(amount)

    @event("Credited")
    def _credited(self, amount: int, memo: str) -> None:
        self.balance += amount

    @event("Debited")
    def _debited(self, amount: int) -> None:
        self.balance -= amount


@dataclass(frozen=True)
class OpenLedger(Command):
    name: str


@dataclass(frozen=True)
class Credit(Command):
    ledger_id: UUID
    amount: int
    memo: str = ""


@dataclass(frozen=True)
class Debit(Command):
    ledger_id: UUID
    amount: int


def open_ledger(uow: UnitOfWork, cmd: OpenLedger) -> UUID:
    ledger = Ledger(cmd.name)
    uow.add(ledger)
    return ledger.id


def credit(uow: UnitOfWork, cmd: Credit) -> int:
    ledger = uow.get(Ledger, cmd.ledger_id, LedgerNotFound)
    ledger.credit(cmd.amount, cmd.memo)
    uow.add(ledger)
    return ledger.balance


def debit(uow: UnitOfWork, cmd: Debit) -> int:
    ledger = uow.get(Ledger, cmd.ledger_id, LedgerNotFound)
    ledger.debit(cmd.amount)
    uow.add(ledger)
    return ledger.balance


HANDLERS: dict[type, Handler] = {OpenLedger: open_ledger, Credit: credit, Debit: debit}


class LedgerBalances(Projection):
    name = "test_ledgers"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {
            "ledgers": Table(
                f"rm_test_ledgers{suffix}",
                metadata,
                Column("ledger_id", String(36), primary_key=True),
                Column("name", Text, nullable=False),
                Column("balance", BigInteger, nullable=False),
                Column("entries", Integer, nullable=False),
                Column("last_actor", String(100)),
            )
        }

    def __init__(self, tables: dict[str, Table]) -> None:
        super().__init__(tables)
        t = self.tables["ledgers"]
        # Built once: constructing Core statements per event costs more than executing them.
        self._insert = insert(t)
        self._move_stmt = (
            update(t)
            .where(t.c.ledger_id == bindparam("lid"))
            .values(
                balance=t.c.balance + bindparam("delta"),
                entries=t.c.entries + 1,
                last_actor=bindparam("actor"),
            )
        )

    @handles(Ledger.Opened)
    def _opened(self, session: Session, env: Envelope) -> None:
        session.execute(
            self._insert,
            {
                "ledger_id": str(env.originator_id),
                "name": env.event.name,
                "balance": 0,
                "entries": 0,
                "last_actor": env.actor,
            },
        )

    @handles(Ledger.Credited)
    def _credited(self, session: Session, env: Envelope) -> None:
        self._move(session, env, env.event.amount)

    @handles(Ledger.Debited)
    def _debited(self, session: Session, env: Envelope) -> None:
        self._move(session, env, -env.event.amount)

    def _move(self, session: Session, env: Envelope, delta: int) -> None:
        session.execute(
            self._move_stmt, {"lid": str(env.originator_id), "delta": delta, "actor": env.actor}
        )
