"""How the store connects, decided from the database URL alone (no server needed)."""

from __future__ import annotations

import pytest

from commands.persistence import tls_pointless


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://root@127.0.0.1:3306/shop",
        "mysql+pymysql://app:secret@localhost/shop?charset=utf8mb4",
        "mariadb+pymysql://root@[::1]:3306/shop",
    ],
)
def test_a_server_on_the_loopback_is_reached_without_tls(url: str) -> None:
    assert tls_pointless(url)


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://app@db.internal:3306/shop",
        "mysql+pymysql://app@10.0.0.5/shop?charset=utf8mb4",
        "mysql+pymysql://root@127.0.0.1/shop?ssl_verify_cert=true",
        "mysql+pymysql://root@localhost/shop?ssl_ca=/etc/ca.pem",
    ],
)
def test_a_remote_server_or_any_ssl_option_keeps_pymysqls_tls(url: str) -> None:
    assert not tls_pointless(url)
