"""Conversation lists and pages of messages (read models only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from projections.accounts import live as accounts
from projections.messages import live
from queries.common import PageRequest, iso, paginated

_m = live["messages"]
_c = live["members"]
_a = accounts["accounts"]


def message_view(row: Any) -> dict[str, Any]:
    return {
        "messageId": row.message_id,
        "conversationId": row.conversation_id,
        "position": row.position,
        "senderId": row.sender_id,
        "receiverId": row.receiver_id,
        "text": row.text,
        "orderId": row.order_id,
        "productId": row.product_id,
        "createdAt": iso(row.created_at),
    }


def _party(row: Any) -> dict[str, Any]:
    return {
        "userId": row.other_id,
        "displayName": row.display_name,
        "role": row.role,
        "shopName": row.shop_name,
    }


def _members() -> Any:
    return select(_c, _a.c.display_name, _a.c.role, _a.c.shop_name).select_from(
        _c.outerjoin(_a, _a.c.user_id == _c.c.other_id)
    )


def list_conversations(engine: Engine, user_id: str, page: PageRequest) -> dict[str, Any]:
    """The user's conversations, the one with the newest message first."""
    where = (_c.c.user_id == user_id, _c.c.last_seq > 0)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_c).where(*where)).scalar_one()
        rows = conn.execute(
            _members()
            .where(*where)
            .order_by(_c.c.last_message_at.desc(), _c.c.conversation_id)
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    items = [
        {
            "conversationId": r.conversation_id,
            "otherParty": _party(r),
            "lastMessage": {
                "text": r.last_text,
                "senderId": r.last_sender_id,
                "createdAt": iso(r.last_message_at),
            },
            "unreadCount": r.last_seq - r.read_seq,
        }
        for r in rows
    ]
    return paginated("conversations", items, total, page)


def conversation(
    engine: Engine, conversation_id: str, user_id: str, page: PageRequest
) -> dict[str, Any] | None:
    """A page of one conversation's messages, oldest first; None unless ``user_id`` takes
    part in it."""
    with engine.connect() as conn:
        member = conn.execute(
            _members().where(_c.c.conversation_id == conversation_id, _c.c.user_id == user_id)
        ).first()
        if member is None:
            return None
        rows = conn.execute(
            select(_m)
            .where(_m.c.conversation_id == conversation_id)
            .order_by(_m.c.seq)
            .limit(page.page_size)
            .offset(page.offset)
        ).all()
    result = paginated("messages", [message_view(r) for r in rows], member.last_seq, page)
    result["conversationId"] = conversation_id
    result["otherParty"] = _party(member)
    result["unreadCount"] = member.last_seq - member.read_seq
    return result


def messages_after(engine: Engine, user_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    """Messages sent or received by ``user_id`` at positions after ``after``, oldest first."""
    with engine.connect() as conn:
        received = select(_m).where(_m.c.receiver_id == user_id, _m.c.position > after)
        sent = select(_m).where(_m.c.sender_id == user_id, _m.c.position > after)
        rows = conn.execute(
            select(received.union_all(sent).subquery()).order_by("position").limit(limit)
        ).all()
    return [message_view(r) for r in rows]
