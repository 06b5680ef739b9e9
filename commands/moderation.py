"""Moderation commands: an admin's decisions on the catalog.

Categories are renamed, moved (with their subtree) and deleted through the one
:class:`CategoryTree`, which refuses cycles and non-empty deletions; products waiting for
review (SHOPLEDGER_PRODUCT_REVIEW) are approved or rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aggregates.catalog import (
    Category,
    CategoryNotEmpty,
    CategoryNotFound,
    Product,
    ProductNotFound,
)
from commands.bus import Command, Handler, UnitOfWork
from commands.catalog import category_tree, live_category, sync_inventory

#: ``ChangeCategory.parent_id`` when the request does not move the category.
KEEP = "keep"


def _category(uow: UnitOfWork, category_id: UUID) -> Category:
    category = uow.get(Category, category_id, CategoryNotFound)
    if category.deleted:
        raise CategoryNotFound("category not found", categoryId=str(category_id))
    return category


@dataclass(frozen=True)
class ChangeCategory(Command):
    """Rename and/or move a category. ``parent_id`` KEEP: stay; None: move to the root."""

    category_id: UUID
    name: str | None = None
    parent_id: str | None = KEEP


def change_category(uow: UnitOfWork, cmd: ChangeCategory) -> Category:
    category = _category(uow, cmd.category_id)
    tree = category_tree(uow)
    own = str(category.id)
    if cmd.parent_id != KEEP:
        parent_id = None
        if cmd.parent_id is not None:
            parent_id = str(live_category(uow, cmd.parent_id, "parentId", "parent category").id)
        if tree.move(own, parent_id):
            # The category and every descendant get their new ancestors, in this transaction.
            for member in [own, *tree.descendants(own)]:
                node = uow.get(Category, UUID(member), CategoryNotFound)
                node.move(tree.nodes[member]["parent"], tree.ancestors(member))
                uow.add(node)
    if cmd.name is not None and tree.rename(own, cmd.name):
        category.rename(tree.nodes[own]["name"])
    uow.add(category, tree)
    return category


@dataclass(frozen=True)
class DeleteCategory(Command):
    """Delete an empty category. ``has_products``: the catalog read model (read with the
    caller's own writes) found products in it; the aggregate checks subcategories."""

    category_id: UUID
    has_products: bool


def delete_category(uow: UnitOfWork, cmd: DeleteCategory) -> Category:
    category = _category(uow, cmd.category_id)
    tree = category_tree(uow)
    tree.remove(str(category.id))
    if cmd.has_products:
        raise CategoryNotEmpty(
            "the category still has products; move them first", reason="HAS_PRODUCTS"
        )
    category.delete()
    uow.add(category, tree)
    return category


# --- product review ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ApproveProduct(Command):
    product_id: UUID


def approve_product(uow: UnitOfWork, cmd: ApproveProduct) -> Product:
    product = uow.get(Product, cmd.product_id, ProductNotFound)
    product.approve(uow.now)
    uow.add(product)
    sync_inventory(uow, product)
    return product


@dataclass(frozen=True)
class RejectProduct(Command):
    product_id: UUID
    reason: str


def reject_product(uow: UnitOfWork, cmd: RejectProduct) -> Product:
    product = uow.get(Product, cmd.product_id, ProductNotFound)
    product.reject(cmd.reason, uow.now)
    uow.add(product)
    return product


HANDLERS: dict[type, Handler] = {
    ChangeCategory: change_category,
    DeleteCategory: delete_category,
    ApproveProduct: approve_product,
    RejectProduct: reject_product,
}
