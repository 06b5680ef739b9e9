"""Reports and analytics over a year of history: analysis catch-up and report latency.

    python -m bench.reports [--orders 200000] [--backends sqlite,mariadb] [--runs 30]
                            [--writers 2] [--url URL] [--skip-catch-up] [--explain]
                            [--projectors 1|2|4] [--alone] [--floor]

Per backend, on a fresh database (or ``--url``: an existing one, kept, seeded only if empty):

1. Seeds reference data through real events: 30 categories (5 roots x 5 leaves), 20 seller
   accounts, 20,000 buyer accounts, 2,000 products (``Product.Listed``), two warehouses and an
   inventory per product (stock received, some own low-stock thresholds, some low), and brings
   the catalog, inventory and accounts projections up to date (names, shops, stock).
2. Writes ``--orders`` orders over 365 Asia/Taipei days (2024-12-16 .. 2025-12-15) as real
   ``Order`` aggregates built with the aggregate's own methods (place, complete_payment,
   request/complete_refund, cancel, expire, process, ship, update_shipment, confirm_receipt,
   auto_deliver, remind_ship), 500 aggregates per ``app.save``, from ``--writers`` processes.
   Event timestamps are the wall clock; every business time (``at``) is the simulated one.
   Steps later than the simulated "now" (the end of the last day) never happen, so the last
   days hold orders still unpaid, unshipped or in transit.
3. Catch-up: the four analysis projections (sales_report, funnel, shipping_perf,
   stock_alerts) from position 0 (their tables dropped and re-created), only they, one batch
   each in turn as the projector does: events/s = events in the store / wall time until all
   four reach the head; the time each one took is shown too.
4. Each report/analytics query of queries/analytics.py, ``--runs`` times warm after two
   untimed calls, for the last 30 and the last 365 days, for the platform and for the seller
   with the most sales: p50 and p95 in ms.

Targets: catch-up >= 5,000 events/s, every report p95 < 50 ms on MariaDB.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import queue
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from aggregates.accounts import Account
from aggregates.catalog import Category, Product
from aggregates.errors import DomainError
from aggregates.inventory import Inventory, Warehouse
from aggregates.money import quantize
from aggregates.orders import Order
from aggregates.taipei import TAIPEI
from bench.common import container_for, database
from commands.application import EventMeta, recording_as
from projections.analytics import ANALYTICS
from projections.analytics import live as analytics_tables
from projections.base import Envelope, Projection, new_metadata
from projections.tracking import set_position
from queries import analytics as q
from queries.common import PageRequest
from shopledger.bootstrap import Container

SEED = 20261207
BATCH = 500  # aggregates per app.save
SELLERS = 20
BUYERS = 20_000
PRODUCTS = 2_000
FIRST_DAY = date(2024, 12, 16)
DAYS = 365
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)  # 2025-12-15
#: The simulated "now": nothing after the end of the last Taipei day happens.
NOW = datetime.combine(LAST_DAY + timedelta(days=1), datetime.min.time(), TAIPEI)
TARGET_EVENTS_PER_S = 5_000
TARGET_P95_MS = 50.0
META = EventMeta("system:bench", "bench")
AUTO_DELIVER_AFTER = timedelta(days=3)  # the settings' defaults
SHIP_REMINDER_AFTER = timedelta(days=7)
ADDRESS = {"name": "王小明", "phone": "0912345678", "city": "台北市", "address": "信義路五段7號"}
ROOTS = {
    "美妝保養": ["化妝水", "乳液", "面膜", "口紅", "洗髮精"],
    "食品飲料": ["茶葉", "咖啡豆", "零食", "水果禮盒", "調味料"],
    "3C家電": ["藍牙耳機", "行動電源", "滑鼠", "電鍋", "吹風機"],
    "服飾鞋包": ["洋裝", "T恤", "慢跑鞋", "後背包", "襪子"],
    "居家生活": ["毛巾", "收納箱", "枕頭", "香氛蠟燭", "保溫瓶"],
}


def rand_uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- reference data -------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    product_id: str
    seller_id: str
    category_id: str
    name: str
    price: Decimal


@dataclass
class World:
    """What the order writers need, as plain data (it is sent to other processes)."""

    items: list[Item]
    sellers: list[str]
    seller_weights: list[float]
    by_seller: dict[str, list[int]]  # seller -> indexes into items, most popular first
    buyers: list[str]


def seed_reference(c: Container, rng: random.Random) -> World:
    at = datetime.combine(FIRST_DAY - timedelta(days=30), datetime.min.time(), TAIPEI)
    with recording_as(META):
        categories: list[Category] = []
        leaves: list[Category] = []
        for root_name, leaf_names in ROOTS.items():
            root = Category.create(rand_uuid(rng), root_name, None)
            categories.append(root)
            for leaf_name in leaf_names:
                leaf = Category.create(rand_uuid(rng), leaf_name, root)
                categories.append(leaf)
                leaves.append(leaf)
        c.app.save(*categories)

        sellers = [
            Account.register(
                rand_uuid(rng),
                email=f"shop{i}@bench.example",
                username=f"shop{i}",
                password_hash="x",
                display_name=f"好物商店{i}號",
                phone=None,
                role="seller",
                email_verified=True,
            )
            for i in range(SELLERS)
        ]
        c.app.save(*sellers)
        seller_ids = [str(s.id) for s in sellers]
        buyer_ids: list[str] = []
        for start in range(0, BUYERS, BATCH):
            buyers = [
                Account.register(
                    rand_uuid(rng),
                    email=f"buyer{i}@bench.example",
                    username=f"buyer{i}",
                    password_hash="x",
                    display_name=f"買家{i}",
                    phone=None,
                    email_verified=True,
                )
                for i in range(start, min(start + BATCH, BUYERS))
            ]
            c.app.save(*buyers)
            buyer_ids.extend(str(b.id) for b in buyers)

        # Some sellers are much bigger than others; each sells in a few categories.
        seller_weights = [1 / (rank + 1) ** 0.8 for rank in range(SELLERS)]
        total_weight = sum(seller_weights)
        items: list[Item] = []
        by_seller: dict[str, list[int]] = {s: [] for s in seller_ids}
        products: list[Product] = []
        for n, seller_id in enumerate(seller_ids):
            count = max(
                20, round(PRODUCTS * seller_weights[n] / total_weight)
            )  # about 2,000 in all
            own = rng.sample(leaves, 3)
            for k in range(count):
                leaf = own[k % 3] if rng.random() < 0.9 else rng.choice(leaves)
                price = Decimal(int(50 * 100 ** rng.random()))  # NT$50 .. 5,000
                if rng.random() < 0.2:
                    price -= Decimal("0.10")
                name = f"{leaf.name} {rng.choice(['經典', '嚴選', '限定', '新款'])} {n}-{k}"
                product = Product.list_new(
                    rand_uuid(rng),
                    seller_id=seller_id,
                    name=name,
                    description=f"{name}，台灣出貨",
                    category_id=str(leaf.id),
                    price=price,
                    images=[],
                    supplier_ids=[],
                    banned=(),
                    at=at,
                )
                products.append(product)
                by_seller[seller_id].append(len(items))
                items.append(Item(str(product.id), seller_id, str(leaf.id), name, price))
        for start in range(0, len(products), BATCH):
            c.app.save(*products[start : start + BATCH])

        houses = [
            Warehouse.create(rand_uuid(rng), "TPE-1", "台北倉", "新北市五股區"),
            Warehouse.create(rand_uuid(rng), "KHH-1", "高雄倉", "高雄市前鎮區"),
        ]
        c.app.save(*houses)
        inventories: list[Inventory] = []
        for n, item in enumerate(items):
            inventory = Inventory(product_id=item.product_id, seller_id=item.seller_id)
            for house in houses[: 1 + (n % 3 == 0)]:
                inventory.receive(f"rc-{n}", str(house.id), rng.randint(1, 400), None, at)
            if rng.random() < 0.1:
                inventory.set_low_stock_threshold(rng.randint(10, 50), at)
            inventory.check_low_stock(5, at)
            inventories.append(inventory)
        for start in range(0, len(inventories), BATCH):
            c.app.save(*inventories[start : start + BATCH])
    return World(items, seller_ids, seller_weights, by_seller, buyer_ids)


# --- orders ---------------------------------------------------------------------------------
def placement_times(orders: int, rng: random.Random) -> list[float]:
    """Sorted POSIX times: more orders later in the year, at weekends, on 11/11 and 12/12,
    and in the evening."""
    weights = []
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        w = (1 + 0.6 * d / DAYS) * (1.3 if day.weekday() >= 5 else 1.0)
        if (day.month, day.day) in ((11, 11), (12, 12), (6, 18)):
            w *= 4
        weights.append(w)
    hours = [1, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 6, 7, 8, 9, 9, 7, 3]
    days = rng.choices(range(DAYS), weights, k=orders)
    hour_of = rng.choices(range(24), hours, k=orders)
    times = []
    for d, h in zip(days, hour_of, strict=True):
        start = datetime.combine(FIRST_DAY + timedelta(days=d), datetime.min.time(), TAIPEI)
        times.append((start + timedelta(hours=h, seconds=rng.randrange(3600))).timestamp())
    times.sort()
    return times


class Simulation:
    """Builds one order's whole life with the aggregate's methods, in business-time order."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.seller_cum = list(_cumulative(world.seller_weights))
        self.buyer_cum = list(_cumulative([1 / (r + 1) ** 0.5 for r in range(len(world.buyers))]))
        self.product_cum = {
            s: list(_cumulative([1 / (r + 1) ** 0.7 for r in range(len(ix))]))
            for s, ix in world.by_seller.items()
        }
        self.refused = 0  # domain refusals (should stay 0: the plan follows the rules)

    def _products(self) -> list[Item]:
        rng, world = self.rng, self.world
        count = rng.choices((1, 2, 3, 4), (15, 30, 35, 20))[0]
        seller = rng.choices(world.sellers, cum_weights=self.seller_cum)[0]
        chosen: dict[str, Item] = {}
        while len(chosen) < count:
            if rng.random() < 0.8:
                s = seller
            else:
                s = rng.choices(world.sellers, cum_weights=self.seller_cum)[0]
            index = rng.choices(world.by_seller[s], cum_weights=self.product_cum[s])[0]
            item = world.items[index]
            chosen[item.product_id] = item
        return list(chosen.values())

    def order(self, placed: datetime) -> Order:
        rng = self.rng
        order_id = rand_uuid(rng)
        items: list[dict[str, Any]] = []
        for n, p in enumerate(self._products(), start=1):
            qty = rng.choices((1, 2, 3), (70, 22, 8))[0]
            items.append(
                {
                    "orderItemId": f"{order_id}-{n}",
                    "productId": p.product_id,
                    "sellerId": p.seller_id,
                    "categoryId": p.category_id,
                    "name": p.name,
                    "quantity": qty,
                    "unitPrice": str(p.price),
                    "subtotal": str(p.price * qty),
                }
            )
        subtotal = sum((Decimal(i["subtotal"]) for i in items), Decimal(0))
        discount = quantize(subtotal * Decimal("0.1")) if rng.random() < 0.1 else Decimal(0)
        tax = quantize((subtotal - discount) * Decimal("0.05"))
        shipping = Decimal(0) if subtotal >= 1000 else Decimal(60)
        method = rng.choices(("CREDIT_CARD", "BANK_TRANSFER", "COD"), (78, 10, 12))[0]
        order = Order.place(
            order_id,
            order_number=f"SL{placed.astimezone(TAIPEI):%Y%m%d}{rng.randrange(10**8):08d}",
            buyer_id=rng.choices(self.world.buyers, cum_weights=self.buyer_cum)[0],
            items=items,
            subtotal=subtotal,
            discount=discount,
            coupon_code="BENCH10" if discount else None,
            tax=tax,
            shipping=shipping,
            shipping_method="STANDARD",
            total=subtotal - discount + tax + shipping,
            shipping_address=ADDRESS,
            billing_address=ADDRESS,
            payment_method=method,
            notes="",
            at=placed,
            expires_at=None if method == "COD" else placed + timedelta(minutes=30),
        )
        self._live(order, placed)
        return order

    def _do(self, step: Callable[[], Any]) -> None:
        try:
            step()
        except DomainError:
            self.refused += 1

    def _live(self, order: Order, placed: datetime) -> None:
        rng = self.rng
        cod = order.payment_method == "COD"
        if not cod:
            r = rng.random()
            if r < 0.07:
                at = placed + timedelta(minutes=30 + rng.randrange(20))
                if at < NOW:
                    order.expire(at)
                return
            if r < 0.10:
                at = placed + timedelta(minutes=1 + rng.randrange(25))
                if at < NOW:
                    self._do(lambda: order.cancel("changed my mind", "buyer", "", at))
                return
            paid = placed + timedelta(seconds=30 + rng.randrange(20 * 60))
            if paid >= NOW:
                return
            self._pay(order, "CREDIT_CARD", paid)
            if rng.random() < 0.02:  # cancelled after payment, refunded in full
                at = paid + timedelta(hours=1 + rng.randrange(40))
                if at < NOW:
                    self._do(lambda: order.cancel("out of stock", "seller", "", at))
                    self._refund(order, order.refundable, [], at)
                return
            start = paid
        else:
            start = placed
        # Fulfilment: every seller processes and ships its own items, in time order.
        plan: list[tuple[datetime, int, Callable[[datetime], Any]]] = []
        slow = False
        for k, seller in enumerate(order.seller_ids):
            hours = rng.choices(
                (rng.uniform(2, 48), rng.uniform(48, 120), rng.uniform(120, 330)), (60, 30, 10)
            )[0]
            shipped = start + timedelta(hours=hours)
            slow = slow or hours > SHIP_REMINDER_AFTER.total_seconds() / 3600
            processed = start + timedelta(hours=hours * rng.uniform(0.2, 0.8))
            plan.append((processed, k, _bind(order.process, [seller], seller, None, None, "")))
            mine = [i for i in order.items if i["sellerId"] == seller]
            parcels: list[list[tuple[str, int]] | None] = [None]
            if len(mine) > 1 and rng.random() < 0.1:  # two parcels
                parcels = [[(mine[0]["orderItemId"], int(mine[0]["quantity"]))], None]
            for p, chosen in enumerate(parcels):
                left = shipped + timedelta(hours=20 * p)
                shipment_id = str(rand_uuid(rng))
                plan.append(
                    (
                        left,
                        k,
                        _bind(
                            order.ship,
                            shipment_id,
                            [seller],
                            "黑貓宅急便",
                            f"TW{rng.randrange(10**10):010d}",
                            None,
                            chosen,
                            seller,
                            None,
                            None,
                            "",
                            None,
                        ),
                    )
                )
                transit = left + timedelta(hours=rng.uniform(3, 12))
                if rng.random() < 0.5:
                    plan.append((transit, k, _bind(self._track, order, shipment_id, "IN_TRANSIT")))
                arrived = transit + timedelta(hours=rng.uniform(10, 100))
                plan.append((arrived, k, _bind(self._track, order, shipment_id, "DELIVERED")))
        if slow and not cod:
            due = start + SHIP_REMINDER_AFTER
            plan.append((due, -1, lambda at: order.remind_ship(at, SHIP_REMINDER_AFTER)))
        plan.sort(key=lambda step: (step[0], step[1]))
        for at, _, step in plan:
            if at >= NOW:
                return
            self._do(_bind0(step, at))
        if order.carrier_delivered_at is None:
            return
        delivered = order.carrier_delivered_at
        if rng.random() < 0.65:
            at = delivered + timedelta(hours=rng.uniform(1, 70))
            if at >= NOW:
                return
            self._do(lambda: order.confirm_receipt(at))
        else:
            at = delivered + AUTO_DELIVER_AFTER + timedelta(minutes=rng.randrange(60))
            if at >= NOW:
                return
            order.auto_deliver(at, AUTO_DELIVER_AFTER)
        # After delivery: some refunds of items, of an amount, or in full.
        r = rng.random()
        later = at + timedelta(days=rng.uniform(0.5, 10))
        if r >= 0.06 or later >= NOW:
            return
        if r < 0.03:
            item = rng.choice(order.items)
            quantity = rng.randint(1, int(item["quantity"]))
            amount, covered = order.plan_refund(
                None, False, [(item["orderItemId"], quantity, "broken")]
            )
            self._refund(order, amount, covered, later)
        elif r < 0.05:
            share = Decimal(rng.choice(("0.1", "0.2", "0.25", "0.5")))
            self._refund(order, quantize(order.refundable * share), [], later)
        else:
            self._refund(order, order.refundable, [], later)

    def _pay(self, order: Order, method: str, at: datetime) -> None:
        order.complete_payment(
            order.next_payment_id(),
            method,
            "SANDBOX" if method != "COD" else "COD",
            order.total,
            f"tx-{self.rng.randrange(10**9)}",
            None,
            order.next_receipt_number(),
            at,
        )

    def _track(self, order: Order, shipment_id: str, status: str, at: datetime) -> None:
        all_delivered = order.update_shipment(shipment_id, status, None, "", None, False, at)
        if all_delivered and order.payment_method == "COD" and order.paid_amount == 0:
            self._pay(order, "COD", at)  # the carrier collected it

    def _refund(
        self, order: Order, amount: Decimal, items: list[dict[str, Any]], at: datetime
    ) -> None:
        if amount <= 0:
            return
        refund_id = f"rf-{self.rng.randrange(10**12)}"
        self._do(lambda: order.request_refund(refund_id, amount, "bench", items, at))
        order.complete_refund(refund_id, f"RF{self.rng.randrange(10**9)}", at)


