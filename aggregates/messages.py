"""Conversations: messages between two users, optionally about an order or a product.

One conversation per pair of users (its id derives from the pair, so the first messages two
users send each other at once land in the same one). The aggregate keeps counters, not texts:
each message is an event (its text in the event), and each participant's read mark is one.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import DomainError, NotFound
from aggregates.text import check_text

TEXT_MAX = 2_000
_NS = UUID("3c8e1f5a-7d2b-4a96-b0e4-6f1d2c3b4a59")
_ALLOWED_CONTROLS = frozenset("\n\t")


class InvalidMessage(DomainError):
    """A message breaks a rule (400 VALIDATION_ERROR, field in details)."""


class MessageNotAllowed(DomainError):
    """The sender may not start a conversation with this user (403 FORBIDDEN, reason)."""


class ConversationNotFound(NotFound):
    pass


def clean_text(raw: str) -> str:
    """NFC, stripped; 1-2,000 characters, no control characters but line breaks and tabs."""
    text = check_text(
        raw.strip(), "text", multiline=True, required=False, error=InvalidMessage
    ).strip()
    if not text:
        raise InvalidMessage("text is required", field="text", problem="REQUIRED")
    if len(text) > TEXT_MAX:
        raise InvalidMessage(
            f"text must be at most {TEXT_MAX} characters", field="text", problem="TOO_LONG"
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS for ch in text):
        raise InvalidMessage(
            "text must not contain control characters", field="text", problem="CONTROL_CHARACTER"
        )
    return text


class Conversation(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Started: ClassVar[Any]
        Posted: ClassVar[Any]
        Read: ClassVar[Any]

    @staticmethod
    def create_id(user_ids: list[str]) -> UUID:
        first, second = sorted(user_ids)
        return uuid5(_NS, f"{first}|{second}")

    @classmethod
    def start(cls, sender_id: str, receiver_id: str, at: datetime) -> Conversation:
        if sender_id == receiver_id:
            raise InvalidMessage(
                "you cannot message yourself", field="toUserId", problem="NOT_ALLOWED_VALUE"
            )
        return cls(user_ids=sorted([sender_id, receiver_id]), at=at)

    @event("Started")
    def __init__(self, user_ids: list[str], at: datetime) -> None:
        self.user_ids = list(user_ids)
        self.started_at = at
        self.messages = 0
        #: user id -> the sequence number of the last message that user has read
        self.read_up_to: dict[str, int] = {u: 0 for u in user_ids}

    def other(self, user_id: str) -> str:
        return next(u for u in self.user_ids if u != user_id)

    def post(
        self,
        sender_id: str,
        text: str,
        order_id: str | None,
        product_id: str | None,
        at: datetime,
    ) -> int:
        """Add a message; answers its sequence number (1, 2, ...)."""
        if sender_id not in self.user_ids:
            raise ConversationNotFound("conversation not found", conversationId=str(self.id))
        self._posted(
            seq=self.messages + 1,
            sender_id=sender_id,
            receiver_id=self.other(sender_id),
            text=clean_text(text),
            order_id=order_id,
            product_id=product_id,
            at=at,
        )
        return self.messages

    @event("Posted")
    def _posted(
        self,
        seq: int,
        sender_id: str,
        receiver_id: str,
        text: str,
        order_id: str | None,
        product_id: str | None,
        at: datetime,
    ) -> None:
        self.messages = seq
        self.read_up_to[sender_id] = seq  # a sender has read what it answers

    def unread(self, user_id: str) -> int:
        return self.messages - self.read_up_to.get(user_id, 0)

    def mark_read(self, user_id: str, at: datetime) -> bool:
        """Everything up to the newest message is read by ``user_id``; False (no event) when
        it was already."""
        if user_id not in self.user_ids:
            raise ConversationNotFound("conversation not found", conversationId=str(self.id))
        if self.unread(user_id) == 0:
            return False
        self._read(user_id=user_id, seq=self.messages, at=at)
        return True

    @event("Read")
    def _read(self, user_id: str, seq: int, at: datetime) -> None:
        self.read_up_to[user_id] = seq
