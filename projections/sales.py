"""Sales statistics read model: units sold per product per day (Asia/Taipei), for the
best-seller ranking (熱銷排行榜).

Units count on the day an order is paid; a paid order that is cancelled (and so refunded)
takes its units back from that same day, so the ranking shows net sales.
"""

from __future__ import annotations

import json

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from aggregates.orders import Order
from aggregates.taipei import local_date
from projections.base import Envelope, Projection, handles, rows_changed


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
        orders = Table(
            f"rm_sales_orders{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("product_units", Text, nullable=False),  # {product id: units}
            Column("paid_day", String(10)),
        )
        return {"daily": daily, "orders": orders}

    def add_units(self, session: Session, product_id: str, day: str, units: int) -> None:
        """Add (or, negative, take back) units sold on a Taipei calendar day."""
        t = self.tables["daily"]
        changed = rows_changed(
            session,
            update(t)
            .where(t.c.product_id == product_id, t.c.day == day)
            .values(units=t.c.units + units),
        )
        if not changed:
            session.execute(insert(t).values(product_id=product_id, day=day, units=units))

    @handles(Order.Placed)
    def _placed(self, session: Session, env: Envelope) -> None:
        units: dict[str, int] = {}
        for item in env.event.items:
            units[item["productId"]] = units.get(item["productId"], 0) + item["quantity"]
        session.execute(
            insert(self.tables["orders"]).values(
                order_id=str(env.originator_id),
                product_units=json.dumps(units),
                paid_day=None,
            )
        )

    def _order(self, session: Session, env: Envelope) -> tuple[dict[str, int], str | None]:
        o = self.tables["orders"]
        row = session.execute(
            select(o.c.product_units, o.c.paid_day).where(o.c.order_id == str(env.originator_id))
        ).one()
        return json.loads(row.product_units), row.paid_day

    def _count_paid(self, session: Session, env: Envelope) -> None:
        units, paid_day = self._order(session, env)
        if paid_day is not None:
            return  # counted at the first payment
        day = local_date(env.event.at).isoformat()
        o = self.tables["orders"]
        session.execute(
            update(o).where(o.c.order_id == str(env.originator_id)).values(paid_day=day)
        )
        for product_id, n in units.items():
            self.add_units(session, product_id, day, n)

    @handles(Order.StatusChanged)
    def _paid(self, session: Session, env: Envelope) -> None:
        if env.event.status == "PAID":  # orders recorded before payments were events
            self._count_paid(session, env)

    @handles(Order.PaymentCompleted)
    def _payment(self, session: Session, env: Envelope) -> None:
        if env.event.status != "CANCELLED":  # money for a cancelled order is refunded, not a sale
            self._count_paid(session, env)

    @handles(Order.Refunded)
    def _refunded(self, session: Session, env: Envelope) -> None:
        """Units refunded by item come off the day they were counted."""
        units, paid_day = self._order(session, env)
        if paid_day is None or not env.event.items:
            return
        for item in env.event.items:
            taken = min(int(item["quantity"]), units.get(item["productId"], 0))
            if taken:
                units[item["productId"]] -= taken
                self.add_units(session, item["productId"], paid_day, -taken)
        o = self.tables["orders"]
        session.execute(
            update(o)
            .where(o.c.order_id == str(env.originator_id))
            .values(product_units=json.dumps(units))
        )

    @handles(Order.UnitsCancelled)
    def _units_cancelled(self, session: Session, env: Envelope) -> None:
        """Units cancelled before payment are never sold (after payment, their refund takes
        them back)."""
        units, paid_day = self._order(session, env)
        if paid_day is not None:
            return
        for item in env.event.items:
            product_id = item["productId"]
            units[product_id] = max(0, units.get(product_id, 0) - int(item["quantity"]))
        o = self.tables["orders"]
        session.execute(
            update(o)
            .where(o.c.order_id == str(env.originator_id))
            .values(product_units=json.dumps(units))
        )

    @handles(Order.Cancelled)
    def _cancelled(self, session: Session, env: Envelope) -> None:
        units, paid_day = self._order(session, env)
        if paid_day is None:
            return
        for product_id, n in units.items():
            if n:
                self.add_units(session, product_id, paid_day, -n)
        o = self.tables["orders"]
        session.execute(
            update(o)
            .where(o.c.order_id == str(env.originator_id))
            .values(product_units=json.dumps({k: 0 for k in units}))
        )


live = SalesStats.live_tables()
