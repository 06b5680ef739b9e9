"""Timed-rule firing delay under a steady checkout load: from an order's due time
(``expires_at``) to its ``Order.Expired`` event (the event's ``at``, taken when the expiry
command ran), p50/p90/p99/max.

Every order of the load is a card order that is never paid, so each one produces one unpaid-
expiry deadline ``--ttl`` after checkout. The load runs in this process through the command bus
(AddToCart + PlaceOrder at ``--rate`` orders/s, open loop, a few threads); the rules run where
each mode puts them:

* ``scheduler``: scaled mode on MariaDB + Redis: one ``shopledger projections run`` and
  ``--workers`` ``shopledger worker`` processes with RQ's scheduler. A deadline is scheduled
  with ``enqueue_at`` right after the deadlines projection commits it; the sweep (every
  ``--sweep`` s) is the safety net. Target: p99 < 2 s.
* ``sweep-only``: the same, with ``shopledger worker --without-scheduler``: no ``enqueue_at``
  job ever runs, only the periodic sweep fires deadlines. Target: p99 < 15 s (sweep every 10 s).
* ``embedded``: no Redis, SQLite file; this process runs the projections and the rules thread
  (``shopledger serve`` does the same in embedded mode).

    python -m bench.timers [--seconds 60] [--rate 10] [--ttl 20] [--workers 2] [--sweep 10]
                           [--modes scheduler,sweep-only,embedded]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from aggregates.orders import Order
from bench.checkout import ADDRESS, SEED_META, Shop, pct, seed, server_env
from bench.common import database
from commands.orders import AddToCart, PlaceOrder
from shopledger.bootstrap import Container, bootstrap
from shopledger.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


@contextlib.contextmanager
def processes(commands: list[list[str]], env: dict[str, str], log: Path) -> Iterator[None]:
    procs = []
    with open(log, "ab") as out:
        for args in commands:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "shopledger.cli", *args],
                    env=env,
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def load(
    c: Container, shop: Shop, rate: float, seconds: float, ttl: timedelta, threads: int = 4
) -> list[UUID]:
    """Open loop: order i is placed at t0 + i / rate (late starts just go late)."""
    placed: list[UUID] = []
    total = int(rate * seconds)
    t0 = time.monotonic() + 0.5
    lock = threading.Lock()
    counter = iter(range(total))

    def run(buyers: list[str]) -> None:
        n = 0
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            buyer = buyers[n % len(buyers)]
            n += 1
            c.bus.execute(AddToCart(buyer, shop.products[i % len(shop.products)], 1), SEED_META)
            oid = uuid4()
            c.bus.execute(
                PlaceOrder(oid, buyer, ADDRESS, ADDRESS, "CREDIT_CARD", "STANDARD", "", None, ttl),
                SEED_META,
            )
            with lock:
                placed.append(oid)

    ids = [b.user_id for b in shop.buyers]
    pool = [threading.Thread(target=run, args=(ids[k::threads],)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return placed


def delays(c: Container, orders: list[UUID], wait: float) -> tuple[list[float], int]:
    """Seconds from due to Expired for every order (waiting up to ``wait`` s for stragglers)."""
    deadline = time.monotonic() + wait
    pending = set(orders)
    found: dict[UUID, float] = {}
    while pending and time.monotonic() < deadline:
        for oid in list(pending):
            order: Order = c.app.repository.get(oid)
            assert isinstance(order, Order)
            if order.status == "CANCELLED":
                assert order.cancelled_at is not None and order.expires_at is not None
                found[oid] = (order.cancelled_at - order.expires_at).total_seconds()
                pending.discard(oid)
        if pending:
            time.sleep(0.5)
    return list(found.values()), len(pending)


def sweeps(log: Path) -> tuple[int, int]:
    """(sweeps run, deadlines they dispatched) from the workers' JSON log."""
    runs = fired = 0
    for line in log.read_text().splitlines() if log.exists() else []:
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("msg") == "deadline sweep":
                    runs += 1
                    fired += int(entry.get("fired", 0))
    return runs, fired


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    ttl = timedelta(seconds=args.ttl)
    kind = "sqlite" if mode == "embedded" else "mariadb"
    with database(kind) as url, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        common = {
            "unpaid_order_ttl": f"PT{args.ttl}S",
            "rule_sweep_interval": f"PT{args.sweep}S",
            "var_dir": tmp,
            "environment": "test",
            "mail_url": f"file://{tmp / 'mail'}",
        }
        if mode == "embedded":
            c = bootstrap(load_settings(database_url=url, **common))
            shop = seed(c, args.buyers, 2, 10)
            c.start_background()
            c.start_rules()
            stack: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        else:
            c = bootstrap(
                load_settings(database_url=url, redis_url=REDIS_URL, queue_prefix=prefix, **common)
            )
            shop = seed(c, args.buyers, 2, 10)
            env = server_env(url, tmp)
            env.update(
                SHOPLEDGER_REDIS_URL=REDIS_URL,
                SHOPLEDGER_QUEUE_PREFIX=prefix,
                SHOPLEDGER_UNPAID_ORDER_TTL=f"PT{args.ttl}S",
                SHOPLEDGER_RULE_SWEEP_INTERVAL=f"PT{args.sweep}S",
                SHOPLEDGER_LOG_LEVEL="INFO",
            )
            worker = ["worker"] + (["--without-scheduler"] if mode == "sweep-only" else [])
            stack = processes(
                [["projections", "run"], *[worker] * args.workers], env, tmp / "procs.log"
            )
        try:
            with stack:
                time.sleep(3 if mode != "embedded" else 0)  # processes up
                started = time.monotonic()
                orders = load(c, shop, args.rate, args.seconds, ttl)
                placed_for = time.monotonic() - started
                values, missing = delays(c, orders, wait=args.ttl + 3 * args.sweep + 30)
                runs, by_sweep = sweeps(tmp / "procs.log")
        finally:
            if mode != "embedded":
                _forget(prefix)
            c.close()
    return {
        "mode": mode,
        "orders": len(orders),
        "rate": len(orders) / placed_for,
        "missing": missing,
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values, default=float("nan")),
        "min": min(values, default=float("nan")),
        "sweeps": runs,
        "bySweep": by_sweep,
    }