def _bind(method: Callable[..., Any], *args: Any) -> Callable[[datetime], Any]:
    return lambda at: method(*args, at)


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def write_orders(
    url: str,
    world: World,
    times: list[float],
    chunks: list[int],
    progress: Any,
) -> None:
    """Build and save the given chunks (BATCH orders each) of the order history."""
    c = container_for(url)
    try:
        with recording_as(META):
            for chunk in chunks:
                sim = Simulation(world, random.Random(SEED * 1000 + chunk))
                placed = times[chunk * BATCH : (chunk + 1) * BATCH]
                orders = [sim.order(datetime.fromtimestamp(t, UTC)) for t in placed]
                c.app.save(*orders)
                events = sum(o.version for o in orders)
                progress.put((len(orders), events, sim.refused))
    finally:
        c.close()


def write_history(url: str, world: World, orders: int, writers: int) -> tuple[int, int]:
    times = placement_times(orders, random.Random(SEED + 1))
    chunks = list(range(math.ceil(orders / BATCH)))
    ctx = mp.get_context("spawn")
    progress = ctx.Queue()
    processes = [
        ctx.Process(
            target=write_orders, args=(url, world, times, chunks[w::writers], progress), daemon=True
        )
        for w in range(writers)
    ]
    for p in processes:
        p.start()
    done = events = refused = 0
    started = last = time.monotonic()
    while any(p.is_alive() for p in processes) or not progress.empty():
        try:
            n, e, r = progress.get(timeout=0.5)
        except queue.Empty:
            continue
        done, events, refused = done + n, events + e, refused + r
        if time.monotonic() - last >= 10 or done == orders:
            last = time.monotonic()
            elapsed = last - started
            log(
                f"  orders {done:,}/{orders:,}, {events:,} events,"
                f" {events / elapsed:,.0f} ev/s, {elapsed:.0f} s"
            )
    for p in processes:
        p.join()
        if p.exitcode:
            raise SystemExit(f"an order writer failed (exit code {p.exitcode})")
    if refused:
        log(f"  note: {refused} planned steps were refused by the domain rules")
    return done, events


