"""The buyer's cart, coupons, and notifications."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field, StrictInt

from aggregates.coupons import Coupon, normalize_code
from aggregates.money import money
from api.auth import CurrentUser, SellerOrAdmin
from api.deps import ContainerDep, PageDep, execute, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import Cart, NotificationList, NotificationRead
from api.responses import Coupon as CouponView
from api.routes.catalog import canonical_id
from api.schemas import RequestBody
from api.validation import Amount
from commands.orders import (
    AddToCart,
    ChangeCartItem,
    CreateCoupon,
    MarkNotificationRead,
    RemoveCartItem,
)
from queries import carts as q
from queries import notifications as nq

router = APIRouter(tags=["cart"])
READS_CART = [Depends(reads("carts", "catalog", "inventory"))]


class CartItemBody(RequestBody):
    model_config = examples({"productId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10", "quantity": 2})

    product_id: str = Field(max_length=64)
    quantity: StrictInt


class QuantityBody(RequestBody):
    model_config = examples({"quantity": 3})

    quantity: StrictInt


class CouponBody(RequestBody):
    model_config = examples(
        {
            "code": "NEWYEAR2027",
            "type": "PERCENT",
            "value": 10,
            "maxDiscount": 200,
            "minSpend": 1000,
            "startsAt": "2027-01-01T00:00:00+08:00",
            "endsAt": "2027-02-15T23:59:59+08:00",
            "usageLimit": 500,
            "perUserLimit": 1,
        },
        {"code": "TAIPEI100", "type": "FIXED", "value": 100, "minSpend": 800},
    )

    code: str = Field(max_length=64)
    type: Literal["FIXED", "PERCENT"]
    value: Amount = Field(description="NT$ off (FIXED) or the percentage off (PERCENT)")
    max_discount: Amount | None = None
    min_spend: Amount | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit: StrictInt | None = None
    per_user_limit: StrictInt | None = None
    seller_id: str | None = Field(default=None, max_length=64)
    category_id: str | None = Field(default=None, max_length=64)


def _cart_response(container: Any, outcome: Any) -> Response:
    """The cart the command just saved, priced from the catalog (no wait for the carts view)."""
    lines = list(outcome.result.items.items())
    view = q.priced_cart(container.engine, lines, container.bus.clock())
    if any(item["name"] is None for item in view["items"]) and outcome.position is not None:
        # A product newer than the catalog view (just listed): wait for the catalog, once.
        container.wait_for(
            ("catalog", "inventory"),
            outcome.position,
            container.settings.min_position_wait.total_seconds(),
        )
        view = q.priced_cart(container.engine, lines, container.bus.clock())
    return with_position(JSONResponse(view), outcome.position)


@router.get("/api/cart", dependencies=READS_CART, response_model=None, responses=documented(Cart))
def get_cart(principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """The caller's cart with current prices and subtotal.

    A line on sale is priced at its sale price and shows its regular price beside it.
    Lines no longer for sale are marked ``available: false`` and left out of the subtotal."""
    return q.cart_view(container.engine, principal.account_id, container.bus.clock())


@router.post(
    "/api/cart/items",
    status_code=201,
    response_model=None,
    responses=documented(
        Cart, status=201, errors={404: "PRODUCT_NOT_FOUND", 422: "PRODUCT_UNAVAILABLE"}
    ),
    openapi_extra=IDEMPOTENT,
)
def add_item(
    body: CartItemBody, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Add units of a product to the cart.

    They come on top of any units of it already there."""
    command = AddToCart(principal.account_id, canonical_id(body.product_id) or "", body.quantity)
    if request.headers.get("Idempotency-Key") is not None:
        return run_command(
            request,
            container,
            command,
            lambda cart: (
                201,
                q.priced_cart(container.engine, list(cart.items.items()), container.bus.clock()),
            ),
            body,
        )
    outcome = execute(request, container, command)
    response = _cart_response(container, outcome)
    response.status_code = 201
    return response


