"""The Account aggregate and account value rules, in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregates.accounts import (
    MAX_FAILED_LOGINS,
    PASSWORD_MAX,
    PASSWORD_MIN,
    Account,
    AccountDisabled,
    AccountLocked,
    InvalidEmail,
    InvalidToken,
    SessionInvalid,
    UniqueKey,
    WeakPassword,
    check_password_policy,
    normalize_email,
)
from aggregates.errors import Conflict, NotFound

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOCK = timedelta(minutes=30)


def account(role: str = "buyer") -> Account:
    return Account.register(
        uuid4(),
        email="a@example.com",
        username="alice",
        password_hash="h",
        display_name="A",
        phone=None,
        role=role,
    )


# --- email normalisation -----------------------------------------------------------------
local = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
domain = st.from_regex(
    r"[A-Za-z][A-Za-z0-9-]{0,15}[A-Za-z0-9]\.(com|tw|org|com\.tw)", fullmatch=True
)


@given(local, domain)
def test_email_normalisation_is_idempotent_and_case_insensitive(user: str, host: str) -> None:
    address = f"{user}@{host}"
    normalized = normalize_email(address)
    assert normalized == normalized.lower()
    assert normalize_email(normalized) == normalized
    assert normalize_email(address.upper()) == normalized
    assert normalize_email(f"  {address.swapcase()} ") == normalized


@given(st.text(max_size=40).filter(lambda s: "@" not in s))
def test_strings_without_an_at_sign_are_never_emails(text: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(text)


def test_fullwidth_characters_normalise_to_ascii() -> None:
    assert normalize_email("ＡＬＩＣＥ@Example.com") == "alice@example.com"


# --- password policy ---------------------------------------------------------------------
@given(st.text(min_size=PASSWORD_MIN, max_size=PASSWORD_MAX))
def test_password_policy_accepts_or_refuses_with_a_reason_never_crashes(password: str) -> None:
    try:
        check_password_policy(password, email="a@example.com", username="alice")
    except WeakPassword as exc:
        assert exc.message
    else:
        assert PASSWORD_MIN <= len(password) <= PASSWORD_MAX
        assert password.strip() and len(set(password)) >= 3


@given(st.text(max_size=PASSWORD_MIN - 1))
def test_short_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_policy(password)


@given(st.text(min_size=PASSWORD_MAX + 1, max_size=PASSWORD_MAX + 50))
def test_overlong_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_policy(password)


@pytest.mark.parametrize(
    "password", ["Password123", "Alice12345@Example.com", "ALICE12345", "aaaaaaaaaa"]
)
def test_common_or_personal_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_policy(password, email="alice12345@example.com", username="alice12345")


# --- unique keys -------------------------------------------------------------------------
def test_unique_keys_for_one_value_share_an_id() -> None:
    assert UniqueKey.create_id("email", "a@b.c") == UniqueKey.create_id("email", "a@b.c")
    assert UniqueKey.create_id("email", "a@b.c") != UniqueKey.create_id("username", "a@b.c")


# --- verification ------------------------------------------------------------------------
def test_verification_token_is_one_time_and_expires() -> None:
    a = account()
    a.issue_verification("hash1", T0 + timedelta(hours=1))
    with pytest.raises(InvalidToken):
        a.verify_email("other", T0)
    with pytest.raises(InvalidToken):
        a.verify_email("hash1", T0 + timedelta(hours=1))
    a.verify_email("hash1", T0)
    assert a.email_verified
    with pytest.raises(InvalidToken):
        a.verify_email("hash1", T0)


# --- lockout -----------------------------------------------------------------------------
@given(st.lists(st.booleans(), max_size=30))
def test_lockout_happens_exactly_at_five_consecutive_failures(attempts: list[bool]) -> None:
    a = account()
    at, streak = T0, 0
    for success in attempts:
        at += timedelta(seconds=1)
        locked_before = a.is_locked(at)
        if success:
            if locked_before:
                with pytest.raises(AccountLocked):
                    a.login_succeeded(at, "ip", "ua", "s", "j", at + timedelta(days=1))
            else:
                a.login_succeeded(at, "ip", "ua", uuid4().hex, "j", at + timedelta(days=1))
                streak = 0
        else:
            a.login_failed(at, "ip", "ua", "bad_password", LOCK)
            if not locked_before:
                streak += 1
        expected_locked = locked_before or (not success and streak >= MAX_FAILED_LOGINS)
        assert a.is_locked(at) == expected_locked
        if a.is_locked(at) and not locked_before:
            streak = 0


def test_lock_expires_and_counting_starts_afresh() -> None:
    a = account()
    for i in range(5):
        a.login_failed(T0 + timedelta(seconds=i), "ip", "ua", "bad_password", LOCK)
    assert a.is_locked(T0 + timedelta(minutes=29))
    later = T0 + timedelta(minutes=31)
    assert not a.is_locked(later)
    for i in range(4):
        a.login_failed(later + timedelta(seconds=i), "ip", "ua", "bad_password", LOCK)
    assert not a.is_locked(later + timedelta(seconds=5))


def test_a_disabled_account_cannot_log_in() -> None:
    a = account()
    a.disable("admin")
    with pytest.raises(AccountDisabled):
        a.login_succeeded(T0, "ip", "ua", "s", "j", T0 + timedelta(days=1))


# --- sessions ----------------------------------------------------------------------------
def test_refresh_rotation_and_reuse_detection() -> None:
    a = account()
    exp = T0 + timedelta(days=14)
    a.login_succeeded(T0, "ip", "ua", "s1", "j1", exp)
    assert a.rotate_session("s1", "j1", "j2", T0, exp)
    assert a.session_valid("s1", T0)
    assert a.rotate_session("s1", "j1", "j3", T0, exp) is False  # replayed old token
    assert not a.session_valid("s1", T0)
    with pytest.raises(SessionInvalid):
        a.rotate_session("s1", "j2", "j4", T0, exp)


def test_expired_sessions_are_invalid_and_pruned_at_the_next_login() -> None:
    a = account()
    a.login_succeeded(T0, "ip", "ua", "old", "j", T0 + timedelta(hours=1))
    assert not a.session_valid("old", T0 + timedelta(hours=2))
    a.login_succeeded(T0 + timedelta(hours=2), "ip", "ua", "new", "j", T0 + timedelta(days=1))
    assert set(a.sessions) == {"new"}


def test_disabling_ends_every_session() -> None:
    a = account()
    a.login_succeeded(T0, "ip", "ua", "s1", "j", T0 + timedelta(days=1))
    a.disable("admin")
    assert a.sessions == {}


# --- roles and reports -------------------------------------------------------------------
def test_seller_application_and_approval() -> None:
    a = account()
    with pytest.raises(Conflict):
        a.approve_seller()
    a.apply_for_seller("Shop", "", T0)
    with pytest.raises(Conflict):
        a.apply_for_seller("Shop", "", T0)
    a.approve_seller()
    assert a.role == "seller" and a.can_list_products


@given(st.lists(st.sampled_from([f"buyer{i}" for i in range(10)]), max_size=25))
def test_listing_rights_are_lost_exactly_when_more_than_five_distinct_buyers_report(
    reporters: list[str],
) -> None:
    seller = account("seller")
    for reporter in reporters:
        try:
            seller.report(reporter, "bad", T0)
        except Conflict:
            assert reporters.count(reporter) > 1
    assert seller.listing_suspended == (len(set(reporters)) > 5)
    assert seller.can_list_products == (len(set(reporters)) <= 5)


def test_only_sellers_can_be_reported() -> None:
    with pytest.raises(NotFound):
        account("buyer").report("someone", "x", T0)


def test_deleted_accounts_stay_disabled() -> None:
    a = account()
    a.delete()
    assert a.status == "disabled" and a.deleted
    with pytest.raises(Conflict):
        a.enable()