# --- catch-up -------------------------------------------------------------------------------
def reset_analytics(c: Container) -> None:
    """Drop and re-create the analysis tables (their current definition), positions 0."""
    metadata = new_metadata()
    for cls in ANALYTICS:
        cls.define_tables(metadata)
    metadata.drop_all(c.engine)
    metadata.create_all(c.engine)
    with c.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
        for cls in ANALYTICS:
            set_position(session, cls.name, 0)


def catch_up(
    c: Container, names: list[str], limit: float | None = None, alone: bool = False
) -> tuple[float, dict[str, float], dict[str, int]]:
    """Run the projector's sweeps over ``names`` until all are at the head (or ``limit``
    seconds passed): wall seconds, and per projection the seconds it was stepped alone and
    the positions it moved past. Projections at the same position go together, as in the
    projector (one read and decode, one transaction); ``alone`` steps each by itself."""
    runner = c.runner(names)
    head = c.head_position()
    spent = dict.fromkeys(names, 0.0)
    started = last = time.monotonic()
    busy = True
    while busy:
        if alone:
            busy = False
            for worker in runner.workers:
                t0 = time.monotonic()
                busy = worker.step() > 0 or busy
                spent[worker.name] += time.monotonic() - t0
        else:
            busy = runner.run_once() > 0
        if time.monotonic() - last >= 15:
            last = time.monotonic()
            least = min(w.position for w in runner.workers)
            log(f"  catch-up {least:,}/{head:,} events ({time.monotonic() - started:.0f} s)")
        if limit is not None and time.monotonic() - started > limit:
            break
    return time.monotonic() - started, spent, {w.name: w.position for w in runner.workers}


