"""Idempotency keys of the events the API sends (the ingest consumer stores each once)."""

from __future__ import annotations

import hashlib


def event_id_for(event_type: str, impression_id: str, client_event_id: str | None = None) -> str:
    """One key per impression and type, unless the client names its own event id.

    A client's id is hashed into the impression's namespace, so it can never collide with
    the events of another impression; the result is at most 64 characters.
    """
    if client_event_id is None:
        return f"{event_type}-{impression_id}"
    digest = hashlib.sha256(client_event_id.encode()).hexdigest()[:16]
    return f"{event_type}-{impression_id}-{digest}"
