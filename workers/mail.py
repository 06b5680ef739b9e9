"""Mail delivery from the durable outbox: ``file:///dir`` (one .eml per message) or SMTP.

Any number of deliverers may run (the embedded thread, RQ jobs on several workers): a message
is claimed with a lease by a conditional UPDATE, sent, then marked sent and its body cleared.
A crash between sending and marking re-sends after the lease (at-least-once); the file
transport names each file after the message id, so a re-send overwrites rather than
duplicates. A failed send backs off in the outbox itself (5 s, 10 s, 20 s...; given up after
the last attempt, kept with its error).
"""

from __future__ import annotations

import logging
import os
import smtplib
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, or_, select, update

from commands.bus import retryable_on_mysql
from commands.outbox import mail_outbox
from commands.sqltypes import utcnow
from workers.loop import WakeableLoop

log = logging.getLogger(__name__)


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class FileTransport:
    """Writes RFC 5322 files, one per message, atomically (temp file + rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").split("@", 1)[0]
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(message.as_bytes())
        os.replace(tmp, self.directory / f"{name}.eml")


class SmtpTransport:
    def __init__(
        self,
        host: str,
        port: int,
        use_ssl: bool = False,
        timeout: float = 10.0,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.use_ssl, self.timeout = host, port, use_ssl, timeout
        self.username, self.password = username, password

    def send(self, message: EmailMessage) -> None:
        cls = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        with cls(self.host, self.port, timeout=self.timeout) as smtp:
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def transport_for(url: str) -> Transport:
    parts = urlsplit(url)
    if parts.scheme == "file":
        # file:///abs/dir, or file://./relative/dir as our default spells it
        return FileTransport(Path(unquote(parts.netloc + parts.path)))
    if parts.scheme in ("smtp", "smtps"):
        ssl = parts.scheme == "smtps"
        return SmtpTransport(
            parts.hostname or "127.0.0.1",
            parts.port or (465 if ssl else 25),
            use_ssl=ssl,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
    raise ValueError(f"unsupported mail URL scheme {parts.scheme!r}")


class MailDeliverer:
    def __init__(
        self,
        transaction: Callable[[bool], Any],
        transport: Transport,
        sender: str,
        *,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 8,
        batch: int = 50,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # The event store's own transactions (they also serialize access to in-memory SQLite).
        self.transaction, self.transport, self.sender = transaction, transport, sender
        self.lease, self.max_attempts, self.batch, self.clock = lease, max_attempts, batch, clock

    def deliver_due(self) -> int:
        """Send every due message once; returns how many were sent."""
        t = mail_outbox
        now = self.clock()
        with self.transaction(False) as conn:
            ids = (
                conn.execute(
                    select(t.c.id)
                    .where(
                        t.c.sent_at.is_(None),
                        t.c.failed_at.is_(None),
                        t.c.next_attempt_at <= now,
                        or_(t.c.lease_until.is_(None), t.c.lease_until < now),
                    )
                    .order_by(t.c.id)
                    .limit(self.batch)
                )
                .scalars()
                .all()
            )
        return sum(1 for mail_id in ids if self._deliver_one(mail_id))

    def due_count(self, now: datetime | None = None) -> int:
        """How many messages are waiting to be sent now (the sweep's cheap check)."""
        t = mail_outbox
        now = now or self.clock()
        with self.transaction(False) as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(t)
                    .where(
                        t.c.sent_at.is_(None),
                        t.c.failed_at.is_(None),
                        t.c.next_attempt_at <= now,
                        or_(t.c.lease_until.is_(None), t.c.lease_until < now),
                    )
                ).scalar_one()
            )

    def next_retry_at(self) -> datetime | None:
        """When the earliest message that is backing off after a failure is due again."""
        t = mail_outbox
        with self.transaction(False) as conn:
            return conn.execute(  # type: ignore[no-any-return]
                select(func.min(t.c.next_attempt_at)).where(
                    t.c.sent_at.is_(None),
                    t.c.failed_at.is_(None),
                    t.c.next_attempt_at > self.clock(),
                )
            ).scalar_one()

    def _deliver_one(self, mail_id: int) -> bool:
        t = mail_outbox
        now = self.clock()

        def claim(conn: Any) -> Any:
            claimed = conn.execute(
                update(t)
                .where(
                    t.c.id == mail_id,
                    t.c.sent_at.is_(None),
                    t.c.failed_at.is_(None),
                    or_(t.c.lease_until.is_(None), t.c.lease_until < now),
                )
                .values(lease_until=now + self.lease, attempts=t.c.attempts + 1)
            ).rowcount
            return conn.execute(select(t).where(t.c.id == mail_id)).first() if claimed else None

        row = self._retrying(claim)
        if row is None:
            return False  # another deliverer has it
        try:
            self.transport.send(self._message(row))
        except Exception as exc:  # noqa: BLE001 - every failure is retried or given up on
            self._failed(row.id, row.attempts, exc)
            return False
        self._write(
            update(t)
            .where(t.c.id == row.id)
            .values(sent_at=self.clock(), body=None, lease_until=None, last_error=None)
        )
        log.info("mail sent", extra={"message_id": row.message_id, "attempt": row.attempts})
        return True

    def _failed(self, mail_id: int, attempts: int, exc: Exception) -> None:
        t = mail_outbox
        now = self.clock()
        error = f"{type(exc).__name__}: {exc}"[:500]
        values: dict[str, object] = {"lease_until": None, "last_error": error}
        if attempts >= self.max_attempts:
            values["failed_at"] = now
        else:
            values["next_attempt_at"] = now + timedelta(seconds=min(3600, 5 * 2 ** (attempts - 1)))
        self._write(update(t).where(t.c.id == mail_id).values(**values))
        log.warning(
            "mail delivery failed", extra={"mail_id": mail_id, "attempt": attempts, "error": error}
        )

    def _write(self, statement: Any) -> None:
        self._retrying(lambda conn: conn.execute(statement))

    def _retrying(self, work: Callable[[Any], Any]) -> Any:
        """``work(conn)`` in a transaction of its own, run again after a MySQL deadlock or
        lock wait timeout (InnoDB may pick an outbox update as the victim against a command
        inserting outbox rows)."""
        for attempt in range(1, 6):
            try:
                with self.transaction(True) as conn:
                    return work(conn)
            except Exception as exc:
                if attempt == 5 or not retryable_on_mysql(exc):
                    raise
                time.sleep(0.01 * attempt)
        return None

    def _message(self, row) -> EmailMessage:  # type: ignore[no-untyped-def]
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = row.to_addr
        message["Subject"] = row.subject
        message["Date"] = format_datetime(row.created_at.replace(tzinfo=UTC))
        message["Message-ID"] = f"<{row.message_id}@shopledger>"
        # 8bit, not quoted-printable: the link stays one line in the .eml a developer opens.
        message.set_content(row.body or "", cte="8bit")
        return message


class MailThread(WakeableLoop):
    """Embedded delivery: a daemon thread woken after each command that queued mail."""

    name = "mail-delivery"

    def __init__(self, deliverer: MailDeliverer, interval: float = 1.0) -> None:
        super().__init__()
        self.deliverer = deliverer
        self.interval = interval

    def run_once(self) -> float:
        while self.deliverer.deliver_due() and not self.stopping:
            pass
        return self.interval


def default_sender(address: str) -> str:
    return formataddr(("shopledger", address))
