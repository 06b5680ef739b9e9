"""Loyalty (seeds/001 membership_levels, points): a points ledger and a membership level per
buyer, both on one :class:`PointsAccount` aggregate.

Points are earned when an order is delivered (1 point per NT$100 of what was paid and not
refunded, times the buyer's level multiplier), spent at checkout (1 point = NT$1, at most 20%
of the subtotal, never with a coupon), given back when the order they were spent on is
cancelled, expires or is refunded, and taken back when an order they were earned on is
refunded. Every change is an event of the account, so two checkouts spending the same points
race on its version: one wins, the other retries and finds the balance gone.

Rounding (documented in README.md "Loyalty"):

- earning rounds down: ``floor(amount / unit * multiplier)``;
- taking back on a refund is proportional to the money refunded since the points were earned,
  on cumulative totals, rounded half-up (a full refund takes back every point; repeated small
  refunds never drift);
- spent points come back in the same proportion of the money refunded (half-up), and in full
  when the order is cancelled or expires.

The balance never goes negative: points to take back that were spent already become a debt
(``owed``) that the next points credited (earned or given back) settle first. So ``owed > 0``
only while the balance is 0.

The level is a function of the money paid on orders delivered in the last 12 months (the
window is a setting) and is recomputed only by the level-review timed rule: a delivery or a
refund makes a review due at once, and each review names the next moment a counted order
leaves the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError

_NS = UUID("9b3f0a52-6c1e-4f7d-8e2a-41d5c6b7a809")

#: Level codes, lowest first, and how the shop names them.
LEVELS = ("REGULAR", "SILVER", "GOLD", "PLATINUM")
LEVEL_NAMES = {"REGULAR": "一般", "SILVER": "銀", "GOLD": "金", "PLATINUM": "白金"}
#: What one point is worth at checkout.
POINT_VALUE = Decimal(1)


class PointsNotApplicable(DomainError):
    """Points cannot be used this way at checkout (400 INVALID_POINTS, ``reason`` says why)."""


class InsufficientPoints(Conflict):
    """The balance is smaller than the points asked for (409 INSUFFICIENT_POINTS)."""


def _whole(value: Decimal, rounding: str) -> int:
    return int(value.to_integral_value(rounding=rounding))


@dataclass(frozen=True)
class LoyaltyRules:
    """The configurable part (shopledger/settings.py): earning unit, redemption cap, level
    thresholds (spend in the window to reach SILVER, GOLD, PLATINUM) and multipliers."""

    earn_unit: Decimal = Decimal(100)
    max_redeem_ratio: Decimal = Decimal("0.2")
    thresholds: tuple[Decimal, ...] = (Decimal(10000), Decimal(30000), Decimal(80000))
    multipliers: tuple[Decimal, ...] = (Decimal(1), Decimal("1.2"), Decimal("1.5"), Decimal(2))
    window: timedelta = field(default=timedelta(days=365))

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(LEVELS) - 1 or len(self.multipliers) != len(LEVELS):
            raise ValueError(
                f"{len(LEVELS) - 1} thresholds and {len(LEVELS)} multipliers are needed"
            )
        if any(b <= a for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
            raise ValueError("thresholds must increase")
        if self.thresholds[0] <= 0:
            raise ValueError("thresholds must be positive")
        if any(b < a for a, b in zip(self.multipliers, self.multipliers[1:], strict=False)):
            raise ValueError("multipliers must not decrease from one level to the next")
        if self.multipliers[0] <= 0:
            raise ValueError("multipliers must be positive")

    def level_for(self, spend: Decimal) -> str:
        reached = sum(1 for t in self.thresholds if spend >= t)
        return LEVELS[reached]

    def multiplier(self, level: str) -> Decimal:
        return self.multipliers[LEVELS.index(level)]

    def points_for(self, amount: Decimal, level: str) -> int:
        """Points earned on ``amount`` paid at ``level`` (rounded down, never negative)."""
        if amount <= 0:
            return 0
        return _whole(amount / self.earn_unit * self.multiplier(level), ROUND_FLOOR)

    def max_redeemable(self, subtotal: Decimal) -> int:
        """The most points one checkout may spend: ``max_redeem_ratio`` of the subtotal."""
        if subtotal <= 0:
            return 0
        return _whole(subtotal * self.max_redeem_ratio / POINT_VALUE, ROUND_FLOOR)

    def next_level(self, level: str) -> tuple[str, Decimal] | None:
        index = LEVELS.index(level)
        if index + 1 >= len(LEVELS):
            return None
        return LEVELS[index + 1], self.thresholds[index]


def check_redemption(points: int, subtotal: Decimal, rules: LoyaltyRules) -> Decimal:
    """The discount ``points`` give on a cart of ``subtotal``; refused beyond the cap."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise PointsNotApplicable(
            "pointsToRedeem must be a whole number of points",
            field="pointsToRedeem",
            reason="NOT_AN_INTEGER",
        )
    cap = rules.max_redeemable(subtotal)
    if points > cap:
        raise PointsNotApplicable(
            f"at most {cap} points ({rules.max_redeem_ratio:%} of the subtotal) can be used",
            field="pointsToRedeem",
            reason="ABOVE_LIMIT",
            maxPoints=cap,
        )
    return points * POINT_VALUE


