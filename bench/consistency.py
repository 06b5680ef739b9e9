"""What read-your-writes costs a read: p50/p99 of a query right after the caller's own write,
with the default session consistency and with ``X-Consistency: eventual`` (which may answer
stale), and of a query with no write before it. Against real ``shopledger serve`` processes:
embedded (SQLite, projections in the API process) and scaled (MariaDB + Redis, a separate
projector, the write sent to one API process and the read to another).

    python -m bench.consistency --rounds 300
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import database, free_port

PASSWORD = "correct horse battery"
SHOPLEDGER = [sys.executable, "-m", "shopledger.cli"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def deployment(kind: str) -> Iterator[tuple[str, str]]:
    """(writer base URL, reader base URL)."""
    with (
        database("sqlite" if kind == "embedded" else "mariadb") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = {
            "SHOPLEDGER_DATABASE_URL": url,
            "SHOPLEDGER_VAR_DIR": tmp,
            "SHOPLEDGER_ENVIRONMENT": "test",
            "SHOPLEDGER_AUTH_RATE_LIMITS": "off",
            "SHOPLEDGER_LOG_LEVEL": "WARNING",
            "PATH": "/usr/bin:/bin",
        }
        if kind == "scaled":
            env["SHOPLEDGER_REDIS_URL"] = "redis://127.0.0.1:6379/14"
            env["SHOPLEDGER_QUEUE_PREFIX"] = f"b{uuid.uuid4().hex[:8]}"
        subprocess.run(
            [*SHOPLEDGER, "create-admin", "--email", "boss@example.com", "--password", PASSWORD],
            env=env,
            check=True,
            capture_output=True,
        )
        ports = [free_port(), free_port()] if kind == "scaled" else [free_port()]
        log = open(Path(tmp) / "serve.log", "ab")  # noqa: SIM115
        procs = [
            subprocess.Popen(
                [*SHOPLEDGER, "serve", "--port", str(p)], env=env, stdout=log, stderr=log
            )
            for p in ports
        ]
        if kind == "scaled":
            procs.append(
                subprocess.Popen(
                    [*SHOPLEDGER, "projections", "run"], env=env, stdout=log, stderr=log
                )
            )
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        try:
            for base in bases:
                for _ in range(300):
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"{base}/healthz").status_code == 200:
                            break
                    time.sleep(0.1)
            yield bases[0], bases[-1]
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(15)
            log.close()


def measure(writer: str, reader: str, rounds: int) -> dict[str, tuple[list[float], int]]:
    w, r = httpx.Client(base_url=writer), httpx.Client(base_url=reader)
    token = w.post(
        "/api/auth/login", json={"email": "boss@example.com", "password": PASSWORD}
    ).json()["accessToken"]
    auth = {"Authorization": f"Bearer {token}"}
    results: dict[str, tuple[list[float], int]] = {}
    for mode, extra, write in (
        ("after own write, session (default)", {}, True),
        ("after own write, X-Consistency: eventual", {"X-Consistency": "eventual"}, True),
        ("no write before it (default)", {}, False),
    ):
        latencies, stale = [], 0
        for n in range(rounds):
            word = f"bench{uuid.uuid4().hex[:6]}"
            if write:
                answer = w.put(
                    "/api/catalog/banned-keywords", json={"keywords": [word]}, headers=auth
                )
                assert answer.status_code == 200, answer.text
            started = time.perf_counter()
            got = r.get("/api/catalog/banned-keywords", headers={**auth, **extra})
            latencies.append((time.perf_counter() - started) * 1000)
            assert got.status_code == 200, got.text
            if write and word not in got.json()["keywords"]:
                stale += 1
            if n == 0:
                latencies.clear()  # the first request warms connections and caches
        results[mode] = (latencies, stale)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--kinds", default="embedded,scaled")
    args = parser.parse_args()
    for kind in args.kinds.split(","):
        with deployment(kind) as (writer, reader):
            results = measure(writer, reader, args.rounds)
        print(f"# {kind}: GET /api/catalog/banned-keywords, {args.rounds} rounds, ms")
        print(f"#   {'read':44} {'p50':>6} {'p99':>6} {'mean':>6} {'stale':>6}")
        for mode, (values, stale) in results.items():
            print(
                f"#   {mode:44} {_pct(values, 50):6.2f} {_pct(values, 99):6.2f} "
                f"{statistics.fmean(values):6.2f} {stale:>6}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
