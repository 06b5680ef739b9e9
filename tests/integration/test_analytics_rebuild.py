"""The analysis projections fold each batch in memory (projections/analytics.py): whatever the
batch boundaries, `shopledger projections rebuild NAME` must give exactly the rows incremental
processing gave, on SQLite and MariaDB."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from aggregates.cart import Cart
from aggregates.catalog import Product
from aggregates.errors import DomainError
from aggregates.inventory import Inventory
from aggregates.orders import Order
from commands.application import EventMeta, recording_as
from projections.analytics import ANALYTICS
from projections.base import new_metadata
from shopledger.bootstrap import Container, bootstrap
from shopledger.cli import main
from tests.conftest import make_settings, shared_jwt_key

START = datetime(2026, 3, 30, 15, 30, tzinfo=UTC)  # the last evening of a Taipei month
SELLERS = ("s-1", "s-2", "s-3")
ADDRESS = {"name": "王小明", "city": "台北市"}
META = EventMeta("system:test", "analytics-rebuild")


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _history(c: Container, rng: random.Random) -> None:
    """Products, carts, inventories and orders living through every rule of the analysis,
    saved in rounds so that different orders' events interleave."""
    products = []
    for n in range(6):
        products.append(
            Product.list_new(
                _uuid(rng),
                seller_id=SELLERS[n % 3],
                name=f"商品{n}",
                description="說明",
                category_id=f"c-{n % 2}",
                price=Decimal("99.90") if n % 2 else Decimal(350 + n),
                images=[],
                supplier_ids=[],
                banned=(),
                at=START,
            )
        )
    inventories = []
    for p in products:
        inventory = Inventory(product_id=str(p.id), seller_id=p.seller_id)
        inventory.receive("r1", "w-1", 10, None, START)
        inventory.set_low_stock_threshold(rng.choice((None, 3, 12)), START)
        inventory.check_low_stock(5, START)
        inventories.append(inventory)
    carts = [Cart(buyer_id=f"b-{n}") for n in range(4)]
    orders = [_place(rng, products, n) for n in range(40)]
    with recording_as(META):
        c.app.save(*products, *inventories, *carts)
        for round_ in range(8):
            for cart in carts:
                _cart_step(rng, cart, products)
            for inventory in inventories:
                change = -2 if inventory.available_in("w-1") > 2 and rng.random() < 0.6 else 2
                inventory.adjust(f"a{round_}", "w-1", change, "DAMAGED", "", START)
                inventory.check_low_stock(5, START + timedelta(days=round_))
            for order in orders:
                _order_step(rng, order, round_)
            touched = [a for a in (*carts, *inventories, *orders) if a.pending_events]
            rng.shuffle(touched)
            for start in range(0, len(touched), 7):
                c.app.save(*touched[start : start + 7])


def _place(rng: random.Random, products: list[Product], n: int) -> Order:
    order_id = _uuid(rng)
    chosen = rng.sample(products, rng.randint(1, 3))
    items: list[dict[str, Any]] = []
    for k, p in enumerate(chosen, start=1):
        qty = rng.randint(1, 3)
        items.append(
            {
                "orderItemId": f"{order_id}-{k}",
                "productId": str(p.id),
                "sellerId": p.seller_id,
                "categoryId": p.category_id,
                "name": p.name,
                "quantity": qty,
                "unitPrice": str(p.price),
                "subtotal": str(p.price * qty),
            }
        )
    subtotal = sum((Decimal(i["subtotal"]) for i in items), Decimal(0))
    at = START + timedelta(hours=5 * n)
    method = "COD" if n % 7 == 3 else "CREDIT_CARD"
    return Order.place(
        order_id,
        order_number=f"N{n:04d}",
        buyer_id=f"b-{n % 5}",
        items=items,
        subtotal=subtotal,
        discount=Decimal(0),
        coupon_code=None,
        tax=Decimal(0),
        shipping=Decimal(60),
        shipping_method="STANDARD",
        total=subtotal + 60,
        shipping_address=ADDRESS,
        billing_address=ADDRESS,
        payment_method=method,
        notes="",
        at=at,
        expires_at=None if method == "COD" else at + timedelta(minutes=30),
    )


def _cart_step(rng: random.Random, cart: Cart, products: list[Product]) -> None:
    for _ in range(rng.randint(0, 3)):
        roll = rng.random()
        if roll < 0.6:
            cart.set(str(rng.choice(products).id), rng.randint(1, 3))
        elif roll < 0.8 and cart.items:
            cart.remove(next(iter(cart.items)))
        elif cart.items:
            cart.check_out(f"o-{rng.getrandbits(32)}")


