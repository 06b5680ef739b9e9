"""Shared set-up for benchmarks: throw-away databases and containers."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql

from shopledger.bootstrap import Container, bootstrap
from shopledger.settings import Settings, load_settings

MARIADB: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server to start on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh database URL of ``kind`` (sqlite or mariadb), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"sl_bench_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(**MARIADB)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def settings_for(url: str, **overrides: object) -> Settings:
    return load_settings(
        database_url=url, var_dir=Path(tempfile.gettempdir()), environment="test", **overrides
    )


def container_for(url: str, **kwargs: object) -> Container:
    return bootstrap(settings_for(url), **kwargs)  # type: ignore[arg-type]
