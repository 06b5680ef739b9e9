"""Fulfilment and invoices (seeds/003 "訂單履行 API", "訂單發票 API"): process, shipments
(partial, by item), shipment status, the buyer's receipt confirmation, and the invoice."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import uuid4

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, EmailStr, Field, StrictBool, StrictFloat, StrictInt

from aggregates.money import money
from aggregates.orders import SHIPMENT_STATUSES
from aggregates.taipei import local_date
from api.auth import CurrentUser, Principal
from api.deps import ContainerDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import Invoice as InvoiceView
from api.responses import (
    InvoiceList,
    InvoiceVoided,
    OrderProcessed,
    ReceiptConfirmed,
    ShipmentCreated,
    ShipmentList,
    ShipmentStatusChanged,
)
from api.routes.sales import for_caller
from api.schemas import RequestBody
from api.validation import MultilineText, Text
from commands.fulfilment import (
    CARRIERS,
    ConfirmReceipt,
    CreateShipment,
    IssueInvoice,
    ProcessOrder,
    UpdateShipmentStatus,
    VoidInvoice,
)
from queries import orders as q

router = APIRouter(tags=["fulfilment"])
READS_ORDERS = [Depends(reads("orders"))]
ShipmentStatus = Literal[
    "PROCESSING", "SHIPPED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "EXCEPTION"
]
assert set(ShipmentStatus.__args__) == set(SHIPMENT_STATUSES)  # type: ignore[attr-defined]
Number = StrictInt | StrictFloat


class ProcessBody(RequestBody):
    model_config = examples(
        {
            "processedBy": "倉管 陳小姐",
            "warehouseId": "6c2d8e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f",
            "estimatedShippingDate": "2026-12-04",
            "notes": "今日備貨",
        }
    )

    processed_by: Text = Field(default="", max_length=100)
    warehouse_id: str | None = Field(default=None, max_length=64)
    estimated_shipping_date: date | None = None
    notes: MultilineText = Field(default="", max_length=1000)


class ShipmentItemBody(RequestBody):
    order_item_id: str = Field(min_length=1, max_length=80)
    quantity: StrictInt = Field(ge=1, le=1_000_000)


class DimensionsBody(RequestBody):
    length: Number = Field(gt=0, le=10_000)
    width: Number = Field(gt=0, le=10_000)
    height: Number = Field(gt=0, le=10_000)
    unit: Literal["cm", "mm", "m", "in"] = "cm"


class PackageInfoBody(RequestBody):
    weight: Number | None = Field(default=None, gt=0, le=100_000)
    weight_unit: Literal["kg", "g", "lb"] = "kg"
    dimensions: DimensionsBody | None = None


class ShipmentBody(RequestBody):
    model_config = examples(
        {
            "carrier": "BLACK_CAT",
            "trackingNumber": "9012-3456-7890",
            "shippingDate": "2026-12-03",
            "items": [{"orderItemId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10-1", "quantity": 1}],
            "packageInfo": {
                "weight": 1.2,
                "weightUnit": "kg",
                "dimensions": {"length": 30, "width": 20, "height": 10, "unit": "cm"},
            },
            "notes": "易碎品",
        },
        {"carrier": "SEVEN_ELEVEN", "trackingNumber": "F12345678901"},
    )

    shipped_by: Text = Field(default="", max_length=100)
    carrier: Text = Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")
    tracking_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]{1,40}$")
    shipping_date: date | None = None
    items: list[ShipmentItemBody] | None = Field(default=None, min_length=1, max_length=100)
    package_info: PackageInfoBody | None = None
    notes: MultilineText = Field(default="", max_length=1000)


class LocationBody(RequestBody):
    city: Text = Field(default="", max_length=100)
    country: Text = Field(default="", max_length=100)


class ShipmentStatusBody(RequestBody):
    model_config = examples(
        {
            "status": "IN_TRANSIT",
            "statusDate": "2026-12-04T09:30:00+08:00",
            "notes": "已到達台北轉運站",
            "notifyCustomer": True,
            "location": {"city": "台北市", "country": "TW"},
        }
    )

    status: ShipmentStatus
    status_date: AwareDatetime | None = None
    notes: MultilineText = Field(default="", max_length=1000)
    notify_customer: StrictBool = True
    location: LocationBody | None = None


class RecipientBody(RequestBody):
    name: Text = Field(min_length=1, max_length=100)
    email: EmailStr | None = None
    #: 統一編號: eight digits, for a company buyer.
    tax_id: str | None = Field(default=None, pattern=r"^[0-9]{8}$")


class InvoiceBody(RequestBody):
    model_config = examples(
        {
            "invoiceDate": "2026-12-02",
            "dueDate": "2026-12-31",
            "recipientInfo": {
                "name": "台灣好物股份有限公司",
                "email": "ap@good-things.example.com.tw",
                "taxId": "12345675",
            },
            "notes": "請開立三聯式發票",
        }
    )

    invoice_date: date | None = None
    due_date: date | None = None
    recipient_info: RecipientBody | None = None
    notes: MultilineText = Field(default="", max_length=1000)


def _iso(at: datetime) -> str:
    return at.isoformat()


# --- process --------------------------------------------------------------------------------
@router.put(
    "/api/sales/orders/{order_id}/process",
    response_model=None,
    responses=documented(
        OrderProcessed,
        errors={
            403: "FORBIDDEN",
            404: "ORDER_NOT_FOUND",
            409: ("INVALID_ORDER_STATUS", "CONFLICT"),
        },
    ),
)
def process(
    order_id: str,
    body: ProcessBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Start processing an order.

    A seller starts on its items of a paid order (a COD order unpaid), an admin on all of
    them; with ``warehouseId`` their reserved stock is allocated to that warehouse."""
    command = ProcessOrder(
        path_id(order_id, "ORDER_NOT_FOUND", "order"),
        principal.account_id,
        principal.has_role("admin"),
        body.processed_by or principal.account_id,
        body.warehouse_id,
        None if body.estimated_shipping_date is None else body.estimated_shipping_date.isoformat(),
        body.notes,
    )
    outcome = execute(request, container, command)
    order = outcome.result
    payload = {
        "orderId": str(order.id),
        "status": order.status,
        "fulfillmentStatus": "PROCESSING",
        "processedAt": _iso(order.modified_on),
        "processedBy": command.processed_by,
        "estimatedShippingDate": command.estimated_shipping_date,
        "warehouseId": body.warehouse_id,
    }
    return with_position(JSONResponse(payload), outcome.position)


