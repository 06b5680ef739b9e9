"""Cart, coupon and order commands. Checkout saves the order, the stock reservations, the
coupon redemption and the emptied cart in one transaction, each aggregate version-checked:
racing checkouts for the last units or the last coupon use cannot both succeed."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from aggregates.accounts import (
    Account,
    AccountNotFound,
    AlreadyTaken,
    EmailNotVerified,
    NotAllowed,
    UniqueKey,
)
from aggregates.cart import Cart
from aggregates.catalog import Category, Product, ProductNotFound
from aggregates.coupons import Coupon, CouponNotApplicable, normalize_code
from aggregates.inventory import InsufficientStock, Inventory
from aggregates.loyalty import LoyaltyRules
from aggregates.notifications import Inbox
from aggregates.order_view import fold
from aggregates.orders import (
    SHIP_REMINDER_TIMER,
    CartEmpty,
    Order,
    OrderNotFound,
    ProductUnavailable,
)
from aggregates.pricing import (
    DEFAULT_SHIPPING_FEES,
    DEFAULT_TAX_RATE,
    ORDER_LIMIT,
    Line,
    check_order_limit,
    compute_totals,
    shipping_fee,
)
from aggregates.taipei import local_date
from commands.bus import Command, Handler, UnitOfWork
from commands.catalog import InvalidReference, referenced
from commands.loyalty import redeem_points
from commands.outbox import OutgoingMail

#: Card payments go through the card gateway (the built-in sandbox by default).
CARD_PROVIDER = "SANDBOX"


def is_card_payment(payment: dict[str, Any] | None) -> bool:
    return payment is not None and payment["provider"] == CARD_PROVIDER


def manual_transaction_id(refund_id: str) -> str:
    """Money that came by ECPay ATM/mobile, cash on delivery or a manual entry goes back by bank
    transfer from finance (ECPay has no refund API for those methods): recorded at once."""
    return f"MANUAL-{refund_id.replace('-', '')[:20].upper()}"


@dataclass(frozen=True)
class PendingRefund:
    """A refund held on the order that the card gateway must still pay back."""

    order_id: UUID
    refund_id: str
    amount: Decimal
    payment_transaction_id: str


def start_refund(
    order: Order,
    refund_id: str,
    amount: Decimal,
    reason: str,
    items: list[dict[str, Any]],
    at: datetime,
    payment_id: str | None = None,
    cancels: Sequence[tuple[str, int]] = (),
    by: str = "",
) -> PendingRefund | None:
    """Hold the refund on the order; a refund of money that did not come by card is settled
    at once (None), a card refund waits for the gateway (the caller asks it after the commit).
    ``cancels``: units it cancels once paid back (``Order.cancel_refunded_units``)."""
    payment = order.request_refund(refund_id, amount, reason, items, at, payment_id, cancels, by)
    if is_card_payment(payment):
        return PendingRefund(order.id, refund_id, amount, payment["transactionId"])
    order.complete_refund(refund_id, manual_transaction_id(refund_id), at)
    return None


# --- cart -----------------------------------------------------------------------------------
def _cart(uow: UnitOfWork, buyer_id: str) -> Cart:
    return uow.find(Cart, Cart.create_id(buyer_id)) or Cart(buyer_id=buyer_id)


def _purchasable(uow: UnitOfWork, product_id: str) -> Product:
    try:
        product = uow.get(Product, UUID(product_id), ProductNotFound)
    except ValueError:
        raise ProductNotFound("product not found", productId=product_id) from None
    if not product.live:  # waiting for its first approval: not public at all
        raise ProductNotFound("product not found", productId=product_id)
    if not product.is_active:
        raise ProductUnavailable(
            f"{product.name} is not for sale", productId=product_id, reason=product.status.upper()
        )
    seller = uow.get(Account, UUID(product.seller_id), AccountNotFound)
    if seller.role != "seller" or not seller.can_list_products:
        raise ProductUnavailable(
            f"{product.name} is not for sale", productId=product_id, reason="SELLER_UNAVAILABLE"
        )
    return product


@dataclass(frozen=True)
class AddToCart(Command):
    buyer_id: str
    product_id: str
    quantity: int


def add_to_cart(uow: UnitOfWork, cmd: AddToCart) -> Cart:
    product = _purchasable(uow, cmd.product_id)
    cart = _cart(uow, cmd.buyer_id)
    cart.add(str(product.id), cmd.quantity)
    uow.add(cart)
    return cart


@dataclass(frozen=True)
class ChangeCartItem(Command):
    buyer_id: str
    product_id: str
    quantity: int


def change_cart_item(uow: UnitOfWork, cmd: ChangeCartItem) -> Cart:
    cart = _cart(uow, cmd.buyer_id)
    cart.change(cmd.product_id, cmd.quantity)
    uow.add(cart)
    return cart


@dataclass(frozen=True)
class RemoveCartItem(Command):
    buyer_id: str
    product_id: str


def remove_cart_item(uow: UnitOfWork, cmd: RemoveCartItem) -> Cart:
    cart = _cart(uow, cmd.buyer_id)
    cart.remove(cmd.product_id)
    uow.add(cart)
    return cart


# --- coupons --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateCoupon(Command):
    actor_id: str
    is_admin: bool
    code: str
    kind: str
    value: Decimal
    max_discount: Decimal | None = None
    min_spend: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_user_limit: int | None = None
    seller_id: str | None = None
    category_id: str | None = None


def create_coupon(uow: UnitOfWork, cmd: CreateCoupon) -> Coupon:
    seller_id = cmd.seller_id
    if not cmd.is_admin:
        # A seller's coupon covers its own products only.
        if seller_id is not None and seller_id != cmd.actor_id:
            raise NotAllowed("a seller can only create coupons for its own products")
        seller_id = cmd.actor_id
    elif seller_id is not None:
        seller = referenced(uow, Account, seller_id, "sellerId", "seller")
        if seller.role != "seller":
            raise InvalidReference("sellerId is not a seller", field="sellerId")
        seller_id = str(seller.id)
    category_id = None
    if cmd.category_id is not None:
        category_id = str(referenced(uow, Category, cmd.category_id, "categoryId", "category").id)
    if uow.exists(Coupon.create_id(cmd.code)):
        raise AlreadyTaken("a coupon with that code exists", field="code")
    coupon = Coupon.define(
        code=cmd.code,
        kind=cmd.kind,
        value=cmd.value,
        max_discount=cmd.max_discount,
        min_spend=cmd.min_spend,
        starts_at=cmd.starts_at,
        ends_at=cmd.ends_at,
        usage_limit=cmd.usage_limit,
        per_user_limit=cmd.per_user_limit,
        seller_id=seller_id,
        category_id=category_id,
        created_by=cmd.actor_id,
    )
    uow.add(coupon)
    return coupon


# --- checkout -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlaceOrder(Command):
    order_id: UUID
    buyer_id: str
    shipping_address: Mapping[str, Any]
    billing_address: Mapping[str, Any]
    payment_method: str
    shipping_method: str
    notes: str
    coupon_code: str | None
    unpaid_ttl: timedelta
    tax_rate: Decimal = DEFAULT_TAX_RATE
    shipping_fees: Mapping[str, Decimal] = field(
        default_factory=lambda: dict(DEFAULT_SHIPPING_FEES)
    )
    order_limit: Decimal = ORDER_LIMIT
    points: int = 0  # loyalty points to spend (1 point = NT$1; never with a coupon)
    loyalty: LoyaltyRules = field(default_factory=LoyaltyRules)


def _order_number(at: datetime) -> str:
    """Human-readable: SL + the Taipei date + 8 random digits (uniqueness is claimed below)."""
    return f"SL{local_date(at):%Y%m%d}{secrets.randbelow(10**8):08d}"


def _covered(uow: UnitOfWork, coupon: Coupon, product: Product) -> bool:
    if coupon.seller_id is not None and product.seller_id != coupon.seller_id:
        return False
    if coupon.category_id is not None:
        category = uow.get(Category, UUID(product.category_id))
        return coupon.category_id == str(category.id) or coupon.category_id in category.path
    return True


def place_order(uow: UnitOfWork, cmd: PlaceOrder) -> dict[str, Any]:
    """Check out the buyer's cart; returns the order document (seeds/003 shape)."""
    buyer = uow.get(Account, UUID(cmd.buyer_id), AccountNotFound)
    if not buyer.email_verified:
        raise EmailNotVerified("verify your email address before ordering")
    cart = uow.find(Cart, Cart.create_id(cmd.buyer_id))
    if cart is None or not cart.items:
        raise CartEmpty("the cart is empty", reason="CART_EMPTY")
    order_id = str(cmd.order_id)
    fee = shipping_fee(cmd.shipping_method, cmd.shipping_fees)

    products = [(_purchasable(uow, pid), qty) for pid, qty in cart.items.items()]
    # The price at this instant, decided by each product (a sale price in force, or the
    # regular price), never by a read model.
    prices = {p.id: p.price_at(uow.now) for p, _ in products}
    coupon = None
    discount = Decimal(0)
    if cmd.points:
        # The 20% cap is of the subtotal charged (sale prices included).
        subtotal = sum((Line(prices[p.id], qty).subtotal for p, qty in products), Decimal(0))
        discount = redeem_points(
            uow, cmd.buyer_id, order_id, cmd.points, subtotal, cmd.coupon_code, cmd.loyalty
        )
    elif cmd.coupon_code:
        coupon = uow.find(Coupon, Coupon.create_id(cmd.coupon_code))
        if coupon is None:
            raise CouponNotApplicable(
                "no coupon has that code",
                reason="UNKNOWN_CODE",
                couponCode=normalize_code(cmd.coupon_code),
            )
        # A coupon does not stack with a sale price (SPEC: no stacking with other discounts):
        # items on sale are not covered, and do not count towards its minimum spend.
        eligible = sum(
            (
                Line(prices[p.id], qty).subtotal
                for p, qty in products
                if _covered(uow, coupon, p) and p.sale_at(uow.now) is None
            ),
            Decimal(0),
        )
        discount = coupon.redeem(order_id, cmd.buyer_id, eligible, uow.now)
    totals = compute_totals(
        [Line(prices[p.id], qty) for p, qty in products], discount, fee, cmd.tax_rate
    )
    check_order_limit(totals, cmd.order_limit)

    inventories = []
    for product, qty in products:
        inventory = uow.find(Inventory, Inventory.create_id(str(product.id)))
        if inventory is None:
            raise InsufficientStock(
                f"{product.name}: only 0 unit(s) available, {qty} requested",
                productId=str(product.id),
                name=product.name,
                requested=qty,
                available=0,
            )
        if not inventory.listed:
            raise ProductUnavailable(
                f"{product.name} is not for sale", productId=str(product.id), reason="DELISTED"
            )
        try:
            inventory.reserve(order_id, qty, uow.now)
        except InsufficientStock as exc:
            raise InsufficientStock(
                f"{product.name}: {exc.message}", **exc.details, name=product.name
            ) from None
        inventories.append(inventory)

    items = [
        {
            "orderItemId": f"{order_id}-{n}",
            "productId": str(p.id),
            "sellerId": p.seller_id,
            "categoryId": p.category_id,
            "name": p.name,
            "quantity": qty,
            "unitPrice": str(prices[p.id]),
            "subtotal": str(Line(prices[p.id], qty).subtotal),
        }
        for n, (p, qty) in enumerate(products, start=1)
    ]
    number = _order_number(uow.now)
    expires_at = None if cmd.payment_method == "COD" else uow.now + cmd.unpaid_ttl
    order = Order.place(
        cmd.order_id,
        order_number=number,
        buyer_id=cmd.buyer_id,
        items=items,
        subtotal=totals.subtotal,
        discount=totals.discount,
        coupon_code=coupon.code if coupon else None,
        tax=totals.tax,
        shipping=totals.shipping,
        shipping_method=cmd.shipping_method,
        total=totals.total,
        shipping_address=dict(cmd.shipping_address),
        billing_address=dict(cmd.billing_address),
        payment_method=cmd.payment_method,
        notes=cmd.notes,
        at=uow.now,
        expires_at=expires_at,
        points_redeemed=cmd.points,
    )
    document = None
    for placed in order.pending_events:
        document = fold(document, placed)
    cart.check_out(order_id)
    uow.add(order, cart, *inventories, UniqueKey("order-number", number, cmd.order_id))
    if coupon is not None:
        uow.add(coupon)
    assert document is not None
    return document


