"""Card checks done before any gateway is asked: Luhn, brand, expiry, CVV.

All pure. The raw card number and CVV live only in memory for the length of one charge:
``CardDetails`` and ``ValidCard`` never show them in ``repr``/``str``, and
``ValidCard.public_info()`` (brand, last four digits, expiry) is the only card data that may be
stored in events or written to logs (PCI DSS: never keep the full PAN or the CVV).

Errors are ``CardError``: a ``ValueError`` that also names the request field at fault
(``cardDetails.number``, ``cardDetails.expiryMonth`` ...) so the API can answer 400 with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

NUMBER_FIELD = "cardDetails.number"
MONTH_FIELD = "cardDetails.expiryMonth"
YEAR_FIELD = "cardDetails.expiryYear"
CVV_FIELD = "cardDetails.cvv"
HOLDER_FIELD = "cardDetails.holderName"

MIN_DIGITS, MAX_DIGITS = 12, 19
#: A card expiring further ahead than this is a typo (no issuer prints 20+ years of validity).
MAX_YEARS_AHEAD = 20
MAX_HOLDER_NAME = 100

# ASCII only: str.isdigit() also accepts full-width and superscript digits.
_DIGITS = re.compile(r"[0-9]+")


class CardError(ValueError):
    """Card data that cannot be charged; ``field`` names the offending request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- number ---------------------------------------------------------------------------------
def _luhn_sum(digits: str) -> int:
    """Luhn sum of ``digits`` where the last digit is the check digit (not doubled)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total


def luhn_check_digit(partial: str) -> str:
    """The digit that, appended to ``partial`` (ASCII digits), makes it Luhn-valid."""
    if not _DIGITS.fullmatch(partial):
        raise ValueError("partial must be ASCII digits")
    return str((10 - _luhn_sum(partial + "0") % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True for 12 to 19 ASCII digits whose Luhn checksum is 0 mod 10."""
    if not isinstance(number, str) or not _DIGITS.fullmatch(number):
        return False
    return MIN_DIGITS <= len(number) <= MAX_DIGITS and _luhn_sum(number) % 10 == 0


def normalize_number(raw: str) -> str:
    """The digits of a card number as typed (spaces and dashes allowed), or ``CardError``."""
    if not isinstance(raw, str):
        raise CardError(NUMBER_FIELD, "card number must be a string of digits")
    digits = raw.replace(" ", "").replace("-", "")
    if not _DIGITS.fullmatch(digits):
        raise CardError(NUMBER_FIELD, "card number may contain only digits, spaces and dashes")
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise CardError(NUMBER_FIELD, f"card number must have {MIN_DIGITS} to {MAX_DIGITS} digits")
    if not luhn_valid(digits):
        raise CardError(NUMBER_FIELD, "card number is not valid (checksum mismatch)")
    return digits


def brand(number: str) -> str:
    """Card network from the number's prefix (IIN ranges); ``UNKNOWN`` if none matches."""
    if not isinstance(number, str) or not _DIGITS.fullmatch(number) or len(number) < 4:
        return "UNKNOWN"
    p2, p3, p4 = int(number[:2]), int(number[:3]), int(number[:4])
    if number[0] == "4":
        return "VISA"
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return "MASTERCARD"
    if p2 in (34, 37):
        return "AMEX"
    if 3528 <= p4 <= 3589:
        return "JCB"
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65:
        return "DISCOVER"
    if p2 == 62:
        return "UNIONPAY"
    return "UNKNOWN"


# --- expiry and CVV -------------------------------------------------------------------------
def _plain_int(value: object) -> bool:
    # bool is an int subclass: True must not pass as January.
    return isinstance(value, int) and not isinstance(value, bool)


def check_expiry(month: int, year: int, today: date) -> None:
    """Raise ``CardError`` unless the card is valid on ``today``.

    A card is valid through the last day of its expiry month. The year must have four digits
    (a two-digit ``30`` is refused rather than guessed) and be at most 20 years ahead.
    """
    if not _plain_int(month) or not 1 <= month <= 12:
        raise CardError(MONTH_FIELD, "expiry month must be a whole number from 1 to 12")
    if not _plain_int(year):
        raise CardError(YEAR_FIELD, "expiry year must be a whole number such as 2030")
    if not 1000 <= year <= 9999:
        raise CardError(YEAR_FIELD, "expiry year must have four digits, e.g. 2030 (not 30)")
    if year > today.year + MAX_YEARS_AHEAD:
        raise CardError(
            YEAR_FIELD, f"expiry year is more than {MAX_YEARS_AHEAD} years ahead; check it"
        )
    if (year, month) < (today.year, today.month):
        field = YEAR_FIELD if year < today.year else MONTH_FIELD
        raise CardError(field, f"card expired at the end of {month:02d}/{year}")


