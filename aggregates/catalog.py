"""Catalog: categories (nested to any depth), products and their prices, banned keywords.

Pure domain code. Times come in as arguments (``at``) so price history can be told exactly.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError, NotFound
from aggregates.promotions import (
    SaleNotFound,
    SaleWindow,
    check_cancellable,
    effective_price,
    plan_sale,
    sale_in_force,
)
from aggregates.text import check_text

NAME_MAX = 100
DESCRIPTION_MAX = 5000
CATEGORY_NAME_MAX = 50
MAX_IMAGES = 10
IMAGE_URL_MAX = 2048
MAX_SUPPLIERS = 20
KEYWORD_MAX = 50
MAX_KEYWORDS = 500
#: The list in force until an admin replaces it (API.md: non-empty, includes 仿冒 and 盜版).
DEFAULT_BANNED_KEYWORDS: tuple[str, ...] = (
    "仿冒",
    "盜版",
    "假貨",
    "高仿",
    "counterfeit",
    "replica",
)
PRODUCT_STATUSES = ("active", "delisted", "suspended")


# --- errors ---------------------------------------------------------------------------------
class InvalidProduct(DomainError):
    """A product field breaks a rule (400 VALIDATION_ERROR, with the field in details)."""


class BannedKeyword(InvalidProduct):
    """The text contains a keyword on the admin-managed banned list."""


class ProductNotFound(NotFound):
    pass


class CategoryNotFound(NotFound):
    pass


class ListingRightsRequired(DomainError):
    """Only approved sellers with listing rights may create or edit products (403)."""


class NotYourProduct(DomainError):
    """Another seller's product (403)."""


class ProductStateConflict(Conflict):
    """The product's status does not allow this (already delisted, suspended by an admin...)."""


class ReviewStateConflict(Conflict):
    """The product is not waiting for review (already approved, already rejected...)."""


class CategoryCycle(Conflict):
    """A category cannot move under itself or one of its descendants."""


class CategoryNotEmpty(Conflict):
    """A category with subcategories or products cannot be deleted."""


