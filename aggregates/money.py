"""Money: Decimal amounts in TWD, rounded half-up to 2 places (SPEC.md "Totals")."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from aggregates.errors import DomainError

CURRENCY = "TWD"
CENT = Decimal("0.01")
#: No single price above this (NT$10 million): a typo guard, far above the NT$100,000 order limit.
MAX_PRICE = Decimal(10000000)


class InvalidMoney(DomainError):
    """An amount that is not a usable TWD value."""


def quantize(amount: Decimal) -> Decimal:
    """Round half-up to 2 decimal places."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(raw: Any, field: str = "value") -> Decimal:
    """A finite Decimal with at most 2 decimal places (never rounded silently)."""
    if isinstance(raw, bool):
        raise InvalidMoney(f"{field} must be a number", field=field)
    try:
        amount = Decimal(str(raw)) if not isinstance(raw, Decimal) else raw
    except (InvalidOperation, ValueError):
        raise InvalidMoney(f"{field} must be a number", field=field) from None
    if not amount.is_finite():
        raise InvalidMoney(f"{field} must be a finite number", field=field)
    if amount.adjusted() > 15:  # beyond any price, and beyond what quantize can represent
        raise InvalidMoney(f"{field} is too large", field=field)
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidMoney(f"{field} has more than 2 decimal places", field=field)
    return quantize(amount)


def parse_price(raw: Any, currency: str | None = CURRENCY, field: str = "price") -> Decimal:
    """A product price: TWD, > 0, at most 2 decimals, at most :data:`MAX_PRICE`."""
    if currency is not None and currency != CURRENCY:
        raise InvalidMoney(f"{field} must be in {CURRENCY}", field=field, currency=currency)
    amount = parse_amount(raw, field)
    if amount <= 0:
        raise InvalidMoney(f"{field} must be greater than 0", field=field)
    if amount > MAX_PRICE:
        raise InvalidMoney(f"{field} must be at most {MAX_PRICE}", field=field)
    return amount


def to_minor(amount: Decimal) -> int:
    """Whole cents, for exact storage and sorting in read models on every database."""
    return int(quantize(amount) * 100)


def from_minor(minor: int) -> Decimal:
    return quantize(Decimal(minor) / 100)


def money(amount: Decimal) -> dict[str, Any]:
    """The wire form of API.md: ``{"value": number, "currency": "TWD"}``."""
    value = quantize(amount)
    number: int | float = int(value) if value == value.to_integral_value() else float(value)
    return {"value": number, "currency": CURRENCY}