#: How the four projections are spread over projector processes (by their measured cost).
SPLITS = {
    2: [["sales_report", "funnel"], ["shipping_perf", "stock_alerts"]],
    4: [["sales_report"], ["funnel"], ["shipping_perf"], ["stock_alerts"]],
}


def _catch_up_part(url: str, names: list[str]) -> None:
    c = container_for(url)
    try:
        catch_up(c, names)
    finally:
        c.close()


def catch_up_in_processes(url: str, processes: int) -> float:
    """Wall seconds for the four projections to reach the head from zero, spread over
    ``processes`` projector processes (``shopledger projections run NAME...`` each)."""
    ctx = mp.get_context("spawn")
    parts = [ctx.Process(target=_catch_up_part, args=(url, names)) for names in SPLITS[processes]]
    started = time.monotonic()
    for p in parts:
        p.start()
    for p in parts:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a projector process failed (exit code {p.exitcode})")
    return time.monotonic() - started


def _floor(real: type[Projection]) -> type[Projection]:
    """A projection that wants what ``real`` wants and writes nothing: what reading and
    decoding the events costs the projector, before any folding."""

    class Floor(Projection):
        name = f"floor_{real.name}"

        @classmethod
        def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
            return {}

        def wants(self, topic: str) -> bool:
            return real({}).wants(topic)

        def topics(self) -> tuple[str, ...]:
            return real({}).topics()

        def apply_many(self, session: Session, envelopes: list[Envelope]) -> None:
            for envelope in envelopes:
                envelope.event  # noqa: B018 - decoding the event is part of the cost

    return Floor


