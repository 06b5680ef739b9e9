"""Checkout over HTTP on MariaDB: orders placed per second and checkout latency (p50/p95/p99).

A real ``shopledger serve`` process (embedded mode: projections in a thread of the API process,
no Redis) runs on a throw-away MariaDB database. The benchmark process seeds sellers, products
with plenty of stock and verified buyers directly through the command bus, logs every buyer in
over HTTP once (argon2 is slow on purpose, so that stays outside the timed phases), then drives
the API with httpx from worker threads, each owning distinct buyers. One order is 1-3
``POST /api/cart/items`` (random products, quantity 1-2) and one ``POST /api/sales/orders``
(cash on delivery, so no payment step; standard shipping).

Phases, each ``--seconds`` long:

* unthrottled (closed loop) at each ``--concurrency``: every worker starts its next order as
  soon as the last one is answered; gives the peak orders/s;
* paced (open loop) at ``--rate`` orders/s: order *i* arrives at ``t0 + i / rate``; a pool of
  workers (one per buyer) takes the next arrival when idle, waits for it, fills the cart and
  checks out. A late start (all workers busy: queueing, the client included) is added to that
  order's checkout latency, and the whole order is timed from its scheduled arrival. Arrivals
  still unstarted when the phase ends are dropped and counted.

Checkout and cart latencies are reported separately, both as the client saw them and as the
server logged them (``durationMs`` of the access log, matched by ``X-Request-ID``), with the CPU
used meanwhile by the server process, MariaDB, this process and the rest of the machine, the
number of command retries (version conflicts) and the projection lag after the phase. A short
single-threaded in-process breakdown (the same commands through the bus, no HTTP) closes the run.

First (``--no-baseline`` skips it) the bare-stack yardstick of ``bench.baseline`` (FastAPI +
SQLAlchemy Core on PyMySQL doing a plain shop's checkout) runs at each concurrency on the same
machine, and the run ends with shopledger's orders/s as a share of it.

    python -m bench.checkout [--seconds 20] [--buyers 40] [--rate 100] [--concurrency 4,8,16]
                             [--no-baseline] [--aggregate-cache N] [--scaled] [--servers N]

``--scaled`` runs the scaled deployment instead: Redis (``--redis-url``), the projections in a
``shopledger projections run`` process, and ``--servers`` API processes (the workers spread
over them, as a proxy's round robin would); the CPU column then sums every shopledger process.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from sqlalchemy import event, text

from aggregates.accounts import normalize_email, normalize_username
from aggregates.inventory import Inventory
from api.auth import load_account
from bench.baseline import run_baseline
from bench.common import database, free_port
from commands.accounts import EnsureAdmin, Register
from commands.application import EventMeta
from commands.catalog import CreateCategory, CreateProduct
from commands.inventory import CreateWarehouse, ReceiveStock
from commands.orders import AddToCart, PlaceOrder
from shopledger.bootstrap import Container, bootstrap
from shopledger.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
STOCK = 1_000_000  # units per product (the largest single receipt)
ADDRESS = {
    "name": "王小明",
    "phone": "0912345678",
    "street": "信義路五段7號",
    "city": "台北市",
    "district": "信義區",
    "postalCode": "110",
    "country": "TW",
}
CHECKOUT_BODY = {
    "shippingAddress": ADDRESS,
    "billingAddressSameAsShipping": True,
    "paymentMethod": "COD",
    "shippingMethod": "STANDARD",
}
SEED_META = EventMeta("system:bench", "bench-checkout")


# --- the server ------------------------------------------------------------------------------
def server_env(url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLEDGER_")}
    env.update(
        SHOPLEDGER_DATABASE_URL=url,
        SHOPLEDGER_VAR_DIR=str(tmp),
        SHOPLEDGER_ENVIRONMENT="test",
        SHOPLEDGER_AUTH_RATE_LIMITS="off",  # the bench signs many buyers in from one address
        SHOPLEDGER_MAIL_URL=f"file://{tmp / 'mail'}",
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=str(tmp / "jwt-private.pem"),
        PYTHONPATH=str(REPO),
    )
    return env


@contextlib.contextmanager
def shopledger_process(
    env: dict[str, str], log: Path, args: list[str], command: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``shopledger ARGS...`` (or ``command ARGS...``) with its output appended to ``log``;
    SIGTERM (then kill) after."""
    exe = REPO / ".venv" / "bin" / "shopledger"
    command = command or ([str(exe)] if exe.exists() else [sys.executable, "-m", "shopledger.cli"])
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*command, *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def projector(env: dict[str, str], log: Path) -> Iterator[int]:
    """``shopledger projections run`` (scaled mode); yields its pid."""
    with shopledger_process(env, log, ["projections", "run"]) as proc:
        yield proc.pid


