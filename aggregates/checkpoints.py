"""A signed checkpoint of the event chain: the head (position, link, time) signed with the
service's RS256 key, recorded as an event so the chain itself covers it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

_CHECKPOINT_NS = UUID("5b0c8e1e-4f0a-4d53-9d0b-7a4f2c6e9a31")


class Checkpoint(Aggregate):
    """One per signed position: signing the same head twice is the same aggregate, so two
    processes racing to sign it record it once."""

    if TYPE_CHECKING:  # the @event decorator below creates this class
        Signed: ClassVar[Any]

    @staticmethod
    def id_for(signed_position: int) -> UUID:
        return uuid5(_CHECKPOINT_NS, f"checkpoint:{signed_position}")

    @event("Signed")
    def __init__(self, signed_position: int, link: str, signed_at: str, kid: str, jws: str) -> None:
        self.signed_position = signed_position
        self.link = link
        self.signed_at = signed_at
        self.kid = kid
        self.jws = jws

    @classmethod
    def sign(
        cls, signed_position: int, link: str, signed_at: str, kid: str, jws: str
    ) -> Checkpoint:
        return cls._create(
            cls.Signed,
            id=cls.id_for(signed_position),
            signed_position=signed_position,
            link=link,
            signed_at=signed_at,
            kid=kid,
            jws=jws,
        )
