"""Payment and refund commands.

A card payment is two commands around the gateway call: :class:`StartCardPayment` claims the
order for one attempt (a concurrent second attempt is refused before anyone is charged), the
gateway is asked outside any transaction, then :class:`FinishCardPayment` records the outcome.
ECPay's server notice is one command; the order remembers each ECPay TradeNo, so a repeated
notice records nothing new. Refunds ask the gateway with the refund id as idempotency key, so a
retried command (version conflict) cannot pay back twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from aggregates.accounts import NotAllowed, UniqueKey
from aggregates.errors import DomainError
from aggregates.money import CENT, quantize
from aggregates.orders import Order, OrderNotFound
from commands.bus import Command, UnitOfWork
from commands.orders import CARD_PROVIDER, refund_transaction, role_in_order

ECPAY_PROVIDER = "ECPAY"


def receipt_number(order: Order) -> str:
    return order.next_receipt_number()


def _buyers_order(uow: UnitOfWork, order_id: UUID, buyer_id: str) -> Order:
    order = uow.get(Order, order_id, OrderNotFound)
    if order.buyer_id != buyer_id:  # another user's order is indistinguishable from a missing one
        raise OrderNotFound("order not found", orderId=str(order_id))
    return order


# --- cards ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartCardPayment(Command):
    order_id: UUID
    buyer_id: str
    payment_id: str
    method: str
    amount: Decimal
    card: dict[str, Any]  # brand, last4, expiry only: never the number or the CVV


def start_card_payment(uow: UnitOfWork, cmd: StartCardPayment) -> Order:
    order = _buyers_order(uow, cmd.order_id, cmd.buyer_id)
    order.start_payment(cmd.payment_id, cmd.method, CARD_PROVIDER, cmd.amount, cmd.card, uow.now)
    uow.add(order)
    return order


@dataclass(frozen=True)
class FinishCardPayment(Command):
    order_id: UUID
    payment_id: str
    method: str
    amount: Decimal
    card: dict[str, Any]
    approved: bool
    transaction_id: str
    decline_code: str | None


def finish_card_payment(uow: UnitOfWork, cmd: FinishCardPayment) -> tuple[Order, dict[str, Any] | None]:
    """Record the gateway's answer; returns the order and, when approved, the payment."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    if cmd.approved:
        order.complete_payment(
            cmd.payment_id, cmd.method, CARD_PROVIDER, cmd.amount, cmd.transaction_id, cmd.card,
            receipt_number(order), uow.now,
        )
    else:
        order.fail_payment(cmd.payment_id, cmd.method, CARD_PROVIDER, cmd.amount, cmd.decline_code or "declined",
                           cmd.card, uow.now)
    uow.add(order)
    return order, order.last_payment() if cmd.approved else None


# --- ECPay ----------------------------------------------------------------------------------
def ecpay_amount(total: Decimal) -> int:
    """ECPay charges whole New Taiwan dollars: the order total rounded half-up."""
    return int(quantize(total).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class ECPayNoticeRejected(DomainError):
    """A notice that must not record a payment; the message is ECPay's ``0|<reason>``."""


@dataclass(frozen=True)
class RecordECPayNotice(Command):
    merchant_trade_no: str
    trade_no: str
    paid: bool
    trade_amount: int
    payment_type: str
    rtn_msg: str
    payment_id: str


def order_for_trade(uow: UnitOfWork, merchant_trade_no: str) -> Order | None:
    key = uow.find(UniqueKey, UniqueKey.create_id("order-number", merchant_trade_no))
    return None if key is None else uow.find(Order, key.owner_id)


def record_ecpay_notice(uow: UnitOfWork, cmd: RecordECPayNotice) -> bool:
    """True if the notice recorded something new, False for a repeat."""
    order = order_for_trade(uow, cmd.merchant_trade_no)
    if order is None:
        raise ECPayNoticeRejected("unknown MerchantTradeNo")
    if cmd.trade_amount != ecpay_amount(order.total):
        raise ECPayNoticeRejected("TradeAmt does not match the order")
    external = f"ecpay:{cmd.trade_no}"
    method = order.payment_method if order.payment_method in ("BANK_TRANSFER", "MOBILE_PAYMENT") else "BANK_TRANSFER"
    amount = Decimal(cmd.trade_amount)
    card = {"paymentType": cmd.payment_type}
    if cmd.paid:
        changed = order.complete_payment(
            cmd.payment_id, method, ECPAY_PROVIDER, amount, cmd.trade_no, card, receipt_number(order), uow.now,
            external_id=external,
        )
    else:
        changed = order.fail_payment(cmd.payment_id, method, ECPAY_PROVIDER, amount, cmd.rtn_msg[:200] or "failed",
                                     card, uow.now, external_id=external)
    if changed:
        uow.add(order)
    return changed


# --- refunds --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefundItem:
    order_item_id: str
    quantity: int
    reason: str = ""


@dataclass(frozen=True)
class RefundOrder(Command):
    order_id: UUID
    actor_id: str
    is_admin: bool
    refund_id: str
    reason: str
    amount: Decimal | None
    full: bool
    items: tuple[RefundItem, ...] = ()
    gateway: Any = field(default=None, compare=False, repr=False)


def refund_order(uow: UnitOfWork, cmd: RefundOrder) -> tuple[Order, dict[str, Any]]:
    """Admins refund any order; a seller refunds its own items (or any amount when the whole
    order is its own). The buyer asks by cancelling, or asks the seller."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = role_in_order(order, cmd.actor_id, cmd.is_admin)
    if role is None:
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if role == "buyer":
        raise NotAllowed("refunds are issued by the seller or an admin; cancel the order or contact the seller")
    if role == "seller":
        own = all(i["sellerId"] == cmd.actor_id for i in order.items)
        foreign = [r.order_item_id for r in cmd.items
                   if (order.item(r.order_item_id) or {}).get("sellerId") not in (cmd.actor_id, None)]
        if foreign or (not own and (cmd.full or not cmd.items)):
            raise NotAllowed("a seller refunds its own items only (this order holds other sellers' items)")
    if cmd.amount is not None and cmd.amount != cmd.amount.quantize(CENT):
        raise DomainError("amount has more than 2 decimal places", field="amount.value")
    amount, items = order.plan_refund(
        cmd.amount, cmd.full, [(r.order_item_id, r.quantity, r.reason) for r in cmd.items]
    )
    transaction_id, payment_id = refund_transaction(cmd.gateway, order, cmd.refund_id, amount)
    order.record_refund(cmd.refund_id, amount, cmd.reason, items, transaction_id, payment_id, uow.now)
    uow.add(order)
    return order, {
        "refundId": cmd.refund_id, "orderId": str(order.id), "status": "COMPLETED", "amount": amount,
        "reason": cmd.reason, "processedAt": uow.now, "transactionId": transaction_id,
        "paymentStatus": order.payment_status, "items": items,
    }


HANDLERS = {
    StartCardPayment: start_card_payment,
    FinishCardPayment: finish_card_payment,
    RecordECPayNotice: record_ecpay_notice,
    RefundOrder: refund_order,
}
