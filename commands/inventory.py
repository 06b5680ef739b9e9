"""Inventory commands: warehouses, suppliers, and stock receipts, transfers and adjustments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from aggregates.accounts import AlreadyTaken
from aggregates.catalog import Product, fold_for_matching
from aggregates.inventory import Inventory, Supplier, Warehouse
from commands.bus import Command, Handler, UnitOfWork
from commands.catalog import product_for, referenced


@dataclass(frozen=True)
class CreateWarehouse(Command):
    warehouse_id: UUID
    code: str
    name: str
    address: str = ""


def create_warehouse(uow: UnitOfWork, cmd: CreateWarehouse) -> Warehouse:
    warehouse = Warehouse.create(cmd.warehouse_id, cmd.code, cmd.name, cmd.address)
    uow.claim(
        "warehouse",
        warehouse.code,
        warehouse.id,
        AlreadyTaken("a warehouse with that code exists", field="code"),
    )
    uow.add(warehouse)
    return warehouse


@dataclass(frozen=True)
class CreateSupplier(Command):
    supplier_id: UUID
    name: str
    contact_email: str | None = None
    phone: str | None = None
    address: str = ""


def create_supplier(uow: UnitOfWork, cmd: CreateSupplier) -> Supplier:
    supplier = Supplier.create(cmd.supplier_id, cmd.name, cmd.contact_email, cmd.phone, cmd.address)
    uow.claim(
        "supplier",
        fold_for_matching(supplier.name),
        supplier.id,
        AlreadyTaken("a supplier with that name exists", field="name"),
    )
    uow.add(supplier)
    return supplier


def inventory_of(uow: UnitOfWork, product: Product) -> Inventory:
    """The product's inventory, opened on first use (racing openers: one wins, one retries)."""
    found = uow.find(Inventory, Inventory.create_id(str(product.id)))
    if found is not None:
        return found
    inventory = Inventory(product_id=str(product.id), seller_id=product.seller_id)
    inventory.set_listed(product.is_active)
    return inventory


@dataclass(frozen=True)
class ReceiveStock(Command):
    receipt_id: str
    product_id: UUID
    actor_id: str
    is_admin: bool
    warehouse_id: str
    quantity: int
    supplier_id: str | None = None


def receive_stock(uow: UnitOfWork, cmd: ReceiveStock) -> Inventory:
    product = product_for(uow, cmd.product_id, cmd.actor_id, cmd.is_admin)
    warehouse = referenced(uow, Warehouse, cmd.warehouse_id, "warehouseId", "warehouse")
    supplier_id = None
    if cmd.supplier_id is not None:
        supplier_id = str(referenced(uow, Supplier, cmd.supplier_id, "supplierId", "supplier").id)
    inventory = inventory_of(uow, product)
    inventory.receive(cmd.receipt_id, str(warehouse.id), cmd.quantity, supplier_id, uow.now)
    uow.add(inventory)
    return inventory


@dataclass(frozen=True)
class TransferStock(Command):
    transfer_id: str
    product_id: UUID
    actor_id: str
    is_admin: bool
    from_warehouse_id: str
    to_warehouse_id: str
    quantity: int


def transfer_stock(uow: UnitOfWork, cmd: TransferStock) -> Inventory:
    product = product_for(uow, cmd.product_id, cmd.actor_id, cmd.is_admin)
    source = referenced(uow, Warehouse, cmd.from_warehouse_id, "fromWarehouseId", "warehouse")
    target = referenced(uow, Warehouse, cmd.to_warehouse_id, "toWarehouseId", "warehouse")
    inventory = inventory_of(uow, product)
    inventory.transfer(cmd.transfer_id, str(source.id), str(target.id), cmd.quantity, uow.now)
    uow.add(inventory)
    return inventory


@dataclass(frozen=True)
class AdjustStock(Command):
    adjustment_id: str
    product_id: UUID
    actor_id: str
    is_admin: bool
    warehouse_id: str
    quantity_change: int
    reason: str
    note: str = ""


def adjust_stock(uow: UnitOfWork, cmd: AdjustStock) -> Inventory:
    product = product_for(uow, cmd.product_id, cmd.actor_id, cmd.is_admin)
    warehouse = referenced(uow, Warehouse, cmd.warehouse_id, "warehouseId", "warehouse")
    inventory = inventory_of(uow, product)
    inventory.adjust(
        cmd.adjustment_id, str(warehouse.id), cmd.quantity_change, cmd.reason, cmd.note, uow.now
    )
    uow.add(inventory)
    return inventory


@dataclass(frozen=True)
class SetLowStockThreshold(Command):
    product_id: UUID
    actor_id: str
    is_admin: bool
    threshold: int | None  # None: the platform default
    default_threshold: int


def set_low_stock_threshold(uow: UnitOfWork, cmd: SetLowStockThreshold) -> Inventory:
    product = product_for(uow, cmd.product_id, cmd.actor_id, cmd.is_admin)
    inventory = inventory_of(uow, product)
    inventory.set_low_stock_threshold(cmd.threshold, uow.now)
    inventory.check_low_stock(cmd.default_threshold, uow.now)
    uow.add(inventory)
    return inventory


def low_stock_policy(default_threshold: int) -> Callable[[UnitOfWork], None]:
    """Whatever a command did to a product's stock (checkout, cancellation, receipt, count,
    shipment), a crossing of its low-stock threshold is recorded in the same transaction."""

    def apply(uow: UnitOfWork) -> None:
        for aggregate in uow.pending:
            if isinstance(aggregate, Inventory):
                aggregate.check_low_stock(default_threshold, uow.now)

    return apply


HANDLERS: dict[type, Handler] = {
    SetLowStockThreshold: set_low_stock_threshold,
    CreateWarehouse: create_warehouse,
    CreateSupplier: create_supplier,
    ReceiveStock: receive_stock,
    TransferStock: transfer_stock,
    AdjustStock: adjust_stock,
}