# --- status and cancellation ----------------------------------------------------------------
@dataclass(frozen=True)
class UpdateOrderStatus(Command):
    order_id: UUID
    status: str
    notes: str
    notify_customer: bool = True


def update_order_status(uow: UnitOfWork, cmd: UpdateOrderStatus) -> Order:
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    order.change_status(cmd.status, cmd.notes, uow.now, cmd.notify_customer)
    uow.add(order)
    return order


@dataclass(frozen=True)
class CancelOrder(Command):
    order_id: UUID
    actor_id: str  # a user id, or "system:<rule>"
    is_admin: bool
    reason: str
    notes: str = ""
    #: Set by ``PUT .../status`` with CANCELLED: its notes and notifyCustomer are recorded
    #: (``AdminStatusUpdated``) before the cancellation.
    notify_customer: bool | None = None


def role_in_order(order: Order, actor_id: str, is_admin: bool) -> str | None:
    """How the caller relates to the order: admin, system, buyer, seller, or None."""
    if is_admin:
        return "admin"
    if actor_id.startswith("system:"):
        return "system"
    if order.buyer_id == actor_id:
        return "buyer"
    if order.involves_seller(actor_id):
        return "seller"
    return None


def cancel_order(
    uow: UnitOfWork, cmd: CancelOrder
) -> tuple[Order, dict[str, Any] | None, PendingRefund | None]:
    """Cancel, release stock and coupon, and refund what was paid in full, in one transaction
    (a card refund is held here and paid back by the gateway after the commit). Returns the
    order, the refund (None when nothing was paid) and what the gateway must still do."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = role_in_order(order, cmd.actor_id, cmd.is_admin)
    if role is None:  # another user's order is indistinguishable from a missing one
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if role == "seller" and any(i["sellerId"] != cmd.actor_id for i in order.items):
        raise NotAllowed(
            "this order also holds other sellers' items: ask the buyer or an admin to cancel it"
        )
    if cmd.notify_customer is not None:
        order.record_admin_update("CANCELLED", cmd.notes, cmd.notify_customer, uow.now)
    refund_due = order.cancel(cmd.reason, role, cmd.notes, uow.now)
    _release(uow, order, "ORDER_CANCELLED")
    refund, pending = None, None
    if refund_due is not None:
        refund_id = str(uuid5(order.id, "cancellation-refund"))
        pending = start_refund(order, refund_id, refund_due, "ORDER_CANCELLED", [], uow.now)
        refund = {
            "refundId": refund_id,
            "amount": refund_due,
            "status": "PENDING" if pending else "COMPLETED",
            "transactionId": None if pending else manual_transaction_id(refund_id),
            "processedAt": uow.now,
        }
    uow.add(order)
    return order, refund, pending


def _release(uow: UnitOfWork, order: Order, reason: str) -> None:
    """Give back the order's stock reservations and coupon use (same transaction)."""
    order_id = str(order.id)
    for product_id in sorted({i["productId"] for i in order.items}):
        inventory = uow.get(Inventory, Inventory.create_id(product_id))
        if inventory.release(order_id, reason, uow.now):
            uow.add(inventory)
    if order.coupon_code:
        coupon = uow.get(Coupon, Coupon.create_id(order.coupon_code))
        if coupon.release(order_id, reason, uow.now):
            uow.add(coupon)


