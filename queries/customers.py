"""Read side of customer records: tags, private notes, a customer's orders and spend."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aggregates.money import money
from projections.customers import live
from projections.orders import live as orders_live
from queries.common import PageRequest, iso, paginated

_tags = live["tags"]
_notes = live["notes"]
_orders = orders_live["orders"]

#: Payment states in which the order's total was paid (orders paid before payments were
#: recorded as their own events have no payment entry: their total counts).
_PAID_STATES = ("COMPLETED", "REFUNDED", "PARTIALLY_REFUNDED")


def tags_of(engine: Engine, user_ids: list[str]) -> dict[str, list[str]]:
    """Each user's tags, in the order they were given."""
    found: dict[str, list[str]] = {u: [] for u in user_ids}
    if not user_ids:
        return found
    with engine.connect() as conn:
        rows = conn.execute(
            select(_tags.c.user_id, _tags.c.tag)
            .where(_tags.c.user_id.in_(user_ids))
            .order_by(_tags.c.position)
        ).all()
    for user_id, tag in rows:
        found[user_id].append(tag)
    return found


def users_tagged(key: str) -> Any:
    """A subquery of the ids of the users with the tag whose key (aggregates.customers.tag_key,
    case-insensitive) is ``key``."""
    return select(_tags.c.user_id).where(_tags.c.tag_key == key)


def notes(engine: Engine, user_id: str, page: PageRequest) -> dict[str, Any]:
    """An admin's notes on a user, newest first."""
    t = _notes
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(t).where(t.c.user_id == user_id)
        ).scalar_one()
        rows = conn.execute(
            select(t)
            .where(t.c.user_id == user_id)
            .order_by(t.c.position.desc())
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    items = [
        {
            "noteId": r.note_id,
            "userId": r.user_id,
            "text": r.text,
            "authorId": r.author_id,
            "createdAt": iso(r.created_at),
        }
        for r in rows
    ]
    return paginated("notes", items, total, page)


def _amount(value: dict[str, Any]) -> Decimal:
    return Decimal(str(value["value"]))


def _paid_and_refunded(doc: dict[str, Any]) -> tuple[Decimal, Decimal]:
    payments = [p for p in doc.get("payments", []) if p["status"] == "COMPLETED"]
    paid = sum((_amount(p["amount"]) for p in payments), Decimal(0))
    if not payments and doc["paymentStatus"] in _PAID_STATES:
        paid = _amount(doc["total"])
    refunded = sum((_amount(r["amount"]) for r in doc.get("refunds", [])), Decimal(0))
    return paid, refunded


def customer_orders(engine: Engine, user_id: str, page: PageRequest) -> dict[str, Any]:
    """A buyer's orders (newest first, paged) and spend over all of them: what was paid minus
    what was refunded, from each order's document (payments and refunds as recorded)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_orders.c.order_id, _orders.c.document)
            .where(_orders.c.buyer_id == user_id)
            .order_by(_orders.c.created_at.desc(), _orders.c.order_id.desc())
        ).all()
    total_paid = total_refunded = Decimal(0)
    paid_orders = 0
    summaries = []
    for _, raw in rows:
        doc = json.loads(raw)
        paid, refunded = _paid_and_refunded(doc)
        total_paid += paid
        total_refunded += refunded
        paid_orders += paid > 0
        summaries.append(
            {
                "orderId": doc["orderId"],
                "orderNumber": doc["orderNumber"],
                "status": doc["status"],
                "paymentStatus": doc["paymentStatus"],
                "paymentMethod": doc["paymentMethod"],
                "total": doc["total"],
                "paid": money(paid),
                "refunded": money(refunded),
                "createdAt": doc["createdAt"],
            }
        )
    shown = summaries[page.offset : page.offset + page.page_size]
    return {
        "userId": user_id,
        "spend": {
            "orderCount": len(rows),
            "paidOrderCount": paid_orders,
            "totalPaid": money(total_paid),
            "totalRefunded": money(total_refunded),
            "netSpend": money(total_paid - total_refunded),
        },
        **paginated("orders", shown, len(rows), page),
    }
