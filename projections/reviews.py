"""Reviews read model: every review as shown (newest first per product or seller), and the
rating summaries (seeds/001 customer_feedback_stats): per product the average product score,
count and 1-10 histogram, per seller the same of seller scores.

A hidden review stays in ``rm_reviews`` (admins see it) but leaves every summary; an edit
moves its scores from one histogram bucket to another.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from aggregates.reviews import SCORE_MAX, Review
from projections.base import (
    Envelope,
    LongText,
    Projection,
    Timestamp,
    handles,
    naive_utc,
)

SUBJECTS = ("product", "seller")


class Reviews(Projection):
    name = "reviews"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        reviews = Table(
            f"rm_reviews{suffix}",
            metadata,
            Column("review_id", String(36), primary_key=True),
            Column("position", BigInteger, nullable=False),
            Column("order_id", String(36), nullable=False),
            Column("product_id", String(36), nullable=False),
            Column("seller_id", String(36), nullable=False),
            Column("buyer_id", String(36), nullable=False),
            Column("reviewer_name", String(110), nullable=False),
            Column("product_score", Integer, nullable=False),
            Column("seller_score", Integer, nullable=False),
            Column("text", Text, nullable=False),
            Column("images", LongText, nullable=False),
            Column("created_at", Timestamp, nullable=False),
            Column("updated_at", Timestamp, nullable=False),
            Column("edits", Integer, nullable=False),
            Column("reply_text", Text),
            Column("replied_at", Timestamp),
            Column("hidden", Boolean, nullable=False),
            Column("hidden_reason", String(500)),
        )
        Index(None, reviews.c.product_id, reviews.c.hidden, reviews.c.position)
        Index(None, reviews.c.seller_id, reviews.c.hidden, reviews.c.position)
        stats = Table(
            f"rm_review_stats{suffix}",
            metadata,
            Column("subject", String(7), primary_key=True),  # product | seller
            Column("subject_id", String(36), primary_key=True),
            Column("review_count", Integer, nullable=False),
            Column("score_sum", BigInteger, nullable=False),
            Column("histogram", Text, nullable=False),  # JSON: counts of scores 1..10
        )
        return {"reviews": reviews, "stats": stats}

    # --- summaries ------------------------------------------------------------------------
    def _count(self, session: Session, subject: str, subject_id: str, score: int, n: int) -> None:
        """Add (n=1) or take away (n=-1) one visible score."""
        s = self.tables["stats"]
        key = (s.c.subject == subject, s.c.subject_id == subject_id)
        row = session.execute(select(s).where(*key)).first()
        histogram = json.loads(row.histogram) if row is not None else [0] * SCORE_MAX
        histogram[score - 1] += n
        values = {
            "review_count": (row.review_count if row is not None else 0) + n,
            "score_sum": (row.score_sum if row is not None else 0) + n * score,
            "histogram": json.dumps(histogram),
        }
        if row is None:
            session.execute(insert(s).values(subject=subject, subject_id=subject_id, **values))
        else:
            session.execute(update(s).where(*key).values(**values))

    def _count_review(self, session: Session, row: Any, n: int) -> None:
        self._count(session, "product", row.product_id, row.product_score, n)
        self._count(session, "seller", row.seller_id, row.seller_score, n)

    def _row(self, session: Session, env: Envelope) -> Any:
        r = self.tables["reviews"]
        return session.execute(select(r).where(r.c.review_id == str(env.originator_id))).one()

    def _set(self, session: Session, env: Envelope, **values: Any) -> None:
        r = self.tables["reviews"]
        session.execute(update(r).where(r.c.review_id == str(env.originator_id)).values(**values))

    # --- handlers -------------------------------------------------------------------------
    @handles(Review.Written)
    def _written(self, session: Session, env: Envelope) -> None:
        e = env.event
        row = {
            "review_id": str(env.originator_id),
            "position": env.position,
            "order_id": e.order_id,
            "product_id": e.product_id,
            "seller_id": e.seller_id,
            "buyer_id": e.buyer_id,
            "reviewer_name": e.reviewer_name,
            "product_score": e.product_score,
            "seller_score": e.seller_score,
            "text": e.text,
            "images": json.dumps(e.images, ensure_ascii=False),
            "created_at": naive_utc(e.at),
            "updated_at": naive_utc(e.at),
            "edits": 0,
            "reply_text": None,
            "replied_at": None,
            "hidden": False,
            "hidden_reason": None,
        }
        session.execute(insert(self.tables["reviews"]).values(**row))
        self._count(session, "product", e.product_id, e.product_score, 1)
        self._count(session, "seller", e.seller_id, e.seller_score, 1)

    @handles(Review.Edited)
    def _edited(self, session: Session, env: Envelope) -> None:
        e = env.event
        old = self._row(session, env)
        if not old.hidden:
            self._count_review(session, old, -1)
            self._count(session, "product", old.product_id, e.product_score, 1)
            self._count(session, "seller", old.seller_id, e.seller_score, 1)
        self._set(
            session,
            env,
            product_score=e.product_score,
            seller_score=e.seller_score,
            text=e.text,
            images=json.dumps(e.images, ensure_ascii=False),
            updated_at=naive_utc(e.at),
            edits=old.edits + 1,
        )

    @handles(Review.Replied)
    def _replied(self, session: Session, env: Envelope) -> None:
        self._set(session, env, reply_text=env.event.text, replied_at=naive_utc(env.event.at))

    @handles(Review.Hidden)
    def _hidden(self, session: Session, env: Envelope) -> None:
        row = self._row(session, env)
        if not row.hidden:
            self._count_review(session, row, -1)
        self._set(session, env, hidden=True, hidden_reason=env.event.reason)

    @handles(Review.Restored)
    def _restored(self, session: Session, env: Envelope) -> None:
        row = self._row(session, env)
        if row.hidden:
            self._count_review(session, row, 1)
        self._set(session, env, hidden=False, hidden_reason=None)


live = Reviews.live_tables()
