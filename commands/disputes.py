"""Dispute commands: the buyer or a seller of a paid order opens one, both sides (and admins)
add statements, an admin resolves it. A resolution with a refund requests it on the Order in
the same transaction, and counts as lost on the seller's record (which may flag the seller)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from aggregates.disputes import (
    Dispute,
    DisputeAlreadyExists,
    DisputeNotFound,
    SellerDisputeRecord,
)
from aggregates.errors import Conflict, DomainError
from aggregates.money import money
from aggregates.orders import InvalidOrderStatus, Order, OrderNotFound, RefundFailed
from commands.bus import Command, Handler, UnitOfWork
from commands.orders import PendingRefund, refund_and_cancel, role_in_order
from commands.returns import refund_id_of


@dataclass(frozen=True)
class OpenDispute(Command):
    order_id: UUID
    actor_id: str
    reason: str
    text: str
    seller_id: str | None = None


def open_dispute(uow: UnitOfWork, cmd: OpenDispute) -> Dispute:
    order = uow.find(Order, cmd.order_id)
    role = None if order is None else role_in_order(order, cmd.actor_id, False)
    if order is None or role not in ("buyer", "seller"):
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if role == "seller":
        if cmd.seller_id not in (None, cmd.actor_id):
            raise DomainError("a seller opens disputes about its own items", field="sellerId")
        seller_id = cmd.actor_id
    elif cmd.seller_id is not None:
        if not order.involves_seller(cmd.seller_id):
            raise DomainError("no items of that seller are in this order", field="sellerId")
        seller_id = cmd.seller_id
    elif len(order.seller_ids) == 1:
        seller_id = order.seller_ids[0]
    else:
        raise DomainError(
            "this order holds items of several sellers: name the seller (sellerId)",
            field="sellerId",
        )
    if order.paid_amount == 0:
        raise InvalidOrderStatus(
            "a dispute is about a paid order", current=order.status, reason="NOT_PAID"
        )
    dispute_id = Dispute.create_id(str(order.id), seller_id)
    if uow.exists(dispute_id):
        raise DisputeAlreadyExists(
            "this order already has a dispute with this seller", disputeId=str(dispute_id)
        )
    dispute = Dispute.open(
        order_id=str(order.id),
        order_number=order.order_number,
        buyer_id=order.buyer_id,
        seller_id=seller_id,
        opened_by=cmd.actor_id,
        opener_role=role,
        reason=cmd.reason,
        text=cmd.text,
        at=uow.now,
    )
    uow.add(dispute)
    return dispute


def _dispute(uow: UnitOfWork, dispute_id: UUID) -> Dispute:
    return uow.get(Dispute, dispute_id, DisputeNotFound)


@dataclass(frozen=True)
class AddStatement(Command):
    dispute_id: UUID
    actor_id: str
    is_admin: bool
    text: str


def add_statement(uow: UnitOfWork, cmd: AddStatement) -> Dispute:
    dispute = _dispute(uow, cmd.dispute_id)
    role = dispute.party(cmd.actor_id) or ("admin" if cmd.is_admin else None)
    if role is None:
        raise DisputeNotFound("dispute not found", disputeId=str(cmd.dispute_id))
    dispute.add_statement(cmd.actor_id, role, cmd.text, uow.now)
    uow.add(dispute)
    return dispute


@dataclass(frozen=True)
class ResolveDispute(Command):
    dispute_id: UUID
    admin_id: str
    resolution: str
    amount: Decimal | None
    note: str
    #: who is told when this flags the seller (the admins, read by the route)
    admin_ids: tuple[str, ...]
    loss_window: timedelta
    losses_to_flag: int


def _refund(
    uow: UnitOfWork, dispute: Dispute, order: Order, resolution: str, amount: Decimal | None
) -> tuple[dict[str, Any] | None, PendingRefund | None]:
    """Request the resolution's refund on the order. REFUND_FULL: what is left to refund of
    the order when the seller is its only seller, else of that seller's items; REFUND_PARTIAL:
    the amount, within the same bound."""
    sole = order.seller_ids == [dispute.seller_id]
    due = [
        (i["orderItemId"], left, "DISPUTE")
        for i in order.items
        if i["sellerId"] == dispute.seller_id and (left := order.refundable_units(i)) > 0
    ]
    items_value = sum(
        (order.item_refund_value(order.item(i) or {}, q) for i, q, _ in due), Decimal(0)
    )
    bound = max(order.refundable if sole else min(items_value, order.refundable), Decimal(0))
    if resolution == "REFUND_PARTIAL":
        assert amount is not None
        if amount > bound:
            raise RefundFailed(
                f"at most {bound} can be refunded by this dispute", refundable=money(bound)
            )
        planned, covered = order.plan_refund(amount, False, [])
    elif bound == 0:
        return None, None  # decided for the buyer, but nothing is left to pay back
    elif sole:
        planned, covered = order.plan_refund(None, True, due)
    else:
        planned, covered = order.plan_refund(bound, False, due)
    refund_id = refund_id_of(dispute.id)
    pending = refund_and_cancel(
        uow, order, refund_id, planned, f"DISPUTE {resolution}", covered, "admin"
    )
    refund = {
        "refundId": refund_id,
        "amount": str(planned),
        "items": covered,
        "status": "PENDING" if pending else "COMPLETED",
    }
    return refund, pending


def resolve_dispute(uow: UnitOfWork, cmd: ResolveDispute) -> tuple[Dispute, PendingRefund | None]:
    dispute = _dispute(uow, cmd.dispute_id)
    dispute.check_resolvable(cmd.resolution, cmd.amount)
    refund, pending, order = None, None, None
    if cmd.resolution != "REJECTED":
        order = uow.get(Order, UUID(dispute.order_id), OrderNotFound)
        refund, pending = _refund(uow, dispute, order, cmd.resolution, cmd.amount)
    # The dispute first: its events precede the order's refund events in the log.
    dispute.resolve(cmd.admin_id, cmd.resolution, cmd.note, refund, uow.now)
    uow.add(dispute)
    if order is not None and refund is not None:
        uow.add(order)
    if dispute.seller_lost:
        record = uow.find(
            SellerDisputeRecord, SellerDisputeRecord.create_id(dispute.seller_id)
        ) or SellerDisputeRecord.start(dispute.seller_id)
        record.record_loss(
            str(dispute.id), uow.now, cmd.loss_window, cmd.losses_to_flag, list(cmd.admin_ids)
        )
        uow.add(record)
    return dispute, pending


@dataclass(frozen=True)
class ClearSellerFlag(Command):
    seller_id: str
    admin_id: str
    note: str


def clear_seller_flag(uow: UnitOfWork, cmd: ClearSellerFlag) -> SellerDisputeRecord:
    record = uow.find(SellerDisputeRecord, SellerDisputeRecord.create_id(cmd.seller_id))
    if record is None:
        raise Conflict("the seller is not flagged", sellerId=cmd.seller_id)
    record.clear_flag(cmd.admin_id, cmd.note, uow.now)
    uow.add(record)
    return record


HANDLERS: dict[type, Handler] = {
    OpenDispute: open_dispute,
    AddStatement: add_statement,
    ResolveDispute: resolve_dispute,
    ClearSellerFlag: clear_seller_flag,
}
