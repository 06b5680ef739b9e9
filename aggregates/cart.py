"""The buyer's cart: product quantities, emptied by checkout in the same save as the order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import DomainError, NotFound

MAX_LINES = 50
MAX_QUANTITY_PER_LINE = 99
_NS = UUID("5d8c2a71-0f3e-4b6a-8e19-7c4d2b9a0f55")


class InvalidCartQuantity(DomainError):
    pass


class CartLineNotFound(NotFound):
    pass


class CartFull(DomainError):
    pass


class Cart(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        ItemSet: ClassVar[Any]
        ItemRemoved: ClassVar[Any]
        CheckedOut: ClassVar[Any]

    @staticmethod
    def create_id(buyer_id: str) -> UUID:
        return uuid5(_NS, buyer_id)

    @event("Opened")
    def __init__(self, buyer_id: str) -> None:
        self.buyer_id = buyer_id
        #: product id -> quantity, in the order they were first added
        self.items: dict[str, int] = {}

    @staticmethod
    def check_quantity(quantity: int) -> int:
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 1 <= quantity <= MAX_QUANTITY_PER_LINE
        ):
            raise InvalidCartQuantity(
                f"quantity must be a whole number from 1 to {MAX_QUANTITY_PER_LINE}",
                field="quantity",
            )
        return quantity

    def add(self, product_id: str, quantity: int) -> None:
        """Add units of a product on top of what the cart holds (capped at the line maximum)."""
        self.check_quantity(quantity)
        total = self.items.get(product_id, 0) + quantity
        self.set(product_id, min(total, MAX_QUANTITY_PER_LINE))

    def set(self, product_id: str, quantity: int) -> None:
        self.check_quantity(quantity)
        if product_id not in self.items and len(self.items) >= MAX_LINES:
            raise CartFull(f"a cart holds at most {MAX_LINES} different products")
        if self.items.get(product_id) != quantity:
            self._item_set(product_id, quantity)

    def change(self, product_id: str, quantity: int) -> None:
        """Change the quantity of a line that is already in the cart."""
        if product_id not in self.items:
            raise CartLineNotFound("that product is not in the cart", productId=product_id)
        self.set(product_id, quantity)

    @event("ItemSet")
    def _item_set(self, product_id: str, quantity: int) -> None:
        self.items[product_id] = quantity

    def remove(self, product_id: str) -> None:
        if product_id not in self.items:
            raise CartLineNotFound("that product is not in the cart", productId=product_id)
        self._item_removed(product_id)

    @event("ItemRemoved")
    def _item_removed(self, product_id: str) -> None:
        del self.items[product_id]

    def check_out(self, order_id: str) -> None:
        self._checked_out(order_id)

    @event("CheckedOut")
    def _checked_out(self, order_id: str) -> None:
        self.items = {}
