"""A user's notification inbox: which notifications the user has read.

The notifications themselves are a read model built from other aggregates' events (an order
placed, a seller approved...); marking one read is the user's own change, so it is an event.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

_NS = UUID("1f7e3c2a-8b4d-4e6f-9a0b-c5d4e3f2a1b0")


class Inbox(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        Read: ClassVar[Any]

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return uuid5(_NS, user_id)

    @event("Opened")
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.read: list[str] = []

    def mark_read(self, notification_id: str, at: datetime) -> bool:
        """False (and no event) when it was read already."""
        if notification_id in self.read:
            return False
        self._read(notification_id, at)
        return True

    @event("Read")
    def _read(self, notification_id: str, at: datetime) -> None:
        self.read.append(notification_id)
