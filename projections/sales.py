"""Sales statistics read model: units sold per product per day (Asia/Taipei), for the
best-seller ranking (熱銷排行榜) and the ``bestselling`` sort.

Units count when an order is paid and are taken back when a paid order is refunded or
cancelled; the order issue adds the handlers for those events. Until then the tables exist and
every query over them answers (with no sales).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, insert, update
from sqlalchemy.orm import Session

from projections.base import Projection, new_metadata


class SalesStats(Projection):
    name = "sales_stats"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        daily = Table(
            f"rm_sales_daily{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("day", String(10), primary_key=True),  # YYYY-MM-DD in Asia/Taipei
            Column("units", BigInteger, nullable=False),
        )
        Index(None, daily.c.day, daily.c.product_id)
        return {"daily": daily}

    def add_units(self, session: Session, product_id: str, day: str, units: int) -> None:
        """Add (or, negative, take back) units sold on a Taipei calendar day."""
        t = self.tables["daily"]
        changed = session.execute(
            update(t).where(t.c.product_id == product_id, t.c.day == day).values(units=t.c.units + units)
        ).rowcount
        if not changed:
            session.execute(insert(t).values(product_id=product_id, day=day, units=units))


live = SalesStats.define_tables(new_metadata())
