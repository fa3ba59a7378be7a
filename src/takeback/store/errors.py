"""Named store errors, so the web layer can map them to 4xx codes without catching SQLAlchemy exceptions."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the repositories raise on purpose."""


class BankExists(StoreError):
    """A bank with that name already exists (names are unique)."""


class UnknownBank(StoreError):
    """No bank with that id."""


class UnknownClient(StoreError):
    """No API client with that id."""


class UnknownWebhook(StoreError):
    """No webhook with that id."""


class InvalidInput(StoreError, ValueError):
    """A value neither backend can store the same way: text with NUL characters (PostgreSQL refuses them, SQLite
    keeps them), text longer than its column (PostgreSQL refuses, SQLite keeps), integers outside the column's
    range.  Raised before touching the database so both backends behave alike."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
