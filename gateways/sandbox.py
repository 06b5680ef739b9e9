"""The card gateway interface and the built-in sandbox that stands in for a real acquirer.

``CardGateway`` is what the payment handlers call; production would wrap a real acquirer behind
the same two methods. ``payment_id`` and ``refund_id`` are idempotency keys: asking twice with
the same key must not charge or refund twice, and must give the same answer. The sandbox is
stateless and deterministic, so that holds across retries and processes: transaction ids are
``"tx_"``/``"re_"`` + the first 24 hex digits of sha256(key), and approval depends only on the
card number.

Sandbox test numbers (any future expiry, any 3-digit CVV, 4 digits for AMEX):

==================  ==========================================
4242424242424242    approved (VISA)
5555555555554444    approved (MASTERCARD)
4000000000000002    declined, ``card_declined``
4000000000009995    declined, ``insufficient_funds``
4000000000000069    declined, ``expired_card``
any other number    approved if it passes the Luhn check
==================  ==========================================
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from gateways.cards import ValidCard, luhn_valid

APPROVED_TEST_CARDS = ("4242424242424242", "5555555555554444")
#: Declining test numbers, as in common sandboxes: number -> (decline_code, message).
DECLINING_TEST_CARDS: dict[str, tuple[str, str]] = {
    "4000000000000002": ("card_declined", "The card was declined."),
    "4000000000009995": ("insufficient_funds", "The card has insufficient funds."),
    "4000000000000069": ("expired_card", "The card has expired."),
}

_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ChargeResult:
    """A gateway's answer to a charge; ``decline_code`` is set only when not approved."""

    approved: bool
    transaction_id: str
    decline_code: str | None
    message: str


class CardGateway(Protocol):
    """What the payment handlers need from a card acquirer."""

    def charge(
        self, payment_id: str, card: ValidCard, amount: Decimal, currency: str
    ) -> ChargeResult:
        """Charge ``amount`` once per ``payment_id`` (the idempotency key)."""
        ...

    def refund(self, payment_transaction_id: str, refund_id: str, amount: Decimal) -> str:
        """Refund part or all of a charge once per ``refund_id``; the refund transaction id."""
        ...


def _derived_id(prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def _check_amount(amount: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ValueError("amount must be a positive, finite Decimal")


def _check_key(name: str, key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{name} must be a non-empty string (it is the idempotency key)")


class SandboxGateway:
    """Deterministic stand-in for a card acquirer (see the module docstring for test cards)."""

    def charge(
        self, payment_id: str, card: ValidCard, amount: Decimal, currency: str
    ) -> ChargeResult:
        """Approve or decline from the card number alone; same ``payment_id``, same id."""
        _check_key("payment_id", payment_id)
        _check_amount(amount)
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise ValueError("currency must be a three-letter ISO 4217 code such as TWD")
        tx = _derived_id("tx_", payment_id)
        if not luhn_valid(card.number):  # a ValidCard built by hand, not by validate_card
            return ChargeResult(False, tx, "invalid_number", "The card number is not valid.")
        declined = DECLINING_TEST_CARDS.get(card.number)
        if declined is not None:
            return ChargeResult(False, tx, declined[0], declined[1])
        return ChargeResult(True, tx, None, "Approved.")

    def refund(self, payment_transaction_id: str, refund_id: str, amount: Decimal) -> str:
        """Always succeeds for a sandbox charge id; same ``refund_id``, same refund id."""
        if not isinstance(payment_transaction_id, str) or not re.fullmatch(
            r"tx_[0-9a-f]{24}", payment_transaction_id
        ):
            raise ValueError("payment_transaction_id is not a sandbox transaction id")
        _check_key("refund_id", refund_id)
        _check_amount(amount)
        return _derived_id("re_", refund_id)