# --- value rules ----------------------------------------------------------------------------
def fold_for_matching(text: str) -> str:
    """NFKC, case-folded, with whitespace and invisible format characters removed.

    Banned keywords are matched on this form, so ``ＣＯＵＮＴＥＲＦＥＩＴ``, ``Counterfeit``
    and ``仿 冒`` (or a zero-width space between the characters) are all caught.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and unicodedata.category(ch) != "Cf")


def find_banned(text: str, keywords: tuple[str, ...] | list[str]) -> str | None:
    """The first banned keyword found in ``text``, or None."""
    haystack = fold_for_matching(text)
    for keyword in keywords:
        needle = fold_for_matching(keyword)
        if needle and needle in haystack:
            return keyword
    return None


def clean_keywords(raw: list[str]) -> list[str]:
    """Strip, drop duplicates (by their folded form) and check sizes; order kept."""
    if len(raw) > MAX_KEYWORDS:
        raise DomainError(f"at most {MAX_KEYWORDS} banned keywords", field="keywords")
    seen: set[str] = set()
    cleaned: list[str] = []
    for item in raw:
        keyword = unicodedata.normalize("NFKC", item).strip()
        folded = fold_for_matching(keyword)
        if not folded:
            raise DomainError("a banned keyword must not be empty", field="keywords")
        if len(keyword) > KEYWORD_MAX:
            raise DomainError(
                f"a banned keyword has at most {KEYWORD_MAX} characters", field="keywords"
            )
        if folded not in seen:
            seen.add(folded)
            cleaned.append(keyword)
    return cleaned


def clean_name(raw: str) -> str:
    # Line breaks become spaces here; the API refuses them in a name (one-line Text).
    name = " ".join(
        check_text(
            raw.strip(), "name", multiline=True, required=False, error=InvalidProduct
        ).split()
    )
    if not name:
        raise InvalidProduct("name is required", field="name", problem="REQUIRED")
    if len(name) > NAME_MAX:
        raise InvalidProduct(
            f"name must be at most {NAME_MAX} characters",
            field="name",
            problem="TOO_LONG",
            length=len(name),
        )
    return name


def clean_description(raw: str) -> str:
    description = check_text(
        raw.strip(), "description", multiline=True, required=False, error=InvalidProduct
    ).strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidProduct(
            f"description must be at most {DESCRIPTION_MAX} characters",
            field="description",
            problem="TOO_LONG",
        )
    return description


def clean_image_url(raw: str) -> str:
    """Absolute http(s) URLs with a host; nothing a browser would run (``javascript:``, ``data:``)."""
    url = raw.strip()
    if len(url) > IMAGE_URL_MAX:
        raise InvalidProduct(f"an image URL has at most {IMAGE_URL_MAX} characters", field="images")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidProduct(
            "an image URL must not contain spaces or control characters", field="images"
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise InvalidProduct(
            "an image must be a valid URL", field="images", url=url[:200]
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidProduct(
            "an image must be an absolute http or https URL", field="images", url=url[:200]
        )
    del port
    return url


def clean_images(raw: list[str]) -> list[str]:
    if len(raw) > MAX_IMAGES:
        raise InvalidProduct(f"at most {MAX_IMAGES} images", field="images")
    images = [clean_image_url(u) for u in raw]
    if len(set(images)) != len(images):
        raise InvalidProduct("an image is listed twice", field="images")
    return images


def clean_supplier_ids(raw: list[str]) -> list[str]:
    if len(raw) > MAX_SUPPLIERS:
        raise InvalidProduct(f"at most {MAX_SUPPLIERS} suppliers", field="supplierIds")
    return sorted(set(raw))


def clean_category_name(raw: str) -> str:
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise DomainError("category name is required", field="name")
    if len(name) > CATEGORY_NAME_MAX:
        raise DomainError(
            f"category name must be at most {CATEGORY_NAME_MAX} characters", field="name"
        )
    return name


# --- categories -----------------------------------------------------------------------------
class Category(Aggregate):
    """A node of the category tree; ``path`` holds the ids of its ancestors, root first."""

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Created: ClassVar[Any]
        Renamed: ClassVar[Any]
        Moved: ClassVar[Any]
        Deleted: ClassVar[Any]

    @event("Created")
    def __init__(self, name: str, parent_id: str | None, path: list[str]) -> None:
        self.name = name
        self.parent_id = parent_id
        self.path = path
        self.deleted = False

    @classmethod
    def create(cls, category_id: UUID, name: str, parent: Category | None) -> Category:
        path = [] if parent is None else [*parent.path, str(parent.id)]
        return cls._create(
            cls.Created,
            id=category_id,
            name=clean_category_name(name),
            parent_id=None if parent is None else str(parent.id),
            path=path,
        )

    @staticmethod
    def sibling_key(parent_id: str | None, name: str) -> str:
        """The value a sibling name claims (case-insensitive, unique under one parent)."""
        folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
        return f"{parent_id or 'root'}:{folded}"

    @event("Renamed")
    def rename(self, name: str) -> None:
        self.name = name

    @event("Moved")
    def move(self, parent_id: str | None, path: list[str]) -> None:
        """A new parent, or new ancestors (``path``) when an ancestor moved."""
        self.parent_id = parent_id
        self.path = path

    @event("Deleted")
    def delete(self) -> None:
        self.deleted = True


class CategoryTree(Aggregate):
    """The shape of the whole category tree (id -> parent and name), one aggregate.

    Every rename, move and deletion goes through it, so two of them never decide on the same
    stale picture: racing moves (A under B, B under A) conflict on its version and the retry
    sees the cycle. Categories are few and change rarely, so one aggregate is no bottleneck.
    """

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Started: ClassVar[Any]
        NodeAdded: ClassVar[Any]
        NodeRenamed: ClassVar[Any]
        NodeMoved: ClassVar[Any]
        NodeRemoved: ClassVar[Any]

    ID = uuid5(UUID("0d6f8a52-3b1f-4f57-8d8e-2a7c1f9b4e60"), "category-tree")

    @event("Started")
    def __init__(self, nodes: dict[str, dict[str, Any]]) -> None:
        #: category id -> {"parent": parent id or None, "name": name}
        self.nodes = nodes

    @classmethod
    def start(cls, nodes: dict[str, dict[str, Any]]) -> CategoryTree:
        """The tree as it is (the categories created before it existed, if any)."""
        return cls._create(cls.Started, id=cls.ID, nodes=nodes)

    # --- queries on state ------------------------------------------------------------------
    def ancestors(self, category_id: str) -> list[str]:
        """Root first, not including the category itself."""
        chain: list[str] = []
        parent = self.nodes[category_id]["parent"]
        while parent is not None:
            chain.append(parent)
            parent = self.nodes[parent]["parent"]
        return chain[::-1]

    def children(self, category_id: str | None) -> list[str]:
        return [c for c, node in self.nodes.items() if node["parent"] == category_id]

    def descendants(self, category_id: str) -> list[str]:
        """Every category below, each after its parent."""
        found: list[str] = []
        frontier = [category_id]
        while frontier:
            nxt = [c for p in frontier for c in self.children(p)]
            found.extend(nxt)
            frontier = nxt
        return found

    def _check_name_free(self, parent_id: str | None, name: str, own: str | None) -> None:
        key = Category.sibling_key(parent_id, name)
        for other in self.children(parent_id):
            if other != own and Category.sibling_key(parent_id, self.nodes[other]["name"]) == key:
                raise Conflict("a category of that name already exists there", field="name")

    def _known(self, category_id: str) -> None:
        if category_id not in self.nodes:
            raise CategoryNotFound("category not found", categoryId=category_id)

    # --- changes ---------------------------------------------------------------------------
    def add(self, category_id: str, parent_id: str | None, name: str) -> None:
        if parent_id is not None:
            self._known(parent_id)
        self._check_name_free(parent_id, name, None)
        self._node_added(category_id, parent_id, name)

    @event("NodeAdded")
    def _node_added(self, category_id: str, parent_id: str | None, name: str) -> None:
        self.nodes = {**self.nodes, category_id: {"parent": parent_id, "name": name}}

    def rename(self, category_id: str, name: str) -> bool:
        """Returns False when the name is unchanged (nothing recorded)."""
        self._known(category_id)
        name = clean_category_name(name)
        if name == self.nodes[category_id]["name"]:
            return False
        self._check_name_free(self.nodes[category_id]["parent"], name, category_id)
        self._node_renamed(category_id, name)
        return True

    @event("NodeRenamed")
    def _node_renamed(self, category_id: str, name: str) -> None:
        self.nodes = {**self.nodes, category_id: {**self.nodes[category_id], "name": name}}

    def move(self, category_id: str, parent_id: str | None) -> bool:
        """Put a category (with its subtree) under another parent, or at the root (None).

        Returns False when the parent is unchanged. Refuses a cycle: the new parent may not
        be the category itself or one of its descendants."""
        self._known(category_id)
        if parent_id is not None:
            self._known(parent_id)
            if parent_id == category_id or category_id in self.ancestors(parent_id):
                raise CategoryCycle(
                    "a category cannot move under itself or one of its subcategories",
                    field="parentId",
                )
        if parent_id == self.nodes[category_id]["parent"]:
            return False
        self._check_name_free(parent_id, self.nodes[category_id]["name"], category_id)
        self._node_moved(category_id, parent_id)
        return True

    @event("NodeMoved")
    def _node_moved(self, category_id: str, parent_id: str | None) -> None:
        self.nodes = {**self.nodes, category_id: {**self.nodes[category_id], "parent": parent_id}}

    def remove(self, category_id: str) -> None:
        self._known(category_id)
        if self.children(category_id):
            raise CategoryNotEmpty(
                "the category has subcategories; move or delete them first",
                reason="HAS_SUBCATEGORIES",
            )
        self._node_removed(category_id)

    @event("NodeRemoved")
    def _node_removed(self, category_id: str) -> None:
        self.nodes = {k: v for k, v in self.nodes.items() if k != category_id}


# --- banned keywords ------------------------------------------------------------------------
_SINGLETON_NS = UUID("0d6f8a52-3b1f-4f57-8d8e-2a7c1f9b4e60")


class BannedKeywords(Aggregate):
    """The one admin-managed list; until first replaced, :data:`DEFAULT_BANNED_KEYWORDS` apply."""

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Defined: ClassVar[Any]
        Replaced: ClassVar[Any]

    ID = uuid5(_SINGLETON_NS, "banned-keywords")

    @event("Defined")
    def __init__(self, keywords: list[str]) -> None:
        self.keywords = keywords

    @classmethod
    def define(cls, keywords: list[str]) -> BannedKeywords:
        return cls._create(cls.Defined, id=cls.ID, keywords=clean_keywords(keywords))

    def replace(self, keywords: list[str]) -> None:
        cleaned = clean_keywords(keywords)
        if cleaned != self.keywords:
            self._replaced(cleaned)

    @event("Replaced")
    def _replaced(self, keywords: list[str]) -> None:
        self.keywords = keywords


# --- products -------------------------------------------------------------------------------
class Product(Aggregate):
    """A seller's listing: descriptive fields, its price (each change an event) and status."""

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Listed: ClassVar[Any]
        Edited: ClassVar[Any]
        PriceChanged: ClassVar[Any]
        Delisted: ClassVar[Any]
        Relisted: ClassVar[Any]
        Suspended: ClassVar[Any]
        Reinstated: ClassVar[Any]
        EditSubmitted: ClassVar[Any]
        Resubmitted: ClassVar[Any]
        ReviewApproved: ClassVar[Any]
        ReviewRejected: ClassVar[Any]
        SaleScheduled: ClassVar[Any]
        SaleCancelled: ClassVar[Any]

    @event("Listed")
    def __init__(
        self,
        seller_id: str,
        name: str,
        description: str,
        category_id: str,
        price: Decimal,
        images: list[str],
        supplier_ids: list[str],
        at: datetime,
        under_review: bool = False,
    ) -> None:
        self.seller_id = seller_id
        self.name = name
        self.description = description
        self.category_id = category_id
        self.price = price
        self.images = images
        self.supplier_ids = supplier_ids
        self.created_at = at
        self.updated_at = at
        self.status = "active"
        #: Where an admin's reinstatement returns to (the seller may have delisted it before).
        self.status_before_suspension: str | None = None
        # Listings from before moderation existed have no ``under_review``: live at once.
        #: approved | pending | rejected: the admin's decision on the latest submission.
        self.review_status = "pending" if under_review else "approved"
        #: Whether a version of the product was ever approved (it is public only then).
        self.live = not under_review
        #: Reviewed fields of an edit of a live product, waiting for approval (live stay).
        self.pending_changes: dict[str, Any] = {}
        self.submitted_at: datetime | None = at if under_review else None
        self.review_reason: str | None = None
        #: Sale windows by sale id (aggregates/promotions.py), kept after they end.
        self.sales: dict[str, SaleWindow] = {}

    @classmethod
    def list_new(
        cls,
        product_id: UUID,
        *,
        seller_id: str,
        name: str,
        description: str,
        category_id: str,
        price: Decimal,
        images: list[str],
        supplier_ids: list[str],
        banned: tuple[str, ...] | list[str],
        at: datetime,
        under_review: bool = False,
    ) -> Product:
        """A new listing; ``under_review``: it waits for an admin's approval before going live."""
        name, description = clean_name(name), clean_description(description)
        _check_banned(name, description, banned)
        return cls._create(
            cls.Listed,
            id=product_id,
            seller_id=seller_id,
            name=name,
            description=description,
            category_id=category_id,
            price=price,
            images=clean_images(images),
            supplier_ids=clean_supplier_ids(supplier_ids),
            at=at,
            under_review=under_review,
        )

    @property
    def is_active(self) -> bool:
        """On sale: listed by its seller and approved (a new product waiting is not)."""
        return self.status == "active" and self.live

    @property
    def review_pending(self) -> bool:
        return self.review_status == "pending"

    def check_owner(self, seller_id: str) -> None:
        if self.seller_id != seller_id:
            raise NotYourProduct("this product belongs to another seller")

    def edit(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        category_id: str | None = None,
        images: list[str] | None = None,
        supplier_ids: list[str] | None = None,
        banned: tuple[str, ...] | list[str],
        at: datetime,
        review_required: bool = False,
    ) -> None:
        """Change descriptive fields; unchanged values record nothing.

        Under review (``review_required``, or a submission still waiting), a change of the
        reviewed fields of a live product is held as its pending version until an admin
        approves it; the live values stay public meanwhile. A product never approved has no
        public version: it changes at once, and a rejected one goes back into the queue."""
        proposed: dict[str, Any] = {}
        if name is not None:
            proposed["name"] = clean_name(name)
        if description is not None:
            proposed["description"] = clean_description(description)
        if name is not None or description is not None:
            merged = {**self.pending_changes, **proposed} if self.live else proposed
            _check_banned(
                merged.get("name", self.name), merged.get("description", self.description), banned
            )
        if category_id is not None:
            proposed["category_id"] = category_id
        if images is not None:
            proposed["images"] = clean_images(images)
        direct: dict[str, Any] = {}
        if supplier_ids is not None and (ids := clean_supplier_ids(supplier_ids)) != (
            self.supplier_ids
        ):
            direct["supplier_ids"] = ids
        held = self.live and (review_required or self.review_pending)
        if held:
            wanted = {**self.pending_changes, **proposed}
            pending = {k: v for k, v in wanted.items() if v != getattr(self, k)}
            if pending != self.pending_changes:
                self._edit_submitted(pending, at)
        else:
            direct.update({k: v for k, v in proposed.items() if v != getattr(self, k)})
        if direct:
            self._edited(direct, at)
        if not self.live and self.review_status == "rejected" and proposed:
            self._resubmitted(at)

    @event("EditSubmitted")
    def _edit_submitted(self, changes: dict[str, Any], at: datetime) -> None:
        """The pending version replaces the previous one; none left: nothing waits."""
        self.pending_changes = changes
        if changes:
            self.review_status = "pending"
            self.submitted_at = at
            self.review_reason = None
        elif self.review_status == "pending":
            self.review_status = "approved"
            self.submitted_at = None

    @event("Resubmitted")
    def _resubmitted(self, at: datetime) -> None:
        self.review_status = "pending"
        self.submitted_at = at
        self.review_reason = None

    def approve(self, at: datetime) -> None:
        """An admin approves the waiting submission: a new product goes live, an edit's
        pending values replace the live ones."""
        if not self.review_pending:
            raise ReviewStateConflict(
                f"the product is not waiting for review ({self.review_status})"
            )
        if self.pending_changes:
            self._edited(dict(self.pending_changes), at)
        self._review_approved(self.seller_id, at)

    # The decisions name the seller, who is notified of them.
    @event("ReviewApproved")
    def _review_approved(self, seller_id: str, at: datetime) -> None:
        self.review_status = "approved"
        self.live = True
        self.pending_changes = {}
        self.submitted_at = None
        self.review_reason = None

    def reject(self, reason: str, at: datetime) -> None:
        """An admin refuses the waiting submission; a live product keeps its live version."""
        if not self.review_pending:
            raise ReviewStateConflict(
                f"the product is not waiting for review ({self.review_status})"
            )
        self._review_rejected(self.seller_id, reason, at)

    @event("ReviewRejected")
    def _review_rejected(self, seller_id: str, reason: str, at: datetime) -> None:
        self.review_status = "rejected"
        self.review_reason = reason
        self.pending_changes = {}
        self.submitted_at = None

    @event("Edited")
    def _edited(self, changes: dict[str, Any], at: datetime) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.updated_at = at

    def change_price(self, price: Decimal, at: datetime) -> None:
        if price != self.price:
            self._price_changed(price, self.price, at)

    @event("PriceChanged")
    def _price_changed(self, price: Decimal, previous: Decimal, at: datetime) -> None:
        self.price = price
        self.updated_at = at

    def delist(self, at: datetime) -> None:
        if self.status == "delisted":
            raise ProductStateConflict("the product is already delisted")
        if self.status == "suspended":
            raise ProductStateConflict("the product is suspended by an admin")
        self._delisted(at)

    @event("Delisted")
    def _delisted(self, at: datetime) -> None:
        self.status = "delisted"
        self.updated_at = at

    def relist(self, at: datetime) -> None:
        if self.status == "active":
            raise ProductStateConflict("the product is already listed")
        if self.status == "suspended":
            raise ProductStateConflict("the product is suspended by an admin")
        self._relisted(at)

    @event("Relisted")
    def _relisted(self, at: datetime) -> None:
        self.status = "active"
        self.updated_at = at

    def suspend(self, reason: str, at: datetime) -> None:
        if self.status == "suspended":
            raise ProductStateConflict("the product is already suspended")
        self._suspended(reason, at)

    @event("Suspended")
    def _suspended(self, reason: str, at: datetime) -> None:
        self.status_before_suspension = self.status
        self.status = "suspended"
        self.updated_at = at

    def reinstate(self, at: datetime) -> None:
        if self.status != "suspended":
            raise ProductStateConflict("the product is not suspended")
        self._reinstated(self.status_before_suspension or "active", at)

    @event("Reinstated")
    def _reinstated(self, status: str, at: datetime) -> None:
        self.status = status
        self.status_before_suspension = None
        self.updated_at = at

    # --- sale prices (aggregates/promotions.py) ----------------------------------------------
    def price_at(self, at: datetime) -> Decimal:
        """What a buyer pays at ``at``: the sale price in force then, else the regular price."""
        return effective_price(self.price, self.sales.values(), at)

    def sale_at(self, at: datetime) -> SaleWindow | None:
        return sale_in_force(self.price, self.sales.values(), at)

    def schedule_sale(
        self,
        sale_id: str,
        price: Decimal,
        starts_at: datetime | None,
        ends_at: datetime,
        at: datetime,
    ) -> SaleWindow:
        if self.status == "suspended":
            raise ProductStateConflict("the product is suspended by an admin")
        window = plan_sale(
            sale_id=sale_id,
            price=price,
            regular=self.price,
            starts_at=starts_at,
            ends_at=ends_at,
            now=at,
            existing=self.sales.values(),
        )
        self._sale_scheduled(sale_id, window.price, window.starts_at, window.ends_at, at)
        return self.sales[sale_id]

    @event("SaleScheduled")
    def _sale_scheduled(
        self, sale_id: str, price: Decimal, starts_at: datetime, ends_at: datetime, at: datetime
    ) -> None:
        self.sales[sale_id] = SaleWindow(sale_id, price, starts_at, ends_at, at)
        self.updated_at = at

    def cancel_sale(self, sale_id: str, at: datetime) -> SaleWindow:
        """End a running sale now, or drop a scheduled one; an ended one stays as it was."""
        window = self.sales.get(sale_id)
        if window is None:
            raise SaleNotFound("sale not found", saleId=sale_id)
        check_cancellable(window, at)
        self._sale_cancelled(sale_id, at)
        return self.sales[sale_id]

    @event("SaleCancelled")
    def _sale_cancelled(self, sale_id: str, at: datetime) -> None:
        self.sales[sale_id] = self.sales[sale_id].cancelled(at)
        self.updated_at = at


def _check_banned(name: str, description: str, banned: tuple[str, ...] | list[str]) -> None:
    for field, text in (("name", name), ("description", description)):
        keyword = find_banned(text, banned)
        if keyword is not None:
            raise BannedKeyword(
                f"the {field} contains a banned keyword: {keyword}", field=field, keyword=keyword
            )
