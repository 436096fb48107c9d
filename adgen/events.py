"""The event schema on the bus (impression, click, conversion) and its JSON encoding (pure).

An event is JSON on the wire, keyed by ``impression_id`` so that every event of one
impression lands in the same partition. ``event_id`` is the idempotency key: the ingest
consumer stores an event once however often it is delivered.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from adgen.errors import PoisonMessage, ValidationError

EventType = Literal["impression", "click", "conversion"]
ID_MAX_LENGTH = 64
#: Ids are printable ASCII without spaces (uuid hex, tokens, base64url all fit).
ID_PATTERN = r"^[!-~]+$"
#: Campaign and variant ids are 32-bit database keys.
MAX_DB_ID = 2**31 - 1
#: Default ceiling of a conversion's value (``ADGEN_MAX_CONVERSION_VALUE``): far below where
#: sums of many conversions could overflow a double.
MAX_CONVERSION_VALUE = 1e9


class Event(BaseModel):
    """One impression, click or conversion of a variant; immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType
    event_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
    impression_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
    campaign_id: int = Field(gt=0, le=MAX_DB_ID, strict=True)
    variant_id: int = Field(gt=0, le=MAX_DB_ID, strict=True)
    propensity: float | None = Field(
        None, description="Probability the allocator gave the served variant (impressions only)."
    )
    value: float | None = Field(None, description="Monetary value (conversions only), >= 0.")
    event_time: AwareDatetime
    snapshot_id: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        strict=True,
        description="The allocation snapshot an impression was served under (impressions "
        "only; the sample-ratio-mismatch check needs it).",
    )
    cell: str | None = Field(
        None,
        max_length=200,
        description="The context cell an impression counted for (impressions of contextual "
        "campaigns only; its snapshot holds that cell's probability vector).",
    )

    @field_validator("event_time")
    @classmethod
    def _to_utc(cls, v: datetime) -> datetime:
        try:
            return v.astimezone(UTC)
        except OverflowError as exc:  # year 1 or 9999 pushed out of range by the offset
            raise ValueError(f"event_time {v.isoformat()} is out of range in UTC") from exc

    @model_validator(mode="after")
    def _fields_fit_type(self) -> Event:
        if self.type == "impression":
            p = self.propensity
            if p is None:
                raise ValueError("an impression needs a propensity in (0, 1]")
            if not (math.isfinite(p) and 0.0 < p <= 1.0):
                raise ValueError(f"propensity must be in (0, 1], got {p}")
        elif self.propensity is not None:
            raise ValueError(f"propensity is only for impressions, not for {self.type} events")
        elif self.snapshot_id is not None:
            raise ValueError(f"snapshot_id is only for impressions, not for {self.type} events")
        elif self.cell is not None:
            raise ValueError(f"cell is only for impressions, not for {self.type} events")
        if self.type == "conversion":
            if self.value is not None and not (math.isfinite(self.value) and self.value >= 0):
                raise ValueError(f"conversion value must be a finite number >= 0, got {self.value}")
        elif self.value is not None:
            raise ValueError(f"value is only for conversions, not for {self.type} events")
        return self


def new_event_id() -> str:
    """A fresh, globally unique event id (32 hex characters)."""
    return uuid.uuid4().hex


def encode_event(event: Event) -> bytes:
    """The event as compact UTF-8 JSON (fields that are None are left out)."""
    return event.model_dump_json(exclude_none=True).encode()


def _describe(exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def decode_event(raw: bytes | None) -> Event:
    """Parse and validate one message; ``PoisonMessage`` (with a reason) when it cannot be."""
    if not raw:
        raise PoisonMessage("empty message: an event must be a JSON object")
    try:
        return Event.model_validate_json(raw)
    except PydanticValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise PoisonMessage(f"not valid JSON: {_describe(exc)}") from exc
        raise PoisonMessage(f"invalid event: {_describe(exc)}") from exc


def make_event(**fields: object) -> Event:
    """Build an event in code; ``ValidationError`` with a readable message when refused."""
    try:
        return Event.model_validate(fields)
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid event: {_describe(exc)}") from exc
