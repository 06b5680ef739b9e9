"""Customer record commands (admin): tags and private notes on a user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aggregates.accounts import Account, AccountNotFound
from aggregates.customers import CustomerRecord
from commands.bus import Command, Handler, UnitOfWork


def _record(uow: UnitOfWork, user_id: UUID) -> CustomerRecord:
    """The user's record, opened on first use (the user must exist)."""
    uow.get(Account, user_id, AccountNotFound)
    found = uow.find(CustomerRecord, CustomerRecord.create_id(str(user_id)))
    return found if found is not None else CustomerRecord.open(str(user_id))


@dataclass(frozen=True)
class TagCustomer(Command):
    user_id: UUID
    tag: str
    admin_id: str


def tag_customer(uow: UnitOfWork, cmd: TagCustomer) -> CustomerRecord:
    record = _record(uow, cmd.user_id)
    record.tag(cmd.tag, cmd.admin_id, uow.now)
    uow.add(record)
    return record


@dataclass(frozen=True)
class UntagCustomer(Command):
    user_id: UUID
    tag: str
    admin_id: str


def untag_customer(uow: UnitOfWork, cmd: UntagCustomer) -> CustomerRecord:
    record = _record(uow, cmd.user_id)
    record.untag(cmd.tag, cmd.admin_id, uow.now)
    uow.add(record)
    return record


@dataclass(frozen=True)
class AddCustomerNote(Command):
    user_id: UUID
    note_id: str
    text: str
    admin_id: str


def add_customer_note(uow: UnitOfWork, cmd: AddCustomerNote) -> dict[str, Any]:
    record = _record(uow, cmd.user_id)
    note = record.add_note(cmd.note_id, cmd.text, cmd.admin_id, uow.now)
    uow.add(record)
    return note


HANDLERS: dict[type, Handler] = {
    TagCustomer: tag_customer,
    UntagCustomer: untag_customer,
    AddCustomerNote: add_customer_note,
}
