"""Sales analysis read models (seeds/003 reports, seeds/001 derived data): what the event history
says a shop sold, to whom, how fast it shipped, and where buyers dropped out.

Rules, the same in every table (docs/API.md "Reports and analytics"):

- A sale counts when the order is paid, on that Asia/Taipei calendar day. Orders cancelled or
  expired before payment never count; money that arrives for a cancelled order is refunded,
  not sold.
- Revenue is the goods value of what was sold: unit price x quantity, before the coupon
  discount, tax and shipping (so a product's, a seller's and the platform's figures add up).
- Refunds take revenue off in the period of the refund. A refund of items takes those units
  off the day they were sold (so no day ever shows negative units) and their goods value off
  the refund's day; a refund by amount spreads over the order's remaining lines in proportion
  to their remaining value, never below zero; a full refund (or a paid order cancelled) takes
  everything that remains off, and the order off the order count of its paid day.
- Each figure is kept for the platform (scope ``""``) and for the seller of the items (scope
  = the seller's account id), so a seller's report reads only its own rows.

Money is stored in minor units (cents) as integers: sums are exact.

Each projection folds a whole batch of events at once (bench/README.md "Reports and
analytics"): the state rows the batch needs (lines, orders, parts, shipments, carts) are read
with one ``SELECT ... IN`` per table, every event's rule is applied in order to that state in
memory, the figures it adds are summed per key, and the batch ends with one ``executemany`` per
table. That gives exactly the rows one statement per event would (a figure row is created by
its first addition even when the batch's sum for it is zero), whatever the batch boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from eventsourcing.utils import get_topic
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from aggregates.cart import Cart
from aggregates.catalog import Product
from aggregates.inventory import Inventory
from aggregates.money import to_minor
from aggregates.orders import UNOWED_REFUNDS, Order
from aggregates.taipei import local_date
from projections.base import (
    Envelope,
    Projection,
    Timestamp,
    naive_utc,
    new_metadata,
)
from projections.bulk import add_to, execute_many, insert_many, load, put

PLATFORM = ""
#: Duration histograms keep whole hours up to this many (longer ones land in the last bucket).
MAX_HOURS = 24 * 60
#: Figure tables are read by primary-key ranges: on SQLite keep their rows in primary-key
#: order (one b-tree, no rowid lookups), as InnoDB does anyway.
FIGURES: dict[str, Any] = {"sqlite_with_rowid": False}


def ascii_key(length: int) -> Any:
    """A string key of a figure table (ids, which are UUIDs, scopes, days, months, metric
    names: ASCII only). On MySQL it is stored as ASCII (case-insensitive, as before): grouping
    and comparing such keys is several times cheaper than in utf8mb4 (bench/README.md)."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="ascii", collation="ascii_general_ci"), "mysql", "mariadb"
    )


def _day(at: datetime) -> str:
    return local_date(at).isoformat()


def _scopes(seller_id: str) -> tuple[str, str]:
    return (PLATFORM, seller_id)


class Sums:
    """Additions to figure rows, summed per primary key in the order they were made. A key's
    first addition also fixes its other columns (what an INSERT would have written)."""

    def __init__(self, keys: tuple[str, ...], sums: tuple[str, ...]) -> None:
        self.keys, self.sums = keys, sums
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(self, key: tuple[Any, ...], values: Mapping[str, int], **fixed: Any) -> None:
        row = self.rows.get(key)
        if row is None:
            row = {**dict(zip(self.keys, key, strict=True)), **fixed}
            row.update(dict.fromkeys(self.sums, 0))
            self.rows[key] = row
        for column, value in values.items():
            row[column] += value

    def write(self, session: Session, table: Table) -> None:
        add_to(session, table, self.rows.values(), list(self.sums))


_S = TypeVar("_S", bound=Callable[..., None])


def step(*event_classes: type) -> Callable[[_S], _S]:
    """Mark a method of a :class:`Fold` as the rule for the given event classes."""

    def mark(func_: _S) -> _S:
        func_.__folds__ = tuple(get_topic(c) for c in event_classes)  # type: ignore[attr-defined]
        return func_

    return mark


