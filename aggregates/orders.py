"""Orders: the status machine of seeds/003 and the rules on who may cancel when.

CREATED → PAID → PROCESSING → SHIPPED → DELIVERED, and CANCELLED from CREATED, PAID or
PROCESSING (never once anything has shipped). COD orders may go CREATED → PROCESSING unpaid.
Checkout itself is in commands/orders.py: it prices the cart, redeems the coupon and reserves
stock, then calls :meth:`Order.place` with the result, all saved in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError, NotFound

STATUSES = ("CREATED", "PAID", "PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED")
PAYMENT_METHODS = ("CREDIT_CARD", "DEBIT_CARD", "BANK_TRANSFER", "MOBILE_PAYMENT", "COD")
ONLINE_METHODS = ("BANK_TRANSFER", "MOBILE_PAYMENT")  # paid through ECPay's page
TRANSITIONS: dict[str, frozenset[str]] = {
    "CREATED": frozenset({"PAID", "PROCESSING", "CANCELLED"}),
    "PAID": frozenset({"PROCESSING", "CANCELLED"}),
    "PROCESSING": frozenset({"SHIPPED", "CANCELLED"}),
    "SHIPPED": frozenset({"DELIVERED"}),
    "DELIVERED": frozenset(),
    "CANCELLED": frozenset(),
}
CANCELLABLE = frozenset({"CREATED", "PAID", "PROCESSING"})


class OrderNotFound(NotFound):
    pass


class InvalidOrderStatus(Conflict):
    """The transition is not allowed from the current status (409 INVALID_ORDER_STATUS)."""


class UnknownOrderStatus(DomainError):
    """Not one of the six statuses (400)."""


class CartEmpty(NotFound):
    """Nothing to check out (404)."""


class ProductUnavailable(DomainError):
    """A product in the cart is delisted, suspended, or its seller cannot sell (422)."""


class Order(Aggregate):
    @event("Placed")
    def __init__(
        self,
        order_number: str,
        buyer_id: str,
        items: list[dict[str, Any]],
        subtotal: Decimal,
        discount: Decimal,
        coupon_code: str | None,
        tax: Decimal,
        shipping: Decimal,
        shipping_method: str,
        total: Decimal,
        shipping_address: dict[str, Any],
        billing_address: dict[str, Any],
        payment_method: str,
        notes: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> None:
        self.order_number = order_number
        self.buyer_id = buyer_id
        self.items = items
        self.seller_ids = sorted({i["sellerId"] for i in items})
        self.subtotal = subtotal
        self.discount = discount
        self.coupon_code = coupon_code
        self.tax = tax
        self.shipping = shipping
        self.shipping_method = shipping_method
        self.total = total
        self.payment_method = payment_method
        self.created_at = at
        self.expires_at = expires_at
        self.status = "CREATED"
        self.payment_status = "PENDING"
        self.cancelled_at: datetime | None = None

    @classmethod
    def place(cls, order_id: UUID, **fields: Any) -> Order:
        """Create with a chosen id (the paymentUrl names it before the save)."""
        return cls._create(cls.Placed, id=order_id, **fields)  # type: ignore[attr-defined,no-any-return]

    def involves_seller(self, seller_id: str) -> bool:
        return seller_id in self.seller_ids

    def change_status(self, status: str, notes: str, at: datetime) -> None:
        """An admin moves the order along the status machine (CANCELLED goes through cancel)."""
        if status not in STATUSES:
            raise UnknownOrderStatus(f"status must be one of {', '.join(STATUSES)}", field="status")
        if status == "CANCELLED":
            raise InvalidOrderStatus("cancel an order with PUT .../cancel", status=status)
        self._check_transition(status)
        if status == "PROCESSING" and self.status == "CREATED" and self.payment_method != "COD":
            raise InvalidOrderStatus("an unpaid order can be processed only when paid on delivery (COD)")
        self._status_changed(status, self.status, notes, at)

    def _check_transition(self, status: str) -> None:
        if status not in TRANSITIONS[self.status]:
            raise InvalidOrderStatus(
                f"an order cannot go from {self.status} to {status}", current=self.status, requested=status
            )

    @event("StatusChanged")
    def _status_changed(self, status: str, previous: str, notes: str, at: datetime) -> None:
        self.status = status
        if status == "PAID":
            self.payment_status = "COMPLETED"

    def cancel(self, reason: str, cancelled_by: str, notes: str, at: datetime) -> Decimal | None:
        """Cancel before anything ships; returns the amount due back if it was paid."""
        if self.status not in CANCELLABLE:
            raise InvalidOrderStatus(
                f"a {self.status} order cannot be cancelled", current=self.status, requested="CANCELLED"
            )
        refund_due = self.total if self.payment_status == "COMPLETED" else None
        self._cancelled(reason, cancelled_by, notes, self.status, refund_due, at)
        return refund_due

    def expire(self, at: datetime) -> bool:
        """The unpaid-order rule: cancel an unpaid order past its deadline. False (no event)
        when it was paid, cancelled, is COD, or is not due yet: a late or duplicate job is
        harmless."""
        if self.status != "CREATED" or self.expires_at is None or at < self.expires_at:
            return False
        self._expired(at)
        return True

    @event("Expired")
    def _expired(self, at: datetime) -> None:
        self.status = "CANCELLED"
        self.cancelled_at = at

    @event("Cancelled")
    def _cancelled(
        self, reason: str, cancelled_by: str, notes: str, previous: str, refund_due: Decimal | None, at: datetime
    ) -> None:
        self.status = "CANCELLED"
        self.cancelled_at = at
