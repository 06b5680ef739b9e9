"""Review lists and rating summaries (read model only)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.engine import Connection, Engine

from projections.catalog import rating_x10
from projections.reviews import live
from queries.common import PageRequest, iso, paginated

_r = live["reviews"]
_s = live["stats"]

REVIEW_SORTS = ("newest", "highest", "lowest")


def review_view(row: Any, *, moderation: bool = False) -> dict[str, Any]:
    """A review as anyone sees it; ``moderation`` (admins) adds its order and whether and why
    it is hidden."""
    view: dict[str, Any] = {
        "reviewId": row.review_id,
        "productId": row.product_id,
        "sellerId": row.seller_id,
        "reviewerName": row.reviewer_name,
        "productScore": row.product_score,
        "sellerScore": row.seller_score,
        "text": row.text,
        "images": json.loads(row.images),
        "edited": row.edits > 0,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
        "reply": None
        if row.reply_text is None
        else {"text": row.reply_text, "repliedAt": iso(row.replied_at)},
    }
    if moderation:
        view["orderId"] = row.order_id
        view["hidden"] = bool(row.hidden)
        view["hiddenReason"] = row.hidden_reason
    return view


def summary(conn: Connection, subject: str, subject_id: str) -> dict[str, Any]:
    """Average (one decimal), count and the 1-10 histogram of the visible reviews."""
    row = conn.execute(
        select(_s).where(_s.c.subject == subject, _s.c.subject_id == subject_id)
    ).first()
    count = row.review_count if row is not None else 0
    total = row.score_sum if row is not None else 0
    histogram = json.loads(row.histogram) if row is not None else [0] * 10
    x10 = rating_x10(total, count)
    return {
        "average": None if x10 is None else x10 / 10,
        "count": count,
        "histogram": {str(score): n for score, n in enumerate(histogram, start=1)},
    }


def list_reviews(
    engine: Engine,
    subject: str,
    subject_id: str,
    sort: str,
    page: PageRequest,
    *,
    moderation: bool = False,
) -> dict[str, Any]:
    """One product's (subject "product") or seller's reviews; hidden ones only for admins
    (``moderation``)."""
    key = _r.c.product_id if subject == "product" else _r.c.seller_id
    score = _r.c.product_score if subject == "product" else _r.c.seller_score
    conditions = [key == subject_id]
    if not moderation:
        conditions.append(_r.c.hidden == false())
    order = {
        "newest": [_r.c.position.desc()],
        "highest": [score.desc(), _r.c.position.desc()],
        "lowest": [score.asc(), _r.c.position.desc()],
    }[sort]
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(_r).where(*conditions)).scalar_one()
        rows = conn.execute(
            select(_r).where(*conditions).order_by(*order).limit(page.page_size).offset(page.offset)
        ).all()
        stats = summary(conn, subject, subject_id)
    result = paginated(
        "reviews", [review_view(r, moderation=moderation) for r in rows], total, page
    )
    result["summary"] = stats
    return result


def get_review(engine: Engine, review_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(_r).where(_r.c.review_id == review_id)).first()
