"""The sandbox gateway's books are a table of the service's database: what one process
recorded, the next one reads (a restart, or another process of a scaled deployment)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from commands.sandbox_ledger import SqlLedger
from gateways.cards import validate_card
from gateways.sandbox import Lookup
from shopledger.bootstrap import bootstrap
from tests.conftest import make_settings


def test_the_ledger_table_outlives_the_process(database_url: str, tmp_path: Path) -> None:
    """Books written by one process are read by the next (a restart, or another process of
    a scaled deployment)."""
    settings = make_settings(database_url, tmp_path)
    one = bootstrap(settings)
    try:
        assert one.card_gateway is not None
        result = one.card_gateway.charge(
            "pay-kept",
            validate_card("4242424242424242", 12, 2031, "123", today=date(2026, 12, 1)),
            Decimal(9),
            "TWD",
        )
        tx = one.card_gateway.refund(result.transaction_id, "ref-kept", Decimal(4))
    finally:
        one.close()
    two = bootstrap(settings)
    try:
        assert two.card_gateway is not None
        assert two.card_gateway.lookup_charge("pay-kept") == Lookup(
            True, True, result.transaction_id, None
        )
        assert two.card_gateway.lookup_refund("ref-kept") == Lookup(True, True, tx, None)
        ledger = SqlLedger(lambda commit: two.app.recorder.transaction(commit=commit))  # type: ignore[attr-defined]
        entry = ledger.find("charge", "pay-kept")
        assert entry is not None and entry.amount == Decimal(9)
    finally:
        two.close()
