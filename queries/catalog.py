"""Read side of the catalog: category tree, product search, product views, price history,
category price trends, price comparisons, best sellers (read models only)."""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from types import SimpleNamespace
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import Row, Select, and_, case, exists, func, select, true
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement, operators

from aggregates.catalog import DEFAULT_BANNED_KEYWORDS
from aggregates.money import MAX_PRICE, from_minor, money, quantize
from aggregates.taipei import TAIPEI, local_date
from projections.bulk import IN_CHUNK
from projections.catalog import OPEN_END
from projections.catalog import live as catalog
from projections.inventory import live as inventory
from projections.sales import live as sales
from projections.search_text import query_terms
from queries.common import PageRequest, iso, paginated

SORTS = ("relevance", "price", "-price", "newest", "bestselling", "rating")
GROUPINGS = ("DAY", "WEEK", "MONTH")
MAX_PERIODS = 3700  # ten years of days
MAX_HISTORY_POINTS = 10_000
MAX_COMPARE = 10

_c = catalog["categories"]
_p = catalog["products"]
_t = catalog["terms"]
_s = catalog["sellers"]
_h = catalog["prices"]
_i = catalog["intervals"]
_settings = catalog["settings"]
_w = catalog["sales"]
_stock = inventory["stock"]
_daily = sales["daily"]


#: "listed = 1", not "listed IS true": only the former can use the (listed, ...) indexes on MySQL.
_LISTED = _p.c.listed == true()


class QueryError(ValueError):
    """A query parameter that makes no sense (400)."""


