"""Domain errors. HTTP status and error code for each are mapped in one table in api/errors.py."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the domain refused a command."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    """The object does not exist (or is not the caller's to see)."""


class Conflict(DomainError):
    """The command contradicts the current state."""
