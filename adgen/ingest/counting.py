"""What counts in ``arm_stats`` (pure): one impression earns at most one counted click and
one counted conversion, and only once ingest has seen the impression itself.

Each event of a batch gets a count status (``adgen.db.models.COUNT_STATUSES``): the first
impression of an ``impression_id`` is ``counted``, later ones are ``repeat``; a click or
conversion is ``counted`` when its impression is counted (same variant) and no event of its
type is, ``repeat`` when one is, and ``held`` while its impression has not been seen (the
producer keys events by impression id, so the impression comes first in its partition; a
held event is promoted when the impression arrives, or dead-lettered after a grace period).
A click naming another variant than its impression's is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event whose count status is decided: one of the batch (``ref`` = its index) or one
    held in the database (``ref`` = its row id)."""

    ref: int
    event_id: str
    impression_id: str
    type: str
    variant_id: int


@dataclass(frozen=True, slots=True)
class Known:
    """A stored event that matters for counting: ``counted`` or ``held``."""

    event: Candidate
    status: str


@dataclass(slots=True)
class Decisions:
    """Count statuses of the batch's events (None: refused, see ``refused``) and of held
    events to change in the database (``ref`` → status, with a reason for orphans)."""

    new: list[str | None]
    refused: dict[int, str] = field(default_factory=dict)
    stored: dict[int, str] = field(default_factory=dict)
    stored_reasons: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Impression:
    variant_id: int | None = None
    counted: set[str] = field(default_factory=set)
    held: list[tuple[bool, Candidate]] = field(default_factory=list)  # (stored?, event)


def classify(new: Sequence[Candidate], known: Iterable[Known]) -> Decisions:
    """Decide the count status of each of ``new`` (in order) given what is stored."""
    impressions: dict[str, _Impression] = {}
    held_ids: set[str] = set()
    for k in known:
        imp = impressions.setdefault(k.event.impression_id, _Impression())
        if k.status == "counted":
            imp.counted.add(k.event.type)
            if k.event.type == "impression":
                imp.variant_id = k.event.variant_id
        else:
            imp.held.append((True, k.event))
            held_ids.add(k.event.event_id)
    out = Decisions(new=[None] * len(new))
    for c in new:
        imp = impressions.setdefault(c.impression_id, _Impression())
        if c.event_id in held_ids:  # redelivered while held: the insert skips it
            out.new[c.ref] = "held"
        elif c.type == "impression":
            if "impression" in imp.counted:
                out.new[c.ref] = "repeat"
                continue
            out.new[c.ref] = "counted"
            imp.counted.add("impression")
            imp.variant_id = c.variant_id
            for stored, waiting in imp.held:
                _decide(out, imp, waiting, stored)
            imp.held.clear()
        elif imp.variant_id is None:
            out.new[c.ref] = "held"
            imp.held.append((False, c))
        else:
            _decide(out, imp, c, stored=False)
    return out


def _decide(out: Decisions, imp: _Impression, c: Candidate, stored: bool) -> None:
    if c.variant_id != imp.variant_id:
        reason = (f"{c.type} names variant {c.variant_id} but impression {c.impression_id} "
                  f"was of variant {imp.variant_id}: not counted")
        if stored:
            out.stored[c.ref], out.stored_reasons[c.ref] = "orphan", reason
        else:
            out.new[c.ref] = None
            out.refused[c.ref] = reason
        return
    status = "repeat" if c.type in imp.counted else "counted"
    imp.counted.add(c.type)
    if stored:
        out.stored[c.ref] = status
    else:
        out.new[c.ref] = status
