"""Loyalty commands: spending points at checkout, the policy that earns, gives back and takes
back points as orders are delivered, cancelled and refunded, and the level-review rule.

The policy runs inside whichever command changed an order (confirm receipt, auto-delivery,
an admin's status change, a cancellation, an expiry, any refund: a return's or a dispute's
too), so the points move in the same transaction as the order event that moves them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from aggregates.loyalty import (
    InsufficientPoints,
    LoyaltyRules,
    PointsAccount,
    PointsNotApplicable,
    check_redemption,
)
from aggregates.orders import Order
from commands.bus import Command, Handler, UnitOfWork


def redeem_points(
    uow: UnitOfWork,
    buyer_id: str,
    order_id: str,
    points: int,
    subtotal: Decimal,
    coupon_code: str | None,
    rules: LoyaltyRules,
) -> Decimal:
    """Spend ``points`` on the order being placed; returns the discount they give. Points and
    a coupon never go together (seeds/001: no stacking of discounts)."""
    if coupon_code:
        raise PointsNotApplicable(
            "points cannot be used together with a coupon",
            field="pointsToRedeem",
            reason="COUPON_USED",
        )
    discount = check_redemption(points, subtotal, rules)
    account = uow.find(PointsAccount, PointsAccount.create_id(buyer_id))
    if account is None:
        raise InsufficientPoints("only 0 points are available", balance=0, requested=points)
    account.spend(order_id, points, uow.now)
    uow.add(account)
    return discount


def _happened(order: Order, *kinds: type) -> bool:
    """Whether this command gave ``order`` an event of one of ``kinds``."""
    return any(isinstance(e, kinds) for e in order.pending_events)


def loyalty_policy(rules: LoyaltyRules) -> Callable[[UnitOfWork], None]:
    """Whatever a command did to an order, the buyer's points follow in the same transaction:
    earned on delivery, spent points back on cancellation, expiry or refund, earned points
    back on refund."""

    def apply(uow: UnitOfWork) -> None:
        opened: dict[str, PointsAccount] = {}  # accounts this command opens (not stored yet)
        for order in [a for a in uow.pending if isinstance(a, Order)]:
            delivered = _happened(order, Order.Delivered)
            refunded = _happened(order, Order.Refunded)
            closed = _happened(order, Order.Cancelled, Order.Expired)
            reduced = _happened(order, Order.UnitsCancelled)
            if not (delivered or refunded or closed or reduced):
                continue
            buyer = order.buyer_id
            existing = uow.find(PointsAccount, PointsAccount.create_id(buyer)) or opened.get(buyer)
            if existing is None and not delivered:
                continue  # nothing was ever spent or earned
            account = existing or opened.setdefault(buyer, PointsAccount(user_id=buyer))
            order_id = str(order.id)
            account.give_back(order_id, *order.taken_off(), closed, uow.now)
            if delivered:
                account.earn(order_id, order.paid_amount, order.refunded_amount, rules, uow.now)
            elif refunded:
                account.take_back(order_id, order.refunded_amount, uow.now)
            if account.pending_events:
                uow.add(account)

    return apply


@dataclass(frozen=True)
class ReviewLevel(Command):
    """Sent by the level-review rule (actor ``system:level-review``); the account decides."""

    account_id: UUID


def review_level_handler(rules: LoyaltyRules) -> Handler:
    def review_level(uow: UnitOfWork, cmd: ReviewLevel) -> bool:
        account = uow.find(PointsAccount, cmd.account_id)
        if account is None or not account.review_level(rules, uow.now):
            return False
        uow.add(account)
        return True

    return review_level


def handlers(rules: LoyaltyRules) -> dict[type, Handler]:
    """The loyalty handlers, bound to the configured rules."""
    return {ReviewLevel: review_level_handler(rules)}
