"""Notifications read model: what each user is told, newest first, and whether it was read.

Built from the events that matter to someone: an order placed (its sellers, at once), paid
(buyer and sellers), a failed payment, a refund, a parcel shipped or updated, delivered,
cancelled or expired, a ship reminder (sellers), a seller application approved. Each
notification's id is the event's position plus the recipient, so a rebuild gives the same ids.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from aggregates.accounts import Account
from aggregates.catalog import Product
from aggregates.disputes import Dispute, SellerDisputeRecord
from aggregates.inventory import Inventory
from aggregates.messages import Conversation
from aggregates.money import money
from aggregates.notifications import Inbox
from aggregates.orders import Order
from aggregates.returns import ReturnRequest
from aggregates.reviews import Review
from projections.base import (
    ADDED,
    Envelope,
    Projection,
    Timestamp,
    handles,
    naive_utc,
)

STATUS_NOTICES = {
    "PAID": ("ORDER_PAID", "Order paid", "Order {number} has been paid.", "both"),
    "SHIPPED": ("ORDER_SHIPPED", "Order shipped", "Order {number} is on its way.", "buyer"),
    "DELIVERED": (
        "ORDER_DELIVERED",
        "Order delivered",
        "Order {number} has been delivered.",
        "both",
    ),
}

#: Transitions whose own events tell the buyer (held back after an admin's PUT .../status).
BUYER_TOLD_OF = ("PAID", "DELIVERED", "CANCELLED")


def numbered(body: str, order_number: str) -> str:
    """``body`` with ``{number}`` as the order number. Not ``str.format``: bodies carry
    users' text (reasons, notes, cities), and a brace in it must not stop the projection."""
    return body.replace("{number}", order_number)