@contextlib.contextmanager
def served(
    env: dict[str, str], log: Path, command: list[str] | None = None
) -> Iterator[tuple[str, int]]:
    """``shopledger serve`` on a free port, once ready; yields (base URL, pid)."""
    port = free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with shopledger_process(env, log, args, command) as proc:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready in 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base, proc.pid


class ServerLog:
    """Reads the server's JSON log lines appended since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_entries(self) -> list[dict[str, Any]]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        entries = []
        for line in data[:end].splitlines():
            if line.startswith(b"{"):
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
        return entries


# --- CPU accounting --------------------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _machine_busy() -> float:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return (sum(parts[:8]) - idle) / TICK


def _mariadb_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    return int(entry.name)
    return None


@dataclass
class CpuMeter:
    """CPU seconds used between start() and stop(), per party, as % of one core."""

    server_pids: tuple[int, ...]  # every shopledger process: API servers and projector
    db_pid: int | None
    _start: tuple[float, ...] = ()

    def _read(self) -> tuple[float, ...]:
        t = os.times()
        each = [_proc_cpu(pid) for pid in self.server_pids]
        return (
            time.monotonic(),
            sum(each),
            _proc_cpu(self.db_pid),
            t.user + t.system,
            _machine_busy(),
            *each,
        )

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        now = self._read()
        wall, server, db, bench, busy, *each = (
            b - a for a, b in zip(self._start, now, strict=True)
        )
        pct = {
            k: 100 * v / wall
            for k, v in (("server", server), ("mariadb", db), ("bench", bench), ("machine", busy))
        }
        pct["other"] = max(0.0, pct["machine"] - pct["server"] - pct["mariadb"] - pct["bench"])
        pct["server_s"] = server
        for pid, used in zip(self.server_pids, each, strict=True):
            pct[f"pid {pid}"] = 100 * used / wall
        return pct


# --- seeding ---------------------------------------------------------------------------------
@dataclass
class Buyer:
    user_id: str
    email: str
    access: str = ""


@dataclass
class Shop:
    admin: Buyer
    products: list[str]
    buyers: list[Buyer]


def _register(c: Container, name: str, password_hash: str, role: str) -> Buyer:
    address = f"{name}@example.com"
    command = Register(
        account_id=uuid4(),
        email=normalize_email(address),
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
        _, account = c.bus.execute(EnsureAdmin(command), SEED_META).result
    else:
        account = c.bus.execute(command, SEED_META).result
    return Buyer(str(account.id), address)


def seed(c: Container, buyers: int, sellers: int, products: int) -> Shop:
    tag = uuid4().hex[:6]
    password_hash = c.passwords.hash(PASSWORD)  # one argon2 run, shared by every account
    admin = _register(c, f"admin{tag}", password_hash, "admin")
    seller_ids = [
        _register(c, f"seller{tag}{n}", password_hash, "seller").user_id for n in range(sellers)
    ]
    category = c.bus.execute(CreateCategory(uuid4(), f"bench-{tag}", None), SEED_META).result
    warehouse = c.bus.execute(
        CreateWarehouse(uuid4(), f"WH-{tag.upper()}", "bench warehouse"), SEED_META
    ).result
    product_ids = []
    for n in range(products):
        seller = seller_ids[n % sellers]
        product = c.bus.execute(
            CreateProduct(
                uuid4(),
                seller,
                f"bench item {n:02d}",
                "an item for the checkout benchmark",
                str(category.id),
                Decimal(100 + 45 * n),
            ),
            SEED_META,
        ).result
        c.bus.execute(
            ReceiveStock(str(uuid4()), product.id, seller, False, str(warehouse.id), STOCK),
            SEED_META,
        )
        product_ids.append(str(product.id))
    people = [_register(c, f"buyer{tag}{n:03d}", password_hash, "buyer") for n in range(buyers)]
    return Shop(admin, product_ids, people)


def log_in(base: str, users: list[Buyer]) -> None:
    """One login per user (argon2 verify on the server, two at a time as it allows)."""

    def one(user: Buyer) -> None:
        r = httpx.post(
            f"{base}/api/auth/login", json={"email": user.email, "password": PASSWORD}, timeout=60
        )
        r.raise_for_status()
        user.access = r.json()["accessToken"]

    def each(chunk: list[Buyer]) -> Callable[[], None]:
        def run() -> None:
            for user in chunk:
                one(user)

        return run

    run_workers([each(users[0::2]), each(users[1::2])])
    missing = [u.email for u in users if not u.access]
    if missing:
        raise RuntimeError(f"login failed for {missing[:3]}")


def readiness(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/readyz", timeout=10).json()["checks"]["projections"])


def wait_caught_up(base: str, timeout: float = 120) -> float:
    """Seconds until every projection reaches the head (the head read at the start)."""
    started = time.monotonic()
    head = readiness(base)["head"]
    while True:
        state = readiness(base)
        if all(state["head"] - lag >= head for lag in state["lag"].values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return float("nan")
        time.sleep(0.05)


# --- load ------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What the workers saw in one phase (each worker fills its own, merged afterwards)."""

    checkout_ms: list[float] = field(default_factory=list)
    cart_ms: list[float] = field(default_factory=list)
    order_ms: list[float] = field(default_factory=list)  # first cart add to checkout answer
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    last_done: float = 0.0
    scheduled: int = 0  # paced phase: checkouts scheduled, and how many were never started
    missed: int = 0

    def merge(self, other: Tally) -> None:
        self.checkout_ms += other.checkout_ms
        self.cart_ms += other.cart_ms
        self.order_ms += other.order_ms
        self.errors.update(other.errors)
        for k, v in other.samples.items():
            self.samples.setdefault(k, v)
        self.last_done = max(self.last_done, other.last_done)


