"""Column types and clock shared by the command side's own tables (idempotency, outbox)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.dialects.mysql import DATETIME

#: Microsecond precision on MySQL (plain DATETIME drops it and breaks compare-and-set updates).
Timestamp = DateTime().with_variant(DATETIME(fsp=6), "mysql", "mariadb")


def utcnow() -> datetime:
    """Naive UTC, as these tables store it (SQLite keeps no offset)."""
    return datetime.now(UTC).replace(tzinfo=None)
