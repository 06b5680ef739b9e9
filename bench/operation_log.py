"""The operation log (GET /api/audit/events): projection write rate and filtered page latency.

    python -m bench.operation_log [--events 200000] [--backends sqlite,mariadb] [--runs 30]

Per backend, on a fresh database:

1. Applies ``--events`` synthetic envelopes through ``OperationLog.apply_many`` in batches of
   500, one transaction each, as the projector does (the part of a catch-up the projection
   itself costs; reading and decoding events is measured by ``bench.projection``): rows/s.
   2,000 users and 5 system rules act on 20,000 aggregates of 6 types with 30 event types,
   over 30 days of timestamps rising with the position.
2. Each kind of page the route asks for (``queries.operation_log.operation_log``, limit 100),
   ``--runs`` times warm after two untimed calls: p50 and p95 in ms. "deep" pages start at 90%
   of the log, where an offset-paged list would pay for everything before it.

Target: every page p95 < 20 ms at 200,000 events, whatever the filter.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from bench.common import container_for, database
from projections.base import Envelope
from projections.operation_log import OperationLog, live
from queries.operation_log import LogFilter, operation_log

AGGREGATES = ["Order", "Account", "Cart", "Inventory", "Product", "Coupon"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def envelopes(count: int, seed: int = 7) -> tuple[list[Envelope], dict[str, Any]]:
    rng = random.Random(seed)
    users = [str(uuid4()) for _ in range(2000)]
    actors = users + [f"system:rule{i}" for i in range(5)]
    aggregates = [(uuid4(), rng.choice(AGGREGATES)) for _ in range(20_000)]
    versions: dict[UUID, int] = {}
    step = timedelta(days=30) / count
    out = []
    for position in range(1, count + 1):
        aggregate_id, kind = rng.choice(aggregates)
        versions[aggregate_id] = versions.get(aggregate_id, 0) + 1
        meta = {"actor": rng.choice(actors), "correlationId": uuid4().hex}
        topic = f"aggregates.x:{kind}.Event{rng.randrange(5)}"
        state = {"timestamp": START + step * position, "__meta__": meta}
        out.append(
            Envelope(
                position, aggregate_id, versions[aggregate_id], topic, state, meta, lambda: None
            )
        )
    some = out[count // 2]
    facts = {
        "actor": users[0],
        "aggregate_id": str(some.originator_id),
        "common_type": "Order.Event0",
        "middle": START + step * (count // 2),
        "step": step,
    }
    return out, facts


def fill(container: Any, rows: list[Envelope]) -> float:
    projection = OperationLog(live)
    started = time.perf_counter()
    for i in range(0, len(rows), 500):
        with container.app.recorder.transaction(commit=True) as session:
            projection.apply_many(session, rows[i : i + 500])
    return len(rows) / (time.perf_counter() - started)


def timed(call: Any, runs: int) -> tuple[float, float, int]:
    for _ in range(2):
        call()
    samples = []
    found = 0
    for _ in range(runs):
        started = time.perf_counter()
        found = len(call()["events"])
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, found


def run(kind: str, count: int, runs: int) -> None:
    rows, facts = envelopes(count)
    with database(kind) as url:
        container = container_for(url)
        try:
            rate = fill(container, rows)
            print(f"{kind}: {count:,} rows applied at {rate:,.0f} rows/s")
            engine = container.engine
            deep = int(count * 0.9)
            hour = timedelta(hours=1)
            cases = {
                "all, first page": (LogFilter(), 0),
                "all, deep page": (LogFilter(), deep),
                "actor (~100 events)": (LogFilter(actor=facts["actor"]), 0),
                "aggregateId": (LogFilter(aggregate_id=facts["aggregate_id"]), 0),
                "type (1/30 of the log), first page": (
                    LogFilter(event_type=facts["common_type"]),
                    0,
                ),
                "type, deep page": (LogFilter(event_type=facts["common_type"]), deep),
                "aggregateType (1/6)": (LogFilter(aggregate_type="Account"), deep),
                "unknown actor (empty)": (LogFilter(actor="nobody"), 0),
                "from/to: one hour mid-log": (
                    LogFilter(start=facts["middle"], end=facts["middle"] + hour),
                    0,
                ),
                "actor + type": (
                    LogFilter(actor=facts["actor"], event_type=facts["common_type"]),
                    0,
                ),
            }
            print(f"| {kind} | page | p50 ms | p95 ms | events |")
            for name, (criteria, after) in cases.items():
                p50, p95, found = timed(
                    lambda c=criteria, a=after: operation_log(engine, c, a, 100), runs
                )
                print(f"| {kind} | {name} | {p50:.2f} | {p95:.2f} | {found} |", flush=True)
        finally:
            container.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    for kind in args.backends.split(","):
        run(kind, args.events, args.runs)


if __name__ == "__main__":
    main()
