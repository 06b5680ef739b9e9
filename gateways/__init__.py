"""Payment gateways, pure: card checks, the card gateway interface with its sandbox, and ECPay.

Nothing here does I/O, reads the clock or knows about orders; the payment handlers decide what a
result means for an order. Only ``ValidCard.public_info()`` may leave this package for storage.
The sandbox's books (``SandboxLedger``) are handed to it: the application gives it a table of its
database (commands/sandbox_ledger.py), tests a ``MemoryLedger``.
"""

from __future__ import annotations

from gateways.cards import CardDetails, CardError, ValidCard, validate_card
from gateways.ecpay import (
    PRODUCTION_URL,
    STAGE_URL,
    TEST_MERCHANT,
    ECPayConfig,
    Notice,
    NoticeRejected,
    check_mac_value,
    checkout_form,
    parse_notice,
    render_form_page,
    verify_mac,
)
from gateways.sandbox import (
    CardGateway,
    ChargeResult,
    LedgerEntry,
    Lookup,
    MemoryLedger,
    SandboxGateway,
    SandboxLedger,
)

__all__ = [
    "PRODUCTION_URL",
    "STAGE_URL",
    "TEST_MERCHANT",
    "CardDetails",
    "CardError",
    "CardGateway",
    "ChargeResult",
    "ECPayConfig",
    "LedgerEntry",
    "Lookup",
    "MemoryLedger",
    "Notice",
    "NoticeRejected",
    "SandboxGateway",
    "SandboxLedger",
    "ValidCard",
    "check_mac_value",
    "checkout_form",
    "parse_notice",
    "render_form_page",
    "validate_card",
    "verify_mac",
]
