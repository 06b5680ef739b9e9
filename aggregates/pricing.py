"""Order totals (SPEC.md "Totals"): subtotal, one coupon's discount, 5% tax, shipping.

total = subtotal - discount + tax + shipping, each amount Decimal rounded half-up to 2 places;
tax is charged on (subtotal - discount); the discount never exceeds the subtotal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from aggregates.errors import DomainError
from aggregates.money import money, quantize

DEFAULT_TAX_RATE = Decimal("0.05")
DEFAULT_SHIPPING_FEES: Mapping[str, Decimal] = {
    "STANDARD": Decimal(60),
    "EXPRESS": Decimal(120),
    "SAME_DAY": Decimal(200),
    "PICKUP": Decimal(0),
}
#: Orders above this total are refused (ORDER_LIMIT_EXCEEDED).
ORDER_LIMIT = Decimal(100000)


class UnknownShippingMethod(DomainError):
    pass


class OrderLimitExceeded(DomainError):
    """The order total is above the NT$100,000 limit."""


@dataclass(frozen=True)
class Line:
    unit_price: Decimal
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return quantize(self.unit_price * self.quantity)


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    shipping: Decimal
    total: Decimal


def shipping_fee(method: str, fees: Mapping[str, Decimal] = DEFAULT_SHIPPING_FEES) -> Decimal:
    if method not in fees:
        raise UnknownShippingMethod(
            f"shippingMethod must be one of {', '.join(fees)}", field="shippingMethod"
        )
    return quantize(fees[method])


def compute_totals(
    lines: Iterable[Line],
    discount: Decimal,
    shipping: Decimal,
    tax_rate: Decimal = DEFAULT_TAX_RATE,
) -> Totals:
    subtotal = quantize(sum((line.subtotal for line in lines), Decimal(0)))
    discount = min(quantize(max(discount, Decimal(0))), subtotal)
    tax = quantize((subtotal - discount) * tax_rate)
    shipping = quantize(shipping)
    total = subtotal - discount + tax + shipping
    return Totals(subtotal, discount, tax, shipping, total)


def check_order_limit(totals: Totals, limit: Decimal = ORDER_LIMIT) -> None:
    if totals.total > limit:
        raise OrderLimitExceeded(
            f"an order may total at most NT${limit:,.0f}",
            total=money(totals.total),
            limit=money(limit),
        )
