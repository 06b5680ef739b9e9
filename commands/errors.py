"""Errors raised by the command-side plumbing (not by the domain)."""

from __future__ import annotations

from aggregates.errors import Conflict, DomainError


class ConcurrencyConflict(Conflict):
    """Still losing the optimistic-concurrency race after the bounded number of retries."""


class IdempotencyConflict(DomainError):
    """The Idempotency-Key was used before with a different request."""


class IdempotencyInFlight(Conflict):
    """The first request with this Idempotency-Key is still running."""


class InvalidIdempotencyKey(DomainError):
    """The Idempotency-Key header is malformed."""
