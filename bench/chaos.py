"""Chaos proof: the scaled deployment under an order-and-pay load survives ``kill -9`` of an
API process, the projector and the worker, and the loss of its Redis data, with nothing lost,
doubled or stuck.

What it does:
1. Makes the shop through the ordinary commands (an admin, two sellers with a few products of
   limited stock, a few verified buyers), then starts the scaled deployment on that database:
   ``shopledger serve`` (uvicorn) x ``--apis``, ``shopledger projections run`` and
   ``shopledger worker``, all on one MariaDB database and one Redis under their own queue/key
   prefix, with a short unpaid-order TTL so that expiry fires during the run.
2. Runs a bounded load over HTTP: every buyer in its own thread fills its cart, checks out
   (some checkouts meet INSUFFICIENT_STOCK), then pays by card (some with a declined card
   first), pays and cancels (a refund through the card gateway), cancels unpaid, or leaves the
   order unpaid to expire.
3. During the load, in turn: ``kill -9`` the first API process, the projector, the worker,
   and deletes every Redis key of the deployment (its prefix and its RQ queues; never a
   FLUSHDB); each killed process is started again at once. Clients fail over to another API
   process while one is down.
4. Waits for every unpaid order to expire and the read models to catch up, then checks
   exactly, against the event store: every acknowledged order (a 2xx answer) once in the
   buyer's list, the seller's list, the admin list, the admin's customer record, the
   conversion funnel and the sales figures; reserved stock = units ordered and not released,
   per product, in the inventory read model and in the aggregate; every unpaid-order deadline
   fired exactly once and not early (events), and no deadline is left due in the deadlines
   read model; every payment and refund settled.

``tests/chaos/test_chaos.py`` runs this with a small load in CI; this module runs it bigger:

    python -m bench.chaos --orders 200 --buyers 6 --products 4 --stock 40

MariaDB on 127.0.0.1:3306 (a database of its own, dropped after), Redis at
``SHOPLEDGER_CHAOS_REDIS_URL`` (default ``redis://127.0.0.1:6379/14``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx

REPO = Path(__file__).resolve().parents[1]
SHOPLEDGER = [sys.executable, "-m", "shopledger.cli"]
PASSWORD = "correct horse battery"
GOOD_CARD = "4242424242424242"
SLOW_CARD = "4000000000000309"  # approved; the sandbox answers SLOW_ANSWER after recording it
SLOW_ANSWER = 3  # seconds (SHOPLEDGER_SANDBOX_SLOW_CARD_DELAY)
RECOVERY_AFTER = 5  # seconds (SHOPLEDGER_PAYMENT_RECOVERY_AFTER)
DECLINED_CARD = "4000000000000002"
ADDRESS = {
    "name": "王小明",
    "phone": "0912345678",
    "street": "信義路五段7號",
    "city": "台北市",
    "district": "信義區",
    "postalCode": "110",
    "country": "TW",
}

# >>> The one-line switch. True: the API process is killed in the middle of a card payment
# (a slow sandbox card, PaymentStarted recorded, the gateway's answer not yet), and the payment
# recovery rule (workers/payment_recovery.py) must settle it. False: the kill waits until no
# card payment or cancel is in flight on that process (what the proof did before that rule).
KILL_API_DURING_PAYMENTS = True
#: With the switch on, the kill waits for a payment that has been in flight this long.
RIPE = 1.5

FAULTS = ("api", "projector", "worker", "redis")
#: What the buyer does with its n-th acknowledged order, in turn (every path in every run).
FATES = (
    "paid slowly",
    "left unpaid",
    "declined, then paid",
    "cancelled",
    "paid slowly",
    "paid, then cancelled",
    "paid",
    "left unpaid",
    "paid",
    "cancelled",
)


@dataclass
class ChaosConfig:
    orders: int = 30  # checkout attempts, in all
    buyers: int = 4
    products: int = 3
    stock: int = 12  # units of each product
    apis: int = 2
    unpaid_ttl: float = 4.0  # seconds (SHOPLEDGER_UNPAID_ORDER_TTL)
    down_time: float = 0.5  # seconds a killed process stays down before it is started again
    pace: float = 0.3  # at least this many seconds between two checkout attempts (all buyers)
    seed: int = 18
    kill_api_during_payments: bool = KILL_API_DURING_PAYMENTS
    #: more SHOPLEDGER_* settings for every process (e.g. a shorter payment-recovery delay)
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    kind: str
    at_attempt: int  # checkout attempts made when it struck
    in_flight: int  # requests in flight at the API processes when it struck
    recovery: float = 0.0  # seconds from the fault to the process (or Redis use) being back
    note: str = ""


@dataclass
class Outcome:
    """What the load saw (answers) and what the checks found (problems: empty when all held)."""

    attempts: int = 0
    acknowledged: dict[str, str] = field(default_factory=dict)  # order id -> buyer id
    rejected: Counter[str] = field(default_factory=Counter)  # checkout refusals by code
    unknown_writes: int = 0  # requests whose connection broke: outcome unknown to the client
    broken: Counter[str] = field(default_factory=Counter)  # every such request, by route
    payments_ok: dict[str, str] = field(default_factory=dict)  # payment id -> order id
    payments_declined: int = 0
    cancels_ok: set[str] = field(default_factory=set)
    refusals: Counter[str] = field(default_factory=Counter)  # other 4xx, e.g. paying too late
    faults: list[Fault] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    load_seconds: float = 0.0
    settle_seconds: float = 0.0
    check_seconds: float = 0.0
    total_seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            (
                f"chaos: {self.attempts} checkout attempts; seconds: set-up "
                f"{self.setup_seconds:.1f}, load {self.load_seconds:.1f}, settling "
                f"{self.settle_seconds:.1f}, checks {self.check_seconds:.1f}, "
                f"in all {self.total_seconds:.1f}"
            )
        ]
        lines += [f"  {k}: {v}" for k, v in self.figures.items()]
        for f in self.faults:
            lines.append(
                f"  fault {f.kind:9} at attempt {f.at_attempt:4}, {f.in_flight} requests in "
                f"flight, back after {f.recovery:.2f} s{(' (' + f.note + ')') if f.note else ''}"
            )
        lines.append(
            "  problems: none" if not self.problems else f"  problems ({len(self.problems)}):"
        )
        lines += [f"    - {p}" for p in self.problems[:50]]
        return "\n".join(lines)


# --- the deployment ---------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    """The scaled deployment's processes, each restartable by name (api0.., projector, worker)."""

    def __init__(self, env: dict[str, str], workdir: Path, apis: int) -> None:
        self.env = env
        self.workdir = workdir
        self.ports = {f"api{n}": _free_port() for n in range(apis)}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def args(self, name: str) -> list[str]:
        if name in self.ports:
            return ["serve", "--port", str(self.ports[name])]
        return ["projections", "run"] if name == "projector" else ["worker"]

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str) -> None:
        with open(self.log(name), "ab") as out:
            self.procs[name] = subprocess.Popen(
                [*SHOPLEDGER, *self.args(name)],
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def tails(self) -> str:
        return "\n".join(
            f"--- {n}\n{self.log(n).read_text(errors='replace')[-2000:]}"
            for n in self.procs
            if self.log(n).exists()
        )


#: One client for every health poll (a new one builds a TLS context each time: CPU the
#: restarting processes need).
_PROBE = httpx.Client()


def _healthy(base: str, path: str = "/healthz") -> bool:
    try:
        return _PROBE.get(f"{base}{path}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def forget_redis(redis_url: str, prefix: str) -> int:
    """Delete every Redis key of the deployment: its prefix (sweep slots, rate limits, job
    markers) and its RQ queues, registries and jobs (their names carry the prefix), and the
    records of workers that served its queues. Other key spaces in the same db stay."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = set(client.scan_iter(match=f"*{prefix}*", count=1000))
        for queue_workers in [k for k in keys if k.startswith(b"rq:workers:")]:
            keys |= set(client.smembers(queue_workers))  # rq:worker:<name>
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


# --- the shop, made through the commands --------------------------------------------------------
@dataclass
class Shop:
    admin_email: str
    sellers: list[str]  # account ids
    seller_emails: list[str]
    buyers: list[tuple[str, str]]  # (account id, email)
    products: dict[str, str]  # product id -> seller id
    stock: int


def make_shop(container: Any, config: ChaosConfig) -> Shop:
    from aggregates.accounts import normalize_email, normalize_username
    from commands.accounts import ApplyForSeller, ApproveSeller, EnsureAdmin, Register
    from commands.application import EventMeta
    from commands.catalog import CreateCategory, CreateProduct
    from commands.inventory import CreateWarehouse, ReceiveStock

    def run(command: Any, actor: str = "system:chaos") -> Any:
        return container.bus.execute(command, EventMeta(actor, "chaos")).result

    password_hash = container.passwords.hash(PASSWORD)

    def account(name: str, role: str = "buyer") -> tuple[str, str]:
        email = f"{name}@example.com"
        register = Register(
            account_id=uuid4(),
            email=normalize_email(email),
            username=name,
            username_key=normalize_username(name),
            password_hash=password_hash,
            display_name=name,
            phone=None,
            verification=None,
            role=role,
            email_verified=True,
        )
        if role == "admin":
            return str(run(EnsureAdmin(register))[1].id), email
        return str(run(register).id), email

    admin_id, admin_email = account("boss", "admin")
    category = uuid4()
    run(CreateCategory(category, "混沌", None), admin_id)
    sellers, seller_emails, warehouses = [], [], []
    for n in range(2):
        seller_id, email = account(f"shop{n}")
        run(ApplyForSeller(UUID(seller_id), f"店{n}", "chaos"), seller_id)
        run(ApproveSeller(UUID(seller_id)), admin_id)
        warehouse = uuid4()
        run(CreateWarehouse(warehouse, f"CH-{n}", f"倉{n}"), admin_id)
        sellers.append(seller_id)
        seller_emails.append(email)
        warehouses.append(str(warehouse))
    products: dict[str, str] = {}
    for n in range(config.products):
        seller_id = sellers[n % 2]
        pid = uuid4()
        run(
            CreateProduct(pid, seller_id, f"商品{n}", "說明", str(category), Decimal(100 + 50 * n)),
            seller_id,
        )
        run(
            ReceiveStock(uuid4().hex, pid, seller_id, False, warehouses[n % 2], config.stock),
            seller_id,
        )
        products[str(pid)] = seller_id
    buyers = [account(f"buyer{n}") for n in range(config.buyers)]
    return Shop(admin_email, sellers, seller_emails, buyers, products, config.stock)


# --- the load ---------------------------------------------------------------------------------
class Apis:
    """Spreads requests over the live API processes; a refused connection (a process down)
    goes to the next one. Knows what is in flight where, so that a kill lands in the middle of
    a request: of a card payment (``KILL_API_DURING_PAYMENTS``), or of anything but card
    payments and cancels, which then avoid the process about to be killed."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = bases
        self.down: set[int] = set()
        self.draining: set[int] = set()
        self.in_flight = [0] * len(bases)
        #: per process, when each card payment or cancel in flight there was sent
        self.gated: list[list[float]] = [[] for _ in bases]
        #: set while a kill waits for a card payment in flight: buyers then pay slowly
        self.slow_wanted = False
        #: requests whose connection broke mid-way (the process died under them), by route
        self.broken: Counter[str] = Counter()
        self.lock = threading.Condition()
        self.local = threading.local()

    def _client(self, n: int) -> httpx.Client:
        clients = getattr(self.local, "clients", None)
        if clients is None:
            clients = self.local.clients = {}
        if n not in clients:
            clients[n] = httpx.Client(base_url=self.bases[n], timeout=30)
        return clients[n]

    def _pick(self, gated: bool) -> tuple[int, float]:
        with self.lock:
            while True:
                live = [
                    n
                    for n in range(len(self.bases))
                    if n not in self.down and not (gated and n in self.draining)
                ]
                if live:
                    n, sent = random.choice(live), time.monotonic()
                    self.in_flight[n] += 1
                    if gated:
                        self.gated[n].append(sent)
                    self.lock.notify_all()  # a drain may wait for a request in flight
                    return n, sent
                self.lock.wait(0.1)

    def _done(self, n: int, gated: bool, sent: float) -> None:
        with self.lock:
            self.in_flight[n] -= 1
            if gated:
                self.gated[n].remove(sent)
            self.lock.notify_all()

    def request(
        self, method: str, path: str, token: str | None = None, gated: bool = False, **kw: Any
    ) -> httpx.Response | None:
        """The answer, or None when the connection broke mid-request (outcome unknown)."""
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for _ in range(200):
            n, sent = self._pick(gated)
            try:
                return self._client(n).request(method, path, headers=headers, **kw)
            except httpx.ConnectError:
                with self.lock:  # refused: that process is down; nothing was sent
                    self.lock.wait(0.05)
                continue
            except httpx.TransportError:
                with self.lock:
                    self.broken[f"{method} {re.sub(r'[0-9a-f-]{36}', '{id}', path)}"] += 1
                return None
            finally:
                self._done(n, gated, sent)
        raise RuntimeError(f"no API process answered {method} {path}")

    def drain(self, n: int, payments_too: bool, busy_within: float = 8.0) -> int:
        """Get process ``n`` ready to be killed, and wait (up to ``busy_within`` s) until a
        request is in flight on it, so that the kill breaks one. With ``payments_too``: a card
        payment or cancel sent at least ``RIPE`` s ago (a slow card's payment is then
        waiting for the gateway's answer, PaymentStarted recorded). Otherwise any request,
        after keeping payments and cancels off it and waiting for those in flight there to
        finish. Answers how many requests are in flight on it."""
        with self.lock:
            if not payments_too:
                self.draining.add(n)
                while self.gated[n]:
                    self.lock.wait(0.05)
            deadline = time.monotonic() + busy_within
            while time.monotonic() < deadline:
                now = time.monotonic()
                if payments_too and any(now - sent >= RIPE for sent in self.gated[n]):
                    break
                if not payments_too and self.in_flight[n]:
                    break
                self.lock.wait(0.01)
            return self.in_flight[n]

    def set_down(self, n: int, down: bool) -> None:
        with self.lock:
            (self.down.add if down else self.down.discard)(n)
            if not down:
                self.draining.discard(n)
            self.lock.notify_all()


def _code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except Exception:  # noqa: BLE001
        return str(r.status_code)


def log_in(apis: Apis, email: str) -> str:
    for _ in range(100):
        r = apis.request("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
        if r is not None and r.status_code == 200:
            return str(r.json()["accessToken"])
        if r is not None and r.status_code == 429:  # a rate limit on logins from one address
            time.sleep(float(r.headers.get("Retry-After", "1")))
        elif r is not None:
            raise RuntimeError(f"login {email}: {r.status_code} {r.text}")
    raise RuntimeError(f"login {email}: no answer")


class Load:
    """The buyers' threads. Checkout attempts are handed out at most one per ``pace`` seconds,
    and never more than half a segment past the next fault's turn before it struck, so every
    fault strikes under load near its planned attempt."""

    def __init__(self, config: ChaosConfig, apis: Apis, shop: Shop, outcome: Outcome) -> None:
        self.config = config
        self.apis = apis
        self.shop = shop
        self.outcome = outcome
        self.lock = threading.Condition()
        self.faults_done = 0
        self.next_attempt = 0.0
        self.errors: list[str] = []

    def segment(self, n: float) -> int:
        return min(self.config.orders, int(self.config.orders * n / (len(FAULTS) + 1)))

    def take(self) -> bool:
        with self.lock:
            while True:
                if self.outcome.attempts >= self.config.orders:
                    return False
                now = time.monotonic()
                if self.outcome.attempts < self.segment(self.faults_done + 1.5) and (
                    now >= self.next_attempt
                ):
                    self.outcome.attempts += 1
                    self.next_attempt = now + self.config.pace
                    self.lock.notify_all()
                    return True
                self.lock.wait(min(0.1, max(0.001, self.next_attempt - now)))

    def fault_done(self) -> None:
        with self.lock:
            self.faults_done += 1
            self.lock.notify_all()

    def wait_for_attempts(self, n: int) -> None:
        with self.lock:
            while self.outcome.attempts < n:
                self.lock.wait(0.1)

    def buyer(self, index: int) -> None:
        buyer_id, email = self.shop.buyers[index]
        rng = random.Random(f"{self.config.seed}:{index}")
        try:
            token = log_in(self.apis, email)
            while self.take():
                self.one_order(rng, buyer_id, token)
        except Exception as exc:  # noqa: BLE001 - reported, and the run fails
            self.errors.append(f"buyer {index}: {type(exc).__name__}: {exc}")
            with self.lock:
                self.lock.notify_all()

    def one_order(self, rng: random.Random, buyer_id: str, token: str) -> None:
        apis, outcome = self.apis, self.outcome
        products = rng.sample(sorted(self.shop.products), k=min(len(self.shop.products), 2))
        lines = products[: rng.randint(1, len(products))]
        for pid in lines:
            apis.request(
                "POST",
                "/api/cart/items",
                token,
                json={"productId": pid, "quantity": rng.randint(1, 2)},
            )
        r = apis.request(
            "POST",
            "/api/sales/orders",
            token,
            json={
                "shippingAddress": ADDRESS,
                "billingAddressSameAsShipping": True,
                "paymentMethod": "CREDIT_CARD",
                "shippingMethod": "STANDARD",
            },
        )
        if r is None or r.status_code != 201:
            with self.lock:
                if r is None:
                    outcome.unknown_writes += 1
                else:
                    outcome.rejected[_code(r)] += 1
            for pid in lines:  # what stays in the cart would ride along with the next checkout
                apis.request("DELETE", f"/api/cart/items/{pid}", token)
            return
        order = r.json()
        oid = order["orderId"]
        with self.lock:
            fate = FATES[len(outcome.acknowledged) % len(FATES)]
            outcome.acknowledged[oid] = buyer_id
        if apis.slow_wanted and fate != "left unpaid":
            fate = "paid slowly"
        if fate == "declined, then paid":
            self.pay(oid, order, token, DECLINED_CARD)
        if fate in ("paid", "declined, then paid", "paid, then cancelled"):
            self.pay(oid, order, token, GOOD_CARD)
        if fate == "paid slowly":
            self.pay(oid, order, token, SLOW_CARD)
        if fate in ("cancelled", "paid, then cancelled"):
            self.cancel(oid, token)
        # "left unpaid": it expires
        time.sleep(rng.random() * 0.05)

    def pay(self, oid: str, order: dict[str, Any], token: str, number: str) -> None:
        body = {
            "paymentMethod": "CREDIT_CARD",
            "paymentData": {
                "cardDetails": {
                    "number": number,
                    "expiryMonth": 12,
                    "expiryYear": 2031,
                    "cvv": "123",
                    "holderName": "WANG XIAO MING",
                }
            },
            "amount": order["total"],
        }
        r = self.apis.request(
            "POST", f"/api/sales/orders/{oid}/payments", token, gated=True, json=body
        )
        with self.lock:
            if r is None:
                self.outcome.unknown_writes += 1
            elif r.status_code == 200:
                self.outcome.payments_ok[r.json()["paymentId"]] = oid
            elif r.status_code == 422 and number == DECLINED_CARD:
                self.outcome.payments_declined += 1
            else:
                self.outcome.refusals[f"pay {_code(r)}"] += 1

    def cancel(self, oid: str, token: str) -> None:
        r = self.apis.request(
            "PUT", f"/api/sales/orders/{oid}/cancel", token, gated=True, json={"reason": "chaos"}
        )
        with self.lock:
            if r is None:
                self.outcome.unknown_writes += 1
            elif r.status_code == 200:
                self.outcome.cancels_ok.add(oid)
            else:
                self.outcome.refusals[f"cancel {_code(r)}"] += 1


# --- the faults -------------------------------------------------------------------------------
def strike(
    kind: str,
    deployment: Deployment,
    apis: Apis,
    config: ChaosConfig,
    redis_url: str,
    prefix: str,
    at_attempt: int,
) -> tuple[Fault, threading.Thread]:
    """Strike now; restart and time the recovery in a thread (so that recoveries may overlap
    the next fault, as they would in a bad hour)."""
    fault = Fault(kind, at_attempt, sum(apis.in_flight))
    worker_starts = _count_lines(deployment.log("worker"), "worker starting")
    head = 0
    if kind == "api":
        apis.slow_wanted = config.kill_api_during_payments
        fault.in_flight = apis.drain(0, config.kill_api_during_payments)
        time.sleep(0.03)  # let the request reach the process: the kill lands mid-request
        deployment.kill("api0")
        apis.slow_wanted = False
        apis.set_down(0, True)
    elif kind in ("projector", "worker"):
        head = (_progress(apis.bases[-1]) or (0, 0))[0]
        deployment.kill(kind)
    else:
        fault.note = f"{forget_redis(redis_url, prefix)} keys deleted"
    started = time.monotonic()

    def recover() -> None:
        if kind != "redis":
            time.sleep(config.down_time)
            deployment.start("api0" if kind == "api" else kind)
        if kind == "api":
            # back: the restarted process answers
            if not _wait(lambda: _healthy(apis.bases[0]), 90, 0.1):
                fault.note = "did not come back"
            apis.set_down(0, False)
        elif kind == "projector":
            # back: the restarted projector has projected every event there was at the kill
            if not _wait(lambda: (_progress(apis.bases[-1]) or (0, -1))[1] >= head, 90, 0.2):
                fault.note = "did not catch up"
        elif kind == "worker":
            # back: the restarted worker is taking jobs
            if not _wait(
                lambda: _count_lines(deployment.log("worker"), "worker starting") > worker_starts,
                90,
                0.2,
            ):
                fault.note = "did not start"
        elif not _wait(lambda: _sweep_slots(redis_url, prefix) > 0, 90, 0.2):
            # back: a worker claimed a sweep slot in the emptied Redis
            fault.note += "; no sweep since"
        fault.recovery = time.monotonic() - started

    thread = threading.Thread(target=recover, name=f"recover-{kind}", daemon=True)
    thread.start()
    return fault, thread


def _lag(base: str) -> int | None:
    """How far the slowest projection is behind the head (None: no answer)."""
    seen = _progress(base)
    return None if seen is None else seen[0] - seen[1]


def _progress(base: str) -> tuple[int, int] | None:
    """(head, the slowest projection's position), from ``/readyz``."""
    try:
        r = httpx.get(f"{base}/readyz", timeout=2)
        projections = r.json()["checks"]["projections"]
        head = int(projections["head"])
        return head, head - max(int(v) for v in projections["lag"].values())
    except Exception:  # noqa: BLE001
        return None


def _count_lines(path: Path, message: str) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text(errors="replace").splitlines() if message in line)


def _sweep_slots(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}:sweep-slot:*", count=1000))
    finally:
        client.close()


# --- the checks -------------------------------------------------------------------------------
class Reader:
    """Reads after the load: every request waits for the read models to hold ``position``."""

    def __init__(self, base: str, position: int) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.position = position

    def get(self, path: str, token: str, **params: Any) -> Any:
        for _ in range(20):
            r = self.http.get(
                path,
                params=params,
                headers={"Authorization": f"Bearer {token}", "X-Min-Position": str(self.position)},
            )
            if r.status_code != 503:
                break
            time.sleep(0.5)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {r.status_code} {r.text[:300]}")
        return r.json()

    def pages(self, path: str, token: str, key: str, **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.get(path, token, page=page, pageSize=100, **params)
            rows += body[key]
            if page >= body["pagination"]["totalPages"]:
                return rows
            page += 1


def placed_orders(container: Any) -> list[str]:
    """Every order in the event store, from its Placed event (the source of truth)."""
    from eventsourcing.utils import get_topic

    from aggregates.orders import Order

    topic = get_topic(Order.Placed)
    ids: list[str] = []
    start = 0
    while True:
        batch = container.app.recorder.select_notifications(
            start, 1000, topics=[topic], inclusive_of_start=False
        )
        ids += [str(n.originator_id) for n in batch]
        if len(batch) < 1000:
            return ids
        start = batch[-1].id


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _once(what: str, listed: list[str], expected: set[str], problems: list[str]) -> None:
    counts = Counter(listed)
    doubled = sorted(k for k, v in counts.items() if v > 1)
    missing = sorted(expected - set(counts))
    extra = sorted(set(counts) - expected)
    if doubled:
        problems.append(f"{what}: listed more than once: {doubled}")
    if missing:
        problems.append(f"{what}: missing: {missing}")
    if extra:
        problems.append(f"{what}: not expected there: {extra}")


def check(
    container: Any, reader: Reader, shop: Shop, outcome: Outcome, tokens: dict[str, str]
) -> None:
    from aggregates.inventory import Inventory
    from aggregates.taipei import local_date

    problems = outcome.problems
    store_ids = placed_orders(container)
    if len(store_ids) != len(set(store_ids)):
        problems.append("an order was placed twice in the event store")
    orders = {oid: container.load(UUID(oid)) for oid in store_ids}
    lost = sorted(set(outcome.acknowledged) - set(orders))
    if lost:
        problems.append(f"acknowledged orders not in the event store: {lost}")
    everyone = set(orders)
    boss = tokens[shop.admin_email]

    # every order once in every read model that lists orders
    listed = reader.pages("/api/sales/orders", boss, "orders")
    _once("admin order list", [o["orderId"] for o in listed], everyone, problems)
    statuses = {o["orderId"]: o["status"] for o in listed}
    for oid, order in orders.items():
        if statuses.get(oid) not in (None, order.status):
            problems.append(f"{oid}: listed {statuses[oid]}, the order is {order.status}")
    for buyer_id, email in shop.buyers:
        mine = {oid for oid, o in orders.items() if o.buyer_id == buyer_id}
        _once(
            f"buyer {email} list",
            [o["orderId"] for o in reader.pages("/api/sales/orders", tokens[email], "orders")],
            mine,
            problems,
        )
        record = reader.pages(f"/api/users/{buyer_id}/orders", boss, "orders")
        _once(f"customer record of {email}", [o["orderId"] for o in record], mine, problems)
    for seller_id, email in zip(shop.sellers, shop.seller_emails, strict=True):
        theirs = {oid for oid, o in orders.items() if seller_id in o.seller_ids}
        _once(
            f"seller {email} queue",
            [
                o["orderId"]
                for o in reader.pages("/api/sales/orders", tokens[email], "orders", sellerId="me")
            ],
            theirs,
            problems,
        )

    # the funnel and the sales figures (today and yesterday in Taipei: a run may span midnight)
    today = local_date(datetime.now(UTC))
    window = {"fromDate": (today - timedelta(days=1)).isoformat(), "toDate": today.isoformat()}
    timelines = {
        oid: reader.get(f"/api/sales/orders/{oid}/timeline", boss)["events"] for oid in orders
    }
    expired = {oid for oid, t in timelines.items() if any(e["type"] == "Expired" for e in t)}
    ever_paid = {oid for oid, o in orders.items() if o.paid_at is not None}
    kept = {oid for oid in ever_paid if orders[oid].status != "CANCELLED"}
    funnel = reader.get("/api/analytics/conversion", boss, **window)
    for name, want in (
        ("checkouts", len(orders)),
        ("paid", len(ever_paid)),
        ("expired", len(expired)),
    ):
        if funnel.get(name) != want:
            problems.append(f"conversion {name} = {funnel.get(name)}, the store says {want}")
    summary = reader.get("/api/sales/reports/sales-summary", boss, **window)
    if summary["totalOrders"] != len(kept):
        problems.append(
            f"sales summary orders = {summary['totalOrders']}, paid and kept {len(kept)}"
        )
    units: Counter[str] = Counter()
    revenue = Decimal(0)
    for oid in kept:
        for item in orders[oid].items:
            units[item["productId"]] += int(item["quantity"])
            revenue += Decimal(str(item["unitPrice"])) * int(item["quantity"])
    if Decimal(str(summary["totalSales"]["value"])) != revenue:
        problems.append(f"sales summary revenue = {summary['totalSales']['value']}, want {revenue}")
    analytics = reader.get("/api/analytics/sales", boss, **window)
    seen = (analytics["orders"], analytics["units"], Decimal(str(analytics["revenue"]["value"])))
    if seen != (len(kept), sum(units.values()), revenue):
        problems.append(
            f"analytics sales (orders, units, revenue) = {seen}, "
            f"want {(len(kept), sum(units.values()), revenue)}"
        )
    sold = {p["productId"]: p["quantity"] for p in summary["topSellingProducts"]}
    if {k: v for k, v in sold.items() if v} != {k: v for k, v in units.items() if v}:
        problems.append(f"units sold per product {sold}, the paid orders hold {dict(units)}")

    # stock reserved = units ordered and not released, per product
    live = {oid for oid, o in orders.items() if o.status in ("CREATED", "PAID", "PROCESSING")}
    for pid, seller_id in shop.products.items():
        ordered = sum(
            int(i["quantity"]) for oid in live for i in orders[oid].items if i["productId"] == pid
        )
        inventory = container.load(Inventory.create_id(pid))
        held = sum(inventory.reserved.values())
        on_hand = sum(inventory.on_hand.values())
        seller_token = tokens[shop.seller_emails[shop.sellers.index(seller_id)]]
        totals = reader.get("/api/inventory/stock", seller_token, productId=pid)["totals"]
        if not (held == totals["reserved"] == ordered):
            problems.append(
                f"product {pid}: reserved {held} (aggregate), {totals['reserved']} (read model), "
                f"units in live orders {ordered}"
            )
        if on_hand != shop.stock or totals["onHand"] != shop.stock:
            problems.append(
                f"product {pid}: on hand {on_hand} / {totals['onHand']}, want {shop.stock}"
            )
        holders = {o for o, units_ in inventory.reservations.items() if sum(units_.values())}
        want_holders = {
            oid for oid in live if any(i["productId"] == pid for i in orders[oid].items)
        }
        if holders != want_holders:
            problems.append(f"product {pid}: reservations {holders ^ want_holders} are off")

    # every deadline fired once; every payment and refund settled
    fired = 0
    recovered = 0
    late: list[float] = []  # seconds from an expiry's due time to its firing
    for oid, order in orders.items():
        timeline = timelines[oid]
        types = [e["type"] for e in timeline]
        expiries = [e for e in timeline if e["type"] == "Expired"]
        recovered += sum(
            1
            for e in timeline
            if e["actor"] == "system:payment-recovery"
            and e["type"] in ("PaymentCompleted", "PaymentFailed", "Refunded", "RefundFailed")
        )
        fired += len(expiries)
        if len(expiries) > 1:
            problems.append(f"{oid}: expired {len(expiries)} times")
        if expiries and expiries[0]["actor"] != "system:unpaid-expiry":
            problems.append(f"{oid}: expired by {expiries[0]['actor']}")
        if expiries:
            late.append(
                (datetime.fromisoformat(expiries[0]["at"]) - order.expires_at).total_seconds()
            )
        if expiries and datetime.fromisoformat(expiries[0]["at"]) < order.expires_at:
            problems.append(f"{oid}: expired at {expiries[0]['at']}, before it was due")
        if order.status == "CANCELLED" and not expiries and "Cancelled" not in types:
            problems.append(f"{oid}: cancelled with neither a cancel nor an expiry: {types}")
        if order.status == "CREATED":
            problems.append(f"{oid}: still unpaid after its expiry time")
        if order.pending_payment is not None:
            problems.append(f"{oid}: payment {order.pending_payment['paymentId']} never settled")
        if order.pending_refunds:
            problems.append(f"{oid}: refunds {sorted(order.pending_refunds)} never settled")
        started = types.count("PaymentStarted")
        settled = types.count("PaymentCompleted") + types.count("PaymentFailed")
        if started != settled:
            problems.append(f"{oid}: {started} payments started, {settled} settled")
        asked = types.count("RefundRequested")
        refunded = types.count("Refunded") + types.count("RefundFailed")
        if asked > refunded:
            problems.append(f"{oid}: {asked} refunds asked of the gateway, {refunded} answered")
        if (
            order.status == "CANCELLED"
            and order.paid_at is not None
            and order.refunded_amount != order.paid_amount
        ):
            problems.append(f"{oid}: cancelled after payment, refunded {order.refunded_amount}")
    # the deadlines read model (what the sweep fires from): no clock left running that is due
    from sqlalchemy import select

    from projections.deadlines import UNPAID_EXPIRY
    from projections.deadlines import live as deadline_tables

    table = deadline_tables["deadlines"]
    with container.engine.connect() as conn:
        running = conn.execute(select(table.c.order_id, table.c.rule, table.c.due_at)).all()
    now = datetime.now(UTC)
    overdue = [(o, r) for o, r, due in running if due is not None and _aware(due) <= now]
    if overdue:
        problems.append(f"deadlines due and never fired: {overdue}")
    if any(r == UNPAID_EXPIRY for _, r, _ in running):
        problems.append(f"unpaid-expiry clocks still running: {running}")
    for payment_id, oid in outcome.payments_ok.items():
        paid = [p for p in orders[oid].payments if p.get("paymentId") == payment_id]
        if not paid:
            problems.append(f"acknowledged payment {payment_id} of {oid} is not recorded")

    outcome.figures.update(
        {
            "orders in the store": len(orders),
            "orders acknowledged": len(outcome.acknowledged),
            "checkouts refused": dict(outcome.rejected),
            "writes with a broken connection": outcome.unknown_writes,
            "requests with a broken connection": dict(outcome.broken),
            "payments acknowledged": len(outcome.payments_ok),
            "payments declined": outcome.payments_declined,
            "payments and refunds settled by the recovery rule": recovered,
            "orders paid": len(ever_paid),
            "orders cancelled by a client": len(outcome.cancels_ok),
            "orders expired (deadline fired)": fired,
            "deadline clocks still running (not due)": len(running),
            "expiry after its due time (s): median, max": (
                [round(sorted(late)[len(late) // 2], 2), round(max(late), 2)] if late else None
            ),
            "other refusals": dict(outcome.refusals),
            "orders by status": dict(Counter(o.status for o in orders.values())),
        }
    )


# --- the run ----------------------------------------------------------------------------------
def run_chaos(database_url: str, redis_url: str, workdir: Path, config: ChaosConfig) -> Outcome:
    """Run the whole proof on a fresh, empty database; the caller reads ``outcome.problems``."""
    from shopledger.bootstrap import bootstrap
    from shopledger.settings import load_settings

    began = time.monotonic()
    outcome = Outcome()
    prefix = f"chaos{uuid.uuid4().hex[:8]}"
    ttl = f"PT{config.unpaid_ttl}S"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLEDGER_")}
    env.update(
        SHOPLEDGER_DATABASE_URL=database_url,
        SHOPLEDGER_VAR_DIR=str(workdir),
        SHOPLEDGER_ENVIRONMENT="test",
        SHOPLEDGER_LOG_FORMAT="json",
        SHOPLEDGER_REDIS_URL=redis_url,
        SHOPLEDGER_QUEUE_PREFIX=prefix,
        SHOPLEDGER_MAIL_URL=f"file://{workdir / 'mail'}",
        SHOPLEDGER_UNPAID_ORDER_TTL=ttl,
        SHOPLEDGER_RULE_SWEEP_INTERVAL="PT1S",
        # a firing lost with a killed worker or with Redis is dispatched again after this
        SHOPLEDGER_RULE_RETRY_AFTER="PT2S",
        # a card payment cut off by the API's death is settled from the gateway's books
        SHOPLEDGER_PAYMENT_RECOVERY_AFTER=f"PT{RECOVERY_AFTER}S",
        SHOPLEDGER_SANDBOX_SLOW_CARD_DELAY=f"PT{SLOW_ANSWER}S",
        PYTHONPATH=str(REPO),
    )
    env.update(config.extra_env)
    container = bootstrap(
        load_settings(
            database_url=database_url,
            var_dir=workdir,
            environment="test",
            unpaid_order_ttl=ttl,
            aggregate_cache_size=0,  # read what is committed, nothing older
            redis_url="",  # this process only makes the shop and reads the store
        )
    )
    deployment = Deployment(env, workdir, config.apis)
    try:
        for name in [*deployment.ports, "projector", "worker"]:
            deployment.start(name)  # they start while the shop is made: the schema is there
        shop = make_shop(container, config)
        outcome.figures["set-up: shop made after (s)"] = round(time.monotonic() - began, 1)
        apis = Apis([deployment.base(n) for n in deployment.ports])
        for base in apis.bases:
            if not _wait(lambda b=base: _healthy(b), 90, 0.1):
                raise RuntimeError(f"{base} did not start\n{deployment.tails()}")
        outcome.figures["set-up: API processes answering after (s)"] = round(
            time.monotonic() - began, 1
        )
        if not _wait(lambda: _lag(apis.bases[0]) == 0, 60, 0.1):
            raise RuntimeError(f"the projector did not catch up\n{deployment.tails()}")
        tokens = {
            email: log_in(apis, email)
            for email in [shop.admin_email, *shop.seller_emails, *(e for _, e in shop.buyers)]
        }
        load = Load(config, apis, shop, outcome)
        threads = [
            threading.Thread(target=load.buyer, args=(n,), daemon=True)
            for n in range(config.buyers)
        ]
        load_began = time.monotonic()
        outcome.setup_seconds = load_began - began
        for thread in threads:
            thread.start()
        recoveries = []
        for n, kind in enumerate(FAULTS, start=1):
            load.wait_for_attempts(load.segment(n))
            fault, recovery = strike(
                kind, deployment, apis, config, redis_url, prefix, outcome.attempts
            )
            outcome.faults.append(fault)
            recoveries.append(recovery)
            load.fault_done()
        for thread in threads:
            thread.join(300)
        outcome.load_seconds = time.monotonic() - load_began
        outcome.broken = apis.broken
        for thread in recoveries:
            thread.join(300)
        if load.errors:
            outcome.problems += load.errors

        # settle: every unpaid order expires, every started payment ends, read models catch up
        settle_began = time.monotonic()

        def settled() -> bool:
            for oid in placed_orders(container):
                order = container.load(UUID(oid))
                if order.status == "CREATED" or order.pending_payment or order.pending_refunds:
                    return False
            return True

        if not _wait(settled, config.unpaid_ttl + 45, 0.5):
            outcome.problems.append("orders still unpaid or payments pending 45 s after the TTL")
        position = container.head_position()
        if not _wait(lambda: _lag(apis.bases[0]) == 0, 60, 0.1):
            outcome.problems.append("the read models did not catch up within 60 s")
        outcome.settle_seconds = time.monotonic() - settle_began
        check(container, Reader(apis.bases[0], position), shop, outcome, tokens)
        outcome.check_seconds = time.monotonic() - settle_began - outcome.settle_seconds
    finally:
        deployment.stop_all()
        container.close()
        forget_redis(redis_url, prefix)
    outcome.total_seconds = time.monotonic() - began
    return outcome


@contextlib.contextmanager
def _database() -> Iterator[str]:
    from bench.common import database

    with database("mariadb") as url:
        yield url + "?charset=utf8mb4"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    defaults = ChaosConfig()
    parser.add_argument("--orders", type=int, default=200, help="checkout attempts (200)")
    parser.add_argument("--buyers", type=int, default=6)
    parser.add_argument("--products", type=int, default=4)
    parser.add_argument("--stock", type=int, default=40, help="units of each product (40)")
    parser.add_argument("--apis", type=int, default=defaults.apis)
    parser.add_argument("--ttl", type=float, default=6.0, help="unpaid-order TTL, seconds (6)")
    parser.add_argument(
        "--down", type=float, default=1.0, help="seconds a killed process stays down"
    )
    parser.add_argument(
        "--pace", type=float, default=0.05, help="seconds between checkout attempts (0.05)"
    )
    parser.add_argument(
        "--kill-api-during-payments",
        action=argparse.BooleanOptionalAction,
        default=KILL_API_DURING_PAYMENTS,
        help="kill the API in the middle of a card payment (default: on)",
    )
    parser.add_argument("--summary", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    config = ChaosConfig(
        orders=args.orders,
        buyers=args.buyers,
        products=args.products,
        stock=args.stock,
        apis=args.apis,
        unpaid_ttl=args.ttl,
        down_time=args.down,
        pace=args.pace,
        kill_api_during_payments=args.kill_api_during_payments,
    )
    redis_url = os.environ.get("SHOPLEDGER_CHAOS_REDIS_URL", "redis://127.0.0.1:6379/14")
    with _database() as url, tempfile.TemporaryDirectory() as tmp:
        outcome = run_chaos(url, redis_url, Path(tmp), config)
    print(outcome.summary())
    if args.summary:
        args.summary.write_text(json.dumps(_as_json(outcome), indent=2, default=str))
    return 0 if not outcome.problems else 1


def _as_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "attempts": outcome.attempts,
        "figures": outcome.figures,
        "faults": [vars(f) for f in outcome.faults],
        "seconds": {
            "setup": outcome.setup_seconds,
            "load": outcome.load_seconds,
            "settle": outcome.settle_seconds,
            "checks": outcome.check_seconds,
            "total": outcome.total_seconds,
        },
        "problems": outcome.problems,
    }


if __name__ == "__main__":
    sys.exit(main())
