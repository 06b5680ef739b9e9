"""A test-only router over the ledger domain, to drive the platform through HTTP."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from sqlalchemy import select

from api.deps import ContainerDep, reads, run_command
from api.errors import ApiError
from api.schemas import RequestBody
from tests.support.ledger import Credit, Debit, LedgerBalances, OpenLedger

router = APIRouter(prefix="/test/ledgers")
_table = LedgerBalances.live_tables()["ledgers"]


def test_actor(request: Request) -> None:
    """Stands in for authentication: the caller names itself in a header."""
    request.state.actor = request.headers.get("X-Test-User", "anonymous")


class OpenBody(RequestBody):
    name: str = Field(min_length=1, max_length=50)
    opening_note: str | None = None


class AmountBody(RequestBody):
    amount: int = Field(gt=0)
    memo: str = ""


@router.post("", status_code=201, dependencies=[Depends(test_actor)])
def open_ledger(body: OpenBody, request: Request, container: ContainerDep):
    """Open a ledger."""
    return run_command(
        request,
        container,
        OpenLedger(body.name),
        lambda ledger_id: (201, {"ledgerId": str(ledger_id), "name": body.name}),
        body=body,
    )


@router.post("/{ledger_id}/credits", dependencies=[Depends(test_actor)])
def credit(ledger_id: UUID, body: AmountBody, request: Request, container: ContainerDep):
    """Credit a ledger."""
    return run_command(
        request,
        container,
        Credit(ledger_id, body.amount, body.memo),
        lambda balance: (200, {"balance": balance}),
        body=body,
    )


@router.post("/{ledger_id}/debits", dependencies=[Depends(test_actor)])
def debit(ledger_id: UUID, body: AmountBody, request: Request, container: ContainerDep):
    """Debit a ledger."""
    return run_command(
        request,
        container,
        Debit(ledger_id, body.amount),
        lambda balance: (200, {"balance": balance}),
        body=body,
    )


@router.get("/{ledger_id}", dependencies=[Depends(reads("test_ledgers"))])
def get_ledger(ledger_id: UUID, container: ContainerDep) -> dict[str, object]:
    """Read a ledger from its read model."""
    with container.engine.connect() as conn:
        row = conn.execute(select(_table).where(_table.c.ledger_id == str(ledger_id))).first()
    if row is None:
        raise ApiError(404, "NOT_FOUND", "ledger not found")
    return {
        "ledgerId": row.ledger_id,
        "name": row.name,
        "balance": row.balance,
        "entries": row.entries,
    }


@router.get("/boom/crash")
def crash() -> None:
    """Fails unexpectedly."""
    raise RuntimeError("secret internals")
