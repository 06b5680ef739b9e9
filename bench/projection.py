"""Projection catch-up speed and rebuild time over 100,000 events.

python -m bench.projection [--events 100000] [--backends sqlite,mariadb]
"""

from __future__ import annotations

import argparse
import time

from bench.common import container_for, database
from commands.application import EventMeta, recording_as
from projections.base import new_metadata
from projections.event_stats import EventStats
from projections.rebuild import rebuild
from projections.tracking import set_position
from tests.support.ledger import Ledger, LedgerBalances


def fill(c, events: int) -> None:
    """Write ``events`` events, 100 per transaction (one ledger opened and credited 99 times)."""
    with recording_as(EventMeta("bench", "bench")):
        for _ in range(events // 100):
            ledger = Ledger("bench")
            for k in range(99):
                ledger.credit(k + 1)
            c.app.save(ledger)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,mariadb")
    args = parser.parse_args()
    print(
        f"{'backend':8} {'projection':13} {'catch-up ev/s':>13} {'rebuild s':>9} {'rebuild ev/s':>12}"
    )
    for backend in args.backends.split(","):
        with database(backend) as url:
            c = container_for(url, projections=[LedgerBalances])
            started = time.monotonic()
            fill(c, args.events)
            print(
                f"# {backend}: wrote {args.events} events in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            for name, cls in (("event_stats", EventStats), ("test_ledgers", LedgerBalances)):
                with c.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                    set_position(session, name, 0)
                    for table in cls.define_tables(new_metadata()).values():
                        session.execute(table.delete())
                runner = c.runner([name])
                started = time.monotonic()
                runner.catch_up(timeout=600)
                catch_up = args.events / (time.monotonic() - started)
                report = rebuild(c.app, cls, c.locks)
                print(
                    f"{backend:8} {name:13} {catch_up:>13.0f} {report.seconds:>9.1f}"
                    f" {report.events / report.seconds:>12.0f}",
                    flush=True,
                )
            c.close()


if __name__ == "__main__":
    main()
