"""Inventory: warehouses, suppliers, and the stock of each product across warehouses.

One :class:`Inventory` aggregate per product holds its levels in every warehouse and the
reservations of open orders. Receipts, transfers, adjustments and reservations are its events,
so a transfer (two warehouses) or a checkout reservation is one atomic, version-checked change,
and "stock never negative" is an invariant of a single aggregate.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError, NotFound
from aggregates.text import check_text

#: Largest quantity in one receipt, transfer or adjustment (a typo guard).
MAX_QUANTITY = 1_000_000
ADJUSTMENT_REASONS = ("COUNT", "DAMAGED", "LOST", "FOUND", "RETURNED", "OTHER")
WAREHOUSE_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,19}$")


class InvalidQuantity(DomainError):
    """Quantities are positive whole numbers."""


class InsufficientStock(DomainError):
    """Not enough available units (422 INSUFFICIENT_STOCK)."""


class WarehouseNotFound(NotFound):
    pass


class SupplierNotFound(NotFound):
    pass


class InventoryConflict(Conflict):
    pass


def check_quantity(quantity: int, field: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InvalidQuantity(f"{field} must be a positive whole number", field=field)
    if quantity > MAX_QUANTITY:
        raise InvalidQuantity(f"{field} must be at most {MAX_QUANTITY}", field=field)
    return quantity


def clean_text(raw: str, field: str, max_length: int, required: bool = True) -> str:
    """The text rule (aggregates/text.py), then every run of spaces and line breaks made one
    space; at most ``max_length``."""
    text = " ".join(check_text(raw.strip(), field, multiline=True, required=False).split())
    if required and not text:
        raise DomainError(f"{field} is required", field=field)
    if len(text) > max_length:
        raise DomainError(f"{field} must be at most {max_length} characters", field=field)
    return text


# --- warehouses and suppliers ---------------------------------------------------------------
class Warehouse(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Created: ClassVar[Any]

    @event("Created")
    def __init__(self, code: str, name: str, address: str) -> None:
        self.code = code
        self.name = name
        self.address = address

    @classmethod
    def create(cls, warehouse_id: UUID, code: str, name: str, address: str) -> Warehouse:
        code = code.strip().upper()
        if not WAREHOUSE_CODE_RE.fullmatch(code):
            raise DomainError(
                "warehouse code: 2-20 letters, digits, '-' or '_', starting with a letter or digit",
                field="code",
            )
        return cls._create(
            cls.Created,
            id=warehouse_id,
            code=code,
            name=clean_text(name, "name", 100),
            address=clean_text(address, "address", 300, required=False),
        )


class Supplier(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Created: ClassVar[Any]

    @event("Created")
    def __init__(
        self, name: str, contact_email: str | None, phone: str | None, address: str
    ) -> None:
        self.name = name
        self.contact_email = contact_email
        self.phone = phone
        self.address = address

    @classmethod
    def create(
        cls,
        supplier_id: UUID,
        name: str,
        contact_email: str | None,
        phone: str | None,
        address: str,
    ) -> Supplier:
        return cls._create(
            cls.Created,
            id=supplier_id,
            name=clean_text(name, "name", 100),
            contact_email=contact_email,
            phone=phone,
            address=clean_text(address, "address", 300, required=False),
        )


# --- stock ----------------------------------------------------------------------------------
_INVENTORY_NS = UUID("3c0b2f6e-9a57-4d7e-b1c4-5f0e8d7a6b21")


class Inventory(Aggregate):
    """The stock of one product: per warehouse on hand and reserved, and open reservations."""

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        ListingChanged: ClassVar[Any]
        Received: ClassVar[Any]
        Transferred: ClassVar[Any]
        Adjusted: ClassVar[Any]
        Reserved: ClassVar[Any]
        Released: ClassVar[Any]
        Allocated: ClassVar[Any]
        Dispatched: ClassVar[Any]
        Returned: ClassVar[Any]
        LowStockThresholdSet: ClassVar[Any]
        LowStock: ClassVar[Any]
        StockRecovered: ClassVar[Any]

    # Class-level defaults: inventories opened (or snapshotted) before low-stock alerts
    # existed have no such attributes of their own.
    low_stock_threshold: int | None = None
    low_stock_flagged = False

    @staticmethod
    def create_id(product_id: str) -> UUID:
        return uuid5(_INVENTORY_NS, product_id)

    @event("Opened")
    def __init__(self, product_id: str, seller_id: str) -> None:
        self.product_id = product_id
        self.seller_id = seller_id
        self.on_hand: dict[str, int] = {}
        self.reserved: dict[str, int] = {}
        #: order id -> {warehouse id: units}
        self.reservations: dict[str, dict[str, int]] = {}
        #: Mirrors the product's listing, so a checkout (which saves this aggregate) conflicts
        #: with a concurrent delist or suspension instead of ordering a product just taken down.
        self.listed = True

    def set_listed(self, listed: bool) -> bool:
        if listed == self.listed:
            return False
        self._listing_changed(listed)
        return True

    @event("ListingChanged")
    def _listing_changed(self, listed: bool) -> None:
        self.listed = listed

    # --- state ---------------------------------------------------------------------------
    def available_in(self, warehouse_id: str) -> int:
        return self.on_hand.get(warehouse_id, 0) - self.reserved.get(warehouse_id, 0)

    @property
    def available(self) -> int:
        return sum(self.available_in(w) for w in self.on_hand)

    @property
    def total_on_hand(self) -> int:
        return sum(self.on_hand.values())

    def _short(self, requested: int, available: int, **more: Any) -> InsufficientStock:
        return InsufficientStock(
            f"only {available} unit(s) available, {requested} requested",
            productId=self.product_id,
            requested=requested,
            available=available,
            **more,
        )

    # --- receipts, transfers, adjustments ------------------------------------------------
    def receive(
        self,
        receipt_id: str,
        warehouse_id: str,
        quantity: int,
        supplier_id: str | None,
        at: datetime,
    ) -> None:
        self._received(receipt_id, warehouse_id, check_quantity(quantity), supplier_id, at)

    @event("Received")
    def _received(
        self,
        receipt_id: str,
        warehouse_id: str,
        quantity: int,
        supplier_id: str | None,
        at: datetime,
    ) -> None:
        self.on_hand[warehouse_id] = self.on_hand.get(warehouse_id, 0) + quantity

    def transfer(
        self, transfer_id: str, from_warehouse: str, to_warehouse: str, quantity: int, at: datetime
    ) -> None:
        check_quantity(quantity)
        if from_warehouse == to_warehouse:
            raise DomainError("a transfer needs two different warehouses", field="toWarehouseId")
        available = self.available_in(from_warehouse)
        if quantity > available:
            raise self._short(quantity, available, warehouseId=from_warehouse)
        self._transferred(transfer_id, from_warehouse, to_warehouse, quantity, at)

    @event("Transferred")
    def _transferred(
        self, transfer_id: str, from_warehouse: str, to_warehouse: str, quantity: int, at: datetime
    ) -> None:
        self.on_hand[from_warehouse] -= quantity
        self.on_hand[to_warehouse] = self.on_hand.get(to_warehouse, 0) + quantity

    def adjust(
        self,
        adjustment_id: str,
        warehouse_id: str,
        change: int,
        reason: str,
        note: str,
        at: datetime,
    ) -> None:
        """A stock count correction: ``change`` units in (> 0) or out (< 0)."""
        if reason not in ADJUSTMENT_REASONS:
            raise DomainError(
                f"reason must be one of {', '.join(ADJUSTMENT_REASONS)}", field="reason"
            )
        if isinstance(change, bool) or not isinstance(change, int) or change == 0:
            raise InvalidQuantity(
                "quantityChange must be a non-zero whole number", field="quantityChange"
            )
        check_quantity(abs(change), "quantityChange")
        if len(note) > 300:
            raise DomainError("note must be at most 300 characters", field="note")
        available = self.available_in(warehouse_id)
        if change < 0 and -change > available:
            raise self._short(-change, available, warehouseId=warehouse_id)
        self._adjusted(adjustment_id, warehouse_id, change, reason, note, at)

    @event("Adjusted")
    def _adjusted(
        self,
        adjustment_id: str,
        warehouse_id: str,
        change: int,
        reason: str,
        note: str,
        at: datetime,
    ) -> None:
        self.on_hand[warehouse_id] = self.on_hand.get(warehouse_id, 0) + change

    # --- reservations (checkout) ---------------------------------------------------------
    def reserve(self, order_id: str, quantity: int, at: datetime) -> dict[str, int]:
        """Hold ``quantity`` units for an order, taken from the fullest warehouses first."""
        check_quantity(quantity)
        if order_id in self.reservations:
            raise InventoryConflict("this order already holds a reservation", orderId=order_id)
        if quantity > self.available:
            raise self._short(quantity, self.available)
        allocation: dict[str, int] = {}
        remaining = quantity
        for warehouse_id in sorted(self.on_hand, key=lambda w: (-self.available_in(w), w)):
            take = min(remaining, self.available_in(warehouse_id))
            if take > 0:
                allocation[warehouse_id] = take
                remaining -= take
            if remaining == 0:
                break
        self._reserved(order_id, allocation, at)
        return allocation

    @event("Reserved")
    def _reserved(self, order_id: str, allocation: dict[str, int], at: datetime) -> None:
        self.reservations[order_id] = dict(allocation)
        for warehouse_id, units in allocation.items():
            self.reserved[warehouse_id] = self.reserved.get(warehouse_id, 0) + units

    def release(
        self, order_id: str, reason: str, at: datetime, quantity: int | None = None
    ) -> bool:
        """Give an order's units back (``quantity`` of them, from the warehouses in name
        order; all by default); False (and no event) if it holds none."""
        held = self.reservations.get(order_id)
        if not held:
            return False
        allocation = dict(held)
        if quantity is not None:
            if quantity > sum(held.values()):
                raise InventoryConflict(
                    "more units than the order holds",
                    orderId=order_id,
                    requested=quantity,
                    held=sum(held.values()),
                )
            allocation, remaining = {}, check_quantity(quantity)
            for warehouse_id in sorted(held):
                take = min(remaining, held[warehouse_id])
                if take > 0:
                    allocation[warehouse_id] = take
                    remaining -= take
        self._released(order_id, allocation, reason, at)
        return True

    @event("Released")
    def _released(
        self, order_id: str, allocation: dict[str, int], reason: str, at: datetime
    ) -> None:
        # A whole release (every event before partial cancellation) empties the reservation.
        held = self.reservations[order_id]
        for warehouse_id, units in allocation.items():
            self.reserved[warehouse_id] -= units
            held[warehouse_id] -= units
            if held[warehouse_id] == 0:
                del held[warehouse_id]
        if not held:
            del self.reservations[order_id]

    # --- low-stock alerts ------------------------------------------------------------------
    def set_low_stock_threshold(self, threshold: int | None, at: datetime) -> bool:
        """This product's own threshold (None: the platform default). False if unchanged."""
        if threshold is not None and (
            isinstance(threshold, bool) or not 0 <= threshold <= MAX_QUANTITY
        ):
            raise InvalidQuantity(
                f"threshold must be a whole number from 0 to {MAX_QUANTITY}", field="threshold"
            )
        if threshold == self.low_stock_threshold:
            return False
        self._low_stock_threshold_set(self.product_id, threshold, at)
        return True

    @event("LowStockThresholdSet")
    def _low_stock_threshold_set(
        self, product_id: str, threshold: int | None, at: datetime
    ) -> None:
        self.low_stock_threshold = threshold

    def threshold(self, default: int) -> int:
        return default if self.low_stock_threshold is None else self.low_stock_threshold

    def check_low_stock(self, default: int, at: datetime) -> str | None:
        """Record a crossing of the threshold: ``LowStock`` once when available stock falls to
        it or below, ``StockRecovered`` once it is above again. A product never stocked is
        not low. Returns the event's name, or None when nothing crossed."""
        if not self.on_hand:
            return None
        threshold = self.threshold(default)
        low = self.available <= threshold
        if low and not self.low_stock_flagged:
            self._low_stock(self.product_id, self.seller_id, self.available, threshold, at)
            return "LowStock"
        if not low and self.low_stock_flagged:
            self._stock_recovered(self.product_id, self.available, threshold, at)
            return "StockRecovered"
        return None

    @event("LowStock")
    def _low_stock(
        self, product_id: str, seller_id: str, available: int, threshold: int, at: datetime
    ) -> None:
        self.low_stock_flagged = True

    @event("StockRecovered")
    def _stock_recovered(
        self, product_id: str, available: int, threshold: int, at: datetime
    ) -> None:
        self.low_stock_flagged = False

    # --- fulfilment (process and ship) ---------------------------------------------------
    def allocate(self, order_id: str, warehouse_id: str, at: datetime) -> bool:
        """Move an order's reservation into one warehouse (the one it will ship from).
        False (no event) when it is already all there; InsufficientStock when that warehouse
        cannot hold it."""
        held = self.reservations.get(order_id)
        if held is None:
            raise InventoryConflict(
                "this order holds no reservation of the product", orderId=order_id
            )
        units = sum(held.values())
        if held == {warehouse_id: units}:
            return False
        room = self.available_in(warehouse_id) + held.get(warehouse_id, 0)
        if units > room:
            raise self._short(units, room, warehouseId=warehouse_id)
        self._allocated(order_id, dict(held), {warehouse_id: units}, at)
        return True

    @event("Allocated")
    def _allocated(
        self, order_id: str, previous: dict[str, int], allocation: dict[str, int], at: datetime
    ) -> None:
        for warehouse_id, units in previous.items():
            self.reserved[warehouse_id] -= units
        for warehouse_id, units in allocation.items():
            self.reserved[warehouse_id] = self.reserved.get(warehouse_id, 0) + units
        self.reservations[order_id] = dict(allocation)

    def dispatch(
        self, order_id: str, shipment_id: str, quantity: int, at: datetime
    ) -> dict[str, int]:
        """Shipped units leave the warehouse: on hand and the order's reservation both drop."""
        check_quantity(quantity)
        held = self.reservations.get(order_id, {})
        if quantity > sum(held.values()):
            raise InventoryConflict(
                "more units than the order holds",
                orderId=order_id,
                requested=quantity,
                held=sum(held.values()),
            )
        taken: dict[str, int] = {}
        remaining = quantity
        for warehouse_id in sorted(held):
            take = min(remaining, held[warehouse_id])
            if take > 0:
                taken[warehouse_id] = take
                remaining -= take
        self._dispatched(order_id, shipment_id, taken, at)
        return taken

    @event("Dispatched")
    def _dispatched(
        self, order_id: str, shipment_id: str, taken: dict[str, int], at: datetime
    ) -> None:
        held = self.reservations[order_id]
        for warehouse_id, units in taken.items():
            held[warehouse_id] -= units
            if held[warehouse_id] == 0:
                del held[warehouse_id]
            self.reserved[warehouse_id] -= units
            self.on_hand[warehouse_id] -= units
        if not held:
            del self.reservations[order_id]

    # --- returns -------------------------------------------------------------------------
    def take_back(self, return_id: str, warehouse_id: str, quantity: int, at: datetime) -> None:
        """Units a buyer sent back are on hand again in the warehouse the seller names."""
        self._returned(return_id, warehouse_id, check_quantity(quantity), at)

    @event("Returned")
    def _returned(self, return_id: str, warehouse_id: str, quantity: int, at: datetime) -> None:
        self.on_hand[warehouse_id] = self.on_hand.get(warehouse_id, 0) + quantity
