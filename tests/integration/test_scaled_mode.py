"""Scaled mode as separate processes on MariaDB and Redis: two ``shopledger serve``, one
``shopledger projections run``, one ``shopledger worker``.

A buyer signs up (the verification mail is written by an RQ job, not by an API process),
checks out through one API and never pays; the worker expires the order; the other API shows
it cancelled, the stock back, and the buyer's ORDER_EXPIRED notification.
"""

from __future__ import annotations

import email
import json
import re
import subprocess
import uuid
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import shared_jwt_key
from tests.support.accounts import PASSWORD, TOKEN_RE
from tests.support.catalog import ADDRESS
from tests.support.processes import cli_env, free_port, run, spawn, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.mariadb, pytest.mark.redis]


class Api:
    """One API process; every request after a write waits for the read models to have it
    (``X-Min-Position``), whichever process served the write."""

    def __init__(self, base: str, positions: list[int]) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.positions = positions  # shared by every Api of the test

    def call(
        self, method: str, path: str, token: str | None = None, expect: int = 200, **kw: Any
    ) -> Any:
        headers = {"X-Min-Position": str(max(self.positions))}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = self.http.request(method, path, headers=headers, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        if "X-Event-Position" in r.headers:
            self.positions.append(int(r.headers["X-Event-Position"]))
        return r.json() if r.content else None


def verification_token(mail_dir: Path, address: str) -> str:
    def found() -> str | None:
        for path in mail_dir.glob("*.eml") if mail_dir.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == address:
                match = TOKEN_RE.search(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
                if match:
                    return match.group(1)
        return None

    assert wait_until(lambda: found() is not None, 30), f"no verification mail to {address}"
    return found()  # type: ignore[return-value]


def sign_up(write: Api, read: Api, mail_dir: Path, name: str) -> tuple[str, str]:
    address = f"{name}@example.com"
    user = write.call(
        "POST",
        "/api/auth/register",
        expect=201,
        json={"email": address, "username": name, "password": PASSWORD},
    )
    read.call(
        "POST", "/api/auth/verify-email", json={"token": verification_token(mail_dir, address)}
    )
    return user["userId"], log_in(read, address)


def log_in(api: Api, address: str) -> str:
    return str(
        api.call("POST", "/api/auth/login", json={"email": address, "password": PASSWORD})[
            "accessToken"
        ]
    )


def test_scaled_mode_expires_an_order_through_the_worker_and_every_api_shows_it(
    mariadb_url: str, redis_url: str, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"
    prefix = f"s{uuid.uuid4().hex[:10]}"
    env = cli_env(
        mariadb_url,
        tmp_path,
        SHOPLEDGER_REDIS_URL=redis_url,
        SHOPLEDGER_QUEUE_PREFIX=prefix,
        SHOPLEDGER_MAIL_URL=f"file://{mail_dir}",
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=shared_jwt_key(),
        SHOPLEDGER_UNPAID_ORDER_TTL="PT2S",
        SHOPLEDGER_RULE_SWEEP_INTERVAL="PT1S",
    )
    created = run(["create-admin", "--email", "boss@example.com", "--password", PASSWORD], env)
    assert created.returncode == 0, created.stderr
    ports = [free_port(), free_port()]
    logs = {n: tmp_path / f"{n}.log" for n in ("api1", "api2", "projector", "worker")}
    procs: list[subprocess.Popen[bytes]] = [
        spawn(["serve", "--port", str(ports[0])], env, logs["api1"]),
        spawn(["serve", "--port", str(ports[1])], env, logs["api2"]),
        spawn(["projections", "run"], env, logs["projector"]),
        spawn(["worker"], env, logs["worker"]),
    ]

    def tails() -> str:
        return "\n".join(f"--- {n}\n{p.read_text()[-1500:]}" for n, p in logs.items() if p.exists())

    try:
        seen = [0]
        one, two = (
            Api(f"http://127.0.0.1:{ports[0]}", seen),
            Api(f"http://127.0.0.1:{ports[1]}", seen),
        )
        for api in (one, two):
            assert wait_until(lambda: _up(api), 60, 0.1), tails()  # noqa: B023
        boss = log_in(one, "boss@example.com")
        seller_id, seller = sign_up(one, two, mail_dir, "shopkeeper")
        one.call(
            "POST",
            "/api/users/me/seller-application",
            seller,
            expect=202,
            json={"shopName": "好店"},
        )
        two.call("POST", f"/api/admin/sellers/{seller_id}/approve", boss)
        seller = log_in(one, "shopkeeper@example.com")
        category = two.call(
            "POST", "/api/catalog/categories", boss, expect=201, json={"name": "保養"}
        )["categoryId"]
        product = one.call(
            "POST",
            "/api/catalog/products",
            seller,
            expect=201,
            json={
                "name": "保濕乳液",
                "description": "說明",
                "categoryId": category,
                "price": {"value": 350, "currency": "TWD"},
            },
        )["productId"]
        warehouse = two.call(
            "POST",
            "/api/inventory/warehouses",
            boss,
            expect=201,
            json={"code": "WH-1", "name": "倉庫"},
        )["warehouseId"]
        one.call(
            "POST",
            "/api/inventory/receipts",
            seller,
            expect=201,
            json={"productId": product, "warehouseId": warehouse, "quantity": 5},
        )

        _, buyer = sign_up(two, one, mail_dir, "mei")
        one.call(
            "POST", "/api/cart/items", buyer, expect=201, json={"productId": product, "quantity": 2}
        )
        order = one.call(
            "POST",
            "/api/sales/orders",
            buyer,
            expect=201,
            json={
                "shippingAddress": ADDRESS,
                "billingAddressSameAsShipping": True,
                "paymentMethod": "CREDIT_CARD",
                "shippingMethod": "STANDARD",
            },
        )
        oid = order["orderId"]
        stock = two.call("GET", "/api/inventory/stock", seller, params={"productId": product})[
            "totals"
        ]
        assert stock["available"] == 3

        assert wait_until(
            lambda: two.call("GET", f"/api/sales/orders/{oid}", buyer)["status"] == "CANCELLED", 30
        ), tails()
        notices = two.call("GET", "/api/notifications", buyer)["notifications"]
        assert any(n["type"] == "ORDER_EXPIRED" and n["data"]["orderId"] == oid for n in notices), (
            notices
        )
        assert wait_until(
            lambda: (
                two.call("GET", "/api/inventory/stock", seller, params={"productId": product})[
                    "totals"
                ]["available"]
                == 5
            ),
            10,
        )
        events = two.call("GET", f"/api/sales/orders/{oid}/timeline", buyer)["events"]
        assert [(e["type"], e["actor"]) for e in events][-1] == ("Expired", "system:unpaid-expiry")
    finally:
        for proc in procs:
            stop(proc)
        _forget(redis_url, prefix)
    # Mail went through RQ: the worker sent it, no API process did.
    assert _logged(logs["worker"], "mail sent") >= 2
    assert _logged(logs["api1"], "mail sent") == _logged(logs["api2"], "mail sent") == 0
    for name in ("api1", "api2"):
        assert any(
            e.get("msg") == "serving"
            and e.get("mode") == "scaled"
            and e.get("mailInProcess") is False
            for e in _json_lines(logs[name])
        )
    assert _logged(logs["worker"], "timed rule applied") == 1


def _forget(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def _up(api: Api) -> bool:
    try:
        return api.http.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _logged(path: Path, message: str) -> int:
    return sum(1 for e in _json_lines(path) if re.fullmatch(message, str(e.get("msg", ""))))
