"""The card gateway interface and the built-in sandbox that stands in for a real acquirer.

``CardGateway`` is what the payment handlers call; production would wrap a real acquirer behind
the same methods. ``payment_id`` and ``refund_id`` are idempotency keys: asking twice with
the same key must not charge or refund twice, and must give the same answer. The sandbox is
stateless and deterministic, so that holds across retries and processes: transaction ids are
``"tx_"``/``"re_"`` + the first 24 hex digits of sha256(key), and approval depends only on the
card number.

Every acquirer can say what became of a charge or refund it was asked for (``lookup_charge``,
``lookup_refund``, by our payment or refund id): the payment-recovery rule uses that to settle
a payment whose request died between ``PaymentStarted`` and the answer. The sandbox keeps a
ledger of everything it processed for that (``SandboxLedger``: durable in the service's own
database when the application builds it, see commands/sandbox_ledger.py), written *before* it
answers, as an acquirer's books would be.

Sandbox test numbers (any future expiry, any 3-digit CVV, 4 digits for AMEX):

==================  ==========================================
4242424242424242    approved (VISA)
5555555555554444    approved (MASTERCARD)
4000000000000002    declined, ``card_declined``
4000000000009995    declined, ``insufficient_funds``
4000000000000069    declined, ``expired_card``
4000000000000309    approved, then answers slowly (recorded at once, the answer after
                    ``slow_delay`` seconds: SHOPLEDGER_SANDBOX_SLOW_CARD_DELAY)
4000000000000408    declined (``card_declined``), then answers slowly likewise
any other number    approved if it passes the Luhn check
==================  ==========================================
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
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
#: Test numbers whose answer comes ``slow_delay`` seconds after the ledger recorded it: the
#: window in which an API process can die with the charge made and the answer not recorded.
SLOW_TEST_CARDS: dict[str, tuple[str, str] | None] = {
    "4000000000000309": None,  # approved
    "4000000000000408": ("card_declined", "The card was declined."),
}

_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ChargeResult:
    """A gateway's answer to a charge; ``decline_code`` is set only when not approved."""

    approved: bool
    transaction_id: str
    decline_code: str | None
    message: str


@dataclass(frozen=True)
class Lookup:
    """What the acquirer knows of one charge or refund asked for by our id: ``found`` False
    means it was never asked (nothing was taken or paid back)."""

    found: bool
    approved: bool = False
    transaction_id: str | None = None
    decline_code: str | None = None


NOT_FOUND = Lookup(False)


@dataclass(frozen=True)
class LedgerEntry:
    """One line of the sandbox's books: a charge (``key`` = our payment id) or a refund
    (``key`` = our refund id) and how it ended."""

    kind: str  # "charge" or "refund"
    key: str
    approved: bool
    transaction_id: str
    decline_code: str | None
    amount: Decimal
    currency: str

    def lookup(self) -> Lookup:
        return Lookup(True, self.approved, self.transaction_id, self.decline_code)


class SandboxLedger(Protocol):
    """Where the sandbox keeps its books. ``record`` keeps the first entry for a key and
    returns what is on record (a retried charge gets the first answer)."""

    def record(self, entry: LedgerEntry) -> LedgerEntry: ...

    def find(self, kind: str, key: str) -> LedgerEntry | None: ...


class MemoryLedger:
    """A ledger in this process's memory (tests, and a sandbox built without a database)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], LedgerEntry] = {}
        self._lock = threading.Lock()

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        with self._lock:
            return self._entries.setdefault((entry.kind, entry.key), entry)

    def find(self, kind: str, key: str) -> LedgerEntry | None:
        with self._lock:
            return self._entries.get((kind, key))


class CardGateway(Protocol):
    """What the payment handlers (and the payment-recovery rule) need from a card acquirer."""

    def charge(
        self, payment_id: str, card: ValidCard, amount: Decimal, currency: str
    ) -> ChargeResult:
        """Charge ``amount`` once per ``payment_id`` (the idempotency key)."""
        ...

    def refund(self, payment_transaction_id: str, refund_id: str, amount: Decimal) -> str:
        """Refund part or all of a charge once per ``refund_id``; the refund transaction id."""
        ...

    def lookup_charge(self, payment_id: str) -> Lookup:
        """What became of the charge asked for with ``payment_id`` (not found: never asked)."""
        ...

    def lookup_refund(self, refund_id: str) -> Lookup:
        """What became of the refund asked for with ``refund_id`` (not found: never asked)."""
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
    """Deterministic stand-in for a card acquirer (see the module docstring for test cards).

    ``ledger`` keeps what it processed so that it can answer lookups (None: lookups find
    nothing); ``slow_delay`` is how long the slow test cards take to answer."""

    #: Class-level defaults, so that test doubles subclassing without ``__init__`` work.
    ledger: SandboxLedger | None = None
    slow_delay: float = 0.0
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(
        self,
        ledger: SandboxLedger | None = None,
        slow_delay: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.slow_delay = slow_delay
        self.sleep = sleep

    def charge(
        self, payment_id: str, card: ValidCard, amount: Decimal, currency: str
    ) -> ChargeResult:
        """Approve or decline from the card number alone; same ``payment_id``, same answer."""
        _check_key("payment_id", payment_id)
        _check_amount(amount)
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise ValueError("currency must be a three-letter ISO 4217 code such as TWD")
        result = self._decide(payment_id, card)
        if self.ledger is not None:
            entry = self.ledger.record(
                LedgerEntry(
                    "charge",
                    payment_id,
                    result.approved,
                    result.transaction_id,
                    result.decline_code,
                    amount,
                    currency,
                )
            )
            if (entry.approved, entry.decline_code) != (result.approved, result.decline_code):
                # Asked again with another card: the books say what happened the first time.
                result = ChargeResult(
                    entry.approved,
                    entry.transaction_id,
                    entry.decline_code,
                    "Approved." if entry.approved else "The card was declined.",
                )
        if card.number in SLOW_TEST_CARDS and self.slow_delay > 0:
            self.sleep(self.slow_delay)  # recorded already: only the answer is late
        return result

    def _decide(self, payment_id: str, card: ValidCard) -> ChargeResult:
        tx = _derived_id("tx_", payment_id)
        if not luhn_valid(card.number):  # a ValidCard built by hand, not by validate_card
            return ChargeResult(False, tx, "invalid_number", "The card number is not valid.")
        declined = DECLINING_TEST_CARDS.get(card.number) or SLOW_TEST_CARDS.get(card.number)
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
        transaction_id = _derived_id("re_", refund_id)
        if self.ledger is not None:
            self.ledger.record(
                LedgerEntry("refund", refund_id, True, transaction_id, None, amount, "TWD")
            )
        return transaction_id

    def lookup_charge(self, payment_id: str) -> Lookup:
        """The charge as the ledger recorded it (not found without a ledger)."""
        return self._lookup("charge", payment_id)

    def lookup_refund(self, refund_id: str) -> Lookup:
        """The refund as the ledger recorded it (not found without a ledger)."""
        return self._lookup("refund", refund_id)

    def _lookup(self, kind: str, key: str) -> Lookup:
        _check_key(f"{kind} id", key)
        entry = None if self.ledger is None else self.ledger.find(kind, key)
        return NOT_FOUND if entry is None else entry.lookup()
