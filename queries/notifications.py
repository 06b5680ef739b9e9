"""The notification list (read model only)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from projections.notifications import live
from queries.common import PageRequest, iso, paginated

_n = live["notifications"]


def list_notifications(
    engine: Engine, user_id: str, unread_only: bool, page: PageRequest
) -> dict[str, Any]:
    conditions = [_n.c.user_id == user_id]
    if unread_only:
        conditions.append(_n.c.read_at.is_(None))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_n).where(*conditions)).scalar_one()
        rows = conn.execute(
            select(_n)
            .where(*conditions)
            .order_by(_n.c.created_at.desc(), _n.c.notification_id.desc())
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    return paginated("notifications", [notification_view(r) for r in rows], total, page)


def notification_view(row: Any) -> dict[str, Any]:
    return {
        "notificationId": row.notification_id,
        "type": row.type,
        "title": row.title,
        "body": row.body,
        "data": json.loads(row.data),
        "createdAt": iso(row.created_at),
        "readAt": iso(row.read_at),
    }


def owner_of(engine: Engine, notification_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(_n.c.user_id).where(_n.c.notification_id == notification_id)
        ).scalar()
