"""Reviews: a buyer scores a delivered order's product and its seller (1-10 each).

A review's id derives from (order, product), so a buyer reviews each product of an order once
and two racing submissions cannot both land (the second loses the version race, retries, and
finds the first). Edits, the seller's reply and an admin's hide/restore are events on the
review, so its whole history stays in the store.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.catalog import InvalidProduct, clean_image_url, find_banned
from aggregates.errors import Conflict, DomainError, NotFound
from aggregates.text import check_text

SCORE_MIN, SCORE_MAX = 1, 10
TEXT_MAX = 2_000
REPLY_MAX = 2_000
REASON_MAX = 500
MAX_IMAGES = 5
EDIT_WINDOW = timedelta(days=30)
_NS = UUID("5d1c7a3e-2b8f-4e61-9c0d-8f3a6b2e4d17")
#: Line breaks and tabs are text; every other control character is refused.
_ALLOWED_CONTROLS = frozenset("\n\t")


class InvalidReview(DomainError):
    """A field of a review or reply breaks a rule (400 VALIDATION_ERROR, field in details)."""


class ReviewNotFound(NotFound):
    pass


class ReviewAlreadyExists(Conflict):
    """The buyer already reviewed this product of this order (409 REVIEW_ALREADY_EXISTS)."""


class ReviewAlreadyReplied(Conflict):
    """The seller has replied once already (409 REVIEW_ALREADY_REPLIED)."""


class ReviewNotEditable(Conflict):
    """The edit window (30 days from the review) has closed (409 REVIEW_NOT_EDITABLE)."""


def clean_score(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidReview(f"{field} must be an integer", field=field, problem="NOT_AN_INTEGER")
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise InvalidReview(
            f"{field} must be from {SCORE_MIN} to {SCORE_MAX}", field=field, problem="OUT_OF_RANGE"
        )
    return value


def clean_text(raw: str, field: str, limit: int, banned: list[str] | tuple[str, ...]) -> str:
    """NFC, stripped; at most ``limit`` characters, no control characters but line breaks and
    tabs, no banned keyword (matched as in product names)."""
    text = check_text(
        raw.strip(), field, multiline=True, required=False, error=InvalidReview
    ).strip()
    if len(text) > limit:
        raise InvalidReview(
            f"{field} must be at most {limit} characters",
            field=field,
            problem="TOO_LONG",
            length=len(text),
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS for ch in text):
        raise InvalidReview(
            f"{field} must not contain control characters", field=field, problem="CONTROL_CHARACTER"
        )
    keyword = find_banned(text, banned)
    if keyword is not None:
        raise InvalidReview(
            f"the {field} contains a banned keyword: {keyword}",
            field=field,
            problem="BANNED_KEYWORD",
            keyword=keyword,
        )
    return text


def clean_images(raw: list[str]) -> list[str]:
    if len(raw) > MAX_IMAGES:
        raise InvalidReview(f"at most {MAX_IMAGES} images", field="images", problem="TOO_MANY")
    try:
        images = [clean_image_url(u) for u in raw]
    except InvalidProduct as exc:
        raise InvalidReview(exc.message, field="images", problem="BAD_FORMAT") from None
    if len(set(images)) != len(images):
        raise InvalidReview("an image is listed twice", field="images", problem="DUPLICATE")
    return images


def clean_reason(raw: str) -> str:
    reason = " ".join(unicodedata.normalize("NFC", raw).split())
    if not reason:
        raise InvalidReview("a reason is required", field="reason", problem="REQUIRED")
    if len(reason) > REASON_MAX:
        raise InvalidReview(
            f"reason must be at most {REASON_MAX} characters", field="reason", problem="TOO_LONG"
        )
    return reason


def mask_name(display_name: str) -> str:
    """What other users see of the reviewer: the first character and two stars."""
    name = display_name.strip()
    return f"{name[:1]}**" if name else "**"


class Review(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Written: ClassVar[Any]
        Edited: ClassVar[Any]
        Replied: ClassVar[Any]
        Hidden: ClassVar[Any]
        Restored: ClassVar[Any]

    @staticmethod
    def create_id(order_id: str, product_id: str) -> UUID:
        return uuid5(_NS, f"{order_id}/{product_id}")

    @classmethod
    def write(
        cls,
        *,
        order_id: str,
        product_id: str,
        seller_id: str,
        buyer_id: str,
        reviewer_name: str,
        product_score: int,
        seller_score: int,
        text: str,
        images: list[str],
        banned: list[str],
        at: datetime,
    ) -> Review:
        return cls(
            order_id=order_id,
            product_id=product_id,
            seller_id=seller_id,
            buyer_id=buyer_id,
            reviewer_name=mask_name(reviewer_name),
            product_score=clean_score(product_score, "productScore"),
            seller_score=clean_score(seller_score, "sellerScore"),
            text=clean_text(text, "text", TEXT_MAX, banned),
            images=clean_images(images),
            at=at,
        )

    @event("Written")
    def __init__(
        self,
        order_id: str,
        product_id: str,
        seller_id: str,
        buyer_id: str,
        reviewer_name: str,
        product_score: int,
        seller_score: int,
        text: str,
        images: list[str],
        at: datetime,
    ) -> None:
        self.order_id = order_id
        self.product_id = product_id
        self.seller_id = seller_id
        self.buyer_id = buyer_id
        self.reviewer_name = reviewer_name
        self.product_score = product_score
        self.seller_score = seller_score
        self.text = text
        self.images = list(images)
        self.written_at = at
        self.updated_at = at
        self.edits = 0
        self.reply: dict[str, Any] | None = None
        self.hidden = False
        self.hidden_reason: str | None = None

    # --- the buyer ------------------------------------------------------------------------
    def edit(
        self,
        *,
        product_score: int | None,
        seller_score: int | None,
        text: str | None,
        images: list[str] | None,
        banned: list[str],
        at: datetime,
    ) -> bool:
        """Change what was given; False when nothing changed (no event)."""
        if at - self.written_at > EDIT_WINDOW:
            raise ReviewNotEditable(
                f"a review can be edited for {EDIT_WINDOW.days} days after it was written",
                reviewId=str(self.id),
            )
        old: dict[str, Any] = {
            "product_score": self.product_score,
            "seller_score": self.seller_score,
            "text": self.text,
            "images": self.images,
        }
        new = dict(old)
        if product_score is not None:
            new["product_score"] = clean_score(product_score, "productScore")
        if seller_score is not None:
            new["seller_score"] = clean_score(seller_score, "sellerScore")
        if text is not None:
            new["text"] = clean_text(text, "text", TEXT_MAX, banned)
        if images is not None:
            new["images"] = clean_images(images)
        if new == old:
            return False
        self._edited(at=at, **new)
        return True

    @event("Edited")
    def _edited(
        self, product_score: int, seller_score: int, text: str, images: list[str], at: datetime
    ) -> None:
        self.product_score = product_score
        self.seller_score = seller_score
        self.text = text
        self.images = list(images)
        self.updated_at = at
        self.edits += 1

    # --- the seller -----------------------------------------------------------------------
    def answer(self, seller_id: str, text: str, banned: list[str], at: datetime) -> None:
        if self.reply is not None:
            raise ReviewAlreadyReplied(
                "the seller has already replied to this review", reviewId=str(self.id)
            )
        cleaned = clean_text(text, "text", REPLY_MAX, banned)
        if not cleaned:
            raise InvalidReview("text is required", field="text", problem="REQUIRED")
        self._replied(seller_id=seller_id, text=cleaned, at=at)

    @event("Replied")
    def _replied(self, seller_id: str, text: str, at: datetime) -> None:
        self.reply = {"sellerId": seller_id, "text": text, "repliedAt": at}

    # --- admins ---------------------------------------------------------------------------
    def hide(self, admin_id: str, reason: str, at: datetime) -> None:
        if self.hidden:
            raise Conflict("the review is already hidden", reviewId=str(self.id))
        self._hidden(admin_id=admin_id, reason=clean_reason(reason), at=at)

    @event("Hidden")
    def _hidden(self, admin_id: str, reason: str, at: datetime) -> None:
        self.hidden = True
        self.hidden_reason = reason

    def restore(self, admin_id: str, reason: str, at: datetime) -> None:
        if not self.hidden:
            raise Conflict("the review is not hidden", reviewId=str(self.id))
        self._restored(admin_id=admin_id, reason=clean_reason(reason), at=at)

    @event("Restored")
    def _restored(self, admin_id: str, reason: str, at: datetime) -> None:
        self.hidden = False
        self.hidden_reason = None
