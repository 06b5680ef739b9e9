"""Sale price commands: a seller schedules or cancels a sale price on one of its products."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from aggregates.catalog import Product, ProductNotFound
from aggregates.promotions import SaleWindow
from commands.bus import Command, Handler, UnitOfWork
from commands.catalog import seller_with_listing_rights


def own_product(uow: UnitOfWork, product_id: UUID, seller_id: str) -> Product:
    """The seller's own product; another seller's is indistinguishable from a missing one."""
    product = uow.get(Product, product_id, ProductNotFound)
    if product.seller_id != seller_id:
        raise ProductNotFound("product not found", productId=str(product_id))
    return product


@dataclass(frozen=True)
class ScheduleSale(Command):
    product_id: UUID
    seller_id: str
    sale_id: UUID
    price: Decimal
    starts_at: datetime | None
    ends_at: datetime


def schedule_sale(uow: UnitOfWork, cmd: ScheduleSale) -> tuple[Product, SaleWindow]:
    product = own_product(uow, cmd.product_id, cmd.seller_id)
    seller_with_listing_rights(uow, cmd.seller_id)
    window = product.schedule_sale(str(cmd.sale_id), cmd.price, cmd.starts_at, cmd.ends_at, uow.now)
    uow.add(product)
    return product, window


@dataclass(frozen=True)
class CancelSale(Command):
    product_id: UUID
    seller_id: str
    sale_id: str


def cancel_sale(uow: UnitOfWork, cmd: CancelSale) -> tuple[Product, SaleWindow]:
    product = own_product(uow, cmd.product_id, cmd.seller_id)
    window = product.cancel_sale(cmd.sale_id, uow.now)
    uow.add(product)
    return product, window


HANDLERS: dict[type, Handler] = {ScheduleSale: schedule_sale, CancelSale: cancel_sale}