def refund_and_cancel(
    uow: UnitOfWork,
    order: Order,
    refund_id: str,
    amount: Decimal,
    reason: str,
    items: list[dict[str, Any]],
    by: str,
) -> PendingRefund | None:
    """:func:`start_refund`, where a refund by items that pays their full value back before
    they shipped also cancels those units once it is paid back (at once, or when the gateway
    confirms it: ``SettleRefund``); their stock reservation goes with them. A smaller amount
    is a price adjustment: the goods still go."""
    cancels: list[tuple[str, int]] = []
    value = sum((Decimal(i["amount"]) for i in items), Decimal(0))
    if items and amount == value and order.status in ("PAID", "PROCESSING"):
        cancels = order.unshipped_in_refund(items)
    pending = start_refund(order, refund_id, amount, reason, items, uow.now, cancels=cancels, by=by)
    if pending is None:
        release_units(uow, order, order.cancel_refunded_units(refund_id, uow.now), "REFUNDED")
    return pending


def release_units(
    uow: UnitOfWork, order: Order, units: list[dict[str, Any]], reason: str = "UNITS_CANCELLED"
) -> None:
    """Give back the stock reservation of some units (``productId``, ``quantity``) only."""
    for product_id in sorted({i["productId"] for i in units}):
        quantity = sum(int(i["quantity"]) for i in units if i["productId"] == product_id)
        inventory = uow.get(Inventory, Inventory.create_id(product_id))
        if inventory.release(str(order.id), reason, uow.now, quantity):
            uow.add(inventory)