def _order_step(rng: random.Random, order: Order, round_: int) -> None:
    """One random step of an order's life; steps the order refuses are skipped."""
    at = order.created_at + timedelta(days=round_, hours=rng.randint(1, 20))
    roll = rng.random()
    try:
        if order.status == "CREATED" and order.payment_method != "COD":
            if roll < 0.1:
                order.expire(at)
            elif roll < 0.2:
                order.cancel("changed my mind", "buyer", "", at)
            elif roll < 0.35:
                order.change_status("PAID", "paid at the counter", at)  # StatusChanged
            else:
                order.complete_payment(
                    f"p-{round_}", "CREDIT_CARD", "SANDBOX", order.total, "tx", None, "R", at
                )
        elif order.status in ("PAID", "PROCESSING") or (
            order.status == "CREATED" and order.payment_method == "COD"
        ):
            if roll < 0.08 and not order.shipments:
                order.cancel("out of stock", "seller", "", at)
                _refund(order, order.refundable, [], at)
            elif roll < 0.15 and not order.reminded:
                order.remind_ship(at + timedelta(days=8), timedelta(days=7))
            else:
                seller = rng.choice(order.seller_ids)
                if seller not in order.processed_sellers:
                    order.process([seller], seller, None, None, "", at)
                mine = [i for i in order.items if i["sellerId"] == seller and order.unshipped(i)]
                if mine:
                    first = [(mine[0]["orderItemId"], 1)] if rng.random() < 0.3 else None
                    order.ship(
                        f"{order.id}-{round_}", [seller], "黑貓", "T1", None, first, seller,
                        None, None, "", None, at,
                    )  # fmt: skip
        elif order.status == "SHIPPED" or order.shipments:
            for shipment_id, shipment in order.shipments.items():
                if shipment["status"] != "DELIVERED":
                    status = "DELIVERED" if rng.random() < 0.6 else "IN_TRANSIT"
                    done = order.update_shipment(shipment_id, status, None, "", None, False, at)
                    if done and order.payment_method == "COD" and order.paid_amount == 0:
                        order.complete_payment(
                            f"cod-{round_}", "COD", "COD", order.total, None, None, "R", at
                        )
            if order.carrier_delivered_at is not None and order.status == "SHIPPED":
                if roll < 0.5:
                    order.confirm_receipt(at)
                else:
                    order.auto_deliver(at + timedelta(days=4), timedelta(days=3))
        if order.paid_amount > 0 and order.refundable > 0 and rng.random() < 0.25:
            _refund_some(rng, order, at)
    except DomainError:
        pass


def _refund_some(rng: random.Random, order: Order, at: datetime) -> None:
    roll = rng.random()
    if roll < 0.4:
        item = rng.choice(order.items)
        left = int(item["quantity"]) - order.refunded_qty.get(item["orderItemId"], 0)
        if left > 0:
            amount, covered = order.plan_refund(
                None, False, [(item["orderItemId"], rng.randint(1, left), "broken")]
            )
            _refund(order, amount, covered, at)
    elif roll < 0.8:
        _refund(order, (order.refundable * Decimal("0.3")).quantize(Decimal("0.01")), [], at)
    else:
        _refund(order, order.refundable, [], at)


def _refund(order: Order, amount: Decimal, items: list[dict[str, Any]], at: datetime) -> None:
    if amount > 0:
        refund_id = f"rf-{len(order.pending_refunds)}-{order.version}"
        order.request_refund(refund_id, amount, "test", items, at)
        order.complete_refund(refund_id, "MANUAL-1", at)


def _dump(c: Container) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with c.engine.connect() as conn:
        for cls in ANALYTICS:
            for key, table in cls.define_tables(new_metadata()).items():
                rows[f"{cls.name}.{key}"] = sorted(
                    (tuple(r) for r in conn.execute(select(table))), key=repr
                )
    return rows


def test_each_analysis_rebuild_equals_incremental_processing(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Incremental: the projector's way, in small batches (boundaries fall everywhere).
    c = bootstrap(make_settings(database_url, tmp_path, projection_batch_size=3))
    try:
        _history(c, random.Random(20261207))
        c.runner([cls.name for cls in ANALYTICS]).catch_up(timeout=120)
        incremental = _dump(c)
    finally:
        c.close()
    assert all(incremental[f"sales_report.{k}"] for k in ("daily", "customers", "lines"))
    assert all(incremental[f"shipping_perf.{k}"] for k in ("counts", "hours", "shipments"))
    assert incremental["funnel.carts"] and incremental["stock_alerts.alerts"]
    steps = {r[2] for r in incremental["funnel.counts"]}
    assert steps >= {"carts", "checkouts", "paid", "delivered", "expired", "cancelled"}

    for name, value in {
        "SHOPLEDGER_DATABASE_URL": database_url,
        "SHOPLEDGER_VAR_DIR": str(tmp_path),
        "SHOPLEDGER_ENVIRONMENT": "test",
        "SHOPLEDGER_JWT_PRIVATE_KEY_FILE": shared_jwt_key(),
        "SHOPLEDGER_MAIL_URL": f"file://{tmp_path / 'mail'}",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOPLEDGER_REDIS_URL", raising=False)
    for cls in ANALYTICS:
        assert main(["projections", "rebuild", cls.name]) == 0

    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        rebuilt = _dump(c)
    finally:
        c.close()
    for key in incremental:
        assert rebuilt[key] == incremental[key], key
