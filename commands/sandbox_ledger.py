"""The sandbox card gateway's books, in the service's own database.

The sandbox stands in for an acquirer, and an acquirer remembers every charge and refund it
processed: that is what lets the payment-recovery rule ask "did payment X go through?" after
the API process that asked for it died. One row per charge (our payment id) or refund (our
refund id), written before the sandbox answers; the first answer for a key is the one kept.
Being a table of the service's database, it is shared by every process in scaled mode and
survives restarts. It is created with the other tables of ours (shopledger/bootstrap.py).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import IntegrityError as StoreIntegrityError
from sqlalchemy import Boolean, Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from commands.sqltypes import Timestamp, utcnow
from gateways.sandbox import LedgerEntry

metadata = MetaData()
sandbox_ledger = Table(
    "sandbox_ledger",
    metadata,
    Column("kind", String(10), primary_key=True),  # charge, refund
    Column("ref_id", String(64), primary_key=True),  # our payment id or refund id
    Column("approved", Boolean, nullable=False),
    Column("transaction_id", String(64), nullable=False),
    Column("decline_code", String(40)),
    Column("amount", String(40), nullable=False),  # a Decimal as text: exact on every back end
    Column("currency", String(3), nullable=False),
    Column("recorded_at", Timestamp, nullable=False),
)


class SqlLedger:
    """:class:`gateways.sandbox.SandboxLedger` on the ``sandbox_ledger`` table.

    ``transaction(commit)`` is the event store's own transaction factory (it also serializes
    in-memory SQLite, where every thread shares one connection)."""

    def __init__(self, transaction: Callable[[bool], Any]) -> None:
        self.transaction = transaction

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        try:
            with self.transaction(True) as session:
                session.execute(
                    insert(sandbox_ledger).values(
                        kind=entry.kind,
                        ref_id=entry.key,
                        approved=entry.approved,
                        transaction_id=entry.transaction_id,
                        decline_code=entry.decline_code,
                        amount=str(entry.amount),
                        currency=entry.currency,
                        recorded_at=utcnow(),
                    )
                )
            return entry
        except (IntegrityError, StoreIntegrityError):  # asked before: the books keep the first
            found = self.find(entry.kind, entry.key)
            if found is None:  # pragma: no cover - a row that clashed then vanished
                raise
            return found

    def find(self, kind: str, key: str) -> LedgerEntry | None:
        t = sandbox_ledger
        with self.transaction(False) as session:
            row = session.execute(select(t).where(t.c.kind == kind, t.c.ref_id == key)).first()
        if row is None:
            return None
        return LedgerEntry(
            row.kind,
            row.ref_id,
            bool(row.approved),
            row.transaction_id,
            row.decline_code,
            Decimal(row.amount),
            row.currency,
        )
