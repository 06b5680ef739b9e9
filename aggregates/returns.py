"""Returns: a buyer sends delivered items back to their seller and is refunded for them.

REQUESTED → APPROVED → SHIPPED_BACK → RECEIVED, or REQUESTED → REJECTED. One return per order
and seller (its id derives from the pair), listing every item to return: two racing requests
cannot both land, and a rejected return is taken further as a dispute. The refund is not the
return's own money: on RECEIVED it is requested on the Order through the order's refund path,
whose version check keeps "never more than was paid" true against any other refund.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError, NotFound
from aggregates.inventory import clean_text
from aggregates.orders import InvalidOrderStatus, Order

REASON_MAX = 500
NOTE_MAX = 500
_NS = UUID("0f6c2d8e-4b1a-4e7c-9a53-7d2e1b6c8f40")


class ReturnNotFound(NotFound):
    pass


class ReturnAlreadyExists(Conflict):
    """The buyer already asked to return items of this seller in this order (409)."""


class InvalidReturnStatus(Conflict):
    """The step does not follow from where the return is (409 INVALID_RETURN_STATUS)."""


class ReturnWindowClosed(Conflict):
    """The order was delivered longer ago than the return window (409)."""


def plan_return(
    order: Order, items: list[tuple[str, int]], now: datetime, window: timedelta
) -> tuple[str, list[dict[str, Any]]]:
    """Check a return request against the order: DELIVERED, within ``window`` of delivery, known
    items of one seller, never more units than were delivered and not refunded yet. Returns the
    seller and the lines."""
    if order.status != "DELIVERED" or order.delivered_at is None:
        raise InvalidOrderStatus(
            "items can be returned once the order is DELIVERED",
            current=order.status,
            orderId=str(order.id),
        )
    if now > order.delivered_at + window:
        raise ReturnWindowClosed(
            f"returns are accepted for {window.days} days after delivery",
            deliveredAt=order.delivered_at.isoformat(),
            windowDays=window.days,
        )
    if not items:
        raise DomainError("name at least one item to return", field="items")
    lines: list[dict[str, Any]] = []
    sellers: set[str] = set()
    for n, (item_id, quantity) in enumerate(items):
        item = order.item(item_id)
        if item is None or any(line["orderItemId"] == item_id for line in lines):
            raise DomainError("unknown or repeated order item", field=f"items[{n}].orderItemId")
        left = order.refundable_units(item)
        if quantity > left:
            raise DomainError(
                f"only {left} unit(s) of that item can be returned",
                field=f"items[{n}].quantity",
                returnableQuantity=left,
            )
        sellers.add(item["sellerId"])
        lines.append(
            {
                "orderItemId": item_id,
                "productId": item["productId"],
                "name": item["name"],
                "quantity": quantity,
                "unitPrice": item["unitPrice"],
            }
        )
    if len(sellers) > 1:
        raise DomainError(
            "one return per seller: these items come from different sellers", field="items"
        )
    return sellers.pop(), lines


def refund_lines(order: Order, lines: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    """What of the returned units is still refundable on the order (a refund by the seller, an
    admin or a dispute may have covered some meanwhile)."""
    due = []
    for line in lines:
        item = order.item(line["orderItemId"])
        if item is None:
            continue
        left = order.refundable_units(item)
        units = min(int(line["quantity"]), left)
        if units > 0:
            due.append((line["orderItemId"], units, "RETURN"))
    return due


class ReturnRequest(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Requested: ClassVar[Any]
        Approved: ClassVar[Any]
        Rejected: ClassVar[Any]
        ShippedBack: ClassVar[Any]
        Received: ClassVar[Any]

    @staticmethod
    def create_id(order_id: str, seller_id: str) -> UUID:
        return uuid5(_NS, f"{order_id}/{seller_id}")

    @classmethod
    def request(
        cls,
        *,
        order_id: str,
        order_number: str,
        buyer_id: str,
        seller_id: str,
        items: list[dict[str, Any]],
        reason: str,
        images: list[str],
        at: datetime,
    ) -> ReturnRequest:
        return cls._create(
            cls.Requested,
            id=cls.create_id(order_id, seller_id),
            order_id=order_id,
            order_number=order_number,
            buyer_id=buyer_id,
            seller_id=seller_id,
            items=items,
            reason=clean_text(reason, "reason", REASON_MAX),
            images=images,
            at=at,
        )

    @event("Requested")
    def __init__(
        self,
        order_id: str,
        order_number: str,
        buyer_id: str,
        seller_id: str,
        items: list[dict[str, Any]],
        reason: str,
        images: list[str],
        at: datetime,
    ) -> None:
        self.order_id = order_id
        self.order_number = order_number
        self.buyer_id = buyer_id
        self.seller_id = seller_id
        self.items = items
        self.reason = reason
        self.images = list(images)
        self.status = "REQUESTED"
        self.requested_at = at
        self.updated_at = at
        self.decision_note: str | None = None
        self.carrier: str | None = None
        self.tracking_number: str | None = None
        self.warehouse_id: str | None = None
        self.refund: dict[str, Any] | None = None

    def _step(self, to: str, allowed_from: str) -> None:
        if self.status != allowed_from:
            raise InvalidReturnStatus(
                f"a {self.status} return cannot become {to}",
                current=self.status,
                requested=to,
                returnId=str(self.id),
            )

    # --- the seller decides ---------------------------------------------------------------
    def approve(self, by: str, note: str, at: datetime) -> None:
        self._step("APPROVED", "REQUESTED")
        self._approved(by=by, note=clean_text(note, "note", NOTE_MAX, required=False), at=at)

    @event("Approved")
    def _approved(self, by: str, note: str, at: datetime) -> None:
        self.status = "APPROVED"
        self.decision_note = note or None
        self.updated_at = at

    def reject(self, by: str, reason: str, at: datetime) -> None:
        self._step("REJECTED", "REQUESTED")
        self._rejected(by=by, reason=clean_text(reason, "reason", REASON_MAX), at=at)

    @event("Rejected")
    def _rejected(self, by: str, reason: str, at: datetime) -> None:
        self.status = "REJECTED"
        self.decision_note = reason
        self.updated_at = at

    # --- the buyer sends it back ----------------------------------------------------------
    def ship_back(self, carrier: str, tracking_number: str, at: datetime) -> None:
        self._step("SHIPPED_BACK", "APPROVED")
        self._shipped_back(
            carrier=clean_text(carrier, "carrier", 50),
            tracking_number=clean_text(tracking_number, "trackingNumber", 64),
            at=at,
        )

    @event("ShippedBack")
    def _shipped_back(self, carrier: str, tracking_number: str, at: datetime) -> None:
        self.status = "SHIPPED_BACK"
        self.carrier = carrier
        self.tracking_number = tracking_number
        self.updated_at = at

    # --- the seller receives it: stock back, refund asked of the order --------------------
    def check_receivable(self) -> None:
        self._step("RECEIVED", "SHIPPED_BACK")

    def receive(
        self, by: str, warehouse_id: str, refund: dict[str, Any] | None, at: datetime
    ) -> None:
        """``refund``: {refundId, amount, items} requested on the order, or None when nothing
        of these units was refundable any more."""
        self.check_receivable()
        self._received(by=by, warehouse_id=warehouse_id, refund=refund, at=at)

    @event("Received")
    def _received(
        self, by: str, warehouse_id: str, refund: dict[str, Any] | None, at: datetime
    ) -> None:
        self.status = "RECEIVED"
        self.warehouse_id = warehouse_id
        self.refund = refund
        self.updated_at = at
