"""Inventory: warehouses and suppliers (admin), stock receipts, transfers and adjustments
(the product's seller or an admin), stock levels and movements."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import EmailStr, Field, StrictInt

from aggregates.inventory import ADJUSTMENT_REASONS, Inventory, Supplier, Warehouse
from api.auth import AdminUser, Principal, SellerOrAdmin
from api.deps import ContainerDep, PageDep, path_id, reads, run_command
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import (
    MovementList,
    StockAdjustment,
    StockLevels,
    StockReceipt,
    StockTransfer,
    SupplierList,
    WarehouseList,
)
from api.responses import Supplier as SupplierView
from api.responses import Warehouse as WarehouseView
from api.routes.catalog import canonical_id
from api.schemas import RequestBody
from api.validation import MultilineText, Text
from commands.inventory import (
    AdjustStock,
    CreateSupplier,
    CreateWarehouse,
    ReceiveStock,
    TransferStock,
)
from queries import catalog as catalog_q
from queries import inventory as q
from shopledger.bootstrap import Container

router = APIRouter(tags=["inventory"])
READS_INVENTORY = [Depends(reads("inventory"))]


class WarehouseBody(RequestBody):
    model_config = examples(
        {"code": "TPE-NEIHU", "name": "台北內湖倉", "address": "台北市內湖區瑞光路100號"}
    )

    code: str = Field(max_length=100)
    name: Text = Field(max_length=1000)
    address: Text = Field(default="", max_length=1000)


class SupplierBody(RequestBody):
    model_config = examples(
        {
            "name": "阿里山茶葉合作社",
            "contactEmail": "sales@alishan-tea.example.com.tw",
            "phone": "05-267-1234",
            "address": "嘉義縣阿里山鄉中正村1號",
        }
    )

    name: Text = Field(max_length=1000)
    contact_email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=30, pattern=r"^\+?[0-9 ()-]{6,30}$")
    address: Text = Field(default="", max_length=1000)


class ReceiptBody(RequestBody):
    model_config = examples(
        {
            "productId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10",
            "warehouseId": "6c2d8e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f",
            "quantity": 120,
            "supplierId": "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d",
        }
    )

    product_id: str = Field(max_length=64)
    warehouse_id: str = Field(max_length=64)
    quantity: StrictInt
    supplier_id: str | None = Field(default=None, max_length=64)


class TransferBody(RequestBody):
    model_config = examples(
        {
            "productId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10",
            "fromWarehouseId": "6c2d8e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f",
            "toWarehouseId": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
            "quantity": 20,
        }
    )

    product_id: str = Field(max_length=64)
    from_warehouse_id: str = Field(max_length=64)
    to_warehouse_id: str = Field(max_length=64)
    quantity: StrictInt


class AdjustmentBody(RequestBody):
    model_config = examples(
        {
            "productId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10",
            "warehouseId": "6c2d8e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f",
            "quantityChange": -2,
            "reason": "DAMAGED",
            "note": "颱風淹水，兩箱受潮",
        }
    )

    product_id: str = Field(max_length=64)
    warehouse_id: str = Field(max_length=64)
    quantity_change: StrictInt
    reason: str = Field(max_length=20, json_schema_extra={"enum": list(ADJUSTMENT_REASONS)})
    note: MultilineText = Field(default="", max_length=300)


def warehouse_of(w: Warehouse) -> dict[str, Any]:
    return {"warehouseId": str(w.id), "code": w.code, "name": w.name, "address": w.address}


def supplier_of(s: Supplier) -> dict[str, Any]:
    return {
        "supplierId": str(s.id),
        "name": s.name,
        "contactEmail": s.contact_email,
        "phone": s.phone,
        "address": s.address,
    }


def stock_of(inventory: Inventory) -> dict[str, Any]:
    warehouses = [
        {
            "warehouseId": w,
            "onHand": inventory.on_hand[w],
            "reserved": inventory.reserved.get(w, 0),
            "available": inventory.available_in(w),
        }
        for w in sorted(inventory.on_hand)
    ]
    held = sorted(inventory.on_hand)
    totals = {
        "onHand": sum(inventory.on_hand[w] for w in held),
        "reserved": sum(inventory.reserved.get(w, 0) for w in held),
        "available": sum(inventory.available_in(w) for w in held),
    }
    return {"productId": inventory.product_id, "warehouses": warehouses, "totals": totals}


# --- warehouses and suppliers ---------------------------------------------------------------
@router.get(
    "/api/inventory/warehouses",
    dependencies=READS_INVENTORY,
    response_model=None,
    responses=documented(WarehouseList),
)
def warehouses(_: SellerOrAdmin, container: ContainerDep, page: PageDep) -> dict[str, Any]:
    """The platform's warehouses (sellers and admins)."""
    return q.list_warehouses(container.engine, page)


