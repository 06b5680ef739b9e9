"""The seeds/003 order document as a pure fold of the order's events.

Used by the orders projection (event by event), by checkout's response, and by the audit
views that replay an order to a past moment, so all three show the same shape.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aggregates.money import money
from aggregates.orders import ONLINE_METHODS, Order

#: Days from placement to the promised delivery, by shipping method.
DELIVERY_DAYS = {"STANDARD": 5, "EXPRESS": 2, "SAME_DAY": 0, "PICKUP": 3}
FULFILLMENT_STATUS = {
    "CREATED": "UNFULFILLED",
    "PAID": "UNFULFILLED",
    "PROCESSING": "PROCESSING",
    "SHIPPED": "SHIPPED",
    "DELIVERED": "DELIVERED",
    "CANCELLED": "CANCELLED",
}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _card(card: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if card is None else dict(card)


def _placed(event: Any) -> dict[str, Any]:
    oid = str(event.originator_id)
    at = event.at
    return {
        "orderId": oid,
        "orderNumber": event.order_number,
        "userId": event.buyer_id,
        "status": "CREATED",
        "items": [
            {
                "orderItemId": i["orderItemId"],
                "productId": i["productId"],
                "sellerId": i["sellerId"],
                "name": i["name"],
                "quantity": i["quantity"],
                "unitPrice": money(Decimal(i["unitPrice"])),
                "selectedOptions": [],
                "subtotal": money(Decimal(i["subtotal"])),
            }
            for i in event.items
        ],
        "subtotal": money(event.subtotal),
        "discount": {
            **money(event.discount),
            "couponCode": event.coupon_code,
            "pointsRedeemed": getattr(event, "points_redeemed", 0),
        },
        "tax": money(event.tax),
        "shipping": {**money(event.shipping), "method": event.shipping_method},
        "total": money(event.total),
        "shippingAddress": event.shipping_address,
        "billingAddress": event.billing_address,
        "paymentMethod": event.payment_method,
        "paymentStatus": "PENDING",
        "paymentDetails": None,
        "paymentUrl": f"/api/sales/orders/{oid}/pay"
        if event.payment_method in ONLINE_METHODS
        else None,
        "fulfillmentStatus": "UNFULFILLED",
        "shippingStatus": "NOT_SHIPPED",
        "timeline": [{"status": "CREATED", "timestamp": _iso(at)}],
        "estimatedDelivery": _iso(at + timedelta(days=DELIVERY_DAYS.get(event.shipping_method, 5))),
        "notes": event.notes,
        "createdAt": _iso(at),
        "updatedAt": _iso(at),
        "expiresAt": _iso(event.expires_at),
        "cancelledAt": None,
        "cancellation": None,
        "lastStatusUpdate": None,
        "refundStatus": "NOT_APPLICABLE",
        "refundDetails": None,
        # extensions: the order's payments, refunds, processing, shipments and invoice
        "payments": [],
        "refunds": [],
        "processing": None,
        "shipments": [],
        "invoices": [],
        "version": event.originator_version,
    }


def _set_status(doc: dict[str, Any], status: str, at: datetime) -> None:
    if doc["status"] != status:
        doc["status"] = status
        entry: dict[str, Any] = {"status": status, "timestamp": _iso(at)}
        update = doc.get("lastStatusUpdate")
        if update is not None and update["status"] == status and update["at"] == entry["timestamp"]:
            entry |= {"notes": update["notes"], "by": "admin"}  # an admin's PUT .../status
        doc["timeline"].append(entry)


def _payment_entry(event: Any, status: str) -> dict[str, Any]:
    entry = {
        "paymentId": event.payment_id,
        "status": status,
        "transactionId": getattr(event, "transaction_id", None),
        "amount": money(event.amount),
        "method": event.method,
        "provider": event.provider,
        "processedAt": _iso(event.at),
        "cardInfo": _card(event.card),
    }
    if status == "COMPLETED":
        entry["receipt"] = {
            "number": event.receipt_number,
            "url": f"/api/sales/orders/{event.originator_id}/payments/{event.payment_id}",
        }
    else:
        entry["failureReason"] = event.reason
    return entry


def _shipping_status(doc: dict[str, Any]) -> str:
    if doc["status"] == "DELIVERED":
        return "DELIVERED"
    shipped: dict[str, int] = {}
    for s in doc["shipments"]:
        for i in s["items"]:
            shipped[i["orderItemId"]] = shipped.get(i["orderItemId"], 0) + i["quantity"]
    if not shipped:
        return "NOT_SHIPPED"
    if all(
        shipped.get(i["orderItemId"], 0) >= i["quantity"] - i.get("cancelledQuantity", 0)
        for i in doc["items"]
    ):
        return "SHIPPED"
    return "PARTIALLY_SHIPPED"


def _value(m: dict[str, Any]) -> Decimal:
    return Decimal(str(m["value"]))


def _less(m: dict[str, Any], amount: Decimal) -> dict[str, Any]:
    """``m`` less ``amount``, never below 0 (rounding of pro-rata shares)."""
    return {**m, **money(max(Decimal(0), _value(m) - amount))}


def _units_cancelled(doc: dict[str, Any], event: Any, at: datetime) -> None:
    """Items show ``cancelledQuantity`` and the subtotal of the units left; the order's
    subtotal, discount, tax and total drop by the units' price, discount share, tax and value
    (``cancelledAmount`` adds them up)."""
    by_item = {i["orderItemId"]: i for i in event.items}
    items = []
    for item in doc["items"]:
        gone = by_item.get(item["orderItemId"])
        if gone is not None:
            cancelled = item.get("cancelledQuantity", 0) + int(gone["quantity"])
            left = _value(item["unitPrice"]) * (int(item["quantity"]) - cancelled)
            item = {**item, "cancelledQuantity": cancelled, "subtotal": money(left)}
        items.append(item)
    doc["items"] = items
    for key, part in (("subtotal", "subtotal"), ("discount", "discount"), ("tax", "tax")):
        taken = sum((Decimal(i[part]) for i in event.items), Decimal(0))
        doc[key] = _less(doc[key], taken)
    doc["total"] = _less(doc["total"], event.amount)
    before = _value(doc["cancelledAmount"]) if doc.get("cancelledAmount") else Decimal(0)
    doc["cancelledAmount"] = money(before + event.amount)
    doc["unitCancellations"] = [
        *doc.get("unitCancellations", []),
        {
            "items": [
                {
                    "orderItemId": i["orderItemId"],
                    "productId": i["productId"],
                    "sellerId": i["sellerId"],
                    "quantity": int(i["quantity"]),
                    "amount": money(Decimal(i["amount"])),
                }
                for i in event.items
            ],
            "amount": money(event.amount),
            "refundId": event.refund_id,
            "reason": event.reason,
            "cancelledBy": event.cancelled_by,
            "notes": event.notes,
            "cancelledAt": _iso(at),
        },
    ]
    _set_status(doc, event.status, at)


def fold(doc: dict[str, Any] | None, event: Any) -> dict[str, Any]:
    """The order document after ``event`` (a domain event of :class:`Order`)."""
    if isinstance(event, Order.Placed):
        return _placed(event)
    assert doc is not None, "an order's first event is Placed"
    doc = {
        **doc,
        "timeline": list(doc["timeline"]),
        "payments": list(doc.get("payments", [])),
        "refunds": list(doc.get("refunds", [])),
        "shipments": [dict(s) for s in doc.get("shipments", [])],
        "invoices": list(doc.get("invoices", [])),
        "version": event.originator_version,
    }
    at = getattr(event, "at", None) or event.timestamp
    doc["updatedAt"] = _iso(at)
    if isinstance(event, Order.AdminStatusUpdated):
        # PUT .../status; the transition's events follow (their timeline entry gets the notes).
        doc["lastStatusUpdate"] = {
            "status": event.status,
            "notes": event.notes,
            "notifyCustomer": event.notify_customer,
            "at": _iso(at),
        }
    elif isinstance(event, Order.PaymentMethodChosen):
        doc["paymentMethod"] = event.method
        doc["paymentUrl"] = (
            f"/api/sales/orders/{doc['orderId']}/pay" if event.method in ONLINE_METHODS else None
        )
        if event.method == "COD":
            doc["expiresAt"] = None
    elif isinstance(event, Order.StatusChanged):  # orders recorded before payments were events
        _set_status(doc, event.status, at)
        if event.status == "PAID":
            doc["paymentStatus"] = "COMPLETED"
    elif isinstance(event, Order.PaymentCompleted):
        entry = _payment_entry(event, "COMPLETED")
        doc["payments"].append(entry)
        doc["paymentDetails"] = {
            k: entry[k]
            for k in ("paymentId", "transactionId", "method", "amount", "cardInfo", "receipt")
        } | {"paidAt": entry["processedAt"]}
        doc["paymentStatus"] = getattr(event, "payment_status", "COMPLETED")
        doc["paymentUrl"] = None
        _set_status(doc, event.status, at)
    elif isinstance(event, Order.PaymentFailed):
        doc["payments"].append(_payment_entry(event, "FAILED"))
        doc["paymentStatus"] = getattr(event, "payment_status", "FAILED")
    elif isinstance(event, Order.Refunded):
        refund = {
            "refundId": event.refund_id,
            "status": "COMPLETED",
            "amount": money(event.amount),
            "reason": event.reason,
            "processedAt": _iso(at),
            "transactionId": event.transaction_id,
            "items": [{**i, "amount": money(Decimal(i["amount"]))} for i in event.items],
        }
        doc["refunds"].append(refund)
        doc["paymentStatus"] = event.payment_status
        doc["refundStatus"] = "COMPLETED"
        doc["refundDetails"] = {
            k: refund[k] for k in ("refundId", "amount", "status", "processedAt", "transactionId")
        }
    elif isinstance(event, Order.Cancelled):
        _set_status(doc, "CANCELLED", at)
        doc["cancelledAt"] = _iso(at)
        doc["cancellation"] = {
            "reason": event.reason,
            "cancelledBy": event.cancelled_by,
            "notes": event.notes,
        }
        doc["paymentUrl"] = None
        if event.refund_due is not None:
            # The refund follows in the same transaction (its own event).
            doc["refundStatus"] = "PENDING"
            doc["refundDetails"] = {
                "refundId": None,
                "amount": money(event.refund_due),
                "status": "PENDING",
            }
    elif isinstance(event, Order.UnitsCancelled):
        _units_cancelled(doc, event, at)
    elif isinstance(event, Order.Expired):
        _set_status(doc, "CANCELLED", at)
        doc["cancelledAt"] = _iso(at)
        doc["cancellation"] = {
            "reason": "EXPIRED",
            "cancelledBy": "system",
            "notes": "not paid in time",
        }
        doc["paymentUrl"] = None
    elif isinstance(event, Order.Processed):
        previous = doc.get("processing") or {"sellers": []}
        doc["processing"] = {
            "processedAt": _iso(at),
            "processedBy": event.processed_by,
            "warehouseId": event.warehouse_id,
            "estimatedShippingDate": event.estimated_shipping_date,
            "notes": event.notes,
            "sellers": sorted({*previous["sellers"], *event.seller_ids}),
        }
        _set_status(doc, "PROCESSING", at)
    elif isinstance(event, Order.ShipmentCreated):
        doc["shipments"].append(
            {
                "shipmentId": event.shipment_id,
                "carrier": event.carrier,
                "trackingNumber": event.tracking_number,
                "trackingUrl": event.tracking_url,
                "status": "SHIPPED",
                "shippedAt": _iso(at),
                "shippedBy": event.shipped_by,
                "shippingDate": event.shipping_date,
                "estimatedDelivery": _iso(event.estimated_delivery),
                "packageInfo": event.package_info,
                "notes": event.notes,
                "items": [dict(i) for i in event.items],
                "currentLocation": None,
                "updatedAt": _iso(at),
                "history": [
                    {"status": "SHIPPED", "at": _iso(at), "location": None, "notes": event.notes}
                ],
            }
        )
        if event.fully_shipped:
            _set_status(doc, "SHIPPED", at)
    elif isinstance(event, Order.ShipmentStatusChanged):
        for s in doc["shipments"]:
            if s["shipmentId"] == event.shipment_id:
                s["status"] = event.status
                s["updatedAt"] = _iso(at)
                if event.location is not None:
                    s["currentLocation"] = event.location
                s["history"] = [
                    *s["history"],
                    {
                        "status": event.status,
                        "at": _iso(at),
                        "location": event.location,
                        "notes": event.notes,
                    },
                ]
                if event.status == "DELIVERED":
                    s["deliveredAt"] = _iso(at)
    elif isinstance(event, Order.Delivered):
        _set_status(doc, "DELIVERED", at)
        doc["deliveredAt"] = _iso(at)
        doc["deliveredBy"] = event.by
    elif isinstance(event, Order.InvoiceVoided):
        doc["invoices"] = [
            {**inv, "status": "VOID", "voidedAt": _iso(at), "voidReason": event.reason}
            if inv["invoiceId"] == event.invoice_id
            else inv
            for inv in doc["invoices"]
        ]
    elif isinstance(event, Order.CorrectedInvoiceIssued):
        doc["invoices"].append(
            {
                "invoiceId": event.invoice_id,
                "invoiceNumber": event.invoice_number,
                "orderId": doc["orderId"],
                "status": "ISSUED",
                "corrects": event.corrects,
                "items": [
                    {
                        "orderItemId": i["orderItemId"],
                        "productId": i["productId"],
                        "name": i["name"],
                        "quantity": i["quantity"],
                        "unitPrice": money(Decimal(i["unitPrice"])),
                        "subtotal": money(Decimal(i["subtotal"])),
                    }
                    for i in event.items
                ],
                "subtotal": money(event.subtotal),
                "discount": money(event.discount),
                "tax": money(event.tax),
                "shipping": money(event.shipping),
                "total": money(event.total),
                "createdAt": _iso(at),
                "invoiceDate": event.invoice_date,
                "dueDate": event.due_date,
                "recipientInfo": event.recipient,
                "notes": event.notes,
                "orderVersion": event.order_version,
            }
        )
    elif isinstance(event, Order.InvoiceIssued):
        doc["invoices"].append(
            {
                "invoiceId": event.invoice_id,
                "invoiceNumber": event.invoice_number,
                "orderId": doc["orderId"],
                "status": "ISSUED",
                "items": [  # the units not cancelled
                    {
                        **{k: i[k] for k in ("orderItemId", "productId", "name", "unitPrice")},
                        "quantity": i["quantity"] - i.get("cancelledQuantity", 0),
                        "subtotal": i["subtotal"],
                    }
                    for i in doc["items"]
                    if i["quantity"] > i.get("cancelledQuantity", 0)
                ],
                "subtotal": money(event.subtotal),
                "discount": money(event.discount),
                "tax": money(event.tax),
                "shipping": money(event.shipping),
                "total": money(event.total),
                "createdAt": _iso(at),
                "invoiceDate": event.invoice_date,
                "dueDate": event.due_date,
                "recipientInfo": event.recipient,
                "notes": event.notes,
                "orderVersion": event.order_version,
            }
        )
    # PaymentStarted, RefundRequested, RefundFailed and ShipReminderSent change nothing a
    # reader of the order sees (they are in the timeline).
    doc["shippingStatus"] = _shipping_status(doc)
    fulfillment = FULFILLMENT_STATUS[doc["status"]]
    if fulfillment == "PROCESSING" and doc["shippingStatus"] == "PARTIALLY_SHIPPED":
        fulfillment = "PARTIALLY_SHIPPED"
    doc["fulfillmentStatus"] = fulfillment
    return doc
