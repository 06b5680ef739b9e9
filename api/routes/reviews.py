"""Reviews: buyers review delivered orders' products and sellers; sellers reply once; admins
hide or restore; anyone reads a product's or a seller's reviews with the rating summary."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, Field, StrictInt
from pydantic.alias_generators import to_camel

from aggregates.reviews import MAX_IMAGES, REPLY_MAX, TEXT_MAX, Review, clean_images, clean_text
from api.auth import AdminUser, CurrentUser, OptionalUser, Principal, SellerUser
from api.deps import ContainerDep, PageDep, path_id, reads, run_command
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import Review as ReviewView
from api.responses import ReviewList
from api.routes.catalog import visible_product
from api.schemas import RequestBody
from api.validation import MultilineText, domain_rule, no_banned_keywords
from commands.reviews import EditReview, ModerateReview, ReplyToReview, WriteReview
from queries import reviews as q
from queries.catalog import seller_of_record

router = APIRouter(tags=["reviews"])
READS_REVIEWS = [Depends(reads("reviews"))]
ReviewSort = Literal["newest", "highest", "lowest"]
Score = Annotated[StrictInt, Field(ge=1, le=10, description="1 (worst) to 10 (best)")]


def _text_rule(field: str, limit: int) -> Any:
    return domain_rule(lambda text: clean_text(text, field, limit, []))


ReviewText = Annotated[
    MultilineText,
    Field(max_length=TEXT_MAX),
    AfterValidator(_text_rule("text", TEXT_MAX)),
    AfterValidator(no_banned_keywords("text")),
]
Images = Annotated[
    list[str],
    Field(max_length=MAX_IMAGES, description="http or https URLs"),
    AfterValidator(domain_rule(clean_images)),
]


class WriteReviewBody(RequestBody):
    model_config = examples(
        {
            "productId": "5f0c3a9e-8b1d-4c2e-9f6a-1b2c3d4e5f60",
            "productScore": 9,
            "sellerScore": 10,
            "text": "保濕效果很好，出貨也快。",
            "images": ["https://img.example.com/review/1.jpg"],
        }
    )
    product_id: str = Field(min_length=1, max_length=64)
    product_score: Score
    seller_score: Score
    text: ReviewText = ""
    images: Images = Field(default_factory=list)


class EditReviewBody(RequestBody):
    model_config = examples({"productScore": 7, "text": "用了一個月，效果普通。"})
    product_score: Score | None = None
    seller_score: Score | None = None
    text: ReviewText | None = None
    images: Images | None = None


class ReplyBody(RequestBody):
    model_config = examples({"text": "謝謝您的支持！"})
    text: Annotated[
        MultilineText,
        Field(min_length=1, max_length=REPLY_MAX),
        AfterValidator(_text_rule("text", REPLY_MAX)),
        AfterValidator(no_banned_keywords("text")),
    ]


class ModerationBody(RequestBody):
    model_config = examples({"reason": "含有個人聯絡資訊"})
    reason: MultilineText = Field(min_length=1, max_length=500)


def review_document(review: Review, *, moderation: bool = False) -> dict[str, Any]:
    """The review as its author or an admin sees it (with its order), from the saved
    aggregate, in the read model's one shape (queries/reviews.py)."""
    reply = review.reply or {}
    row = SimpleNamespace(
        review_id=str(review.id),
        order_id=review.order_id,
        product_id=review.product_id,
        seller_id=review.seller_id,
        reviewer_name=review.reviewer_name,
        product_score=review.product_score,
        seller_score=review.seller_score,
        text=review.text,
        images=json.dumps(review.images),
        edits=review.edits,
        created_at=review.written_at,
        updated_at=review.updated_at,
        reply_text=reply.get("text"),
        replied_at=reply.get("repliedAt"),
        hidden=review.hidden,
        hidden_reason=review.hidden_reason,
    )
    view = q.review_view(row, moderation=moderation)
    view.setdefault("orderId", review.order_id)
    return view


def _is_admin(principal: Principal | None) -> bool:
    return principal is not None and principal.has_role("admin")


