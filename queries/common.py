"""Small helpers shared by query modules: timestamps and pagination."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def iso(at: datetime | None) -> str | None:
    """Read-model timestamps are naive UTC; responses carry the offset (API.md)."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class PageRequest:
    page: int = 1
    page_size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def paginated(key: str, items: list[Any], total: int, req: PageRequest) -> dict[str, Any]:
    pages = (total + req.page_size - 1) // req.page_size
    return {
        key: items,
        "pagination": {
            "page": req.page,
            "pageSize": req.page_size,
            "totalItems": total,
            "totalPages": pages,
        },
    }
