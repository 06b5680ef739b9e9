"""Returns, disputes and sellers' dispute records (read model only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.engine import Engine

from aggregates.money import money
from projections.accounts import live as accounts
from projections.aftersale import live
from queries.common import PageRequest, iso, paginated

_r = live["returns"]
_d = live["disputes"]
_st = live["statements"]
_rec = live["records"]
_a = accounts["accounts"]


def _refund(row: Any) -> dict[str, Any] | None:
    if row.refund_id is None:
        return None
    return {
        "refundId": row.refund_id,
        "amount": money(Decimal(row.refund_amount)),
        "status": row.refund_status,
    }


def return_view(row: Any) -> dict[str, Any]:
    items = json.loads(row.items)
    return {
        "returnId": row.return_id,
        "orderId": row.order_id,
        "orderNumber": row.order_number,
        "buyerId": row.buyer_id,
        "sellerId": row.seller_id,
        "status": row.status,
        "items": [
            {
                "orderItemId": i["orderItemId"],
                "productId": i["productId"],
                "name": i["name"],
                "quantity": int(i["quantity"]),
                "unitPrice": money(Decimal(i["unitPrice"])),
            }
            for i in items
        ],
        "reason": row.reason,
        "images": json.loads(row.images),
        "decisionNote": row.decision_note,
        "carrier": row.carrier,
        "trackingNumber": row.tracking_number,
        "warehouseId": row.warehouse_id,
        "refund": _refund(row),
        "requestedAt": iso(row.requested_at),
        "updatedAt": iso(row.updated_at),
    }


#: What a list may be narrowed to: buyer_id, seller_id and order_id.
SCOPE_KEYS = ("buyer_id", "seller_id", "order_id")


def _parties(table: Any, scope: Mapping[str, str]) -> list[ColumnElement[bool]]:
    return [table.c[key] == scope[key] for key in SCOPE_KEYS if key in scope]


def list_returns(
    engine: Engine,
    page: PageRequest,
    scope: Mapping[str, str],
    *,
    status: str | None = None,
) -> dict[str, Any]:
    """Newest first."""
    conditions = _parties(_r, scope)
    if status is not None:
        conditions.append(_r.c.status == status)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_r).where(*conditions)).scalar_one()
        rows = conn.execute(
            select(_r)
            .where(*conditions)
            .order_by(_r.c.position.desc())
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    return paginated("returns", [return_view(r) for r in rows], total, page)


def get_return(engine: Engine, return_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(_r).where(_r.c.return_id == return_id)).first()


# --- disputes -------------------------------------------------------------------------------
def statement_view(author_id: str, role: str, text: str, at: Any) -> dict[str, Any]:
    return {"authorId": author_id, "role": role, "text": text, "at": iso(at)}


def dispute_view(row: Any, statements: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A dispute; ``statements`` (oldest first) on the one-dispute answer, not in lists."""
    view: dict[str, Any] = {
        "disputeId": row.dispute_id,
        "orderId": row.order_id,
        "orderNumber": row.order_number,
        "buyerId": row.buyer_id,
        "sellerId": row.seller_id,
        "openedBy": row.opened_by,
        "openerRole": row.opener_role,
        "status": row.status,
        "reason": row.reason,
        "text": row.text,
        "statementCount": row.statement_count,
        "openedAt": iso(row.opened_at),
        "updatedAt": iso(row.updated_at),
        "resolution": None
        if row.resolution is None
        else {
            "resolution": row.resolution,
            "note": row.resolution_note,
            "resolvedBy": row.resolved_by,
            "resolvedAt": iso(row.resolved_at),
            "refund": _refund(row),
        },
    }
    if statements is not None:
        view["statements"] = statements
    return view


def list_disputes(
    engine: Engine,
    page: PageRequest,
    scope: Mapping[str, str],
    *,
    status: str | None = None,
    oldest_first: bool = False,
) -> dict[str, Any]:
    conditions = _parties(_d, scope)
    if status is not None:
        conditions.append(_d.c.status == status)
    order = _d.c.position.asc() if oldest_first else _d.c.position.desc()
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_d).where(*conditions)).scalar_one()
        rows = conn.execute(
            select(_d).where(*conditions).order_by(order).limit(page.page_size).offset(page.offset)
        ).all()
    return paginated("disputes", [dispute_view(r) for r in rows], total, page)


def get_dispute(engine: Engine, dispute_id: str) -> tuple[Any, list[dict[str, Any]]] | None:
    with engine.connect() as conn:
        row = conn.execute(select(_d).where(_d.c.dispute_id == dispute_id)).first()
        if row is None:
            return None
        statements = conn.execute(
            select(_st).where(_st.c.dispute_id == dispute_id).order_by(_st.c.seq)
        ).all()
    return row, [statement_view(s.author_id, s.role, s.text, s.at) for s in statements]


# --- sellers' records -----------------------------------------------------------------------
def record_view(row: Any) -> dict[str, Any]:
    return {
        "sellerId": row.seller_id,
        "disputesLost": row.disputes_lost,
        "lastLostAt": iso(row.last_lost_at),
        "flagged": bool(row.flagged),
        "flaggedAt": iso(row.flagged_at),
        "lostInWindow": row.lost_in_window,
        "windowDays": row.window_days,
        "flaggingDisputeId": row.flagging_dispute_id,
        "clearedAt": iso(row.cleared_at),
        "clearedBy": row.cleared_by,
        "clearNote": row.clear_note,
    }


def seller_records(engine: Engine, page: PageRequest, *, flagged: bool) -> dict[str, Any]:
    """Sellers with lost disputes; ``flagged``: only those flagged, oldest flag first."""
    if flagged:
        conditions = [_rec.c.flagged == true()]
        order = [_rec.c.flagged_position.asc()]
    else:
        conditions = [_rec.c.flagged == false()]
        order = [_rec.c.disputes_lost.desc(), _rec.c.seller_id.asc()]
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_rec).where(*conditions)).scalar_one()
        rows = conn.execute(
            select(_rec)
            .where(*conditions)
            .order_by(*order)
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    return paginated("sellers", [record_view(r) for r in rows], total, page)


def seller_record(engine: Engine, seller_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(_rec).where(_rec.c.seller_id == seller_id)).first()
    return None if row is None else record_view(row)


def admin_ids(engine: Engine) -> list[str]:
    """The active admins (told when a seller is flagged)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_a.c.user_id)
            .where(_a.c.role == "admin", _a.c.status == "active", _a.c.deleted == false())
            .order_by(_a.c.user_id)
        ).all()
    return [r.user_id for r in rows]
