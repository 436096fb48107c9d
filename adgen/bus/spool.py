"""A write-ahead spool on disk for events the broker has not acknowledged.

Design, after two reference designs: Vector's disk buffer (v2) keeps append-only data
files of checksummed records plus a ledger of reader/writer positions and deletes a data
file once every record in it was acknowledged; Sentry Relay's envelope spool writes
batches into SQLite, is bounded by ``max_disk_size`` and drops new envelopes once that is
reached. adgen takes Vector's shape without the ledger and Relay's byte bound without the
dropping. The spool is a folder of append-only segment files ``NNNNNNNNNNNN.seg``; a
record is a header ``(payload length, append time, crc32)`` and the payload (key length,
key, value). Appends go to the newest segment and are fsynced in batches (every
``fsync_batch`` records, and whenever the writer calls ``sync``); a segment is rotated
once it exceeds ``segment_bytes``. The reader keeps one cursor (segment, byte offset) in
memory: it reads a batch, the caller sends it, and only after the broker acknowledged it
does ``commit`` move the cursor and delete the segments wholly before it. With no ledger,
a restart replays every remaining segment from its start, so a batch acknowledged just
before a crash may be sent again: harmless, ingest stores each ``event_id`` once. The
bound is in bytes and is checked when an event is admitted (``full``): the API then
answers 503 rather than accept what it could not keep. Records already admitted are
always written, so the folder may exceed the bound by what was in memory at that moment.

On open, every segment is scanned; a torn or corrupt record (a crash in mid-write, a bad
disk block) ends its segment: the file is truncated there with a WARNING naming the file,
the offset and the bytes dropped, and every good record before it is kept.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

_HEADER = struct.Struct(">IdI")  # payload length, append time (epoch s), crc32 of time+payload
_KEY_LEN = struct.Struct(">H")
_SUFFIX = ".seg"
#: A payload longer than this is taken as a corrupt header, not a record.
MAX_RECORD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One spooled message: its Kafka key and value, and when it was spooled."""

    key: bytes | None
    value: bytes
    appended_at: float


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """Records read from the cursor, and where the cursor goes once they are acknowledged."""

    records: list[SpoolRecord]
    end_segment: int
    end_offset: int


def _encode(key: bytes | None, value: bytes, now: float) -> bytes:
    k = b"" if key is None else key
    flag = 0xFFFF if key is None else len(k)
    payload = _KEY_LEN.pack(flag) + k + value
    crc = zlib.crc32(struct.pack(">d", now) + payload)
    return _HEADER.pack(len(payload), now, crc) + payload


def _read_record(f: BinaryIO) -> SpoolRecord | None:
    """The record at the file's position; None at a clean end; ValueError when corrupt."""
    head = f.read(_HEADER.size)
    if not head:
        return None
    if len(head) < _HEADER.size:
        raise ValueError("torn header")
    length, appended_at, crc = _HEADER.unpack(head)
    if length < _KEY_LEN.size or length > MAX_RECORD_BYTES:
        raise ValueError(f"impossible record length {length}")
    payload = f.read(length)
    if len(payload) < length:
        raise ValueError("torn record")
    if zlib.crc32(struct.pack(">d", appended_at) + payload) != crc:
        raise ValueError("checksum mismatch")
    (flag,) = _KEY_LEN.unpack_from(payload)
    if flag == 0xFFFF:
        return SpoolRecord(None, payload[_KEY_LEN.size:], appended_at)
    start = _KEY_LEN.size
    return SpoolRecord(payload[start:start + flag], payload[start + flag:], appended_at)


