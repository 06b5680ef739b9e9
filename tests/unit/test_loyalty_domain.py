"""Loyalty rules in memory: earning, spending at checkout, giving back, taking back on refunds,
the debt that keeps the balance from going negative, and levels by spend in the window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aggregates.loyalty import (
    LEVELS,
    InsufficientPoints,
    LoyaltyRules,
    PointsAccount,
    PointsNotApplicable,
    check_redemption,
)
from aggregates.money import quantize
from aggregates.order_view import fold
from aggregates.pricing import Line, compute_totals
from commands.application import EventMeta
from shopledger.bootstrap import Container
from tests.unit.test_payments_domain import new_order, paid

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
RULES = LoyaltyRules()
LOW = LoyaltyRules(thresholds=(Decimal(500), Decimal(5000), Decimal(50000)))


def account_with(points: int, order: str = "o-1", at: datetime = T0) -> PointsAccount:
    """An account that earned ``points`` on ``order`` (NT$100 each at REGULAR)."""
    account = PointsAccount(user_id="u-1")
    account.earn(order, Decimal(points * 100), Decimal(0), RULES, at)
    assert account.balance == points
    return account


def replayed(account: PointsAccount) -> PointsAccount:
    """The account rebuilt from its events, as the event store would."""
    copy: PointsAccount | None = None
    for e in account.collect_events():
        copy = e.mutate(copy)
    assert copy is not None
    return copy


# --- earning ---------------------------------------------------------------------------------
def test_one_point_per_100_paid_rounded_down_times_the_level_multiplier() -> None:
    assert RULES.points_for(Decimal(1110), "REGULAR") == 11
    assert RULES.points_for(Decimal("99.99"), "REGULAR") == 0
    assert RULES.points_for(Decimal("1098.45"), "SILVER") == 13  # 10.98 x 1.2 = 13.18
    assert RULES.points_for(Decimal(1000), "PLATINUM") == 20
    assert RULES.points_for(Decimal(-5), "GOLD") == 0


def test_an_order_earns_once_on_what_was_paid_and_not_refunded() -> None:
    account = PointsAccount(user_id="u-1")
    assert account.earn("o-1", Decimal(1110), Decimal(110), RULES, T0) == 10
    assert account.earn("o-1", Decimal(1110), Decimal(0), RULES, T0) is None
    assert account.earn("o-2", Decimal(500), Decimal(500), RULES, T0) is None  # all refunded
    assert account.balance == 10


# --- spending at checkout -------------------------------------------------------------------
def test_points_pay_at_most_a_fifth_of_the_subtotal() -> None:
    assert check_redemption(200, Decimal(1000), RULES) == Decimal(200)
    with pytest.raises(PointsNotApplicable) as refused:
        check_redemption(201, Decimal(1000), RULES)
    assert refused.value.details["reason"] == "ABOVE_LIMIT"
    assert refused.value.details["maxPoints"] == 200
    assert RULES.max_redeemable(Decimal("99.99")) == 19


def test_spending_more_than_the_balance_is_refused_and_changes_nothing() -> None:
    account = account_with(30)
    with pytest.raises(InsufficientPoints):
        account.spend("o-2", 31, T0)
    account.spend("o-2", 30, T0)
    assert account.balance == 0
    with pytest.raises(InsufficientPoints):
        account.spend("o-3", 1, T0)


@settings(max_examples=80)
@given(
    prices=st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5000), places=2),
            st.integers(min_value=1, max_value=5),
        ),
        min_size=1,
        max_size=4,
    ),
    shipping=st.sampled_from([Decimal(0), Decimal(60), Decimal(200)]),
    share=st.fractions(min_value=0, max_value=1),
    ratio=st.sampled_from([Decimal("0.2"), Decimal("0.1"), Decimal("0.5")]),
)
def test_a_points_discount_keeps_totals_sound(
    prices: list[tuple[Decimal, int]], shipping: Decimal, share: object, ratio: Decimal
) -> None:
    """For any cart: points spent are whole, the discount is at most the cap's share of the
    subtotal, VAT is charged on what is left, and the total is never negative."""
    rules = LoyaltyRules(max_redeem_ratio=ratio)
    lines = [Line(p, q) for p, q in prices]
    subtotal = sum((line.subtotal for line in lines), Decimal(0))
    cap = rules.max_redeemable(subtotal)
    points = int(cap * share)  # type: ignore[operator]
    discount = check_redemption(points, subtotal, rules)
    totals = compute_totals(lines, discount, shipping)
    assert isinstance(points, int) and discount == points
    assert totals.discount == discount <= subtotal * ratio
    assert totals.tax == quantize((subtotal - discount) * Decimal("0.05"))
    assert totals.total == subtotal - discount + totals.tax + shipping >= 0
    with pytest.raises(PointsNotApplicable):
        check_redemption(cap + 1, subtotal, rules)


# --- giving back and taking back ------------------------------------------------------------
def test_a_cancelled_order_gives_every_spent_point_back_once() -> None:
    account = account_with(50)
    account.spend("o-2", 40, T0)
    assert account.give_back("o-2", Decimal(0), Decimal(0), True, T0) == 40
    assert account.give_back("o-2", Decimal(0), Decimal(0), True, T0) == 0
    assert account.balance == 50


def test_refunds_give_spent_points_back_in_proportion_without_drift() -> None:
    account = account_with(50)
    account.spend("o-2", 15, T0)
    paid = Decimal(900)
    given_back = [
        account.give_back("o-2", paid, Decimal(refunded), False, T0)
        for refunded in (100, 200, 300, 900)
    ]
    assert given_back == [2, 1, 2, 10]  # 1.67 -> 2, 3.33 -> 3, 5, then the rest
    assert account.balance == 50


def test_a_refund_takes_back_the_refunded_share_of_earned_points_half_up() -> None:
    account = PointsAccount(user_id="u-1")
    account.earn("o-1", Decimal(1110), Decimal(0), RULES, T0)  # 11 points
    assert account.take_back("o-1", Decimal(555), T0) == 6  # 5.5 -> 6
    assert account.take_back("o-1", Decimal(555), T0) == 0  # the same total again: nothing
    assert account.take_back("o-1", Decimal(1110), T0) == 5  # in full: every point
    assert account.balance == 0 and account.owed == 0


def test_points_already_spent_become_a_debt_settled_by_the_next_points() -> None:
    account = account_with(20)
    account.spend("o-2", 15, T0)
    account.take_back("o-1", Decimal(2000), T0)  # 20 due, 5 left
    assert (account.balance, account.owed) == (0, 15)
    account.earn("o-3", Decimal(1000), Decimal(0), RULES, T0)  # 10 points, all to the debt
    assert (account.balance, account.owed) == (0, 5)
    account.give_back("o-2", Decimal(0), Decimal(0), True, T0)  # 15 back: 5 settle, 10 stay
    assert (account.balance, account.owed) == (10, 0)


# --- levels ------------------------------------------------------------------------------------
def test_the_level_follows_spend_in_the_window_and_only_when_reviewed() -> None:
    account = PointsAccount(user_id="u-1")
    account.earn("o-1", Decimal(600), Decimal(0), LOW, T0)
    assert account.level == "REGULAR"  # until the rule reviews it
    assert account.review_level(LOW, T0 - timedelta(seconds=1)) is False  # not due yet
    assert account.review_level(LOW, T0) is True
    assert account.level == "SILVER"
    assert account.review_due_at == T0 + LOW.window  # when o-1 leaves the window
    assert account.review_level(LOW, T0 + timedelta(days=1)) is False  # a stale firing
    account.earn("o-2", Decimal(1000), Decimal(0), LOW, T0 + timedelta(days=1))
    assert account.orders["o-2"]["earned"] == 12  # at SILVER's 1.2
    account.review_level(LOW, T0 + timedelta(days=1))
    assert account.review_level(LOW, T0 + LOW.window) is True  # o-1 left: 1000 still counts
    assert account.level == "SILVER"
    account.review_level(LOW, T0 + timedelta(days=1) + LOW.window)
    assert account.level == "REGULAR" and account.review_due_at is None


def test_a_refund_lowers_the_spend_that_counts_and_asks_for_a_review() -> None:
    account = PointsAccount(user_id="u-1")
    account.earn("o-1", Decimal(600), Decimal(0), LOW, T0)
    account.review_level(LOW, T0)
    later = T0 + timedelta(hours=1)
    account.take_back("o-1", Decimal(200), later)
    assert account.review_due_at == later
    account.review_level(LOW, later)
    assert account.level == "REGULAR"


@settings(max_examples=100)
@given(
    a=st.decimals(min_value=0, max_value=200000, places=2),
    b=st.decimals(min_value=0, max_value=200000, places=2),
)
def test_more_spend_never_means_a_lower_level_or_multiplier(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert LEVELS.index(RULES.level_for(low)) <= LEVELS.index(RULES.level_for(high))
    assert RULES.multiplier(RULES.level_for(low)) <= RULES.multiplier(RULES.level_for(high))


def test_level_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="increase"):
        LoyaltyRules(thresholds=(Decimal(5), Decimal(5), Decimal(9)))
    with pytest.raises(ValueError, match="decrease"):
        LoyaltyRules(multipliers=(Decimal(2), Decimal(1), Decimal(1), Decimal(1)))


# --- the ledger as a whole ---------------------------------------------------------------------
class PointsLedger(RuleBasedStateMachine):
    """Any interleaving of deliveries, checkouts, cancellations, refunds and reviews: the
    balance and the debt never go negative, a debt exists only at a zero balance, every point
    is accounted for, and replaying the events gives the same account."""

    def __init__(self) -> None:
        super().__init__()
        self.account = PointsAccount(user_id="u-1")
        self.now = T0
        self.n = 0
        self.paid: dict[str, Decimal] = {}  # delivered orders: paid
        self.refunded: dict[str, Decimal] = {}
        self.spent_on: dict[str, Decimal] = {}  # orders points were spent on: paid

    def _id(self) -> str:
        self.n += 1
        return f"o-{self.n}"

    @rule(amount=st.integers(min_value=1, max_value=5000), days=st.integers(0, 200))
    def deliver(self, amount: int, days: int) -> None:
        self.now += timedelta(days=days)
        oid = self._id()
        self.paid[oid], self.refunded[oid] = Decimal(amount), Decimal(0)
        self.account.earn(oid, Decimal(amount), Decimal(0), LOW, self.now)

    @rule(points=st.integers(min_value=1, max_value=200), paid=st.integers(1, 3000))
    def checkout(self, points: int, paid: int) -> None:
        oid = self._id()
        try:
            self.account.spend(oid, points, self.now)
        except InsufficientPoints:
            assert points > self.account.balance
            return
        self.spent_on[oid] = Decimal(paid)

    @precondition(lambda self: self.spent_on)
    @rule(data=st.data(), cancel=st.booleans())
    def give_back(self, data: st.DataObject, cancel: bool) -> None:
        oid = data.draw(st.sampled_from(sorted(self.spent_on)))
        paid = self.spent_on[oid]
        refunded = data.draw(st.decimals(min_value=0, max_value=paid, places=2))
        self.account.give_back(oid, paid, refunded, cancel, self.now)

    @precondition(lambda self: self.paid)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        oid = data.draw(st.sampled_from(sorted(self.paid)))
        more = data.draw(
            st.decimals(min_value=0, max_value=self.paid[oid] - self.refunded[oid], places=2)
        )
        self.refunded[oid] += more
        self.account.take_back(oid, self.refunded[oid], self.now)

    @rule(days=st.integers(0, 400))
    def review(self, days: int) -> None:
        """The timed rule fires (late or early): a due review sets the level for the spend
        in the window and names when the next counted order leaves it."""
        self.now += timedelta(days=days)
        a = self.account
        due = a.review_due_at is not None and self.now >= a.review_due_at
        assert a.review_level(LOW, self.now) is due
        if due:
            assert a.level == LOW.level_for(a.spend_in_window(self.now, LOW.window))
            leaving = [t + LOW.window for t, amount in a.spends.values() if amount > 0]
            assert a.review_due_at == min((t for t in leaving if t > self.now), default=None)

    @invariant()
    def sound(self) -> None:
        a = self.account
        assert a.balance >= 0 and a.owed >= 0
        assert a.owed == 0 or a.balance == 0
        entries = a.orders.values()
        net = sum(e["earned"] - e["revoked"] - e["spent"] + e["returned"] for e in entries)
        assert a.balance - a.owed == net
        assert all(0 <= e["revoked"] <= e["earned"] for e in entries)
        assert all(0 <= e["returned"] <= e["spent"] for e in entries)
        assert a.level in LEVELS

    def teardown(self) -> None:
        events = list(self.account.pending_events)
        copy = replayed(self.account)
        assert events  # the account was opened at least
        assert (copy.balance, copy.owed, copy.level, copy.orders) == (
            self.account.balance,
            self.account.owed,
            self.account.level,
            self.account.orders,
        )


PointsLedger.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestPointsLedger = PointsLedger.TestCase


def test_an_order_placed_before_points_existed_replays_with_none_redeemed() -> None:
    placed: Any = new_order().collect_events()[0]
    del placed.__dict__["points_redeemed"]  # as stored before this version
    assert placed.mutate(None).points_redeemed == 0
    assert fold(None, placed)["discount"]["pointsRedeemed"] == 0


def test_a_long_points_history_loads_from_a_snapshot_to_the_same_account(
    memory_container: Container,
) -> None:
    app = memory_container.app
    account = PointsAccount(user_id="u-1")
    for n in range(40):
        at = T0 + timedelta(days=n)
        account.earn(f"o-{n}", Decimal(1000 + n), Decimal(0), LOW, at)
        account.review_level(LOW, at)
        if n % 3 == 0:
            account.spend(f"s-{n}", 5, at)
    account.take_back("o-1", Decimal(500), T0 + timedelta(days=50))
    app.save(account)
    assert account.version > 50
    assert app.snapshots is not None and list(app.snapshots.get(account.id))
    loaded: PointsAccount = app.repository.get(account.id)
    assert (loaded.balance, loaded.owed, loaded.level, loaded.review_due_at) == (
        account.balance,
        account.owed,
        account.level,
        account.review_due_at,
    )
    assert loaded.orders == account.orders
    assert {k: tuple(v) for k, v in loaded.spends.items()} == account.spends
    assert loaded.review_level(LOW, T0 + LOW.window + timedelta(days=5)) is True


def delivered_order() -> Any:
    """A paid order of the buyer ``buyer`` (300 + 15 VAT + 60 shipping), shipped and delivered."""
    order = paid(new_order())
    order.process(order.seller_ids, "admin", None, None, "", T0)
    order.ship("s-1", None, "HCT", "H1", None, None, "admin", None, None, "", None, T0)
    order.change_status("DELIVERED", "", T0)
    return order


@dataclass(frozen=True)
class DeliverTwo:
    pass


def test_the_policy_earns_for_every_order_a_command_delivers_on_one_account(
    memory_container: Container,
) -> None:
    def deliver_two(uow: Any, cmd: DeliverTwo) -> None:
        uow.add(delivered_order(), delivered_order())

    memory_container.bus.register(DeliverTwo, deliver_two)
    memory_container.bus.execute(DeliverTwo(), EventMeta("system:test", "t"))
    account: PointsAccount = memory_container.app.repository.get(PointsAccount.create_id("buyer"))
    assert account.balance == 3 + 3 and len(account.spends) == 2
