"""The cart view (the buyer's lines priced with the catalog's current prices) and coupons."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aggregates.money import from_minor, money
from projections.carts import live as carts
from projections.catalog import live as catalog
from projections.coupons import live as coupons_live
from projections.inventory import live as inventory
from queries.common import iso

_items = carts["items"]
_p = catalog["products"]
_stock = inventory["stock"]
_coupons = coupons_live["coupons"]


def cart_view(engine: Engine, buyer_id: str) -> dict[str, Any]:
    available = (
        select(_stock.c.product_id, func.sum(_stock.c.on_hand - _stock.c.reserved).label("available"))
        .group_by(_stock.c.product_id)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(_items.c.product_id, _items.c.quantity, _p.c.name, _p.c.price_minor, _p.c.listed,
                   _p.c.seller_id, available.c.available)
            .select_from(
                _items.outerjoin(_p, _p.c.product_id == _items.c.product_id)
                .outerjoin(available, available.c.product_id == _items.c.product_id)
            )
            .where(_items.c.buyer_id == buyer_id)
            .order_by(_items.c.position)
        ).all()
    items = []
    subtotal = Decimal(0)
    for r in rows:
        price = from_minor(r.price_minor) if r.price_minor is not None else Decimal(0)
        line = price * r.quantity
        purchasable = bool(r.listed)
        if purchasable:
            subtotal += line
        items.append({
            "productId": r.product_id, "name": r.name, "sellerId": r.seller_id, "quantity": r.quantity,
            "unitPrice": money(price), "subtotal": money(line), "available": purchasable,
            "inStock": max(0, int(r.available or 0)),
        })
    return {"items": items, "subtotal": money(subtotal)}


def coupon_view(engine: Engine, code: str) -> dict[str, Any] | None:
    c = _coupons
    with engine.connect() as conn:
        r = conn.execute(select(c).where(c.c.code == code)).first()
    if r is None:
        return None
    remaining = None if r.usage_limit is None else max(0, r.usage_limit - r.used)
    return {
        "code": r.code, "type": r.kind,
        "value": float(from_minor(r.value_minor)) if r.kind == "PERCENT" else money(from_minor(r.value_minor)),
        "maxDiscount": None if r.max_discount_minor is None else money(from_minor(r.max_discount_minor)),
        "minSpend": money(from_minor(r.min_spend_minor)),
        "startsAt": iso(r.starts_at), "endsAt": iso(r.ends_at), "usageLimit": r.usage_limit,
        "perUserLimit": r.per_user_limit, "used": r.used, "remaining": remaining,
        "sellerId": r.seller_id, "categoryId": r.category_id,
    }
