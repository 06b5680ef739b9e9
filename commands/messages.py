"""Message commands: send (who may write to whom), and mark a conversation read."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aggregates.accounts import Account, AccountDisabled
from aggregates.catalog import Product
from aggregates.errors import NotFound
from aggregates.messages import (
    Conversation,
    ConversationNotFound,
    InvalidMessage,
    MessageNotAllowed,
)
from aggregates.orders import Order
from commands.bus import A, Command, Handler, UnitOfWork


class RecipientNotFound(NotFound):
    """No active user has that id (404 USER_NOT_FOUND)."""


@dataclass(frozen=True)
class SendMessage(Command):
    sender_id: str
    to_user_id: str
    text: str
    order_id: str | None = None
    product_id: str | None = None


def _find(uow: UnitOfWork, cls: type[A], raw_id: str) -> A | None:
    """The aggregate named by an id from a request body; None if it is not a UUID or not found."""
    try:
        return uow.find(cls, UUID(raw_id))
    except ValueError:
        return None


def _order_between(uow: UnitOfWork, raw_id: str, seller_id: str, buyer_id: str) -> bool:
    """Whether the order is ``buyer_id``'s and holds items of ``seller_id``."""
    order = _find(uow, Order, raw_id)
    return (
        order is not None
        and order.buyer_id == buyer_id
        and any(i["sellerId"] == seller_id for i in order.items)
    )


def _check_context(uow: UnitOfWork, cmd: SendMessage, sender: Account, receiver: Account) -> None:
    """orderId must be an order between the two; productId a product that exists."""
    if cmd.order_id is not None:
        parties = (str(sender.id), str(receiver.id))
        if not (
            _order_between(uow, cmd.order_id, *parties)
            or _order_between(uow, cmd.order_id, *reversed(parties))
            or (sender.role == "admin" and _order_of(uow, cmd.order_id, str(receiver.id)))
        ):
            raise InvalidMessage(
                "orderId must name an order between you and the receiver",
                field="orderId",
                problem="NOT_FOUND",
            )
    if cmd.product_id is not None and _find(uow, Product, cmd.product_id) is None:
        raise InvalidMessage("no product has that id", field="productId", problem="NOT_FOUND")


def _order_of(uow: UnitOfWork, raw_id: str, user_id: str) -> bool:
    order = _find(uow, Order, raw_id)
    return order is not None and (
        order.buyer_id == user_id or any(i["sellerId"] == user_id for i in order.items)
    )


def _may_start(uow: UnitOfWork, cmd: SendMessage, sender: Account, receiver: Account) -> None:
    """Who may open a conversation: admins with anyone, anyone with an admin, a buyer with a
    seller, a seller with a buyer about an order of that buyer holding the seller's items."""
    if "admin" in (sender.role, receiver.role):
        return
    if receiver.role == "seller" and sender.role != "seller":
        return
    if sender.role == "seller":
        if cmd.order_id is not None and _order_between(
            uow, cmd.order_id, str(sender.id), str(receiver.id)
        ):
            return
        raise MessageNotAllowed(
            "a seller can write first only to a buyer who ordered from it, naming the order",
            reason="NO_ORDER_WITH_RECIPIENT",
        )
    raise MessageNotAllowed("buyers can message sellers and admins", reason="NOT_A_SELLER")


def send_message(uow: UnitOfWork, cmd: SendMessage) -> tuple[Conversation, int]:
    sender = uow.get(Account, UUID(cmd.sender_id))
    if not sender.is_active:
        raise AccountDisabled("a disabled account cannot send messages")
    receiver = _find(uow, Account, cmd.to_user_id)
    if receiver is None or not receiver.is_active:
        raise RecipientNotFound("no such user", toUserId=cmd.to_user_id[:64])
    if receiver.id == sender.id:
        raise InvalidMessage(
            "you cannot message yourself", field="toUserId", problem="NOT_ALLOWED_VALUE"
        )
    _check_context(uow, cmd, sender, receiver)
    conversation = uow.find(Conversation, Conversation.create_id([cmd.sender_id, cmd.to_user_id]))
    if conversation is None:
        _may_start(uow, cmd, sender, receiver)
        conversation = Conversation.start(str(sender.id), str(receiver.id), uow.now)
    seq = conversation.post(str(sender.id), cmd.text, cmd.order_id, cmd.product_id, uow.now)
    uow.add(conversation)
    return conversation, seq


@dataclass(frozen=True)
class MarkConversationRead(Command):
    conversation_id: UUID
    user_id: str


def mark_conversation_read(uow: UnitOfWork, cmd: MarkConversationRead) -> Conversation:
    conversation = uow.find(Conversation, cmd.conversation_id)
    if conversation is None or cmd.user_id not in conversation.user_ids:
        raise ConversationNotFound(
            "conversation not found", conversationId=str(cmd.conversation_id)
        )
    if conversation.mark_read(cmd.user_id, uow.now):
        uow.add(conversation)
    return conversation


HANDLERS: dict[type, Handler] = {
    SendMessage: send_message,
    MarkConversationRead: mark_conversation_read,
}