FLOORS = [_floor(cls) for cls in ANALYTICS]


def catch_up_reference(c: Container) -> None:
    runner = c.runner(["catalog", "inventory", "accounts"])
    while runner.run_once():
        pass


# --- queries --------------------------------------------------------------------------------
@contextmanager
def statement_log(engine: Engine) -> Iterator[list[tuple[str, float]]]:
    from sqlalchemy import event

    log_: list[tuple[str, float]] = []

    def before(conn: Any, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        log_.append((statement, (time.perf_counter() - conn.info.pop("bench_started")) * 1000))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield log_
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def top_seller(engine: Engine) -> str:
    t = analytics_tables["sales_report.totals"]
    with engine.connect() as conn:
        row = conn.execute(
            select(t.c.scope)
            .where(t.c.scope != "")
            .group_by(t.c.scope)
            .order_by(func.sum(t.c.revenue_minor).desc())
            .limit(1)
        ).first()
    assert row is not None, "no sales: did the analysis catch up?"
    return str(row[0])


def report_calls(engine: Engine, seller: str) -> list[tuple[str, str, str, Callable[[], Any]]]:
    """(query, range, scope, call) for every timed case."""
    page = PageRequest(1, 20)
    cases: list[tuple[str, str, str, Callable[[], Any]]] = []
    for label, days in (("30d", 30), ("365d", 365)):
        start, end = LAST_DAY - timedelta(days=days - 1), LAST_DAY
        for scope_label, scope in (("platform", ""), ("seller", seller)):
            calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
                ("sales_summary", q.sales_summary, ()),
                ("sales_summary details", q.sales_summary, ("DAY", True)),
                ("product_sales", q.product_sales, ()),
                ("sales_analytics", q.sales_analytics, ()),
                ("conversion", q.conversion, ()),
                ("shipping", q.shipping, ()),
            ]
            if not scope:
                calls.append(("shipping bySeller", q.shipping, (True,)))
            for name, query, more in calls:
                call = _bind0(query, engine, scope, start, end, *more)
                cases.append((name, label, scope_label, call))
    for scope_label, scope in (("platform", ""), ("seller", seller)):
        cases.append(
            ("top_customers", "-", scope_label, _bind0(q.top_customers, engine, scope, page))
        )
        health = _bind0(q.inventory_health, engine, scope, LAST_DAY, 5, 30, page)
        cases.append(("inventory_health", "-", scope_label, health))
    return cases


