"""Customer records (seeds/000 顧客管理): an admin's tags and private notes on a user.

One record per user, beside the account (so admin bookkeeping never conflicts with the
user's own logins and edits). Notes are for admins only; nothing here is shown to the user.
Pure domain code.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError, NotFound

TAG_MAX = 30
MAX_TAGS = 20
NOTE_MAX = 2000
#: Besides letters and digits (any script: 常客 is a fine tag), a tag may hold these.
TAG_PUNCTUATION = frozenset(" -_.&+")

_NS = UUID("b7d0c3a4-2f6e-4b8a-9d51-3c7e0f1a2b94")


class InvalidTag(DomainError):
    """A tag breaks the rules (400, field tag)."""


class TagNotFound(NotFound):
    pass


def clean_tag(raw: str) -> str:
    """NFKC, trimmed, inner spaces collapsed; 1-30 letters, digits, spaces or ``-_.&+``."""
    tag = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not tag:
        raise InvalidTag("a tag must not be empty", field="tag")
    if len(tag) > TAG_MAX:
        raise InvalidTag(f"a tag has at most {TAG_MAX} characters", field="tag")
    for ch in tag:
        if not (ch.isalnum() or ch in TAG_PUNCTUATION):
            raise InvalidTag(
                "a tag holds letters, digits, spaces and - _ . & + only",
                field="tag",
                character=ch,
            )
    return tag


def tag_key(tag: str) -> str:
    """Tags compare case-insensitively (``vip`` is ``VIP``)."""
    return clean_tag(tag).casefold()


def clean_note(raw: str) -> str:
    text = unicodedata.normalize("NFC", raw).strip()
    if not text:
        raise DomainError("a note must not be empty", field="text")
    if len(text) > NOTE_MAX:
        raise DomainError(f"a note has at most {NOTE_MAX} characters", field="text")
    return text


class CustomerRecord(Aggregate):
    """Tags and notes admins keep about one user."""

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        Tagged: ClassVar[Any]
        Untagged: ClassVar[Any]
        NoteAdded: ClassVar[Any]

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return uuid5(_NS, user_id)

    @event("Opened")
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.tags: list[str] = []
        self.notes: list[dict[str, Any]] = []

    @classmethod
    def open(cls, user_id: str) -> CustomerRecord:
        return cls._create(cls.Opened, id=cls.create_id(user_id), user_id=user_id)

    def has_tag(self, tag: str) -> bool:
        key = tag_key(tag)
        return any(t.casefold() == key for t in self.tags)

    def tag(self, raw: str, by: str, at: datetime) -> str:
        tag = clean_tag(raw)
        if self.has_tag(tag):
            raise Conflict("the user already has that tag", field="tag", tag=tag)
        if len(self.tags) >= MAX_TAGS:
            raise Conflict(f"at most {MAX_TAGS} tags per user", limit=MAX_TAGS)
        self._tagged(self.user_id, tag, by, at)
        return tag

    # Each event names the user, so the read model needs no lookup from record to user.
    @event("Tagged")
    def _tagged(self, user_id: str, tag: str, by: str, at: datetime) -> None:
        self.tags = [*self.tags, tag]

    def untag(self, raw: str, by: str, at: datetime) -> None:
        key = tag_key(raw)
        found = next((t for t in self.tags if t.casefold() == key), None)
        if found is None:
            raise TagNotFound("the user has no such tag", tag=raw[:TAG_MAX])
        self._untagged(self.user_id, found, by, at)

    @event("Untagged")
    def _untagged(self, user_id: str, tag: str, by: str, at: datetime) -> None:
        self.tags = [t for t in self.tags if t != tag]

    def add_note(self, note_id: str, text: str, author_id: str, at: datetime) -> dict[str, Any]:
        self._note_added(self.user_id, note_id, clean_note(text), author_id, at)
        return self.notes[-1]

    @event("NoteAdded")
    def _note_added(
        self, user_id: str, note_id: str, text: str, author_id: str, at: datetime
    ) -> None:
        self.notes = [
            *self.notes,
            {"note_id": note_id, "text": text, "author_id": author_id, "at": at},
        ]
