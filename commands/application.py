"""The one event-sourced application that owns every aggregate, and its event metadata.

Every stored event carries ``__meta__``: who caused it (``actor``: a user id or
``system:<rule>``), the request's ``correlationId`` and, when given, the ``idempotencyKey``.
The metadata is added by the mapper from the command context, so aggregates stay pure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import Environment, get_topic, resolve_topic

from aggregates.accounts import Account
from aggregates.cart import Cart
from aggregates.coupons import Coupon
from aggregates.inventory import Inventory
from aggregates.invoices import InvoiceTrack
from aggregates.loyalty import PointsAccount
from aggregates.notifications import Inbox

META_KEY = "__meta__"


@dataclass(frozen=True)
class EventMeta:
    """Who and what caused an event; recorded with every event of a command."""

    actor: str
    correlation_id: str
    idempotency_key: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"actor": self.actor, "correlationId": self.correlation_id}
        if self.idempotency_key is not None:
            data["idempotencyKey"] = self.idempotency_key
        return data


_current_meta: ContextVar[EventMeta | None] = ContextVar("shopledger_event_meta", default=None)


@contextlib.contextmanager
def recording_as(meta: EventMeta) -> Iterator[None]:
    """Events saved inside this block are stamped with ``meta``."""
    token = _current_meta.set(meta)
    try:
        yield
    finally:
        _current_meta.reset(token)


class MetaMapper(Mapper[UUID]):
    """A mapper that stores the current :class:`EventMeta` beside each event's state."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        meta = _current_meta.get()
        if meta is not None:
            event_state[META_KEY] = meta.as_dict()
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=stored_state,
        )

    def decode_state(self, stored_event: StoredEvent) -> dict[str, Any]:
        """The stored state as a dict (metadata included), without resolving the topic."""
        state = stored_event.state
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            return dict(self.transcoder.decode(state))
        except Exception as exc:
            raise MapperDeserialisationError(
                f"cannot decode event {stored_event.originator_id}"
                f" v{stored_event.originator_version} ({stored_event.topic}): {exc}"
            ) from exc

    def event_from_state(self, stored_event: StoredEvent, state: dict[str, Any]) -> Any:
        """Build the domain event object from a state returned by :meth:`decode_state`."""
        state = dict(state)
        state.pop(META_KEY, None)
        cls = resolve_topic(stored_event.topic)
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.event_from_state(stored_event, self.decode_state(stored_event))  # type: ignore[no-any-return]


class ShopledgerApplication(Application[UUID]):
    """Owns all aggregates, so one command can save several of them atomically."""

    name = "shopledger"
    # Accounts are read on every authenticated request and gain an event per login: a
    # snapshot (written in the same transaction as the events) keeps that read short. An
    # inventory or a coupon gains events with every order, a cart with every change, an
    # invoice track with every invoice, a buyer's points account with every delivery.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Account: 50,
        Inventory: 20,
        Cart: 10,
        Coupon: 50,
        Inbox: 50,
        InvoiceTrack: 50,
        PointsAccount: 50,
    }

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # Configuration comes from our Settings only, never from stray process variables.
        values = {"IS_SNAPSHOTTING_ENABLED": "y"} if type(self).snapshotting_intervals else {}
        return Environment(name, {**values, **dict(env or {})})

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=MetaMapper)

    @property
    def meta_mapper(self) -> MetaMapper:
        assert isinstance(self.mapper, MetaMapper)
        return self.mapper
