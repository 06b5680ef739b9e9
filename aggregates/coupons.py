"""Coupons: fixed or percentage discounts with limits, redeemed atomically with an order.

A coupon's id derives from its code, so two coupons can never share a code, and a checkout
loads it by code. Redemptions live inside the aggregate: a checkout saves the order and the
coupon together, with the coupon's version checked, so two racing checkouts cannot both take
the last use.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import DomainError
from aggregates.money import MAX_PRICE, money, parse_amount, quantize

COUPON_TYPES = ("FIXED", "PERCENT")
MAX_LIMIT = 10_000_000
EARLIEST, LATEST = datetime(2000, 1, 2), datetime(2199, 12, 30)
CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")
_NS = UUID("9b2f0c7e-6d0a-4c3e-a9e4-2c5b7f1d8e33")


class InvalidCouponDefinition(DomainError):
    """A coupon being created breaks a rule (400 VALIDATION_ERROR)."""


class CouponNotApplicable(DomainError):
    """The coupon cannot be used for this checkout (400 INVALID_COUPON, reason in details)."""


def normalize_code(raw: str) -> str:
    return raw.strip().upper()


class Coupon(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Created: ClassVar[Any]
        Redeemed: ClassVar[Any]
        Released: ClassVar[Any]

    @staticmethod
    def create_id(code: str) -> UUID:
        return uuid5(_NS, normalize_code(code))

    @event("Created")
    def __init__(
        self,
        code: str,
        kind: str,
        value: Decimal,
        max_discount: Decimal | None,
        min_spend: Decimal,
        starts_at: datetime | None,
        ends_at: datetime | None,
        usage_limit: int | None,
        per_user_limit: int | None,
        seller_id: str | None,
        category_id: str | None,
        created_by: str,
    ) -> None:
        self.code = code
        self.kind = kind
        self.value = value
        self.max_discount = max_discount
        self.min_spend = min_spend
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.usage_limit = usage_limit
        self.per_user_limit = per_user_limit
        self.seller_id = seller_id
        self.category_id = category_id
        self.created_by = created_by
        #: order id -> buyer id
        self.redemptions: dict[str, str] = {}

    @classmethod
    def define(
        cls,
        *,
        code: str,
        kind: str,
        value: object,
        max_discount: object = None,
        min_spend: object = None,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        usage_limit: int | None = None,
        per_user_limit: int | None = None,
        seller_id: str | None = None,
        category_id: str | None = None,
        created_by: str,
    ) -> Coupon:
        code = normalize_code(code)
        if not CODE_RE.fullmatch(code):
            raise InvalidCouponDefinition(
                "code: 3-32 letters, digits, '-' or '_', starting with a letter or digit",
                field="code",
            )
        if kind not in COUPON_TYPES:
            raise InvalidCouponDefinition("type must be FIXED or PERCENT", field="type")
        amount = parse_amount(value, "value")
        if amount <= 0:
            raise InvalidCouponDefinition("value must be greater than 0", field="value")
        if kind == "PERCENT" and amount > 100:
            raise InvalidCouponDefinition("a PERCENT value is at most 100", field="value")
        cap = None
        if max_discount is not None:
            if kind != "PERCENT":
                raise InvalidCouponDefinition(
                    "maxDiscount only applies to PERCENT coupons", field="maxDiscount"
                )
            cap = parse_amount(max_discount, "maxDiscount")
            if cap <= 0:
                raise InvalidCouponDefinition(
                    "maxDiscount must be greater than 0", field="maxDiscount"
                )
        spend = Decimal(0) if min_spend is None else parse_amount(min_spend, "minSpend")
        if spend < 0:
            raise InvalidCouponDefinition("minSpend must not be negative", field="minSpend")
        if starts_at is not None and ends_at is not None and ends_at <= starts_at:
            raise InvalidCouponDefinition("endsAt must be after startsAt", field="endsAt")
        for name, moment in (("startsAt", starts_at), ("endsAt", ends_at)):
            if moment is not None and not (EARLIEST <= moment.replace(tzinfo=None) <= LATEST):
                raise InvalidCouponDefinition(f"{name} must be between 2000 and 2199", field=name)
        for name, limit in (("usageLimit", usage_limit), ("perUserLimit", per_user_limit)):
            if limit is not None and (isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT):
                raise InvalidCouponDefinition(f"{name} must be from 1 to {MAX_LIMIT}", field=name)
        if amount > MAX_PRICE or (cap is not None and cap > MAX_PRICE) or spend > MAX_PRICE:
            raise InvalidCouponDefinition(f"amounts are at most {MAX_PRICE}", field="value")
        return cls._create(
            cls.Created,
            id=cls.create_id(code),
            code=code,
            kind=kind,
            value=amount,
            max_discount=cap,
            min_spend=spend,
            starts_at=starts_at,
            ends_at=ends_at,
            usage_limit=usage_limit,
            per_user_limit=per_user_limit,
            seller_id=seller_id,
            category_id=category_id,
            created_by=created_by,
        )

    # --- applying ------------------------------------------------------------------------
    def uses_by(self, buyer_id: str) -> int:
        return sum(1 for b in self.redemptions.values() if b == buyer_id)

    def discount_for(self, eligible_subtotal: Decimal, buyer_id: str, at: datetime) -> Decimal:
        """The discount on ``eligible_subtotal`` (the items the coupon covers), or why not."""

        def refuse(reason: str, message: str, **details: object) -> CouponNotApplicable:
            return CouponNotApplicable(message, reason=reason, couponCode=self.code, **details)

        if self.starts_at is not None and at < self.starts_at:
            raise refuse(
                "NOT_STARTED", "the coupon is not valid yet", startsAt=self.starts_at.isoformat()
            )
        if self.ends_at is not None and at >= self.ends_at:
            raise refuse("EXPIRED", "the coupon has expired", endsAt=self.ends_at.isoformat())
        if self.usage_limit is not None and len(self.redemptions) >= self.usage_limit:
            raise refuse("USAGE_LIMIT_REACHED", "the coupon has been used up")
        if self.per_user_limit is not None and self.uses_by(buyer_id) >= self.per_user_limit:
            raise refuse(
                "PER_USER_LIMIT_REACHED", "you have already used this coupon as often as allowed"
            )
        if eligible_subtotal <= 0:
            raise refuse("NO_ELIGIBLE_ITEMS", "no item in the cart is covered by this coupon")
        if eligible_subtotal < self.min_spend:
            raise refuse(
                "MIN_SPEND_NOT_MET",
                f"the coupon needs a spend of at least {self.min_spend}",
                minSpend=money(self.min_spend),
                eligibleSubtotal=money(eligible_subtotal),
            )
        if self.kind == "FIXED":
            discount = self.value
        else:
            discount = quantize(eligible_subtotal * self.value / 100)
            if self.max_discount is not None:
                discount = min(discount, self.max_discount)
        return min(quantize(discount), eligible_subtotal)

    def redeem(
        self, order_id: str, buyer_id: str, eligible_subtotal: Decimal, at: datetime
    ) -> Decimal:
        """Take one use for an order; the discount is decided now, by the coupon."""
        discount = self.discount_for(eligible_subtotal, buyer_id, at)
        self._redeemed(order_id, buyer_id, discount, at)
        return discount

    @event("Redeemed")
    def _redeemed(self, order_id: str, buyer_id: str, discount: Decimal, at: datetime) -> None:
        self.redemptions[order_id] = buyer_id

    def release(self, order_id: str, reason: str, at: datetime) -> bool:
        """Give back the use an order took (cancelled or expired); False if it took none."""
        if order_id not in self.redemptions:
            return False
        self._released(order_id, reason, at)
        return True

    @event("Released")
    def _released(self, order_id: str, reason: str, at: datetime) -> None:
        del self.redemptions[order_id]
