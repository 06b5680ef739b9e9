"""Partial cancellation: some unshipped units of an order are cancelled and their stock
reservation released, in one transaction. A paid order refunds their value (a card refund is
held here and paid back by the gateway after the commit, as for a whole cancellation); an
unpaid one asks that much less (``Order.amount_due``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aggregates.orders import Order, OrderNotFound
from commands.bus import Command, Handler, UnitOfWork
from commands.fulfilment import collect_cod
from commands.orders import (
    PendingRefund,
    _release,
    manual_transaction_id,
    release_units,
    role_in_order,
    start_refund,
)


@dataclass(frozen=True)
class CancelUnits(Command):
    order_id: UUID
    actor_id: str
    is_admin: bool
    items: tuple[tuple[str, int], ...]  # (order item id, units)
    reason: str
    notes: str = ""


@dataclass(frozen=True)
class UnitsCancellation:
    order: Order
    items: list[dict[str, Any]]  # empty when the whole order was cancelled
    refund: dict[str, Any] | None
    pending: PendingRefund | None


def cancel_units(uow: UnitOfWork, cmd: CancelUnits) -> UnitsCancellation:
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = role_in_order(order, cmd.actor_id, cmd.is_admin)
    if role is None:  # another user's order is indistinguishable from a missing one
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    done = order.cancel_units(list(cmd.items), role, cmd.actor_id, cmd.reason, cmd.notes, uow.now)
    if done.whole:
        _release(uow, order, "ORDER_CANCELLED")
    release_units(uow, order, done.items)
    refund, pending = None, None
    if done.refund_due is not None and done.refund_id is not None:
        covered = [
            {
                "orderItemId": i["orderItemId"],
                "productId": i["productId"],
                "quantity": i["quantity"],
                "amount": i["amount"],
                "reason": "UNITS_CANCELLED",
            }
            for i in done.items
        ]
        reason = "ORDER_CANCELLED" if done.whole else "UNITS_CANCELLED"
        pending = start_refund(order, done.refund_id, done.refund_due, reason, covered, uow.now)
        refund = {
            "refundId": done.refund_id,
            "amount": done.refund_due,
            "status": "PENDING" if pending else "COMPLETED",
            "transactionId": None if pending else manual_transaction_id(done.refund_id),
            "processedAt": uow.now,
        }
    if order.carrier_delivered_at is not None and not done.whole:
        collect_cod(uow, order)  # the units left were all delivered already
    uow.add(order)
    return UnitsCancellation(order, done.items, refund, pending)


HANDLERS: dict[type, Handler] = {CancelUnits: cancel_units}
