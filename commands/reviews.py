"""Review commands: write (the order's buyer, once it is DELIVERED), edit, reply, hide, restore."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aggregates.accounts import Account, AccountNotFound
from aggregates.orders import InvalidOrderStatus, Order, OrderNotFound
from aggregates.reviews import InvalidReview, Review, ReviewAlreadyExists, ReviewNotFound
from commands.bus import Command, Handler, UnitOfWork
from commands.catalog import banned_keywords

#: An order can be reviewed once it has been delivered.
REVIEWABLE = frozenset({"DELIVERED"})


@dataclass(frozen=True)
class WriteReview(Command):
    order_id: UUID
    buyer_id: str
    product_id: str
    product_score: int
    seller_score: int
    text: str
    images: tuple[str, ...]


def write_review(uow: UnitOfWork, cmd: WriteReview) -> Review:
    order = uow.find(Order, cmd.order_id)
    if order is None or order.buyer_id != cmd.buyer_id:  # another buyer's order: not found
        raise OrderNotFound("order not found", orderId=str(cmd.order_id))
    if order.status not in REVIEWABLE:
        raise InvalidOrderStatus(
            "an order can be reviewed once it is DELIVERED",
            orderId=str(cmd.order_id),
            status=order.status,
        )
    item = next((i for i in order.items if i["productId"] == cmd.product_id), None)
    if item is None:
        raise InvalidReview(
            "the order has no such product", field="productId", problem="NOT_IN_ORDER"
        )
    review_id = Review.create_id(str(order.id), cmd.product_id)
    if uow.exists(review_id):
        raise ReviewAlreadyExists(
            "this product of this order has been reviewed already",
            reviewId=str(review_id),
            orderId=str(order.id),
            productId=cmd.product_id,
        )
    buyer = uow.get(Account, UUID(cmd.buyer_id), AccountNotFound)
    review = Review.write(
        order_id=str(order.id),
        product_id=cmd.product_id,
        seller_id=item["sellerId"],
        buyer_id=cmd.buyer_id,
        reviewer_name=buyer.display_name or "",
        product_score=cmd.product_score,
        seller_score=cmd.seller_score,
        text=cmd.text,
        images=list(cmd.images),
        banned=banned_keywords(uow),
        at=uow.now,
    )
    uow.add(review)
    return review


def _review(uow: UnitOfWork, review_id: UUID) -> Review:
    return uow.get(Review, review_id, ReviewNotFound)


@dataclass(frozen=True)
class EditReview(Command):
    review_id: UUID
    buyer_id: str
    product_score: int | None = None
    seller_score: int | None = None
    text: str | None = None
    images: tuple[str, ...] | None = None


def edit_review(uow: UnitOfWork, cmd: EditReview) -> Review:
    review = _review(uow, cmd.review_id)
    if review.buyer_id != cmd.buyer_id:
        raise ReviewNotFound("review not found", reviewId=str(cmd.review_id))
    changed = review.edit(
        product_score=cmd.product_score,
        seller_score=cmd.seller_score,
        text=cmd.text,
        images=None if cmd.images is None else list(cmd.images),
        banned=banned_keywords(uow),
        at=uow.now,
    )
    if changed:
        uow.add(review)
    return review


@dataclass(frozen=True)
class ReplyToReview(Command):
    review_id: UUID
    seller_id: str
    text: str


def reply_to_review(uow: UnitOfWork, cmd: ReplyToReview) -> Review:
    review = _review(uow, cmd.review_id)
    if review.seller_id != cmd.seller_id:  # only the reviewed seller; to anyone else: not found
        raise ReviewNotFound("review not found", reviewId=str(cmd.review_id))
    review.answer(cmd.seller_id, cmd.text, banned_keywords(uow), uow.now)
    uow.add(review)
    return review


@dataclass(frozen=True)
class ModerateReview(Command):
    review_id: UUID
    admin_id: str
    hide: bool  # False: restore
    reason: str


def moderate_review(uow: UnitOfWork, cmd: ModerateReview) -> Review:
    review = _review(uow, cmd.review_id)
    if cmd.hide:
        review.hide(cmd.admin_id, cmd.reason, uow.now)
    else:
        review.restore(cmd.admin_id, cmd.reason, uow.now)
    uow.add(review)
    return review


HANDLERS: dict[type, Handler] = {
    WriteReview: write_review,
    EditReview: edit_review,
    ReplyToReview: reply_to_review,
    ModerateReview: moderate_review,
}
