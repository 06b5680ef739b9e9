"""Helpers for tests that run real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
SHOPLEDGER = [sys.executable, "-m", "shopledger.cli"]


def cli_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLEDGER_")}
    env.update(
        SHOPLEDGER_DATABASE_URL=database_url,
        SHOPLEDGER_VAR_DIR=str(tmp_path),
        SHOPLEDGER_ENVIRONMENT="test",
        SHOPLEDGER_AUTH_RATE_LIMITS="off",  # tests sign in many times from one address
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [*SHOPLEDGER, *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
    )


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOPLEDGER, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@cache
def _probe() -> httpx.Client:
    # One client for every poll: a new one builds a TLS context (~20 ms of CPU), and a test
    # polls a starting server many times a second while that server needs the CPU.
    return httpx.Client()


def answers(url: str, timeout: float = 2) -> bool:
    """GET ``url`` answers 200 (a server still starting refuses, or is not ready)."""
    try:
        return _probe().get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