class Notifications(Projection):
    name = "notifications"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        notes = Table(
            f"rm_notifications{suffix}",
            metadata,
            Column("notification_id", String(80), primary_key=True),
            Column("user_id", String(36), nullable=False),
            Column("type", String(30), nullable=False),
            Column("title", String(200), nullable=False),
            Column("body", Text, nullable=False),
            Column("data", Text, nullable=False),
            Column("created_at", Timestamp, nullable=False),
            Column("read_at", Timestamp),
            # The event's position, for the live stream (api/push.py). Added with it: older
            # notifications have none and are not replayed to a reconnecting client.
            Column("position", BigInteger, info=ADDED),
        )
        Index(None, notes.c.user_id, notes.c.created_at)
        Index(None, notes.c.position)
        Index(None, notes.c.user_id, notes.c.position)
        orders = Table(
            f"rm_notification_orders{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("order_number", String(20), nullable=False),
            Column("buyer_id", String(36), nullable=False),
            Column("seller_ids", Text, nullable=False),
            # The status an admin's PUT .../status is moving the order to: the buyer heard of
            # it from AdminStatusUpdated (or was not to be told), not from the transition.
            Column("hold_status", String(20), info=ADDED),
            Column("hold_notes", Text, info=ADDED),
            Column("hold_notify", Boolean, info=ADDED),
        )
        products = Table(
            f"rm_notification_products{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("name", String(100), nullable=False),
        )
        cases = Table(
            f"rm_notification_cases{suffix}",
            metadata,
            Column("case_id", String(36), primary_key=True),  # a return or a dispute
            Column("order_id", String(36), nullable=False),
            Column("order_number", String(20), nullable=False),
            Column("buyer_id", String(36), nullable=False),
            Column("seller_id", String(36), nullable=False),
        )
        # Every account's role and whether it is active: who the admins are (told of money
        # that arrives for a cancelled order). Added later: rebuild the projection once to
        # learn the admins created before it.
        staff = Table(
            f"rm_notification_staff{suffix}",
            metadata,
            Column("user_id", String(36), primary_key=True),
            Column("role", String(10), nullable=False),
            Column("active", Boolean, nullable=False),
        )
        Index(None, staff.c.role)
        return {
            "notifications": notes,
            "orders": orders,
            "products": products,
            "cases": cases,
            "staff": staff,
        }

    def _admins(self, session: Session) -> list[str]:
        s = self.tables["staff"]
        found = session.execute(
            select(s.c.user_id).where(s.c.role == "admin", s.c.active.is_(True))
        )
        return sorted(found.scalars())

    def _staff(self, session: Session, env: Envelope, **values: Any) -> None:
        s = self.tables["staff"]
        session.execute(update(s).where(s.c.user_id == str(env.originator_id)).values(**values))

    @handles(Account.Registered)
    def _registered(self, session: Session, env: Envelope) -> None:
        session.execute(
            insert(self.tables["staff"]).values(
                user_id=str(env.originator_id), role=env.event.role, active=True
            )
        )

    @handles(Account.RoleChanged)
    def _role_changed(self, session: Session, env: Envelope) -> None:
        self._staff(session, env, role=env.event.role)

    @handles(Account.Disabled)
    def _disabled(self, session: Session, env: Envelope) -> None:
        self._staff(session, env, active=False)

    @handles(Account.Enabled)
    def _enabled(self, session: Session, env: Envelope) -> None:
        self._staff(session, env, active=True)

    @handles(Account.Deleted)
    def _deleted(self, session: Session, env: Envelope) -> None:
        s = self.tables["staff"]
        session.execute(delete(s).where(s.c.user_id == str(env.originator_id)))

    def _notify(
        self,
        session: Session,
        env: Envelope,
        user_ids: list[str],
        kind: str,
        title: str,
        body: str,
        data: dict[str, Any],
    ) -> None:
        rows = [
            {
                "notification_id": f"{env.position}-{user_id}",
                "user_id": user_id,
                "type": kind,
                "title": title,
                "body": body,
                "data": json.dumps(data, ensure_ascii=False),
                "created_at": naive_utc(env.event.timestamp),
                "read_at": None,
                "position": env.position,
            }
            for user_id in dict.fromkeys(user_ids)
        ]
        if rows:
            session.execute(insert(self.tables["notifications"]), rows)

    def _order(self, session: Session, order_id: str) -> Any:
        o = self.tables["orders"]
        return session.execute(select(o).where(o.c.order_id == order_id)).one()

    @handles(Order.Placed)
    def _placed(self, session: Session, env: Envelope) -> None:
        e = env.event
        order_id = str(env.originator_id)
        sellers = sorted({i["sellerId"] for i in e.items})
        session.execute(
            insert(self.tables["orders"]).values(
                order_id=order_id,
                order_number=e.order_number,
                buyer_id=e.buyer_id,
                seller_ids=json.dumps(sellers),
            )
        )
        for seller in sellers:
            units = sum(i["quantity"] for i in e.items if i["sellerId"] == seller)
            self._notify(
                session,
                env,
                [seller],
                "ORDER_PLACED",
                "New order",
                f"Order {e.order_number}: {units} unit(s) of your products to ship.",
                {"orderId": order_id, "orderNumber": e.order_number},
            )

    @handles(Order.StatusChanged)
    def _status(self, session: Session, env: Envelope) -> None:
        notice = STATUS_NOTICES.get(env.event.status)
        if notice is None:
            return
        kind, title, body, audience = notice
        order = self._order(session, str(env.originator_id))
        users = [order.buyer_id] + (json.loads(order.seller_ids) if audience == "both" else [])
        self._notify(
            session,
            env,
            users,
            kind,
            title,
            numbered(body, order.order_number),
            {"orderId": order.order_id, "orderNumber": order.order_number},
        )

    def _held(self, session: Session, order: Any, status: str | None) -> tuple[bool, str]:
        """Whether the buyer is told of this transition, and the admin's note for them: a
        transition made by PUT .../status (AdminStatusUpdated, recorded just before it) tells
        the buyer only with ``notifyCustomer``, and carries its notes. Releases the hold."""
        if status is None or order.hold_status != status:
            return True, ""
        o = self.tables["orders"]
        session.execute(
            update(o)
            .where(o.c.order_id == order.order_id)
            .values(hold_status=None, hold_notes=None, hold_notify=None)
        )
        return bool(order.hold_notify), f" Note: {order.hold_notes}" if order.hold_notes else ""

    @handles(Order.AdminStatusUpdated)
    def _admin_update(self, session: Session, env: Envelope) -> None:
        e = env.event
        order = self._order(session, str(env.originator_id))
        if e.status in BUYER_TOLD_OF:  # the transition's own notice tells the buyer, or not
            o = self.tables["orders"]
            session.execute(
                update(o)
                .where(o.c.order_id == order.order_id)
                .values(hold_status=e.status, hold_notes=e.notes, hold_notify=e.notify_customer)
            )
        elif e.notify_customer:
            label = e.status.replace("_", " ").lower()
            note = f" Note: {e.notes}" if e.notes else ""
            self._notify(
                session,
                env,
                [order.buyer_id],
                "ORDER_STATUS_UPDATED",
                "Order updated",
                f"Order {order.order_number} is now {label}.{note}",
                {
                    "orderId": order.order_id,
                    "orderNumber": order.order_number,
                    "status": e.status,
                    "notes": e.notes,
                },
            )

    def _tell(
        self,
        session: Session,
        env: Envelope,
        audience: str,
        kind: str,
        title: str,
        body: str,
        transition: str | None = None,
        **data: Any,
    ) -> None:
        """Notify the order's buyer, sellers or both; ``{number}`` in the body is the order
        number. ``transition``: the order status this tells of (see :meth:`_held`)."""
        order = self._order(session, str(env.originator_id))
        sellers = json.loads(order.seller_ids)
        users = {"buyer": [order.buyer_id], "sellers": sellers, "both": [order.buyer_id, *sellers]}[
            audience
        ]
        tell_buyer, note = self._held(session, order, transition)
        if order.buyer_id in users and (note or not tell_buyer):
            users = [u for u in users if u != order.buyer_id]
            if tell_buyer:  # the buyer's copy carries the admin's note
                self._notify(
                    session,
                    env,
                    [order.buyer_id],
                    kind,
                    title,
                    numbered(body, order.order_number) + note,
                    {"orderId": order.order_id, "orderNumber": order.order_number, **data},
                )
        self._notify(
            session,
            env,
            users,
            kind,
            title,
            numbered(body, order.order_number),
            {"orderId": order.order_id, "orderNumber": order.order_number, **data},
        )

    @handles(Order.PaymentCompleted)
    def _paid(self, session: Session, env: Envelope) -> None:
        e = env.event
        if e.status == "PAID":
            self._tell(
                session,
                env,
                "both",
                "ORDER_PAID",
                "Order paid",
                "Order {number} has been paid.",
                transition="PAID",
                paymentId=e.payment_id,
            )
        elif e.status == "CANCELLED":  # money for an expired or cancelled order: paid back now
            order = self._order(session, str(env.originator_id))
            self._notify(
                session,
                env,
                self._admins(session),
                "LATE_PAYMENT_REFUNDED",
                "Payment for a cancelled order",
                f"NT${e.amount:,} arrived through {e.provider} for cancelled order "
                f"{order.order_number}; it is being paid back.",
                {
                    "orderId": order.order_id,
                    "orderNumber": order.order_number,
                    "paymentId": e.payment_id,
                    "amount": money(e.amount),
                },
            )
        elif e.method == "COD":
            self._tell(
                session,
                env,
                "sellers",
                "ORDER_PAID",
                "Order paid",
                "Order {number} was paid on delivery.",
                paymentId=e.payment_id,
            )

    @handles(Order.PaymentFailed)
    def _payment_failed(self, session: Session, env: Envelope) -> None:
        self._tell(
            session,
            env,
            "buyer",
            "PAYMENT_FAILED",
            "Payment failed",
            "The payment for order {number} did not go through; you can try again.",
            paymentId=env.event.payment_id,
        )

    @handles(Order.Refunded)
    def _refunded(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._tell(
            session,
            env,
            "buyer",
            "REFUND_ISSUED",
            "Refund issued",
            f"NT${e.amount:,} of order {{number}} has been refunded.",
            refundId=e.refund_id,
            amount=money(e.amount),
        )

    @handles(Order.ShipmentCreated)
    def _shipped(self, session: Session, env: Envelope) -> None:
        e = env.event
        what = "is on its way" if e.fully_shipped else "is partly on its way"
        self._tell(
            session,
            env,
            "buyer",
            "ORDER_SHIPPED",
            "Order shipped",
            f"Order {{number}} {what} ({e.carrier} {e.tracking_number}).",
            shipmentId=e.shipment_id,
            trackingUrl=e.tracking_url,
        )

    @handles(Order.ShipmentStatusChanged)
    def _shipment_updated(self, session: Session, env: Envelope) -> None:
        e = env.event
        if e.notify_customer:
            where = f" ({e.location.get('city')})" if e.location and e.location.get("city") else ""
            self._tell(
                session,
                env,
                "buyer",
                "SHIPMENT_UPDATED",
                "Shipment update",
                f"A parcel of order {{number}} is now {e.status.replace('_', ' ').lower()}{where}.",
                shipmentId=e.shipment_id,
                status=e.status,
            )

    @handles(Order.Delivered)
    def _delivered(self, session: Session, env: Envelope) -> None:
        self._tell(
            session,
            env,
            "both",
            "ORDER_DELIVERED",
            "Order delivered",
            "Order {number} has been delivered.",
            transition="DELIVERED",
            by=env.event.by,
        )

    @handles(Order.ShipReminderSent)
    def _ship_reminder(self, session: Session, env: Envelope) -> None:
        order = self._order(session, str(env.originator_id))
        self._notify(
            session,
            env,
            list(env.event.seller_ids),
            "SHIP_REMINDER",
            "Order waiting to ship",
            f"Order {order.order_number} was paid a while ago and still has items of yours to ship.",
            {"orderId": order.order_id, "orderNumber": order.order_number},
        )

    @handles(Order.Cancelled)
    def _cancelled(self, session: Session, env: Envelope) -> None:
        self._tell(
            session,
            env,
            "both",
            "ORDER_CANCELLED",
            "Order cancelled",
            f"Order {{number}} was cancelled: {env.event.reason}",
            transition="CANCELLED",
        )

    @handles(Order.UnitsCancelled)
    def _units_cancelled(self, session: Session, env: Envelope) -> None:
        """The buyer and the sellers whose units were cancelled are told which units."""
        e = env.event
        order = self._order(session, str(env.originator_id))
        data = {"orderId": order.order_id, "orderNumber": order.order_number}
        units = ", ".join(f"{i['quantity']} × {i['name']}" for i in e.items)
        refund = f" NT${e.refund_due:,} will be refunded." if e.refund_due is not None else ""
        self._notify(
            session,
            env,
            [order.buyer_id],
            "UNITS_CANCELLED",
            "Items cancelled",
            f"In order {order.order_number}, {units} were cancelled.{refund}",
            {**data, "items": [i["orderItemId"] for i in e.items]},
        )
        for seller in sorted({i["sellerId"] for i in e.items}):
            mine = [i for i in e.items if i["sellerId"] == seller]
            self._notify(
                session,
                env,
                [seller],
                "UNITS_CANCELLED",
                "Items cancelled",
                f"In order {order.order_number}, "
                + ", ".join(f"{i['quantity']} × {i['name']}" for i in mine)
                + " were cancelled: do not ship them.",
                {**data, "items": [i["orderItemId"] for i in mine]},
            )

    @handles(Order.Expired)
    def _expired(self, session: Session, env: Envelope) -> None:
        order = self._order(session, str(env.originator_id))
        self._notify(
            session,
            env,
            [order.buyer_id],
            "ORDER_EXPIRED",
            "Order expired",
            f"Order {order.order_number} was not paid in time and has been cancelled.",
            {"orderId": order.order_id, "orderNumber": order.order_number},
        )

    @handles(Account.SellerApproved)
    def _seller_approved(self, session: Session, env: Envelope) -> None:
        self._notify(
            session,
            env,
            [str(env.originator_id)],
            "SELLER_APPROVED",
            "Seller application approved",
            f"Your shop {env.event.shop_name} can now list products.",
            {"shopName": env.event.shop_name},
        )

    @handles(Account.SellerRejected)
    def _seller_rejected(self, session: Session, env: Envelope) -> None:
        self._notify(
            session,
            env,
            [str(env.originator_id)],
            "SELLER_REJECTED",
            "Seller application not approved",
            f"Your seller application was not approved: {env.event.reason}",
            {"reason": env.event.reason},
        )

    @handles(Inbox.Read)
    def _read(self, session: Session, env: Envelope) -> None:
        n = self.tables["notifications"]
        session.execute(
            update(n)
            .where(n.c.notification_id == env.event.notification_id, n.c.read_at.is_(None))
            .values(read_at=naive_utc(env.event.at))
        )

    @handles(Inventory.LowStock)
    def _low_stock(self, session: Session, env: Envelope) -> None:
        e = env.event
        name = self._product_name(session, e.product_id)
        self._notify(
            session,
            env,
            [e.seller_id],
            "LOW_STOCK",
            "Low stock",
            f"{name}: only {e.available} unit(s) left (alert at {e.threshold}).",
            {"productId": e.product_id, "available": e.available, "threshold": e.threshold},
        )

    def _product_name(self, session: Session, product_id: str) -> str:
        t = self.tables["products"]
        name = session.execute(select(t.c.name).where(t.c.product_id == product_id)).scalar()
        return str(name) if name is not None else "A product"

    @handles(Product.ReviewApproved)
    def _product_approved(self, session: Session, env: Envelope) -> None:
        product_id = str(env.originator_id)
        name = self._product_name(session, product_id)
        self._notify(
            session,
            env,
            [env.event.seller_id],
            "PRODUCT_APPROVED",
            "Product approved",
            f"{name} passed review and is public.",
            {"productId": product_id},
        )

    @handles(Product.ReviewRejected)
    def _product_rejected(self, session: Session, env: Envelope) -> None:
        e = env.event
        product_id = str(env.originator_id)
        name = self._product_name(session, product_id)
        self._notify(
            session,
            env,
            [e.seller_id],
            "PRODUCT_REJECTED",
            "Product not approved",
            f"{name} was not approved: {e.reason}",
            {"productId": product_id, "reason": e.reason},
        )

    @handles(Product.Listed)
    def _listed(self, session: Session, env: Envelope) -> None:
        session.execute(
            insert(self.tables["products"]).values(
                product_id=str(env.originator_id), name=env.event.name
            )
        )

    @handles(Product.Edited)
    def _edited(self, session: Session, env: Envelope) -> None:
        if "name" in env.event.changes:
            t = self.tables["products"]
            session.execute(
                update(t)
                .where(t.c.product_id == str(env.originator_id))
                .values(name=env.event.changes["name"])
            )

    @handles(Review.Written)
    def _review_written(self, session: Session, env: Envelope) -> None:
        e = env.event
        products = self.tables["products"]
        name = session.execute(
            select(products.c.name).where(products.c.product_id == e.product_id)
        ).scalar()
        self._notify(
            session,
            env,
            [e.seller_id],
            "REVIEW_RECEIVED",
            "New review",
            f"{e.reviewer_name} rated {name or 'your product'} {e.product_score}/10.",
            {
                "reviewId": str(env.originator_id),
                "orderId": e.order_id,
                "productId": e.product_id,
                "productScore": e.product_score,
                "sellerScore": e.seller_score,
            },
        )

    @handles(Conversation.Posted)
    def _message(self, session: Session, env: Envelope) -> None:
        e = env.event
        preview = e.text if len(e.text) <= 80 else e.text[:79] + "…"
        self._notify(
            session,
            env,
            [e.receiver_id],
            "MESSAGE_RECEIVED",
            "New message",
            preview,
            {
                "conversationId": str(env.originator_id),
                "messageId": f"{env.originator_id}-{e.seq}",
                "senderId": e.sender_id,
            },
        )

    # --- returns and disputes (the other side is told of every step) ----------------------
    def _open_case(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["cases"]).values(
                case_id=str(env.originator_id),
                order_id=e.order_id,
                order_number=e.order_number,
                buyer_id=e.buyer_id,
                seller_id=e.seller_id,
            )
        )

    def _case(
        self,
        session: Session,
        env: Envelope,
        to: str,
        kind: str,
        title: str,
        body: str,
        **data: Any,
    ) -> None:
        """Tell the case's ``buyer``, ``seller`` or ``both``; ``{number}`` is the order number."""
        c = self.tables["cases"]
        case = session.execute(select(c).where(c.c.case_id == str(env.originator_id))).one()
        users = {"buyer": [case.buyer_id], "seller": [case.seller_id]}.get(
            to, [case.buyer_id, case.seller_id]
        )
        key = "returnId" if kind.startswith("RETURN") else "disputeId"
        self._notify(
            session,
            env,
            users,
            kind,
            title,
            numbered(body, case.order_number),
            {
                key: case.case_id,
                "orderId": case.order_id,
                "orderNumber": case.order_number,
                **data,
            },
        )

    @handles(ReturnRequest.Requested)
    def _return_requested(self, session: Session, env: Envelope) -> None:
        self._open_case(session, env)
        units = sum(int(i["quantity"]) for i in env.event.items)
        self._case(
            session,
            env,
            "seller",
            "RETURN_REQUESTED",
            "Return requested",
            f"The buyer of order {{number}} asks to return {units} unit(s): {env.event.reason}",
        )

    @handles(ReturnRequest.Approved)
    def _return_approved(self, session: Session, env: Envelope) -> None:
        self._case(
            session,
            env,
            "buyer",
            "RETURN_APPROVED",
            "Return approved",
            "Your return for order {number} was approved: please send the items back.",
        )

    @handles(ReturnRequest.Rejected)
    def _return_rejected(self, session: Session, env: Envelope) -> None:
        self._case(
            session,
            env,
            "buyer",
            "RETURN_REJECTED",
            "Return rejected",
            f"Your return for order {{number}} was rejected: {env.event.reason}",
        )

    @handles(ReturnRequest.ShippedBack)
    def _return_shipped_back(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._case(
            session,
            env,
            "seller",
            "RETURN_SHIPPED_BACK",
            "Return on its way",
            f"Returned items of order {{number}} are on their way ({e.carrier} {e.tracking_number}).",
            trackingNumber=e.tracking_number,
        )

    @handles(ReturnRequest.Received)
    def _return_received(self, session: Session, env: Envelope) -> None:
        refund = env.event.refund
        what = (
            f" NT${refund['amount']} is being refunded."
            if refund is not None
            else " Nothing was left to refund."
        )
        self._case(
            session,
            env,
            "buyer",
            "RETURN_RECEIVED",
            "Return received",
            "The seller received your returned items of order {number}." + what,
            refundId=None if refund is None else refund["refundId"],
        )

    @handles(Dispute.Opened)
    def _dispute_opened(self, session: Session, env: Envelope) -> None:
        self._open_case(session, env)
        e = env.event
        self._case(
            session,
            env,
            "seller" if e.opener_role == "buyer" else "buyer",
            "DISPUTE_OPENED",
            "Dispute opened",
            f"A dispute about order {{number}} was opened: {e.reason}",
        )

    @handles(Dispute.StatementAdded)
    def _dispute_statement(self, session: Session, env: Envelope) -> None:
        role = env.event.role
        self._case(
            session,
            env,
            {"buyer": "seller", "seller": "buyer"}.get(role, "both"),
            "DISPUTE_STATEMENT",
            "New statement in a dispute",
            f"The {role} added a statement to the dispute about order {{number}}.",
        )

    @handles(Dispute.Resolved)
    def _dispute_resolved(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._case(
            session,
            env,
            "both",
            "DISPUTE_RESOLVED",
            "Dispute resolved",
            f"The dispute about order {{number}} was resolved ({e.resolution}): {e.note}",
            resolution=e.resolution,
            refundId=None if e.refund is None else e.refund["refundId"],
        )

    @handles(SellerDisputeRecord.Flagged)
    def _seller_flagged(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._notify(
            session,
            env,
            list(e.admin_ids),
            "SELLER_FLAGGED",
            "Seller flagged for review",
            f"A seller lost {e.lost} disputes in {e.window_days} days.",
            {"sellerId": e.seller_id, "disputeId": e.dispute_id, "lostDisputes": e.lost},
        )


live = Notifications.live_tables()
