"""A report added today covers every order ever placed: the analysis projections start from
the first event of a store that existed before them, on SQLite and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete

from aggregates.taipei import local_date
from projections.analytics import ANALYTICS, live
from projections.tracking import projection_tracking
from tests.conftest import ClientFactory
from tests.e2e.test_reports_http import buy
from tests.support.accounts import admin, verified_user, wait
from tests.support.catalog import seller, stocked_product


def test_orders_placed_before_the_analysis_existed_appear_once_it_caught_up(
    database_url: str, make_client: ClientFactory
) -> None:
    client = make_client(database_url)
    boss = admin(client)
    shop = seller(client, boss, "茶行")
    tea = stocked_product(client, boss, shop, 20, 350, name="烏龍茶")
    buyer = verified_user(client)
    buy(client, buyer, [(tea, 2)])
    buy(client, buyer, [(tea, 1)])
    wait(client)
    container: Any = client.app.state.container  # type: ignore[attr-defined]
    # The database as it was before the analysis projections were added: no tables, no
    # tracking rows.
    with container.engine.begin() as conn:
        conn.execute(
            delete(projection_tracking).where(
                projection_tracking.c.name.in_([p.name for p in ANALYTICS])
            )
        )
        for table in live.values():
            table.drop(conn)
    client.__exit__(None, None, None)

    reopened = make_client(database_url)  # new tables, positions 0, caught up in the background
    r = reopened.post("/api/auth/login", json={"email": boss.email, "password": boss.password})
    token = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    wait(reopened)
    today = local_date(datetime.now(UTC)).isoformat()
    body = reopened.get(
        "/api/sales/reports/sales-summary",
        params={"fromDate": today, "toDate": today},
        headers=token,
    ).json()
    assert body["totalOrders"] == 2
    assert body["totalSales"] == {"value": 1050, "currency": "TWD"}
    assert [(p["name"], p["quantity"]) for p in body["topSellingProducts"]] == [("烏龍茶", 3)]
