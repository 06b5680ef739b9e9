"""Fulfilment commands: process, ship (partial shipments), carrier progress, the buyer's
confirmation, and the invoice.

Shipping is one transaction over the order (which items left) and each product's inventory
(the shipped units leave on-hand and the order's reservation), so stock and order agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID

from aggregates.accounts import AlreadyTaken, NotAllowed, UniqueKey
from aggregates.inventory import Inventory, Warehouse
from aggregates.invoices import InvoiceTrack
from aggregates.order_view import DELIVERY_DAYS
from aggregates.orders import Order, OrderNotFound, ShipmentNotFound
from commands.bus import Command, Handler, UnitOfWork
from commands.catalog import referenced
from commands.orders import role_in_order
from commands.payments import receipt_number

#: Carriers we know, with their public tracking page. ``{}`` takes the tracking number.
CARRIERS: dict[str, tuple[str, str | None]] = {
    "BLACK_CAT": (
        "黑貓宅急便 T-CAT",
        "https://www.t-cat.com.tw/Inquire/TraceDetail.aspx?BillID={}",
    ),
    "HCT": ("新竹物流 HCT", "https://www.hct.com.tw/search/searchgoods_n.aspx?no={}"),
    "KERRY_TJ": (
        "嘉里大榮 Kerry TJ",
        "https://www.kerrytj.com/zh/search/search_track_list.aspx?no={}",
    ),
    "CHUNGHWA_POST": (
        "中華郵政 Chunghwa Post",
        "https://postserv.post.gov.tw/pstmail/main_mail.html?mailNo={}",
    ),
    "SEVEN_ELEVEN": (
        "7-ELEVEN 交貨便",
        "https://eservice.7-11.com.tw/e-tracking/search.aspx?no={}",
    ),
    "FAMILYMART": (
        "全家店到店 FamilyMart",
        "https://fmec.famiport.com.tw/FP_Entrance/QueryBox?no={}",
    ),
    "DHL": ("DHL Express", "https://www.dhl.com/tw-en/home/tracking.html?tracking-id={}"),
    "FEDEX": ("FedEx", "https://www.fedex.com/fedextrack/?trknbr={}"),
    "UPS": ("UPS", "https://www.ups.com/track?tracknum={}"),
    "SELF": ("Seller's own delivery", None),
}


def tracking_url(carrier: str, tracking_number: str) -> str | None:
    """The carrier's tracking page, or None for a carrier we do not know."""
    template = CARRIERS.get(carrier, ("", None))[1]
    return None if template is None else template.format(quote(tracking_number, safe=""))


def _seller_or_admin(order: Order, actor_id: str, is_admin: bool) -> str:
    """Processing and shipping are for a seller of the order's items or an admin; the buyer
    may look but not act (403); anyone else does not see the order (404)."""
    role = role_in_order(order, actor_id, is_admin)
    if role is None:
        raise OrderNotFound("order not found", orderId=str(order.id))
    if role == "buyer":
        raise NotAllowed("only a seller of the order's items or an admin can do this")
    return role


# --- process --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessOrder(Command):
    order_id: UUID
    actor_id: str
    is_admin: bool
    processed_by: str
    warehouse_id: str | None
    estimated_shipping_date: str | None
    notes: str


def process_order(uow: UnitOfWork, cmd: ProcessOrder) -> Order:
    """A seller starts on its items (an admin on all of them). With ``warehouseId`` the
    items' reserved stock is allocated to that warehouse (it must hold enough)."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = _seller_or_admin(order, cmd.actor_id, cmd.is_admin)
    sellers = order.seller_ids if role in ("admin", "system") else [cmd.actor_id]
    warehouse_id = None
    if cmd.warehouse_id is not None:
        warehouse_id = str(
            referenced(uow, Warehouse, cmd.warehouse_id, "warehouseId", "warehouse").id
        )
    started = order.process(
        sellers, cmd.processed_by, warehouse_id, cmd.estimated_shipping_date, cmd.notes, uow.now
    )
    if warehouse_id is not None:
        for product_id in sorted({i["productId"] for i in order.items if i["sellerId"] in started}):
            inventory = uow.get(Inventory, Inventory.create_id(product_id))
            if inventory.allocate(str(order.id), warehouse_id, uow.now):
                uow.add(inventory)
    uow.add(order)
    return order


# --- shipments ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateShipment(Command):
    order_id: UUID
    actor_id: str
    is_admin: bool
    shipment_id: UUID
    carrier: str
    tracking_number: str
    shipped_by: str
    shipping_date: str | None
    items: tuple[tuple[str, int], ...] | None
    package_info: dict[str, Any] | None
    notes: str


def create_shipment(uow: UnitOfWork, cmd: CreateShipment) -> dict[str, Any]:
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = _seller_or_admin(order, cmd.actor_id, cmd.is_admin)
    sellers = None if role in ("admin", "system") else [cmd.actor_id]
    shipment_id = str(cmd.shipment_id)
    url = tracking_url(cmd.carrier, cmd.tracking_number)
    estimated = uow.now + timedelta(days=max(1, DELIVERY_DAYS.get(order.shipping_method, 5) - 1))
    shipped = order.ship(
        shipment_id,
        sellers,
        cmd.carrier,
        cmd.tracking_number,
        url,
        None if cmd.items is None else list(cmd.items),
        cmd.shipped_by,
        cmd.shipping_date,
        cmd.package_info,
        cmd.notes,
        estimated,
        uow.now,
    )
    for product_id in sorted({i["productId"] for i in shipped}):
        units = sum(i["quantity"] for i in shipped if i["productId"] == product_id)
        inventory = uow.get(Inventory, Inventory.create_id(product_id))
        inventory.dispatch(str(order.id), shipment_id, units, uow.now)
        uow.add(inventory)
    uow.claim("shipment", shipment_id, order.id, AlreadyTaken("that shipment exists"))
    uow.add(order)
    return {
        "shipmentId": shipment_id,
        "orderId": str(order.id),
        "carrier": cmd.carrier,
        "trackingNumber": cmd.tracking_number,
        "trackingUrl": url,
        "status": "SHIPPED",
        "shippedAt": uow.now,
        "shippedBy": cmd.shipped_by,
        "estimatedDelivery": estimated,
        "items": shipped,
        "orderStatus": order.status,
    }


def order_of_shipment(uow: UnitOfWork, shipment_id: str) -> Order:
    key = uow.find(UniqueKey, UniqueKey.create_id("shipment", shipment_id))
    order = None if key is None else uow.find(Order, key.owner_id)
    if order is None:
        raise ShipmentNotFound("shipment not found", shipmentId=shipment_id)
    return order


@dataclass(frozen=True)
class UpdateShipmentStatus(Command):
    shipment_id: str
    actor_id: str
    is_admin: bool
    status: str
    status_date: str | None
    notes: str
    location: dict[str, Any] | None
    notify_customer: bool


def update_shipment_status(uow: UnitOfWork, cmd: UpdateShipmentStatus) -> tuple[Order, bool]:
    """The carrier's progress, reported by the shipping seller or an admin. When the last
    parcel is delivered a COD order's payment is recorded (the carrier collected it)."""
    order = order_of_shipment(uow, cmd.shipment_id)
    shipment = order.shipment(cmd.shipment_id)
    if not cmd.is_admin and cmd.actor_id not in shipment["sellerIds"]:
        raise ShipmentNotFound("shipment not found", shipmentId=cmd.shipment_id)
    all_delivered = order.update_shipment(
        cmd.shipment_id,
        cmd.status,
        cmd.status_date,
        cmd.notes,
        cmd.location,
        cmd.notify_customer,
        uow.now,
    )
    if all_delivered:
        collect_cod(uow, order)
    uow.add(order)
    return order, all_delivered


