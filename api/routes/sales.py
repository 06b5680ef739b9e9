"""Sales (seeds/003 under /api/sales): checkout, order lists and details, audit views
(timeline, asOf, version), status changes and cancellation. Payments and refunds are in
payments.py, fulfilment and invoices in fulfilment.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args
from uuid import uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field, StrictBool, StrictInt

from aggregates.money import money
from aggregates.orders import PAYMENT_METHODS, STATUSES
from api.auth import AdminUser, CurrentUser, Principal, VerifiedUser
from api.deps import ContainerDep, PageDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import Order, OrderCancelled, OrderList, OrderStatusChanged, OrderTimeline
from api.routes.payments import settle_refund_with_gateway, signed_payment_url
from api.schemas import Address, RequestBody
from api.validation import MultilineText
from commands.cancellation import CancelUnits
from commands.orders import CancelOrder, PlaceOrder, UpdateOrderStatus
from queries import orders as q
from queries.catalog import QueryError
from shopledger.bootstrap import Container
from shopledger.settings import ShippingMethod

router = APIRouter(tags=["sales"])
READS_ORDERS = [Depends(reads("orders"))]
PaymentMethod = Literal["CREDIT_CARD", "DEBIT_CARD", "BANK_TRANSFER", "MOBILE_PAYMENT", "COD"]
OrderStatus = Literal["CREATED", "PAID", "PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED"]
assert set(get_args(PaymentMethod)) == set(PAYMENT_METHODS)
assert set(get_args(OrderStatus)) == set(STATUSES)


class CheckoutBody(RequestBody):
    model_config = examples(
        {
            "shippingAddress": {
                "name": "王小明",
                "phone": "0912-345-678",
                "street": "信義路五段7號",
                "city": "台北市",
                "district": "信義區",
                "postalCode": "110",
                "country": "TW",
            },
            "billingAddressSameAsShipping": True,
            "paymentMethod": "CREDIT_CARD",
            "shippingMethod": "STANDARD",
            "notes": "請於平日白天送達",
            "couponCode": "TAIPEI100",
        },
        {
            "shippingAddressId": "2e4f6a8b-0c1d-4e3f-8a5b-7c9d1e2f3a4b",
            "paymentMethod": "BANK_TRANSFER",
            "shippingMethod": "EXPRESS",
        },
    )

    shipping_address: Address | None = None
    #: Extension: one of the caller's saved addresses instead of ``shippingAddress``.
    shipping_address_id: str | None = Field(default=None, max_length=64)
    billing_address_same_as_shipping: StrictBool = True
    billing_address: Address | None = None
    payment_method: PaymentMethod
    shipping_method: ShippingMethod
    notes: MultilineText = Field(default="", max_length=1000)
    coupon_code: str | None = Field(default=None, max_length=64)
    #: Extension: loyalty points to spend (1 point = NT$1, at most 20% of the subtotal by
    #: default); never together with ``couponCode``.
    points_to_redeem: int = Field(default=0, ge=0, le=100_000, strict=True)


class StatusBody(RequestBody):
    model_config = examples({"status": "PROCESSING", "notes": "已通知倉庫備貨"})

    status: str = Field(max_length=20, json_schema_extra={"enum": list(get_args(OrderStatus))})
    notes: MultilineText = Field(default="", max_length=1000)
    notify_customer: StrictBool = True


class CancelItemBody(RequestBody):
    order_item_id: str = Field(min_length=1, max_length=80)
    quantity: StrictInt = Field(ge=1, le=1_000_000)


class CancelBody(RequestBody):
    model_config = examples(
        {"reason": "買錯尺寸", "notes": "想改買 L 號"},
        {
            "reason": "缺貨",
            "items": [{"orderItemId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10-1", "quantity": 1}],
        },
    )

    reason: MultilineText = Field(min_length=1, max_length=500)
    cancelled_by: str | None = Field(default=None, max_length=20)
    notes: MultilineText = Field(default="", max_length=1000)
    #: Extension (issue #19): cancel only these unshipped units of a paid order.
    items: list[CancelItemBody] | None = Field(default=None, min_length=1, max_length=100)


ADDRESS_FIELDS = ("name", "phone", "street", "city", "district", "postalCode", "country")


def _shipping_address(body: CheckoutBody, principal: Principal) -> dict[str, Any]:
    if (body.shipping_address is None) == (body.shipping_address_id is None):
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            "give shippingAddress or shippingAddressId (one of them)",
            {"field": "shippingAddress"},
        )
    if body.shipping_address is not None:
        return body.shipping_address.model_dump(by_alias=True)
    saved = principal.account.addresses.get(str(body.shipping_address_id))
    if saved is None:
        raise ApiError(
            400, "VALIDATION_ERROR", "no saved address has that id", {"field": "shippingAddressId"}
        )
    return {k: saved[k] for k in ADDRESS_FIELDS}


def absolute(container: Container, doc: dict[str, Any]) -> dict[str, Any]:
    """The paymentUrl as the buyer's browser opens it: absolute and signed."""
    if doc.get("paymentUrl"):
        doc = {
            **doc,
            "paymentUrl": signed_payment_url(container, doc["paymentUrl"], doc["orderId"]),
        }
    return doc