# --- categories -----------------------------------------------------------------------------
def category_tree(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(_c).order_by(_c.c.depth, _c.c.name, _c.c.position)).all()
    nodes: dict[str, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for r in rows:
        node = {
            "categoryId": r.category_id,
            "name": r.name,
            "parentId": r.parent_id,
            "depth": r.depth,
            "children": [],
        }
        nodes[r.category_id] = node
        (nodes[r.parent_id]["children"] if r.parent_id in nodes else roots).append(node)
    return {"categories": roots}


def get_category(engine: Engine, category_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(_c).where(_c.c.category_id == category_id)).first()
    if row is None:
        return None
    return {
        "categoryId": row.category_id,
        "name": row.name,
        "parentId": row.parent_id,
        "depth": row.depth,
    }


def _subtree(conn: Connection, category_id: str) -> list[str] | None:
    """The ids of a category and all its descendants; None if it is unknown.

    Read first and passed as a literal list: categories are few, and MySQL plans
    ``category_id IN (<subquery>)`` as a temporary table and a filesort."""
    lineage = conn.execute(select(_c.c.lineage).where(_c.c.category_id == category_id)).scalar()
    if lineage is None:
        return None
    return list(
        conn.execute(
            select(_c.c.category_id).where(
                _c.c.lineage.like(_escape_like(lineage) + "%", escape="\\")
            )
        ).scalars()
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- sale prices (aggregates/promotions.py): decided at query time, by the caller's clock ------
def naive_now(now: datetime | None) -> datetime:
    """``now`` (default: the real time) as the read models store instants: naive UTC."""
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)


def in_force_at(at: datetime) -> ColumnElement[bool]:
    """A sale window is in force from its start (included) to its end (excluded); ``at`` in
    naive UTC, as the read model stores instants."""
    return and_(_w.c.starts_at <= at, _w.c.until > at)


def sales_in_force(conn: Connection, product_ids: list[str], now: datetime) -> dict[str, Row[Any]]:
    """The sale window in force at ``now`` (naive UTC) per product, for those that have one."""
    if not product_ids:
        return {}
    rows = conn.execute(
        select(_w.c.product_id, _w.c.price_minor, _w.c.until).where(
            _w.c.product_id.in_(product_ids), in_force_at(now)
        )
    )
    return {r.product_id: r for r in rows}


def price_fields(regular_minor: int, sale: Row[Any] | None) -> dict[str, Any]:
    """``price`` is what a buyer pays now; the regular price beside it, and the sale's price
    and end while one is in force (a sale never charges more than the regular price)."""
    regular = money(from_minor(regular_minor))
    if sale is None or sale.price_minor >= regular_minor:
        return {"price": regular, "regularPrice": regular, "salePrice": None, "saleEndsAt": None}
    paid = money(from_minor(sale.price_minor))
    return {
        "price": paid,
        "regularPrice": regular,
        "salePrice": paid,
        "saleEndsAt": iso(sale.until),
    }


# --- products -------------------------------------------------------------------------------
def product_view(row: Row[Any], stock: int, sale: Row[Any] | None = None) -> dict[str, Any]:
    return {
        "productId": row.product_id,
        "sellerId": row.seller_id,
        "sellerName": row.shop_name,
        "name": row.name,
        "description": row.description,
        "categoryId": row.category_id,
        **price_fields(row.price_minor, sale),
        "images": json.loads(row.images),
        "supplierIds": json.loads(row.supplier_ids),
        "status": row.status,
        "listed": bool(row.listed),
        "stock": max(0, stock),
        "unitsSold": row.units_sold,
        # The average product score of its visible reviews (1-10, one decimal); null: none.
        "rating": None if row.rating_x10 is None else row.rating_x10 / 10,
        "reviewCount": row.review_count,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
        "version": row.version,
        **review_view(
            row.review_status,
            row.review_reason,
            None if row.pending_changes is None else json.loads(row.pending_changes),
            row.submitted_at,
        ),
    }


def review_view(
    status: str, reason: str | None, pending: dict[str, Any] | None, submitted_at: Any
) -> dict[str, Any]:
    """Moderation fields (for the product's seller and admins only)."""
    return {
        "reviewStatus": status,
        "reviewReason": reason,
        "pendingChanges": None if not pending else {to_camel(k): v for k, v in pending.items()},
        "submittedAt": iso(submitted_at),
    }


#: The keys of :func:`review_view`: the public does not see them.
REVIEW_KEYS = ("reviewStatus", "reviewReason", "pendingChanges", "submittedAt")


def review_queue(engine: Engine, page: PageRequest) -> dict[str, Any]:
    """Products waiting for an admin's review, oldest submission first."""
    waiting = _p.c.review_status == "pending"
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_p).where(waiting)).scalar_one()
        rows = conn.execute(
            _product_select()
            .where(waiting)
            .order_by(_p.c.submitted_at, _p.c.product_id)
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
        stock = available_units(conn, [r.product_id for r in rows])
    products = [product_view(r, stock.get(r.product_id, 0)) for r in rows]
    return paginated("products", products, total, page)


def products_in_category(engine: Engine, category_id: str) -> bool:
    """Whether any product (in any status) is filed under the category itself."""
    with engine.connect() as conn:
        found = conn.execute(
            select(_p.c.product_id).where(_p.c.category_id == category_id).limit(1)
        ).first()
    return found is not None


def _product_select() -> Select[Any]:
    return select(_p, _s.c.shop_name).select_from(
        _p.outerjoin(_s, _s.c.seller_id == _p.c.seller_id)
    )


def available_units(conn: Connection, product_ids: list[str]) -> dict[str, int]:
    """Units available (on hand minus reserved, all warehouses) per product."""
    if not product_ids:
        return {}
    rows = conn.execute(
        select(_stock.c.product_id, func.sum(_stock.c.on_hand - _stock.c.reserved))
        .where(_stock.c.product_id.in_(product_ids))
        .group_by(_stock.c.product_id)
    ).all()
    return {pid: int(units or 0) for pid, units in rows}


def seller_of(engine: Engine, product_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(_p.c.seller_id).where(_p.c.product_id == product_id)).scalar()


def seller_of_record(engine: Engine, seller_id: str) -> bool:
    """Whether ``seller_id`` is (or was) an approved seller."""
    with engine.connect() as conn:
        role = conn.execute(select(_s.c.role).where(_s.c.seller_id == seller_id)).scalar()
    return role == "seller"


def get_product(
    engine: Engine, product_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(_product_select().where(_p.c.product_id == product_id)).first()
        if row is None:
            return None
        stock = available_units(conn, [product_id]).get(product_id, 0)
        sale = sales_in_force(conn, [product_id], naive_now(now)).get(product_id)
        return product_view(row, stock, sale)


@dataclass(frozen=True)
class ProductSearch:
    q: str | None = None
    category_id: str | None = None
    seller_id: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    sort: str | None = None
    #: None: listed products only (the public catalogue); else the statuses to show.
    statuses: tuple[str, ...] | None = None


#: Above this many matches a category's products are paged by price by walking the price
#: index (dense enough to reach a page soon); at or below, by sorting the category's prices.
CATEGORY_SORT_LIMIT = 20_000


def _unindexed(key: Any) -> Any:
    """A column's ORDER BY term (``col.asc()``/``col.desc()``) as one no index answers: the
    same values in the same order (the columns are NOT NULL), of the same type on every
    backend (``+ 0`` would turn SQLite's text timestamps into numbers)."""
    same = func.coalesce(key.element, key.element)
    return same.desc() if key.modifier is operators.desc_op else same.asc()


def _cents(amount: Decimal, rounding: str) -> int:
    return int(min(amount, MAX_PRICE + 1).scaleb(2).to_integral_value(rounding=rounding))


def search_products(
    engine: Engine, search: ProductSearch, page: PageRequest, now: datetime | None = None
) -> dict[str, Any]:
    if (
        search.min_price is not None
        and search.max_price is not None
        and search.min_price > search.max_price
    ):
        raise QueryError("minPrice must not be above maxPrice")
    sort = search.sort or ("relevance" if search.q else "newest")
    if sort not in SORTS:
        raise QueryError(f"sort must be one of {', '.join(SORTS)}")
    empty = paginated("products", [], 0, page)
    at = naive_now(now)
    with engine.connect() as conn:
        # Price bounds and price sorts go by what a buyer pays now. While no sale is in force
        # anywhere that is the regular price, and its indexes answer; otherwise it is, per
        # product, the sale in force (joined by the clock) or else the regular price.
        source: Any = _p
        price: Any = _p.c.price_minor
        by_price = (
            sort in ("price", "-price")
            or search.min_price is not None
            or search.max_price is not None
        )
        priced_by_sales = (
            by_price and conn.execute(select(exists().where(in_force_at(at)))).scalar()
        )
        if priced_by_sales:
            in_force = select(_w.c.product_id, _w.c.price_minor).where(in_force_at(at)).subquery()
            source = _p.outerjoin(in_force, in_force.c.product_id == _p.c.product_id)
            price = case(
                (in_force.c.price_minor < _p.c.price_minor, in_force.c.price_minor),
                else_=_p.c.price_minor,
            )
        conditions: list[Any] = []
        if search.statuses is None:
            conditions.append(_LISTED)
        else:
            conditions.append(_p.c.status.in_(search.statuses))
        if search.category_id is not None:
            subtree = _subtree(conn, search.category_id)
            if subtree is None:
                return empty
            conditions.append(_p.c.category_id.in_(subtree))
        if search.seller_id is not None:
            conditions.append(_p.c.seller_id == search.seller_id)
        # Bounds in whole cents, rounded inwards; beyond any price they filter nothing.
        low = None if search.min_price is None else _cents(search.min_price, ROUND_CEILING)
        high = None if search.max_price is None else _cents(search.max_price, ROUND_FLOOR)
        if priced_by_sales and sort in ("price", "-price") and not (search.q or "").strip():
            ids, total = _price_page_with_sales(
                conn, conditions, low, high, at, sort == "-price", page, search.category_id
            )
            return _products_page(conn, ids, total, page, at)
        if low is not None:
            conditions.append(price >= low)
        if high is not None:
            conditions.append(price <= high)

        score: Any = None
        if search.q is not None and search.q.strip():
            wanted = query_terms(search.q)
            if not wanted:
                return empty
            # A term nobody has means no match: answer before reading the others' postings.
            for term in wanted:
                if (
                    conn.execute(select(_t.c.product_id).where(_t.c.term == term).limit(1)).first()
                    is None
                ):
                    return empty
            matches = (
                select(_t.c.product_id, func.sum(_t.c.weight).label("score"))
                .where(_t.c.term.in_(wanted))
                .group_by(_t.c.product_id)
                .having(func.count() == len(wanted))
                .subquery()
            )
            source = source.join(matches, matches.c.product_id == _p.c.product_id)
            score = matches.c.score
        where = and_(*conditions)
        sorts: dict[str, list[Any]] = {
            "price": [price.asc(), _p.c.product_id],
            "-price": [price.desc(), _p.c.product_id.desc()],
            "newest": [_p.c.created_at.desc(), _p.c.product_id.desc()],
            "bestselling": [_p.c.units_sold.desc(), _p.c.created_at.desc(), _p.c.product_id.desc()],
            # Unrated products last (NULL sorts lowest on both backends).
            "rating": [
                _p.c.rating_x10.desc(),
                _p.c.review_count.desc(),
                _p.c.created_at.desc(),
                _p.c.product_id.desc(),
            ],
        }
        order = sorts.get(sort)
        if order is None:  # relevance
            order = (
                [score.desc(), _p.c.units_sold.desc(), _p.c.created_at.desc(), _p.c.product_id]
                if score is not None
                else [_p.c.created_at.desc(), _p.c.product_id.desc()]
            )
        ranked = select(_p.c.product_id).select_from(source).where(where).order_by(*order)
        ranked = ranked.limit(page.page_size).offset(page.offset)
        if score is None:
            # Filters alone: an index-only count, then an index walk that stops at the page.
            total = conn.execute(select(func.count()).select_from(source).where(where)).scalar_one()
            if (
                search.category_id is not None
                and sort in ("price", "-price")
                and not priced_by_sales
                and total <= CATEGORY_SORT_LIMIT
            ):
                # A category's prices come from its (category, listed, price) index alone and
                # are sorted (a top-N heap), 1-4 ms at 100,000 products. Walking the price
                # index instead took 40-60 ms: prices cluster by category, so the walk reads
                # (and looks up the category of) many rows before the page. ``_unindexed``
                # keeps the planner off the price index. Newest and bestselling still walk:
                # there the category index does not hold the sort key, and a lookup per
                # match cost more than the walk (bench/README.md, "Product search").
                key, *rest = order
                ranked = ranked.order_by(None).order_by(_unindexed(key), *rest)
            ids = list(conn.execute(ranked).scalars()) if total else []
        else:
            # Keywords: the term aggregation is the cost, so do it once; a window count gives
            # the number of matches along with the page.
            page_rows = conn.execute(ranked.add_columns(func.count().over().label("total"))).all()
            ids = [r.product_id for r in page_rows]
            if page_rows:
                total = page_rows[0].total
            else:
                total = (
                    0
                    if page.offset == 0
                    else conn.execute(
                        select(func.count()).select_from(source).where(where)
                    ).scalar_one()
                )
        return _products_page(conn, ids, total, page, at)


def _products_page(
    conn: Connection, ids: list[str], total: int, page: PageRequest, at: datetime
) -> dict[str, Any]:
    """The page of products ``ids`` (in that order), with their stock and sale in force."""
    if not ids:
        return paginated("products", [], total, page)
    rows = {
        r.product_id: r for r in conn.execute(_product_select().where(_p.c.product_id.in_(ids)))
    }
    stock = available_units(conn, ids)
    sales = sales_in_force(conn, ids, at)
    items = [product_view(rows[i], stock.get(i, 0), sales.get(i)) for i in ids if i in rows]
    return paginated("products", items, total, page)


def _price_page_with_sales(
    conn: Connection,
    conditions: list[Any],
    low: int | None,
    high: int | None,
    at: datetime,
    descending: bool,
    page: PageRequest,
    category_id: str | None,
) -> tuple[list[str], int]:
    """A price-sorted page while sales are in force, without giving up the price indexes: the
    products on sale (few: one row each in the sale windows in force) are read and priced
    apart, the others come from the regular-price index walk, and the two sorted runs merge.
    A ``CASE`` over every matching row instead made a catalogue-wide price sort at 100,000
    products ~8x slower (bench/README.md, "Sale prices and search")."""
    bounds: list[Any] = []
    if low is not None:
        bounds.append(_p.c.price_minor >= low)
    if high is not None:
        bounds.append(_p.c.price_minor <= high)
    # Read from the windows in force first (a planner starting from the products would probe
    # the windows once per listed product).
    in_force: dict[str, int] = {
        r.product_id: r.price_minor
        for r in conn.execute(select(_w.c.product_id, _w.c.price_minor).where(in_force_at(at)))
    }
    on_sale = [
        SimpleNamespace(product_id=r.product_id, regular=r.price_minor, price_minor=sale)
        for start in range(0, len(in_force), IN_CHUNK)
        for r in conn.execute(
            select(_p.c.product_id, _p.c.price_minor).where(
                _p.c.product_id.in_(list(in_force)[start : start + IN_CHUNK]), *conditions
            )
        )
        if (sale := in_force[r.product_id]) < r.price_minor
    ]
    sale_ids = {r.product_id for r in on_sale}
    # Products on sale that the regular-price query would count or walk, to take out.
    hidden = sum(
        1
        for r in on_sale
        if (low is None or r.regular >= low) and (high is None or r.regular <= high)
    )
    priced = [
        (r.price_minor, r.product_id)
        for r in on_sale
        if (low is None or r.price_minor >= low) and (high is None or r.price_minor <= high)
    ]
    where = and_(*conditions, *bounds)
    regular_total = conn.execute(select(func.count()).select_from(_p).where(where)).scalar_one()
    total = regular_total - hidden + len(priced)
    need = page.offset + page.page_size
    key = _p.c.price_minor.desc() if descending else _p.c.price_minor.asc()
    tie = _p.c.product_id.desc() if descending else _p.c.product_id.asc()
    if category_id is not None and regular_total <= CATEGORY_SORT_LIMIT:
        key = _unindexed(key)  # a category's prices from its own index (see search_products)
    walked = conn.execute(
        select(_p.c.price_minor, _p.c.product_id)
        .where(where)
        .order_by(key, tie)
        .limit(need + hidden)
    ).all()
    regular = [(r.price_minor, r.product_id) for r in walked if r.product_id not in sale_ids]
    merged = sorted([*regular[:need], *priced], reverse=descending)
    return [pid for _, pid in merged[page.offset : need]], total


def banned_keywords(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        value = conn.execute(
            select(_settings.c.value).where(_settings.c.key == "banned_keywords")
        ).scalar()
    return list(DEFAULT_BANNED_KEYWORDS) if value is None else list(json.loads(value))


# --- dates ----------------------------------------------------------------------------------
def taipei_day_start(day: date) -> datetime:
    """The UTC instant (naive, as stored) at which ``day`` begins in Asia/Taipei."""
    return datetime.combine(day, time(), TAIPEI).astimezone(UTC).replace(tzinfo=None)


def today_in_taipei(now: datetime) -> date:
    return local_date(now)


EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)


def check_dates(from_date: date | None, to_date: date | None) -> None:
    for name, day in (("fromDate", from_date), ("toDate", to_date)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise QueryError(f"{name} must be between {EARLIEST} and {LATEST}")
    if from_date is not None and to_date is not None and from_date > to_date:
        raise QueryError("fromDate must not be after toDate")


def date_range(
    from_date: date | None, to_date: date | None, now: datetime, default_days: int
) -> tuple[date, date]:
    check_dates(from_date, to_date)
    end = to_date or today_in_taipei(now)
    start = from_date or max(EARLIEST, end - timedelta(days=default_days - 1))
    if start > end:
        raise QueryError("fromDate must not be after toDate")
    return start, end


# --- price history ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Step:
    """One change of a product's price: a regular price change, or a sale window starting or
    ending. At one instant an end comes first and a start last (back-to-back sales)."""

    at: datetime
    rank: int  # 0 sale ends, 1 regular price, 2 sale starts
    position: int
    change: str
    price_minor: int  # the new regular price, or the sale's price
    actor: str | None


def _steps(
    conn: Connection, product_id: str, lower: datetime | None, upper: datetime, now: datetime
) -> list[_Step]:
    """The product's price steps before ``upper`` and ``now``: the last regular price before
    ``lower`` and every change from it on, and the sale windows reaching past ``lower``."""
    regular = [_h.c.product_id == product_id, _h.c.at < upper, _h.c.at <= now]
    rows: list[Row[Any]] = []
    if lower is not None:
        regular.append(_h.c.at >= lower)
        last = conn.execute(
            select(_h)
            .where(_h.c.product_id == product_id, _h.c.at < lower)
            .order_by(_h.c.at.desc(), _h.c.position.desc())
            .limit(1)
        ).first()
        rows = [] if last is None else [last]
    rows += conn.execute(
        select(_h).where(*regular).order_by(_h.c.at, _h.c.position).limit(MAX_HISTORY_POINTS + 1)
    ).all()
    steps = [_Step(r.at, 1, r.position, "PRICE", r.price_minor, r.actor) for r in rows]
    windows = [_w.c.product_id == product_id, _w.c.starts_at < upper, _w.c.starts_at <= now]
    if lower is not None:
        windows.append(_w.c.until > lower)
    for w in conn.execute(select(_w).where(*windows, _w.c.until > _w.c.starts_at)):
        steps.append(_Step(w.starts_at, 2, w.position, "SALE_START", w.price_minor, w.created_by))
        if w.until <= now and w.until < upper:
            by = w.created_by if w.cancelled_at is None else w.cancelled_by
            steps.append(_Step(w.until, 0, w.position, "SALE_END", w.price_minor, by))
    return sorted(steps, key=lambda s: (s.at, s.rank, s.position))


def _timeline(
    conn: Connection, product_id: str, lower: datetime | None, upper: datetime, now: datetime
) -> tuple[tuple[int, dict[str, Any]] | None, list[tuple[int, dict[str, Any]]]]:
    """(price paid, point) as it stood just before ``lower`` (None: not listed yet), and one
    for every instant in [``lower``, ``upper``) up to ``now`` at which the price changed. A
    point names the price paid from then on, the regular price, and the sale price while a
    sale is in force; changes at one instant (a sale handing over to the next) make one point."""
    before: tuple[int, dict[str, Any]] | None = None
    inside: list[tuple[int, dict[str, Any]]] = []
    regular: int | None = None
    sale: int | None = None
    paid: int | None = None
    instant: datetime | None = None
    paid_before: int | None = None  # the price paid just before ``instant``
    for step in _steps(conn, product_id, lower, upper, now):
        if step.change == "PRICE":
            regular = step.price_minor
        else:
            sale = step.price_minor if step.change == "SALE_START" else None
        if regular is None:
            continue  # a sale cannot start before the listing: nothing to show yet
        if step.at != instant:
            instant, paid_before = step.at, paid
        price = regular if sale is None else min(sale, regular)
        point = {
            "at": iso(step.at),
            "price": money(from_minor(price)),
            "previousPrice": None if paid_before is None else money(from_minor(paid_before)),
            "regularPrice": money(from_minor(regular)),
            "salePrice": money(from_minor(price)) if price < regular else None,
            "change": step.change,
            "changedBy": step.actor,
        }
        paid = price
        if lower is not None and step.at < lower:
            before = (price, point)
        elif inside and inside[-1][1]["at"] == point["at"]:
            inside[-1] = (price, point)
        else:
            inside.append((price, point))
    return before, inside


def price_history(
    engine: Engine,
    product_id: str,
    from_date: date | None,
    to_date: date | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every change of the price paid, by regular price changes and sale windows, up to now."""
    check_dates(from_date, to_date)
    lower = None if from_date is None else taipei_day_start(from_date)
    upper = taipei_day_start((to_date or LATEST) + timedelta(days=1))
    with engine.connect() as conn:
        _, inside = _timeline(conn, product_id, lower, upper, naive_now(now))
    points = [point for _, point in inside[:MAX_HISTORY_POINTS]]
    return {
        "productId": product_id,
        "points": points,
        "truncated": len(inside) > MAX_HISTORY_POINTS,
    }


# --- category price trend -------------------------------------------------------------------
def calendar_periods(start: date, end: date, group_by: str) -> list[tuple[str, date, date]]:
    """(label, first day, day after the last) for each period touching [start, end]."""
    periods: list[tuple[str, date, date]] = []
    if group_by == "DAY":
        first = start
    elif group_by == "WEEK":
        first = start - timedelta(days=start.weekday())
    else:
        first = start.replace(day=1)
    current = first
    while current <= end:
        if group_by == "DAY":
            following = current + timedelta(days=1)
            label = current.isoformat()
        elif group_by == "WEEK":
            following = current + timedelta(days=7)
            year, week, _ = current.isocalendar()
            label = f"{year}-W{week:02d}"
        else:
            following = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
            label = f"{current.year}-{current.month:02d}"
        periods.append((label, current, following))
        if len(periods) > MAX_PERIODS:
            raise QueryError(
                f"too many periods (at most {MAX_PERIODS}); use a wider groupBy or a shorter range"
            )
        current = following
    return periods


class _PriceBag:
    """Prices in effect: count, sum, min and max under additions and removals."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.live: dict[int, int] = defaultdict(int)
        self.low: list[int] = []
        self.high: list[int] = []

    def add(self, price: int) -> None:
        self.count += 1
        self.total += price
        self.live[price] += 1
        heapq.heappush(self.low, price)
        heapq.heappush(self.high, -price)

    def remove(self, price: int) -> None:
        self.count -= 1
        self.total -= price
        self.live[price] -= 1

    def minimum(self) -> int:
        while self.live[self.low[0]] == 0:
            heapq.heappop(self.low)
        return self.low[0]

    def maximum(self) -> int:
        while self.live[-self.high[0]] == 0:
            heapq.heappop(self.high)
        return -self.high[0]


def _with_sales(
    intervals: Sequence[Any], sales: Sequence[Any]
) -> list[tuple[int, datetime, datetime]]:
    """Regular price intervals as (price paid, from, to): the stretches a sale covered are cut
    out and priced at the sale price (when below the regular price)."""
    windows: dict[str, list[Any]] = defaultdict(list)
    for w in sorted(sales, key=lambda w: w.starts_at):
        windows[w.product_id].append(w)
    pieces: list[tuple[int, datetime, datetime]] = []
    for r in intervals:
        cursor = r.valid_from
        for w in windows.get(r.product_id, ()):
            start, end = max(w.starts_at, r.valid_from), min(w.until, r.valid_to)
            if start >= end or w.price_minor >= r.price_minor:
                continue
            if start > cursor:
                pieces.append((r.price_minor, cursor, start))
            pieces.append((w.price_minor, start, end))
            cursor = end
        if cursor < r.valid_to:
            pieces.append((r.price_minor, cursor, r.valid_to))
    return pieces


def price_trend(
    engine: Engine,
    category_id: str,
    from_date: date | None,
    to_date: date | None,
    group_by: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Per period: average, min and max price of the category's listed products (subcategories
    included) and how many there were, as at the end of the period (or now, for the current one);
    a product on sale then counts at its sale price."""
    if group_by not in GROUPINGS:
        raise QueryError(f"groupBy must be one of {', '.join(GROUPINGS)}")
    default_days = {"DAY": 30, "WEEK": 84, "MONTH": 365}[group_by]
    start, end = date_range(from_date, to_date, now, default_days)
    periods = calendar_periods(start, end, group_by)
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    instants = [min(taipei_day_start(following), now_naive) for _, _, following in periods]
    with engine.connect() as conn:
        subtree = _subtree(conn, category_id)
        if subtree is None:
            return None
        last = max(instants)
        # Only intervals ending after the first period starts: one range of the
        # (category_id, valid_to) index, however long the category's history.
        first = taipei_day_start(periods[0][1])
        # Only products the public may see: a seller whose listing rights are suspended, or
        # whose account is disabled, drops out of the trend (all its history) while hidden.
        rows = conn.execute(
            select(_i.c.product_id, _i.c.price_minor, _i.c.valid_from, _i.c.valid_to)
            .join(_p, _p.c.product_id == _i.c.product_id)
            .where(
                _i.c.category_id.in_(subtree),
                _i.c.valid_to >= first,
                _i.c.valid_from < last,
                _p.c.seller_visible == true(),
            )
        ).all()
        # Sale windows are few beside price intervals: those of the period, for any product.
        sales = conn.execute(
            select(_w.c.product_id, _w.c.price_minor, _w.c.starts_at, _w.c.until).where(
                _w.c.until > first, _w.c.starts_at < last, _w.c.until > _w.c.starts_at
            )
        ).all()
    pieces = _with_sales(rows, sales)
    # Sweep: an interval counts at instant T when valid_from < T <= valid_to.
    starts = sorted((start, price) for price, start, _ in pieces)
    ends = sorted((end, price) for price, _, end in pieces if end != OPEN_END)
    bag = _PriceBag()
    si = ei = 0
    series = []
    for (label, first_day, _), instant in zip(periods, instants):
        if taipei_day_start(first_day) > now_naive:
            break  # the future has no prices yet
        while si < len(starts) and starts[si][0] < instant:
            bag.add(starts[si][1])
            si += 1
        while ei < len(ends) and ends[ei][0] < instant:
            bag.remove(ends[ei][1])
            ei += 1
        point: dict[str, Any] = {
            "period": label,
            "periodStart": first_day.isoformat(),
            "products": bag.count,
        }
        if bag.count:
            point.update(
                average=money(quantize(Decimal(bag.total) / bag.count / 100)),
                min=money(from_minor(bag.minimum())),
                max=money(from_minor(bag.maximum())),
            )
        else:
            point.update(average=None, min=None, max=None)
        series.append(point)
    return {
        "categoryId": category_id,
        "groupBy": group_by,
        "fromDate": start.isoformat(),
        "toDate": end.isoformat(),
        "series": series,
    }


# --- comparison -----------------------------------------------------------------------------
def compare_prices(
    engine: Engine,
    products: list[dict[str, Any]],
    from_date: date | None,
    to_date: date | None,
    now: datetime,
) -> dict[str, Any]:
    """Each product's price over the period: the price in effect at its start, every change in
    it, and a summary (start, end, min, max, change in percent)."""
    start, end = date_range(from_date, to_date, now, 90)
    lower, upper = taipei_day_start(start), taipei_day_start(end + timedelta(days=1))
    result = []
    with engine.connect() as conn:
        for product in products:
            pid = product["productId"]
            before, inside = _timeline(conn, pid, lower, upper, naive_now(now))
            steps = [] if before is None else [(before[0], {**before[1], "at": iso(lower)})]
            steps += inside[:MAX_HISTORY_POINTS]
            points = [point for _, point in steps]
            prices = [price for price, _ in steps]
            summary: dict[str, Any] = {
                "startPrice": None,
                "endPrice": None,
                "min": None,
                "max": None,
                "changePercent": None,
            }
            if prices:
                first, final = prices[0], prices[-1]
                summary = {
                    "startPrice": money(from_minor(first)),
                    "endPrice": money(from_minor(final)),
                    "min": money(from_minor(min(prices))),
                    "max": money(from_minor(max(prices))),
                    "changePercent": float(quantize(Decimal(final - first) * 100 / first)),
                }
            result.append(
                {
                    "productId": pid,
                    "name": product["name"],
                    "currentPrice": product["price"],
                    "points": points,
                    **summary,
                }
            )
    return {"fromDate": start.isoformat(), "toDate": end.isoformat(), "products": result}


# --- best sellers ---------------------------------------------------------------------------
def bestsellers(
    engine: Engine, category_id: str | None, days: int, limit: int, now: datetime
) -> dict[str, Any]:
    """Units sold in paid orders over the last ``days`` Taipei days, today included."""
    since = (today_in_taipei(now) - timedelta(days=days - 1)).isoformat()
    with engine.connect() as conn:
        units = func.sum(_daily.c.units).label("units")
        query = (
            select(_daily.c.product_id, units)
            .select_from(_daily.join(_p, _p.c.product_id == _daily.c.product_id))
            .where(_daily.c.day >= since, _LISTED)
            .group_by(_daily.c.product_id)
            .having(func.sum(_daily.c.units) > 0)
            .order_by(units.desc(), _daily.c.product_id)
            .limit(limit)
        )
        if category_id is not None:
            subtree = _subtree(conn, category_id)
            if subtree is None:
                return {"categoryId": category_id, "days": days, "products": []}
            query = query.where(_p.c.category_id.in_(subtree))
        ranked = conn.execute(query).all()
        ids = [r.product_id for r in ranked]
        rows = {
            r.product_id: r for r in conn.execute(_product_select().where(_p.c.product_id.in_(ids)))
        }
        sales = sales_in_force(conn, ids, naive_now(now))
    products = []
    for rank, r in enumerate(ranked, start=1):
        row = rows[r.product_id]
        products.append(
            {
                "rank": rank,
                "productId": r.product_id,
                "name": row.name,
                "unitsSold": int(r.units),
                **price_fields(row.price_minor, sales.get(r.product_id)),
                "sellerId": row.seller_id,
                "sellerName": row.shop_name,
                "categoryId": row.category_id,
            }
        )
    return {"categoryId": category_id, "days": days, "products": products}
