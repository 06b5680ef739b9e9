"""Catalog commands: categories, banned keywords, products (listing, edits, prices, status)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from aggregates.accounts import Account, AccountNotFound
from aggregates.catalog import (
    DEFAULT_BANNED_KEYWORDS,
    BannedKeywords,
    Category,
    CategoryTree,
    ListingRightsRequired,
    Product,
    ProductNotFound,
)
from aggregates.errors import DomainError, NotFound
from aggregates.inventory import Inventory, Supplier
from commands.bus import Command, Handler, UnitOfWork

A = TypeVar("A", bound=Aggregate)


class InvalidReference(DomainError):
    """A request body names an object (category, supplier, warehouse) that does not exist."""


def parse_id(raw: str, not_found: type[NotFound], what: str) -> UUID:
    try:
        return UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise not_found(f"{what} not found", id=str(raw)[:64]) from None


def referenced(uow: UnitOfWork, cls: type[A], raw_id: str, field: str, what: str) -> A:
    """Load an object named in a request body; a missing one is a 400 naming the field."""
    try:
        return uow.get(cls, UUID(raw_id))
    except (ValueError, TypeError, AttributeError, NotFound):
        raise InvalidReference(f"{what} does not exist", field=field, id=str(raw_id)[:64]) from None


def live_category(uow: UnitOfWork, raw_id: str, field: str, what: str = "category") -> Category:
    """A category named in a request body: it must exist and not be deleted (400 otherwise)."""
    category = referenced(uow, Category, raw_id, field, what)
    if category.deleted:
        raise InvalidReference(f"{what} does not exist", field=field, id=str(raw_id)[:64])
    return category


def category_tree(uow: UnitOfWork) -> CategoryTree:
    """The tree aggregate; the first time, started from the categories created before it."""
    tree = uow.find(CategoryTree, CategoryTree.ID)
    if tree is not None:
        return tree
    nodes: dict[str, dict[str, Any]] = {}
    topic = get_topic(Category.Created)
    position: int | None = None
    while True:
        batch = uow.app.recorder.select_notifications(
            position, 500, topics=[topic], inclusive_of_start=False
        )
        for notification in batch:
            created: Any = uow.app.mapper.to_domain_event(notification)
            nodes[str(created.originator_id)] = {"parent": created.parent_id, "name": created.name}
        if len(batch) < 500:
            return CategoryTree.start(nodes)
        position = batch[-1].id


def banned_keywords(uow: UnitOfWork) -> list[str]:
    defined = uow.find(BannedKeywords, BannedKeywords.ID)
    return list(DEFAULT_BANNED_KEYWORDS if defined is None else defined.keywords)


def seller_with_listing_rights(uow: UnitOfWork, seller_id: str) -> Account:
    seller = uow.get(Account, UUID(seller_id), AccountNotFound)
    if seller.role != "seller":
        raise ListingRightsRequired("only approved sellers can list products")
    if not seller.can_list_products:
        raise ListingRightsRequired(
            "your listing rights are suspended after buyer reports; an admin can restore them",
            reason="LISTING_RIGHTS_SUSPENDED",
        )
    return seller


def sync_inventory(uow: UnitOfWork, product: Product) -> None:
    """Tell the product's inventory whether it may be sold (see Inventory.listed)."""
    inventory = uow.find(Inventory, Inventory.create_id(str(product.id)))
    if inventory is not None and inventory.set_listed(product.is_active):
        uow.add(inventory)


def product_for(uow: UnitOfWork, product_id: UUID, actor_id: str, is_admin: bool) -> Product:
    """The product, if the caller may act on it: its seller, or an admin.

    Another seller gets 403 for a product anyone can see, and 404 for one that is hidden
    (delisted or suspended), so hidden listings do not leak.
    """
    product = uow.get(Product, product_id, ProductNotFound)
    if is_admin:
        return product
    if product.seller_id != actor_id and not product.is_active:
        raise ProductNotFound("product not found", id=str(product_id))
    product.check_owner(actor_id)
    return product


# --- categories and banned keywords ---------------------------------------------------------
@dataclass(frozen=True)
class CreateCategory(Command):
    category_id: UUID
    name: str
    parent_id: str | None


def create_category(uow: UnitOfWork, cmd: CreateCategory) -> Category:
    parent = None
    if cmd.parent_id is not None:
        parent = live_category(uow, cmd.parent_id, "parentId", "parent category")
    category = Category.create(cmd.category_id, cmd.name, parent)
    tree = category_tree(uow)
    tree.add(str(category.id), category.parent_id, category.name)
    uow.add(category, tree)
    return category


@dataclass(frozen=True)
class ReplaceBannedKeywords(Command):
    keywords: tuple[str, ...]