@router.post(
    "/api/sales/orders",
    status_code=201,
    response_model=None,
    responses=documented(
        Order,
        status=201,
        errors={
            400: ("VALIDATION_ERROR", "INVALID_COUPON", "INVALID_POINTS"),
            404: "NOT_FOUND",
            409: "INSUFFICIENT_POINTS",
            422: ("INSUFFICIENT_STOCK", "PRODUCT_UNAVAILABLE", "ORDER_LIMIT_EXCEEDED"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def place_order(
    body: CheckoutBody, principal: VerifiedUser, request: Request, container: ContainerDep
) -> Response:
    """Check out the caller's cart.

    Prices, coupon or loyalty points (never both), 5% tax and shipping; stock is reserved and
    the coupon redeemed or the points spent in the same transaction as the order. An empty
    cart is 404."""
    shipping = _shipping_address(body, principal)
    if body.billing_address_same_as_shipping:
        billing = shipping
    elif body.billing_address is None:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            "billingAddress is required when it differs from shipping",
            {"field": "billingAddress"},
        )
    else:
        billing = body.billing_address.model_dump(by_alias=True)
    settings = container.settings
    command = PlaceOrder(
        order_id=uuid4(),
        buyer_id=principal.account_id,
        shipping_address=shipping,
        billing_address=billing,
        payment_method=body.payment_method,
        shipping_method=body.shipping_method,
        notes=body.notes,
        coupon_code=body.coupon_code or None,
        unpaid_ttl=settings.unpaid_order_ttl,
        tax_rate=settings.tax_rate,
        shipping_fees=settings.shipping_fee_table(),
        points=body.points_to_redeem,
        loyalty=settings.loyalty_rules(),
    )
    return run_command(
        request, container, command, lambda doc: (201, absolute(container, doc)), body
    )


@router.get(
    "/api/sales/orders",
    dependencies=READS_ORDERS,
    response_model=None,
    responses=documented(OrderList, errors={403: "FORBIDDEN"}),
)
def list_orders(
    principal: CurrentUser,
    container: ContainerDep,
    page: PageDep,
    user_id: Annotated[str | None, Query(alias="userId", max_length=64)] = None,
    seller_id: Annotated[str | None, Query(alias="sellerId", max_length=64)] = None,
    status: OrderStatus | None = None,
    payment_status: Annotated[
        Literal["PENDING", "COMPLETED", "FAILED", "REFUNDED", "PARTIALLY_REFUNDED"] | None,
        Query(alias="paymentStatus"),
    ] = None,
    shipping_status: Annotated[
        Literal["NOT_SHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED"] | None,
        Query(alias="shippingStatus"),
    ] = None,
    from_date: Annotated[date | None, Query(alias="fromDate")] = None,
    to_date: Annotated[date | None, Query(alias="toDate")] = None,
) -> dict[str, Any]:
    """Orders, newest first.

    A buyer's own; a seller's queue with ``sellerId=me`` (only its items' part); every order
    for admins (``userId``/``sellerId`` filter)."""
    is_admin = principal.reads_all  # admins and auditors list every order
    if seller_id == "me":
        if not principal.has_role("seller", "admin"):
            raise ApiError(403, "FORBIDDEN", "sellerId=me is for sellers")
        seller_id = principal.account_id
    if not is_admin:
        if seller_id is not None and seller_id != principal.account_id:
            raise ApiError(403, "FORBIDDEN", "you can only list your own orders")
        if seller_id is None:
            if user_id is not None and user_id != principal.account_id:
                raise ApiError(403, "FORBIDDEN", "you can only list your own orders")
            user_id = principal.account_id
    criteria = q.OrderFilter(
        user_id, seller_id, status, payment_status, shipping_status, from_date, to_date
    )
    try:
        return q.list_orders(container.engine, criteria, page)
    except QueryError as exc:
        raise ApiError(400, "VALIDATION_ERROR", str(exc)) from None


def for_caller(doc: dict[str, Any] | None, principal: Principal, order_id: str) -> dict[str, Any]:
    """Buyer, admins and auditors see the whole order, a seller its own items; anyone else 404."""
    if doc is not None:
        if principal.reads_all or doc["userId"] == principal.account_id:
            return doc
        if any(i["sellerId"] == principal.account_id for i in doc["items"]):
            return q.seller_view(doc, principal.account_id)
    raise ApiError(404, "ORDER_NOT_FOUND", "order not found", {"orderId": order_id})


@router.get(
    "/api/sales/orders/{order_id}",
    dependencies=READS_ORDERS,
    response_model=None,
    responses=documented(Order, errors={404: "ORDER_NOT_FOUND"}),
)
def get_order(
    order_id: str,
    principal: CurrentUser,
    container: ContainerDep,
    as_of: Annotated[AwareDatetime | None, Query(alias="asOf")] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """One order with items, totals, statuses and timeline.

    ``asOf`` (a timestamp with offset) or ``version`` returns the order as it was then, folded
    from its events."""
    oid = path_id(order_id, "ORDER_NOT_FOUND", "order")
    if as_of is None and version is None:
        doc = q.get_order(container.engine, str(oid))
        return absolute(container, for_caller(doc, principal, order_id))
    if as_of is not None and version is not None:
        raise ApiError(400, "VALIDATION_ERROR", "give asOf or version, not both")
    events = q.order_events(container.app, oid)
    for_caller(
        q.order_as_of(events[:1]), principal, order_id
    )  # buyer and items are set at placement
    past = q.order_as_of(events, at=as_of, version=version)
    if past is None:
        raise ApiError(
            404,
            "ORDER_NOT_FOUND",
            "the order did not exist yet at that moment",
            {"orderId": order_id},
        )
    return absolute(container, for_caller(past, principal, order_id))


@router.get(
    "/api/sales/orders/{order_id}/timeline",
    response_model=None,
    responses=documented(OrderTimeline, errors={404: "ORDER_NOT_FOUND"}),
)
def order_timeline(
    order_id: str, principal: CurrentUser, container: ContainerDep
) -> dict[str, Any]:
    """Every event of the order, oldest first.

    With position, version, time, actor and data; for the buyer and admins (the events name
    every seller's items)."""
    oid = path_id(order_id, "ORDER_NOT_FOUND", "order")
    events = q.order_events(container.app, oid)
    placed = q.order_as_of(events[:1])
    if placed is None or not (principal.reads_all or placed["userId"] == principal.account_id):
        raise ApiError(404, "ORDER_NOT_FOUND", "order not found", {"orderId": order_id})
    return q.timeline(oid, events)


@router.put(
    "/api/sales/orders/{order_id}/status",
    response_model=None,
    responses=documented(
        OrderStatusChanged,
        errors={404: "ORDER_NOT_FOUND", 409: ("INVALID_ORDER_STATUS", "CONFLICT")},
    ),
)
def update_status(
    order_id: str,
    body: StatusBody,
    admin_user: AdminUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Move an order along the status machine (admin).

    An invalid transition is 409. ``CANCELLED`` cancels as ``PUT .../cancel`` does (stock and
    coupon released). ``notes`` are kept on the order's timeline for every transition;
    ``notifyCustomer: false`` tells the sellers but not the buyer."""
    if body.status == "CANCELLED":
        command: Any = CancelOrder(
            path_id(order_id, "ORDER_NOT_FOUND", "order"),
            admin_user.account_id,
            True,
            body.notes or "cancelled by an admin",
            body.notes,
            body.notify_customer,
        )
        outcome = execute(request, container, command)
        order, _, pending = outcome.result
        if pending is not None:
            settle_refund_with_gateway(request, container, pending)
    else:
        outcome = execute(
            request,
            container,
            UpdateOrderStatus(
                path_id(order_id, "ORDER_NOT_FOUND", "order"),
                body.status,
                body.notes,
                body.notify_customer,
            ),
        )
        order = outcome.result
    return with_position(
        JSONResponse(
            {
                "orderId": str(order.id),
                "status": order.status,
                "updatedAt": order.modified_on.isoformat(),
            }
        ),
        outcome.position,
    )


@router.put(
    "/api/sales/orders/{order_id}/cancel",
    response_model=None,
    responses=documented(
        OrderCancelled,
        errors={
            403: "FORBIDDEN",
            404: "ORDER_NOT_FOUND",
            409: ("INVALID_ORDER_STATUS", "CONFLICT"),
            422: "REFUND_FAILED",
        },
    ),
)
def cancel(
    order_id: str,
    body: CancelBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Cancel an order before anything ships, or some of its unshipped units.

    The buyer, a seller of all its items, or an admin: stock and coupon are released and a
    paid order is refunded in full, in the same transaction. With ``items``: those units of a
    paid order (a seller only its own; the buyer only before anything ships) are cancelled,
    their stock released and their value refunded; taking every unit left of an order of
    which nothing shipped cancels the order."""
    oid = path_id(order_id, "ORDER_NOT_FOUND", "order")
    actor, is_admin = principal.account_id, principal.has_role("admin")
    cancelled_items: list[dict[str, Any]] | None = None
    if body.items is None:
        outcome = execute(
            request, container, CancelOrder(oid, actor, is_admin, body.reason, body.notes)
        )
        order, refund, pending = outcome.result
    else:
        units = tuple((i.order_item_id, i.quantity) for i in body.items)
        outcome = execute(
            request, container, CancelUnits(oid, actor, is_admin, units, body.reason, body.notes)
        )
        done = outcome.result
        order, refund, pending = done.order, done.refund, done.pending
        cancelled_items = [
            {
                "orderItemId": i["orderItemId"],
                "quantity": i["quantity"],
                "amount": money(Decimal(i["amount"])),
            }
            for i in done.items
        ]
    position, payment_status = outcome.position, order.payment_status
    if pending is not None and refund is not None:  # a card refund: the gateway pays it back now
        settled = settle_refund_with_gateway(request, container, pending)
        position = settled.position or position
        payment_status = settled.payment_status
        refund = {
            **refund,
            "status": "COMPLETED" if settled.transaction_id else "FAILED",
            "transactionId": settled.transaction_id,
        }
    payload = {
        "orderId": str(order.id),
        "status": order.status,
        "cancelledAt": (order.cancelled_at or order.modified_on).isoformat(),
        "paymentStatus": payment_status,
        "refundStatus": refund["status"] if refund is not None else "NOT_APPLICABLE",
        "refundDetails": None
        if refund is None
        else {
            **refund,
            "amount": money(refund["amount"]),
            "processedAt": refund["processedAt"].isoformat(),
        },
    }
    if cancelled_items:
        payload["cancelledItems"] = cancelled_items
    return with_position(JSONResponse(payload), position)
