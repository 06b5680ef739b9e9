"""Points balance, ledger and membership level (read model only)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aggregates.loyalty import LEVEL_NAMES, LEVELS, LoyaltyRules
from aggregates.money import money
from projections.loyalty import live
from queries.common import PageRequest, iso, paginated

_a = live["accounts"]
_l = live["ledger"]


def level_view(
    code: str, spend: Decimal, reviewed_at: datetime | None, rules: LoyaltyRules
) -> dict[str, Any]:
    """The level as shown: its name, the multiplier it earns at now, the spend it was set on
    (at the last review) and what the next level needs."""
    following = rules.next_level(code)
    return {
        "code": code,
        "name": LEVEL_NAMES[code],
        "pointsMultiplier": float(rules.multiplier(code)),
        "qualifyingSpend": money(spend),
        "reviewedAt": iso(reviewed_at),
        "nextLevel": None
        if following is None
        else {
            "code": following[0],
            "name": LEVEL_NAMES[following[0]],
            "minSpend": money(following[1]),
        },
    }


def level_of(engine: Engine, user_id: str, rules: LoyaltyRules) -> dict[str, Any]:
    """The user's membership level (REGULAR until a review says otherwise)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(_a.c.level, _a.c.level_spend, _a.c.reviewed_at).where(_a.c.user_id == user_id)
        ).first()
    if row is None:
        return level_view(LEVELS[0], Decimal(0), None, rules)
    return level_view(row.level, Decimal(row.level_spend), row.reviewed_at, rules)


def entry_view(row: Any) -> dict[str, Any]:
    return {
        "entryId": str(row.position),
        "type": row.kind,
        "points": row.points,
        "balance": row.balance,
        "owed": row.owed,
        "orderId": row.order_id,
        "details": json.loads(row.details),
        "at": iso(row.at),
    }


def points_of(
    engine: Engine, user_id: str, req: PageRequest, rules: LoyaltyRules
) -> dict[str, Any]:
    """Balance, debt, level and the ledger page (newest first)."""
    with engine.connect() as conn:
        account = conn.execute(select(_a).where(_a.c.user_id == user_id)).first()
        where = _l.c.user_id == user_id
        total = conn.execute(select(func.count()).select_from(_l).where(where)).scalar_one()
        rows = conn.execute(
            select(_l)
            .where(where)
            .order_by(_l.c.position.desc())
            .limit(req.page_size)
            .offset(req.offset)
        ).all()
    if account is None:
        balance, owed = 0, 0
        level = level_view(LEVELS[0], Decimal(0), None, rules)
    else:
        balance, owed = account.balance, account.owed
        level = level_view(account.level, Decimal(account.level_spend), account.reviewed_at, rules)
    page = paginated("ledger", [entry_view(r) for r in rows], total, req)
    return {"balance": balance, "owed": owed, "level": level, **page}