class Fold:
    """One batch of a folding projection: ``prepare`` reads the state rows the batch needs,
    the ``step`` methods apply each event's rule in order, ``flush`` writes everything."""

    steps: ClassVar[dict[str, Callable[[Any, Envelope], None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Callable[[Any, Envelope], None]] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for topic in getattr(attr, "__folds__", ()):
                    found[topic] = attr
        cls.steps = found

    def __init__(self, tables: Mapping[str, Table], session: Session) -> None:
        self.tables = tables
        self.session = session

    def prepare(self, envelopes: list[Envelope]) -> None:
        """Read the state rows the batch needs."""

    def flush(self) -> None:
        """Write the batch's state changes and figures."""


class FoldingProjection(Projection):
    """A projection whose handlers are the ``step`` methods of its :class:`Fold`."""

    fold: ClassVar[type[Fold]]

    def wants(self, topic: str) -> bool:
        return topic in self.fold.steps

    def topics(self) -> tuple[str, ...]:
        return tuple(self.fold.steps)

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: list[Envelope]) -> None:
        batch = [e for e in envelopes if e.topic in self.fold.steps]
        if not batch:
            return
        fold = self.fold(self.tables, session)
        fold.prepare(batch)
        steps = fold.steps
        for envelope in batch:
            steps[envelope.topic](fold, envelope)
        fold.flush()


def _order_ids(envelopes: list[Envelope], placed: str) -> set[str]:
    """The orders a batch's events refer to, less those placed in the batch itself."""
    ids = {str(e.originator_id) for e in envelopes if e.topic != placed}
    return ids - {str(e.originator_id) for e in envelopes if e.topic == placed}


PLACED = get_topic(Order.Placed)


# --- sales, products and customers ---------------------------------------------------------
class _SalesFold(Fold):
    def __init__(self, tables: Mapping[str, Table], session: Session) -> None:
        super().__init__(tables, session)
        self.orders: dict[str, dict[str, Any]] = {}
        self.lines: dict[str, list[dict[str, Any]]] = {}  # by order, by order_item_id
        self.new_orders: list[str] = []
        self.changed_orders: set[str] = set()
        self.changed_lines: dict[str, dict[str, Any]] = {}
        self.daily = Sums(("day", "product_id"), ("units", "revenue_minor"))
        self.monthly = Sums(("month", "product_id"), ("units", "revenue_minor"))
        self.totals = Sums(("scope", "day"), ("orders", "units", "revenue_minor"))
        # (scope, buyer) -> [orders, revenue, first paid_at, last paid_at], see _customer
        self.customers: dict[tuple[str, str], list[Any]] = {}
        self.last_sold: dict[str, str] = {}

    def prepare(self, envelopes: list[Envelope]) -> None:
        ids = _order_ids(envelopes, PLACED)
        if not ids:
            return
        for row in load(self.session, self.tables["orders"], "order_id", ids):
            self.orders[row["order_id"]] = row
        for line in load(self.session, self.tables["lines"], "order_id", ids):
            self.lines.setdefault(line["order_id"], []).append(line)
        for lines in self.lines.values():
            lines.sort(key=lambda ln: ln["order_item_id"])

    # -- figures --
    def _figures(self, line: Mapping[str, Any], day: str, units: int, revenue: int) -> None:
        """Add units and revenue of one line on one day (negative: take back)."""
        if not units and not revenue:
            return
        figure = {"units": units, "revenue_minor": revenue}
        fixed = {"seller_id": line["seller_id"], "category_id": line["category_id"]}
        self.daily.add((day, line["product_id"]), figure, **fixed)
        self.monthly.add((day[:7], line["product_id"]), figure, **fixed)
        for scope in _scopes(line["seller_id"]):
            self.totals.add((scope, day), figure)

    def _order_count(self, day: str, sellers: Iterable[str], change: int) -> None:
        for scope in {PLATFORM, *sellers}:
            self.totals.add((scope, day), {"orders": change})

    def _customer(
        self,
        buyer_id: str,
        revenue_by_scope: Mapping[str, int],
        orders: int,
        paid_at: datetime | None,
    ) -> None:
        """Orders and revenue add up; a new row's first and last paid_at are those of its
        first change, a payment moves last_paid_at (see _write_customers)."""
        for scope, revenue in revenue_by_scope.items():
            found = self.customers.get((scope, buyer_id))
            if found is None:
                self.customers[(scope, buyer_id)] = [orders, revenue, paid_at, paid_at]
                continue
            found[0] += orders
            found[1] += revenue
            if paid_at is not None:
                found[3] = paid_at

    def _set_line(self, line: dict[str, Any]) -> None:
        if not line.get("_new"):
            self.changed_lines[line["order_item_id"]] = line

    def _set_order(self, order: dict[str, Any], **values: Any) -> None:
        order.update(values)
        if not order.get("_new"):
            self.changed_orders.add(order["order_id"])

    # -- events --
    @step(Order.Placed)
    def _placed(self, env: Envelope) -> None:
        e = env.event
        order_id = str(env.originator_id)
        self.orders[order_id] = {
            "order_id": order_id,
            "buyer_id": e.buyer_id,
            "paid_day": None,
            "paid_at": None,
            "open": False,
            "_new": True,
        }
        self.new_orders.append(order_id)
        lines = []
        for i in e.items:
            unit = to_minor(Decimal(str(i["unitPrice"])))
            lines.append(
                {
                    "order_item_id": i["orderItemId"],
                    "order_id": order_id,
                    "product_id": i["productId"],
                    "seller_id": i["sellerId"],
                    "category_id": i.get("categoryId") or "",
                    "unit_minor": unit,
                    "units": int(i["quantity"]),
                    "revenue_minor": unit * int(i["quantity"]),
                    "_new": True,
                }
            )
        self.lines[order_id] = sorted(lines, key=lambda ln: ln["order_item_id"])

    def _paid(self, env: Envelope) -> None:
        order_id = str(env.originator_id)
        order = self.orders.get(order_id)
        if order is None or order["paid_day"] is not None:
            return  # counted at the first payment
        at = env.event.at
        day = _day(at)
        lines = self.lines.get(order_id, [])
        self._set_order(order, paid_day=day, paid_at=naive_utc(at), open=True)
        by_scope: dict[str, int] = {PLATFORM: 0}
        for line in lines:
            self._figures(line, day, line["units"], line["revenue_minor"])
            by_scope[PLATFORM] += line["revenue_minor"]
            by_scope[line["seller_id"]] = by_scope.get(line["seller_id"], 0) + line["revenue_minor"]
        self._order_count(day, {ln["seller_id"] for ln in lines}, 1)
        self._customer(order["buyer_id"], by_scope, 1, naive_utc(at))
        for line in lines:
            self.last_sold[line["product_id"]] = day

    @step(Order.StatusChanged)
    def _status(self, env: Envelope) -> None:
        if env.event.status == "PAID":  # orders recorded before payments were events
            self._paid(env)

    @step(Order.PaymentCompleted)
    def _payment(self, env: Envelope) -> None:
        if env.event.status != "CANCELLED":  # money for a cancelled order is refunded
            self._paid(env)

    def _take_back(
        self,
        order: Mapping[str, Any],
        lines: list[dict[str, Any]],
        taken: Mapping[str, tuple[int, int]],
        on_day: str,
    ) -> dict[str, int]:
        """Take (units, revenue) per line off: units from the paid day, revenue from
        ``on_day``. Returns the revenue taken per scope."""
        by_scope: dict[str, int] = {PLATFORM: 0}
        for line in lines:
            units, revenue = taken.get(line["order_item_id"], (0, 0))
            if not units and not revenue:
                continue
            self._figures(line, order["paid_day"], -units, 0)
            self._figures(line, on_day, 0, -revenue)
            line["units"] -= units
            line["revenue_minor"] -= revenue
            self._set_line(line)
            by_scope[PLATFORM] += revenue
            by_scope[line["seller_id"]] = by_scope.get(line["seller_id"], 0) + revenue
        return by_scope

    def _reverse_in_full(self, env: Envelope, on_day: str) -> None:
        order_id = str(env.originator_id)
        order = self.orders.get(order_id)
        if order is None or not order["open"]:
            return
        lines = self.lines.get(order_id, [])
        taken = {ln["order_item_id"]: (ln["units"], ln["revenue_minor"]) for ln in lines}
        by_scope = self._take_back(order, lines, taken, on_day)
        self._order_count(order["paid_day"], {ln["seller_id"] for ln in lines}, -1)
        self._customer(order["buyer_id"], {k: -v for k, v in by_scope.items()}, -1, None)
        self._set_order(order, open=False)

    @step(Order.Refunded)
    def _refunded(self, env: Envelope) -> None:
        e = env.event
        if e.reason in UNOWED_REFUNDS and not e.items:
            return  # money that was never a sale (a second payment, more than was due)
        day = _day(e.at)
        if e.payment_status == "REFUNDED":
            self._reverse_in_full(env, day)
            return
        order_id = str(env.originator_id)
        order = self.orders.get(order_id)
        if order is None or not order["open"]:
            return
        lines = self.lines.get(order_id, [])
        taken: dict[str, tuple[int, int]] = {}
        if e.items:
            by_item = {ln["order_item_id"]: ln for ln in lines}
            for item in e.items:
                line = by_item.get(item["orderItemId"])
                if line is None:
                    continue
                units = min(int(item["quantity"]), line["units"])
                revenue = min(units * line["unit_minor"], line["revenue_minor"])
                taken[line["order_item_id"]] = (units, revenue)
        else:
            taken = _pro_rata(lines, to_minor(Decimal(str(e.amount))))
        by_scope = self._take_back(order, lines, taken, day)
        self._customer(order["buyer_id"], {k: -v for k, v in by_scope.items()}, 0, None)

    @step(Order.UnitsCancelled)
    def _units_cancelled(self, env: Envelope) -> None:
        """Units cancelled before payment are never sold: the lines lose them, so the payment
        counts only what is left. (After payment, their refund takes them back.)"""
        order = self.orders.get(str(env.originator_id))
        if order is None or order["paid_day"] is not None:
            return
        by_item = {ln["order_item_id"]: ln for ln in self.lines.get(order["order_id"], [])}
        for item in env.event.items:
            line = by_item.get(item["orderItemId"])
            if line is None:
                continue
            units = min(int(item["quantity"]), line["units"])
            line["units"] -= units
            line["revenue_minor"] = max(0, line["revenue_minor"] - units * line["unit_minor"])
            self._set_line(line)

    @step(Order.Cancelled)
    def _cancelled(self, env: Envelope) -> None:
        self._reverse_in_full(env, _day(env.event.at))

    # -- writing --
    def flush(self) -> None:
        t, session = self.tables, self.session
        orders = ("order_id", "buyer_id", "paid_day", "paid_at", "open")
        if self.new_orders:
            insert_many(
                session,
                t["orders"],
                [{k: self.orders[o][k] for k in orders} for o in self.new_orders],
            )
            new_lines = [
                {k: v for k, v in ln.items() if k != "_new"}
                for o in self.new_orders
                for ln in self.lines[o]
            ]
            insert_many(session, t["lines"], new_lines)
        put(
            session,
            t["orders"],
            [{k: self.orders[o][k] for k in orders} for o in sorted(self.changed_orders)],
        )
        put(session, t["lines"], [self.changed_lines[k] for k in sorted(self.changed_lines)])
        self.daily.write(session, t["daily"])
        self.monthly.write(session, t["monthly"])
        self.totals.write(session, t["totals"])
        self._write_customers()
        put(
            session,
            t["products"],
            [{"product_id": p, "last_sold_day": d} for p, d in sorted(self.last_sold.items())],
        )

    def _write_customers(self) -> None:
        """Add orders and revenue; a missing row is inserted with the first change's paid_at
        as first and last; an existing row's last_paid_at becomes the batch's last payment's
        (when there was one)."""
        if not self.customers:
            return
        t = self.tables["customers"]
        rows = [
            {
                "scope": scope,
                "buyer_id": buyer,
                "orders": orders,
                "revenue_minor": revenue,
                "first_paid_at": first,
                "last_paid_at": last,
            }
            for (scope, buyer), (orders, revenue, first, last) in sorted(self.customers.items())
        ]

        def build(dialect: str) -> Any:
            stmt: Any = sqlite.insert(t) if dialect == "sqlite" else mysql.insert(t)
            new = stmt.excluded if dialect == "sqlite" else stmt.inserted
            sums = {
                "orders": t.c.orders + new.orders,
                "revenue_minor": t.c.revenue_minor + new.revenue_minor,
                "last_paid_at": func.coalesce(new.last_paid_at, t.c.last_paid_at),
            }
            if dialect == "sqlite":
                return stmt.on_conflict_do_update(index_elements=["scope", "buyer_id"], set_=sums)
            return stmt.on_duplicate_key_update(sums)

        execute_many(self.session, t, "customers", build, rows)


class SalesReport(FoldingProjection):
    """Units, revenue and orders per day, product and seller; per-buyer totals; last sale."""

    name = "sales_report"
    fold = _SalesFold

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        lines = Table(
            f"rm_rep_lines{suffix}",
            metadata,
            Column("order_item_id", String(80), primary_key=True),
            Column("order_id", String(36), nullable=False, index=True),
            Column("product_id", String(36), nullable=False),
            Column("seller_id", String(36), nullable=False),
            Column("category_id", String(36), nullable=False),
            Column("unit_minor", BigInteger, nullable=False),
            Column("units", Integer, nullable=False),  # still counted (paid, not refunded)
            Column("revenue_minor", BigInteger, nullable=False),  # still counted
        )
        orders = Table(
            f"rm_rep_orders{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("buyer_id", String(36), nullable=False),
            Column("paid_day", String(10)),  # None: not (yet) a sale
            Column("paid_at", Timestamp),
            Column("open", Boolean, nullable=False),  # counted and not reversed in full
        )
        daily = Table(
            f"rm_rep_daily{suffix}",
            metadata,
            Column("day", ascii_key(10), primary_key=True),
            Column("product_id", ascii_key(36), primary_key=True),
            Column("seller_id", ascii_key(36), nullable=False),
            Column("category_id", ascii_key(36), nullable=False),
            Column("units", BigInteger, nullable=False),
            Column("revenue_minor", BigInteger, nullable=False),
            **FIGURES,
        )
        Index(None, daily.c.seller_id, daily.c.day)
        monthly = Table(
            f"rm_rep_monthly{suffix}",
            metadata,
            Column("month", ascii_key(7), primary_key=True),
            Column("product_id", ascii_key(36), primary_key=True),
            Column("seller_id", ascii_key(36), nullable=False),
            Column("category_id", ascii_key(36), nullable=False),
            Column("units", BigInteger, nullable=False),
            Column("revenue_minor", BigInteger, nullable=False),
            **FIGURES,
        )
        Index(None, monthly.c.seller_id, monthly.c.month)
        totals = Table(
            f"rm_rep_totals{suffix}",
            metadata,
            Column("scope", ascii_key(36), primary_key=True),
            Column("day", ascii_key(10), primary_key=True),
            Column("orders", BigInteger, nullable=False),
            Column("units", BigInteger, nullable=False),
            Column("revenue_minor", BigInteger, nullable=False),
            **FIGURES,
        )
        customers = Table(
            f"rm_rep_customers{suffix}",
            metadata,
            Column("scope", String(36), primary_key=True),
            Column("buyer_id", String(36), primary_key=True),
            Column("orders", BigInteger, nullable=False),
            Column("revenue_minor", BigInteger, nullable=False),
            Column("first_paid_at", Timestamp),
            Column("last_paid_at", Timestamp),
            **FIGURES,
        )
        # In the order of the top-customers page (revenue down, then buyer): a page is the
        # index's first rows, not a sort of every buyer of the scope.
        Index(
            f"ix_rm_rep_customers{suffix}_rank",
            customers.c.scope,
            customers.c.revenue_minor.desc(),
            customers.c.buyer_id,
        )
        products = Table(
            f"rm_rep_products{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("last_sold_day", String(10), nullable=False),
        )
        return {
            "lines": lines,
            "orders": orders,
            "daily": daily,
            "monthly": monthly,
            "totals": totals,
            "customers": customers,
            "products": products,
        }


def _pro_rata(lines: list[dict[str, Any]], amount: int) -> dict[str, tuple[int, int]]:
    """Spread ``amount`` over the lines by their remaining revenue (largest remainder, so the
    parts add up exactly), never taking more than a line has."""
    base = sum(ln["revenue_minor"] for ln in lines)
    if base <= 0 or amount <= 0:
        return {}
    amount = min(amount, base)
    shares = [(ln, amount * ln["revenue_minor"] // base) for ln in lines]
    left = amount - sum(s for _, s in shares)
    order = sorted(
        range(len(lines)),
        key=lambda n: (-(amount * lines[n]["revenue_minor"] % base), lines[n]["order_item_id"]),
    )
    extra = dict.fromkeys(range(len(lines)), 0)
    for n in order:
        if left <= 0:
            break
        if shares[n][1] + extra[n] < lines[n]["revenue_minor"]:
            extra[n] += 1
            left -= 1
    return {
        ln["order_item_id"]: (0, share + extra[n])
        for n, (ln, share) in enumerate(shares)
        if share + extra[n]
    }


# --- the conversion funnel -----------------------------------------------------------------
FUNNEL_STEPS = ("carts", "checkouts", "paid", "delivered", "expired", "cancelled")
ENDED = {"Delivered": "delivered", "Expired": "expired", "Cancelled": "cancelled"}


class _FunnelFold(Fold):
    def __init__(self, tables: Mapping[str, Table], session: Session) -> None:
        super().__init__(tables, session)
        self.counts = Sums(("scope", "day", "step"), ("n",))
        self.sellers: dict[str, str | None] = {}  # product -> seller (None: not listed)
        self.new_products: list[str] = []
        self.carts: dict[str, tuple[int, list[str]]] = {}
        self.changed_carts: set[str] = set()
        self.orders: dict[str, dict[str, Any]] = {}  # sellers: the stored JSON text
        self.new_orders: list[str] = []
        self.changed_orders: set[str] = set()

    def prepare(self, envelopes: list[Envelope]) -> None:
        t, session = self.tables, self.session
        ids = _order_ids(envelopes, PLACED)
        for row in load(session, t["orders"], "order_id", ids):
            self.orders[row["order_id"]] = row
        item_set = get_topic(Cart.ItemSet)
        carts = {str(e.originator_id) for e in envelopes if e.topic in CART_TOPICS}
        for row in load(session, t["carts"], "cart_id", carts):
            self.carts[row["cart_id"]] = (row["lines"], json.loads(row["sellers"]))
        products = {e.event.product_id for e in envelopes if e.topic == item_set}
        for row in load(session, t["products"], "product_id", products):
            self.sellers[row["product_id"]] = row["seller_id"]

    def _count(self, at: datetime, step_: str, sellers: Iterable[str]) -> None:
        day = _day(at)
        for scope in {PLATFORM, *sellers}:
            self.counts.add((scope, day, step_), {"n": 1})

    @step(Product.Listed)
    def _listed(self, env: Envelope) -> None:
        product_id = str(env.originator_id)
        self.sellers[product_id] = env.event.seller_id
        self.new_products.append(product_id)

    def _save_cart(self, cart_id: str, lines: int, sellers: list[str]) -> None:
        self.carts[cart_id] = (lines, sellers)
        self.changed_carts.add(cart_id)

    @step(Cart.ItemSet)
    def _item_set(self, env: Envelope) -> None:
        cart_id = str(env.originator_id)
        lines, sellers = self.carts.get(cart_id) or (0, [])
        sellers = list(sellers)
        seller = self.sellers.get(env.event.product_id)
        if lines == 0:
            self._count(env.event.timestamp, "carts", [])
            sellers = []
        if seller is not None and seller not in sellers:
            sellers.append(seller)
            self.counts.add((seller, _day(env.event.timestamp), "carts"), {"n": 1})
        self._save_cart(cart_id, lines + 1, sellers)

    @step(Cart.ItemRemoved)
    def _item_removed(self, env: Envelope) -> None:
        cart_id = str(env.originator_id)
        lines, sellers = self.carts.get(cart_id) or (1, [])
        self._save_cart(cart_id, max(0, lines - 1), list(sellers))

    @step(Cart.CheckedOut)
    def _checked_out(self, env: Envelope) -> None:
        self._save_cart(str(env.originator_id), 0, [])

    def _order_sellers(self, order_id: str) -> tuple[list[str], bool]:
        row = self.orders.get(order_id)
        return ([], True) if row is None else (json.loads(row["sellers"]), bool(row["paid"]))

    @step(Order.Placed)
    def _placed(self, env: Envelope) -> None:
        sellers = sorted({i["sellerId"] for i in env.event.items})
        order_id = str(env.originator_id)
        self.orders[order_id] = {
            "order_id": order_id,
            "sellers": json.dumps(sellers),
            "paid": False,
        }
        self.new_orders.append(order_id)
        self._count(env.event.at, "checkouts", sellers)

    def _paid(self, env: Envelope) -> None:
        order_id = str(env.originator_id)
        sellers, paid = self._order_sellers(order_id)
        if paid:
            return
        self.orders[order_id]["paid"] = True
        self.changed_orders.add(order_id)
        self._count(env.event.at, "paid", sellers)

    @step(Order.StatusChanged)
    def _status(self, env: Envelope) -> None:
        if env.event.status == "PAID":
            self._paid(env)

    @step(Order.PaymentCompleted)
    def _payment(self, env: Envelope) -> None:
        if env.event.status != "CANCELLED":
            self._paid(env)

    @step(Order.Delivered, Order.Expired, Order.Cancelled)
    def _ended(self, env: Envelope) -> None:
        sellers, _ = self._order_sellers(str(env.originator_id))
        self._count(env.event.at, ENDED[type(env.event).__name__], sellers)

    def flush(self) -> None:
        t, session = self.tables, self.session
        insert_many(
            session,
            t["products"],
            [{"product_id": p, "seller_id": self.sellers[p]} for p in self.new_products],
        )
        new = set(self.new_orders)
        insert_many(session, t["orders"], [self.orders[o] for o in self.new_orders])
        put(session, t["orders"], [self.orders[o] for o in sorted(self.changed_orders - new)])
        put(
            session,
            t["carts"],
            [
                {"cart_id": c, "lines": self.carts[c][0], "sellers": json.dumps(self.carts[c][1])}
                for c in sorted(self.changed_carts)
            ],
        )
        self.counts.write(session, t["counts"])


CART_TOPICS = frozenset(get_topic(c) for c in (Cart.ItemSet, Cart.ItemRemoved, Cart.CheckedOut))


class Funnel(FoldingProjection):
    """Per day and scope: carts started, checkouts, orders paid, delivered, expired, cancelled.
    A cart counts once per filling (from empty to its first item, again after each checkout),
    for the platform and for each seller whose product went into it."""

    name = "funnel"
    fold = _FunnelFold

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        counts = Table(
            f"rm_funnel{suffix}",
            metadata,
            Column("scope", ascii_key(36), primary_key=True),
            Column("day", ascii_key(10), primary_key=True),
            Column("step", ascii_key(12), primary_key=True),
            Column("n", BigInteger, nullable=False),
            **FIGURES,
        )
        carts = Table(
            f"rm_funnel_carts{suffix}",
            metadata,
            Column("cart_id", String(36), primary_key=True),
            Column("lines", Integer, nullable=False),
            Column("sellers", Text, nullable=False),  # sellers counted in this filling
        )
        orders = Table(
            f"rm_funnel_orders{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("sellers", Text, nullable=False),
            Column("paid", Boolean, nullable=False),
        )
        sellers = Table(
            f"rm_funnel_products{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("seller_id", String(36), nullable=False),
        )
        return {"counts": counts, "carts": carts, "orders": orders, "products": sellers}


# --- shipping performance ------------------------------------------------------------------
SHIPPING_COUNTS = (
    "paid",
    "shipped",
    "shipped_7d",
    "parcels",
    "parcels_delivered",
    "delivered",
    "auto_delivered",
    "reminded",
)


class _ShippingFold(Fold):
    def __init__(self, tables: Mapping[str, Table], session: Session) -> None:
        super().__init__(tables, session)
        self.counts = Sums(("scope", "day", "metric"), ("n",))
        self.hours = Sums(("scope", "day", "metric", "hours"), ("n",))
        self.counts_monthly = Sums(("scope", "month", "metric"), ("n",))
        self.hours_monthly = Sums(("scope", "month", "metric", "hours"), ("n",))
        self.parts: dict[str, list[dict[str, Any]]] = {}  # by order, by seller_id
        self.items: dict[str, str] = {}  # order item -> seller
        self.new_items: list[dict[str, Any]] = []
        self.new_orders: list[str] = []
        self.placed: set[str] = set()
        self.changed_parts: dict[tuple[str, str], dict[str, Any]] = {}
        self.shipments: dict[str, dict[str, Any]] = {}
        self.new_shipments: list[str] = []
        self.changed_shipments: set[str] = set()

    def prepare(self, envelopes: list[Envelope]) -> None:
        t, session = self.tables, self.session
        ids = _order_ids(envelopes, PLACED)
        for part in load(session, t["parts"], "order_id", ids):
            self.parts.setdefault(part["order_id"], []).append(part)
        for parts in self.parts.values():
            parts.sort(key=lambda p: p["seller_id"])
        placed_items = {
            i["orderItemId"] for e in envelopes if e.topic == PLACED for i in e.event.items
        }
        shipped = get_topic(Order.ShipmentCreated)
        item_ids = {
            i["orderItemId"] for e in envelopes if e.topic == shipped for i in e.event.items
        }
        for row in load(session, t["items"], "order_item_id", item_ids - placed_items):
            self.items[row["order_item_id"]] = row["seller_id"]
        status = get_topic(Order.ShipmentStatusChanged)
        created = {e.event.shipment_id for e in envelopes if e.topic == shipped}
        wanted = {
            e.event.shipment_id
            for e in envelopes
            if e.topic == status and e.event.status == "DELIVERED"
        }
        for row in load(session, t["shipments"], "shipment_id", wanted - created):
            self.shipments[row["shipment_id"]] = row

    def _counted(self, seller: str, day: str, metric: str) -> None:
        for scope in _scopes(seller):
            self.counts.add((scope, day, metric), {"n": 1})
            self.counts_monthly.add((scope, day[:7], metric), {"n": 1})

    def _hours(self, seller: str, day: str, metric: str, start: Any, end: datetime) -> None:
        span = naive_utc(end) - start
        hours = max(0, min(MAX_HOURS, int(span.total_seconds() // 3600)))
        for scope in _scopes(seller):
            self.hours.add((scope, day, metric, hours), {"n": 1})
            self.hours_monthly.add((scope, day[:7], metric, hours), {"n": 1})

    def _set_part(self, part: dict[str, Any], **values: Any) -> None:
        part.update(values)
        if part["order_id"] not in self.placed:
            self.changed_parts[(part["order_id"], part["seller_id"])] = part

    @step(Order.Placed)
    def _placed(self, env: Envelope) -> None:
        order_id = str(env.originator_id)
        items = env.event.items
        for i in items:
            self.items[i["orderItemId"]] = i["sellerId"]
            self.new_items.append({"order_item_id": i["orderItemId"], "seller_id": i["sellerId"]})
        self.parts[order_id] = [
            {
                "order_id": order_id,
                "seller_id": seller,
                "paid_at": None,
                "paid_day": None,
                "shipped_at": None,
            }
            for seller in sorted({i["sellerId"] for i in items})
        ]
        self.new_orders.append(order_id)
        self.placed.add(order_id)

    def _paid(self, env: Envelope) -> None:
        at = env.event.at
        parts = self.parts.get(str(env.originator_id), [])
        if not parts or parts[0]["paid_at"] is not None:
            return
        for part in parts:
            self._counted(part["seller_id"], _day(at), "paid")
        for part in parts:
            self._set_part(part, paid_at=naive_utc(at), paid_day=_day(at))

    @step(Order.StatusChanged)
    def _status(self, env: Envelope) -> None:
        if env.event.status == "PAID":
            self._paid(env)

    @step(Order.PaymentCompleted)
    def _payment(self, env: Envelope) -> None:
        if env.event.status not in ("CANCELLED", "DELIVERED") and env.event.method != "COD":
            self._paid(env)

    @step(Order.ShipmentCreated)
    def _shipped(self, env: Envelope) -> None:
        e = env.event
        order_id = str(env.originator_id)
        sellers = [self.items[i["orderItemId"]] for i in e.items if i["orderItemId"] in self.items]
        seller = min(sellers, default="")
        part = next((p for p in self.parts.get(order_id, []) if p["seller_id"] == seller), None)
        paid_day = part["paid_day"] if part is not None else None
        self.shipments[e.shipment_id] = {
            "shipment_id": e.shipment_id,
            "seller_id": seller,
            "paid_day": paid_day,
            "shipped_at": naive_utc(e.at),
            "delivered": False,
        }
        self.new_shipments.append(e.shipment_id)
        if part is None or paid_day is None:
            return  # COD: shipped before it is paid, not part of a paid cohort
        self._counted(seller, paid_day, "parcels")
        if part["shipped_at"] is not None:
            return  # only the seller's first parcel times the shipping
        self._set_part(part, shipped_at=naive_utc(e.at))
        self._counted(seller, paid_day, "shipped")
        if naive_utc(e.at) - part["paid_at"] <= timedelta(days=7):
            self._counted(seller, paid_day, "shipped_7d")
        self._hours(seller, paid_day, "to_ship", part["paid_at"], e.at)

    @step(Order.ShipmentStatusChanged)
    def _shipment_status(self, env: Envelope) -> None:
        e = env.event
        if e.status != "DELIVERED":
            return
        row = self.shipments.get(e.shipment_id)
        if row is None or row["delivered"]:
            return
        row["delivered"] = True
        self.changed_shipments.add(e.shipment_id)
        if row["paid_day"] is not None:
            self._counted(row["seller_id"], row["paid_day"], "parcels_delivered")
            self._hours(row["seller_id"], row["paid_day"], "to_deliver", row["shipped_at"], e.at)

    @step(Order.Delivered)
    def _delivered(self, env: Envelope) -> None:
        auto = env.event.by == "system"  # the timed rule; "buyer" confirmed, "admin" set it
        for part in self.parts.get(str(env.originator_id), []):
            if part["paid_day"] is None:
                continue
            self._counted(part["seller_id"], part["paid_day"], "delivered")
            if auto:
                self._counted(part["seller_id"], part["paid_day"], "auto_delivered")

    @step(Order.ShipReminderSent)
    def _reminded(self, env: Envelope) -> None:
        for part in self.parts.get(str(env.originator_id), []):
            if part["seller_id"] in env.event.seller_ids and part["paid_day"] is not None:
                self._counted(part["seller_id"], part["paid_day"], "reminded")

    def flush(self) -> None:
        t, session = self.tables, self.session
        insert_many(session, t["items"], self.new_items)
        new_parts = [p for o in self.new_orders for p in self.parts[o]]
        insert_many(session, t["parts"], new_parts)
        put(session, t["parts"], [self.changed_parts[k] for k in sorted(self.changed_parts)])
        created = set(self.new_shipments)
        insert_many(session, t["shipments"], [self.shipments[s] for s in self.new_shipments])
        put(
            session,
            t["shipments"],
            [self.shipments[s] for s in sorted(self.changed_shipments - created)],
        )
        self.counts.write(session, t["counts"])
        self.hours.write(session, t["hours"])
        self.counts_monthly.write(session, t["counts_monthly"])
        self.hours_monthly.write(session, t["hours_monthly"])


class ShippingPerformance(FoldingProjection):
    """How fast sellers ship. Figures are kept under the day the order was paid (the cohort),
    per seller and for the platform: counts, and hour histograms of the time from payment to
    a seller's first parcel (``to_ship``) and from a parcel leaving to the carrier delivering
    it (``to_deliver``); percentiles are read from them, to the hour. COD orders, shipped
    before they are paid, are not part of any cohort."""

    name = "shipping_perf"
    fold = _ShippingFold

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        parts = Table(
            f"rm_ship_parts{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("seller_id", String(36), primary_key=True),
            Column("paid_at", Timestamp),
            Column("paid_day", String(10)),
            Column("shipped_at", Timestamp),
        )
        items = Table(
            f"rm_ship_items{suffix}",
            metadata,
            Column("order_item_id", String(80), primary_key=True),
            Column("seller_id", String(36), nullable=False),
        )
        shipments = Table(
            f"rm_ship_shipments{suffix}",
            metadata,
            Column("shipment_id", String(80), primary_key=True),
            Column("seller_id", String(36), nullable=False),
            Column("paid_day", String(10)),
            Column("shipped_at", Timestamp, nullable=False),
            Column("delivered", Boolean, nullable=False),
        )
        counts = Table(
            f"rm_ship_counts{suffix}",
            metadata,
            Column("scope", ascii_key(36), primary_key=True),
            Column("day", ascii_key(10), primary_key=True),
            Column("metric", ascii_key(20), primary_key=True),
            Column("n", BigInteger, nullable=False),
            **FIGURES,
        )
        Index(None, counts.c.day, counts.c.scope)  # which sellers shipped in a range of days
        hours = Table(
            f"rm_ship_hours{suffix}",
            metadata,
            Column("scope", ascii_key(36), primary_key=True),
            Column("day", ascii_key(10), primary_key=True),
            Column("metric", ascii_key(12), primary_key=True),  # to_ship | to_deliver
            Column("hours", Integer, primary_key=True),
            Column("n", BigInteger, nullable=False),
            **FIGURES,
        )
        # The same figures per calendar month (the sums of the days above): a range reads
        # whole months here and only its edge days from the daily tables.
        counts_monthly = Table(
            f"rm_ship_counts_m{suffix}",
            metadata,
            Column("scope", ascii_key(36), primary_key=True),
            Column("month", ascii_key(7), primary_key=True),
            Column("metric", ascii_key(20), primary_key=True),
            Column("n", BigInteger, nullable=False),
            **FIGURES,
        )
        hours_monthly = Table(
            f"rm_ship_hours_m{suffix}",
            metadata,
            Column("scope", ascii_key(36), primary_key=True),
            Column("month", ascii_key(7), primary_key=True),
            Column("metric", ascii_key(12), primary_key=True),
            Column("hours", Integer, primary_key=True),
            Column("n", BigInteger, nullable=False),
            **FIGURES,
        )
        return {
            "parts": parts,
            "items": items,
            "shipments": shipments,
            "counts": counts,
            "hours": hours,
            "counts_monthly": counts_monthly,
            "hours_monthly": hours_monthly,
        }


# --- stock alerts --------------------------------------------------------------------------
class _StockFold(Fold):
    def __init__(self, tables: Mapping[str, Table], session: Session) -> None:
        super().__init__(tables, session)
        self.alerts: dict[str, dict[str, Any]] = {}
        self.changed: set[str] = set()

    def prepare(self, envelopes: list[Envelope]) -> None:
        products = {e.event.product_id for e in envelopes}
        for row in load(self.session, self.tables["alerts"], "product_id", products):
            self.alerts[row["product_id"]] = row

    def _set(self, product_id: str, **values: Any) -> None:
        row = self.alerts.get(product_id)
        if row is None:
            row = {"product_id": product_id, "threshold": None, "low": False, "low_since": None}
            self.alerts[product_id] = row
        row.update(values)
        self.changed.add(product_id)

    @step(Inventory.LowStockThresholdSet)
    def _threshold(self, env: Envelope) -> None:
        self._set(env.event.product_id, threshold=env.event.threshold)

    @step(Inventory.LowStock)
    def _low(self, env: Envelope) -> None:
        self._set(env.event.product_id, low=True, low_since=naive_utc(env.event.at))

    @step(Inventory.StockRecovered)
    def _recovered(self, env: Envelope) -> None:
        self._set(env.event.product_id, low=False, low_since=None)

    def flush(self) -> None:
        put(self.session, self.tables["alerts"], [self.alerts[p] for p in sorted(self.changed)])


class StockAlerts(FoldingProjection):
    """Each product's own low-stock threshold (if the seller set one) and whether it is low."""

    name = "stock_alerts"
    fold = _StockFold

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        alerts = Table(
            f"rm_stock_alerts{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("threshold", Integer),  # None: the platform default
            Column("low", Boolean, nullable=False),
            Column("low_since", Timestamp),
        )
        return {"alerts": alerts}


ANALYTICS = (SalesReport, Funnel, ShippingPerformance, StockAlerts)
live = {
    name: table
    for cls in ANALYTICS
    for name, table in (
        (f"{cls.name}.{k}", v) for k, v in cls.define_tables(new_metadata()).items()
    )
}


def today(now: datetime) -> date:
    return local_date(now)
