"""The level-review timed rule through the deadline machinery (sweep, firing, the deadlines
projection): a delivery makes a review due at once, the review names the moment the order
leaves the window, and a sweep at that moment brings the level down again (SQLite)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from aggregates.loyalty import PointsAccount
from projections.deadlines import LEVEL_REVIEW, Deadline
from tests.e2e.test_loyalty_http import LOW_LEVELS, deliver, place
from tests.support.accounts import admin, container_of, verified_user
from tests.support.catalog import seller, stocked_product


def test_the_sweep_raises_the_level_after_a_delivery_and_lowers_it_when_the_order_ages_out(
    make_client: Any,
) -> None:
    client = make_client(background=False, loyalty_level_window="P30D", **LOW_LEVELS)
    container = container_of(client)
    rules = container.rules
    boss = admin(client)
    owner = seller(client, boss)
    buyer = verified_user(client)
    pid = stocked_product(client, boss, owner, 5, 1000)
    container.catch_up()
    deliver(client, boss, place(client, buyer, pid).json()["orderId"])
    container.catch_up()
    account_id = str(PointsAccount.create_id(buyer.user_id))

    def sweep() -> list[Deadline]:
        fired: list[Deadline] = []
        now = rules.clock()

        def fire(deadline: Deadline) -> None:
            fired.append(deadline)
            rules.fire(deadline.order_id, deadline.rule)

        rules.sweep(now, now, fire_now=fire)
        container.catch_up()
        return fired

    def level() -> str:
        me = client.get("/api/users/me", headers=buyer.auth).json()
        return str(me["level"]["code"])

    assert level() == "REGULAR"
    assert [(d.order_id, d.rule) for d in sweep()] == [(account_id, LEVEL_REVIEW)]
    assert level() == "SILVER"
    review = rules.get(account_id, LEVEL_REVIEW)
    assert review is not None and review.due_at is not None
    assert sweep() == []  # nothing due until the order leaves the 30-day window

    later = review.due_at + timedelta(seconds=1)
    real_rules_clock, real_bus_clock = rules.clock, container.bus.clock
    rules.clock = lambda: later
    container.bus.clock = lambda: later.replace(tzinfo=UTC)
    assert [d.rule for d in sweep()] == [LEVEL_REVIEW]
    # back to now (a month on, the buyer's session would have ended)
    rules.clock, container.bus.clock = real_rules_clock, real_bus_clock
    assert level() == "REGULAR"
    assert rules.get(account_id, LEVEL_REVIEW) is None  # no counted order left: no review due
    events = [
        type(e).__name__ for e in container.app.events.get(PointsAccount.create_id(buyer.user_id))
    ]
    assert events == ["Opened", "Earned", "LevelReviewed", "LevelReviewed"]
