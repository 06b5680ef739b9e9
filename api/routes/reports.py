"""Reports (seeds/003 ``/reports/*`` under /api/sales) and analytics (/api/analytics/*).

Admins see the whole platform, or one seller with ``sellerId=<id>``; a seller sees its own
items only, and must say so with ``sellerId=me`` (anything wider is 403); buyers get 403.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from aggregates.inventory import Inventory
from aggregates.taipei import local_date
from api.auth import Principal, SellerOrAdmin, require_role
from api.deps import ContainerDep, PageDep, path_id, reads, run_command
from api.errors import ApiError
from api.openapi import documented, examples
from api.report_models import (
    Conversion,
    Customers,
    InventoryHealth,
    LowStockThreshold,
    ProductSales,
    SalesAnalytics,
    SalesSummary,
    Shipping,
)
from api.schemas import RequestBody
from commands.inventory import SetLowStockThreshold
from queries import analytics as q
from queries.catalog import QueryError

router = APIRouter()
GroupBy = Literal["DAY", "WEEK", "MONTH"]
SellerParam = Annotated[
    str | None,
    Query(
        alias="sellerId",
        max_length=64,
        description="`me` (sellers must send it); admins: a seller's id, or none for all",
    ),
]
FromDate = Annotated[date, Query(alias="fromDate", description="first Asia/Taipei day")]
ToDate = Annotated[date, Query(alias="toDate", description="last Asia/Taipei day (inclusive)")]
OptionalFrom = Annotated[date | None, Query(alias="fromDate")]
OptionalTo = Annotated[date | None, Query(alias="toDate")]
Reader = Annotated[Principal, Depends(require_role("admin", "seller"))]
DEFAULT_DAYS = 30
_FORBIDDEN = {403: "FORBIDDEN"}


def scope_of(principal: Principal, seller_id: str | None) -> str:
    """The seller whose items are counted ("" for all), or 403."""
    if principal.has_role("admin"):
        if seller_id is None:
            return ""
        if seller_id == "me":
            return principal.account_id
        try:
            return str(UUID(seller_id))
        except ValueError:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "sellerId must be `me` or a seller's id",
                {"field": "sellerId"},
            ) from None
    if seller_id in ("me", principal.account_id):
        return principal.account_id
    raise ApiError(
        403,
        "FORBIDDEN",
        "a seller reads its own figures only: send sellerId=me",
        {"reason": "SELLER_SCOPE_REQUIRED"},
    )


def _run(produce: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return produce()
    except QueryError as exc:
        raise ApiError(400, "VALIDATION_ERROR", str(exc)) from None


def _range(start: date | None, end: date | None) -> tuple[date, date]:
    last = end or local_date(datetime.now(UTC))
    first = start or last - timedelta(days=DEFAULT_DAYS - 1)
    return first, last


# --- seeds/003 reports ---------------------------------------------------------------------
@router.get(
    "/api/sales/reports/sales-summary",
    tags=["reports"],
    dependencies=[Depends(reads("sales_report", "catalog"))],
    response_model=None,
    responses=documented(SalesSummary, errors=_FORBIDDEN),
)
def sales_summary(
    principal: Reader,
    container: ContainerDep,
    from_date: FromDate,
    to_date: ToDate,
    seller_id: SellerParam = None,
    group_by: Annotated[GroupBy, Query(alias="groupBy")] = "DAY",
    include_details: Annotated[bool, Query(alias="includeDetails")] = False,
) -> dict[str, Any]:
    """Sales in a period: totals, per day/week/month, best sellers (seeds/003)."""
    scope = scope_of(principal, seller_id)
    return _run(
        lambda: q.sales_summary(
            container.engine, scope, from_date, to_date, group_by, include_details
        )
    )


@router.get(
    "/api/sales/reports/product-sales",
    tags=["reports"],
    dependencies=[Depends(reads("sales_report", "catalog"))],
    response_model=None,
    responses=documented(ProductSales, errors=_FORBIDDEN),
)
def product_sales(
    principal: Reader,
    container: ContainerDep,
    from_date: FromDate,
    to_date: ToDate,
    seller_id: SellerParam = None,
    category_id: Annotated[str | None, Query(alias="categoryId", max_length=64)] = None,
    product_id: Annotated[str | None, Query(alias="productId", max_length=64)] = None,
    sort_by: Annotated[Literal["quantity", "revenue"], Query(alias="sortBy")] = "quantity",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Units and revenue per product in a period, and per category (seeds/003)."""
    scope = scope_of(principal, seller_id)
    return _run(
        lambda: q.product_sales(
            container.engine, scope, from_date, to_date, category_id, product_id, sort_by, limit
        )
    )