def collect_cod(uow: UnitOfWork, order: Order) -> None:
    """Everything left of a cash-on-delivery order is delivered: the carrier collected the
    amount due (the total less units cancelled before)."""
    if order.payment_method == "COD" and order.paid_amount == 0 and order.amount_due > 0:
        order.complete_payment(
            order.next_payment_id(),
            "COD",
            "COD",
            order.amount_due,
            None,
            None,
            receipt_number(order),
            uow.now,
        )


# --- delivery -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfirmReceipt(Command):
    order_id: UUID
    buyer_id: str


def confirm_receipt(uow: UnitOfWork, cmd: ConfirmReceipt) -> Order:
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = role_in_order(order, cmd.buyer_id, False)
    if role is None:
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if role != "buyer":
        raise NotAllowed("only the buyer confirms receipt")
    if order.confirm_receipt(uow.now):
        uow.add(order)
    return order


# --- invoices -------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssueInvoice(Command):
    order_id: UUID
    actor_id: str
    is_admin: bool
    invoice_id: UUID
    track: str
    invoice_date: str
    due_date: str | None
    recipient: dict[str, Any] | None
    notes: str


def issue_invoice(uow: UnitOfWork, cmd: IssueInvoice) -> Order:
    """One invoice per order, for the buyer, an admin, or the order's only seller, once paid.
    The number is the track's next (same transaction: a failed request uses no number)."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = role_in_order(order, cmd.actor_id, cmd.is_admin)
    if role is None:
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if role == "seller" and order.seller_ids != [cmd.actor_id]:
        raise NotAllowed(
            "this order holds other sellers' items: the buyer or an admin issues its invoice"
        )
    order.check_invoiceable()
    track = uow.find(InvoiceTrack, InvoiceTrack.create_id(cmd.track)) or InvoiceTrack.open(
        cmd.track
    )
    number = track.take(str(order.id))
    order.issue_invoice(
        str(cmd.invoice_id),
        number,
        cmd.invoice_date,
        cmd.due_date,
        cmd.recipient,
        cmd.notes,
        uow.now,
    )
    uow.add(order, track)
    return order


@dataclass(frozen=True)
class VoidInvoice(Command):
    order_id: UUID
    actor_id: str
    is_admin: bool
    invoice_id: str
    reason: str


def void_invoice(uow: UnitOfWork, cmd: VoidInvoice) -> Order:
    """VOID the order's invoice: an admin, or the seller of an order that is all its own (who
    may issue it). The buyer asks them; a corrected invoice may then be issued."""
    order = uow.get(Order, cmd.order_id, OrderNotFound)
    role = role_in_order(order, cmd.actor_id, cmd.is_admin)
    if role is None:
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if role not in ("admin", "seller") or (role == "seller" and order.seller_ids != [cmd.actor_id]):
        raise NotAllowed("an admin or the order's only seller voids its invoice")
    order.void_invoice(cmd.invoice_id, cmd.reason, uow.now)
    uow.add(order)
    return order


HANDLERS: dict[type, Handler] = {
    ProcessOrder: process_order,
    CreateShipment: create_shipment,
    UpdateShipmentStatus: update_shipment_status,
    ConfirmReceipt: confirm_receipt,
    IssueInvoice: issue_invoice,
    VoidInvoice: void_invoice,
}
