"""The hash chain's cost on appends, measured so that machine noise cancels out: one process,
one database, short rounds with the chain on and off interleaved (ABBA order), medians.

python -m bench.chain_cost [--rounds 16] [--saves 40] [--backends sqlite,mariadb]

``bench.append`` gives the same comparison with 1 and 8 writer processes, each setting on its
own fresh database; on a busy shared machine its run-to-run noise is larger than the effect.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.common import container_for, database
from commands.application import EventMeta, recording_as
from tests.support.ledger import Ledger


def rate(c: Any, chain: bool, saves: int, per_txn: int) -> float:
    c.app.recorder.chain_enabled = chain
    started = time.perf_counter()
    with recording_as(EventMeta("bench", "bench")):
        for _ in range(saves):
            ledger = Ledger("bench")
            for k in range(per_txn - 1):
                ledger.credit(k + 1)
            c.app.save(ledger)
    return saves * per_txn / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--saves", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,mariadb")
    args = parser.parse_args()
    print(f"{'backend':8} {'ev/txn':>6} {'off ev/s':>9} {'on ev/s':>8} {'fewer':>7}")
    for backend in args.backends.split(","):
        for per_txn in (1, 10):
            with database(backend) as url:
                c = container_for(url)
                try:
                    rate(c, True, 10, per_txn)  # warm up (and complete the chain check)
                    found: dict[bool, list[float]] = {True: [], False: []}
                    for r in range(args.rounds):
                        for chain in (False, True) if r % 2 else (True, False):
                            found[chain].append(rate(c, chain, args.saves, per_txn))
                finally:
                    c.close()
            off, on = statistics.median(found[False]), statistics.median(found[True])
            print(
                f"{backend:8} {per_txn:>6} {off:>9.0f} {on:>8.0f} {1 - on / off:>7.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
