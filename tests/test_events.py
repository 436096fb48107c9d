"""The event schema and its JSON encoding: what is accepted, and why the rest is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from adgen.errors import PoisonMessage, ValidationError
from adgen.events import Event, decode_event, encode_event, make_event, new_event_id

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _fields(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "impression", "event_id": "e1", "impression_id": "i1",
        "campaign_id": 1, "variant_id": 2, "propensity": 0.25,
        "event_time": T0.isoformat(),
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _raw(**over: Any) -> bytes:
    return json.dumps(_fields(**over)).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"type": "click", "propensity": None},
        {"type": "conversion", "propensity": None, "value": 19.5},
        {"type": "conversion", "propensity": None},
        {"propensity": 1.0},
        {"event_id": "x" * 64},
    ],
)
def test_valid_events_round_trip(fields: dict[str, Any]) -> None:
    event = decode_event(_raw(**fields))
    assert decode_event(encode_event(event)) == event
    assert event.event_time == T0


def test_event_time_is_normalised_to_utc() -> None:
    local = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    event = decode_event(_raw(event_time=local.isoformat()))
    assert event.event_time.utcoffset() == timedelta(0)
    assert event.event_time == T0


def test_encoding_is_compact_json_without_nulls() -> None:
    event = decode_event(_raw(type="click", propensity=None))
    payload = json.loads(encode_event(event))
    assert "propensity" not in payload and "value" not in payload
    assert payload["event_time"].endswith("Z")


def test_new_event_ids_are_unique_and_valid() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 for i in ids)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (None, "empty message"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "Input should be an object"),
        (_raw(type="view"), "type: Input should be 'impression', 'click' or 'conversion'"),
        (_raw(event_id=""), "event_id: String should have at least 1 character"),
        (_raw(event_id="x" * 65), "event_id: String should have at most 64 characters"),
        (_raw(event_id="has space"), "event_id: String should match pattern"),
        (_raw(impression_id="nul\u0000"), "impression_id: String should match pattern"),
        (_raw(campaign_id="1"), "campaign_id: Input should be a valid integer"),
        (_raw(variant_id=0), "variant_id: Input should be greater than 0"),
        (_raw(variant_id=2**31), "variant_id: Input should be less than or equal to"),
        (_raw(variant_id=True), "variant_id: Input should be a valid integer"),
        (_raw(propensity=None), "an impression needs a propensity in (0, 1]"),
        (_raw(propensity=0.0), "propensity must be in (0, 1], got 0.0"),
        (_raw(propensity=1.5), "propensity must be in (0, 1], got 1.5"),
        (_raw(type="click"), "propensity is only for impressions, not for click events"),
        (_raw(value=3.0), "value is only for conversions, not for impression events"),
        (_raw(type="conversion", propensity=None, value=-1.0),
         "conversion value must be a finite number >= 0, got -1.0"),
        (_raw(event_time="2026-03-01T12:00:00"), "event_time: Input should have timezone info"),
        (_raw(event_time="yesterday"), "event_time: Input should be a valid datetime"),
        (_raw(event_time="0001-01-01T00:00:00+05:00"), "is out of range in UTC"),
        (_raw(extra="x"), "extra: Extra inputs are not permitted"),
    ],
)
def test_refusals_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessage) as info:
        decode_event(raw)
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason


def test_nan_propensity_is_refused() -> None:
    raw = _raw().replace(b'"propensity": 0.25', b'"propensity": NaN')
    with pytest.raises(PoisonMessage, match="propensity"):
        decode_event(raw)


def test_missing_fields_are_all_named() -> None:
    with pytest.raises(PoisonMessage) as info:
        decode_event(b'{"type": "click"}')
    for name in ("event_id", "impression_id", "campaign_id", "variant_id", "event_time"):
        assert f"{name}: Field required" in info.value.reason


def test_make_event_raises_our_validation_error() -> None:
    with pytest.raises(ValidationError, match="propensity is only for impressions"):
        make_event(type="click", event_id="e", impression_id="i", campaign_id=1, variant_id=1,
                   propensity=0.5, event_time=T0)
    event = make_event(type="click", event_id="e", impression_id="i", campaign_id=1,
                       variant_id=1, event_time=T0)
    assert isinstance(event, Event) and event.propensity is None


def test_events_are_immutable() -> None:
    event = decode_event(_raw())
    with pytest.raises(Exception, match="frozen"):
        event.variant_id = 3  # type: ignore[misc]
