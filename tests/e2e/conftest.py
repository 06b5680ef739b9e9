from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings
from tests.support.ledger import HANDLERS, LedgerBalances
from tests.support.ledger_api import router

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """Build a TestClient around a fresh container; keyword arguments become settings."""
    opened: list[TestClient] = []

    def factory(database_url: str = "sqlite:///:memory:", background: bool = True, **settings: object) -> TestClient:
        container = bootstrap(
            make_settings(database_url, tmp_path, **settings),
            projections=[LedgerBalances],
            handlers=HANDLERS,
        )
        client = TestClient(create_app(container, run_background=background, extra_routers=[router]))
        client.__enter__()
        opened.append(client)
        return client

    yield factory
    for client in opened:
        client.__exit__(None, None, None)


def container_of(client: TestClient) -> Container:
    return client.app.state.container  # type: ignore[attr-defined,no-any-return]
