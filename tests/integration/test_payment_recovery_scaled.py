"""kill -9 of the API in the middle of card payments, in scaled mode (MariaDB, Redis, real
API, projector and worker processes): the worker's payment-recovery rule settles them.

The sandbox's slow test cards record the charge on the gateway's books at once and answer a
minute later, so the test knows the API is inside the gateway call when it kills it. A new
API then shows the approved card's order PAID (one PaymentCompleted, by the rule) and the
declined card's order failed and payable again, within the rule's delay (2 s here) plus a
sweep interval.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from api.app import create_app
from commands.sandbox_ledger import sandbox_ledger
from shopledger.bootstrap import bootstrap
from tests.conftest import make_settings, shared_jwt_key
from tests.support.accounts import User, admin, verified_user
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product
from tests.support.processes import cli_env, free_port, spawn, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.mariadb, pytest.mark.redis]

SLOW_APPROVED = "4000000000000309"
SLOW_DECLINED = "4000000000000408"
GOOD = "4242424242424242"


def _body(number: str, order: dict[str, Any]) -> dict[str, Any]:
    return {
        "paymentMethod": "CREDIT_CARD",
        "paymentData": {
            "cardDetails": {"number": number, "expiryMonth": 12, "expiryYear": 2031, "cvv": "123"}
        },
        "amount": {"value": order["total"]["value"], "currency": "TWD"},
    }


def _shop(database_url: str, tmp_path: Path) -> tuple[User, list[dict[str, Any]]]:
    """A buyer with two unpaid card orders, made in-process (faster than over HTTP to a
    process)."""
    container = bootstrap(make_settings(database_url, tmp_path / "setup"))
    with TestClient(create_app(container)) as client:
        boss = admin(client)
        shop = seller(client, boss)
        buyer = verified_user(client)
        pid = stocked_product(client, boss, shop, 10, 500)
        orders = []
        for _ in range(2):
            add_to_cart(client, buyer, pid, 1)
            r = checkout(client, buyer, paymentMethod="CREDIT_CARD")
            assert r.status_code == 201, r.text
            orders.append(dict(r.json()))
    return buyer, orders


def test_payments_cut_off_by_a_killed_api_are_settled_by_the_worker(
    mariadb_url: str, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"p{uuid.uuid4().hex[:10]}"
    env = cli_env(
        mariadb_url,
        tmp_path,
        SHOPLEDGER_REDIS_URL=redis_url,
        SHOPLEDGER_QUEUE_PREFIX=prefix,
        SHOPLEDGER_MAIL_URL=f"file://{tmp_path / 'mail'}",
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=shared_jwt_key(),
        SHOPLEDGER_RULE_SWEEP_INTERVAL="PT1S",
        SHOPLEDGER_PAYMENT_RECOVERY_AFTER="PT2S",
        SHOPLEDGER_SANDBOX_SLOW_CARD_DELAY="PT60S",
    )
    logs = {n: tmp_path / f"{n}.log" for n in ("api1", "api2", "projector", "worker")}
    ports = [free_port(), free_port()]
    procs: dict[str, subprocess.Popen[bytes]] = {
        "api1": spawn(["serve", "--port", str(ports[0])], env, logs["api1"]),
        "projector": spawn(["projections", "run"], env, logs["projector"]),
        "worker": spawn(["worker"], env, logs["worker"]),
    }
    engine = create_engine(mariadb_url)

    def tails() -> str:
        return "\n".join(f"--- {n}\n{p.read_text()[-1500:]}" for n, p in logs.items() if p.exists())

    def charges_on_the_books() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(sandbox_ledger)).scalar_one())

    try:
        # The shop is set up while the processes start (each creates the tables it misses).
        buyer, (approved, declined) = _shop(mariadb_url, tmp_path)
        first = httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=90)
        assert wait_until(lambda: _ready(first), 60, 0.1), tails()
        answers: list[Any] = []

        def pay(order: dict[str, Any], number: str) -> None:
            try:
                answers.append(
                    first.post(
                        f"/api/sales/orders/{order['orderId']}/payments",
                        json=_body(number, order),
                        headers=buyer.auth,
                    )
                )
            except httpx.HTTPError as exc:  # the API died under the request: expected
                answers.append(exc)

        requests = [
            threading.Thread(target=pay, args=(approved, SLOW_APPROVED)),
            threading.Thread(target=pay, args=(declined, SLOW_DECLINED)),
        ]
        for t in requests:
            t.start()
        # Both charges are on the gateway's books and both requests wait for its answer.
        assert wait_until(lambda: charges_on_the_books() == 2, 20, 0.05), tails()
        stop(procs["api1"], signal.SIGKILL)
        for t in requests:
            t.join(10)
        assert all(isinstance(a, httpx.HTTPError) for a in answers), answers

        procs["api2"] = spawn(["serve", "--port", str(ports[1])], env, logs["api2"])
        second = httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", timeout=30)
        assert wait_until(lambda: _ready(second), 60, 0.1), tails()

        def order(o: dict[str, Any]) -> dict[str, Any]:
            r = second.get(f"/api/sales/orders/{o['orderId']}", headers=buyer.auth)
            assert r.status_code == 200, r.text
            return dict(r.json())

        assert wait_until(lambda: order(approved)["status"] == "PAID", 20, 0.2), tails()
        assert wait_until(lambda: order(declined)["paymentStatus"] == "FAILED", 20, 0.2), tails()
        assert order(declined)["status"] == "CREATED"

        def outcomes(o: dict[str, Any]) -> list[tuple[str, str, str | None]]:
            r = second.get(f"/api/sales/orders/{o['orderId']}/timeline", headers=buyer.auth)
            return [
                (e["type"], e["actor"], e["data"].get("reason"))
                for e in r.json()["events"]
                if e["type"] in ("PaymentCompleted", "PaymentFailed")
            ]

        assert outcomes(approved) == [("PaymentCompleted", "system:payment-recovery", None)]
        assert outcomes(declined) == [("PaymentFailed", "system:payment-recovery", "card_declined")]
        # Payable again: a good card pays it through the new API.
        r = second.post(
            f"/api/sales/orders/{declined['orderId']}/payments",
            json=_body(GOOD, declined),
            headers=buyer.auth,
        )
        assert r.status_code == 200, r.text
    finally:
        for proc in procs.values():
            stop(proc)
        engine.dispose()
        _forget(redis_url, prefix)


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _forget(redis_url: str, prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        r.delete(*keys)
