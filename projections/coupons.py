"""Coupons read model: definitions and how often each is in use (for GET /api/coupons/{code})."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert, update
from sqlalchemy.orm import Session

from aggregates.coupons import Coupon
from aggregates.money import to_minor
from projections.base import Envelope, Projection, Timestamp, handles, naive_utc


class Coupons(Projection):
    name = "coupons"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        coupons = Table(
            f"rm_coupons{suffix}",
            metadata,
            Column("code", String(32), primary_key=True),
            Column("coupon_id", String(36), nullable=False, unique=True),
            Column("kind", String(10), nullable=False),
            Column("value_minor", BigInteger, nullable=False),
            Column("max_discount_minor", BigInteger),
            Column("min_spend_minor", BigInteger, nullable=False),
            Column("starts_at", Timestamp),
            Column("ends_at", Timestamp),
            Column("usage_limit", Integer),
            Column("per_user_limit", Integer),
            Column("seller_id", String(36), index=True),
            Column("category_id", String(36)),
            Column("created_by", String(36), nullable=False),
            Column("used", Integer, nullable=False),
            Column("created_at", Timestamp, nullable=False),
        )
        return {"coupons": coupons}

    @handles(Coupon.Created)
    def _created(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["coupons"]).values(
                code=e.code,
                coupon_id=str(env.originator_id),
                kind=e.kind,
                value_minor=to_minor(e.value),
                max_discount_minor=None if e.max_discount is None else to_minor(e.max_discount),
                min_spend_minor=to_minor(e.min_spend),
                starts_at=naive_utc(e.starts_at),
                ends_at=naive_utc(e.ends_at),
                usage_limit=e.usage_limit,
                per_user_limit=e.per_user_limit,
                seller_id=e.seller_id,
                category_id=e.category_id,
                created_by=e.created_by,
                used=0,
                created_at=naive_utc(e.timestamp),
            )
        )

    def _count(self, session: Session, env: Envelope, delta: int) -> None:
        c = self.tables["coupons"]
        session.execute(
            update(c).where(c.c.coupon_id == str(env.originator_id)).values(used=c.c.used + delta)
        )

    @handles(Coupon.Redeemed)
    def _redeemed(self, session: Session, env: Envelope) -> None:
        self._count(session, env, 1)

    @handles(Coupon.Released)
    def _released(self, session: Session, env: Envelope) -> None:
        self._count(session, env, -1)


live = Coupons.live_tables()
