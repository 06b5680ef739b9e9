"""Promotional sale prices (seeds/000 促銷價格): a price below the regular one for a window of time.

Pure rules, used by :class:`aggregates.catalog.Product`, which holds its sale windows. A window
is half-open, ``[starts_at, ends_at)``: it begins and ends by the clock alone, no event is
needed at either boundary, so whoever asks for the price at an instant (checkout, a query)
gets the same answer. A product's windows never overlap, so at most one is in force at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from aggregates.errors import Conflict, DomainError, NotFound

EARLIEST, LATEST = datetime(2000, 1, 2), datetime(2199, 12, 30)
#: Windows not yet over (scheduled or running) a product may hold at once.
MAX_OPEN_SALES = 50


class InvalidSale(DomainError):
    """A sale being scheduled breaks a rule (400 VALIDATION_ERROR, with the field)."""


class SaleNotFound(NotFound):
    """No sale of that id on this product (404)."""


class SaleOverlaps(Conflict):
    """The window overlaps another sale of the same product (409)."""


class SaleStateConflict(Conflict):
    """The sale is over or cancelled already, or the product cannot take a sale (409)."""


@dataclass(frozen=True)
class SaleWindow:
    sale_id: str
    price: Decimal
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    cancelled_at: datetime | None = None

    @property
    def until(self) -> datetime:
        """When the sale stops applying: its end, or its cancellation if that came first (a
        sale cancelled before it began never applies)."""
        if self.cancelled_at is None:
            return self.ends_at
        return min(self.ends_at, max(self.starts_at, self.cancelled_at))

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.until

    def status(self, at: datetime) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED"
        if at < self.starts_at:
            return "SCHEDULED"
        return "ACTIVE" if at < self.ends_at else "ENDED"

    def cancelled(self, at: datetime) -> SaleWindow:
        return replace(self, cancelled_at=at)


def sale_in_force(
    regular: Decimal, windows: Iterable[SaleWindow], at: datetime
) -> SaleWindow | None:
    """The window whose price a buyer pays at ``at``, if any. A sale price never exceeds the
    regular one: should the regular price later fall to or below it, the regular price wins."""
    for window in windows:
        if window.covers(at) and window.price < regular:
            return window
    return None


def effective_price(regular: Decimal, windows: Iterable[SaleWindow], at: datetime) -> Decimal:
    """What a buyer pays at ``at``: the sale price in force, else the regular price."""
    window = sale_in_force(regular, windows, at)
    return regular if window is None else window.price


def plan_sale(
    *,
    sale_id: str,
    price: Decimal,
    regular: Decimal,
    starts_at: datetime | None,
    ends_at: datetime,
    now: datetime,
    existing: Iterable[SaleWindow],
) -> SaleWindow:
    """A new window, checked against the regular price and the product's other windows.

    A start in the past (or none) means now: a sale never rewrites what buyers already paid."""
    if price <= 0:
        raise InvalidSale("salePrice must be greater than 0", field="salePrice")
    if price >= regular:
        raise InvalidSale(
            "salePrice must be below the regular price",
            field="salePrice",
            regularPrice=str(regular),
        )
    for name, moment in (("startsAt", starts_at), ("endsAt", ends_at)):
        if moment is not None and not (EARLIEST <= moment.replace(tzinfo=None) <= LATEST):
            raise InvalidSale(f"{name} must be between 2000 and 2199", field=name)
    start = now if starts_at is None or starts_at < now else starts_at
    if ends_at <= start:
        raise InvalidSale(
            "endsAt must be after startsAt (and in the future)",
            field="endsAt",
            startsAt=start.isoformat(),
        )
    windows = list(existing)
    if sum(1 for w in windows if w.until > now) >= MAX_OPEN_SALES:
        raise SaleStateConflict(
            f"a product may have at most {MAX_OPEN_SALES} sales scheduled or running",
            reason="TOO_MANY_SALES",
        )
    for other in windows:
        if start < other.until and other.starts_at < ends_at:
            raise SaleOverlaps(
                "the window overlaps another sale of this product",
                reason="SALE_OVERLAP",
                saleId=other.sale_id,
                startsAt=other.starts_at.isoformat(),
                endsAt=other.until.isoformat(),
            )
    return SaleWindow(sale_id, price, start, ends_at, now)


def check_cancellable(window: SaleWindow, at: datetime) -> None:
    if window.cancelled_at is not None:
        raise SaleStateConflict("the sale is already cancelled", reason="SALE_CANCELLED")
    if window.ends_at <= at:
        raise SaleStateConflict("the sale has already ended", reason="SALE_ENDED")