class Shopper:
    """One worker's HTTP client and the buyers it owns."""

    def __init__(
        self, bases: list[str], buyers: list[Buyer], products: list[str], phase: str, index: int
    ) -> None:
        # Several API processes: each worker talks to one, in turn (a proxy's round robin).
        self.client = httpx.Client(base_url=bases[index % len(bases)], timeout=60)
        self.buyers = itertools.cycle(buyers)
        self.products = products
        self.phase = phase
        self.index = index
        self.rng = random.Random(f"{phase}-{index}")
        self.tally = Tally()
        self.n = 0

    def _post(
        self, kind: str, path: str, body: dict[str, Any], buyer: Buyer
    ) -> tuple[float, float, bool]:
        self.n += 1
        headers = {
            "Authorization": f"Bearer {buyer.access}",
            "X-Request-ID": f"b-{self.phase}-{kind}-{self.index}-{self.n}",
        }
        started = time.perf_counter()
        try:
            r = self.client.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            key = f"{kind} {type(exc).__name__}"
            self.tally.errors[key] += 1
            self.tally.samples.setdefault(key, str(exc)[:300])
            return started, time.perf_counter(), False
        done = time.perf_counter()
        if r.status_code != 201:
            try:
                code = r.json().get("error", {}).get("code", "")
            except ValueError:
                code = ""
            key = f"{kind} {r.status_code} {code}".strip()
            self.tally.errors[key] += 1
            self.tally.samples.setdefault(key, r.text[:300])
        return started, done, r.status_code == 201

    def fill_cart(self, buyer: Buyer) -> tuple[float, bool]:
        first = time.perf_counter()
        for product in self.rng.sample(self.products, self.rng.randint(1, 3)):
            started, done, ok = self._post(
                "cart",
                "/api/cart/items",
                {"productId": product, "quantity": self.rng.randint(1, 2)},
                buyer,
            )
            self.tally.cart_ms.append((done - started) * 1000)
            if not ok:
                return first, False
        return first, True

    def checkout(self, buyer: Buyer, first: float, late: float = 0.0) -> None:
        """``first``: when the order began (or was due); ``late``: how late it was started."""
        started, done, ok = self._post("order", "/api/sales/orders", CHECKOUT_BODY, buyer)
        if ok:
            self.tally.checkout_ms.append((done - started + late) * 1000)
            self.tally.order_ms.append((done - first) * 1000)
            self.tally.last_done = done

    def close(self) -> None:
        self.client.close()


