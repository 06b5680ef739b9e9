"""Read side of inventory: warehouses, suppliers, stock levels and movements (read models only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.engine import Engine

from projections.catalog import live as catalog_live
from projections.inventory import live
from queries.common import PageRequest, iso, paginated

_w = live["warehouses"]
_sup = live["suppliers"]
_links = live["links"]
_stock = live["stock"]
_moves = live["movements"]
_products = catalog_live["products"]


def warehouse_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "warehouseId": row.warehouse_id,
        "code": row.code,
        "name": row.name,
        "address": row.address,
        "createdAt": iso(row.created_at),
    }


def list_warehouses(engine: Engine, page: PageRequest) -> dict[str, Any]:
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_w)).scalar_one()
        rows = conn.execute(
            select(_w).order_by(_w.c.code).limit(page.page_size).offset(page.offset)
        ).all()
    return paginated("warehouses", [warehouse_view(r) for r in rows], total, page)


def supplier_view(row: Row[Any], product_ids: list[str] | None = None) -> dict[str, Any]:
    view = {
        "supplierId": row.supplier_id,
        "name": row.name,
        "contactEmail": row.contact_email,
        "phone": row.phone,
        "address": row.address,
        "createdAt": iso(row.created_at),
    }
    if product_ids is not None:
        view["productIds"] = product_ids
    return view


def list_suppliers(
    engine: Engine, page: PageRequest, product_id: str | None = None
) -> dict[str, Any]:
    conditions = []
    if product_id is not None:
        conditions.append(
            _sup.c.supplier_id.in_(
                select(_links.c.supplier_id).where(_links.c.product_id == product_id)
            )
        )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_sup).where(*conditions)).scalar_one()
        rows = conn.execute(
            select(_sup)
            .where(*conditions)
            .order_by(_sup.c.name, _sup.c.supplier_id)
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    return paginated("suppliers", [supplier_view(r) for r in rows], total, page)


def get_supplier(
    engine: Engine, supplier_id: str, seller_id: str | None = None
) -> dict[str, Any] | None:
    """The supplier; its products are all of them, or only ``seller_id``'s when given."""
    with engine.connect() as conn:
        row = conn.execute(select(_sup).where(_sup.c.supplier_id == supplier_id)).first()
        if row is None:
            return None
        query = select(_links.c.product_id).where(_links.c.supplier_id == supplier_id)
        if seller_id is not None:
            query = query.join(_products, _products.c.product_id == _links.c.product_id).where(
                _products.c.seller_id == seller_id
            )
        products = list(conn.execute(query.order_by(_links.c.product_id)).scalars())
    return supplier_view(row, products)


def stock_levels(engine: Engine, product_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(_stock, _w.c.code, _w.c.name)
            .select_from(_stock.join(_w, _w.c.warehouse_id == _stock.c.warehouse_id))
            .where(_stock.c.product_id == product_id)
            .order_by(_w.c.code)
        ).all()
    warehouses = [
        {
            "warehouseId": r.warehouse_id,
            "code": r.code,
            "name": r.name,
            "onHand": r.on_hand,
            "reserved": r.reserved,
            "available": r.on_hand - r.reserved,
        }
        for r in rows
    ]
    totals = {k: sum(w[k] for w in warehouses) for k in ("onHand", "reserved", "available")}
    return {"productId": product_id, "warehouses": warehouses, "totals": totals}


def stock_movements(engine: Engine, product_id: str, page: PageRequest) -> dict[str, Any]:
    condition = _moves.c.product_id == product_id
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_moves).where(condition)).scalar_one()
        rows = conn.execute(
            select(_moves)
            .where(condition)
            .order_by(_moves.c.position.desc(), _moves.c.seq.desc())
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    items = [
        {
            "position": r.position,
            "warehouseId": r.warehouse_id,
            "kind": r.kind,
            "onHandChange": r.on_hand_change,
            "reservedChange": r.reserved_change,
            "reference": r.reference,
            "note": r.note,
            "at": iso(r.at),
            "actor": r.actor,
        }
        for r in rows
    ]
    return paginated("movements", items, total, page)