@router.post(
    "/api/inventory/warehouses",
    status_code=201,
    response_model=None,
    responses=documented(WarehouseView, status=201, errors={409: "CONFLICT"}),
    openapi_extra=IDEMPOTENT,
)
def create_warehouse(
    body: WarehouseBody, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Open a warehouse (admin).

    Its code is unique."""
    command = CreateWarehouse(uuid4(), body.code, body.name, body.address)
    return run_command(request, container, command, lambda w: (201, warehouse_of(w)), body)


@router.get(
    "/api/inventory/suppliers",
    dependencies=READS_INVENTORY,
    response_model=None,
    responses=documented(SupplierList, errors={404: "PRODUCT_NOT_FOUND"}),
)
def suppliers(
    principal: SellerOrAdmin,
    container: ContainerDep,
    page: PageDep,
    product_id: Annotated[str | None, Query(alias="productId", max_length=64)] = None,
) -> dict[str, Any]:
    """Suppliers (sellers and admins).

    With ``productId``: those supplying one of the caller's products."""
    if product_id is not None:
        product_id = _owned_product(container, product_id, principal)
    return q.list_suppliers(container.engine, page, product_id)


@router.get(
    "/api/inventory/suppliers/{supplier_id}",
    dependencies=READS_INVENTORY,
    response_model=None,
    responses=documented(SupplierView, errors={404: "NOT_FOUND"}),
)
def get_supplier(
    supplier_id: str, principal: SellerOrAdmin, container: ContainerDep
) -> dict[str, Any]:
    """A supplier and the products it supplies.

    An admin sees all of them; a seller its own."""
    seller = None if _is_admin(principal) else principal.account_id
    view = q.get_supplier(container.engine, canonical_id(supplier_id) or "", seller)
    if view is None:
        raise ApiError(404, "NOT_FOUND", "supplier not found")
    return view


@router.post(
    "/api/inventory/suppliers",
    status_code=201,
    response_model=None,
    responses=documented(SupplierView, status=201, errors={409: "CONFLICT"}),
    openapi_extra=IDEMPOTENT,
)
def create_supplier(
    body: SupplierBody, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Register a supplier (admin).

    Names are unique."""
    command = CreateSupplier(uuid4(), body.name, body.contact_email, body.phone, body.address)
    return run_command(request, container, command, lambda s: (201, supplier_of(s)), body)


# --- stock ----------------------------------------------------------------------------------
def _is_admin(principal: Principal) -> bool:
    return principal.has_role("admin")


@router.post(
    "/api/inventory/receipts",
    status_code=201,
    response_model=None,
    responses=documented(
        StockReceipt, status=201, errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND"}
    ),
    openapi_extra=IDEMPOTENT,
)
def receive(
    body: ReceiptBody, principal: SellerOrAdmin, request: Request, container: ContainerDep
) -> Response:
    """Book an inbound receipt of stock into a warehouse."""
    receipt_id = str(uuid4())
    command = ReceiveStock(
        receipt_id,
        path_id(body.product_id, "PRODUCT_NOT_FOUND", "product"),
        principal.account_id,
        _is_admin(principal),
        body.warehouse_id,
        body.quantity,
        body.supplier_id,
    )
    return run_command(
        request,
        container,
        command,
        lambda inv: (
            201,
            {"receiptId": receipt_id, "quantity": body.quantity, "stock": stock_of(inv)},
        ),
        body,
    )


@router.post(
    "/api/inventory/transfers",
    status_code=201,
    response_model=None,
    responses=documented(
        StockTransfer,
        status=201,
        errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND", 422: "INSUFFICIENT_STOCK"},
    ),
    openapi_extra=IDEMPOTENT,
)
def transfer(
    body: TransferBody, principal: SellerOrAdmin, request: Request, container: ContainerDep
) -> Response:
    """Move units between two warehouses.

    Never more than is available at the source (422 ``INSUFFICIENT_STOCK``)."""
    transfer_id = str(uuid4())
    command = TransferStock(
        transfer_id,
        path_id(body.product_id, "PRODUCT_NOT_FOUND", "product"),
        principal.account_id,
        _is_admin(principal),
        body.from_warehouse_id,
        body.to_warehouse_id,
        body.quantity,
    )
    return run_command(
        request,
        container,
        command,
        lambda inv: (
            201,
            {"transferId": transfer_id, "quantity": body.quantity, "stock": stock_of(inv)},
        ),
        body,
    )


@router.post(
    "/api/inventory/adjustments",
    status_code=201,
    response_model=None,
    responses=documented(
        StockAdjustment,
        status=201,
        errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND", 422: "INSUFFICIENT_STOCK"},
    ),
    openapi_extra=IDEMPOTENT,
)
def adjust(
    body: AdjustmentBody, principal: SellerOrAdmin, request: Request, container: ContainerDep
) -> Response:
    """Correct a stock level after a count, damage or loss.

    ``reason``: COUNT, DAMAGED, LOST, FOUND, RETURNED or OTHER; never below the reserved units
    (422 ``INSUFFICIENT_STOCK``)."""
    adjustment_id = str(uuid4())
    command = AdjustStock(
        adjustment_id,
        path_id(body.product_id, "PRODUCT_NOT_FOUND", "product"),
        principal.account_id,
        _is_admin(principal),
        body.warehouse_id,
        body.quantity_change,
        body.reason,
        body.note,
    )
    return run_command(
        request,
        container,
        command,
        lambda inv: (
            201,
            {
                "adjustmentId": adjustment_id,
                "quantityChange": body.quantity_change,
                "stock": stock_of(inv),
            },
        ),
        body,
    )


def _owned_product(container: Container, product_id: str, principal: Principal) -> str:
    """Stock is the seller's business: another seller (or a buyer) gets 404."""
    canonical = str(path_id(product_id, "PRODUCT_NOT_FOUND", "product"))
    seller_id = catalog_q.seller_of(container.engine, canonical)
    if seller_id is None or not (_is_admin(principal) or seller_id == principal.account_id):
        raise ApiError(404, "PRODUCT_NOT_FOUND", "product not found", {"productId": product_id})
    return canonical


@router.get(
    "/api/inventory/stock",
    dependencies=[Depends(reads("catalog", "inventory"))],
    response_model=None,
    responses=documented(StockLevels, errors={404: "PRODUCT_NOT_FOUND"}),
)
def stock(
    principal: SellerOrAdmin,
    container: ContainerDep,
    product_id: Annotated[str, Query(alias="productId", max_length=64)],
) -> dict[str, Any]:
    """A product's stock per warehouse.

    On hand, reserved (by open orders) and available; for the product's seller and admins."""
    return q.stock_levels(container.engine, _owned_product(container, product_id, principal))


@router.get(
    "/api/inventory/movements",
    dependencies=[Depends(reads("catalog", "inventory"))],
    response_model=None,
    responses=documented(MovementList, errors={404: "PRODUCT_NOT_FOUND"}),
)
def movements(
    principal: SellerOrAdmin,
    container: ContainerDep,
    page: PageDep,
    product_id: Annotated[str, Query(alias="productId", max_length=64)],
) -> dict[str, Any]:
    """A product's stock ledger, newest first.

    Receipts, transfers, adjustments and reservations."""
    return q.stock_movements(
        container.engine, _owned_product(container, product_id, principal), page
    )