def _bind0(func_: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: func_(*args)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def time_reports(
    c: Container, runs: int, explain: bool
) -> list[tuple[str, str, str, float, float]]:
    seller = top_seller(c.engine)
    results = []
    for name, span, scope, call in report_calls(c.engine, seller):
        call()
        call()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        p50, p95 = statistics.median(times), percentile(times, 0.95)
        results.append((name, span, scope, p50, p95))
        mark = "" if p95 < TARGET_P95_MS else "  <-- over target"
        print(f"  {name:22} {span:5} {scope:8} p50 {p50:8.1f}  p95 {p95:8.1f} ms{mark}", flush=True)
        if explain and p95 >= TARGET_P95_MS / 2:
            with statement_log(c.engine) as statements:
                call()
            for statement, ms in sorted(statements, key=lambda s: -s[1])[:4]:
                print(f"      {ms:7.1f} ms  {' '.join(statement.split())[:150]}")
    return results


def table_sizes(c: Container) -> str:
    with c.engine.connect() as conn:
        return ", ".join(
            f"{t.name}={conn.execute(select(func.count()).select_from(t)).scalar_one():,}"
            for t in analytics_tables.values()
        )


# --- main -----------------------------------------------------------------------------------
def run_backend(backend: str, args: argparse.Namespace) -> None:
    place = nullcontext(args.url) if args.url else database(backend)
    with place as url:
        c = container_for(url, projections=FLOORS)
        try:
            log(f"## {backend}: {url.split('@')[-1]}")
            if c.head_position() == 0:
                started = time.monotonic()
                world = seed_reference(c, random.Random(SEED))
                catch_up_reference(c)
                log(
                    f"{backend}: reference data ({len(world.items):,} products, {SELLERS} sellers,"
                    f" {BUYERS:,} buyers) seeded and projected in {time.monotonic() - started:.1f} s"
                )
                started = time.monotonic()
                orders, events = write_history(url, world, args.orders, args.writers)
                took = time.monotonic() - started
                log(
                    f"{backend}: wrote {orders:,} orders, {events:,} events in {took:.1f} s"
                    f" ({events / took:,.0f} ev/s, {args.writers} writer processes)"
                )
            else:
                log(f"{backend}: reusing the {c.head_position():,} events already stored")
            head = c.head_position()
            if args.floor:
                with c.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                    for floor in FLOORS:
                        set_position(session, floor.name, 0)
                wall, _, _ = catch_up(c, [f.name for f in FLOORS])
                log(
                    f"{backend}: reading and decoding only (projections that write nothing):"
                    f" {head:,} events in {wall:.1f} s = {head / wall:,.0f} ev/s"
                )
            if not args.skip_catch_up:
                names = [cls.name for cls in ANALYTICS]
                if args.alone:
                    reset_analytics(c)
                    wall, spent, reached = catch_up(c, names, args.catch_up_limit, alone=True)
                    log(
                        f"{backend}: each stepped alone: {sum(spent.values()):.1f} s;"
                        + ",".join(
                            f" {n} {spent[n]:.1f} s ({reached[n] / spent[n]:,.0f} ev/s)"
                            for n in names
                        )
                    )
                if args.projectors > 1:
                    reset_analytics(c)
                    wall = catch_up_in_processes(url, args.projectors)
                    log(
                        f"{backend}: analysis catch-up in {args.projectors} projector processes"
                        f" ({' | '.join(' '.join(p) for p in SPLITS[args.projectors])}):"
                        f" {head:,} events in {wall:.1f} s = {head / wall:,.0f} ev/s"
                        f" (target {TARGET_EVENTS_PER_S:,})"
                    )
                reset_analytics(c)
                wall, _, reached = catch_up(c, names, args.catch_up_limit)
                done = min(reached.values())
                log(
                    f"{backend}: analysis catch-up of {done:,} of {head:,} events in {wall:.1f} s"
                    f" = {done / wall:,.0f} ev/s (target {TARGET_EVENTS_PER_S:,}), the four"
                    " projections stepped together in one projector"
                )
                if done < head:
                    log(f"{backend}: stopped after {args.catch_up_limit:.0f} s: reports not timed")
                    return
            log(f"{backend}: {table_sizes(c)}")
            log(f"{backend}: report latency, {args.runs} warm runs each")
            results = time_reports(c, args.runs, args.explain)
            worst = max(results, key=lambda r: r[4])
            over = [r for r in results if r[4] >= TARGET_P95_MS]
            log(
                f"{backend}: worst p95 {worst[4]:.1f} ms ({worst[0]} {worst[1]} {worst[2]});"
                f" {len(over)} of {len(results)} over {TARGET_P95_MS:.0f} ms"
            )
        finally:
            c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per report")
    parser.add_argument("--writers", type=int, default=2, help="order writer processes")
    parser.add_argument("--url", help="use (and keep) this database; seeded only if empty")
    parser.add_argument("--skip-catch-up", action="store_true", help="time the reports only")
    parser.add_argument(
        "--catch-up-limit", type=float, help="stop the catch-up after this many seconds"
    )
    parser.add_argument(
        "--projectors",
        type=int,
        choices=[1, *SPLITS],
        default=1,
        help="also time the catch-up spread over this many projector processes",
    )
    parser.add_argument(
        "--alone", action="store_true", help="also time each projection stepped by itself"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also time reading and decoding alone (no folds)"
    )
    parser.add_argument("--explain", action="store_true", help="slowest statements of slow reports")
    args = parser.parse_args()
    backends = ["given"] if args.url else args.backends.split(",")
    for backend in backends:
        run_backend(backend, args)


if __name__ == "__main__":
    main()