# --- shipments ------------------------------------------------------------------------------
@router.post(
    "/api/sales/orders/{order_id}/shipments",
    status_code=201,
    response_model=None,
    responses=documented(
        ShipmentCreated,
        status=201,
        errors={
            403: "FORBIDDEN",
            404: "ORDER_NOT_FOUND",
            409: ("INVALID_ORDER_STATUS", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def create_shipment(
    order_id: str,
    body: ShipmentBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Ship some or all of the caller's items of an order.

    All remaining ones without ``items``. The order is SHIPPED once every item has shipped;
    shipped units leave the warehouse."""
    # A known carrier by its code (any case, "-" or " " for "_") gets a trackingUrl; any other
    # carrier name is kept as given, without one (seeds/003 leaves carrier free).
    code = body.carrier.strip().upper().replace("-", "_").replace(" ", "_")
    carrier = code if code in CARRIERS else " ".join(body.carrier.split())
    command = CreateShipment(
        path_id(order_id, "ORDER_NOT_FOUND", "order"),
        principal.account_id,
        principal.has_role("admin"),
        uuid4(),
        carrier,
        body.tracking_number,
        body.shipped_by or principal.account_id,
        None if body.shipping_date is None else body.shipping_date.isoformat(),
        None if body.items is None else tuple((i.order_item_id, i.quantity) for i in body.items),
        None if body.package_info is None else body.package_info.model_dump(by_alias=True),
        body.notes,
    )

    def respond(result: dict[str, Any]) -> tuple[int, Any]:
        return 201, {
            **result,
            "shippedAt": _iso(result["shippedAt"]),
            "estimatedDelivery": _iso(result["estimatedDelivery"]),
        }

    return run_command(request, container, command, respond, body)


def _order_for(container: ContainerDep, principal: Principal, order_id: str) -> dict[str, Any]:
    return for_caller(
        q.get_order(container.engine, str(path_id(order_id, "ORDER_NOT_FOUND", "order"))),
        principal,
        order_id,
    )


@router.get(
    "/api/sales/orders/{order_id}/shipments",
    dependencies=READS_ORDERS,
    response_model=None,
    responses=documented(ShipmentList, errors={404: "ORDER_NOT_FOUND"}),
)
def list_shipments(
    order_id: str, principal: CurrentUser, container: ContainerDep
) -> dict[str, Any]:
    """The order's shipments with their items.

    A seller sees the parcels of its items."""
    doc = _order_for(container, principal, order_id)
    return {
        "orderId": doc["orderId"],
        "shippingStatus": doc["shippingStatus"],
        "shipments": doc.get("shipments", []),
    }


@router.put(
    "/api/sales/shipments/{shipment_id}/status",
    response_model=None,
    responses=documented(
        ShipmentStatusChanged,
        errors={403: "FORBIDDEN", 404: "SHIPMENT_NOT_FOUND", 409: "CONFLICT"},
    ),
)
def update_shipment_status(
    shipment_id: str,
    body: ShipmentStatusBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Record a shipment's progress (the shipping seller or an admin).

    Forward along PROCESSING →
    SHIPPED → IN_TRANSIT → OUT_FOR_DELIVERY → DELIVERED, or EXCEPTION and back on the road;
    anything else is 409. The buyer is notified when ``notifyCustomer``."""
    sid = str(path_id(shipment_id, "SHIPMENT_NOT_FOUND", "shipment"))
    command = UpdateShipmentStatus(
        sid,
        principal.account_id,
        principal.has_role("admin"),
        body.status,
        None if body.status_date is None else body.status_date.isoformat(),
        body.notes,
        None if body.location is None else body.location.model_dump(by_alias=True),
        body.notify_customer,
    )
    outcome = execute(request, container, command)
    order, all_delivered = outcome.result
    payload = {
        "shipmentId": sid,
        "orderId": str(order.id),
        "status": body.status,
        "updatedAt": _iso(order.modified_on),
        "currentLocation": command.location,
        "notificationSent": body.notify_customer,
        "orderStatus": order.status,
        "allDelivered": all_delivered,
    }
    return with_position(JSONResponse(payload), outcome.position)


# --- delivery -------------------------------------------------------------------------------
@router.post(
    "/api/sales/orders/{order_id}/confirm-receipt",
    response_model=None,
    responses=documented(
        ReceiptConfirmed,
        errors={404: "ORDER_NOT_FOUND", 409: ("INVALID_ORDER_STATUS", "CONFLICT")},
    ),
)
def confirm_receipt(
    order_id: str, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Confirm receipt (the buyer).

    Once every shipment is delivered; the order is DELIVERED."""
    outcome = execute(
        request,
        container,
        ConfirmReceipt(path_id(order_id, "ORDER_NOT_FOUND", "order"), principal.account_id),
    )
    order = outcome.result
    return with_position(
        JSONResponse(
            {
                "orderId": str(order.id),
                "status": order.status,
                "deliveredAt": _iso(order.delivered_at),
            }
        ),
        outcome.position,
    )


# --- invoices -------------------------------------------------------------------------------
@router.post(
    "/api/sales/orders/{order_id}/invoices",
    status_code=201,
    response_model=None,
    responses=documented(
        InvoiceView,
        status=201,
        errors={
            403: "FORBIDDEN",
            404: "ORDER_NOT_FOUND",
            409: ("INVOICE_ALREADY_EXISTS", "INVALID_ORDER_STATUS", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def create_invoice(
    order_id: str,
    body: InvoiceBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Issue the order's invoice.

    One valid invoice per order (409 ``INVOICE_ALREADY_EXISTS`` while it is ISSUED),
    numbered in Taiwan e-invoice form from the configured track; totals are the order's.
    Once it is VOID (voided, or the order cancelled or refunded in full), the next one is a
    corrected invoice (``corrects``) for what was paid and not refunded."""
    today = local_date(datetime.now().astimezone())
    invoice_date = body.invoice_date or today
    if body.due_date is not None and body.due_date < invoice_date:
        raise ApiError(
            400, "VALIDATION_ERROR", "dueDate is before invoiceDate", {"field": "dueDate"}
        )
    command = IssueInvoice(
        path_id(order_id, "ORDER_NOT_FOUND", "order"),
        principal.account_id,
        principal.has_role("admin"),
        uuid4(),
        container.settings.invoice_track,
        invoice_date.isoformat(),
        None if body.due_date is None else body.due_date.isoformat(),
        None if body.recipient_info is None else body.recipient_info.model_dump(by_alias=True),
        body.notes,
    )

    def respond(order: Any) -> tuple[int, Any]:
        inv = order.invoice
        subtotal, discount, tax, shipping, total = inv["amounts"]
        return 201, {
            "invoiceId": inv["invoiceId"],
            "invoiceNumber": inv["number"],
            "orderId": str(order.id),
            "status": "ISSUED",
            "corrects": inv["corrects"],
            "items": [
                {
                    "orderItemId": i["orderItemId"],
                    "productId": i["productId"],
                    "name": i["name"],
                    "quantity": i["quantity"],
                    "unitPrice": money(Decimal(i["unitPrice"])),
                    "subtotal": money(Decimal(i["subtotal"])),
                }
                for i in inv["items"]
            ],
            "subtotal": money(subtotal),
            "discount": money(discount),
            "tax": money(tax),
            "shipping": money(shipping),
            "total": money(total),
            "createdAt": _iso(order.modified_on),
            "invoiceDate": command.invoice_date,
            "dueDate": command.due_date,
            "recipientInfo": command.recipient,
            "notes": body.notes,
            "orderVersion": order.version - 1,
        }

    return run_command(request, container, command, respond, body)


class VoidInvoiceBody(RequestBody):
    model_config = examples({"reason": "部分退款，重開發票"})

    reason: MultilineText = Field(min_length=1, max_length=500)


@router.post(
    "/api/sales/orders/{order_id}/invoices/{invoice_id}/void",
    response_model=None,
    responses=documented(
        InvoiceVoided,
        errors={
            403: "FORBIDDEN",
            404: ("ORDER_NOT_FOUND", "INVOICE_NOT_FOUND"),
            409: ("INVALID_INVOICE_STATUS", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def void_invoice(
    order_id: str,
    invoice_id: str,
    body: VoidInvoiceBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """VOID the order's invoice (an admin, or the seller of an order that is all its own).

    A VOID invoice is 409 ``INVALID_INVOICE_STATUS``. After it, ``POST .../invoices`` issues
    a corrected invoice. Cancelling the order or refunding it in full voids it by itself."""
    command = VoidInvoice(
        path_id(order_id, "ORDER_NOT_FOUND", "order"),
        principal.account_id,
        principal.has_role("admin"),
        invoice_id[:80],
        body.reason,
    )

    def respond(order: Any) -> tuple[int, Any]:
        return 200, {
            "invoiceId": order.invoice["invoiceId"],
            "invoiceNumber": order.invoice["number"],
            "orderId": str(order.id),
            "status": "VOID",
            "voidedAt": _iso(order.modified_on),
            "voidReason": body.reason,
        }

    return run_command(request, container, command, respond, body)


@router.get(
    "/api/sales/orders/{order_id}/invoices",
    dependencies=READS_ORDERS,
    response_model=None,
    responses=documented(InvoiceList, errors={404: "ORDER_NOT_FOUND"}),
)
def list_invoices(order_id: str, principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """The order's invoices, oldest first (VOID ones and their corrections; at most one
    ISSUED)."""
    doc = _order_for(
        container, principal, order_id
    )  # a seller's view holds invoices only when the order is all its own
    return {"orderId": doc["orderId"], "invoices": doc.get("invoices", [])}