# --- analytics -----------------------------------------------------------------------------
@router.get(
    "/api/analytics/sales",
    tags=["analytics"],
    dependencies=[Depends(reads("sales_report", "catalog"))],
    response_model=None,
    responses=documented(SalesAnalytics, errors=_FORBIDDEN),
)
def sales_analytics(
    principal: Reader,
    container: ContainerDep,
    seller_id: SellerParam = None,
    from_date: OptionalFrom = None,
    to_date: OptionalTo = None,
    group_by: Annotated[GroupBy, Query(alias="groupBy")] = "DAY",
) -> dict[str, Any]:
    """Revenue, orders, units and order value by period, category and seller, with the
    previous period of the same length (default: the last 30 days)."""
    scope = scope_of(principal, seller_id)
    start, end = _range(from_date, to_date)
    return _run(lambda: q.sales_analytics(container.engine, scope, start, end, group_by))


@router.get(
    "/api/analytics/inventory",
    tags=["analytics"],
    dependencies=[Depends(reads("inventory", "sales_report", "stock_alerts", "catalog"))],
    response_model=None,
    responses=documented(InventoryHealth, errors=_FORBIDDEN),
)
def inventory_analytics(
    principal: Reader, container: ContainerDep, page: PageDep, seller_id: SellerParam = None
) -> dict[str, Any]:
    """Stock per product and warehouse with units sold in 7 and 30 days, days of cover, the
    low-stock list and dead stock (no sale in SHOPLEDGER_DEAD_STOCK_DAYS)."""
    scope = scope_of(principal, seller_id)
    settings = container.settings
    return q.inventory_health(
        container.engine,
        scope,
        local_date(datetime.now(UTC)),
        settings.low_stock_threshold,
        settings.dead_stock_days,
        page,
    )


@router.get(
    "/api/analytics/conversion",
    tags=["analytics"],
    dependencies=[Depends(reads("funnel"))],
    response_model=None,
    responses=documented(Conversion, errors=_FORBIDDEN),
)
def conversion(
    principal: Reader,
    container: ContainerDep,
    seller_id: SellerParam = None,
    from_date: OptionalFrom = None,
    to_date: OptionalTo = None,
    group_by: Annotated[GroupBy, Query(alias="groupBy")] = "DAY",
) -> dict[str, Any]:
    """The funnel: carts started, checkouts, paid, delivered; expired and cancelled shares."""
    scope = scope_of(principal, seller_id)
    start, end = _range(from_date, to_date)
    return _run(lambda: q.conversion(container.engine, scope, start, end, group_by))


@router.get(
    "/api/analytics/shipping",
    tags=["analytics"],
    dependencies=[Depends(reads("shipping_perf", "catalog"))],
    response_model=None,
    responses=documented(Shipping, errors=_FORBIDDEN),
)
def shipping(
    principal: Reader,
    container: ContainerDep,
    seller_id: SellerParam = None,
    from_date: OptionalFrom = None,
    to_date: OptionalTo = None,
    by_seller: Annotated[bool, Query(alias="bySeller")] = False,
) -> dict[str, Any]:
    """Time to first shipment and to delivery (p50/p90 hours), share shipped within 7 days,
    reminders and auto-delivered share, for the orders paid in the period."""
    scope = scope_of(principal, seller_id)
    start, end = _range(from_date, to_date)
    return _run(lambda: q.shipping(container.engine, scope, start, end, by_seller))


@router.get(
    "/api/analytics/customers",
    tags=["analytics"],
    dependencies=[Depends(reads("sales_report", "accounts"))],
    response_model=None,
    responses=documented(Customers, errors=_FORBIDDEN),
)
def customers(
    principal: Reader, container: ContainerDep, page: PageDep, seller_id: SellerParam = None
) -> dict[str, Any]:
    """Buyers by spend: orders, spend, first and last order (customer records)."""
    scope = scope_of(principal, seller_id)
    return q.top_customers(container.engine, scope, page)


class ThresholdBody(RequestBody):
    model_config = examples({"threshold": 3}, {"threshold": None})

    threshold: int | None = Field(
        default=None, ge=0, le=1_000_000, description="units; null: the platform default"
    )


@router.put(
    "/api/inventory/stock/{product_id}/low-stock-threshold",
    tags=["inventory"],
    response_model=None,
    responses=documented(LowStockThreshold, errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND"}),
)
def set_threshold(
    product_id: str,
    body: ThresholdBody,
    request: Request,
    principal: SellerOrAdmin,
    container: ContainerDep,
) -> JSONResponse:
    """Alert the seller (LOW_STOCK) when this product's available stock falls to this many
    units; null: the platform default (SHOPLEDGER_LOW_STOCK_THRESHOLD)."""
    pid = path_id(product_id, "PRODUCT_NOT_FOUND", "product")
    default = container.settings.low_stock_threshold
    command = SetLowStockThreshold(
        pid, principal.account_id, principal.has_role("admin"), body.threshold, default
    )

    def respond(inventory: Inventory) -> tuple[int, dict[str, Any]]:
        return 200, {
            "productId": str(pid),
            "lowStockThreshold": inventory.low_stock_threshold,
            "effectiveThreshold": inventory.threshold(default),
            "available": inventory.available,
            "low": inventory.low_stock_flagged,
        }

    return run_command(request, container, command, respond, body)
