"""HTTP tests drive the app through TestClient (fixture ``make_client`` in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopledger.bootstrap import Container
from tests.conftest import ClientFactory
from tests.support.accounts import admin, verified_user
from tests.support.catalog import seller

__all__ = ["ClientFactory", "container_of", "market"]


def container_of(client: TestClient) -> Container:
    return client.app.state.container  # type: ignore[attr-defined]


@pytest.fixture
def market(make_client: ClientFactory) -> Any:
    """A shop to trade in: (client, admin, an approved seller, a verified buyer)."""
    client = make_client()
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)


@pytest.fixture
def market_on_each_backend(database_url: str, make_client: ClientFactory) -> Any:
    """:func:`market` on a SQLite file, then on MariaDB."""
    client = make_client(database_url)
    boss = admin(client)
    return client, boss, seller(client, boss), verified_user(client)
