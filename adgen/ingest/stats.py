"""Counters of what an ingest consumer has done."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class IngestStats:
    """Totals since the consumer started (or for one batch)."""

    messages: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    db_retries: int = 0
    commit_failures: int = 0
    #: Stored but not counted: the impression already had a counted event of the type.
    repeats: int = 0
    #: Clicks and conversions stored to wait for their impression.
    held: int = 0
    #: Held events whose impression never came in the grace period (dead-lettered).
    orphans: int = 0

    def add(self, other: IngestStats) -> None:
        """Add ``other``'s counts to these."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def since(self, earlier: IngestStats) -> IngestStats:
        """The counts added after the snapshot ``earlier`` was taken."""
        mine = asdict(self)
        return IngestStats(**{k: mine[k] - v for k, v in asdict(earlier).items()})

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for JSON and tables)."""
        return asdict(self)