def replace_banned_keywords(uow: UnitOfWork, cmd: ReplaceBannedKeywords) -> list[str]:
    current = uow.find(BannedKeywords, BannedKeywords.ID)
    if current is None:
        current = BannedKeywords.define(list(cmd.keywords))
    else:
        current.replace(list(cmd.keywords))
    uow.add(current)
    return list(current.keywords)


# --- products -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateProduct(Command):
    product_id: UUID
    seller_id: str
    name: str
    description: str
    category_id: str
    price: Decimal
    images: tuple[str, ...] = ()
    supplier_ids: tuple[str, ...] = ()
    #: SHOPLEDGER_PRODUCT_REVIEW: the product waits for an admin's approval.
    review: bool = False


def _suppliers(uow: UnitOfWork, supplier_ids: tuple[str, ...]) -> list[str]:
    """The suppliers' ids in canonical form (each must exist)."""
    return [str(referenced(uow, Supplier, s, "supplierIds", "supplier").id) for s in supplier_ids]


def create_product(uow: UnitOfWork, cmd: CreateProduct) -> Product:
    seller_with_listing_rights(uow, cmd.seller_id)
    category = live_category(uow, cmd.category_id, "categoryId")
    product = Product.list_new(
        cmd.product_id,
        seller_id=cmd.seller_id,
        name=cmd.name,
        description=cmd.description,
        category_id=str(category.id),
        price=cmd.price,
        images=list(cmd.images),
        supplier_ids=_suppliers(uow, cmd.supplier_ids),
        banned=banned_keywords(uow),
        at=uow.now,
        under_review=cmd.review,
    )
    uow.add(product)
    return product


@dataclass(frozen=True)
class UpdateProduct(Command):
    product_id: UUID
    actor_id: str
    name: str | None = None
    description: str | None = None
    category_id: str | None = None
    price: Decimal | None = None
    images: tuple[str, ...] | None = None
    supplier_ids: tuple[str, ...] | None = None
    #: SHOPLEDGER_PRODUCT_REVIEW: changed content waits for an admin's approval.
    review: bool = False


def update_product(uow: UnitOfWork, cmd: UpdateProduct) -> Product:
    product = product_for(uow, cmd.product_id, cmd.actor_id, is_admin=False)
    seller_with_listing_rights(uow, cmd.actor_id)
    category_id = None
    if cmd.category_id is not None:
        category_id = str(live_category(uow, cmd.category_id, "categoryId").id)
    supplier_ids = None if cmd.supplier_ids is None else _suppliers(uow, cmd.supplier_ids)
    product.edit(
        name=cmd.name,
        description=cmd.description,
        category_id=category_id,
        images=None if cmd.images is None else list(cmd.images),
        supplier_ids=supplier_ids,
        banned=banned_keywords(uow),
        at=uow.now,
        review_required=cmd.review,
    )
    if cmd.price is not None:
        product.change_price(cmd.price, uow.now)
    uow.add(product)
    return product


@dataclass(frozen=True)
class DelistProduct(Command):
    product_id: UUID
    actor_id: str
    is_admin: bool = False


def delist_product(uow: UnitOfWork, cmd: DelistProduct) -> Product:
    product = product_for(uow, cmd.product_id, cmd.actor_id, cmd.is_admin)
    product.delist(uow.now)
    uow.add(product)
    sync_inventory(uow, product)
    return product


@dataclass(frozen=True)
class RelistProduct(Command):
    product_id: UUID
    actor_id: str


def relist_product(uow: UnitOfWork, cmd: RelistProduct) -> Product:
    product = product_for(uow, cmd.product_id, cmd.actor_id, is_admin=False)
    seller_with_listing_rights(uow, cmd.actor_id)
    product.relist(uow.now)
    uow.add(product)
    sync_inventory(uow, product)
    return product


@dataclass(frozen=True)
class SuspendProduct(Command):
    product_id: UUID
    reason: str


def suspend_product(uow: UnitOfWork, cmd: SuspendProduct) -> Product:
    product = uow.get(Product, cmd.product_id, ProductNotFound)
    product.suspend(cmd.reason, uow.now)
    uow.add(product)
    sync_inventory(uow, product)
    return product


@dataclass(frozen=True)
class ReinstateProduct(Command):
    product_id: UUID


def reinstate_product(uow: UnitOfWork, cmd: ReinstateProduct) -> Product:
    product = uow.get(Product, cmd.product_id, ProductNotFound)
    product.reinstate(uow.now)
    uow.add(product)
    sync_inventory(uow, product)
    return product


HANDLERS: dict[type, Handler] = {
    CreateCategory: create_category,
    ReplaceBannedKeywords: replace_banned_keywords,
    CreateProduct: create_product,
    UpdateProduct: update_product,
    DelistProduct: delist_product,
    RelistProduct: relist_product,
    SuspendProduct: suspend_product,
    ReinstateProduct: reinstate_product,
}
