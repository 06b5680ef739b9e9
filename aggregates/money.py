"""Money: Decimal amounts in TWD, rounded half-up to 2 places (SPEC.md "Totals")."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
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


#: A decimal string: digits, optionally a point and digits, optionally a leading minus (so that
#: "-5" is told it must be above 0). No exponent, no spaces, no "NaN" or "Infinity".
_DECIMAL_STRING = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,30})?")
NUMBER_RULE = 'a JSON number or a decimal string such as "120.50"'


def as_number(raw: Any, field: str = "value") -> Decimal:
    """The wire shape of an amount: a JSON number or a decimal string, finite; never a
    boolean, an exponent string, null, a list or an object. Not yet rounded or bounded."""
    if isinstance(raw, Decimal):
        amount = raw
    elif isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InvalidMoney(f"{field} must be {NUMBER_RULE}", field=field, problem="WRONG_TYPE")
    elif isinstance(raw, str):
        if not _DECIMAL_STRING.fullmatch(raw):
            raise InvalidMoney(f"{field} must be {NUMBER_RULE}", field=field, problem="WRONG_TYPE")
        amount = Decimal(raw)
    elif isinstance(raw, float):
        # The shortest text that reads back as the same float: what the client wrote for
        # 120.5, and 0.30000000000000004 for 0.1 + 0.2 (refused below as too precise).
        amount = Decimal(repr(raw)) if math.isfinite(raw) else Decimal("NaN")
    else:
        amount = Decimal(raw)
    if not amount.is_finite():
        raise InvalidMoney(f"{field} must be a finite number", field=field, problem="NOT_A_NUMBER")
    return amount


def parse_amount(raw: Any, field: str = "value") -> Decimal:
    """The one rule for money a client sends (docs/API.md "Money in requests"): a JSON
    number or a decimal string (:func:`as_number`) with at most 2 decimal places (never
    rounded silently) and at most 16 digits before the point."""
    amount = as_number(raw, field)
    if amount.adjusted() > 15:  # beyond any price, and beyond what quantize can represent
        raise InvalidMoney(f"{field} is too large", field=field, problem="TOO_LARGE")
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidMoney(
            f"{field} has more than 2 decimal places", field=field, problem="TOO_PRECISE"
        )
    return quantize(amount)


def parse_money(raw: Any, currency: Any, field: str = "amount") -> Decimal:
    """A Money a client sends, ``{"value", "currency"}``: the currency is TWD and the value
    follows :func:`parse_amount` and is above 0 (every Money a client sends is a price or
    an amount to pay or pay back)."""
    if currency != CURRENCY:
        facts = {"currency": currency} if isinstance(currency, str) else {}
        raise InvalidMoney(
            f"{field} must be in {CURRENCY}", field=field, problem="NOT_ALLOWED_VALUE", **facts
        )
    amount = parse_amount(raw, field)
    if amount <= 0:
        raise InvalidMoney(f"{field} must be greater than 0", field=field, problem="TOO_SMALL")
    return amount


def parse_price(raw: Any, currency: str | None = CURRENCY, field: str = "price") -> Decimal:
    """A product price: TWD, > 0, at most 2 decimals, at most :data:`MAX_PRICE`."""
    amount = parse_money(raw, CURRENCY if currency is None else currency, field)
    if amount > MAX_PRICE:
        raise InvalidMoney(f"{field} must be at most {MAX_PRICE}", field=field, problem="TOO_LARGE")
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
