"""Payment and refund commands.

A card payment is two commands around the gateway call: :class:`StartCardPayment` claims the
order for one attempt (a concurrent second attempt is refused before anyone is charged), the
gateway is asked outside any transaction, then :class:`FinishCardPayment` records the outcome.
ECPay's server notice is one command; the order remembers each ECPay TradeNo, so a repeated
notice records nothing new. A card refund is likewise held on the order first
(:class:`RefundOrder`, ``RefundRequested``: a racing refund sees the amount taken), the gateway
is asked after that commit (idempotent by refund id), and :class:`SettleRefund` records the
answer. The gateway is never called inside a transaction that a version conflict could retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID, uuid5

from aggregates.accounts import NotAllowed, UniqueKey
from aggregates.errors import DomainError
from aggregates.money import CENT, quantize
from aggregates.orders import UNOWED_REFUNDS, Order, OrderNotFound
from commands.bus import Command, Handler, UnitOfWork
from commands.orders import (
    CARD_PROVIDER,
    PendingRefund,
    manual_transaction_id,
    refund_and_cancel,
    release_units,
    role_in_order,
    start_refund,
)

ECPAY_PROVIDER = "ECPAY"
DUPLICATE_PAYMENT, OVERPAID = UNOWED_REFUNDS


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
class ChoosePaymentMethod(Command):
    """``POST .../payments`` with BANK_TRANSFER, MOBILE_PAYMENT or COD: the buyer pays that
    way (through ECPay's page, or to the carrier). No money moves here."""

    order_id: UUID
    buyer_id: str
    method: str
    amount: Decimal


def choose_payment_method(uow: UnitOfWork, cmd: ChoosePaymentMethod) -> Order:
    order = _buyers_order(uow, cmd.order_id, cmd.buyer_id)
    if order.choose_payment_method(cmd.method, uow.now, cmd.amount):
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


@dataclass(frozen=True)
class CardPaymentOutcome:
    order: Order
    payment: dict[str, Any] | None  # the payment, when approved
    #: Money taken for an order that was paid or cancelled meanwhile (the attempt outlived its
    #: lease): recorded, and refunded through the gateway after the commit.
    refund: PendingRefund | None = None
    #: The part of an approved payment beyond the amount due (units were cancelled while the
    #: attempt outlived its lease): the order is paid, the difference goes back to the card.
    excess: PendingRefund | None = None


def finish_card_payment(uow: UnitOfWork, cmd: FinishCardPayment) -> CardPaymentOutcome:
    """Record the gateway's answer. The same answer recorded twice (the request that charged
    and the payment-recovery rule) records it once: the order decides by payment id."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    refund = excess = None
    settled = order.payment_outcome(cmd.payment_id)
    if settled == "COMPLETED" or (settled == "FAILED" and not cmd.approved):
        return CardPaymentOutcome(
            order, order.payment(cmd.payment_id) if settled == "COMPLETED" else None
        )
    if cmd.approved:
        was_payable = order.status == "CREATED" and order.paid_amount == 0
        order.complete_payment(
            cmd.payment_id,
            cmd.method,
            CARD_PROVIDER,
            cmd.amount,
            cmd.transaction_id,
            cmd.card,
            receipt_number(order),
            uow.now,
        )
        if not was_payable:
            refund = return_unowed(order, cmd.payment_id, cmd.amount, uow)
        elif cmd.amount > order.amount_due:
            excess = return_overpaid(order, cmd.payment_id, cmd.amount - order.amount_due, uow)
    else:
        order.fail_payment(
            cmd.payment_id,
            cmd.method,
            CARD_PROVIDER,
            cmd.amount,
            cmd.decline_code or "declined",
            cmd.card,
            uow.now,
        )
    uow.add(order)
    return CardPaymentOutcome(
        order, order.last_payment() if cmd.approved and refund is None else None, refund, excess
    )


def return_unowed(
    order: Order, payment_id: str, amount: Decimal, uow: UnitOfWork
) -> PendingRefund | None:
    """Money received for an order that was already paid or cancelled goes straight back."""
    reason = "ORDER_CANCELLED" if order.status == "CANCELLED" else DUPLICATE_PAYMENT
    refund_id = str(uuid5(order.id, f"unowed-{payment_id}"))
    return start_refund(order, refund_id, amount, reason, [], uow.now, payment_id=payment_id)


def return_overpaid(
    order: Order, payment_id: str, excess: Decimal, uow: UnitOfWork
) -> PendingRefund | None:
    """A payment brought more than the amount due (it was asked before units were cancelled):
    the difference goes straight back (reason ``OVERPAID``: not a sale taken back)."""
    refund_id = str(uuid5(order.id, f"overpaid-{payment_id}"))
    return start_refund(order, refund_id, excess, OVERPAID, [], uow.now, payment_id=payment_id)


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


#: MerchantTradeNo = the order number (SL + 16 digits) + 2 letters/digits per checkout-page
#: visit: ECPay refuses a MerchantTradeNo it has seen, so every visit needs a fresh one.
ORDER_NUMBER_LENGTH = 18


def trade_number(order_number: str, attempt: str) -> str:
    return f"{order_number}{attempt}"


def order_for_trade(uow: UnitOfWork, merchant_trade_no: str) -> Order | None:
    if len(merchant_trade_no) != ORDER_NUMBER_LENGTH + 2:
        return None
    key = uow.find(
        UniqueKey, UniqueKey.create_id("order-number", merchant_trade_no[:ORDER_NUMBER_LENGTH])
    )
    return None if key is None else uow.find(Order, key.owner_id)


def record_ecpay_notice(uow: UnitOfWork, cmd: RecordECPayNotice) -> bool:
    """True if the notice recorded something new, False for a repeat."""
    order = order_for_trade(uow, cmd.merchant_trade_no)
    if order is None:
        raise ECPayNoticeRejected("unknown MerchantTradeNo")
    # The amount due, or what it was when the buyer got the code: units cancelled since make
    # it smaller, and the difference goes straight back (below).
    if not ecpay_amount(order.amount_due) <= cmd.trade_amount <= ecpay_amount(order.total):
        raise ECPayNoticeRejected("TradeAmt does not match the order")
    external = f"ecpay:{cmd.trade_no}"
    method = (
        order.payment_method
        if order.payment_method in ("BANK_TRANSFER", "MOBILE_PAYMENT")
        else "BANK_TRANSFER"
    )
    amount = Decimal(cmd.trade_amount)
    card = {"paymentType": cmd.payment_type}
    if cmd.paid:
        was_payable = order.status == "CREATED" and order.paid_amount == 0
        changed = order.complete_payment(
            cmd.payment_id,
            method,
            ECPAY_PROVIDER,
            amount,
            cmd.trade_no,
            card,
            receipt_number(order),
            uow.now,
            external_id=external,
        )
        if changed and not was_payable:  # e.g. an ATM transfer after the order expired: pay it back
            return_unowed(order, cmd.payment_id, amount, uow)
        elif changed and cmd.trade_amount > (due := ecpay_amount(order.amount_due)):
            # a code issued before units were cancelled: the difference goes back
            return_overpaid(order, cmd.payment_id, Decimal(cmd.trade_amount - due), uow)
    else:
        changed = order.fail_payment(
            cmd.payment_id,
            method,
            ECPAY_PROVIDER,
            amount,
            cmd.rtn_msg[:200] or "failed",
            card,
            uow.now,
            external_id=external,
        )
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


def refund_order(
    uow: UnitOfWork, cmd: RefundOrder
) -> tuple[Order, dict[str, Any], PendingRefund | None]:
    """Admins refund any order; a seller refunds its own items (or any amount when the whole
    order is its own). The buyer asks by cancelling, or asks the seller. The amount is held on
    the order in this transaction; a card refund is paid back by the gateway after it."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = role_in_order(order, cmd.actor_id, cmd.is_admin)
    if role is None:
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if role == "buyer":
        raise NotAllowed(
            "refunds are issued by the seller or an admin; cancel the order or contact the seller"
        )
    if role == "seller":
        own = all(i["sellerId"] == cmd.actor_id for i in order.items)
        foreign = [
            r.order_item_id
            for r in cmd.items
            if (order.item(r.order_item_id) or {}).get("sellerId") not in (cmd.actor_id, None)
        ]
        if foreign or (not own and (cmd.full or not cmd.items)):
            raise NotAllowed(
                "a seller refunds its own items only (this order holds other sellers' items)"
            )
    if cmd.amount is not None and cmd.amount != cmd.amount.quantize(CENT):
        raise DomainError("amount has more than 2 decimal places", field="amount.value")
    amount, items = order.plan_refund(
        cmd.amount, cmd.full, [(r.order_item_id, r.quantity, r.reason) for r in cmd.items]
    )
    pending = refund_and_cancel(uow, order, cmd.refund_id, amount, cmd.reason, items, role)
    uow.add(order)
    return (
        order,
        {
            "refundId": cmd.refund_id,
            "orderId": str(order.id),
            "status": "PENDING" if pending else "COMPLETED",
            "amount": amount,
            "reason": cmd.reason,
            "processedAt": uow.now,
            "transactionId": None if pending else manual_transaction_id(cmd.refund_id),
            "paymentStatus": order.payment_status,
            "items": items,
        },
        pending,
    )


@dataclass(frozen=True)
class SettleRefund(Command):
    """The gateway's answer to a held refund: paid back (``transaction_id``) or refused."""

    order_id: UUID
    refund_id: str
    transaction_id: str | None
    failure: str | None = None


def settle_refund(uow: UnitOfWork, cmd: SettleRefund) -> Order:
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    if cmd.transaction_id is not None:
        changed = order.complete_refund(cmd.refund_id, cmd.transaction_id, uow.now)
        if changed:
            cancelled = order.cancel_refunded_units(cmd.refund_id, uow.now)
            release_units(uow, order, cancelled, "REFUNDED")
    else:
        changed = order.fail_refund(cmd.refund_id, cmd.failure or "gateway error", uow.now)
    if changed:
        uow.add(order)
    return order


HANDLERS: dict[type, Handler] = {
    StartCardPayment: start_card_payment,
    ChoosePaymentMethod: choose_payment_method,
    FinishCardPayment: finish_card_payment,
    RecordECPayNotice: record_ecpay_notice,
    RefundOrder: refund_order,
    SettleRefund: settle_refund,
}
