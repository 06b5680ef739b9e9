"""Points under concurrency on MariaDB: checkouts racing to spend the same points, and a refund
racing them to take those points back, never leave a negative balance or lose a point."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.e2e.test_loyalty_http import deliver, error, place, points, refund
from tests.support.accounts import admin, verified_user
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product
from tests.support.concurrency import race


def test_racing_checkouts_and_a_refund_never_spend_points_twice(
    mariadb_url: str, make_client: Any
) -> None:
    # mariadb_url first: the database outlives the client and its projection thread
    client = make_client(mariadb_url)
    boss = admin(client)
    shop = seller(client, boss)
    buyer = verified_user(client)
    pid = stocked_product(client, boss, shop, 20, 1000)
    earned_on = place(client, buyer, pid).json()["orderId"]
    deliver(client, boss, earned_on)
    assert points(client, buyer)["balance"] == 11
    add_to_cart(client, buyer, pid, 1)

    def act(i: int) -> Any:
        if i < 3:
            return checkout(client, buyer, pointsToRedeem=11)
        return refund(client, boss, earned_on, isFullRefund=True)

    results = race(4, act)
    spent = [r for r in results[:3] if r.status_code == 201]
    refused = Counter(
        (r.status_code, error(r)["code"]) for r in results[:3] if r.status_code != 201
    )
    assert len(spent) <= 1, [r.text for r in results]
    assert set(refused) <= {(404, "NOT_FOUND"), (409, "INSUFFICIENT_POINTS")}, refused
    assert all(r.json()["discount"]["pointsRedeemed"] == 11 for r in spent)

    mine = points(client, buyer, pageSize=100)
    assert mine["balance"] >= 0 and mine["owed"] >= 0
    assert all(e["balance"] >= 0 and e["owed"] >= 0 for e in mine["ledger"])
    # every point accounted for: 11 earned, all 11 taken back (from the balance, or owed
    # because they were spent first), and 11 spent if a checkout won
    moved = sum(e["points"] for e in mine["ledger"])
    assert moved == mine["balance"]
    assert (mine["balance"], mine["owed"]) == ((0, 11) if spent else (0, 0))
