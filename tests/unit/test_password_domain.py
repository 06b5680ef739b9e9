"""Password change and reset on the Account aggregate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from aggregates.accounts import Account, AccountDisabled, InvalidToken

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def signed_in(*sessions: str) -> Account:
    account = Account.register(
        uuid4(),
        email="a@example.com",
        username="alice",
        password_hash="old",
        display_name="A",
        phone=None,
    )
    for sid in sessions:
        account.login_succeeded(T0, "ip", "ua", sid, f"jti-{sid}", T0 + timedelta(days=1))
    return account


def test_a_change_keeps_only_the_callers_session() -> None:
    account = signed_in("mine", "phone", "laptop")
    account.change_password("new", keep_session="mine")
    assert account.password_hash == "new" and set(account.sessions) == {"mine"}


def test_a_reset_needs_the_latest_unexpired_token_once_and_lifts_a_lockout() -> None:
    account = signed_in("s1")
    for _ in range(5):
        account.login_failed(T0, "ip", "ua", "bad_password", timedelta(minutes=30))
    assert account.is_locked(T0)
    account.issue_password_reset("first", T0 + timedelta(hours=1))
    account.issue_password_reset("second", T0 + timedelta(hours=1))
    for token, at in (("first", T0), ("second", T0 + timedelta(hours=1)), ("nope", T0)):
        with pytest.raises(InvalidToken):
            account.reset_password(token, "new", at)
    account.reset_password("second", "new", T0)
    assert account.password_hash == "new" and account.sessions == {}
    assert not account.is_locked(T0)
    with pytest.raises(InvalidToken):  # used
        account.reset_password("second", "newer", T0)


def test_a_disabled_account_can_neither_change_nor_reset() -> None:
    account = signed_in()
    account.issue_password_reset("t", T0 + timedelta(hours=1))
    account.disable("fraud")
    with pytest.raises(AccountDisabled):
        account.change_password("new", None)
    with pytest.raises(InvalidToken):
        account.reset_password("t", "new", T0)