def run_workers(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def closed_loop(
    bases: list[str], shop: Shop, workers: int, seconds: float, phase: str
) -> tuple[Tally, float]:
    shoppers = [
        Shopper(bases, shop.buyers[k::workers], shop.products, phase, k) for k in range(workers)
    ]
    start = time.perf_counter() + 0.2
    deadline = start + seconds

    def work(s: Shopper) -> Callable[[], None]:
        def loop() -> None:
            time.sleep(max(0.0, start - time.perf_counter()))
            while time.perf_counter() < deadline:
                buyer = next(s.buyers)
                first, ok = s.fill_cart(buyer)
                if ok:
                    s.checkout(buyer, first=first)

        return loop

    run_workers([work(s) for s in shoppers])
    tally = Tally()
    for s in shoppers:
        tally.merge(s.tally)
        s.close()
    return tally, max(tally.last_done, deadline) - start


def open_loop(
    bases: list[str], shop: Shop, rate: float, seconds: float, phase: str
) -> tuple[Tally, float]:
    shoppers = [Shopper(bases, [b], shop.products, phase, k) for k, b in enumerate(shop.buyers)]
    total = int(rate * seconds)
    t0 = time.perf_counter() + 0.5
    end = t0 + seconds
    slots = itertools.count()
    guard = threading.Lock()
    started: list[int] = []

    def work(s: Shopper) -> Callable[[], None]:
        def loop() -> None:
            while True:
                with guard:
                    i = next(slots)
                # Past the end of the phase, overdue slots are dropped (and counted), not served.
                if i >= total or time.perf_counter() > end:
                    return
                started.append(i)
                buyer = next(s.buyers)
                arrival = t0 + i / rate
                time.sleep(max(0.0, arrival - time.perf_counter()))
                late = max(0.0, time.perf_counter() - arrival)
                _, ok = s.fill_cart(buyer)
                if ok:
                    s.checkout(buyer, first=arrival, late=late)

        return loop

    run_workers([work(s) for s in shoppers])
    tally = Tally(scheduled=total, missed=total - len(started))
    for s in shoppers:
        tally.merge(s.tally)
        s.close()
    return tally, max(tally.last_done - t0, seconds)


# --- reporting -------------------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]  # nearest rank


@dataclass
class ServerSide:
    checkout_ms: list[float] = field(default_factory=list)
    cart_ms: list[float] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)


def server_side(entries: list[dict[str, Any]], phase: str) -> ServerSide:
    out = ServerSide()
    prefix = f"b-{phase}-"
    for e in entries:
        rid = str(e.get("requestId", ""))
        if e.get("msg") == "command retry":
            out.retries[f"{e.get('command')}: {e.get('reason')}"] += 1
        elif e.get("level") in ("ERROR", "CRITICAL") or (
            e.get("level") == "WARNING" and e.get("msg") != "request"
        ):
            out.problems[str(e.get("msg"))[:80]] += 1
        if e.get("msg") != "request" or not rid.startswith(prefix) or e.get("status") != 201:
            continue
        (out.checkout_ms if rid.startswith(prefix + "order-") else out.cart_ms).append(
            float(e["durationMs"])
        )
    return out


HEADER = (
    f"{'phase':10} {'workers':>7} {'orders':>6} {'orders/s':>8} | {'chk p50':>7} {'p95':>6} {'p99':>6} {'max':>6}"
    f" | {'cart p50':>8} {'p99':>6} | {'srv chk p50':>11} {'p99':>6} {'srv cart p99':>12} | {'retries':>7} {'errors':>6}"
    f" | {'cpu% srv':>8} {'db':>4} {'bench':>5} {'other':>5} | {'srv ms/order':>12}"
)


