"""The write side: command dataclasses and handlers, the application, persistence, idempotency."""
