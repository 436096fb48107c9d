"""One polled batch, decoded (pure): valid events, rejected messages, in-batch duplicates.

Within a batch the first message with a given ``event_id`` wins; later ones count as
duplicates, exactly as if they had arrived in a later batch and met the unique key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from adgen.errors import PoisonMessage
from adgen.events import Event, decode_event


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as read from the bus, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that cannot be ingested, and why (it becomes a dead letter)."""

    message: RawMessage
    reason: str


@dataclass(slots=True)
class DecodedBatch:
    """The outcome of decoding a batch, before any database check."""

    events: list[tuple[RawMessage, Event]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0


def decode_batch(messages: Iterable[RawMessage]) -> DecodedBatch:
    """Decode and validate each message; repeated event ids within the batch are dropped."""
    batch = DecodedBatch()
    seen: set[str] = set()
    for msg in messages:
        try:
            event = decode_event(msg.value)
        except PoisonMessage as exc:
            batch.rejected.append(Rejected(msg, exc.reason))
            continue
        if event.event_id in seen:
            batch.duplicates += 1
            continue
        seen.add(event.event_id)
        batch.events.append((msg, event))
    return batch


def next_offsets(messages: Iterable[RawMessage]) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset to commit once ``messages`` are stored."""
    out: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (msg.topic, msg.partition)
        if msg.offset + 1 > out.get(key, -1):
            out[key] = msg.offset + 1
    return out