class Spool:
    """Segment files under ``directory``; thread-safe (one lock around every operation)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        fsync_batch: int = 256,
        segment_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.fsync_batch = max(1, fsync_batch)
        self.segment_bytes = max(1024, min(segment_bytes, max_bytes))
        #: fsync calls made (tests check the batching)
        self.fsyncs = 0
        self._lock = threading.Lock()
        self._unsynced = 0
        self._writer: BinaryIO | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._segments: list[int] = sorted(
            int(p.stem) for p in directory.glob(f"*{_SUFFIX}") if p.stem.isdigit()
        )
        self._records = 0
        self._bytes = 0
        for number in self._segments:
            self._records += self._recover(number)
            self._bytes += self._path(number).stat().st_size
        self._read_segment = self._segments[0] if self._segments else 0
        self._read_offset = 0
        if self._records:
            logger.warning(
                "spool %s holds %d event(s) (%d bytes) from an earlier run; replaying them",
                directory, self._records, self._bytes,
            )

    # --- state -------------------------------------------------------------------------
    @property
    def records(self) -> int:
        """Records spooled and not yet acknowledged."""
        with self._lock:  # read with the segments: a commit deletes files after counting
            return self._records

    @property
    def size_bytes(self) -> int:
        """Bytes on disk in the spool's segments."""
        with self._lock:
            return self._bytes

    @property
    def full(self) -> bool:
        """True once the segments hold ``max_bytes`` or more: admit nothing new."""
        with self._lock:
            return self._bytes >= self.max_bytes

    def oldest_age_s(self, now: float | None = None) -> float:
        """Seconds since the oldest unacknowledged record was spooled (0 when empty)."""
        with self._lock:
            if not self._records:
                return 0.0
            with self._path(self._read_segment).open("rb") as f:
                f.seek(self._read_offset)
                head = f.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return 0.0
        return max(0.0, (now or time.time()) - _HEADER.unpack(head)[1])

    # --- writing -----------------------------------------------------------------------
    def append(self, key: bytes | None, value: bytes) -> None:
        """Append one record; fsynced once ``fsync_batch`` records are waiting."""
        data = _encode(key, value, time.time())
        with self._lock:
            writer = self._active_writer(len(data))
            writer.write(data)
            self._records += 1
            self._bytes += len(data)
            self._unsynced += 1
            if self._unsynced >= self.fsync_batch:
                self._sync_locked()

    def sync(self) -> None:
        """fsync what was appended since the last fsync."""
        with self._lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        if self._writer is not None and self._unsynced:
            os.fsync(self._writer.fileno())
            self.fsyncs += 1
        self._unsynced = 0

    def _active_writer(self, incoming: int) -> BinaryIO:
        if self._writer is not None and self._writer.tell() + incoming <= self.segment_bytes:
            return self._writer
        self._sync_locked()
        if self._writer is not None:
            self._writer.close()
        number = (self._segments[-1] + 1) if self._segments else 1
        if not self._segments:
            self._read_segment, self._read_offset = number, 0
        self._segments.append(number)
        self._writer = self._path(number).open("ab", buffering=0)
        self._fsync_dir()
        return self._writer

    # --- reading -----------------------------------------------------------------------
    def read(self, max_records: int) -> SpoolBatch:
        """Up to ``max_records`` records from the cursor, oldest first (cursor unchanged)."""
        with self._lock:
            records: list[SpoolRecord] = []
            segment, offset = self._read_segment, self._read_offset
            for number in [n for n in self._segments if n >= segment]:
                if number != segment:
                    segment, offset = number, 0
                with self._path(number).open("rb") as f:
                    f.seek(offset)
                    while len(records) < max_records:
                        record = _read_record(f)
                        if record is None:
                            break
                        records.append(record)
                        offset = f.tell()
                if len(records) >= max_records:
                    break
            return SpoolBatch(records, segment, offset)

    def commit(self, batch: SpoolBatch) -> None:
        """The broker acknowledged ``batch``: move the cursor past it, delete spent segments."""
        with self._lock:
            self._records -= len(batch.records)
            self._read_segment, self._read_offset = batch.end_segment, batch.end_offset
            for number in [n for n in self._segments if n < batch.end_segment]:
                self._delete(number)
            if self._records == 0 and self._segments:  # everything acknowledged: start afresh
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
                for number in list(self._segments):
                    self._delete(number)
                self._read_offset = 0
            self._fsync_dir()

    def close(self) -> None:
        """fsync and close the active segment (what it holds is replayed at the next open)."""
        with self._lock:
            self._sync_locked()
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # --- files -------------------------------------------------------------------------
    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}{_SUFFIX}"

    def _delete(self, number: int) -> None:
        path = self._path(number)
        self._bytes -= path.stat().st_size
        path.unlink()
        self._segments.remove(number)

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _recover(self, number: int) -> int:
        """Count the good records of a segment; truncate it at the first corrupt one."""
        path = self._path(number)
        count = good_end = 0
        with path.open("r+b") as f:
            while True:
                try:
                    if _read_record(f) is None:
                        break
                except ValueError as exc:
                    size = path.stat().st_size
                    logger.warning(
                        "spool segment %s: %s at byte %d; truncating it there (%d bytes "
                        "dropped, %d good records before it kept)",
                        path, exc, good_end, size - good_end, count,
                    )
                    f.truncate(good_end)
                    os.fsync(f.fileno())
                    break
                count += 1
                good_end = f.tell()
        return count