@dataclass(frozen=True)
class ExpireOrder(Command):
    """Sent by the unpaid-order rule (actor ``system:unpaid-expiry``); the order decides."""

    order_id: UUID


def expire_order(uow: UnitOfWork, cmd: ExpireOrder) -> bool:
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    if not order.expire(uow.now):
        return False
    _release(uow, order, "ORDER_EXPIRED")
    uow.add(order)
    return True


# --- timed rules (sent by the workers) ------------------------------------------------------
@dataclass(frozen=True)
class SendShipReminder(Command):
    """Sent by the ship-reminder rule (actor ``system:ship-reminder``); the order decides."""

    order_id: UUID
    after: timedelta


def send_ship_reminder(uow: UnitOfWork, cmd: SendShipReminder) -> list[str] | None:
    """Remind the sellers of a paid order not fully shipped ``after`` payment, once: the
    SHIP_REMINDER notification comes from the event, the email is written to the outbox here.
    Returns the sellers reminded, or None when there was nothing to do."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    sellers = order.remind_ship(uow.now, cmd.after)
    if not sellers:
        return None
    timer = order.deadlines.get(SHIP_REMINDER_TIMER)
    waited = cmd.after if timer is None else timer["due"] - timer["from"]
    days = round(waited.total_seconds() / 86400, 2)
    since = "placed" if order.payment_method == "COD" else "paid"
    for seller_id in sellers:
        seller = uow.find(Account, UUID(seller_id))
        if seller is None or not seller.email:
            continue
        units = sum(order.unshipped(i) for i in order.items if i["sellerId"] == seller_id)
        uow.send_mail(
            OutgoingMail(
                uuid5(order.id, f"ship-reminder-{seller_id}").hex,
                seller.email,
                f"Reminder: order {order.order_number} is waiting to ship",
                f"Order {order.order_number} was {since} {days:g} day(s) ago and {units} unit(s) of your "
                "products in it have not shipped yet. Please ship them or contact the buyer.\n",
            )
        )
    uow.add(order)
    return sellers


@dataclass(frozen=True)
class AutoDeliverOrder(Command):
    """Sent by the auto-delivery rule (actor ``system:auto-delivery``); the order decides."""

    order_id: UUID
    after: timedelta


def auto_deliver_order(uow: UnitOfWork, cmd: AutoDeliverOrder) -> bool:
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    if not order.auto_deliver(uow.now, cmd.after):
        return False
    uow.add(order)
    return True


# --- notifications --------------------------------------------------------------------------
@dataclass(frozen=True)
class MarkNotificationRead(Command):
    user_id: str
    notification_id: str


def mark_notification_read(uow: UnitOfWork, cmd: MarkNotificationRead) -> bool:
    inbox = uow.find(Inbox, Inbox.create_id(cmd.user_id)) or Inbox(user_id=cmd.user_id)
    changed = inbox.mark_read(cmd.notification_id, uow.now)
    uow.add(inbox)
    return changed


def timer_policy(delays: Mapping[str, timedelta]) -> Callable[[UnitOfWork], None]:
    """Whatever a command did to an order, a timer it started (payment, a COD order placed,
    the last parcel delivered) gets its due time recorded in the same transaction, from this
    process's settings (``delays``: timer -> delay), so every process fires it at that time."""
    chosen = dict(delays)

    def apply(uow: UnitOfWork) -> None:
        for aggregate in uow.pending:
            if isinstance(aggregate, Order):
                aggregate.set_deadlines(chosen, uow.now)

    return apply


HANDLERS: dict[type, Handler] = {
    AddToCart: add_to_cart,
    ChangeCartItem: change_cart_item,
    RemoveCartItem: remove_cart_item,
    CreateCoupon: create_coupon,
    PlaceOrder: place_order,
    UpdateOrderStatus: update_order_status,
    CancelOrder: cancel_order,
    ExpireOrder: expire_order,
    SendShipReminder: send_ship_reminder,
    AutoDeliverOrder: auto_deliver_order,
    MarkNotificationRead: mark_notification_read,
}
