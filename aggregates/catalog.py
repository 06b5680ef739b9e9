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
    name = " ".join(unicodedata.normalize("NFC", raw).split())
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
    description = unicodedata.normalize("NFC", raw).strip()
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

    @event("Created")
    def __init__(self, name: str, parent_id: str | None, path: list[str]) -> None:
        self.name = name
        self.parent_id = parent_id
        self.path = path

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
    ) -> Product:
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
        )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

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
    ) -> None:
        """Change descriptive fields; unchanged values record nothing."""
        changes: dict[str, Any] = {}
        new_name = self.name if name is None else clean_name(name)
        new_description = (
            self.description if description is None else clean_description(description)
        )
        if name is not None or description is not None:
            _check_banned(new_name, new_description, banned)
        if new_name != self.name:
            changes["name"] = new_name
        if new_description != self.description:
            changes["description"] = new_description
        if category_id is not None and category_id != self.category_id:
            changes["category_id"] = category_id
        if images is not None and (cleaned := clean_images(images)) != self.images:
            changes["images"] = cleaned
        if (
            supplier_ids is not None
            and (ids := clean_supplier_ids(supplier_ids)) != self.supplier_ids
        ):
            changes["supplier_ids"] = ids
        if changes:
            self._edited(changes, at)

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
