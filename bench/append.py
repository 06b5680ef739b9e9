"""Append throughput: events/s with 1 and 8 writer processes, 1 and 10 events per transaction,
with the audit hash chain on and off side by side (its cost, bench/README.md).

python -m bench.append [--seconds 5] [--backends sqlite,mariadb] [--chain both|on|off]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

from bench.common import container_for, database
from commands.application import EventMeta, recording_as
from tests.support.ledger import Ledger


def _writer(
    url: str,
    seconds: float,
    per_txn: int,
    start_at: float,
    out: multiprocessing.Queue,
    chain: bool = True,
) -> None:
    c = container_for(url)
    c.app.recorder.chain_enabled = chain  # type: ignore[attr-defined]
    meta = EventMeta("bench", "bench")
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.monotonic() + seconds
    events = 0
    with recording_as(meta):
        while time.monotonic() < deadline:
            ledger = Ledger("bench")  # 1 event
            for k in range(per_txn - 1):
                ledger.credit(k + 1)
            c.app.save(ledger)
            events += per_txn
    c.close()
    out.put(events)


def measure(url: str, writers: int, per_txn: int, seconds: float, chain: bool = True) -> float:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    start_at = time.time() + 3.0  # let every process finish importing and connecting
    procs = [
        ctx.Process(target=_writer, args=(url, seconds, per_txn, start_at, out, chain))
        for _ in range(writers)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--chain", choices=["both", "on", "off"], default="both")
    args = parser.parse_args()
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.chain]
    print(f"{'backend':8} {'writers':>7} {'ev/txn':>6} {'chain':>5} {'events/s':>10} {'txn/s':>8}")
    for backend in args.backends.split(","):
        for writers in (1, 8):
            for per_txn in (1, 10):
                for chain in modes:  # side by side, each on a fresh database
                    with database(backend) as url:
                        container_for(url).close()  # create tables once, before the race
                        rate = measure(url, writers, per_txn, args.seconds, chain)
                    print(
                        f"{backend:8} {writers:>7} {per_txn:>6} {'on' if chain else 'off':>5}"
                        f" {rate:>10.0f} {rate / per_txn:>8.0f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