def _share(points: int, part: Decimal, whole: Decimal) -> int:
    """``points * part / whole`` rounded half-up, within 0..points."""
    if whole <= 0 or part <= 0:
        return 0
    return max(0, min(points, _whole(points * part / whole, ROUND_HALF_UP)))


class PointsAccount(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        Earned: ClassVar[Any]
        Spent: ClassVar[Any]
        Returned: ClassVar[Any]
        Revoked: ClassVar[Any]
        LevelReviewed: ClassVar[Any]

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return uuid5(_NS, user_id)

    @event("Opened")
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.balance = 0
        self.owed = 0
        self.level = LEVELS[0]
        #: order id -> what this account did with that order: points spent/returned,
        #: earned/revoked, the money the earning was on and what was refunded by then.
        self.orders: dict[str, dict[str, Any]] = {}
        #: order id -> (delivered at, money counted towards the level)
        self.spends: dict[str, tuple[datetime, Decimal]] = {}
        self.review_due_at: datetime | None = None

    def _order(self, order_id: str) -> dict[str, Any]:
        return self.orders.setdefault(
            order_id,
            {"spent": 0, "returned": 0, "earned": 0, "revoked": 0, "base": None, "refunded": None},
        )

    def _credit(self, points: int) -> None:
        """Points coming in settle the debt first."""
        settled = min(self.owed, points)
        self.owed -= settled
        self.balance += points - settled

    # --- checkout ---------------------------------------------------------------------------
    def spend(self, order_id: str, points: int, at: datetime) -> None:
        if points <= 0:
            raise PointsNotApplicable(
                "pointsToRedeem must be positive", field="pointsToRedeem", reason="NOT_POSITIVE"
            )
        if order_id in self.orders and self.orders[order_id]["spent"]:
            raise Conflict("points were spent on this order already", orderId=order_id)
        if points > self.balance:
            raise InsufficientPoints(
                f"only {self.balance} points are available", balance=self.balance, requested=points
            )
        self._spent(order_id=order_id, points=points, at=at)

    @event("Spent")
    def _spent(self, order_id: str, points: int, at: datetime) -> None:
        self._order(order_id)["spent"] = points
        self.balance -= points

    # --- giving spent points back -----------------------------------------------------------
    def give_back(
        self, order_id: str, paid: Decimal, refunded: Decimal, cancelled: bool, at: datetime
    ) -> int:
        """Points spent on ``order_id`` come back: all of them once it is cancelled or expired,
        else the share of the money refunded. Returns the points given back now (0: no event)."""
        entry = self.orders.get(order_id)
        if entry is None or not entry["spent"]:
            return 0
        spent: int = entry["spent"]
        due = spent if cancelled else _share(spent, refunded, paid)
        points = due - int(entry["returned"])
        if points <= 0:
            return 0
        reason = "ORDER_CANCELLED" if cancelled else "ORDER_REFUNDED"  # expired: cancelled too
        self._returned(order_id=order_id, points=points, reason=reason, at=at)
        return points

    @event("Returned")
    def _returned(self, order_id: str, points: int, reason: str, at: datetime) -> None:
        self._order(order_id)["returned"] += points
        self._credit(points)

    # --- earning on delivery ----------------------------------------------------------------
    def earn(
        self, order_id: str, paid: Decimal, refunded: Decimal, rules: LoyaltyRules, at: datetime
    ) -> int | None:
        """Points for a delivered order, at the current level's multiplier. None (no event)
        when it earned already or nothing paid is left."""
        entry = self.orders.get(order_id)
        amount = paid - refunded
        if (entry is not None and entry["base"] is not None) or amount <= 0:
            return None
        points = rules.points_for(amount, self.level)
        self._earned(
            order_id=order_id,
            points=points,
            amount=amount,
            refunded=refunded,
            level=self.level,
            multiplier=rules.multiplier(self.level),
            at=at,
        )
        return points

    @event("Earned")
    def _earned(
        self,
        order_id: str,
        points: int,
        amount: Decimal,
        refunded: Decimal,
        level: str,
        multiplier: Decimal,
        at: datetime,
    ) -> None:
        entry = self._order(order_id)
        entry.update(earned=points, base=amount, refunded=refunded)
        self._credit(points)
        self.spends[order_id] = (at, amount)
        self.review_due_at = at

    # --- taking earned points back on a refund ----------------------------------------------
    def take_back(self, order_id: str, refunded: Decimal, at: datetime) -> int:
        """The order's refunds now total ``refunded``: take back the earned points' share of
        the money refunded since they were earned. Returns the points due back now."""
        entry = self.orders.get(order_id)
        if entry is None or entry["base"] is None:
            return 0
        since = refunded - entry["refunded"]
        due = _share(entry["earned"], since, entry["base"]) - int(entry["revoked"])
        counted = max(Decimal(0), entry["base"] - since)
        if due <= 0 and counted == self.spends[order_id][1]:
            return 0
        due = max(due, 0)
        taken = min(due, self.balance)
        self._revoked(
            order_id=order_id,
            points=due,
            taken=taken,
            counted=counted,
            refunded=refunded,
            at=at,
        )
        return due

    @event("Revoked")
    def _revoked(
        self,
        order_id: str,
        points: int,
        taken: int,
        counted: Decimal,
        refunded: Decimal,
        at: datetime,
    ) -> None:
        self._order(order_id)["revoked"] += points
        self.balance -= taken
        self.owed += points - taken
        delivered_at = self.spends[order_id][0]
        self.spends[order_id] = (delivered_at, counted)
        self.review_due_at = at

    # --- the level --------------------------------------------------------------------------
    def spend_in_window(self, now: datetime, window: timedelta) -> Decimal:
        return sum((amount for at, amount in self.spends.values() if at > now - window), Decimal(0))

    def review_level(self, rules: LoyaltyRules, now: datetime) -> bool:
        """The level-review rule: the level for the spend of the last ``rules.window``. False
        (no event) when no review is due: a late or duplicate firing is harmless."""
        if self.review_due_at is None or now < self.review_due_at:
            return False
        spend = self.spend_in_window(now, rules.window)
        leaving = [at + rules.window for at, amount in self.spends.values() if amount > 0]
        upcoming = [t for t in leaving if t > now]
        self._level_reviewed(
            level=rules.level_for(spend),
            previous=self.level,
            spend=spend,
            next_review_at=min(upcoming) if upcoming else None,
            at=now,
        )
        return True

    @event("LevelReviewed")
    def _level_reviewed(
        self,
        level: str,
        previous: str,
        spend: Decimal,
        next_review_at: datetime | None,
        at: datetime,
    ) -> None:
        self.level = level
        self.review_due_at = next_review_at
