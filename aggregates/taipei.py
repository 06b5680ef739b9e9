"""Business days are Asia/Taipei calendar days (order numbers, sales per day, trends)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

TAIPEI = ZoneInfo("Asia/Taipei")


def local_date(at: datetime) -> date:
    """The Taipei calendar day of an aware instant."""
    return at.astimezone(TAIPEI).date()
