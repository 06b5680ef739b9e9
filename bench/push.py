"""Live push under load: many WebSockets on one API process, messages posted at a steady rate,
the delay from each message's commit to its arrival on every socket of its receiver.

    .venv/bin/python -m bench.push --sockets 1000 --rate 100 --seconds 20

One ``shopledger serve`` (embedded: projections in its threads) on a throw-away database;
``--users`` receivers share the sockets evenly; an admin posts messages round-robin to them.
The delay is measured from the message's ``createdAt`` (stamped by the command, just before
its transaction commits) to the moment the socket delivers it, on this machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.checkout import Buyer, log_in, seed, served, server_env
from bench.common import database
from shopledger.bootstrap import bootstrap
from shopledger.settings import load_settings


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def listen(
    url: str, ready: asyncio.Event, opened: list[int], delays: list[float], stop: asyncio.Event
) -> None:
    async with connect(url, open_timeout=60, max_queue=None) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "ready", first
        opened.append(1)
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            arrived = time.time()
            item = json.loads(raw)
            if item["type"] == "message":
                sent = datetime.fromisoformat(item["createdAt"]).timestamp()
                delays.append(1000 * (arrived - sent))


async def run(base: str, admin: Buyer, receivers: list[Buyer], args: argparse.Namespace) -> None:
    ws_base = base.replace("http://", "ws://")
    delays: list[float] = []
    opened: list[int] = []
    stop = asyncio.Event()
    ready = asyncio.Event()
    per_user = max(1, args.sockets // len(receivers))
    started = time.monotonic()
    tasks = []
    for n in range(args.sockets):
        user = receivers[(n // per_user) % len(receivers)]
        url = f"{ws_base}/api/ws?token={user.access}"
        tasks.append(asyncio.create_task(listen(url, ready, opened, delays, stop)))
        if n % 100 == 99:
            await asyncio.sleep(0.05)  # let the server accept them in batches
    while len(opened) < args.sockets:
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"a socket failed: {failed[0].exception()!r}")
        if time.monotonic() - started > 120:
            raise RuntimeError(f"only {len(opened)} sockets opened in 120 s")
        await asyncio.sleep(0.1)
    print(
        f"# {len(opened)} sockets open ({per_user} per receiver, {len(receivers)} receivers)"
        f" in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    headers = {"Authorization": f"Bearer {admin.access}"}
    posted = 0
    answers: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        interval = 1 / args.rate
        t0 = time.monotonic()
        pending: set[asyncio.Task[Any]] = set()

        async def post(n: int) -> None:
            receiver = receivers[n % len(receivers)]
            begun = time.monotonic()
            r = await http.post(
                "/api/messages",
                json={"toUserId": receiver.user_id, "text": f"bench {n}"},
                headers=headers,
            )
            r.raise_for_status()
            answers.append(1000 * (time.monotonic() - begun))

        while time.monotonic() - t0 < args.seconds:
            due = t0 + posted * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            task = asyncio.create_task(post(posted))
            pending.add(task)
            task.add_done_callback(pending.discard)
            posted += 1
        await asyncio.gather(*pending)
        elapsed = time.monotonic() - t0
    expected = posted * per_user
    deadline = time.monotonic() + 10
    while len(delays) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*tasks, return_exceptions=True)
    print(
        f"# posted {posted} messages in {elapsed:.1f} s ({posted / elapsed:.1f}/s);"
        f" POST p50 {pct(answers, 50):.1f} ms p99 {pct(answers, 99):.1f} ms",
        flush=True,
    )
    print(
        f"# deliveries {len(delays)} of {expected} expected;"
        f" commit -> socket p50 {pct(delays, 50):.1f} ms, p95 {pct(delays, 95):.1f} ms,"
        f" p99 {pct(delays, 99):.1f} ms, max {max(delays, default=float('nan')):.1f} ms"
        f" (mean {statistics.fmean(delays) if delays else float('nan'):.1f})",
        flush=True,
    )
    verdict = "met" if delays and pct(delays, 99) < 200 and len(delays) == expected else "MISSED"
    print(f"# target p99 < 200 ms with every delivery made: {verdict}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--users", type=int, default=250, help="receivers sharing the sockets")
    parser.add_argument("--rate", type=float, default=100, help="messages per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--database", choices=["sqlite", "mariadb"], default="sqlite")
    args = parser.parse_args()
    with database(args.database) as url, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = server_env(url, tmp)
        env["SHOPLEDGER_MESSAGE_RATE_LIMIT"] = str(int(args.rate * 120))  # the bench's sender
        container = bootstrap(
            load_settings(
                database_url=url,
                var_dir=tmp,
                environment="test",
                mail_url=env["SHOPLEDGER_MAIL_URL"],
                jwt_private_key_file=tmp / "jwt-private.pem",
            )
        )
        try:
            shop = seed(container, args.users, 1, 0)
        finally:
            container.close()
        with served(env, tmp / "serve.log") as (base, pid):
            started = time.monotonic()
            log_in(base, [shop.admin, *shop.buyers])
            print(
                f"# {args.database}, one API process (pid {pid}); {len(shop.buyers) + 1} users"
                f" logged in in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            asyncio.run(run(base, shop.admin, shop.buyers, args))


if __name__ == "__main__":
    main()
