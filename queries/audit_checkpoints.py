"""The signed checkpoints list, in position order, keyset-paginated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from projections.audit_checkpoints import live

checkpoints = live["checkpoints"]


def checkpoint_of(row: Any) -> dict[str, Any]:
    return {
        "position": int(row.position),
        "signedPosition": int(row.signed_position),
        "link": row.link,
        "signedAt": row.signed_at,
        "kid": row.kid,
        "jws": row.jws,
    }


def list_checkpoints(engine: Engine, after: int, limit: int) -> dict[str, Any]:
    """Checkpoints recorded after position ``after``, oldest first; ``next`` is the ``after``
    of the following page (None on the last)."""
    t = checkpoints
    with engine.connect() as conn:
        rows = conn.execute(
            select(t).where(t.c.position > after).order_by(t.c.position).limit(limit + 1)
        ).all()
    items = [checkpoint_of(r) for r in rows[:limit]]
    more = len(rows) > limit
    return {"checkpoints": items, "next": items[-1]["position"] if more and items else None}
