"""The sales read models against a direct fold of the same events, for any history of orders:
placed, paid, refunded by items, by amount or in full, cancelled (whole or some units, before
or after payment), expired, over random days.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from aggregates.errors import DomainError
from aggregates.money import to_minor
from aggregates.orders import Order
from aggregates.taipei import local_date
from commands.application import EventMeta, recording_as
from projections.analytics import _pro_rata, live
from queries import analytics as q
from shopledger.bootstrap import bootstrap
from tests.conftest import make_settings

START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
PRODUCTS = [  # (product id, seller id, category id, unit price)
    ("p-tea", "s-1", "c-tea", Decimal(350)),
    ("p-cup", "s-1", "c-ware", Decimal("99.90")),
    ("p-pot", "s-2", "c-ware", Decimal("1280.50")),
]
ADDRESS = {"name": "王小明", "city": "台北市"}

lines = st.lists(
    st.tuples(st.integers(0, len(PRODUCTS) - 1), st.integers(1, 4)), min_size=1, max_size=3
)
steps = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "pay",
                "refund_items",
                "refund_amount",
                "refund_full",
                "cancel",
                "expire",
                "cancel_units",
            ]
        ),
        st.integers(0, 3),  # days later
        st.integers(1, 3),  # units (items) or a share (amount)
    ),
    max_size=5,
)
histories = st.lists(st.tuples(st.integers(0, 20), lines, steps), min_size=1, max_size=6)


def _place(day: int, chosen: list[tuple[int, int]]) -> Order:
    at = START + timedelta(days=day)
    merged: dict[int, int] = defaultdict(int)
    for index, qty in chosen:
        merged[index] += qty
    order_id = uuid4()
    items: list[dict[str, Any]] = []
    for n, (index, qty) in enumerate(sorted(merged.items()), start=1):
        pid, seller, cat, price = PRODUCTS[index]
        items.append(
            {
                "orderItemId": f"{order_id}-{n}",
                "productId": pid,
                "sellerId": seller,
                "categoryId": cat,
                "name": pid,
                "quantity": qty,
                "unitPrice": str(price),
                "subtotal": str(price * qty),
            }
        )
    subtotal = sum(Decimal(i["subtotal"]) for i in items)
    tax = (subtotal * Decimal("0.05")).quantize(Decimal("0.01"))
    return Order.place(
        order_id,
        order_number=f"N{order_id.hex[:10]}",
        buyer_id="b-1",
        items=items,
        subtotal=subtotal,
        discount=Decimal(0),
        coupon_code=None,
        tax=tax,
        shipping=Decimal(60),
        shipping_method="STANDARD",
        total=subtotal + tax + 60,
        shipping_address=ADDRESS,
        billing_address=ADDRESS,
        payment_method="CREDIT_CARD",
        notes="",
        at=at,
        expires_at=at + timedelta(minutes=30),
    )


def _apply(order: Order, step: str, at: datetime, n: int) -> None:
    """One step of a history; a step the order refuses (a domain rule) is simply skipped."""
    try:
        if step == "pay":
            order.complete_payment(
                f"pay-{uuid4().hex[:6]}",
                "CREDIT_CARD",
                "SANDBOX",
                order.amount_due,
                "tx",
                None,
                "R",
                at,
            )
        elif step == "expire":
            order.expire(at + timedelta(hours=1))
        elif step == "cancel":
            order.cancel("changed my mind", "buyer", "", at)
            if order.refundable > 0:
                _refund(order, order.refundable, [], at)
        elif step == "refund_full":
            if order.refundable > 0:
                _refund(order, order.refundable, [], at)
        elif step == "refund_amount":
            amount = (order.refundable * n / 4).quantize(Decimal("0.01"))
            if amount > 0:
                _refund(order, amount, [], at)
        elif step == "cancel_units":
            item = order.items[n % len(order.items)]
            quantity = min(order.cancellable(item), n)
            if quantity > 0:
                done = order.cancel_units(
                    [(item["orderItemId"], quantity)], "admin", "admin", "x", "", at
                )
                if done.refund_due is not None and done.refund_id is not None:
                    covered = [{**i, "reason": "UNITS_CANCELLED"} for i in done.items]
                    _refund(order, done.refund_due, covered, at)
                elif done.whole and order.refundable > 0:
                    _refund(order, order.refundable, [], at)
        elif step == "refund_items":
            item = order.items[n % len(order.items)]
            left = int(item["quantity"]) - order.refunded_qty.get(item["orderItemId"], 0)
            if left > 0 and order.paid_amount > 0:
                quantity = min(left, n)
                amount, covered = order.plan_refund(
                    None, False, [(item["orderItemId"], quantity, "broken")]
                )
                _refund(order, amount, covered, at)
    except DomainError:
        pass


def _refund(order: Order, amount: Decimal, items: list[dict[str, Any]], at: datetime) -> None:
    refund_id = f"rf-{uuid4().hex[:6]}"
    order.request_refund(refund_id, amount, "test", items, at)
    order.complete_refund(refund_id, "MANUAL-1", at)


def _fold(events: list[Any]) -> tuple[dict[tuple[str, str], int], dict[str, int], dict[str, int]]:
    """Straight from the rules: units per (day, product) on the paid day, revenue per day on
    the day of the sale or refund, orders per day."""
    units: dict[tuple[str, str], int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    orders: dict[str, int] = defaultdict(int)
    state: dict[str, dict[str, Any]] = {}
    for e in events:
        oid = str(e.originator_id)
        kind = type(e).__name__
        if kind == "Placed":
            state[oid] = {
                "lines": {
                    i["orderItemId"]: [
                        i["productId"],
                        int(i["quantity"]),
                        to_minor(Decimal(i["unitPrice"])) * int(i["quantity"]),
                        to_minor(Decimal(i["unitPrice"])),
                    ]
                    for i in e.items
                },
                "paid": None,
                "open": False,
            }
            continue
        o = state[oid]
        day = local_date(e.at).isoformat() if hasattr(e, "at") else ""
        if kind == "PaymentCompleted" and e.status != "CANCELLED" and o["paid"] is None:
            o["paid"], o["open"] = day, True
            orders[day] += 1
            for pid, n, value, _ in o["lines"].values():
                units[(day, pid)] += n
                revenue[day] += value
        elif (kind == "Refunded" and e.payment_status == "REFUNDED") or kind == "Cancelled":
            if o["open"]:
                o["open"] = False
                orders[o["paid"]] -= 1
                for line in o["lines"].values():
                    units[(o["paid"], line[0])] -= line[1]
                    revenue[day] -= line[2]
                    line[1] = line[2] = 0
        elif kind == "UnitsCancelled" and o["paid"] is None:  # never sold
            for item in e.items:
                line = o["lines"][item["orderItemId"]]
                line[1] -= int(item["quantity"])
                line[2] -= int(item["quantity"]) * line[3]
        elif kind == "Refunded" and o["open"]:
            if e.items:
                for item in e.items:
                    line = o["lines"][item["orderItemId"]]
                    n = min(int(item["quantity"]), line[1])
                    value = min(n * line[3], line[2])
                    units[(o["paid"], line[0])] -= n
                    revenue[day] -= value
                    line[1] -= n
                    line[2] -= value
            else:
                remaining = sum(line[2] for line in o["lines"].values())
                taken = min(to_minor(Decimal(str(e.amount))), remaining)
                revenue[day] -= taken
                # how it is spread over the lines is the read model's business; the total is not
                shares = _pro_rata(
                    [
                        {"order_item_id": k, "revenue_minor": v[2]}
                        for k, v in sorted(o["lines"].items())
                    ],
                    taken,
                )
                assert sum(r for _, r in shares.values()) == taken
                for k, (_, r) in shares.items():
                    o["lines"][k][2] -= r
    return dict(units), dict(revenue), dict(orders)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories)
def test_reports_equal_a_direct_fold_of_any_order_history(history: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        container = bootstrap(make_settings("sqlite:///:memory:", Path(tmp)))
        try:
            placed = []
            for day, chosen, plan in history:
                order = _place(day, chosen)
                at = START + timedelta(days=day)
                for step, later, n in plan:
                    at += timedelta(days=later, hours=1)
                    _apply(order, step, at, n)
                placed.append(order)
            with recording_as(EventMeta("system:test", "fold")):
                container.app.save(*placed)
            container.catch_up()
            events: list[Any] = [e for o in placed for e in container.app.events.get(o.id)]
            events.sort(key=lambda e: (e.timestamp, str(e.originator_id), e.originator_version))
            # a fold per order is enough: orders are independent
            units, revenue, orders = _fold(events)
            daily, totals = live["sales_report.daily"], live["sales_report.totals"]
            with container.engine.connect() as conn:
                got_units = {
                    (r.day, r.product_id): r.units
                    for r in conn.execute(select(daily.c.day, daily.c.product_id, daily.c.units))
                }
                got = {r.day: r for r in conn.execute(select(totals).where(totals.c.scope == ""))}
            assert all(n >= 0 for n in got_units.values()), "a day shows negative units"
            assert {k: v for k, v in got_units.items() if v} == {
                k: v for k, v in units.items() if v
            }
            assert {d: r.revenue_minor for d, r in got.items() if r.revenue_minor} == {
                d: v for d, v in revenue.items() if v
            }
            assert {d: r.orders for d, r in got.items() if r.orders} == {
                d: v for d, v in orders.items() if v
            }
            # the report over the whole range says the same
            first, last = date(2026, 2, 28), date(2026, 5, 31)
            report = q.sales_summary(container.engine, "", first, last, "MONTH")
            assert Decimal(str(report["totalSales"]["value"])) * 100 == sum(revenue.values())
            assert report["totalOrders"] == sum(orders.values())
            seller_total = sum(
                Decimal(
                    str(q.sales_summary(container.engine, s, first, last)["totalSales"]["value"])
                )
                for s in ("s-1", "s-2")
            )
            assert seller_total * 100 == sum(revenue.values())
        finally:
            container.close()


@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=5),
    st.integers(0, 60_000),
)
def test_an_amount_refund_is_spread_exactly_and_never_below_zero(
    values: list[int], amount: int
) -> None:
    lines: list[dict[str, Any]] = [
        {"order_item_id": f"i{n}", "revenue_minor": v} for n, v in enumerate(values)
    ]
    shares = _pro_rata(lines, amount)
    taken = sum(r for _, r in shares.values())
    assert taken == min(amount, sum(values))
    for line in lines:
        assert 0 <= shares.get(line["order_item_id"], (0, 0))[1] <= line["revenue_minor"]
