"""Read side of accounts: profiles, user lists, addresses, login history (read models only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.engine import Engine

from projections.accounts import live
from queries.common import PageRequest, iso, paginated
from queries.customers import users_tagged

_accounts = live["accounts"]
_addresses = live["addresses"]
_logins = live["logins"]


def user_view(row: Row[Any]) -> dict[str, Any]:
    application = None
    if row.seller_status is not None:
        application = {
            "status": row.seller_status,
            "shopName": row.shop_name,
            "description": row.shop_description,
            "appliedAt": iso(row.seller_applied_at),
            "rejectionReason": row.seller_rejection_reason,
        }
    return {
        "userId": row.user_id,
        "email": row.email,
        "username": row.username,
        "displayName": row.display_name,
        "phone": row.phone,
        "role": row.role,
        "status": row.status,
        "deleted": bool(row.deleted),
        "emailVerified": bool(row.email_verified),
        "createdAt": iso(row.created_at),
        "lastLoginAt": iso(row.last_login_at),
        "sellerApplication": application,
        "listingRights": "suspended" if row.listing_suspended else "active",
    }


def get_user(engine: Engine, user_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(_accounts).where(_accounts.c.user_id == user_id)).first()
    return None if row is None else user_view(row)


def list_users(
    engine: Engine,
    req: PageRequest,
    *,
    role: str | None = None,
    status: str | None = None,
    seller_status: str | None = None,
    q: str | None = None,
    tag_key: str | None = None,
) -> dict[str, Any]:
    a = _accounts
    conditions: list[Any] = []
    if tag_key:
        conditions.append(a.c.user_id.in_(users_tagged(tag_key)))
    if role:
        conditions.append(a.c.role == role)
    if status:
        conditions.append(a.c.status == status)
    if seller_status:
        conditions.append(a.c.seller_status == seller_status)
    if q:
        pattern = (
            "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        conditions.append(
            or_(
                a.c.email.like(pattern, escape="\\"),
                a.c.username_key.like(pattern, escape="\\"),
                func.lower(a.c.display_name).like(pattern, escape="\\"),
            )
        )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(a).where(*conditions)).scalar_one()
        rows = conn.execute(
            select(a)
            .where(*conditions)
            .order_by(a.c.created_at.desc(), a.c.user_id)
            .limit(req.page_size)
            .offset(req.offset)
        ).all()
    return paginated("users", [user_view(r) for r in rows], total, req)


def address_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "addressId": row.address_id,
        "label": row.label,
        "name": row.name,
        "phone": row.phone,
        "street": row.street,
        "city": row.city,
        "district": row.district,
        "postalCode": row.postal_code,
        "country": row.country,
        "isDefault": bool(row.is_default),
        "createdAt": iso(row.created_at),
    }


def list_addresses(engine: Engine, user_id: str) -> dict[str, Any]:
    t = _addresses
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.user_id == user_id).order_by(t.c.position)).all()
    return {"addresses": [address_view(r) for r in rows]}


def login_history(engine: Engine, user_id: str, req: PageRequest) -> dict[str, Any]:
    t = _logins
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(t).where(t.c.user_id == user_id)
        ).scalar_one()
        rows = conn.execute(
            select(t)
            .where(t.c.user_id == user_id)
            .order_by(t.c.position.desc())
            .limit(req.page_size)
            .offset(req.offset)
        ).all()
    entries = [
        {
            "at": iso(r.at),
            "success": bool(r.success),
            "ip": r.ip,
            "userAgent": r.user_agent,
            "reason": r.reason,
        }
        for r in rows
    ]
    return paginated("entries", entries, total, req)
