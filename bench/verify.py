"""Verification speed of the audit hash chain: events/s of `shopledger audit verify`'s engine.

python -m bench.verify [--events 200000] [--backends sqlite,mariadb]

Writes ``--events`` events (100 per transaction, chained by the real append path, a signed
checkpoint every 50,000), then verifies the whole store three times and reports the best.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from audit.checkpoints import create_checkpoint, keys_of
from audit.verify import verify_store
from bench.common import container_for, database
from commands.application import EventMeta, recording_as
from tests.support.ledger import Ledger


def fill(c: Any, events: int) -> None:
    with recording_as(EventMeta("bench", "bench")):
        written = 0
        while written < events:
            ledger = Ledger("bench")
            for k in range(99):
                ledger.credit(k + 1, memo="a memo of some length, like a real event's text")
            c.app.save(ledger)
            written += 100
            if written % 50_000 == 0:
                create_checkpoint(c)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'backend':8} {'events':>8} {'best s':>7} {'events/s':>10} {'checkpoints':>11}")
    for backend in args.backends.split(","):
        with database(backend) as url:
            c = container_for(url)
            try:
                fill(c, args.events)
                events = c.app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
                best = None
                for _ in range(args.runs):
                    started = time.perf_counter()
                    report = verify_store(c.engine, events, keys_of(c.tokens.keys))
                    took = time.perf_counter() - started
                    assert report.ok, report.summary()
                    best = took if best is None else min(best, took)
                assert best is not None
                print(
                    f"{backend:8} {report.checked:>8} {best:>7.2f}"
                    f" {report.checked / best:>10,.0f} {report.checkpoints:>11}",
                    flush=True,
                )
            finally:
                c.close()


if __name__ == "__main__":
    main()