def report(
    name: str, workers: int, tally: Tally, elapsed: float, srv: ServerSide, cpu: dict[str, float]
) -> None:
    orders = len(tally.checkout_ms)
    c, k = tally.checkout_ms, tally.cart_ms
    per_order = 1000 * cpu["server_s"] / orders if orders else float("nan")
    print(
        f"{name:10} {workers:>7} {orders:>6} {orders / elapsed:>8.1f} | {pct(c, 50):>7.1f} {pct(c, 95):>6.1f}"
        f" {pct(c, 99):>6.1f} {max(c, default=float('nan')):>6.0f} | {pct(k, 50):>8.1f} {pct(k, 99):>6.1f}"
        f" | {pct(srv.checkout_ms, 50):>11.1f} {pct(srv.checkout_ms, 99):>6.1f} {pct(srv.cart_ms, 99):>12.1f}"
        f" | {sum(srv.retries.values()):>7} {sum(tally.errors.values()):>6}"
        f" | {cpu['server']:>8.0f} {cpu['mariadb']:>4.0f} {cpu['bench']:>5.0f} {cpu['other']:>5.0f} | {per_order:>12.1f}",
        flush=True,
    )


def details(tally: Tally, srv: ServerSide, base: str, cpu: dict[str, float]) -> None:
    o = tally.order_ms
    if tally.scheduled:
        print(
            f"#   paced: {tally.scheduled - tally.missed} of {tally.scheduled} scheduled orders started"
            f" ({tally.missed} still overdue when the phase ended were dropped)"
        )
    shares = [f"{k} {v:.0f}%" for k, v in cpu.items() if k.startswith("pid ")]
    if len(shares) > 1:
        print(f"#   cpu per shopledger process (% of one core): {', '.join(shares)}")
    print(
        f"#   whole order (cart adds + checkout{', from its arrival' if tally.scheduled else ''})"
        f" p50 {pct(o, 50):.0f} ms p99 {pct(o, 99):.0f} ms;"
        f" cart adds {len(tally.cart_ms)} (p95 {pct(tally.cart_ms, 95):.1f} ms)"
    )
    for key, n in sorted(srv.retries.items()):
        print(f"#   retry x{n}: {key}")
    for key, n in sorted(tally.errors.items()):
        print(f"#   error x{n}: {key}: {tally.samples.get(key, '')}")
    for key, n in sorted(srv.problems.items()):
        print(f"#   server log x{n}: {key}")
    state = readiness(base)
    behind = {name: lag for name, lag in state["lag"].items() if lag}
    caught = wait_caught_up(base)
    print(
        f"#   projection lag at the end: head {state['head']}, behind {behind or 'none'};"
        f" caught up {caught:.2f} s later",
        flush=True,
    )


