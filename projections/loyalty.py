"""Loyalty read model: each buyer's points balance, debt and level, and the points ledger
(every change of the balance, newest first on screen).

Built from the PointsAccount events alone; each event carries what the projection needs
(how many points moved, how many went to or came from the debt), so no rule is re-run here.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from aggregates.loyalty import LEVELS, PointsAccount
from projections.base import Envelope, Projection, Timestamp, handles, naive_utc


class Loyalty(Projection):
    name = "loyalty"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        accounts = Table(
            f"rm_points_accounts{suffix}",
            metadata,
            Column("account_id", String(36), primary_key=True),
            Column("user_id", String(36), nullable=False, unique=True),
            Column("balance", Integer, nullable=False),
            Column("owed", Integer, nullable=False),
            Column("level", String(12), nullable=False),
            Column("level_spend", Numeric(14, 2), nullable=False),
            Column("reviewed_at", Timestamp),
            Column("updated_at", Timestamp, nullable=False),
        )
        ledger = Table(
            f"rm_points_ledger{suffix}",
            metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("user_id", String(36), nullable=False),
            Column("kind", String(12), nullable=False),  # EARNED SPENT RETURNED REVOKED
            Column("points", Integer, nullable=False),  # change of the balance
            Column("balance", Integer, nullable=False),  # after it
            Column("owed", Integer, nullable=False),  # debt after it
            Column("order_id", String(36)),
            Column("details", Text, nullable=False),  # JSON
            Column("at", Timestamp, nullable=False),
        )
        Index(None, ledger.c.user_id, ledger.c.position)
        return {"accounts": accounts, "ledger": ledger}

    def _account(self, session: Session, env: Envelope) -> Any:
        a = self.tables["accounts"]
        return session.execute(select(a).where(a.c.account_id == str(env.originator_id))).one()

    def _move(
        self,
        session: Session,
        env: Envelope,
        kind: str,
        balance_change: int,
        owed_change: int,
        details: dict[str, Any],
    ) -> None:
        """Apply a change of balance and debt to the account and write its ledger line (an
        event that moved nothing, e.g. an order below NT$100, has none)."""
        if balance_change == 0 and owed_change == 0:
            return
        e = env.event
        a = self.tables["accounts"]
        row = self._account(session, env)
        balance, owed = row.balance + balance_change, row.owed + owed_change
        session.execute(
            update(a)
            .where(a.c.account_id == row.account_id)
            .values(balance=balance, owed=owed, updated_at=naive_utc(e.at))
        )
        session.execute(
            insert(self.tables["ledger"]).values(
                position=env.position,
                user_id=row.user_id,
                kind=kind,
                points=balance_change,
                balance=balance,
                owed=owed,
                order_id=e.order_id,
                details=json.dumps(details, ensure_ascii=False),
                at=naive_utc(e.at),
            )
        )

    # --- handlers -------------------------------------------------------------------------
    @handles(PointsAccount.Opened)
    def _opened(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["accounts"]).values(
                account_id=str(env.originator_id),
                user_id=e.user_id,
                balance=0,
                owed=0,
                level=LEVELS[0],
                level_spend=Decimal(0),
                reviewed_at=None,
                updated_at=naive_utc(_at(env)),
            )
        )

    @handles(PointsAccount.Earned)
    def _earned(self, session: Session, env: Envelope) -> None:
        e = env.event
        row = self._account(session, env)
        settled = min(row.owed, e.points)
        self._move(
            session,
            env,
            "EARNED",
            e.points - settled,
            -settled,
            {
                "earned": e.points,
                "settledDebt": settled,
                "amount": str(e.amount),
                "level": e.level,
                "multiplier": str(e.multiplier),
            },
        )

    @handles(PointsAccount.Spent)
    def _spent(self, session: Session, env: Envelope) -> None:
        self._move(session, env, "SPENT", -env.event.points, 0, {})

    @handles(PointsAccount.Returned)
    def _returned(self, session: Session, env: Envelope) -> None:
        e = env.event
        row = self._account(session, env)
        settled = min(row.owed, e.points)
        self._move(
            session,
            env,
            "RETURNED",
            e.points - settled,
            -settled,
            {"returned": e.points, "settledDebt": settled, "reason": e.reason},
        )

    @handles(PointsAccount.Revoked)
    def _revoked(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._move(
            session,
            env,
            "REVOKED",
            -e.taken,
            e.points - e.taken,
            {"revoked": e.points, "owedAdded": e.points - e.taken, "refunded": str(e.refunded)},
        )

    @handles(PointsAccount.LevelReviewed)
    def _level_reviewed(self, session: Session, env: Envelope) -> None:
        e = env.event
        a = self.tables["accounts"]
        session.execute(
            update(a)
            .where(a.c.account_id == str(env.originator_id))
            .values(
                level=e.level,
                level_spend=e.spend,
                reviewed_at=naive_utc(e.at),
                updated_at=naive_utc(e.at),
            )
        )


def _at(env: Envelope) -> datetime:
    at: datetime = env.event.timestamp
    return at


live = Loyalty.live_tables()
