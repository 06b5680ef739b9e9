"""Read side of sale prices: a product's sale windows with their status at the caller's clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aggregates.money import from_minor, money
from projections.catalog import live as catalog
from queries.catalog import naive_now
from queries.common import PageRequest, iso, paginated

_w = catalog["sales"]
_p = catalog["products"]


def sale_status(row: Any, now: datetime) -> str:
    """The same statuses as :meth:`aggregates.promotions.SaleWindow.status` (``now`` naive UTC)."""
    if row.cancelled_at is not None:
        return "CANCELLED"
    if now < row.starts_at:
        return "SCHEDULED"
    return "ACTIVE" if now < row.ends_at else "ENDED"


def sale_prices(
    engine: Engine, product_id: str, page: PageRequest, now: datetime | None = None
) -> dict[str, Any]:
    """The product's sales, latest start first."""
    at = naive_now(now)
    with engine.connect() as conn:
        regular = conn.execute(
            select(_p.c.price_minor).where(_p.c.product_id == product_id)
        ).scalar_one()
        total = conn.execute(
            select(func.count()).select_from(_w).where(_w.c.product_id == product_id)
        ).scalar_one()
        rows = conn.execute(
            select(_w)
            .where(_w.c.product_id == product_id)
            .order_by(_w.c.starts_at.desc(), _w.c.position.desc())
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    items = [
        {
            "saleId": r.sale_id,
            "productId": r.product_id,
            "salePrice": money(from_minor(r.price_minor)),
            "regularPrice": money(from_minor(regular)),
            "startsAt": iso(r.starts_at),
            "endsAt": iso(r.ends_at),
            "status": sale_status(r, at),
            "cancelledAt": iso(r.cancelled_at),
            "createdAt": iso(r.created_at),
        }
        for r in rows
    ]
    return paginated("salePrices", items, total, page)