@router.put(
    "/api/cart/items/{product_id}",
    response_model=None,
    responses=documented(Cart, errors={404: "NOT_FOUND"}),
)
def change_item(
    product_id: str,
    body: QuantityBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Set the quantity of a product already in the cart."""
    outcome = execute(
        request,
        container,
        ChangeCartItem(principal.account_id, canonical_id(product_id) or "", body.quantity),
    )
    return _cart_response(container, outcome)


@router.delete(
    "/api/cart/items/{product_id}",
    response_model=None,
    responses=documented(Cart, errors={404: "NOT_FOUND"}),
)
def remove_item(
    product_id: str, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Take a product out of the cart."""
    outcome = execute(
        request, container, RemoveCartItem(principal.account_id, canonical_id(product_id) or "")
    )
    return _cart_response(container, outcome)


# --- coupons --------------------------------------------------------------------------------
def coupon_of(c: Coupon) -> dict[str, Any]:
    return {
        "code": c.code,
        "type": c.kind,
        "value": float(c.value) if c.kind == "PERCENT" else money(c.value),
        "maxDiscount": None if c.max_discount is None else money(c.max_discount),
        "minSpend": money(c.min_spend),
        "startsAt": None if c.starts_at is None else c.starts_at.isoformat(),
        "endsAt": None if c.ends_at is None else c.ends_at.isoformat(),
        "usageLimit": c.usage_limit,
        "perUserLimit": c.per_user_limit,
        "used": 0,
        "remaining": c.usage_limit,
        "sellerId": c.seller_id,
        "categoryId": c.category_id,
    }


@router.post(
    "/api/coupons",
    status_code=201,
    tags=["coupons"],
    response_model=None,
    responses=documented(CouponView, status=201, errors={403: "FORBIDDEN", 409: "CONFLICT"}),
    openapi_extra=IDEMPOTENT,
)
def create_coupon(
    body: CouponBody, principal: SellerOrAdmin, request: Request, container: ContainerDep
) -> Response:
    """Create a coupon.

    Admins for anything, sellers for their own products only."""
    command = CreateCoupon(
        actor_id=principal.account_id,
        is_admin=principal.has_role("admin"),
        code=body.code,
        kind=body.type,
        value=body.value,
        max_discount=body.max_discount,
        min_spend=body.min_spend,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        usage_limit=body.usage_limit,
        per_user_limit=body.per_user_limit,
        seller_id=canonical_id(body.seller_id),
        category_id=canonical_id(body.category_id),
    )
    return run_command(request, container, command, lambda c: (201, coupon_of(c)), body)


@router.get(
    "/api/coupons/{code}",
    dependencies=[Depends(reads("coupons"))],
    tags=["coupons"],
    response_model=None,
    responses=documented(CouponView, errors={404: "NOT_FOUND"}),
)
def get_coupon(code: str, _: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """A coupon's terms and how many uses remain."""
    view = q.coupon_view(container.engine, normalize_code(code))
    if view is None:
        raise ApiError(404, "NOT_FOUND", "no coupon has that code")
    return view


# --- notifications --------------------------------------------------------------------------
@router.get(
    "/api/notifications",
    dependencies=[Depends(reads("notifications"))],
    tags=["notifications"],
    response_model=None,
    responses=documented(NotificationList),
)
def notifications(
    principal: CurrentUser,
    container: ContainerDep,
    page: PageDep,
    unread: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """The caller's notifications, newest first.

    ``unread=true``: only those not yet read."""
    return nq.list_notifications(container.engine, principal.account_id, unread, page)


@router.post(
    "/api/notifications/{notification_id}/read",
    tags=["notifications"],
    response_model=None,
    responses=documented(NotificationRead, errors={404: "NOT_FOUND"}),
)
def mark_read(
    notification_id: str, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Mark one of the caller's notifications read."""
    if nq.owner_of(container.engine, notification_id) != principal.account_id:
        raise ApiError(404, "NOT_FOUND", "notification not found")
    outcome = execute(
        request, container, MarkNotificationRead(principal.account_id, notification_id)
    )
    return with_position(
        JSONResponse({"notificationId": notification_id, "read": True}), outcome.position
    )
