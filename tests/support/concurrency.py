"""Run one action from several threads at the same instant (race tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def race(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Call ``action(i)`` for i in 0..n-1 from n threads released together; results in order."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))
