"""The cart view (the buyer's lines priced with the catalog's current prices) and coupons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from aggregates.money import from_minor, money
from projections.carts import live as carts
from projections.catalog import live as catalog
from projections.coupons import live as coupons_live
from queries.catalog import available_units, naive_now, price_fields, sales_in_force
from queries.common import iso

_items = carts["items"]
_p = catalog["products"]
_coupons = coupons_live["coupons"]


def cart_view(engine: Engine, buyer_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The cart as the read model holds it."""
    with engine.connect() as conn:
        lines = [
            (r.product_id, r.quantity)
            for r in conn.execute(
                select(_items.c.product_id, _items.c.quantity)
                .where(_items.c.buyer_id == buyer_id)
                .order_by(_items.c.position)
            )
        ]
    return priced_cart(engine, lines, now)


def priced_cart(
    engine: Engine, lines: list[tuple[str, int]], now: datetime | None = None
) -> dict[str, Any]:
    """Cart lines with the catalog's prices at ``now``, a sale price in force included (a
    command's answer prices the cart it just saved this way, without waiting for the carts
    projection)."""
    ids = [pid for pid, _ in lines]
    with engine.connect() as conn:
        rows = {
            r.product_id: r
            for r in conn.execute(
                select(
                    _p.c.product_id, _p.c.name, _p.c.price_minor, _p.c.listed, _p.c.seller_id
                ).where(_p.c.product_id.in_(ids))
            )
        }
        in_stock = available_units(conn, ids)
        sales = sales_in_force(conn, ids, naive_now(now))
    items = []
    subtotal = Decimal(0)
    for product_id, quantity in lines:
        r = rows.get(product_id)
        sale = sales.get(product_id)
        regular = 0 if r is None else r.price_minor
        price = from_minor(sale.price_minor if sale and sale.price_minor < regular else regular)
        line = price * quantity
        purchasable = bool(r is not None and r.listed)
        if purchasable:
            subtotal += line
        items.append(
            {
                "productId": product_id,
                "name": None if r is None else r.name,
                "sellerId": None if r is None else r.seller_id,
                "quantity": quantity,
                "unitPrice": money(price),
                **{k: v for k, v in price_fields(regular, sale).items() if k != "price"},
                "subtotal": money(line),
                "available": purchasable,
                "inStock": max(0, in_stock.get(product_id, 0)),
            }
        )
    return {"items": items, "subtotal": money(subtotal)}


def coupon_view(engine: Engine, code: str) -> dict[str, Any] | None:
    c = _coupons
    with engine.connect() as conn:
        r = conn.execute(select(c).where(c.c.code == code)).first()
    if r is None:
        return None
    remaining = None if r.usage_limit is None else max(0, r.usage_limit - r.used)
    return {
        "code": r.code,
        "type": r.kind,
        "value": float(from_minor(r.value_minor))
        if r.kind == "PERCENT"
        else money(from_minor(r.value_minor)),
        "maxDiscount": None
        if r.max_discount_minor is None
        else money(from_minor(r.max_discount_minor)),
        "minSpend": money(from_minor(r.min_spend_minor)),
        "startsAt": iso(r.starts_at),
        "endsAt": iso(r.ends_at),
        "usageLimit": r.usage_limit,
        "perUserLimit": r.per_user_limit,
        "used": r.used,
        "remaining": remaining,
        "sellerId": r.seller_id,
        "categoryId": r.category_id,
    }
