"""Disputes: the buyer and a seller of an order disagree and an admin decides.

One dispute per order and seller (its id derives from the pair); either side opens it, both add
statements while it is OPEN, and an admin resolves it once: ``REFUND_FULL``, ``REFUND_PARTIAL``
(an amount) or ``REJECTED``, with a note. A refund is requested on the Order through its refund
path in the same transaction, so it can never exceed what is left to refund.

A seller's lost disputes (resolved with a refund) are counted on its :class:`SellerDisputeRecord`;
reaching the configured number within the window flags the seller for admin review.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError, NotFound
from aggregates.text import check_text

RESOLUTIONS = ("REFUND_FULL", "REFUND_PARTIAL", "REJECTED")
REASON_MAX = 200
TEXT_MAX = 2_000
NOTE_MAX = 1_000
MAX_STATEMENTS = 100
_NS = UUID("8a4e1f2c-6d3b-4f95-b0e7-2c9d5a1e7f63")
_RECORD_NS = UUID("b3d92e61-0c7a-4a58-9e14-6f2b8d0c5a79")
_ALLOWED_CONTROLS = frozenset("\n\t")


class DisputeNotFound(NotFound):
    pass


class DisputeAlreadyExists(Conflict):
    """This order already has a dispute with this seller (409 DISPUTE_ALREADY_EXISTS)."""


class DisputeClosed(Conflict):
    """The dispute has been resolved: no statements, no second resolution (409)."""


def clean_text(raw: str, field: str, limit: int, required: bool = True) -> str:
    """NFC, stripped, line breaks kept; no other control characters; at most ``limit``."""
    text = check_text(raw.strip(), field, multiline=True, required=False).strip()
    if required and not text:
        raise DomainError(f"{field} is required", field=field)
    if len(text) > limit:
        raise DomainError(f"{field} must be at most {limit} characters", field=field)
    if any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS for ch in text):
        raise DomainError(f"{field} must not contain control characters", field=field)
    return text


class Dispute(Aggregate):
    if TYPE_CHECKING:  # the @event decorators below create these classes
        Opened: ClassVar[Any]
        StatementAdded: ClassVar[Any]
        Resolved: ClassVar[Any]

    @staticmethod
    def create_id(order_id: str, seller_id: str) -> UUID:
        return uuid5(_NS, f"{order_id}/{seller_id}")

    @classmethod
    def open(
        cls,
        *,
        order_id: str,
        order_number: str,
        buyer_id: str,
        seller_id: str,
        opened_by: str,
        opener_role: str,
        reason: str,
        text: str,
        at: datetime,
    ) -> Dispute:
        return cls._create(
            cls.Opened,
            id=cls.create_id(order_id, seller_id),
            order_id=order_id,
            order_number=order_number,
            buyer_id=buyer_id,
            seller_id=seller_id,
            opened_by=opened_by,
            opener_role=opener_role,
            reason=" ".join(clean_text(reason, "reason", REASON_MAX).split()),
            text=clean_text(text, "text", TEXT_MAX),
            at=at,
        )

    @event("Opened")
    def __init__(
        self,
        order_id: str,
        order_number: str,
        buyer_id: str,
        seller_id: str,
        opened_by: str,
        opener_role: str,
        reason: str,
        text: str,
        at: datetime,
    ) -> None:
        self.order_id = order_id
        self.order_number = order_number
        self.buyer_id = buyer_id
        self.seller_id = seller_id
        self.opened_by = opened_by
        self.opener_role = opener_role
        self.reason = reason
        self.text = text
        self.status = "OPEN"
        self.opened_at = at
        self.updated_at = at
        self.statements: list[dict[str, Any]] = []
        self.resolution: dict[str, Any] | None = None

    def party(self, user_id: str) -> str | None:
        """``buyer`` or ``seller`` for the two sides, else None."""
        if user_id == self.buyer_id:
            return "buyer"
        if user_id == self.seller_id:
            return "seller"
        return None

    def _check_open(self) -> None:
        if self.status != "OPEN":
            raise DisputeClosed(
                "the dispute has been resolved", disputeId=str(self.id), current=self.status
            )

    def add_statement(self, author_id: str, role: str, text: str, at: datetime) -> None:
        self._check_open()
        if len(self.statements) >= MAX_STATEMENTS:
            raise DisputeClosed(
                f"a dispute takes at most {MAX_STATEMENTS} statements", disputeId=str(self.id)
            )
        self._statement_added(
            author_id=author_id, role=role, text=clean_text(text, "text", TEXT_MAX), at=at
        )

    @event("StatementAdded")
    def _statement_added(self, author_id: str, role: str, text: str, at: datetime) -> None:
        self.statements.append({"authorId": author_id, "role": role, "text": text, "at": at})
        self.updated_at = at

    def check_resolvable(self, resolution: str, amount: Decimal | None) -> None:
        self._check_open()
        if resolution not in RESOLUTIONS:
            raise DomainError(
                f"resolution must be one of {', '.join(RESOLUTIONS)}", field="resolution"
            )
        if (resolution == "REFUND_PARTIAL") != (amount is not None):
            raise DomainError("amount is given with REFUND_PARTIAL, and only then", field="amount")

    def resolve(
        self,
        admin_id: str,
        resolution: str,
        note: str,
        refund: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        """``refund``: {refundId, amount, items} requested on the order (None: REJECTED, or
        nothing left to refund)."""
        self._check_open()
        self._resolved(
            admin_id=admin_id,
            resolution=resolution,
            note=clean_text(note, "note", NOTE_MAX),
            refund=refund,
            at=at,
        )

    @event("Resolved")
    def _resolved(
        self,
        admin_id: str,
        resolution: str,
        note: str,
        refund: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        self.status = "RESOLVED"
        self.resolution = {
            "resolution": resolution,
            "note": note,
            "adminId": admin_id,
            "refund": refund,
            "at": at,
        }
        self.updated_at = at

    @property
    def seller_lost(self) -> bool:
        return self.resolution is not None and self.resolution["resolution"] != "REJECTED"


class SellerDisputeRecord(Aggregate):
    """A seller's lost disputes, and whether it is flagged for admin review."""

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Started: ClassVar[Any]
        DisputeLost: ClassVar[Any]
        Flagged: ClassVar[Any]
        FlagCleared: ClassVar[Any]

    @staticmethod
    def create_id(seller_id: str) -> UUID:
        return uuid5(_RECORD_NS, seller_id)

    @classmethod
    def start(cls, seller_id: str) -> SellerDisputeRecord:
        return cls._create(cls.Started, id=cls.create_id(seller_id), seller_id=seller_id)

    @event("Started")
    def __init__(self, seller_id: str) -> None:
        self.seller_id = seller_id
        self.losses: list[datetime] = []
        self.flagged = False
        self.flag: dict[str, Any] | None = None  # the last flag: when, why, and its clearing

    def lost_within(self, window: timedelta, now: datetime) -> int:
        return sum(1 for at in self.losses if now - at <= window)

    def record_loss(
        self,
        dispute_id: str,
        at: datetime,
        window: timedelta,
        limit: int,
        admin_ids: list[str],
    ) -> bool:
        """Count a lost dispute; True when this flags the seller (``admin_ids`` are told)."""
        self._dispute_lost(dispute_id=dispute_id, at=at)
        lost = self.lost_within(window, at)
        if self.flagged or lost < limit:
            return False
        self._flagged(
            seller_id=self.seller_id,
            lost=lost,
            window_days=window.days,
            dispute_id=dispute_id,
            admin_ids=admin_ids,
            at=at,
        )
        return True

    @event("DisputeLost")
    def _dispute_lost(self, dispute_id: str, at: datetime) -> None:
        self.losses.append(at)

    @event("Flagged")
    def _flagged(
        self,
        seller_id: str,
        lost: int,
        window_days: int,
        dispute_id: str,
        admin_ids: list[str],
        at: datetime,
    ) -> None:
        self.flagged = True
        self.flag = {
            "at": at,
            "lost": lost,
            "windowDays": window_days,
            "disputeId": dispute_id,
            "clearedAt": None,
            "clearedBy": None,
            "note": None,
        }

    def clear_flag(self, admin_id: str, note: str, at: datetime) -> None:
        """An admin reviewed the seller; the next loss while the count is at the limit flags
        it again."""
        if not self.flagged:
            raise Conflict("the seller is not flagged", sellerId=self.seller_id)
        self._flag_cleared(
            admin_id=admin_id, note=clean_text(note, "note", NOTE_MAX, required=False), at=at
        )

    @event("FlagCleared")
    def _flag_cleared(self, admin_id: str, note: str, at: datetime) -> None:
        self.flagged = False
        if self.flag is not None:
            self.flag.update(clearedAt=at, clearedBy=admin_id, note=note or None)
