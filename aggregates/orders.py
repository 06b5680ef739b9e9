"""Orders: the status machine of seeds/003, payments, refunds, fulfilment and the invoice.

CREATED → PAID → PROCESSING → SHIPPED → DELIVERED, and CANCELLED from CREATED, PAID or
PROCESSING (never once anything has shipped). COD orders may go CREATED → PROCESSING unpaid and
are paid on delivery. Checkout itself is in commands/orders.py: it prices the cart, redeems the
coupon and reserves stock, then calls :meth:`Order.place` with the result, all in one
transaction.

Payments, refunds, shipments and the invoice are events of the order, so one version check
keeps "paid once", "refunds never exceed what was paid", "items ship once" and "one invoice"
true under any concurrency, and the order's timeline shows every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, cast
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.accounts import NotAllowed
from aggregates.errors import Conflict, DomainError, NotFound
from aggregates.money import money, quantize

STATUSES = ("CREATED", "PAID", "PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED")
PAYMENT_METHODS = ("CREDIT_CARD", "DEBIT_CARD", "BANK_TRANSFER", "MOBILE_PAYMENT", "COD")
ONLINE_METHODS = ("BANK_TRANSFER", "MOBILE_PAYMENT")  # paid through ECPay's page
CARD_METHODS = ("CREDIT_CARD", "DEBIT_CARD")  # paid through the card gateway
#: The order's timers whose delay is a setting (unpaid expiry carries ``expires_at``).
SHIP_REMINDER_TIMER = "ship-reminder"
AUTO_DELIVER_TIMER = "auto-deliver"
TRANSITIONS: dict[str, frozenset[str]] = {
    "CREATED": frozenset({"PAID", "PROCESSING", "CANCELLED"}),
    "PAID": frozenset({"PROCESSING", "CANCELLED"}),
    "PROCESSING": frozenset({"SHIPPED", "CANCELLED"}),
    "SHIPPED": frozenset({"DELIVERED"}),
    "DELIVERED": frozenset(),
    "CANCELLED": frozenset(),
}
CANCELLABLE = frozenset({"CREATED", "PAID", "PROCESSING"})
#: A card payment in flight blocks a second one (and cancel/expiry) for at most this long.
PAYMENT_LEASE = timedelta(minutes=2)
#: Reasons of refunds of money that was never owed for the goods (a second payment, a payment
#: of more than was due): they give back no sale, no points.
UNOWED_REFUNDS = ("DUPLICATE_PAYMENT", "OVERPAID")
#: Shipment statuses of seeds/003; a shipment moves forward along FLOW, or to EXCEPTION and
#: back onto the road from there. It is created SHIPPED (POST .../shipments means it left).
SHIPMENT_STATUSES = (
    "PROCESSING",
    "SHIPPED",
    "IN_TRANSIT",
    "OUT_FOR_DELIVERY",
    "DELIVERED",
    "EXCEPTION",
)
SHIPMENT_FLOW = ("PROCESSING", "SHIPPED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")


class OrderNotFound(NotFound):
    pass


class InvalidOrderStatus(Conflict):
    """The transition is not allowed from the current status (409 INVALID_ORDER_STATUS)."""


class UnknownOrderStatus(DomainError):
    """Not one of the six statuses (400)."""


class CartEmpty(NotFound):
    """Nothing to check out (404)."""


class ProductUnavailable(DomainError):
    """A product in the cart is delisted, suspended, or its seller cannot sell (422)."""


class RefundFailed(DomainError):
    """More than what was paid minus refunded, or items beyond what was bought (422 REFUND_FAILED)."""


class ShipmentNotFound(NotFound):
    pass


class InvalidShipmentStatus(Conflict):
    """The shipment cannot move to that status from where it is (409)."""


class InvoiceAlreadyExists(Conflict):
    pass


class InvoiceNotFound(NotFound):
    pass


class InvalidInvoiceStatus(Conflict):
    """The invoice is VOID already (409)."""


@dataclass(frozen=True)
class CancelledUnits:
    """What :meth:`Order.cancel_units` did: the units (none when the whole order was
    cancelled), the refund due (None: nothing to pay back) and its id."""

    items: list[dict[str, Any]]
    refund_due: Decimal | None
    refund_id: str | None
    whole: bool


class Order(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Placed: ClassVar[Any]
        StatusChanged: ClassVar[Any]
        PaymentStarted: ClassVar[Any]
        PaymentCompleted: ClassVar[Any]
        PaymentFailed: ClassVar[Any]
        RefundRequested: ClassVar[Any]
        Refunded: ClassVar[Any]
        RefundFailed: ClassVar[Any]
        Expired: ClassVar[Any]
        Cancelled: ClassVar[Any]
        Processed: ClassVar[Any]
        ShipmentCreated: ClassVar[Any]
        ShipmentStatusChanged: ClassVar[Any]
        Delivered: ClassVar[Any]
        ShipReminderSent: ClassVar[Any]
        DeadlineSet: ClassVar[Any]
        InvoiceIssued: ClassVar[Any]
        InvoiceVoided: ClassVar[Any]
        CorrectedInvoiceIssued: ClassVar[Any]
        PaymentMethodChosen: ClassVar[Any]
        AdminStatusUpdated: ClassVar[Any]
        UnitsCancelled: ClassVar[Any]

    @event("Placed")
    def __init__(
        self,
        order_number: str,
        buyer_id: str,
        items: list[dict[str, Any]],
        subtotal: Decimal,
        discount: Decimal,
        coupon_code: str | None,
        tax: Decimal,
        shipping: Decimal,
        shipping_method: str,
        total: Decimal,
        shipping_address: dict[str, Any],
        billing_address: dict[str, Any],
        payment_method: str,
        notes: str,
        at: datetime,
        expires_at: datetime | None,
        points_redeemed: int = 0,  # loyalty points spent on the discount (not with a coupon)
    ) -> None:
        self.order_number = order_number
        self.buyer_id = buyer_id
        self.items = items
        self.seller_ids = sorted({i["sellerId"] for i in items})
        self.subtotal = subtotal
        self.discount = discount
        self.coupon_code = coupon_code
        self.points_redeemed = points_redeemed
        self.tax = tax
        self.shipping = shipping
        self.shipping_method = shipping_method
        self.total = total
        self.payment_method = payment_method
        self.created_at = at
        self.expires_at = expires_at
        self.status = "CREATED"
        self.payment_status = "PENDING"
        self.cancelled_at: datetime | None = None
        # payments and refunds
        self.payments: list[dict[str, Any]] = []
        self.pending_payment: dict[str, Any] | None = None
        self.external_ids: set[str] = set()  # e.g. ECPay TradeNo already recorded
        self.paid_amount = Decimal(0)
        self.refunded_amount = Decimal(0)
        self.paid_at: datetime | None = None
        self.refunded_qty: dict[str, int] = {}
        #: refund id -> the refund asked of the gateway and not yet confirmed (its amount is
        #: held: never refundable twice while the gateway works)
        self.pending_refunds: dict[str, dict[str, Any]] = {}
        # fulfilment
        self.processed_sellers: set[str] = set()
        self.shipped_qty: dict[str, int] = {}
        self.shipments: dict[str, dict[str, Any]] = {}
        self.carrier_delivered_at: datetime | None = None
        self.delivered_at: datetime | None = None
        self.reminded = False
        self.invoice: dict[str, Any] | None = None
        #: timer -> {"from": its clock's start, "due": when it falls due} (DeadlineSet)
        self.deadlines: dict[str, dict[str, datetime]] = {}
        #: order item id -> units cancelled before shipping (:meth:`cancel_units`), and their
        #: price, discount share, tax and value added up
        self.cancelled_qty: dict[str, int] = {}
        #: order item id -> those of the cancelled units that were cancelled before payment
        #: (never paid for, so never refundable by item), and their value
        self.unpaid_cancelled_qty: dict[str, int] = {}
        self.unpaid_cancelled_value = Decimal(0)
        self.unowed_refunded = Decimal(0)  # refunded for UNOWED_REFUNDS reasons
        #: refund id -> units a refund by items cancels once it is paid back
        #: (:meth:`cancel_refunded_units`), and who asked
        self.refund_cancels: dict[str, dict[str, Any]] = {}
        self.cancelled_parts = (Decimal(0), Decimal(0), Decimal(0), Decimal(0))

    @classmethod
    def place(cls, order_id: UUID, **fields: Any) -> Order:
        """Create with a chosen id (the paymentUrl names it before the save)."""
        fields.setdefault("points_redeemed", 0)
        return cls._create(cls.Placed, id=order_id, **fields)

    # --- who and what --------------------------------------------------------------------
    def involves_seller(self, seller_id: str) -> bool:
        return seller_id in self.seller_ids

    def item(self, order_item_id: str) -> dict[str, Any] | None:
        return next((i for i in self.items if i["orderItemId"] == order_item_id), None)

    def unshipped(self, item: dict[str, Any]) -> int:
        """Units still to ship: ordered, less shipped, less cancelled (a refund by items
        does not count: it is money back, the goods may still go)."""
        item_id = item["orderItemId"]
        return (
            int(item["quantity"])
            - self.shipped_qty.get(item_id, 0)
            - self.cancelled_qty.get(item_id, 0)
        )

    def refundable_units(self, item: dict[str, Any]) -> int:
        """Units of an item a refund by items may still cover: not refunded (or held for a
        refund) and not cancelled before payment."""
        item_id = item["orderItemId"]
        return (
            int(item["quantity"])
            - self.refunded_qty.get(item_id, 0)
            - self.unpaid_cancelled_qty.get(item_id, 0)
        )

    def cancellable(self, item: dict[str, Any]) -> int:
        """Units that :meth:`cancel_units` may still take: unshipped and not refunded
        (refunded units' money is back already; they may still ship)."""
        refunded_left = int(item["quantity"]) - self.refunded_qty.get(item["orderItemId"], 0)
        return max(0, min(self.unshipped(item), refunded_left))

    @property
    def fully_shipped(self) -> bool:
        return all(self.unshipped(i) == 0 for i in self.items)

    @property
    def amount_due(self) -> Decimal:
        """What paying the order takes: its total less the value of the units cancelled
        before payment (:meth:`cancel_units`)."""
        return max(Decimal(0), self.total - self.cancelled_parts[3])

    def taken_off(self) -> tuple[Decimal, Decimal]:
        """(what the order was to bring in, how much of it was taken off): refunds and units
        cancelled before payment count, money never owed (:data:`UNOWED_REFUNDS`) does not.
        What loyalty points spent on the order come back by."""
        paid = self.paid_amount - self.unowed_refunded if self.paid_amount > 0 else self.amount_due
        gone = self.refunded_amount - self.unowed_refunded + self.unpaid_cancelled_value
        return paid + self.unpaid_cancelled_value, gone

    @property
    def refundable(self) -> Decimal:
        held = sum((r["amount"] for r in self.pending_refunds.values()), Decimal(0))
        return self.paid_amount - self.refunded_amount - held

    def next_receipt_number(self) -> str:
        """R + order number + the count of money received (failed attempts get none)."""
        received = sum(1 for p in self.payments if p["status"] == "COMPLETED")
        return f"R{self.order_number}-{received + 1}"

    def next_payment_id(self) -> str:
        """A payment id derived from the order (for payments no client named: manual, COD)."""
        return str(uuid5(self.id, f"payment-{len(self.payments) + 1}"))

    # --- admin status changes ------------------------------------------------------------
    def change_status(
        self, status: str, notes: str, at: datetime, notify_customer: bool = True
    ) -> None:
        """An admin moves the order along the status machine: PAID records a manual payment,
        PROCESSING processes every seller's items, DELIVERED closes a shipped order. SHIPPED
        comes from shipments and CANCELLED from cancel.

        The update itself is recorded first (``AdminStatusUpdated``: the notes, and whether
        the buyer is told), then the events of the transition."""
        if status not in STATUSES:
            raise UnknownOrderStatus(f"status must be one of {', '.join(STATUSES)}", field="status")
        if status == "CANCELLED":
            raise InvalidOrderStatus("cancel an order with PUT .../cancel", status=status)
        self._check_transition(status)
        if status == "SHIPPED":
            raise InvalidOrderStatus(
                "an order is SHIPPED once every item has a shipment: POST .../shipments",
                current=self.status,
                requested=status,
            )
        self.record_admin_update(status, notes, notify_customer, at)
        if status == "PAID":
            self.complete_payment(
                self.next_payment_id(),
                self.payment_method,
                "MANUAL",
                self.amount_due,
                None,
                None,
                self.next_receipt_number(),
                at,
            )
        elif status == "PROCESSING":
            self.process(self.seller_ids, "admin", None, None, notes, at)
        else:  # DELIVERED
            self._delivered("admin", at)

    def record_admin_update(
        self, status: str, notes: str, notify_customer: bool, at: datetime
    ) -> None:
        """``PUT .../status``'s notes and ``notifyCustomer``, kept for every transition (the
        transition's own events follow in the same transaction)."""
        self._check_transition(status)
        self._admin_status_updated(status, self.status, notes, notify_customer, at)

    @event("AdminStatusUpdated")
    def _admin_status_updated(
        self, status: str, previous: str, notes: str, notify_customer: bool, at: datetime
    ) -> None:
        pass  # the transition's events change the order

    def _check_transition(self, status: str) -> None:
        if status not in TRANSITIONS[self.status]:
            raise InvalidOrderStatus(
                f"an order cannot go from {self.status} to {status}",
                current=self.status,
                requested=status,
            )

    @event("StatusChanged")
    def _status_changed(self, status: str, previous: str, notes: str, at: datetime) -> None:
        # Kept for orders recorded before payments and shipments were events of their own.
        self.status = status
        if status == "PAID":
            self.payment_status = "COMPLETED"
            self.paid_amount = self.total
            self.paid_at = at

    # --- payments ------------------------------------------------------------------------
    def payment_in_progress(self, now: datetime) -> bool:
        return self.pending_payment is not None and now - self.pending_payment["at"] < PAYMENT_LEASE

    def check_payable(self, amount: Decimal | None, now: datetime) -> None:
        if self.status == "CANCELLED":
            raise InvalidOrderStatus(
                "the order is cancelled", current=self.status, reason="CANCELLED"
            )
        if self.paid_amount > 0 or self.payment_status == "COMPLETED":
            raise InvalidOrderStatus(
                "the order is already paid", current=self.status, reason="ALREADY_PAID"
            )
        if self.status != "CREATED":
            raise InvalidOrderStatus(
                f"a {self.status} order is paid on delivery", current=self.status
            )
        if self.payment_in_progress(now):
            raise InvalidOrderStatus(
                "a payment of this order is in progress", reason="PAYMENT_IN_PROGRESS"
            )
        self._check_amount(amount)

    def _check_amount(self, amount: Decimal | None) -> None:
        if amount is not None and amount != self.amount_due:
            raise DomainError(
                f"amount must equal the amount due ({self.amount_due})",
                field="amount.value",
                expected=money(self.amount_due),
            )

    def start_payment(
        self,
        payment_id: str,
        method: str,
        provider: str,
        amount: Decimal,
        card: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        """Claim the order for one payment attempt before asking the gateway: a second attempt
        racing this one is refused instead of charging the buyer twice."""
        if self.payment_method in ONLINE_METHODS:
            # ECPay may have given the buyer an ATM or store code already: a card must not
            # pay the order a second time.
            raise DomainError(
                f"this order is paid by {self.payment_method} through ECPay at its paymentUrl",
                field="paymentMethod",
            )
        self.check_payable(amount, at)
        self._payment_started(payment_id, method, provider, amount, card, at)

    def choose_payment_method(
        self, method: str, at: datetime, amount: Decimal | None = None
    ) -> bool:
        """The buyer pays another way than chosen at checkout (seeds/003 accepts every method
        on ``POST .../payments``). Allowed while the order is unpaid, unprocessed and no payment
        runs. A cash-on-delivery order is not moved to ECPay (it has no unpaid-order deadline
        to expire by); it may still be paid by card before it ships, as before. An ECPay
        order is not paid by card (see :meth:`start_payment`). Choosing COD ends the unpaid-order deadline (COD orders do not expire) and starts the
        ship-reminder clock from placement. False (no event) when the method is unchanged."""
        if method not in PAYMENT_METHODS:
            raise DomainError(
                f"paymentMethod must be one of {', '.join(PAYMENT_METHODS)}", field="paymentMethod"
            )
        unpaid_cod = self.paid_amount == 0 and self.status in ("CREATED", "PROCESSING")
        if method == "COD" == self.payment_method and unpaid_cod:
            self._check_amount(amount)
            return False  # on record since checkout (COD orders are processed unpaid)
        self.check_payable(amount, at)
        if method == self.payment_method:
            return False
        if self.payment_method == "COD" and method in ONLINE_METHODS:
            raise InvalidOrderStatus(
                "a cash-on-delivery order is paid to the carrier, or by card before it ships",
                current=self.status,
                reason="COD_ORDER",
            )
        self._payment_method_chosen(method, self.payment_method, self.created_at, at)
        return True

    @event("PaymentMethodChosen")
    def _payment_method_chosen(
        self, method: str, previous: str, placed_at: datetime, at: datetime
    ) -> None:
        self.payment_method = method
        if method == "COD":
            self.expires_at = None

    @event("PaymentStarted")
    def _payment_started(
        self,
        payment_id: str,
        method: str,
        provider: str,
        amount: Decimal,
        card: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        self.pending_payment = {"paymentId": payment_id, "at": at}

    def complete_payment(
        self,
        payment_id: str,
        method: str,
        provider: str,
        amount: Decimal,
        transaction_id: str | None,
        card: dict[str, Any] | None,
        receipt_number: str,
        at: datetime,
        external_id: str | None = None,
    ) -> bool:
        """Record money received. An unpaid order becomes PAID; a COD order keeps its status
        (paid on delivery). Money that arrives for a cancelled or already paid order is
        recorded too (it was taken) and stays refundable. False if ``external_id`` was
        recorded before (a repeated gateway notice), or if this payment id completed already
        (the request that charged and the payment-recovery rule both recording one answer)."""
        if external_id is not None and external_id in self.external_ids:
            return False
        if self.payment_outcome(payment_id) == "COMPLETED":
            return False
        status = "PAID" if self.status == "CREATED" else self.status
        payment_status = _payment_status(self.paid_amount + amount, self.refunded_amount)
        self._payment_completed(
            payment_id,
            method,
            provider,
            amount,
            transaction_id,
            card,
            receipt_number,
            external_id,
            status,
            at,
            previous_status=self.status,
            payment_status=payment_status,
        )
        return True

    @event("PaymentCompleted")
    def _payment_completed(
        self,
        payment_id: str,
        method: str,
        provider: str,
        amount: Decimal,
        transaction_id: str | None,
        card: dict[str, Any] | None,
        receipt_number: str,
        external_id: str | None,
        status: str,
        at: datetime,
        previous_status: str = "CREATED",
        payment_status: str = "COMPLETED",
    ) -> None:
        self.payments.append(
            {
                "paymentId": payment_id,
                "status": "COMPLETED",
                "amount": amount,
                "at": at,
                "provider": provider,
                "transactionId": transaction_id,
                "method": method,
                "receiptNumber": receipt_number,
            }
        )
        if self.pending_payment is not None and self.pending_payment["paymentId"] == payment_id:
            self.pending_payment = None
        if external_id is not None:
            self.external_ids.add(external_id)
        self.paid_amount += amount
        if self.paid_at is None:
            self.paid_at = at
        self.status = status
        self.payment_status = payment_status

    def fail_payment(
        self,
        payment_id: str,
        method: str,
        provider: str,
        amount: Decimal,
        reason: str,
        card: dict[str, Any] | None,
        at: datetime,
        external_id: str | None = None,
    ) -> bool:
        """Record a failed attempt. False if ``external_id`` was recorded before, or if this
        payment id has an outcome already (a late or repeated answer changes nothing; money
        that was taken after all is recorded by :meth:`complete_payment`)."""
        if external_id is not None and external_id in self.external_ids:
            return False
        if self.payment_outcome(payment_id) is not None:
            return False
        payment_status = "FAILED" if self.paid_amount == 0 else self.payment_status
        self._payment_failed(
            payment_id,
            method,
            provider,
            amount,
            reason,
            card,
            external_id,
            at,
            payment_status=payment_status,
        )
        return True

    @event("PaymentFailed")
    def _payment_failed(
        self,
        payment_id: str,
        method: str,
        provider: str,
        amount: Decimal,
        reason: str,
        card: dict[str, Any] | None,
        external_id: str | None,
        at: datetime,
        payment_status: str = "FAILED",
    ) -> None:
        self.payments.append(
            {
                "paymentId": payment_id,
                "status": "FAILED",
                "amount": amount,
                "at": at,
                "provider": provider,
                "transactionId": None,
                "method": method,
                "receiptNumber": None,
            }
        )
        if self.pending_payment is not None and self.pending_payment["paymentId"] == payment_id:
            self.pending_payment = None
        if external_id is not None:
            self.external_ids.add(external_id)
        self.payment_status = payment_status

    def payment_outcome(self, payment_id: str) -> str | None:
        """COMPLETED if the payment id took money, FAILED if it only failed, None if it has
        no outcome (still running, or unknown)."""
        outcomes = {p["status"] for p in self.payments if p["paymentId"] == payment_id}
        if "COMPLETED" in outcomes:
            return "COMPLETED"
        return "FAILED" if outcomes else None

    def payment(self, payment_id: str) -> dict[str, Any] | None:
        """The payment's latest recorded outcome."""
        return next((p for p in reversed(self.payments) if p["paymentId"] == payment_id), None)

    def last_payment(self) -> dict[str, Any] | None:
        return next((p for p in reversed(self.payments) if p["status"] == "COMPLETED"), None)

    # --- refunds -------------------------------------------------------------------------
    def item_refund_value(self, item: dict[str, Any], quantity: int) -> Decimal:
        """An item's share of what was charged for goods: its subtotal after the order's
        discount, with tax (shipping is refunded only by amount or in full)."""
        goods = self.total - self.shipping
        if self.subtotal == 0:
            return Decimal(0)
        return quantize(Decimal(item["unitPrice"]) * quantity * goods / self.subtotal)

    def plan_refund(
        self, amount: Decimal | None, full: bool, items: list[tuple[str, int, str]]
    ) -> tuple[Decimal, list[dict[str, Any]]]:
        """Check a refund request; returns the amount and the items it covers."""
        if self.paid_amount == 0:
            raise InvalidOrderStatus(
                "nothing has been paid for this order", reason="NOT_PAID", current=self.status
            )
        remaining = self.refundable
        if remaining <= 0:
            raise RefundFailed("the order has been refunded in full", refundable=money(remaining))
        covered: list[dict[str, Any]] = []
        seen: set[str] = set()
        items_value = Decimal(0)
        for n, (item_id, quantity, reason) in enumerate(items):
            item = self.item(item_id)
            if item is None or item_id in seen:
                raise DomainError(
                    "unknown or repeated order item", field=f"refundItems[{n}].orderItemId"
                )
            seen.add(item_id)
            left = self.refundable_units(item)
            if quantity > left:
                raise RefundFailed(
                    f"only {left} unit(s) of that item are left to refund",
                    orderItemId=item_id,
                    refundableQuantity=left,
                )
            value = self.item_refund_value(item, quantity)
            items_value += value
            covered.append(
                {
                    "orderItemId": item_id,
                    "productId": item["productId"],
                    "quantity": quantity,
                    "amount": str(value),
                    "reason": reason,
                }
            )
        if full:
            if amount is not None and amount != remaining:
                raise DomainError(f"a full refund is {remaining}", field="amount.value")
            amount = remaining
        elif amount is None:
            if not covered:
                raise DomainError("give amount, refundItems or isFullRefund", field="amount")
            amount = items_value
        elif covered and amount > items_value:
            raise RefundFailed(f"the items are worth {items_value}", itemsValue=money(items_value))
        if amount <= 0:
            raise DomainError("the refund amount must be greater than 0", field="amount.value")
        if amount > remaining:
            raise RefundFailed(
                f"at most {remaining} can be refunded (paid {self.paid_amount}, refunded {self.refunded_amount})",
                refundable=money(remaining),
            )
        return amount, covered

    def refundable_payment(self, amount: Decimal) -> dict[str, Any] | None:
        """The payment a refund goes back to: the latest with enough left on it."""
        for p in reversed(self.payments):
            if p["status"] == "COMPLETED" and p["amount"] - p.get("refunded", Decimal(0)) >= amount:
                return cast("dict[str, Any]", p)
        return None

    def request_refund(
        self,
        refund_id: str,
        amount: Decimal,
        reason: str,
        items: list[dict[str, Any]],
        at: datetime,
        payment_id: str | None = None,
        cancels: Sequence[tuple[str, int]] = (),
        cancelled_by: str = "",
    ) -> dict[str, Any]:
        """Hold ``amount`` for a refund before the gateway is asked (a racing refund sees it
        held); returns the payment it goes back to. ``cancels``: units (of ``items``) that
        have not shipped, cancelled once the refund is paid back
        (:meth:`cancel_refunded_units`)."""
        if amount > self.refundable:
            raise RefundFailed(
                f"at most {self.refundable} can be refunded", refundable=money(self.refundable)
            )
        payment = (
            next((p for p in self.payments if p["paymentId"] == payment_id), None)
            if payment_id
            else self.refundable_payment(amount)
        )
        if payment is None:
            raise RefundFailed(
                "no single payment covers that amount: refund it in parts",
                refundable=money(self.refundable),
            )
        self._refund_requested(
            refund_id,
            amount,
            reason,
            items,
            payment["paymentId"],
            at,
            [[i, q] for i, q in cancels] or None,
            cancelled_by or None,
        )
        return payment

    @event("RefundRequested")
    def _refund_requested(
        self,
        refund_id: str,
        amount: Decimal,
        reason: str,
        items: list[dict[str, Any]],
        payment_id: str,
        at: datetime,
        cancels: list[list[Any]] | None = None,
        cancelled_by: str | None = None,
    ) -> None:
        if cancels:
            self.refund_cancels[refund_id] = {"units": cancels, "by": cancelled_by or "admin"}
        self.pending_refunds[refund_id] = {
            "amount": amount,
            "reason": reason,
            "items": items,
            "paymentId": payment_id,
        }
        for i in items:
            self.refunded_qty[i["orderItemId"]] = self.refunded_qty.get(i["orderItemId"], 0) + int(
                i["quantity"]
            )
        for p in self.payments:
            if p["paymentId"] == payment_id:
                p["refunded"] = p.get("refunded", Decimal(0)) + amount

    def complete_refund(self, refund_id: str, transaction_id: str, at: datetime) -> bool:
        """The gateway paid it back. False if it was recorded already (a repeated completion)."""
        pending = self.pending_refunds.get(refund_id)
        if pending is None:
            return False
        status = _payment_status(self.paid_amount, self.refunded_amount + pending["amount"])
        self._refunded(
            refund_id,
            pending["amount"],
            pending["reason"],
            pending["items"],
            transaction_id,
            pending["paymentId"],
            status,
            at,
        )
        if status == "REFUNDED":
            self._void_on("FULLY_REFUNDED", at)
        return True

    @event("Refunded")
    def _refunded(
        self,
        refund_id: str,
        amount: Decimal,
        reason: str,
        items: list[dict[str, Any]],
        transaction_id: str,
        payment_id: str | None,
        payment_status: str,
        at: datetime,
    ) -> None:
        self.refunded_amount += amount
        if reason in UNOWED_REFUNDS:
            self.unowed_refunded += amount
        if (
            self.pending_refunds.pop(refund_id, None) is None
        ):  # recorded in one step (before RefundRequested)
            for i in items:
                self.refunded_qty[i["orderItemId"]] = self.refunded_qty.get(
                    i["orderItemId"], 0
                ) + int(i["quantity"])
        self.payment_status = payment_status

    def fail_refund(self, refund_id: str, reason: str, at: datetime) -> bool:
        """The gateway refused: the held amount and items are refundable again."""
        if refund_id not in self.pending_refunds:
            return False
        self._refund_failed(refund_id, reason, at)
        return True

    @event("RefundFailed")
    def _refund_failed(self, refund_id: str, reason: str, at: datetime) -> None:
        self.refund_cancels.pop(refund_id, None)  # nothing paid back: the units still ship
        pending = self.pending_refunds.pop(refund_id)
        for i in pending["items"]:
            self.refunded_qty[i["orderItemId"]] -= int(i["quantity"])
        for p in self.payments:
            if p["paymentId"] == pending["paymentId"]:
                p["refunded"] = p.get("refunded", Decimal(0)) - pending["amount"]

    # --- cancellation and expiry ---------------------------------------------------------
    def cancel(self, reason: str, cancelled_by: str, notes: str, at: datetime) -> Decimal | None:
        """Cancel before anything ships; returns the amount due back if it was paid."""
        if self.status not in CANCELLABLE:
            raise InvalidOrderStatus(
                f"a {self.status} order cannot be cancelled",
                current=self.status,
                requested="CANCELLED",
            )
        if self.shipments:
            raise InvalidOrderStatus(
                "part of the order has shipped: ask for a refund instead",
                current=self.status,
                requested="CANCELLED",
                reason="PARTLY_SHIPPED",
            )
        if self.payment_in_progress(at):
            raise InvalidOrderStatus(
                "a payment of this order is in progress; try again in a moment",
                reason="PAYMENT_IN_PROGRESS",
            )
        if self.pending_refunds:
            raise InvalidOrderStatus(
                "a refund of this order is in progress; try again in a moment",
                reason="REFUND_IN_PROGRESS",
            )
        refund_due = self.refundable if self.refundable > 0 else None
        self._cancelled(reason, cancelled_by, notes, self.status, refund_due, at)
        self._void_on("ORDER_CANCELLED", at)
        return refund_due

    def cancel_units(
        self,
        items: list[tuple[str, int]],
        role: str,
        actor_id: str,
        reason: str,
        notes: str,
        at: datetime,
    ) -> CancelledUnits:
        """Cancel some unshipped units (``role``: buyer, seller, admin or system; a seller
        only its own items, the buyer only before anything ships).

        A paid order refunds the units' value. An unpaid one (awaiting payment, or cash on
        delivery) asks that much less: :attr:`amount_due` is what a payment must bring.

        Returns the units cancelled (with their value), the refund due (None when nothing is
        refundable) and its id, and whether this cancelled the whole order: taking every remaining unit
        of an order of which nothing has shipped is :meth:`cancel` (status CANCELLED, the
        refund is everything refundable, shipping included). Otherwise ``UnitsCancelled``:
        the order stops waiting for the units, and becomes SHIPPED if every unit left has
        shipped. The value of a unit is :meth:`item_refund_value` (its price less its pro-rata
        share of the discount, plus tax), at most what is still refundable."""
        if self.status in ("SHIPPED", "DELIVERED", "CANCELLED"):
            raise InvalidOrderStatus(
                f"a {self.status} order has no units left to cancel",
                current=self.status,
                requested="CANCELLED",
            )
        if self.payment_in_progress(at):
            raise InvalidOrderStatus(
                "a payment of this order is in progress; try again in a moment",
                reason="PAYMENT_IN_PROGRESS",
            )
        if self.pending_refunds:
            raise InvalidOrderStatus(
                "a refund of this order is in progress; try again in a moment",
                reason="REFUND_IN_PROGRESS",
            )
        if role == "buyer" and self.shipments:
            raise InvalidOrderStatus(
                "part of the order has shipped: ask the seller to cancel units, or a refund",
                current=self.status,
                reason="PARTLY_SHIPPED",
            )
        chosen: list[tuple[dict[str, Any], int]] = []
        seen: set[str] = set()
        for n, (item_id, quantity) in enumerate(items):
            item = self.item(item_id)
            if item is None or item_id in seen:
                raise DomainError("unknown or repeated order item", field=f"items[{n}].orderItemId")
            seen.add(item_id)
            if role == "seller" and item["sellerId"] != actor_id:
                raise NotAllowed("that item is another seller's", field=f"items[{n}].orderItemId")
            left = self.cancellable(item)
            if quantity > left:
                raise InvalidOrderStatus(
                    f"only {left} unit(s) of that item can be cancelled (not shipped, "
                    "cancelled or refunded)",
                    field=f"items[{n}].quantity",
                    orderItemId=item_id,
                    cancellable=left,
                    reason="NOTHING_TO_CANCEL",
                )
            chosen.append((item, quantity))
        taking = {i["orderItemId"]: q for i, q in chosen}
        remains = any(self.unshipped(i) > taking.get(i["orderItemId"], 0) for i in self.items)
        if not remains and not self.shipments:
            due = self.cancel(reason, role, notes, at)
            return CancelledUnits([], due, str(uuid5(self.id, "cancellation-refund")), True)
        cancelled = [self._units_value(i, q) for i, q in chosen]
        value = sum((Decimal(c["amount"]) for c in cancelled), Decimal(0))
        refund_due = min(value, self.refundable)
        refund_id = (
            str(uuid5(self.id, f"units-cancelled-{self.version}")) if refund_due > 0 else None
        )
        status, all_delivered = self._after_cancelling(remains)
        self._units_cancelled(
            cancelled,
            value,
            refund_id,
            refund_due if refund_id else None,
            reason,
            role,
            notes,
            status,
            all_delivered,
            at,
            self.paid_amount == 0,
        )
        return CancelledUnits(cancelled, refund_due if refund_id else None, refund_id, False)

    def unshipped_in_refund(self, items: list[dict[str, Any]]) -> list[tuple[str, int]]:
        """The units of a refund by items (:meth:`plan_refund`'s) that have not shipped: a
        refund counts first against an item's shipped units not refunded yet (a damaged
        parcel, a return); the units beyond those will not ship, they are cancelled by the
        refund (:meth:`cancel_refunded_units`)."""
        units = []
        for covered in items:
            item = self.item(covered["orderItemId"])
            assert item is not None
            item_id = item["orderItemId"]
            shipped = self.shipped_qty.get(item_id, 0)
            cancelled_and_refunded = self.cancelled_qty.get(
                item_id, 0
            ) - self.unpaid_cancelled_qty.get(item_id, 0)
            refunded_kept = self.refunded_qty.get(item_id, 0) - cancelled_and_refunded
            shipped_unrefunded = min(shipped, max(0, shipped - refunded_kept))
            quantity = int(covered["quantity"])
            beyond = min(quantity - min(quantity, shipped_unrefunded), self.unshipped(item))
            if beyond > 0:
                units.append((item_id, beyond))
        return units

    def cancel_refunded_units(self, refund_id: str, at: datetime) -> list[dict[str, Any]]:
        """A refund by items is paid back: the units it named that have not shipped (see
        :meth:`unshipped_in_refund`; fewer if some shipped meanwhile) stop waiting to ship
        (``UnitsCancelled`` naming the refund, reason ``REFUNDED``), and the order is SHIPPED
        if every unit left has shipped. Unlike :meth:`cancel_units` this never cancels the
        whole order (a refund is not a cancellation: cancel it to close it). Returns the
        units with their value (empty: nothing to do)."""
        planned = self.refund_cancels.get(refund_id)
        if planned is None or refund_id in self.pending_refunds:
            return []
        chosen = []
        for item_id, quantity in planned["units"]:
            item = self.item(item_id)
            if item is not None and (units := min(int(quantity), self.unshipped(item))) > 0:
                chosen.append((item, units))
        if not chosen:
            return []
        cancelled = [self._units_value(i, q) for i, q in chosen]
        value = sum((Decimal(c["amount"]) for c in cancelled), Decimal(0))
        taking = {i["orderItemId"]: q for i, q in chosen}
        remains = any(self.unshipped(i) > taking.get(i["orderItemId"], 0) for i in self.items)
        status, all_delivered = self._after_cancelling(remains)
        self._units_cancelled(
            cancelled,
            value,
            refund_id,
            None,
            "REFUNDED",
            planned["by"],
            "",
            status,
            all_delivered,
            at,
        )
        return cancelled

    def _after_cancelling(self, remains: bool) -> tuple[str, bool]:
        """The order's status once some units are cancelled, and whether every parcel left
        was delivered: SHIPPED when no unit is left to ship and something shipped."""
        if remains or not self.shipments:
            return self.status, False
        return "SHIPPED", all(s["status"] == "DELIVERED" for s in self.shipments.values())

    def _units_value(self, item: dict[str, Any], quantity: int) -> dict[str, Any]:
        """The units' price, discount share, tax and value (value = price - discount + tax,
        each part at least 0: the discount share never exceeds the price)."""
        price = quantize(Decimal(item["unitPrice"]) * quantity)
        value = self.item_refund_value(item, quantity)
        discount = (
            min(price, quantize(price * self.discount / self.subtotal))
            if self.subtotal
            else Decimal(0)
        )
        tax = max(Decimal(0), value - price + discount)
        return {
            "orderItemId": item["orderItemId"],
            "productId": item["productId"],
            "sellerId": item["sellerId"],
            "name": item["name"],
            "quantity": quantity,
            "subtotal": str(price),
            "discount": str(discount),
            "tax": str(tax),
            "amount": str(value),
        }

    @event("UnitsCancelled")
    def _units_cancelled(
        self,
        items: list[dict[str, Any]],
        amount: Decimal,
        refund_id: str | None,
        refund_due: Decimal | None,
        reason: str,
        cancelled_by: str,
        notes: str,
        status: str,
        all_delivered: bool,
        at: datetime,
        before_payment: bool = False,
    ) -> None:
        for i in items:
            self.cancelled_qty[i["orderItemId"]] = self.cancelled_qty.get(
                i["orderItemId"], 0
            ) + int(i["quantity"])
            if before_payment:
                self.unpaid_cancelled_qty[i["orderItemId"]] = self.unpaid_cancelled_qty.get(
                    i["orderItemId"], 0
                ) + int(i["quantity"])
        if before_payment:
            self.unpaid_cancelled_value += amount
        if refund_id is not None:
            self.refund_cancels.pop(refund_id, None)
        parts = [
            sum((Decimal(i[k]) for i in items), Decimal(0)) for k in ("subtotal", "discount", "tax")
        ]
        sub, disc, tax, value = self.cancelled_parts
        self.cancelled_parts = (sub + parts[0], disc + parts[1], tax + parts[2], value + amount)
        self.status = status
        if all_delivered:
            self.carrier_delivered_at = at

    def expire(self, at: datetime) -> bool:
        """The unpaid-order rule: cancel an unpaid order past its deadline. False (no event)
        when it was paid, cancelled, is COD, is being paid right now, or is not due yet: a late
        or duplicate job is harmless."""
        if self.status != "CREATED" or self.expires_at is None or at < self.expires_at:
            return False
        if self.payment_in_progress(at) or self.paid_amount > 0:
            return False
        self._expired(at)
        return True

    @event("Expired")
    def _expired(self, at: datetime) -> None:
        self.status = "CANCELLED"
        self.cancelled_at = at

    @event("Cancelled")
    def _cancelled(
        self,
        reason: str,
        cancelled_by: str,
        notes: str,
        previous: str,
        refund_due: Decimal | None,
        at: datetime,
    ) -> None:
        self.status = "CANCELLED"
        self.cancelled_at = at

    # --- fulfilment ----------------------------------------------------------------------
    def process(
        self,
        seller_ids: list[str],
        processed_by: str,
        warehouse_id: str | None,
        estimated_shipping_date: str | None,
        notes: str,
        at: datetime,
    ) -> list[str]:
        """Sellers start preparing their items; the order is PROCESSING. Returns the sellers
        newly processing."""
        unpaid_cod = self.status == "CREATED" and self.payment_method == "COD"
        if self.status not in ("PAID", "PROCESSING") and not unpaid_cod:
            hint = " (it is not paid yet)" if self.status == "CREATED" else ""
            raise InvalidOrderStatus(
                f"a {self.status} order cannot be processed{hint}",
                current=self.status,
                requested="PROCESSING",
            )
        todo = [s for s in seller_ids if s not in self.processed_sellers]
        if not todo:
            raise InvalidOrderStatus(
                "these items are already being processed",
                current=self.status,
                reason="ALREADY_PROCESSING",
            )
        self._processed(
            todo, processed_by, warehouse_id, estimated_shipping_date, notes, self.status, at
        )
        return todo

    @event("Processed")
    def _processed(
        self,
        seller_ids: list[str],
        processed_by: str,
        warehouse_id: str | None,
        estimated_shipping_date: str | None,
        notes: str,
        previous: str,
        at: datetime,
    ) -> None:
        self.processed_sellers.update(seller_ids)
        self.status = "PROCESSING"

    def ship(
        self,
        shipment_id: str,
        seller_ids: list[str] | None,
        carrier: str,
        tracking_number: str,
        tracking_url: str | None,
        items: list[tuple[str, int]] | None,
        shipped_by: str,
        shipping_date: str | None,
        package_info: dict[str, Any] | None,
        notes: str,
        estimated_delivery: datetime | None,
        at: datetime,
    ) -> list[dict[str, Any]]:
        """A parcel leaves with some of the items (all the caller's remaining ones by default).
        ``seller_ids`` limits which sellers' items may go (None: any, for admins)."""
        if self.status != "PROCESSING":
            hint = ": process it first" if self.status in ("CREATED", "PAID") else ""
            raise InvalidOrderStatus(
                f"a {self.status} order cannot ship{hint}", current=self.status, requested="SHIPPED"
            )
        if shipment_id in self.shipments:
            raise InvalidShipmentStatus("that shipment exists", shipmentId=shipment_id)
        mine = [i for i in self.items if seller_ids is None or i["sellerId"] in seller_ids]
        if items is None:
            chosen = [(i, self.unshipped(i)) for i in mine if self.unshipped(i) > 0]
            if not chosen:
                raise InvalidOrderStatus(
                    "nothing is left to ship", current=self.status, reason="NOTHING_TO_SHIP"
                )
        else:
            chosen = []
            seen: set[str] = set()
            for n, (item_id, quantity) in enumerate(items):
                item = self.item(item_id)
                if item is None or item_id in seen:
                    raise DomainError(
                        "unknown or repeated order item", field=f"items[{n}].orderItemId"
                    )
                if item not in mine:
                    raise NotAllowed(
                        "that item is another seller's to ship", field=f"items[{n}].orderItemId"
                    )
                seen.add(item_id)
                if quantity > self.unshipped(item):
                    raise InvalidOrderStatus(
                        f"only {self.unshipped(item)} unit(s) of that item are left to ship",
                        orderItemId=item_id,
                        remaining=self.unshipped(item),
                        reason="NOTHING_TO_SHIP",
                    )
                chosen.append((item, quantity))
        shipped = [
            {
                "orderItemId": i["orderItemId"],
                "productId": i["productId"],
                "sellerId": i["sellerId"],
                "name": i["name"],
                "quantity": q,
            }
            for i, q in chosen
        ]
        going = {i["orderItemId"]: q for i, q in chosen}
        fully = all(self.unshipped(i) == going.get(i["orderItemId"], 0) for i in self.items)
        self._shipment_created(
            shipment_id,
            carrier,
            tracking_number,
            tracking_url,
            shipped,
            shipped_by,
            shipping_date,
            package_info,
            notes,
            estimated_delivery,
            fully,
            at,
        )
        return shipped

    @event("ShipmentCreated")
    def _shipment_created(
        self,
        shipment_id: str,
        carrier: str,
        tracking_number: str,
        tracking_url: str | None,
        items: list[dict[str, Any]],
        shipped_by: str,
        shipping_date: str | None,
        package_info: dict[str, Any] | None,
        notes: str,
        estimated_delivery: datetime | None,
        fully_shipped: bool,
        at: datetime,
    ) -> None:
        for i in items:
            self.shipped_qty[i["orderItemId"]] = self.shipped_qty.get(i["orderItemId"], 0) + int(
                i["quantity"]
            )
        self.shipments[shipment_id] = {
            "status": "SHIPPED",
            "sellerIds": sorted({i["sellerId"] for i in items}),
            "items": items,
        }
        if fully_shipped:
            self.status = "SHIPPED"

    def shipment(self, shipment_id: str) -> dict[str, Any]:
        found = self.shipments.get(shipment_id)
        if found is None:
            raise ShipmentNotFound("shipment not found", shipmentId=shipment_id)
        return found

    def update_shipment(
        self,
        shipment_id: str,
        status: str,
        status_date: str | None,
        notes: str,
        location: dict[str, Any] | None,
        notify_customer: bool,
        at: datetime,
    ) -> bool:
        """The carrier's progress. Returns True when this made every shipment DELIVERED
        (the buyer's confirmation window starts; a COD order is paid now)."""
        shipment = self.shipment(shipment_id)
        if status not in SHIPMENT_STATUSES:
            raise DomainError(
                f"status must be one of {', '.join(SHIPMENT_STATUSES)}", field="status"
            )
        current = shipment["status"]
        if current == "DELIVERED":
            allowed = False
        elif status == "EXCEPTION":
            allowed = current != "EXCEPTION"
        elif current == "EXCEPTION":
            allowed = status in ("IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")
        else:
            allowed = SHIPMENT_FLOW.index(status) > SHIPMENT_FLOW.index(current)
        if not allowed:
            raise InvalidShipmentStatus(
                f"a shipment cannot go from {current} to {status}",
                current=current,
                requested=status,
                reason="INVALID_SHIPMENT_STATUS",
            )
        all_delivered = (
            status == "DELIVERED"
            and self.fully_shipped
            and all(
                s["status"] == "DELIVERED"
                for sid, s in self.shipments.items()
                if sid != shipment_id
            )
        )
        self._shipment_status_changed(
            shipment_id,
            status,
            current,
            status_date,
            notes,
            location,
            notify_customer,
            all_delivered,
            at,
        )
        return all_delivered

    @event("ShipmentStatusChanged")
    def _shipment_status_changed(
        self,
        shipment_id: str,
        status: str,
        previous: str,
        status_date: str | None,
        notes: str,
        location: dict[str, Any] | None,
        notify_customer: bool,
        all_delivered: bool,
        at: datetime,
    ) -> None:
        self.shipments[shipment_id]["status"] = status
        if all_delivered:
            self.carrier_delivered_at = at

    def confirm_receipt(self, at: datetime) -> bool:
        """The buyer confirms: DELIVERED, once the carrier has delivered every parcel. False
        (no event) when the order is DELIVERED already: a repeated confirmation, or one after
        the auto-delivery rule, answers as the first did."""
        if self.status == "DELIVERED":
            return False
        if self.status != "SHIPPED":
            raise InvalidOrderStatus(
                f"a {self.status} order cannot be confirmed as received",
                current=self.status,
                requested="DELIVERED",
            )
        if self.carrier_delivered_at is None:
            raise InvalidOrderStatus(
                "not every shipment has been delivered yet",
                current=self.status,
                reason="NOT_DELIVERED",
            )
        self._delivered("buyer", at)
        return True

    # --- timers ----------------------------------------------------------------------------
    def running_timers(self) -> dict[str, datetime]:
        """The timers whose clock runs now, with the moment each clock started: the ship
        reminder from payment (placement for COD) until it is sent, auto-delivery from the
        carrier's last delivery until the order is DELIVERED."""
        clocks: dict[str, datetime] = {}
        if self.status in ("CREATED", "PAID", "PROCESSING") and not self.reminded:
            start = self.created_at if self.payment_method == "COD" else self.paid_at
            if start is not None:
                clocks[SHIP_REMINDER_TIMER] = start
        if self.status == "SHIPPED" and self.carrier_delivered_at is not None:
            clocks[AUTO_DELIVER_TIMER] = self.carrier_delivered_at
        return clocks

    def set_deadlines(self, delays: dict[str, timedelta], at: datetime) -> None:
        """Record when each running timer falls due, once per clock start, with ``delays`` of
        the process handling the command: whichever process fires it later (other settings or
        not) fires it then. A changed setting applies to timers started afterwards."""
        for timer, start in self.running_timers().items():
            if timer in delays and self.deadlines.get(timer, {}).get("from") != start:
                self._deadline_set(timer, start, start + delays[timer], at)

    @event("DeadlineSet")
    def _deadline_set(
        self, timer: str, starts_at: datetime, due_at: datetime, at: datetime
    ) -> None:
        self.deadlines[timer] = {"from": starts_at, "due": due_at}

    def _due(self, timer: str, start: datetime, after: timedelta) -> datetime:
        """The recorded due time of the timer started at ``start``; orders recorded before
        timers carried it: ``start + after`` (the firing process's setting)."""
        recorded = self.deadlines.get(timer)
        if recorded is not None and recorded["from"] == start:
            return recorded["due"]
        return start + after

    def auto_deliver(self, now: datetime, after: timedelta) -> bool:
        """The auto-delivery rule: DELIVERED when its timer is due (``after`` the carrier
        delivered everything, as recorded), if the buyer has not confirmed. False (no event)
        when not due, already delivered, or stale."""
        if (
            self.status != "SHIPPED"
            or self.carrier_delivered_at is None
            or now < self._due(AUTO_DELIVER_TIMER, self.carrier_delivered_at, after)
        ):
            return False
        self._delivered("system", now)
        return True

    @event("Delivered")
    def _delivered(self, by: str, at: datetime) -> None:
        self.status = "DELIVERED"
        self.delivered_at = at

    def remind_ship(self, now: datetime, after: timedelta) -> list[str] | None:
        """The ship-reminder rule: once per order, ``after`` payment (placement for COD), remind
        the sellers whose items have not all shipped. None (no event) when not due, shipped,
        cancelled or sent."""
        clock: datetime | None
        if self.payment_method == "COD":  # paid to the carrier: the clock runs from placement
            clock, waiting = self.created_at, ("CREATED", "PROCESSING")
        else:
            clock, waiting = self.paid_at, ("PAID", "PROCESSING")
        if self.reminded or clock is None or self.status not in waiting:
            return None
        if now < self._due(SHIP_REMINDER_TIMER, clock, after):
            return None
        sellers = sorted({i["sellerId"] for i in self.items if self.unshipped(i) > 0})
        if not sellers:
            return None
        self._ship_reminder_sent(sellers, now)
        return sellers

    @event("ShipReminderSent")
    def _ship_reminder_sent(self, seller_ids: list[str], at: datetime) -> None:
        self.reminded = True

    # --- invoice -------------------------------------------------------------------------
    @property
    def valid_invoice(self) -> dict[str, Any] | None:
        """The order's ISSUED invoice, or None (none yet, or VOID)."""
        if self.invoice is not None and self.invoice.get("status", "ISSUED") == "ISSUED":
            return self.invoice
        return None

    def check_invoiceable(self) -> None:
        """One valid invoice at a time: a second is 409 until the first is VOID; the one
        after a void is a corrected invoice for what is left after refunds."""
        if (issued := self.valid_invoice) is not None:
            raise InvoiceAlreadyExists(
                "the order already has an invoice", invoiceNumber=issued["number"]
            )
        if self.status == "CANCELLED":
            raise InvalidOrderStatus("a cancelled order gets no invoice", current=self.status)
        if self.paid_amount == 0:
            raise InvalidOrderStatus(
                "an invoice is issued once the order is paid",
                current=self.status,
                reason="NOT_PAID",
            )
        if self.paid_amount - self.refunded_amount <= 0:
            raise InvalidOrderStatus(
                "the order is refunded in full: there is nothing to invoice",
                current=self.status,
                reason="FULLY_REFUNDED",
            )

    def corrected_amounts(self) -> dict[str, Any]:
        """A corrected invoice covers what was paid and not refunded (docs/API.md): shipping
        as charged (less any refund beyond the goods), the goods' tax extracted from the rest
        at the order's own tax ratio, discounts and refunds netted into the subtotal; the
        items are the units not refunded."""
        net = self.paid_amount - self.refunded_amount
        shipping = min(self.shipping, net)
        goods = net - shipping
        taxed = self.total - self.shipping  # what the order charged for goods, with tax
        tax = quantize(goods * self.tax / taxed) if taxed > 0 else Decimal(0)
        items = []
        for i in self.items:
            left = self.refundable_units(i)
            if left > 0:
                price = Decimal(i["unitPrice"])
                items.append({**i, "quantity": left, "subtotal": str(quantize(price * left))})
        return {
            "subtotal": goods - tax,
            "discount": Decimal(0),
            "tax": tax,
            "shipping": shipping,
            "total": net,
            "items": items,
        }

    def issue_invoice(
        self,
        invoice_id: str,
        invoice_number: str,
        invoice_date: str,
        due_date: str | None,
        recipient: dict[str, Any] | None,
        notes: str,
        at: datetime,
    ) -> None:
        self.check_invoiceable()
        if self.invoice is not None:  # the previous one is VOID
            amounts = self.corrected_amounts()
            self._corrected_invoice_issued(
                invoice_id,
                invoice_number,
                self.invoice["invoiceId"],
                invoice_date,
                due_date,
                recipient,
                notes,
                self.version,
                amounts["items"],
                amounts["subtotal"],
                amounts["discount"],
                amounts["tax"],
                amounts["shipping"],
                amounts["total"],
                at,
            )
            return
        self._invoice_issued(
            invoice_id,
            invoice_number,
            invoice_date,
            due_date,
            recipient,
            notes,
            self.version,
            *self.charged_amounts(),
            at,
        )

    def items_left(self) -> list[dict[str, Any]]:
        """The items with the units not cancelled (lines with none left are dropped)."""
        left = []
        for i in self.items:
            quantity = int(i["quantity"]) - self.cancelled_qty.get(i["orderItemId"], 0)
            if quantity > 0:
                price = Decimal(i["unitPrice"])
                left.append(
                    {**i, "quantity": quantity, "subtotal": str(quantize(price * quantity))}
                )
        return left

    def charged_amounts(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        """Subtotal, discount, tax, shipping and total of the units not cancelled (the
        order's own totals less what :meth:`cancel_units` took off)."""
        gone = self.cancelled_parts
        return (
            max(Decimal(0), self.subtotal - gone[0]),
            max(Decimal(0), self.discount - gone[1]),
            max(Decimal(0), self.tax - gone[2]),
            self.shipping,
            self.amount_due,
        )

    @event("InvoiceIssued")
    def _invoice_issued(
        self,
        invoice_id: str,
        invoice_number: str,
        invoice_date: str,
        due_date: str | None,
        recipient: dict[str, Any] | None,
        notes: str,
        order_version: int,
        subtotal: Decimal,
        discount: Decimal,
        tax: Decimal,
        shipping: Decimal,
        total: Decimal,
        at: datetime,
    ) -> None:
        self.invoice = {
            "invoiceId": invoice_id,
            "number": invoice_number,
            "status": "ISSUED",
            "corrects": None,
            "items": self.items_left(),
            "amounts": (subtotal, discount, tax, shipping, total),
        }

    @event("CorrectedInvoiceIssued")
    def _corrected_invoice_issued(
        self,
        invoice_id: str,
        invoice_number: str,
        corrects: str,
        invoice_date: str,
        due_date: str | None,
        recipient: dict[str, Any] | None,
        notes: str,
        order_version: int,
        items: list[dict[str, Any]],
        subtotal: Decimal,
        discount: Decimal,
        tax: Decimal,
        shipping: Decimal,
        total: Decimal,
        at: datetime,
    ) -> None:
        self.invoice = {
            "invoiceId": invoice_id,
            "number": invoice_number,
            "status": "ISSUED",
            "corrects": corrects,
            "items": items,
            "amounts": (subtotal, discount, tax, shipping, total),
        }

    def void_invoice(self, invoice_id: str, reason: str, at: datetime) -> None:
        """VOID the order's valid invoice (to issue a corrected one after a partial refund)."""
        if self.invoice is None or self.invoice["invoiceId"] != invoice_id:
            raise InvoiceNotFound("invoice not found", invoiceId=invoice_id)
        if self.valid_invoice is None:
            raise InvalidInvoiceStatus(
                "the invoice is VOID already", invoiceId=invoice_id, current="VOID"
            )
        self._invoice_voided(invoice_id, reason, at)

    def _void_on(self, reason: str, at: datetime) -> None:
        """Cancellation and a full refund VOID the valid invoice, if there is one."""
        if (issued := self.valid_invoice) is not None:
            self._invoice_voided(issued["invoiceId"], reason, at)

    @event("InvoiceVoided")
    def _invoice_voided(self, invoice_id: str, reason: str, at: datetime) -> None:
        assert self.invoice is not None
        self.invoice = {**self.invoice, "status": "VOID"}


def _payment_status(paid: Decimal, refunded: Decimal) -> str:
    if paid == 0:
        return "PENDING"
    if refunded == 0:
        return "COMPLETED"
    return "REFUNDED" if refunded >= paid else "PARTIALLY_REFUNDED"
