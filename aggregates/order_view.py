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
SHIPPING_STATUS = {
    "CREATED": "NOT_SHIPPED", "PAID": "NOT_SHIPPED", "PROCESSING": "NOT_SHIPPED",
    "SHIPPED": "SHIPPED", "DELIVERED": "DELIVERED", "CANCELLED": "NOT_SHIPPED",
}
FULFILLMENT_STATUS = {
    "CREATED": "UNFULFILLED", "PAID": "UNFULFILLED", "PROCESSING": "PROCESSING",
    "SHIPPED": "SHIPPED", "DELIVERED": "DELIVERED", "CANCELLED": "CANCELLED",
}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def fold(doc: dict[str, Any] | None, event: Any) -> dict[str, Any]:
    """The order document after ``event`` (a domain event of :class:`Order`)."""
    if isinstance(event, Order.Placed):
        oid = str(event.originator_id)
        at = event.at
        return {
            "orderId": oid,
            "orderNumber": event.order_number,
            "userId": event.buyer_id,
            "status": "CREATED",
            "items": [
                {
                    "orderItemId": i["orderItemId"], "productId": i["productId"], "sellerId": i["sellerId"],
                    "name": i["name"], "quantity": i["quantity"], "unitPrice": money(Decimal(i["unitPrice"])),
                    "selectedOptions": [], "subtotal": money(Decimal(i["subtotal"])),
                }
                for i in event.items
            ],
            "subtotal": money(event.subtotal),
            "discount": {**money(event.discount), "couponCode": event.coupon_code},
            "tax": money(event.tax),
            "shipping": {**money(event.shipping), "method": event.shipping_method},
            "total": money(event.total),
            "shippingAddress": event.shipping_address,
            "billingAddress": event.billing_address,
            "paymentMethod": event.payment_method,
            "paymentStatus": "PENDING",
            "paymentDetails": None,
            "paymentUrl": f"/api/sales/orders/{oid}/pay" if event.payment_method in ONLINE_METHODS else None,
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
            "version": event.originator_version,
        }
    assert doc is not None, "an order's first event is Placed"
    doc = {**doc, "timeline": list(doc["timeline"]), "version": event.originator_version}
    if isinstance(event, Order.StatusChanged):
        doc["status"] = event.status
        if event.status == "PAID":
            doc["paymentStatus"] = "COMPLETED"
        doc["timeline"].append({"status": event.status, "timestamp": _iso(event.at)})
        doc["updatedAt"] = _iso(event.at)
    elif isinstance(event, Order.Cancelled):
        doc["status"] = "CANCELLED"
        doc["cancelledAt"] = doc["updatedAt"] = _iso(event.at)
        doc["cancellation"] = {"reason": event.reason, "cancelledBy": event.cancelled_by, "notes": event.notes}
        doc["timeline"].append({"status": "CANCELLED", "timestamp": _iso(event.at)})
        if event.refund_due is not None:
            # The refund itself is the payments issue's: until then it is due, not issued.
            doc["refundStatus"] = "PENDING"
            doc["refundDetails"] = {"refundId": None, "amount": money(event.refund_due), "status": "PENDING"}
        else:
            doc["refundStatus"] = "NOT_APPLICABLE"
            doc["refundDetails"] = None
    elif isinstance(event, Order.Expired):
        doc["status"] = "CANCELLED"
        doc["cancelledAt"] = doc["updatedAt"] = _iso(event.at)
        doc["cancellation"] = {"reason": "EXPIRED", "cancelledBy": "system", "notes": "not paid in time"}
        doc["timeline"].append({"status": "CANCELLED", "timestamp": _iso(event.at)})
        doc["refundStatus"], doc["refundDetails"] = "NOT_APPLICABLE", None
    doc["shippingStatus"] = SHIPPING_STATUS[doc["status"]]
    doc["fulfillmentStatus"] = FULFILLMENT_STATUS[doc["status"]]
    return doc
