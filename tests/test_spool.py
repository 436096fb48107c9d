"""The write-ahead spool: order, fsync batching, the bound, replay after a restart, and a
corrupt tail that costs nothing but itself."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from adgen.bus.spool import Spool


def _values(spool: Spool, n: int = 10_000) -> list[bytes]:
    return [r.value for r in spool.read(n).records]


def test_records_come_back_in_order_across_segments_and_go_once_acknowledged(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1024)
    for i in range(200):
        spool.append(f"k{i}".encode() if i % 7 else None, f"event-{i}".encode())
    assert spool.records == 200 and len(list(tmp_path.glob("*.seg"))) > 3
    first = spool.read(50)
    assert [r.value for r in first.records] == [f"event-{i}".encode() for i in range(50)]
    assert first.records[0].key is None and first.records[1].key == b"k1"
    assert _values(spool, 50) == [f"event-{i}".encode() for i in range(50)]  # read moves nothing
    spool.commit(first)
    assert spool.records == 150
    assert _values(spool)[0] == b"event-50"
    rest = spool.read(1000)
    assert len(rest.records) == 150
    spool.commit(rest)
    assert spool.records == 0 and spool.size_bytes == 0
    assert list(tmp_path.glob("*.seg")) == []  # acknowledged segments are deleted
    spool.append(None, b"after")  # and the spool starts afresh
    assert _values(spool) == [b"after"]


def test_fsync_happens_in_batches(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, fsync_batch=10)
    for i in range(25):
        spool.append(None, b"x%d" % i)
    assert spool.fsyncs == 2
    spool.sync()
    assert spool.fsyncs == 3
    spool.sync()  # nothing new: no fsync
    assert spool.fsyncs == 3


def test_full_once_the_byte_bound_is_reached(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=64 * 1024)
    while not spool.full:
        spool.append(b"key", b"v" * 500)
    assert spool.size_bytes >= 64 * 1024
    spool.commit(spool.read(spool.records))
    assert not spool.full


def test_no_reader_sees_the_count_of_a_commit_before_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush that sees no records left must also see the bound released: the shipper
    admits the next event on that view (a race here once refused events after a flush)."""
    spool = Spool(tmp_path, max_bytes=64 * 1024)
    while not spool.full:
        spool.append(b"key", b"v" * 500)
    seen: list[tuple[int, bool]] = []
    readers: list[threading.Thread] = []
    delete = Spool._delete

    def delete_while_a_reader_looks(self: Spool, number: int) -> None:
        reader = threading.Thread(target=lambda: seen.append((spool.records, spool.full)))
        readers.append(reader)
        reader.start()
        reader.join(0.2)  # a reader not held off by the commit has looked by now
        delete(self, number)

    monkeypatch.setattr(Spool, "_delete", delete_while_a_reader_looks)
    spool.commit(spool.read(spool.records))
    monkeypatch.undo()
    for reader in readers:
        reader.join(5)
    assert len(seen) == len(readers) > 0
    assert all(view == (0, False) for view in seen)


def test_a_reopened_spool_replays_what_was_not_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1024)
    for i in range(100):
        spool.append(b"k", b"e%d" % i)
    spool.commit(spool.read(30))
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1024)
    values = _values(again)
    # whole segments before the cursor were deleted; the rest is replayed from its start
    assert values[-70:] == [b"e%d" % i for i in range(30, 100)]
    assert values == [b"e%d" % i for i in range(100 - len(values), 100)]
    assert again.records == len(values)


@pytest.mark.parametrize("damage", ["torn", "flipped"])
def test_a_corrupt_tail_is_cut_with_a_warning_and_the_good_records_kept(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(10):
        spool.append(b"k", b"event-%d" % i)
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    data = segment.read_bytes()
    if damage == "torn":  # a crash in the middle of writing record 10
        segment.write_bytes(data[:-5])
    else:  # a bad block in the last record
        segment.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    with caplog.at_level(logging.WARNING, logger="adgen.bus.spool"):
        again = Spool(tmp_path, max_bytes=1 << 20)
    assert _values(again) == [b"event-%d" % i for i in range(9)]
    assert again.records == 9
    assert any("truncating it there" in r.getMessage() and "9 good records" in r.getMessage()
               for r in caplog.records)
    again.append(b"k", b"new")  # appends after the cut, in a fresh segment
    assert _values(again)[-1] == b"new"
