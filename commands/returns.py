"""Return commands: the buyer requests and ships back, the seller (or an admin) approves or
rejects and receives. Receiving puts the units back on hand (an Inventory ``Returned`` event in
the warehouse the seller names) and requests their refund on the Order, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid5

from aggregates.accounts import NotAllowed
from aggregates.inventory import Inventory, Warehouse
from aggregates.orders import Order, OrderNotFound
from aggregates.returns import (
    ReturnAlreadyExists,
    ReturnNotFound,
    ReturnRequest,
    plan_return,
    refund_lines,
)
from aggregates.reviews import clean_images
from commands.bus import Command, Handler, UnitOfWork
from commands.catalog import referenced
from commands.orders import PendingRefund, start_refund


@dataclass(frozen=True)
class RequestReturn(Command):
    order_id: UUID
    buyer_id: str
    items: tuple[tuple[str, int], ...]
    reason: str
    images: tuple[str, ...]
    window: timedelta


def request_return(uow: UnitOfWork, cmd: RequestReturn) -> ReturnRequest:
    order = uow.find(Order, cmd.order_id)
    if order is None or order.buyer_id != cmd.buyer_id:  # another buyer's order: not found
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    seller_id, lines = plan_return(order, list(cmd.items), uow.now, cmd.window)
    return_id = ReturnRequest.create_id(str(order.id), seller_id)
    if uow.exists(return_id):
        raise ReturnAlreadyExists(
            "a return of this seller's items in this order was requested already",
            returnId=str(return_id),
        )
    request = ReturnRequest.request(
        order_id=str(order.id),
        order_number=order.order_number,
        buyer_id=order.buyer_id,
        seller_id=seller_id,
        items=lines,
        reason=cmd.reason,
        images=clean_images(list(cmd.images)),
        at=uow.now,
    )
    uow.add(request)
    return request


def _return(
    uow: UnitOfWork, return_id: UUID, actor_id: str, is_admin: bool, side: str
) -> ReturnRequest:
    """The return for the side that acts on it (``seller``: its seller or an admin; ``buyer``:
    its buyer). The other side may look but not act (403); anyone else gets 404."""
    found = uow.find(ReturnRequest, return_id)
    if found is None:
        raise ReturnNotFound("return not found", returnId=str(return_id))
    acting = (
        (found.seller_id == actor_id or is_admin)
        if side == "seller"
        else found.buyer_id == actor_id
    )
    if acting:
        return found
    if actor_id in (found.buyer_id, found.seller_id):
        raise NotAllowed(f"only the return's {side} can do this")
    raise ReturnNotFound("return not found", returnId=str(return_id))


@dataclass(frozen=True)
class DecideReturn(Command):
    return_id: UUID
    actor_id: str
    is_admin: bool
    approve: bool
    text: str  # the note of an approval, the reason of a rejection


def decide_return(uow: UnitOfWork, cmd: DecideReturn) -> ReturnRequest:
    request = _return(uow, cmd.return_id, cmd.actor_id, cmd.is_admin, "seller")
    if cmd.approve:
        request.approve(cmd.actor_id, cmd.text, uow.now)
    else:
        request.reject(cmd.actor_id, cmd.text, uow.now)
    uow.add(request)
    return request


@dataclass(frozen=True)
class ShipBackReturn(Command):
    return_id: UUID
    buyer_id: str
    carrier: str
    tracking_number: str


def ship_back_return(uow: UnitOfWork, cmd: ShipBackReturn) -> ReturnRequest:
    request = _return(uow, cmd.return_id, cmd.buyer_id, False, "buyer")
    request.ship_back(cmd.carrier, cmd.tracking_number, uow.now)
    uow.add(request)
    return request


@dataclass(frozen=True)
class ReceiveReturn(Command):
    return_id: UUID
    actor_id: str
    is_admin: bool
    warehouse_id: str


def refund_id_of(aggregate_id: UUID) -> str:
    """The refund a return or a dispute requests (one each)."""
    return str(uuid5(aggregate_id, "refund"))


def receive_return(
    uow: UnitOfWork, cmd: ReceiveReturn
) -> tuple[ReturnRequest, PendingRefund | None]:
    """Units back in stock and their refund requested on the order (capped by what is still
    refundable: a refund by other means may have covered some of them meanwhile)."""
    request = _return(uow, cmd.return_id, cmd.actor_id, cmd.is_admin, "seller")
    request.check_receivable()
    warehouse_id = str(referenced(uow, Warehouse, cmd.warehouse_id, "warehouseId", "warehouse").id)
    order = uow.get(Order, UUID(request.order_id), OrderNotFound)
    refund, pending = None, None
    due = refund_lines(order, request.items)
    value = sum(
        (order.item_refund_value(order.item(i) or {}, q) for i, q, _ in due),
        Decimal(0),
    )
    amount = min(value, order.refundable)
    if due and order.paid_amount > 0 and amount > 0:
        refund_id = refund_id_of(request.id)
        amount, covered = order.plan_refund(amount, False, due)
        pending = start_refund(
            order, refund_id, amount, f"RETURN: {request.reason}"[:500], covered, uow.now
        )
        refund = {
            "refundId": refund_id,
            "amount": str(amount),
            "items": covered,
            "status": "PENDING" if pending else "COMPLETED",
        }
    # The return first: its events precede the order's refund events in the log.
    request.receive(cmd.actor_id, warehouse_id, refund, uow.now)
    uow.add(request)
    for product_id in sorted({line["productId"] for line in request.items}):
        units = sum(int(li["quantity"]) for li in request.items if li["productId"] == product_id)
        inventory = uow.get(Inventory, Inventory.create_id(product_id))
        inventory.take_back(str(request.id), warehouse_id, units, uow.now)
        uow.add(inventory)
    if refund is not None:
        uow.add(order)
    return request, pending


HANDLERS: dict[type, Handler] = {
    RequestReturn: request_return,
    DecideReturn: decide_return,
    ShipBackReturn: ship_back_return,
    ReceiveReturn: receive_return,
}
