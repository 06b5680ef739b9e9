"""What one application start costs in CPU, side by side in one run (`python -m bench.startup`).

1. Routing: the first request of an application whose routers are added with FastAPI's
   ``include_router`` (FastAPI 0.165 prepares every included route again per application, on
   its first request) against ``create_app``'s routers added route by route.
2. Schema: ``bootstrap`` on a new database (every table created) and on one that has them
   (a restart), on SQLite and MariaDB.

CPU time of this process (``time.process_time``), median of ``--rounds`` rounds; the servers'
own time is not in it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import ROUTERS, create_app
from bench.common import database, settings_for
from shopledger.bootstrap import bootstrap


def cpu(action: Callable[[], object]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


def first_request_cpu(app: FastAPI) -> float:
    """A path no route matches: the request is tried against every route, as the first
    requests of an application's life together are (a hit stops at its router)."""
    with TestClient(app) as client:
        return cpu(lambda: client.get("/api/no-such-path"))


def routing(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        container = bootstrap(settings_for(f"sqlite:///{Path(tmp) / 'r.db'}"))
        try:
            included, direct = [], []
            for _ in range(rounds):
                app = FastAPI()
                app.state.container = container
                for router in ROUTERS:
                    app.include_router(router)
                included.append(first_request_cpu(app))
                direct.append(
                    first_request_cpu(create_app(container, run_background=False, run_mail=False))
                )
        finally:
            container.close()
    a, b = statistics.median(included), statistics.median(direct)
    print(f"first request, routers included:      {a * 1000:7.1f} ms CPU")
    print(f"first request, create_app (direct):   {b * 1000:7.1f} ms CPU  ({a / b:.0f}x less)")


def schema(kind: str, rounds: int) -> None:
    fresh, again = [], []
    for _ in range(rounds):
        with database(kind) as url:

            def start(url: str = url) -> None:
                bootstrap(settings_for(url)).close()

            fresh.append(cpu(start))
            again.append(cpu(start))
    a, b = statistics.median(fresh), statistics.median(again)
    print(f"bootstrap on {kind:7}, new database:   {a * 1000:7.1f} ms CPU")
    print(f"bootstrap on {kind:7}, tables exist:   {b * 1000:7.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    routing(args.rounds)
    for kind in ("sqlite", "mariadb"):
        schema(kind, args.rounds)


if __name__ == "__main__":
    main()