@router.post(
    "/api/sales/orders/{order_id}/reviews",
    status_code=201,
    response_model=None,
    responses=documented(
        ReviewView,
        status=201,
        errors={
            400: "VALIDATION_ERROR",
            404: "ORDER_NOT_FOUND",
            409: ("REVIEW_ALREADY_EXISTS", "INVALID_ORDER_STATUS", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def write_review(
    order_id: str,
    body: WriteReviewBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Review one product of a delivered order (the order's buyer).

    Scores 1-10 for the product and for its seller; text up to 2,000 characters; up to 5
    image URLs. One review per order and product (a second is 409 REVIEW_ALREADY_EXISTS); an
    order not DELIVERED yet is 409 INVALID_ORDER_STATUS. The seller is notified
    (REVIEW_RECEIVED)."""
    command = WriteReview(
        order_id=path_id(order_id, "ORDER_NOT_FOUND", "order"),
        buyer_id=principal.account_id,
        product_id=body.product_id,
        product_score=body.product_score,
        seller_score=body.seller_score,
        text=body.text,
        images=tuple(body.images),
    )
    return run_command(
        request, container, command, lambda review: (201, review_document(review)), body
    )


@router.put(
    "/api/reviews/{review_id}",
    response_model=None,
    responses=documented(
        ReviewView,
        errors={
            400: "VALIDATION_ERROR",
            404: "REVIEW_NOT_FOUND",
            409: ("REVIEW_NOT_EDITABLE", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def edit_review(
    review_id: str,
    body: EditReviewBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Edit your review within 30 days of writing it (every version stays in its history).

    Send only what changes; a field left out keeps its value."""
    given = body.model_fields_set
    if not given:
        raise ApiError(400, "VALIDATION_ERROR", "give at least one field to change")
    nulls = [
        {"field": to_camel(f), "problem": "REQUIRED", "message": "when given, it needs a value"}
        for f in sorted(given)
        if getattr(body, f) is None
    ]
    if nulls:
        raise ApiError(
            400, "VALIDATION_ERROR", "a field, when given, must have a value", {"errors": nulls}
        )
    command = EditReview(
        review_id=path_id(review_id, "REVIEW_NOT_FOUND", "review"),
        buyer_id=principal.account_id,
        product_score=body.product_score,
        seller_score=body.seller_score,
        text=body.text,
        images=None if body.images is None else tuple(body.images),
    )
    return run_command(
        request, container, command, lambda review: (200, review_document(review)), body
    )


@router.post(
    "/api/reviews/{review_id}/reply",
    status_code=201,
    response_model=None,
    responses=documented(
        ReviewView,
        status=201,
        errors={
            400: "VALIDATION_ERROR",
            403: "FORBIDDEN",
            404: "REVIEW_NOT_FOUND",
            409: ("REVIEW_ALREADY_REPLIED", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def reply(
    review_id: str,
    body: ReplyBody,
    principal: SellerUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """The reviewed seller answers a review, once (a second reply is 409
    REVIEW_ALREADY_REPLIED); another seller's review is 404."""
    command = ReplyToReview(
        review_id=path_id(review_id, "REVIEW_NOT_FOUND", "review"),
        seller_id=principal.account_id,
        text=body.text,
    )
    return run_command(
        request, container, command, lambda review: (201, review_document(review)), body
    )


def _moderate(
    review_id: str, body: ModerationBody, hide: bool, admin: Principal, request: Request, c: Any
) -> Response:
    command = ModerateReview(
        review_id=path_id(review_id, "REVIEW_NOT_FOUND", "review"),
        admin_id=admin.account_id,
        hide=hide,
        reason=body.reason,
    )
    return run_command(
        request,
        c,
        command,
        lambda review: (200, review_document(review, moderation=True)),
        body,
        scope="hide" if hide else "restore",
    )


MODERATION = documented(
    ReviewView,
    errors={
        400: "VALIDATION_ERROR",
        403: "FORBIDDEN",
        404: "REVIEW_NOT_FOUND",
        409: "CONFLICT",
    },
)


@router.post(
    "/api/reviews/{review_id}/hide",
    response_model=None,
    responses=MODERATION,
    openapi_extra=IDEMPOTENT,
)
def hide(
    review_id: str,
    body: ModerationBody,
    principal: AdminUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Hide a review (admins, with a reason): it leaves every list and every average.
    Hiding a hidden review is 409 CONFLICT."""
    return _moderate(review_id, body, True, principal, request, container)


@router.post(
    "/api/reviews/{review_id}/restore",
    response_model=None,
    responses=MODERATION,
    openapi_extra=IDEMPOTENT,
)
def restore(
    review_id: str,
    body: ModerationBody,
    principal: AdminUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Show a hidden review again (admins, with a reason)."""
    return _moderate(review_id, body, False, principal, request, container)


@router.get(
    "/api/reviews/{review_id}",
    dependencies=READS_REVIEWS,
    response_model=None,
    responses=documented(ReviewView, errors={404: "REVIEW_NOT_FOUND"}),
)
def get_review(review_id: str, container: ContainerDep, principal: OptionalUser) -> dict[str, Any]:
    """One review (public; a hidden one only for admins)."""
    row = q.get_review(container.engine, str(path_id(review_id, "REVIEW_NOT_FOUND", "review")))
    admin = _is_admin(principal)
    if row is None or (row.hidden and not admin):
        raise ApiError(404, "REVIEW_NOT_FOUND", "review not found", {"reviewId": review_id})
    return q.review_view(row, moderation=admin)


SortQuery = Annotated[ReviewSort, Query(description="newest (default), highest or lowest score")]


@router.get(
    "/api/catalog/products/{product_id}/reviews",
    dependencies=[Depends(reads("reviews", "catalog", "inventory"))],
    response_model=None,
    responses=documented(ReviewList, errors={404: "PRODUCT_NOT_FOUND"}),
)
def product_reviews(
    product_id: str,
    container: ContainerDep,
    page: PageDep,
    principal: OptionalUser,
    sort: SortQuery = "newest",
) -> dict[str, Any]:
    """A product's reviews (public), with its rating summary: average product score, count
    and the 1-10 histogram of visible reviews. Admins also see hidden ones (marked)."""
    pid = str(path_id(product_id, "PRODUCT_NOT_FOUND", "product"))
    visible_product(container, pid, principal)  # 404 as for the product itself
    return q.list_reviews(
        container.engine, "product", pid, sort, page, moderation=_is_admin(principal)
    )


@router.get(
    "/api/sellers/{seller_id}/reviews",
    dependencies=[Depends(reads("reviews", "catalog"))],
    response_model=None,
    responses=documented(ReviewList, errors={404: "SELLER_NOT_FOUND"}),
)
def seller_reviews(
    seller_id: str,
    container: ContainerDep,
    page: PageDep,
    principal: OptionalUser,
    sort: SortQuery = "newest",
) -> dict[str, Any]:
    """A seller's reviews (public), with the seller's rating summary (average seller score,
    count, histogram). Admins also see hidden ones (marked)."""
    sid = str(path_id(seller_id, "SELLER_NOT_FOUND", "seller"))
    if not seller_of_record(container.engine, sid):
        raise ApiError(404, "SELLER_NOT_FOUND", "seller not found", {"sellerId": seller_id})
    return q.list_reviews(
        container.engine, "seller", sid, sort, page, moderation=_is_admin(principal)
    )
