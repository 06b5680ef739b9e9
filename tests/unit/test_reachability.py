"""Telling a lost server from a real error, and logging an outage once."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pymysql
import pytest
import redis.exceptions
from sqlalchemy.exc import OperationalError as SAOperationalError

from commands.reachability import Outage, cut_off, until_reachable


def wrapped(error: BaseException) -> BaseException:
    """As SQLAlchemy and our StartupError hand it on: the driver's error as the cause."""
    outer = SAOperationalError("SELECT 1", {}, error)
    try:
        raise RuntimeError("cannot open the database") from outer
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "server"),
    [
        (redis.exceptions.ConnectionError("Error 111 connecting"), "Redis"),
        (redis.exceptions.TimeoutError("Timeout reading"), "Redis"),
        (wrapped(pymysql.err.OperationalError(2003, "Can't connect")), "the database"),
        (wrapped(pymysql.err.OperationalError(1049, "Unknown database 'x'")), "the database"),
        (wrapped(pymysql.err.OperationalError(2013, "Lost connection")), "the database"),
        (wrapped(sqlite3.OperationalError("unable to open database file")), "the database"),
        (ConnectionRefusedError(111, "refused"), "the database"),
        # Real errors stay errors: a deadlock is retried by the bus, a bad statement is a bug.
        (wrapped(pymysql.err.OperationalError(1213, "Deadlock found")), None),
        (wrapped(pymysql.err.OperationalError(1054, "Unknown column")), None),
        (wrapped(sqlite3.OperationalError("no such table: x")), None),
        (ValueError("bad"), None),
    ],
)
def test_a_lost_server_is_told_from_a_real_error(error: BaseException, server: str | None) -> None:
    assert cut_off(error) == server


def test_an_outage_is_logged_once_with_a_capped_doubling_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("Redis", logging.getLogger("test.outage"), max_delay=2.0)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        delays = [outage.down(redis.exceptions.ConnectionError("refused")) for _ in range(5)]
        outage.up()
        outage.up()  # no outage: nothing to say
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("cannot reach Redis;") and "Traceback" not in caplog.text
    assert messages[1] == "Redis is reachable again"


def test_waiting_ends_when_the_server_answers_and_real_errors_are_raised() -> None:
    outage = Outage("the database", logging.getLogger("test.outage"), max_delay=0.01)
    outage.first_delay = 0.001
    answers = iter([ConnectionResetError(), ConnectionResetError(), None])

    def attempt() -> None:
        answer = next(answers)
        if answer is not None:
            raise answer

    assert until_reachable(attempt, outage) is True and not outage.is_down
    with pytest.raises(ValueError):
        until_reachable(lambda: int("x"), outage)
    stop = threading.Event()
    stop.set()
    assert (
        until_reachable(lambda: (_ for _ in ()).throw(ConnectionResetError()), outage, stop)
        is False
    )
