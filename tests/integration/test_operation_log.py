"""The operation log on MariaDB (SQLite: tests/e2e/test_auditor_http.py runs the same checks):
filters, keyset pages with no duplicates and no gaps while events keep arriving, a rebuild."""

from __future__ import annotations

from tests.conftest import ClientFactory
from tests.support.accounts import admin
from tests.support.operation_log import check_operation_log


def test_the_operation_log_pages_and_filters_every_event_on_mariadb(
    mariadb_url: str, make_client: ClientFactory
) -> None:
    client = make_client(mariadb_url)
    check_operation_log(client, admin(client))
