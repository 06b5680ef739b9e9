"""Sale prices (seeds/000 促銷價格): a seller puts one of its products on sale for a window of
time, lists its sales and cancels them. While a sale is in force, search, product detail, the
cart and checkout use its price (queries/catalog.py, commands/orders.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from aggregates.catalog import Product
from aggregates.money import money, parse_price
from aggregates.promotions import SaleWindow
from api.auth import CurrentUser, SellerUser
from api.deps import ContainerDep, PageDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import SalePrice, SalePriceList
from api.routes.catalog import MoneyBody, may_see_hidden
from api.schemas import RequestBody
from commands.promotions import CancelSale, ScheduleSale
from queries import catalog as catalog_q
from queries import promotions as q

router = APIRouter(tags=["catalog"])
PRODUCT_ERRORS = {403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND"}


class SalePriceBody(RequestBody):
    model_config = examples(
        {
            "salePrice": {"value": 499, "currency": "TWD"},
            "startsAt": "2027-01-20T00:00:00+08:00",
            "endsAt": "2027-02-05T00:00:00+08:00",
        },
        {"salePrice": {"value": 550, "currency": "TWD"}, "endsAt": "2027-01-01T00:00:00+08:00"},
    )

    sale_price: MoneyBody
    starts_at: AwareDatetime | None = Field(
        default=None, description="default (and anything in the past): now"
    )
    ends_at: AwareDatetime


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def sale_document(done: tuple[Product, SaleWindow], now: datetime) -> dict[str, Any]:
    """A sale straight from the product a command just changed."""
    product, window = done
    return {
        "saleId": window.sale_id,
        "productId": str(product.id),
        "salePrice": money(window.price),
        "regularPrice": money(product.price),
        "startsAt": _iso(window.starts_at),
        "endsAt": _iso(window.ends_at),
        "status": window.status(now),
        "cancelledAt": _iso(window.cancelled_at),
        "createdAt": _iso(window.created_at),
    }


@router.post(
    "/api/catalog/products/{product_id}/sale-prices",
    status_code=201,
    response_model=None,
    responses=documented(
        SalePrice,
        status=201,
        errors={400: "VALIDATION_ERROR", **PRODUCT_ERRORS, 409: "CONFLICT"},
    ),
    openapi_extra=IDEMPOTENT,
)
def schedule_sale(
    product_id: str,
    body: SalePriceBody,
    principal: SellerUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Put one of the caller's products on sale from startsAt (default now) until endsAt.

    The sale price must be above 0 and below the regular price, in TWD. A product's sales
    never overlap (409 CONFLICT, reason SALE_OVERLAP). Another seller's product is 404."""
    command = ScheduleSale(
        product_id=path_id(product_id, "PRODUCT_NOT_FOUND", "product"),
        seller_id=principal.account_id,
        sale_id=uuid4(),
        price=parse_price(body.sale_price.value, body.sale_price.currency, "salePrice"),
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    return run_command(
        request,
        container,
        command,
        lambda done: (201, sale_document(done, container.bus.clock())),
        body,
    )


@router.get(
    "/api/catalog/products/{product_id}/sale-prices",
    dependencies=[Depends(reads("catalog"))],
    response_model=None,
    responses=documented(SalePriceList, errors={404: "PRODUCT_NOT_FOUND"}),
)
def list_sales(
    product_id: str, principal: CurrentUser, page: PageDep, container: ContainerDep
) -> dict[str, Any]:
    """A product's sales, latest start first (its seller, or an admin).

    Status at the time of asking: SCHEDULED, ACTIVE, ENDED or CANCELLED."""
    pid = str(path_id(product_id, "PRODUCT_NOT_FOUND", "product"))
    seller_id = catalog_q.seller_of(container.engine, pid)
    if seller_id is None or not may_see_hidden(principal, seller_id):
        raise ApiError(404, "PRODUCT_NOT_FOUND", "product not found", {"productId": product_id})
    return q.sale_prices(container.engine, pid, page, container.bus.clock())


@router.delete(
    "/api/catalog/products/{product_id}/sale-prices/{sale_id}",
    response_model=None,
    responses=documented(
        SalePrice,
        errors={**PRODUCT_ERRORS, 404: ("PRODUCT_NOT_FOUND", "NOT_FOUND"), 409: "CONFLICT"},
    ),
)
def cancel_sale(
    product_id: str,
    sale_id: str,
    principal: SellerUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Cancel a sale (its product's seller): a running sale ends now, a scheduled one never
    begins. An ended or already cancelled sale is 409."""
    command = CancelSale(
        product_id=path_id(product_id, "PRODUCT_NOT_FOUND", "product"),
        seller_id=principal.account_id,
        sale_id=str(path_id(sale_id, "NOT_FOUND", "sale")),
    )
    outcome = execute(request, container, command)
    document = sale_document(outcome.result, container.bus.clock())
    return with_position(JSONResponse(document), outcome.position)