# --- in-process breakdown --------------------------------------------------------------------
def breakdown(c: Container, shop: Shop, rounds: int) -> None:
    """The same commands through the bus of this process, one at a time, no HTTP."""
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(c.engine, "before_cursor_execute", count)
    timings: dict[str, list[float]] = defaultdict(list)
    sql: dict[str, list[int]] = defaultdict(list)

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        before = statements[0]
        started = time.perf_counter()
        result = fn()
        timings[label].append((time.perf_counter() - started) * 1000)
        sql[label].append(statements[0] - before)
        return result

    def select_one() -> None:
        with c.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    buyer = shop.buyers[0]
    settings = c.settings
    rng = random.Random(7)
    meta = EventMeta(buyer.user_id, "bench-breakdown")
    try:
        for _ in range(rounds):
            timed("SELECT 1 round trip", select_one)
            timed(
                "auth: verify JWT + load Account",
                lambda: (c.tokens.verify(buyer.access, "access"), load_account(c, buyer.user_id)),
            )
            for product in rng.sample(shop.products, 2):
                timed(
                    "AddToCart command",
                    functools.partial(c.bus.execute, AddToCart(buyer.user_id, product, 1), meta),
                )
            command = PlaceOrder(
                order_id=uuid4(),
                buyer_id=buyer.user_id,
                shipping_address=ADDRESS,
                billing_address=ADDRESS,
                payment_method="COD",
                shipping_method="STANDARD",
                notes="",
                coupon_code=None,
                unpaid_ttl=settings.unpaid_order_ttl,
                tax_rate=settings.tax_rate,
                shipping_fees=settings.shipping_fee_table(),
            )
            timed("PlaceOrder command (2 lines)", functools.partial(c.bus.execute, command, meta))
            hot = Inventory.create_id(rng.choice(shop.products))
            timed("load one Inventory aggregate", functools.partial(c.app.repository.get, hot))
    finally:
        event.remove(c.engine, "before_cursor_execute", count)
    print(f"# in-process, one thread, {rounds} rounds (the server idle meanwhile):")
    print(f"#   {'step':34} {'p50 ms':>7} {'p95 ms':>7} {'SQL stmts':>9}")
    for label, values in timings.items():
        print(
            f"#   {label:34} {pct(values, 50):>7.2f} {pct(values, 95):>7.2f} {pct(sql[label], 50):>9}"
        )
    sizes = []
    for product in shop.products:
        inventory_id = Inventory.create_id(product)
        inventory: Inventory = c.app.repository.get(inventory_id)
        snapshot = c.app.snapshots.recorder.select_events(inventory_id, desc=True, limit=1)  # type: ignore[union-attr]
        sizes.append(
            (
                inventory.version,
                len(inventory.reservations),
                len(snapshot[0].state) if snapshot else 0,
            )
        )
    versions, reservations, snap = zip(*sizes, strict=True)
    print(
        f"#   Inventory aggregates now: up to version {max(versions)}, {max(reservations)} open reservations,"
        f" latest snapshot up to {max(snap) / 1024:.1f} KiB compressed",
        flush=True,
    )


