"""Read side of orders: lists and details from the read model; the audit views (timeline,
``asOf``, ``version``) fold the order's stored events on purpose."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from pydantic.alias_generators import to_camel
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aggregates.money import from_minor, money
from aggregates.order_view import fold
from aggregates.orders import Order
from commands.application import META_KEY, ShopledgerApplication
from projections.orders import live as orders_live
from queries.catalog import check_dates, taipei_day_start
from queries.common import PageRequest, iso, paginated

_o = orders_live["orders"]
_s = orders_live["sellers"]


@dataclass(frozen=True)
class OrderFilter:
    buyer_id: str | None = None
    seller_id: str | None = None
    status: str | None = None
    payment_status: str | None = None
    shipping_status: str | None = None
    from_date: date | None = None
    to_date: date | None = None


def list_orders(engine: Engine, f: OrderFilter, page: PageRequest) -> dict[str, Any]:
    check_dates(f.from_date, f.to_date)
    source: Any = _o
    conditions: list[Any] = []
    subtotal: Any = None
    if f.seller_id is not None:
        source = _o.join(_s, _s.c.order_id == _o.c.order_id)
        conditions.append(_s.c.seller_id == f.seller_id)
        subtotal = _s.c.seller_subtotal_minor
    if f.buyer_id is not None:
        conditions.append(_o.c.buyer_id == f.buyer_id)
    for column, value in (
        (_o.c.status, f.status),
        (_o.c.payment_status, f.payment_status),
        (_o.c.shipping_status, f.shipping_status),
    ):
        if value is not None:
            conditions.append(column == value)
    if f.from_date is not None:
        conditions.append(_o.c.created_at >= taipei_day_start(f.from_date))
    if f.to_date is not None:
        conditions.append(_o.c.created_at < taipei_day_start(f.to_date + timedelta(days=1)))
    columns = [
        _o.c.order_id,
        _o.c.order_number,
        _o.c.buyer_id,
        _o.c.status,
        _o.c.total_minor,
        _o.c.created_at,
        _o.c.payment_status,
        _o.c.shipping_status,
        _o.c.payment_method,
    ]
    if subtotal is not None:
        columns.append(subtotal)
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(source).where(*conditions)
        ).scalar_one()
        rows = conn.execute(
            select(*columns)
            .select_from(source)
            .where(*conditions)
            .order_by(_o.c.created_at.desc(), _o.c.order_id.desc())
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    items = []
    for r in rows:
        item = {
            "orderId": r.order_id,
            "orderNumber": r.order_number,
            "userId": r.buyer_id,
            "status": r.status,
            "total": money(from_minor(r.total_minor)),
            "createdAt": iso(r.created_at),
            "paymentStatus": r.payment_status,
            "shippingStatus": r.shipping_status,
            "paymentMethod": r.payment_method,
        }
        if subtotal is not None:
            # A seller sees its own part of the order, not the other sellers' amounts.
            item["total"] = item["sellerSubtotal"] = money(from_minor(r.seller_subtotal_minor))
        items.append(item)
    return paginated("orders", items, total, page)


def get_order(engine: Engine, order_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        raw = conn.execute(select(_o.c.document).where(_o.c.order_id == order_id)).scalar()
    return None if raw is None else dict(json.loads(raw))


def seller_view(doc: dict[str, Any], seller_id: str) -> dict[str, Any]:
    """What a seller sees of a multi-seller order: its own items and their subtotal."""
    items = [i for i in doc["items"] if i["sellerId"] == seller_id]
    own = sum((Decimal(str(i["subtotal"]["value"])) for i in items), Decimal(0))
    hidden = (
        "subtotal",
        "discount",
        "tax",
        "total",
        "shipping",
        "paymentDetails",
        "refundDetails",
        "paymentUrl",
        "billingAddress",
        "payments",
        "refunds",
        "cancelledAmount",
    )
    view = {k: v for k, v in doc.items() if k not in hidden}
    mine = {i["orderItemId"] for i in items}
    shipments = [
        s for s in doc.get("shipments", []) if any(i["orderItemId"] in mine for i in s["items"])
    ]
    if "unitCancellations" in doc:  # only its own units, without the buyer's amounts
        view["unitCancellations"] = [
            {
                **{k: v for k, v in c.items() if k != "amount"},
                "items": [
                    {k: v for k, v in i.items() if k != "amount"}
                    for i in c["items"]
                    if i["orderItemId"] in mine
                ],
            }
            for c in doc["unitCancellations"]
            if any(i["orderItemId"] in mine for i in c["items"])
        ]
    sole = len(items) == len(doc["items"])
    return {
        **view,
        "items": items,
        "sellerSubtotal": money(own),
        "total": money(own),
        "shipments": shipments,
        "invoices": doc.get("invoices", []) if sole else [],
    }


# --- audit: fold the stored events ----------------------------------------------------------
@dataclass(frozen=True)
class StoredOrderEvent:
    position: int
    version: int
    topic: str
    state: dict[str, Any]
    event: Any


def order_events(app: ShopledgerApplication, order_id: UUID) -> list[StoredOrderEvent]:
    recorder: Any = app.recorder
    table = recorder.events_record_cls.__table__
    mapper = app.meta_mapper
    with recorder.transaction(commit=False) as session:
        rows = session.execute(
            select(
                table.c.id,
                table.c.originator_id,
                table.c.originator_version,
                table.c.topic,
                table.c.state,
            )
            .where(table.c.originator_id == order_id)
            .order_by(table.c.originator_version)
        ).all()
    found = []
    for r in rows:
        stored = StoredEvent(r.originator_id, r.originator_version, r.topic, bytes(r.state))
        state = mapper.decode_state(stored)
        found.append(
            StoredOrderEvent(
                r.id, r.originator_version, r.topic, state, mapper.event_from_state(stored, state)
            )
        )
    if found and not isinstance(found[0].event, Order.Placed):
        return []  # not an order
    return found


def order_as_of(
    events: list[StoredOrderEvent], at: datetime | None = None, version: int | None = None
) -> dict[str, Any] | None:
    """The order document as it was at ``at`` or after ``version``; None if it did not exist."""
    doc = None
    for stored in events:
        if version is not None and stored.version > version:
            break
        if at is not None and getattr(stored.event, "at", stored.event.timestamp) > at:
            break
        doc = fold(doc, stored.event)
    return doc


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _camel(value: Any) -> Any:
    """Event fields are snake_case in the store; the API speaks camelCase everywhere."""
    if isinstance(value, dict):
        return {to_camel(k) if isinstance(k, str) else k: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def timeline(order_id: UUID, events: list[StoredOrderEvent]) -> dict[str, Any]:
    return {
        "orderId": str(order_id),
        "events": [
            {
                "position": e.position,
                "version": e.version,
                "type": e.topic.rsplit(".", 1)[-1],
                "at": _plain(getattr(e.event, "at", e.event.timestamp)),
                "actor": e.state.get(META_KEY, {}).get("actor"),
                "correlationId": e.state.get(META_KEY, {}).get("correlationId"),
                "data": _camel(
                    {
                        k: _plain(v)
                        for k, v in e.state.items()
                        if k not in (META_KEY, "timestamp", "originator_topic")
                    }
                ),
            }
            for e in events
        ],
    }
