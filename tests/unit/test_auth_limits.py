"""The parts of the sign-in rate limits that need no HTTP: keys, settings, giving hits back."""

from __future__ import annotations

import pytest

from api.authlimits import account_key, address_key, limits_of
from api.ratelimit import Limit, LocalRateLimiter
from shopledger.settings import SettingsError, load_settings


def test_an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() -> None:
    assert address_key("2001:db8:1:2::5") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("2001:db8:1:2::5") != address_key("2001:db8:1:3::5")
    assert address_key("::ffff:203.0.113.9") == address_key("203.0.113.9") == "203.0.113.9"
    assert address_key("testclient") == "testclient"


def test_account_keys_are_hashed_and_case_insensitive() -> None:
    key = account_key("Alice@Example.com")
    assert key == account_key(" alice@example.com ") and "alice" not in key and len(key) == 32


def test_the_default_login_limit_per_address_stays_below_the_lockout() -> None:
    from aggregates.accounts import MAX_FAILED_LOGINS

    by_address, by_account = limits_of(load_settings(), "login")
    assert by_address.limit < MAX_FAILED_LOGINS <= by_account.limit
    assert (by_address.window, by_account.window) == (900, 900)


@pytest.mark.parametrize("spec", ["4", "0/PT1M", "x/PT1M", "4/1 minute", "4/P1M", "-1/PT1M"])
def test_a_bad_limit_setting_stops_start_up_naming_the_variable(spec: str) -> None:
    with pytest.raises(SettingsError, match="SHOPLEDGER_LOGIN_RATE_LIMIT_PER_ADDRESS"):
        load_settings(login_rate_limit_per_address=spec)


def test_a_hit_given_back_is_uncounted() -> None:
    limiter = LocalRateLimiter(lambda: 100.0)
    limit = Limit("t", 2, 60)
    first = limiter.take(limit, "k")
    assert first[0] is None and limiter.take(limit, "k")[0] is None
    assert limiter.take(limit, "k")[0] == pytest.approx(60)
    limiter.give_back(limit, "k", first[1])
    assert limiter.take(limit, "k")[0] is None