# --- main ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description="Checkout throughput and latency over HTTP on MariaDB."
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--buyers", type=int, default=40)
    parser.add_argument(
        "--rate", type=float, default=100.0, help="orders/s of the paced phase (0: skip it)"
    )
    parser.add_argument(
        "--concurrency", default="4,8,16", help="workers of the unthrottled phases ('': none)"
    )
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--sellers", type=int, default=4)
    parser.add_argument(
        "--breakdown", type=int, default=100, help="rounds of the in-process breakdown (0: skip)"
    )
    parser.add_argument("--log", type=Path, help="keep the server's log here")
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first run the bare-stack baseline (bench.baseline) at each --concurrency",
    )
    parser.add_argument(
        "--servers", type=int, default=1, help="API processes (more than 1: scaled mode)"
    )
    parser.add_argument(
        "--scaled",
        action="store_true",
        help="scaled mode: Redis, projections in a `projections run` process",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--aggregate-cache", type=int, help="the server's SHOPLEDGER_AGGREGATE_CACHE_SIZE (0: off)"
    )
    parser.add_argument(
        "--server-command",
        help="run this instead of .venv/bin/shopledger (e.g. a profiling wrapper)",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if levels and args.buyers < max(levels):
        parser.error("--buyers must be at least the largest --concurrency (a buyer has one cart)")

    baseline: dict[int, tuple[float, float]] = {}
    for workers in levels if args.baseline else []:
        bare = run_baseline(args.seconds, workers, args.products, args.sellers)
        baseline[workers] = (bare["orders_per_s"], bare["p99"])
        print(
            f"# bare baseline (bench.baseline), {workers} workers: {bare['orders_per_s']:.1f}"
            f" orders/s, checkout p50 {bare['p50']:.1f} p95 {bare['p95']:.1f}"
            f" p99 {bare['p99']:.1f} ms, non-201 {bare['errors']}",
            flush=True,
        )
    with (
        database("mariadb") as plain_url,
        tempfile.TemporaryDirectory(prefix="sl-bench-checkout-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        url = f"{plain_url}?charset=utf8mb4"
        env = server_env(url, tmp)
        if args.aggregate_cache is not None:
            env["SHOPLEDGER_AGGREGATE_CACHE_SIZE"] = str(args.aggregate_cache)
        scaled = args.servers > 1 or args.scaled
        if scaled:
            # Scaled mode: Redis, projections in their own process, several API processes.
            env["SHOPLEDGER_REDIS_URL"] = args.redis_url
            env["SHOPLEDGER_QUEUE_PREFIX"] = f"slbench{uuid4().hex[:8]}"
        log_path = args.log or tmp / "serve.log"
        log_path.write_bytes(b"")
        container = bootstrap(
            load_settings(
                database_url=url,
                var_dir=tmp,
                environment="test",
                mail_url=env["SHOPLEDGER_MAIL_URL"],
                jwt_private_key_file=tmp / "jwt-private.pem",
            )
        )  # creates the tables and the signing key before the server starts
        try:
            started = time.monotonic()
            shop = seed(container, args.buyers, args.sellers, args.products)
            print(
                f"# seeded {args.sellers} sellers, {args.products} products x {STOCK:,} units,"
                f" {args.buyers} buyers in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            with contextlib.ExitStack() as processes:
                command = shlex.split(args.server_command or "")
                servers = [
                    processes.enter_context(served(env, log_path, command))
                    for _ in range(args.servers)
                ]
                pids = [pid for _, pid in servers]
                if scaled:
                    pids.append(processes.enter_context(projector(env, log_path)))
                bases = [b for b, _ in servers]
                base = bases[0]
                started = time.monotonic()
                log_in(base, [shop.admin, *shop.buyers])
                print(
                    f"# logged {args.buyers + 1} users in over HTTP in {time.monotonic() - started:.1f} s;"
                    f" projections caught up {wait_caught_up(base):.2f} s later",
                    flush=True,
                )
                server_log = ServerLog(log_path)
                server_log.new_entries()
                meter = CpuMeter(tuple(pids), _mariadb_pid())
                print(
                    f"# {'scaled' if scaled else 'embedded'} mode, {args.servers} API"
                    f" process(es){', a projector process' if scaled else ''};"
                    f" {os.cpu_count()} CPUs; shopledger pids {pids}; {args.seconds:g} s per phase;"
                    " latencies in ms; cpu% = % of one core; srv = as the server logged it",
                    flush=True,
                )
                print(HEADER, flush=True)
                phases: list[tuple[str, str, int, Callable[[], tuple[Tally, float]]]] = [
                    (
                        f"max-c{n}",
                        f"c{n}",
                        n,
                        functools.partial(closed_loop, bases, shop, n, args.seconds, f"c{n}"),
                    )
                    for n in levels
                ]
                if args.rate > 0:
                    phases.append(
                        (
                            f"paced-{args.rate:g}",
                            "paced",
                            args.buyers,
                            lambda: open_loop(bases, shop, args.rate, args.seconds, "paced"),
                        )
                    )
                placed = 0
                rates: dict[int, float] = {}
                for name, tag, workers, run in phases:
                    meter.start()
                    tally, elapsed = run()
                    cpu = meter.stop()
                    time.sleep(0.3)  # let the last log lines reach the file
                    srv = server_side(server_log.new_entries(), tag)
                    report(name, workers, tally, elapsed, srv, cpu)
                    details(tally, srv, base, cpu)
                    placed += len(tally.checkout_ms)
                    if tag != "paced":
                        rates[workers] = len(tally.checkout_ms) / elapsed
                for workers, (bare, bare_p99) in sorted(baseline.items()):
                    if workers in rates:
                        print(
                            f"# ratio at {workers} workers: shopledger {rates[workers]:.1f}"
                            f" orders/s / bare baseline {bare:.1f} orders/s (p99 {bare_p99:.0f} ms)"
                            f" = {rates[workers] / bare:.0%} (target 60%)",
                            flush=True,
                        )
                headers = {"Authorization": f"Bearer {shop.admin.access}"}
                listed = httpx.get(
                    f"{base}/api/sales/orders", params={"pageSize": 1}, headers=headers, timeout=30
                )
                total = (
                    listed.json()["pagination"]["totalItems"]
                    if listed.status_code == 200
                    else listed.text[:200]
                )
                print(
                    f"# orders answered 201: {placed}; orders in the read model: {total}",
                    flush=True,
                )
                if args.breakdown:
                    breakdown(container, shop, args.breakdown)
        finally:
            container.close()


if __name__ == "__main__":
    main()