def _forget(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=10, help="orders per second")
    parser.add_argument(
        "--ttl",
        type=int,
        default=20,
        help="unpaid order TTL, s (above sweep + 2 s: the sweep's look-ahead schedules it, "
        "as it does a 30-minute TTL; at or below, the projection's hook does)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sweep", type=int, default=10, help="sweep interval, seconds")
    parser.add_argument("--buyers", type=int, default=40)
    parser.add_argument("--modes", default="scheduler,sweep-only,embedded")
    args = parser.parse_args()
    print(
        f"load {args.rate:g} orders/s for {args.seconds:g} s, TTL {args.ttl} s, sweep every {args.sweep} s, "
        f"{args.workers} worker(s); delay = Order.Expired.at - expires_at"
    )
    print(
        f"{'mode':<11} {'orders':>6} {'ord/s':>6} {'min':>6} {'p50':>6} {'p90':>6} {'p99':>6} {'max':>6} "
        f"{'missing':>7} {'sweeps':>6} {'by sweep':>8}"
    )
    for mode in args.modes.split(","):
        r = run_mode(mode, args)
        print(
            f"{r['mode']:<11} {r['orders']:>6} {r['rate']:>6.1f} {r['min']:>6.2f} {r['p50']:>6.2f} {r['p90']:>6.2f} "
            f"{r['p99']:>6.2f} {r['max']:>6.2f} {r['missing']:>7} {r['sweeps']:>6} {r['bySweep']:>8}",
            flush=True,
        )


if __name__ == "__main__":
    main()
