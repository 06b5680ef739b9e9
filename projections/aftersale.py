"""After-sale read model: returns, disputes with their statements, and sellers' dispute records
(lost disputes, flagged for admin review).

A return's or dispute's refund is requested on the order; its status here follows the order's
``Refunded`` / ``RefundFailed`` events for that refund id.
"""

from __future__ import annotations

import json
from decimal import Decimal
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

from aggregates.disputes import Dispute, SellerDisputeRecord
from aggregates.orders import Order
from aggregates.returns import ReturnRequest
from projections.base import (
    Envelope,
    LongText,
    Projection,
    Timestamp,
    handles,
    naive_utc,
)


class AfterSale(Projection):
    name = "aftersale"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        returns = Table(
            f"rm_returns{suffix}",
            metadata,
            Column("return_id", String(36), primary_key=True),
            Column("position", BigInteger, nullable=False),
            Column("order_id", String(36), nullable=False, index=True),
            Column("order_number", String(20), nullable=False),
            Column("buyer_id", String(36), nullable=False),
            Column("seller_id", String(36), nullable=False),
            Column("status", String(12), nullable=False),
            Column("items", LongText, nullable=False),
            Column("reason", String(500), nullable=False),
            Column("images", LongText, nullable=False),
            Column("decision_note", String(500)),
            Column("carrier", String(50)),
            Column("tracking_number", String(64)),
            Column("warehouse_id", String(36)),
            Column("refund_id", String(36), index=True),
            Column("refund_amount", String(24)),
            Column("refund_status", String(10)),
            Column("requested_at", Timestamp, nullable=False),
            Column("updated_at", Timestamp, nullable=False),
        )
        Index(None, returns.c.buyer_id, returns.c.position)
        Index(None, returns.c.seller_id, returns.c.position)
        Index(None, returns.c.status, returns.c.position)
        disputes = Table(
            f"rm_disputes{suffix}",
            metadata,
            Column("dispute_id", String(36), primary_key=True),
            Column("position", BigInteger, nullable=False),
            Column("order_id", String(36), nullable=False, index=True),
            Column("order_number", String(20), nullable=False),
            Column("buyer_id", String(36), nullable=False),
            Column("seller_id", String(36), nullable=False),
            Column("opened_by", String(36), nullable=False),
            Column("opener_role", String(10), nullable=False),
            Column("status", String(10), nullable=False),
            Column("reason", String(200), nullable=False),
            Column("text", Text, nullable=False),
            Column("statement_count", Integer, nullable=False),
            Column("opened_at", Timestamp, nullable=False),
            Column("updated_at", Timestamp, nullable=False),
            Column("resolution", String(16)),
            Column("resolution_note", Text),
            Column("resolved_by", String(36)),
            Column("resolved_at", Timestamp),
            Column("refund_id", String(36), index=True),
            Column("refund_amount", String(24)),
            Column("refund_status", String(10)),
        )
        Index(None, disputes.c.status, disputes.c.position)
        Index(None, disputes.c.buyer_id, disputes.c.position)
        Index(None, disputes.c.seller_id, disputes.c.position)
        statements = Table(
            f"rm_dispute_statements{suffix}",
            metadata,
            Column("dispute_id", String(36), primary_key=True),
            Column("seq", Integer, primary_key=True, autoincrement=False),
            Column("author_id", String(36), nullable=False),
            Column("role", String(10), nullable=False),
            Column("text", Text, nullable=False),
            Column("at", Timestamp, nullable=False),
        )
        records = Table(
            f"rm_seller_dispute_records{suffix}",
            metadata,
            Column("seller_id", String(36), primary_key=True),
            Column("record_id", String(36), nullable=False, unique=True),
            Column("disputes_lost", Integer, nullable=False),
            Column("last_lost_at", Timestamp),
            Column("flagged", Boolean, nullable=False),
            Column("flagged_at", Timestamp),
            Column("flagged_position", BigInteger),
            Column("lost_in_window", Integer),
            Column("window_days", Integer),
            Column("flagging_dispute_id", String(36)),
            Column("cleared_at", Timestamp),
            Column("cleared_by", String(36)),
            Column("clear_note", Text),
        )
        Index(None, records.c.flagged, records.c.flagged_position)
        return {
            "returns": returns,
            "disputes": disputes,
            "statements": statements,
            "records": records,
        }

    # --- returns --------------------------------------------------------------------------
    def _set_return(self, session: Session, env: Envelope, **values: Any) -> None:
        r = self.tables["returns"]
        values["updated_at"] = naive_utc(env.event.at)
        session.execute(update(r).where(r.c.return_id == str(env.originator_id)).values(**values))

    @handles(ReturnRequest.Requested)
    def _return_requested(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["returns"]).values(
                return_id=str(env.originator_id),
                position=env.position,
                order_id=e.order_id,
                order_number=e.order_number,
                buyer_id=e.buyer_id,
                seller_id=e.seller_id,
                status="REQUESTED",
                items=json.dumps(e.items, ensure_ascii=False),
                reason=e.reason,
                images=json.dumps(e.images, ensure_ascii=False),
                requested_at=naive_utc(e.at),
                updated_at=naive_utc(e.at),
            )
        )

    @handles(ReturnRequest.Approved)
    def _return_approved(self, session: Session, env: Envelope) -> None:
        self._set_return(session, env, status="APPROVED", decision_note=env.event.note or None)

    @handles(ReturnRequest.Rejected)
    def _return_rejected(self, session: Session, env: Envelope) -> None:
        self._set_return(session, env, status="REJECTED", decision_note=env.event.reason)

    @handles(ReturnRequest.ShippedBack)
    def _return_shipped(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._set_return(
            session,
            env,
            status="SHIPPED_BACK",
            carrier=e.carrier,
            tracking_number=e.tracking_number,
        )

    @handles(ReturnRequest.Received)
    def _return_received(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._set_return(
            session,
            env,
            status="RECEIVED",
            warehouse_id=e.warehouse_id,
            **_refund_columns(e.refund),
        )

    # --- disputes -------------------------------------------------------------------------
    def _set_dispute(self, session: Session, env: Envelope, **values: Any) -> None:
        d = self.tables["disputes"]
        values["updated_at"] = naive_utc(env.event.at)
        session.execute(update(d).where(d.c.dispute_id == str(env.originator_id)).values(**values))

    @handles(Dispute.Opened)
    def _dispute_opened(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["disputes"]).values(
                dispute_id=str(env.originator_id),
                position=env.position,
                order_id=e.order_id,
                order_number=e.order_number,
                buyer_id=e.buyer_id,
                seller_id=e.seller_id,
                opened_by=e.opened_by,
                opener_role=e.opener_role,
                status="OPEN",
                reason=e.reason,
                text=e.text,
                statement_count=0,
                opened_at=naive_utc(e.at),
                updated_at=naive_utc(e.at),
            )
        )

    @handles(Dispute.StatementAdded)
    def _statement(self, session: Session, env: Envelope) -> None:
        e = env.event
        d = self.tables["disputes"]
        dispute_id = str(env.originator_id)
        count = session.execute(
            select(d.c.statement_count).where(d.c.dispute_id == dispute_id)
        ).scalar_one()
        session.execute(
            insert(self.tables["statements"]).values(
                dispute_id=dispute_id,
                seq=count + 1,
                author_id=e.author_id,
                role=e.role,
                text=e.text,
                at=naive_utc(e.at),
            )
        )
        self._set_dispute(session, env, statement_count=count + 1)

    @handles(Dispute.Resolved)
    def _dispute_resolved(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._set_dispute(
            session,
            env,
            status="RESOLVED",
            resolution=e.resolution,
            resolution_note=e.note,
            resolved_by=e.admin_id,
            resolved_at=naive_utc(e.at),
            **_refund_columns(e.refund),
        )

    # --- refunds settled on the order -----------------------------------------------------
    def _refund_status(self, session: Session, refund_id: str, status: str) -> None:
        for table in (self.tables["returns"], self.tables["disputes"]):
            session.execute(
                update(table).where(table.c.refund_id == refund_id).values(refund_status=status)
            )

    @handles(Order.Refunded)
    def _refunded(self, session: Session, env: Envelope) -> None:
        self._refund_status(session, env.event.refund_id, "COMPLETED")

    @handles(Order.RefundFailed)
    def _refund_failed(self, session: Session, env: Envelope) -> None:
        self._refund_status(session, env.event.refund_id, "FAILED")

    # --- sellers' records -----------------------------------------------------------------
    def _set_record(self, session: Session, env: Envelope, **values: Any) -> None:
        r = self.tables["records"]
        session.execute(update(r).where(r.c.record_id == str(env.originator_id)).values(**values))

    @handles(SellerDisputeRecord.Started)
    def _record_started(self, session: Session, env: Envelope) -> None:
        session.execute(
            insert(self.tables["records"]).values(
                seller_id=env.event.seller_id,
                record_id=str(env.originator_id),
                disputes_lost=0,
                flagged=False,
            )
        )

    @handles(SellerDisputeRecord.DisputeLost)
    def _lost(self, session: Session, env: Envelope) -> None:
        r = self.tables["records"]
        self._set_record(
            session, env, disputes_lost=r.c.disputes_lost + 1, last_lost_at=naive_utc(env.event.at)
        )

    @handles(SellerDisputeRecord.Flagged)
    def _flagged(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._set_record(
            session,
            env,
            flagged=True,
            flagged_at=naive_utc(e.at),
            flagged_position=env.position,
            lost_in_window=e.lost,
            window_days=e.window_days,
            flagging_dispute_id=e.dispute_id,
        )

    @handles(SellerDisputeRecord.FlagCleared)
    def _cleared(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._set_record(
            session,
            env,
            flagged=False,
            cleared_at=naive_utc(e.at),
            cleared_by=e.admin_id,
            clear_note=e.note or None,
        )


def _refund_columns(refund: dict[str, Any] | None) -> dict[str, Any]:
    if refund is None:
        return {}
    return {
        "refund_id": refund["refundId"],
        "refund_amount": str(Decimal(refund["amount"])),
        "refund_status": refund["status"],
    }


live = AfterSale.live_tables()
