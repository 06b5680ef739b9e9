"""``shopledger seed-demo``: a believable shop, on SQLite and MariaDB, and as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from projections.base import new_metadata
from projections.catalog import Catalog
from projections.orders import Orders
from shopledger.bootstrap import bootstrap
from shopledger.seed import AlreadySeeded, seed_demo, steps
from tests.conftest import make_settings


def test_the_demo_shop_has_orders_in_every_status_and_price_history(
    database_url: str, tmp_path: Path
) -> None:
    container = bootstrap(make_settings(database_url, tmp_path))
    try:
        seen: list[str] = []
        report = seed_demo(container, orders=10, seed=7, on_step=seen.append)
        assert len(seen) == steps(10)
        assert report.products == 19 and len(report.sellers) == 4 and len(report.buyers) == 10
        assert report.reviews > 0
        container.catch_up(120)
        orders = Orders.define_tables(new_metadata())["orders"]
        catalog = Catalog.define_tables(new_metadata())
        with container.engine.connect() as conn:
            statuses = {row[0] for row in conn.execute(select(orders.c.status).distinct())}
            payment = {row[0] for row in conn.execute(select(orders.c.payment_status).distinct())}
            shipping = {row[0] for row in conn.execute(select(orders.c.shipping_status).distinct())}
            changes = conn.execute(select(func.count()).select_from(catalog["prices"])).scalar_one()
            listed = conn.execute(
                select(func.count()).select_from(catalog["products"])
            ).scalar_one()
        assert statuses == {"CREATED", "PAID", "PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED"}
        assert {"PENDING", "COMPLETED", "REFUNDED"} <= payment
        assert {"NOT_SHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED"} <= shipping
        assert listed == 19 and changes > 19  # every product has at least one price change
        with pytest.raises(AlreadySeeded):
            seed_demo(container, orders=1, seed=7)
        seed_demo(container, orders=1, seed=8)  # another seed adds a second shop beside it
    finally:
        container.close()


@pytest.mark.slow
def test_seed_demo_runs_as_a_command_with_progress(tmp_path: Path) -> None:
    env = {**os.environ, "SHOPLEDGER_VAR_DIR": str(tmp_path), "SHOPLEDGER_ENVIRONMENT": "test"}
    done = subprocess.run(
        [sys.executable, "-m", "shopledger.cli", "seed-demo", "--orders", "5", "--seed", "11"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "admin11@demo.shopledger.tw" in done.stdout and "Demo-Shop-2026!" in done.stdout
    again = subprocess.run(
        [sys.executable, "-m", "shopledger.cli", "seed-demo", "--orders", "5", "--seed", "11"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 1 and "already holds the demo shop of seed 11" in again.stderr
