"""Run every benchmark (`make bench`). Results are recorded by hand in bench/README.md."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime

BENCHES = [
    ["bench.append", "--seconds", "8"],
    ["bench.projection", "--events", "100000"],
    ["bench.search", "--products", "100000"],
    ["bench.checkout", "--seconds", "15"],
    ["bench.timers", "--seconds", "40"],
    ["bench.consistency", "--rounds", "300"],
    ["bench.reports", "--orders", "200000"],
    ["bench.chaos", "--orders", "200"],
    ["bench.operation_log", "--events", "200000"],
    ["bench.chain_cost"],
    ["bench.verify", "--events", "200000"],
    ["bench.startup"],
]


def main() -> int:
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {platform.machine()}"
    )
    for bench in BENCHES:
        print(f"\n$ python -m {' '.join(bench)}", flush=True)
        code = subprocess.call([sys.executable, "-m", *bench])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
