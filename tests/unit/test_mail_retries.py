"""The mail outbox's own updates survive a MySQL deadlock: InnoDB may pick one as the victim
against a command inserting outbox rows (seen on MariaDB in the suite)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from commands.outbox import mail_outbox
from shopledger.bootstrap import bootstrap
from tests.conftest import make_settings
from workers.mail import MailDeliverer, transport_for


class DeadlockOnce:
    """The store's transactions, but the ``n``-th one dies of a deadlock at its commit."""

    def __init__(self, transaction: Any, n: int) -> None:
        self.transaction, self.n, self.calls = transaction, n, 0

    @contextlib.contextmanager
    def __call__(self, commit: bool) -> Iterator[Any]:
        self.calls += 1
        with self.transaction(commit=commit) as conn:
            yield conn
            if self.calls == self.n:
                deadlock = pymysql.err.OperationalError(1213, "Deadlock found")
                raise OperationalError("UPDATE mail_outbox ...", {}, deadlock)


@pytest.mark.parametrize("victim", [2, 3])  # the claim, then the "sent" update
def test_a_deadlocked_outbox_update_is_run_again_and_the_mail_sent_once(
    tmp_path: Path, victim: int
) -> None:
    container = bootstrap(make_settings(f"sqlite:///{tmp_path / 'mail.db'}", tmp_path))
    recorder: Any = container.app.recorder
    with recorder.transaction(commit=True) as conn:
        conn.execute(
            insert(mail_outbox).values(
                message_id="m1",
                to_addr="a@example.tw",
                subject="hi",
                body="hello",
                created_at=datetime(2026, 1, 1),
                next_attempt_at=datetime(2026, 1, 1),
                attempts=0,
            )
        )
    transaction = DeadlockOnce(recorder.transaction, victim)
    transport = transport_for(f"file://{tmp_path / 'out'}")
    deliverer = MailDeliverer(transaction, transport, "shop@example.tw")
    assert deliverer.deliver_due() == 1
    assert len(list((tmp_path / "out").glob("*.eml"))) == 1
    with recorder.transaction(commit=False) as conn:
        row = conn.execute(select(mail_outbox)).one()
    assert row.sent_at is not None and row.attempts == 1
    container.close()
