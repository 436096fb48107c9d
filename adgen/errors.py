"""The project's exception hierarchy, in one place.

Adapters translate foreign exceptions (psycopg2, kafka-python, torch) into these at the
boundary with ``raise Ours(...) from exc`` and re-raise anything they cannot map.
"""

from __future__ import annotations


class AdgenError(Exception):
    """Base class of every error adgen raises on purpose."""


class ConfigError(AdgenError):
    """A setting is missing or invalid; the message says which and how to fix it."""


class ValidationError(AdgenError):
    """Input that adgen refuses (a brief, an event, a file row); nothing was stored."""


class NotFoundError(AdgenError):
    """A campaign, variant or model version that does not exist."""


class ConflictError(AdgenError):
    """An action that the current state forbids (promoting a retired version, say)."""


class TokenError(AdgenError):
    """An impression token that is malformed, tampered with or expired."""


class AuthError(AdgenError):
    """A request for an admin action without the admin token, or with a wrong one."""


class StorageError(AdgenError):
    """The database failed in a way that may pass (connection lost, serialization)."""


class BusError(AdgenError):
    """The event bus failed (broker unreachable, produce not acknowledged)."""


class BrokerNotFoundError(BusError):
    """The embedded broker binary is not installed."""


class PoisonMessage(AdgenError):
    """A Kafka message that can never be ingested; it goes to ``dead_letters``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelError(AdgenError):
    """Model weights that cannot be found, verified or loaded."""


class ModelIntegrityError(ModelError):
    """Model weights whose size or sha256 is not the pinned one; they are never loaded."""


class InsufficientEvidence(AdgenError):
    """A training run that has too little evidence to train anything."""