def check_cvv(cvv: str, brand: str) -> None:
    """Raise ``CardError`` unless ``cvv`` is 3 ASCII digits (4 for AMEX)."""
    length = 4 if brand == "AMEX" else 3
    if not isinstance(cvv, str) or not _DIGITS.fullmatch(cvv) or len(cvv) != length:
        raise CardError(CVV_FIELD, f"CVV must be {length} digits for this card")


def _check_holder(name: object) -> str:
    if name is None:
        return ""
    if not isinstance(name, str):
        raise CardError(HOLDER_FIELD, "holder name must be a string")
    name = name.strip()
    if len(name) > MAX_HOLDER_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise CardError(
            HOLDER_FIELD, f"holder name must be at most {MAX_HOLDER_NAME} printable characters"
        )
    return name


def _masked_last4(raw: object) -> str:
    digits = raw.replace(" ", "").replace("-", "") if isinstance(raw, str) else ""
    # A short string could be the whole secret; show nothing unless it looks like a full PAN.
    ok = _DIGITS.fullmatch(digits) is not None and len(digits) >= MIN_DIGITS
    return digits[-4:] if ok else "????"


# --- records --------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class ValidCard:
    """A card that passed every local check; made by ``validate_card``.

    ``repr``/``str`` show brand, last four and expiry only. Store or log ``public_info()``.
    """

    number: str
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    cvv: str
    holder_name: str

    def public_info(self) -> dict[str, Any]:
        """The only card data that may be stored or logged."""
        return {
            "brand": self.brand,
            "last4": self.last4,
            "expiryMonth": self.expiry_month,
            "expiryYear": self.expiry_year,
        }

    def __repr__(self) -> str:
        return (
            f"ValidCard(brand={self.brand!r}, last4={self.last4!r}, "
            f"expiry='{self.expiry_month:02d}/{self.expiry_year}')"
        )

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class CardDetails:
    """Card data as received (``paymentData.cardDetails``), not yet checked."""

    number: str
    expiry_month: int
    expiry_year: int
    cvv: str
    holder_name: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CardDetails:
        """From the API's camelCase object; types are checked later by ``validate``."""
        if not isinstance(data, Mapping):
            raise CardError("cardDetails", "cardDetails must be an object")
        for key, field in (
            ("number", NUMBER_FIELD),
            ("expiryMonth", MONTH_FIELD),
            ("expiryYear", YEAR_FIELD),
            ("cvv", CVV_FIELD),
        ):
            if data.get(key) is None:
                raise CardError(field, f"{field} is required")
        return cls(
            number=data["number"],
            expiry_month=data["expiryMonth"],
            expiry_year=data["expiryYear"],
            cvv=data["cvv"],
            holder_name=data.get("holderName"),
        )

    def validate(self, today: date) -> ValidCard:
        """Run every check; the first failure raises ``CardError``."""
        return validate_card(
            self.number,
            self.expiry_month,
            self.expiry_year,
            self.cvv,
            self.holder_name,
            today=today,
        )

    def __repr__(self) -> str:
        last4 = _masked_last4(self.number)
        digits = last4 if last4 == "????" else self.number.replace(" ", "").replace("-", "")
        return (
            f"CardDetails(brand={brand(digits)!r}, last4={last4!r}, "
            f"expiry={self.expiry_month!r}/{self.expiry_year!r})"
        )

    __str__ = __repr__


def validate_card(
    number: str,
    expiry_month: int,
    expiry_year: int,
    cvv: str,
    holder_name: str | None = None,
    *,
    today: date,
) -> ValidCard:
    """Check number, expiry, CVV and holder name in that order; return a ``ValidCard``."""
    digits = normalize_number(number)
    card_brand = brand(digits)
    check_expiry(expiry_month, expiry_year, today)
    check_cvv(cvv, card_brand)
    return ValidCard(
        number=digits,
        brand=card_brand,
        last4=digits[-4:],
        expiry_month=expiry_month,
        expiry_year=expiry_year,
        cvv=cvv,
        holder_name=_check_holder(holder_name),
    )
