"""Orders read model: one row per order (filter columns + the seeds/003 detail document) and
one row per seller of an order (the seller's queue).

The document is :func:`aggregates.order_view.fold` of the order's events, applied event by
event here; the audit view (``?asOf=`` / ``?version=``) applies the same fold to the stored
events up to that moment, so both show exactly the same shape.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from aggregates.money import to_minor
from aggregates.order_view import fold
from aggregates.orders import Order
from projections.base import (
    Envelope,
    LongText,
    Projection,
    Timestamp,
    handles,
    naive_utc,
)


class Orders(Projection):
    name = "orders"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        orders = Table(
            f"rm_orders{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("order_number", String(20), nullable=False, unique=True),
            Column("buyer_id", String(36), nullable=False),
            Column("status", String(12), nullable=False),
            Column("payment_status", String(20), nullable=False),
            Column("shipping_status", String(20), nullable=False),
            Column("payment_method", String(20), nullable=False),
            Column("total_minor", BigInteger, nullable=False),
            Column("created_at", Timestamp, nullable=False),
            Column("updated_at", Timestamp, nullable=False),
            Column("version", Integer, nullable=False),
            Column("document", LongText, nullable=False),
        )
        Index(None, orders.c.buyer_id, orders.c.created_at)
        Index(None, orders.c.created_at)
        sellers = Table(
            f"rm_order_sellers{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("seller_id", String(36), primary_key=True),
            Column("seller_subtotal_minor", BigInteger, nullable=False),
            Column("created_at", Timestamp, nullable=False),
        )
        Index(None, sellers.c.seller_id, sellers.c.created_at)
        return {"orders": orders, "sellers": sellers}

    def _document(self, session: Session, order_id: str) -> dict[str, Any]:
        o = self.tables["orders"]
        raw = session.execute(select(o.c.document).where(o.c.order_id == order_id)).scalar_one()
        return dict(json.loads(raw))

    def _save(self, session: Session, doc: dict[str, Any], at: datetime) -> None:
        o = self.tables["orders"]
        session.execute(
            update(o)
            .where(o.c.order_id == doc["orderId"])
            .values(
                status=doc["status"],
                payment_status=doc["paymentStatus"],
                shipping_status=doc["shippingStatus"],
                payment_method=doc["paymentMethod"],
                updated_at=naive_utc(at),
                version=doc["version"],
                document=json.dumps(doc, ensure_ascii=False),
            )
        )

    @handles(Order.Placed)
    def _placed(self, session: Session, env: Envelope) -> None:
        e = env.event
        doc = fold(None, e)
        at = naive_utc(e.at)
        session.execute(
            insert(self.tables["orders"]).values(
                order_id=doc["orderId"],
                order_number=e.order_number,
                buyer_id=e.buyer_id,
                status=doc["status"],
                payment_status=doc["paymentStatus"],
                shipping_status=doc["shippingStatus"],
                payment_method=e.payment_method,
                total_minor=to_minor(e.total),
                created_at=at,
                updated_at=at,
                version=env.originator_version,
                document=json.dumps(doc, ensure_ascii=False),
            )
        )
        per_seller: dict[str, Decimal] = {}
        for item in e.items:
            per_seller[item["sellerId"]] = per_seller.get(item["sellerId"], Decimal(0)) + Decimal(
                item["subtotal"]
            )
        session.execute(
            insert(self.tables["sellers"]),
            [
                {
                    "order_id": doc["orderId"],
                    "seller_id": s,
                    "seller_subtotal_minor": to_minor(v),
                    "created_at": at,
                }
                for s, v in sorted(per_seller.items())
            ],
        )

    @handles(
        Order.StatusChanged,
        Order.Cancelled,
        Order.Expired,
        Order.PaymentStarted,
        Order.PaymentCompleted,
        Order.PaymentFailed,
        Order.RefundRequested,
        Order.Refunded,
        Order.RefundFailed,
        Order.Processed,
        Order.ShipmentCreated,
        Order.ShipmentStatusChanged,
        Order.Delivered,
        Order.ShipReminderSent,
        Order.InvoiceIssued,
        Order.InvoiceVoided,
        Order.CorrectedInvoiceIssued,
        Order.PaymentMethodChosen,
        Order.AdminStatusUpdated,
        Order.DeadlineSet,
    )
    def _changed(self, session: Session, env: Envelope) -> None:
        doc = fold(self._document(session, str(env.originator_id)), env.event)
        self._save(session, doc, env.event.at)

    @handles(Order.UnitsCancelled)
    def _units_cancelled(self, session: Session, env: Envelope) -> None:
        """The document, the order's total and each seller's subtotal lose the units."""
        e = env.event
        doc = fold(self._document(session, str(env.originator_id)), e)
        self._save(session, doc, e.at)
        o, s = self.tables["orders"], self.tables["sellers"]
        session.execute(
            update(o)
            .where(o.c.order_id == doc["orderId"])
            .values(total_minor=to_minor(Decimal(str(doc["total"]["value"]))))
        )
        per_seller: dict[str, Decimal] = {}
        for item in e.items:
            per_seller[item["sellerId"]] = per_seller.get(item["sellerId"], Decimal(0)) + Decimal(
                item["subtotal"]
            )
        for seller_id, taken in sorted(per_seller.items()):
            session.execute(
                update(s)
                .where(s.c.order_id == doc["orderId"], s.c.seller_id == seller_id)
                .values(seller_subtotal_minor=s.c.seller_subtotal_minor - to_minor(taken))
            )


live = Orders.live_tables()
