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
