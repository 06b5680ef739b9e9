"""Reports (seeds/003) and analytics (seeds/001 derived data), read from the analysis read
models in projections/analytics.py (and the catalog and stock views for names and stock).

A ``scope`` is ``""`` for the whole platform or a seller's account id: a seller's figures are
its own items only. Periods are Asia/Taipei calendar days, ``fromDate``/``toDate`` inclusive.
Range sums over products read whole months from the monthly table and only the edge days from
the daily one, so a year costs about as much as a month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, case, func, literal_column, or_, select, union_all
from sqlalchemy.engine import Engine

from aggregates.money import from_minor, money
from projections.accounts import live as accounts
from projections.analytics import PLATFORM, live
from projections.catalog import live as catalog
from projections.inventory import live as inventory
from queries.catalog import QueryError, _subtree, calendar_periods, check_dates
from queries.common import PageRequest, iso, paginated

_daily = live["sales_report.daily"]
_monthly = live["sales_report.monthly"]
_totals = live["sales_report.totals"]
_customers = live["sales_report.customers"]
_last_sale = live["sales_report.products"]
_funnel = live["funnel.counts"]
_ship_counts = live["shipping_perf.counts"]
_ship_hours = live["shipping_perf.hours"]
_ship_counts_m = live["shipping_perf.counts_monthly"]
_ship_hours_m = live["shipping_perf.hours_monthly"]
_alerts = live["stock_alerts.alerts"]
_c = catalog["categories"]
_p = catalog["products"]
_sellers = catalog["sellers"]
_stock = inventory["stock"]
_w = inventory["warehouses"]

GROUPS = ("DAY", "WEEK", "MONTH")
MAX_RANGE_DAYS = 3 * 366


def check_range(start: date, end: date) -> None:
    check_dates(start, end)
    if (end - start).days >= MAX_RANGE_DAYS:
        raise QueryError(f"a report covers at most {MAX_RANGE_DAYS} days")


def _m(minor: int | None) -> dict[str, Any]:
    return money(from_minor(int(minor or 0)))


def _days(start: date, end: date) -> tuple[str, str]:
    return start.isoformat(), end.isoformat()


# --- product sums over a range ---------------------------------------------------------------
def _month_split(start: date, end: date) -> tuple[list[tuple[date, date]], str | None, str | None]:
    """Edge day ranges read from the daily table, and the whole months between them."""
    first_full = start if start.day == 1 else _next_month(start)
    after_end = end + timedelta(days=1)
    last_full_end = after_end.replace(day=1)  # months strictly before this one are whole
    if first_full >= last_full_end:
        return [(start, end)], None, None
    edges = []
    if start < first_full:
        edges.append((start, first_full - timedelta(days=1)))
    if last_full_end <= end:
        edges.append((last_full_end, end))
    last_month = last_full_end - timedelta(days=1)
    return edges, first_full.strftime("%Y-%m"), last_month.strftime("%Y-%m")


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def product_sums(
    conn: Connection,
    scope: str,
    start: date,
    end: date,
    products: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
) -> dict[str, tuple[int, int, str]]:
    """{product id: (units, revenue in minor units, category id)} sold in [start, end]."""
    # The figure tables' keys are ASCII (UUIDs): no other id can be found there (and MySQL
    # would refuse to compare one with its ASCII columns).
    if products is not None:
        products = [p for p in products if p.isascii()]
    if categories is not None:
        categories = [c for c in categories if c.isascii()]
    edges, first_month, last_month = _month_split(start, end)
    parts = []
    for n, (table, key, lo, hi) in enumerate(
        [
            *((_daily, _daily.c.day, *_days(a, b)) for a, b in edges),
            *([(_monthly, _monthly.c.month, first_month, last_month)] if first_month else []),
        ]
    ):
        where = [key >= lo, key <= hi]
        if scope:
            where.append(table.c.seller_id == scope)
        if products is not None:
            where.append(table.c.product_id.in_(list(products)))
        if categories is not None:
            where.append(table.c.category_id.in_(list(categories)))
        parts.append(
            select(
                literal_column(str(n)).label("part"),
                table.c.product_id,
                table.c.category_id,
                func.sum(table.c.units).label("units"),
                func.sum(table.c.revenue_minor).label("revenue"),
            )
            .where(*where)
            .group_by(table.c.product_id, table.c.category_id)
        )
    # One statement for all the parts (the result, not the rows read, is what a driver pays
    # for): sums per product and category, and the first part each was in.
    statement: Any = parts[0]
    if len(parts) > 1:
        union = union_all(*parts).subquery()
        statement = select(
            func.min(union.c.part).label("part"),
            union.c.product_id,
            union.c.category_id,
            func.sum(union.c.units).label("units"),
            func.sum(union.c.revenue).label("revenue"),
        ).group_by(union.c.product_id, union.c.category_id)
    sums: dict[str, list[Any]] = {}
    # Rows are unpacked, not read by name: a Row attribute costs microseconds.
    for part, product_id, category_id, units, revenue in conn.execute(statement):
        # A product is filed under the category it is first seen with, reading the parts in
        # order and each part's rows by category (as each part's grouped rows come).
        first = (int(part), category_id)
        found = sums.get(product_id)
        if found is None:
            sums[product_id] = [int(units or 0), int(revenue or 0), first]
            continue
        found[0] += int(units or 0)
        found[1] += int(revenue or 0)
        found[2] = min(found[2], first)
    return {k: (v[0], v[1], v[2][1]) for k, v in sums.items()}


def _names(conn: Connection, product_ids: Iterable[str]) -> dict[str, str]:
    ids = list(product_ids)
    if not ids:
        return {}
    rows = conn.execute(select(_p.c.product_id, _p.c.name).where(_p.c.product_id.in_(ids)))
    return {r.product_id: r.name for r in rows}


def _category_names(conn: Connection, category_ids: Iterable[str]) -> dict[str, str]:
    ids = list(set(category_ids))
    if not ids:
        return {}
    rows = conn.execute(select(_c.c.category_id, _c.c.name).where(_c.c.category_id.in_(ids)))
    return {r.category_id: r.name for r in rows}


class _Day(NamedTuple):
    orders: int
    units: int
    revenue_minor: int


def _totals_by_day(conn: Connection, scope: str, start: date, end: date) -> dict[str, Any]:
    lo, hi = _days(start, end)
    rows = conn.execute(
        select(_totals.c.day, _totals.c.orders, _totals.c.units, _totals.c.revenue_minor).where(
            _totals.c.scope == scope, _totals.c.day >= lo, _totals.c.day <= hi
        )
    )
    return {day: _Day(orders, units, revenue) for day, orders, units, revenue in rows}


def _per_period(
    by_day: dict[str, Any], start: date, end: date, group_by: str
) -> list[tuple[str, int, int, int]]:
    """(label, orders, units, revenue) per calendar period."""
    out = []
    for label, first, following in calendar_periods(start, end, group_by):
        orders = units = revenue = 0
        day = max(first, start)
        while day < following and day <= end:
            row = by_day.get(day.isoformat())
            if row is not None:
                orders += row.orders
                units += row.units
                revenue += row.revenue_minor
            day += timedelta(days=1)
        out.append((label, orders, units, revenue))
    return out


def _top(
    conn: Connection, sums: dict[str, tuple[int, int, str]], key: str, limit: int
) -> list[dict[str, Any]]:
    def rank(kv: tuple[str, tuple[int, int, str]]) -> tuple[int, int, str]:
        units, revenue, _ = kv[1]
        return (-units, -revenue, kv[0]) if key == "quantity" else (-revenue, -units, kv[0])

    ranked = sorted(sums.items(), key=rank)
    chosen = [(pid, v) for pid, v in ranked if v[0] or v[1]][:limit]
    names = _names(conn, (pid for pid, _ in chosen))
    categories = _category_names(conn, (v[2] for _, v in chosen))
    return [
        {
            "productId": pid,
            "name": names.get(pid, ""),
            "category": categories.get(cat, ""),
            "categoryId": cat,
            "quantity": units,
            "revenue": _m(revenue),
            "averageUnitPrice": _m(round(revenue / units) if units else 0),
        }
        for pid, (units, revenue, cat) in chosen
    ]


# --- seeds/003 reports ---------------------------------------------------------------------
def sales_summary(
    engine: Engine,
    scope: str,
    start: date,
    end: date,
    group_by: str = "DAY",
    include_details: bool = False,
    top: int = 10,
) -> dict[str, Any]:
    check_range(start, end)
    with engine.connect() as conn:
        by_day = _totals_by_day(conn, scope, start, end)
        orders = sum(r.orders for r in by_day.values())
        revenue = sum(r.revenue_minor for r in by_day.values())
        units = sum(r.units for r in by_day.values())
        periods = _per_period(by_day, start, end, group_by)
        sums = product_sums(conn, scope, start, end)
        report: dict[str, Any] = {
            "period": {"fromDate": start.isoformat(), "toDate": end.isoformat()},
            "totalSales": _m(revenue),
            "totalOrders": orders,
            "averageOrderValue": _m(round(revenue / orders) if orders else 0),
            "salesByPeriod": [
                {"period": label, "sales": _m(r), "orders": o} for label, o, _, r in periods
            ],
            "topSellingProducts": [
                {k: v[k] for k in ("productId", "name", "quantity", "revenue")}
                for v in _top(conn, sums, "quantity", top)
            ],
        }
        if include_details:
            report["totalUnits"] = units
            for entry, (_, o, u, r) in zip(report["salesByPeriod"], periods, strict=True):
                entry["units"] = u
                entry["averageOrderValue"] = _m(round(r / o) if o else 0)
            report["salesByCategory"] = _by_category(conn, sums)
            if not scope:
                report["salesBySeller"] = _by_seller(conn, start, end)
    return report


def _by_category(conn: Connection, sums: dict[str, tuple[int, int, str]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for units, revenue, cat in sums.values():
        grouped[cat][0] += units
        grouped[cat][1] += revenue
    names = _category_names(conn, grouped)
    ranked = sorted(grouped.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return [
        {"categoryId": cat, "category": names.get(cat, ""), "quantity": u, "revenue": _m(r)}
        for cat, (u, r) in ranked
        if u or r
    ]


def _by_seller(conn: Connection, start: date, end: date) -> list[dict[str, Any]]:
    lo, hi = _days(start, end)
    rows = conn.execute(
        select(
            _totals.c.scope,
            func.sum(_totals.c.orders).label("orders"),
            func.sum(_totals.c.units).label("units"),
            func.sum(_totals.c.revenue_minor).label("revenue"),
        )
        .where(_totals.c.scope != PLATFORM, _totals.c.day >= lo, _totals.c.day <= hi)
        .group_by(_totals.c.scope)
    ).all()
    shops = {
        r.seller_id: r.shop_name
        for r in conn.execute(
            select(_sellers.c.seller_id, _sellers.c.shop_name).where(
                _sellers.c.seller_id.in_([r.scope for r in rows])
            )
        )
    }
    ranked = sorted(rows, key=lambda r: (-int(r.revenue or 0), r.scope))
    return [
        {
            "sellerId": r.scope,
            "shopName": shops.get(r.scope),
            "orders": int(r.orders or 0),
            "units": int(r.units or 0),
            "revenue": _m(r.revenue),
        }
        for r in ranked
    ]


def product_sales(
    engine: Engine,
    scope: str,
    start: date,
    end: date,
    category_id: str | None = None,
    product_id: str | None = None,
    sort_by: str = "quantity",
    limit: int = 10,
) -> dict[str, Any]:
    check_range(start, end)
    with engine.connect() as conn:
        categories = None
        if category_id is not None:
            categories = _subtree(conn, category_id)
            if categories is None:
                raise QueryError("categoryId does not exist")
        products = [product_id] if product_id is not None else None
        sums = product_sums(conn, scope, start, end, products, categories)
        total_units = sum(v[0] for v in sums.values())
        total_revenue = sum(v[1] for v in sums.values())
        return {
            "period": {"fromDate": start.isoformat(), "toDate": end.isoformat()},
            "productSales": [
                {
                    k: v[k]
                    for k in (
                        "productId",
                        "name",
                        "category",
                        "quantity",
                        "revenue",
                        "averageUnitPrice",
                    )
                }
                for v in _top(conn, sums, sort_by, limit)
            ],
            "totalQuantitySold": total_units,
            "totalRevenue": _m(total_revenue),
            "salesByCategory": [
                {k: v[k] for k in ("category", "quantity", "revenue")}
                | {"categoryId": v["categoryId"]}
                for v in _by_category(conn, sums)
            ],
        }


# --- analytics -----------------------------------------------------------------------------
def _previous(start: date, end: date) -> tuple[date, date]:
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def _change(now: int, before: int) -> float | None:
    """Percent change against the previous period (None when there was nothing before)."""
    return None if before == 0 else round((now - before) * 100 / before, 1)


def sales_analytics(
    engine: Engine, scope: str, start: date, end: date, group_by: str = "DAY"
) -> dict[str, Any]:
    check_range(start, end)
    prev_start, prev_end = _previous(start, end)
    with engine.connect() as conn:
        by_day = _totals_by_day(conn, scope, prev_start, end)
        now = [r for d, r in by_day.items() if d >= start.isoformat()]
        before = [r for d, r in by_day.items() if d < start.isoformat()]

        def figures(rows: list[Any]) -> dict[str, int]:
            return {
                "revenue": sum(r.revenue_minor for r in rows),
                "orders": sum(r.orders for r in rows),
                "units": sum(r.units for r in rows),
            }

        current, previous = figures(now), figures(before)
        sums = product_sums(conn, scope, start, end)
        result: dict[str, Any] = {
            "scope": {"sellerId": scope or None},
            "period": {"fromDate": start.isoformat(), "toDate": end.isoformat()},
            "previousPeriod": {"fromDate": prev_start.isoformat(), "toDate": prev_end.isoformat()},
            "revenue": _m(current["revenue"]),
            "orders": current["orders"],
            "units": current["units"],
            "averageOrderValue": _m(
                round(current["revenue"] / current["orders"]) if current["orders"] else 0
            ),
            "previous": {
                "revenue": _m(previous["revenue"]),
                "orders": previous["orders"],
                "units": previous["units"],
                "averageOrderValue": _m(
                    round(previous["revenue"] / previous["orders"]) if previous["orders"] else 0
                ),
            },
            "change": {
                "revenuePercent": _change(current["revenue"], previous["revenue"]),
                "ordersPercent": _change(current["orders"], previous["orders"]),
                "unitsPercent": _change(current["units"], previous["units"]),
            },
            "series": [
                {
                    "period": label,
                    "revenue": _m(r),
                    "orders": o,
                    "units": u,
                    "averageOrderValue": _m(round(r / o) if o else 0),
                }
                for label, o, u, r in _per_period(by_day, start, end, group_by)
            ],
            "byCategory": _by_category(conn, sums),
            "topProducts": _top(conn, sums, "revenue", 10),
        }
        if not scope:
            result["bySeller"] = _by_seller(conn, start, end)
    return result


def conversion(
    engine: Engine, scope: str, start: date, end: date, group_by: str = "DAY"
) -> dict[str, Any]:
    check_range(start, end)
    lo, hi = _days(start, end)
    with engine.connect() as conn:
        rows = conn.execute(
            select(_funnel.c.day, _funnel.c.step, _funnel.c.n).where(
                _funnel.c.scope == scope, _funnel.c.day >= lo, _funnel.c.day <= hi
            )
        ).all()
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, step_, n in rows:
        by_day[day][step_] += int(n)

    def funnel(steps: dict[str, int]) -> dict[str, Any]:
        carts, checkouts = steps.get("carts", 0), steps.get("checkouts", 0)
        paid, delivered = steps.get("paid", 0), steps.get("delivered", 0)
        return {
            "carts": carts,
            "checkouts": checkouts,
            "paid": paid,
            "delivered": delivered,
            "expired": steps.get("expired", 0),
            "cancelled": steps.get("cancelled", 0),
            "rates": {
                "cartToCheckout": _rate(checkouts, carts),
                "checkoutToPaid": _rate(paid, checkouts),
                "paidToDelivered": _rate(delivered, paid),
                "expiredShare": _rate(steps.get("expired", 0), checkouts),
                "cancelledShare": _rate(steps.get("cancelled", 0), checkouts),
            },
        }

    total: dict[str, int] = defaultdict(int)
    for day_steps in by_day.values():
        for k, v in day_steps.items():
            total[k] += v
    series = []
    for label, first, following in calendar_periods(start, end, group_by):
        steps: dict[str, int] = defaultdict(int)
        day = max(first, start)
        while day < following and day <= end:
            for k, v in by_day.get(day.isoformat(), {}).items():
                steps[k] += v
            day += timedelta(days=1)
        series.append({"period": label, **funnel(steps)})
    return {
        "scope": {"sellerId": scope or None},
        "period": {"fromDate": lo, "toDate": hi},
        **funnel(total),
        "series": series,
    }


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _percentile(histogram: dict[int, int], q: float) -> int | None:
    """The hour by which ``q`` of the cases were done (histograms are in whole hours)."""
    count = sum(histogram.values())
    if count == 0:
        return None
    rank = q * count
    seen = 0
    for hours in sorted(histogram):
        seen += histogram[hours]
        if seen >= rank:
            return hours + 1
    return max(histogram) + 1


def shipping(
    engine: Engine, scope: str, start: date, end: date, by_seller: bool = False
) -> dict[str, Any]:
    check_range(start, end)
    lo, hi = _days(start, end)
    # Edge days from the daily tables, whole months from the monthly ones (their sums).
    edges, first_month, last_month = _month_split(start, end)
    parts = [(_ship_counts, _ship_hours, "day", *_days(a, b)) for a, b in edges]
    if first_month and last_month:
        parts.append((_ship_counts_m, _ship_hours_m, "month", first_month, last_month))
    count_of: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hist: dict[str, dict[str, dict[int, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    with engine.connect() as conn:
        scopes = [scope]
        if by_seller and not scope:
            found: set[str] = set()
            for counts_t, _, key, a, b in parts:
                found.update(
                    conn.execute(
                        select(counts_t.c.scope)
                        .where(
                            counts_t.c.scope != PLATFORM, counts_t.c[key] >= a, counts_t.c[key] <= b
                        )
                        .distinct()
                    ).scalars()
                )
            scopes = sorted(found)
        # One statement each for counts and hours over all the parts.
        count_parts = [
            select(counts_t.c.scope, counts_t.c.metric, func.sum(counts_t.c.n).label("n"))
            .where(counts_t.c.scope.in_(scopes), counts_t.c[key] >= a, counts_t.c[key] <= b)
            .group_by(counts_t.c.scope, counts_t.c.metric)
            for counts_t, _, key, a, b in parts
        ]
        hour_parts = [
            select(
                hours_t.c.scope,
                hours_t.c.metric,
                hours_t.c.hours,
                func.sum(hours_t.c.n).label("n"),
            )
            .where(hours_t.c.scope.in_(scopes), hours_t.c[key] >= a, hours_t.c[key] <= b)
            .group_by(hours_t.c.scope, hours_t.c.metric, hours_t.c.hours)
            for _, hours_t, key, a, b in parts
        ]
        for s_, metric, n in conn.execute(_summed(count_parts, ["scope", "metric"])):
            count_of[s_][metric] += int(n)
        for s_, metric, hours, n in conn.execute(_summed(hour_parts, ["scope", "metric", "hours"])):
            hist[s_][metric][int(hours)] += int(n)
        shops = {
            r.seller_id: r.shop_name
            for r in conn.execute(
                select(_sellers.c.seller_id, _sellers.c.shop_name).where(
                    _sellers.c.seller_id.in_(scopes)
                )
            )
        }

    def figures(s: str) -> dict[str, Any]:
        c, h = count_of[s], hist[s]
        return {
            "ordersPaid": c["paid"],
            "ordersShipped": c["shipped"],
            "shippedWithin7Days": c["shipped_7d"],
            "shippedWithin7DaysShare": _rate(c["shipped_7d"], c["paid"]),
            "hoursToFirstShipment": {
                "p50": _percentile(h["to_ship"], 0.5),
                "p90": _percentile(h["to_ship"], 0.9),
            },
            "hoursShipmentToDelivery": {
                "p50": _percentile(h["to_deliver"], 0.5),
                "p90": _percentile(h["to_deliver"], 0.9),
            },
            "parcels": c["parcels"],
            "parcelsDelivered": c["parcels_delivered"],
            "remindersSent": c["reminded"],
            "ordersDelivered": c["delivered"],
            "autoDelivered": c["auto_delivered"],
            "autoDeliveredShare": _rate(c["auto_delivered"], c["delivered"]),
        }

    result: dict[str, Any] = {
        "scope": {"sellerId": scope or None},
        "period": {"fromDate": lo, "toDate": hi},
    }
    if by_seller and not scope:
        result["sellers"] = [
            {"sellerId": s, "shopName": shops.get(s), **figures(s)} for s in scopes
        ]
    else:
        result.update(figures(scope))
    return result


def _summed(parts: list[Any], keys: list[str]) -> Any:
    """``n`` summed per ``keys`` over grouped parts: the part itself when there is one."""
    if len(parts) == 1:
        return parts[0]
    union = union_all(*parts).subquery()
    return select(*(union.c[k] for k in keys), func.sum(union.c.n).label("n")).group_by(
        *(union.c[k] for k in keys)
    )


def top_customers(
    engine: Engine, scope: str, page: PageRequest, buyer_id: str | None = None
) -> dict[str, Any]:
    """Buyers by what they bought (goods value, net of refunds), with orders, first and last
    paid order (seeds/000 customer records)."""
    users = accounts["accounts"]
    where = [
        _customers.c.scope == scope,
        or_(_customers.c.orders > 0, _customers.c.revenue_minor != 0),
    ]
    if buyer_id is not None:
        where.append(_customers.c.buyer_id == buyer_id)
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(_customers).where(*where)
        ).scalar_one()
        rows = conn.execute(
            select(
                _customers,
                users.c.username,
                users.c.display_name,
            )
            .select_from(_customers.outerjoin(users, users.c.user_id == _customers.c.buyer_id))
            .where(*where)
            .order_by(_customers.c.revenue_minor.desc(), _customers.c.buyer_id)
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    customers = [
        {
            "buyerId": r.buyer_id,
            "username": r.username,
            "displayName": r.display_name,
            "orders": int(r.orders),
            "spend": _m(r.revenue_minor),
            "averageOrderValue": _m(round(r.revenue_minor / r.orders) if r.orders > 0 else 0),
            "firstOrderAt": iso(r.first_paid_at),
            "lastOrderAt": iso(r.last_paid_at),
        }
        for r in rows
    ]
    return {"scope": {"sellerId": scope or None}, **paginated("customers", customers, total, page)}


def inventory_health(
    engine: Engine,
    scope: str,
    today: date,
    default_threshold: int,
    dead_after_days: int,
    page: PageRequest,
) -> dict[str, Any]:
    """Per product and warehouse: stock, units sold in the last 7 and 30 days, days of cover;
    the products at or below their low-stock threshold; stocked products with no sale in
    ``dead_after_days`` days."""
    with engine.connect() as conn:
        # Per stocked product (in product order): stock summed over its warehouses, its own
        # threshold and last sale; the warehouses and names only where an answer shows them.
        stock_where = [_stock.c.seller_id == scope] if scope else []
        per_product = conn.execute(
            select(
                _stock.c.product_id,
                func.sum(_stock.c.on_hand),
                func.sum(_stock.c.reserved),
                # one row each per product at most: grouped by the stock key alone
                func.max(_alerts.c.threshold),
                func.max(_last_sale.c.last_sold_day),
            )
            .select_from(
                _stock.outerjoin(_alerts, _alerts.c.product_id == _stock.c.product_id).outerjoin(
                    _last_sale, _last_sale.c.product_id == _stock.c.product_id
                )
            )
            .where(*stock_where)
            .group_by(_stock.c.product_id)
            .order_by(_stock.c.product_id)
        ).all()
        sold30, sold7 = _units_sold(conn, scope, today)
        products = []
        low, dead = [], []
        dead_before = (today - timedelta(days=dead_after_days)).isoformat()
        for pid, on_hand_sum, reserved_sum, own, last_day in per_product:
            on_hand = int(on_hand_sum)
            available = on_hand - int(reserved_sum)
            units30 = sold30.get(pid, 0)
            threshold = own if own is not None else default_threshold
            entry = {
                "productId": pid,
                "onHand": on_hand,
                "reserved": on_hand - available,
                "available": available,
                "unitsSold7Days": sold7.get(pid, 0),
                "unitsSold30Days": units30,
                "daysOfCover": round(available / (units30 / 30), 1) if units30 > 0 else None,
                "lowStockThreshold": threshold,
                "lastSoldDay": last_day,
            }
            products.append(entry)
            if available <= threshold:  # sold out (nothing on hand) is the lowest stock
                low.append(entry)
            if on_hand > 0 and (last_day is None or last_day < dead_before):
                dead.append(entry)
        start = page.offset
        shown = products[start : start + page.page_size]
        warehouses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if shown:
            for pid, warehouse_id, on_hand, reserved, code in conn.execute(
                select(
                    _stock.c.product_id,
                    _stock.c.warehouse_id,
                    _stock.c.on_hand,
                    _stock.c.reserved,
                    _w.c.code,
                )
                .select_from(_stock.outerjoin(_w, _w.c.warehouse_id == _stock.c.warehouse_id))
                .where(_stock.c.product_id.in_([e["productId"] for e in shown]), *stock_where)
                .order_by(_stock.c.product_id, _stock.c.warehouse_id)
            ):
                warehouses[pid].append(
                    {
                        "warehouseId": warehouse_id,
                        "code": code,
                        "onHand": int(on_hand),
                        "reserved": int(reserved),
                        "available": int(on_hand) - int(reserved),
                    }
                )
        names = _names(conn, {e["productId"] for e in (*shown, *low, *dead)})
    low.sort(key=lambda e: (e["available"] - e["lowStockThreshold"], e["productId"]))
    dead.sort(key=lambda e: (e["lastSoldDay"] or "", e["productId"]))
    return {
        "scope": {"sellerId": scope or None},
        "asOf": today.isoformat(),
        "defaultLowStockThreshold": default_threshold,
        "deadStockDays": dead_after_days,
        "lowStock": [_brief(e, names) for e in low],
        "deadStock": [_brief(e, names) for e in dead],
        **paginated(
            "products",
            [
                {
                    "productId": e["productId"],
                    "name": names.get(e["productId"], ""),
                    "warehouses": warehouses[e["productId"]],
                    **{k: v for k, v in e.items() if k != "productId"},
                }
                for e in shown
            ],
            len(products),
            page,
        ),
    }


def _units_sold(conn: Connection, scope: str, today: date) -> tuple[dict[str, int], dict[str, int]]:
    """Units sold per product in the 30 and the 7 days up to ``today``, in one read of the
    daily table (the monthly one holds the same sums, per month)."""
    lo30, lo7, hi = (
        (today - timedelta(days=29)).isoformat(),
        (today - timedelta(days=6)).isoformat(),
        today.isoformat(),
    )
    where = [_daily.c.day >= lo30, _daily.c.day <= hi]
    if scope:
        where.append(_daily.c.seller_id == scope)
    rows = conn.execute(
        select(
            _daily.c.product_id,
            func.sum(_daily.c.units).label("units30"),
            func.sum(case((_daily.c.day >= lo7, _daily.c.units), else_=0)).label("units7"),
        )
        .where(*where)
        .group_by(_daily.c.product_id)
    )
    sold30: dict[str, int] = {}
    sold7: dict[str, int] = {}
    for product_id, units30, units7 in rows:
        sold30[product_id] = int(units30 or 0)
        sold7[product_id] = int(units7 or 0)
    return sold30, sold7


def _brief(entry: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {
        "productId": entry["productId"],
        "name": names.get(entry["productId"], ""),
        **{
            k: entry[k]
            for k in ("available", "lowStockThreshold", "unitsSold30Days", "lastSoldDay")
        },
    }


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


__all__ = [
    "GROUPS",
    "Decimal",
    "and_",
    "conversion",
    "inventory_health",
    "product_sales",
    "sales_analytics",
    "sales_summary",
    "shipping",
    "top_customers",
]
