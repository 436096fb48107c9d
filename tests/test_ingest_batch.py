"""The pure parts of ingest: decoding a batch, offsets to commit, backoff, counters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import exc as sa_exc

from adgen.events import encode_event, make_event
from adgen.ingest.batch import RawMessage, decode_batch, next_offsets
from adgen.ingest.retry import REFUSALS, Backoff, is_transient
from adgen.ingest.stats import IngestStats


def _msg(offset: int, value: bytes | None, partition: int = 0) -> RawMessage:
    return RawMessage("t", partition, offset, b"k", value)


def _event(event_id: str, variant_id: int = 1) -> bytes:
    return encode_event(make_event(
        type="click", event_id=event_id, impression_id="i", campaign_id=1,
        variant_id=variant_id, event_time=datetime(2026, 1, 1, tzinfo=UTC),
    ))


def test_decode_batch_sorts_valid_rejected_and_repeated() -> None:
    batch = decode_batch([
        _msg(0, _event("a", variant_id=1)),
        _msg(1, b"{oops"),
        _msg(2, _event("a", variant_id=2)),  # same event id: the first one wins
        _msg(3, None),
        _msg(4, _event("b")),
        _msg(5, _event("a")),
    ])
    assert [(m.offset, e.event_id, e.variant_id) for m, e in batch.events] == [
        (0, "a", 1), (4, "b", 1)]
    assert [(r.message.offset, r.reason.split(":")[0]) for r in batch.rejected] == [
        (1, "not valid JSON"), (3, "empty message")]
    assert batch.duplicates == 2


def test_next_offsets_are_one_past_the_highest_per_partition() -> None:
    messages = [_msg(7, b"", 0), _msg(3, b"", 1), _msg(9, b"", 0), _msg(8, b"", 0)]
    assert next_offsets(messages) == {("t", 0): 10, ("t", 1): 4}
    assert next_offsets([]) == {}


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=3.0)
    assert [backoff.delay(a) for a in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"initial_s": 0.0}, "0 < initial_s <= max_s"),
     ({"initial_s": 5.0, "max_s": 1.0}, "initial_s=5.0, max_s=1.0"),
     ({"factor": 0.5}, "factor must be >= 1, got 0.5")],
)
def test_backoff_refuses_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Backoff(**kwargs)


def test_stats_add_and_since() -> None:
    total = IngestStats(messages=10, inserted=8, duplicates=1, dead_letters=1, batches=2)
    snapshot = IngestStats(**total.as_dict())
    total.add(IngestStats(messages=5, inserted=5, batches=1, db_retries=3))
    assert total.since(snapshot) == IngestStats(messages=5, inserted=5, batches=1, db_retries=3)
    assert total.as_dict()["messages"] == 15


def test_transient_database_errors_are_told_apart() -> None:
    lost = sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_transient(sa_exc.OperationalError("SELECT 1", {}, Exception("timeout")))
    assert is_transient(sa_exc.InterfaceError("SELECT 1", {}, Exception("closed")))
    assert is_transient(lost)
    refused = sa_exc.IntegrityError("INSERT", {}, Exception("check"))
    assert not is_transient(refused) and isinstance(refused, REFUSALS)
    assert not is_transient(sa_exc.ProgrammingError("SELECT", {}, Exception("no table")))
