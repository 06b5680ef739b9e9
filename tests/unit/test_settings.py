from __future__ import annotations

import importlib.metadata
import logging
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopledger import cli
from shopledger.durations import format_duration, parse_duration
from shopledger.logging import TextFormatter, request_id_var
from shopledger.settings import SettingsError, load_settings


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "ACCESS_TOKEN_TTL", "MAIL_URL"):
        monkeypatch.delenv(f"SHOPLEDGER_{name}", raising=False)
    s = load_settings()
    assert s.access_token_ttl == timedelta(hours=3)
    assert s.lockout_duration == timedelta(minutes=30)
    assert s.unpaid_order_ttl == timedelta(minutes=30)
    assert s.ship_reminder_after == timedelta(days=7)
    assert s.auto_deliver_after == timedelta(days=3)
    assert s.embedded and s.redis_url is None
    assert s.resolved_database_url.startswith("sqlite:///") and "/var/" in s.resolved_database_url
    assert s.resolved_mail_url.startswith("file://") and s.resolved_mail_url.endswith("/var/mail")


def test_every_contract_variable_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "SHOPLEDGER_DATABASE_URL": "mysql://u:p@db:3306/shop",
        "SHOPLEDGER_REDIS_URL": "redis://cache:6379/0",
        "SHOPLEDGER_MAIL_URL": "smtp://mail:25",
        "SHOPLEDGER_JWT_PRIVATE_KEY_FILE": "/keys/jwt.pem",
        "SHOPLEDGER_ACCESS_TOKEN_TTL": "PT2S",
        "SHOPLEDGER_LOCKOUT_DURATION": "PT3S",
        "SHOPLEDGER_UNPAID_ORDER_TTL": "PT4S",
        "SHOPLEDGER_SHIP_REMINDER_AFTER": "PT5S",
        "SHOPLEDGER_AUTO_DELIVER_AFTER": "PT6S",
        "SHOPLEDGER_PUBLIC_URL": "https://shop.example.tw/",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.resolved_database_url == "mysql+pymysql://u:p@db:3306/shop"
    assert s.redis_url == "redis://cache:6379/0" and not s.embedded
    assert s.resolved_mail_url == "smtp://mail:25"
    assert str(s.resolved_jwt_private_key_file) == "/keys/jwt.pem"
    assert [s.access_token_ttl, s.lockout_duration, s.unpaid_order_ttl] == [
        timedelta(seconds=2),
        timedelta(seconds=3),
        timedelta(seconds=4),
    ]
    assert s.ship_reminder_after == timedelta(seconds=5)
    assert s.auto_deliver_after == timedelta(seconds=6)
    assert s.public_url == "https://shop.example.tw"


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("off", False), ("true", True)])
def test_product_review_is_switched_on_and_off(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    assert load_settings().product_review is False  # off unless asked for
    monkeypatch.setenv("SHOPLEDGER_PRODUCT_REVIEW", value)
    assert load_settings().product_review is expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHOPLEDGER_ACCESS_TOKEN_TTL", "3 hours"),
        ("SHOPLEDGER_UNPAID_ORDER_TTL", "PT0S"),
        ("SHOPLEDGER_SHIP_REMINDER_AFTER", "P1M"),
        ("SHOPLEDGER_DATABASE_URL", "postgres://x/y"),
        ("SHOPLEDGER_REDIS_URL", "http://cache"),
        ("SHOPLEDGER_MAIL_URL", "ftp://mail"),
        ("SHOPLEDGER_PUBLIC_URL", "shop.example.tw"),
        ("SHOPLEDGER_PRODUCT_REVIEW", "sometimes"),
        ("SHOPLEDGER_LOYALTY_LEVEL_THRESHOLDS", "10k,30k,80k"),
        ("SHOPLEDGER_LOYALTY_MAX_REDEEM_RATIO", "1.5"),
        ("SHOPLEDGER_LOYALTY_EARN_UNIT", "0"),
    ],
)
def test_a_bad_value_stops_start_up_with_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value) and "\n" not in str(info.value)
    assert cli.main(["projections", "status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"shopledger: invalid setting {variable}") and "\n" not in err


def test_a_bad_database_password_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPLEDGER_DATABASE_URL", "mysql+pymysql://root:s3cret@127.0.0.1:1/none")
    assert cli.main(["projections", "status"]) == 1
    err = capsys.readouterr().err
    assert "cannot open the database" in err and "s3cret" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT30M", timedelta(minutes=30)),
        ("PT3H", timedelta(hours=3)),
        ("P7D", timedelta(days=7)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT2H3M4.5S", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("pt2s", timedelta(seconds=2)),
    ],
)
def test_iso_8601_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "30", "P1Y", "P1M", "PT1.5H", "1h", "PTS"])
def test_non_iso_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**9))
def test_duration_formatting_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("thresholds", "multipliers", "why"),
    [
        ("10000,30000", "1,1.2,1.5,2", "3 thresholds and 4 multipliers"),
        ("30000,10000,80000", "1,1.2,1.5,2", "thresholds must increase"),
        ("10000,30000,80000", "2,1.5,1.2,1", "multipliers must not decrease"),
    ],
)
def test_loyalty_levels_must_make_sense_together(
    thresholds: str, multipliers: str, why: str
) -> None:
    with pytest.raises(SettingsError, match=why) as info:
        load_settings(loyalty_level_thresholds=thresholds, loyalty_level_multipliers=multipliers)
    assert "SHOPLEDGER_LOYALTY_LEVEL_THRESHOLDS" in str(info.value)


def test_logs_are_readable_text_in_development_and_json_elsewhere_unless_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHOPLEDGER_LOG_FORMAT", raising=False)
    monkeypatch.setenv("SHOPLEDGER_ENVIRONMENT", "development")
    assert load_settings().resolved_log_format == "text"
    monkeypatch.setenv("SHOPLEDGER_ENVIRONMENT", "production")
    assert load_settings().resolved_log_format == "json"
    monkeypatch.setenv("SHOPLEDGER_LOG_FORMAT", "text")
    assert load_settings().resolved_log_format == "text"
    monkeypatch.setenv("SHOPLEDGER_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SHOPLEDGER_LOG_FORMAT" in str(info.value)


def test_the_text_format_is_one_readable_line_with_the_same_secrets_redacted() -> None:
    record = logging.makeLogRecord(
        {
            "name": "shopledger.api",
            "levelname": "INFO",
            "msg": "GET /api/ws?token=abc done",
            "status": 200,
            "password": "hunter2",
            "created": 0.0,
        }
    )
    token = request_id_var.set("req-1")
    try:
        line = TextFormatter().format(record)
    finally:
        request_id_var.reset(token)
    assert "\n" not in line and line.startswith("00:00:00.000 INFO    shopledger.api  GET")
    assert "token=[redacted]" in line and "abc" not in line and "hunter2" not in line
    assert 'requestId="req-1"' in line and "status=200" in line
    assert 'password="[redacted]"' in line


def test_the_cli_prints_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert (
        capsys.readouterr().out.strip() == f"shopledger {importlib.metadata.version('shopledger')}"
    )
