"""Idempotency-Key semantics (API.md "Conventions").

A request with a key first *claims* it in a short transaction of its own (so a concurrent
duplicate sees it in flight). The command then runs; its response is written to the claimed
row **in the same transaction as its events**, so either both exist or neither does. A failed
command releases its claim (nothing was written, so the client may retry with the same key).
A claim whose process died is taken over after ``lease`` has passed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.mysql import LONGTEXT
from sqlalchemy.orm import Session

from commands.application import ShopledgerApplication
from commands.errors import IdempotencyConflict, IdempotencyInFlight, InvalidIdempotencyKey
from commands.sqltypes import Timestamp, utcnow

metadata = MetaData()
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("idem_key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # running | done
    Column("status_code", Integer),
    Column("body", Text().with_variant(LONGTEXT(), "mysql", "mariadb")),
    Column("position", BigInteger),
    Column("created_at", Timestamp, nullable=False),
    Column("lease_until", Timestamp, nullable=False),
)

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    scope: str
    key: str
    created_at: datetime


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any
    position: int | None


class IdempotencyStore:
    def __init__(self, app: ShopledgerApplication, ttl: timedelta, lease: timedelta) -> None:
        self.app = app
        self.ttl = ttl
        self.lease = lease

    def claim(self, scope: str, key: str, fp: str) -> Claim | Replay:
        """Claim ``key`` for a new request, or return what the first request answered."""
        if not _KEY.match(key):
            raise InvalidIdempotencyKey(
                "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces"
            )
        for _ in range(3):
            now = utcnow()
            try:
                with self.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                    session.execute(
                        insert(idempotency_keys).values(
                            scope=scope,
                            idem_key=key,
                            fingerprint=fp,
                            state="running",
                            created_at=now,
                            lease_until=now + self.lease,
                        )
                    )
                return Claim(scope, key, now)
            except IntegrityError:
                pass
            with self.app.recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
                row = session.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.scope == scope, idempotency_keys.c.idem_key == key
                    )
                ).first()
            if row is None:
                continue  # released meanwhile: try to claim again
            expired = row.created_at < now - self.ttl
            abandoned = row.state == "running" and row.lease_until < now
            if expired or abandoned:
                self._delete(scope, key, row.created_at)
                continue
            if row.fingerprint != fp:
                raise IdempotencyConflict("this Idempotency-Key was used with a different request")
            if row.state == "running":
                raise IdempotencyInFlight("a request with this Idempotency-Key is still running")
            return Replay(row.status_code, json.loads(row.body), row.position)
        raise IdempotencyInFlight("a request with this Idempotency-Key is still running")

    def complete(
        self, session: Session, claim: Claim, status_code: int, body: Any, position: int | None
    ) -> None:
        """Record the response; call inside the command's own transaction."""
        session.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.scope == claim.scope,
                idempotency_keys.c.idem_key == claim.key,
                idempotency_keys.c.created_at == claim.created_at,
            )
            .values(
                state="done",
                status_code=status_code,
                body=json.dumps(body, separators=(",", ":")),
                position=position,
            )
        )

    def release(self, claim: Claim) -> None:
        self._delete(claim.scope, claim.key, claim.created_at)

    def purge_expired(self) -> int:
        with self.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
            result = session.execute(
                delete(idempotency_keys).where(idempotency_keys.c.created_at < utcnow() - self.ttl)
            )
            return int(result.rowcount or 0)

    def _delete(self, scope: str, key: str, created_at: datetime) -> None:
        with self.app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
            session.execute(
                delete(idempotency_keys).where(
                    and_(
                        idempotency_keys.c.scope == scope,
                        idempotency_keys.c.idem_key == key,
                        idempotency_keys.c.created_at == created_at,
                    )
                )
            )
