"""Invoice numbers in Taiwan's e-invoice form: a two-letter track and eight digits.

One :class:`InvoiceTrack` aggregate per track hands out numbers in order. Taking a number is
an event of the track saved in the same transaction as the order's ``InvoiceIssued``, so two
invoices racing for a number conflict on the track's version and one retries: numbers are
sequential, never skipped by a failed request and never used twice.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError

TRACK_RE = re.compile(r"^[A-Z]{2}$")
LAST_NUMBER = 99_999_999
_TRACK_NS = UUID("6b2d4c1e-2f0a-4e55-9d8b-0c7e4f3a1d92")


class TrackExhausted(Conflict):
    """All 100 million numbers of the track are used; configure the next track."""


def check_track(track: str) -> str:
    if not TRACK_RE.fullmatch(track):
        raise DomainError("an invoice track is two capital letters", field="track")
    return track


class InvoiceTrack(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        Taken: ClassVar[Any]

    @staticmethod
    def create_id(track: str) -> UUID:
        return uuid5(_TRACK_NS, check_track(track))

    @event("Opened")
    def __init__(self, track: str) -> None:
        self.track = check_track(track)
        self.last = 0

    @classmethod
    def open(cls, track: str) -> InvoiceTrack:
        return cls._create(cls.Opened, id=cls.create_id(track), track=track)

    def take(self, order_id: str) -> str:
        """The next number of the track, e.g. ``AB00000001``."""
        if self.last >= LAST_NUMBER:
            raise TrackExhausted(f"invoice track {self.track} is used up", track=self.track)
        self._taken(self.last + 1, order_id)
        return self.number(self.last)

    def number(self, n: int) -> str:
        return f"{self.track}{n:08d}"

    @event("Taken")
    def _taken(self, n: int, order_id: str) -> None:
        self.last = n
