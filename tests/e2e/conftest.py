"""HTTP tests drive the app through TestClient (fixture ``make_client`` in tests/conftest.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shopledger.bootstrap import Container
from tests.conftest import ClientFactory

__all__ = ["ClientFactory", "container_of"]


def container_of(client: TestClient) -> Container:
    return client.app.state.container  # type: ignore[attr-defined,no-any-return]
