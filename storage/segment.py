"""One log segment: `<base offset>.log` plus its `.index` and `.timeindex`, and a
`.txnindex` once it holds an abort marker.

Batches are appended as stored bytes; everything the segment learns about them comes
from their 61-byte headers. Reads and scans use os.pread / mmap over the file.
"""
from __future__ import annotations

import io
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import crc32c

from storage.config import LogConfig
from storage.index import CorruptIndexError, OffsetIndex, TimeIndex
from storage.transaction_index import TXN_INDEX_SUFFIX, CorruptTransactionIndexError, TransactionIndex
from wire.records import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CRC_COVERS_FROM,
    LOG_OVERHEAD,
    MAGIC,
    MIN_BATCH_LENGTH,
    BatchHeader,
)

_LENGTH_PREFIX = struct.Struct(">qi")  # base_offset, batch_length
INT32_MAX = 2**31 - 1
DELETED_SUFFIX = ".deleted"


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


@dataclass(frozen=True)
class AppendedBatch:
    """What a segment needs of each batch in an append: from its (patched) header."""

    position: int  # inside the appended bytes
    size: int
    last_offset: int
    max_timestamp: int


class LogSegment:
    def __init__(
        self,
        directory: Path,
        base_offset: int,
        file: io.FileIO,
        size: int,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
        index_interval_bytes: int,
        created_ms: int,
        txn_index: TransactionIndex | None = None,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.file = file
        self.size = size
        self.offset_index = offset_index
        self.time_index = time_index
        self.txn_index = txn_index or TransactionIndex(
            directory / (segment_name(base_offset) + TXN_INDEX_SUFFIX), base_offset, []
        )
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = created_ms
        self.bytes_since_last_index_entry = 0
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1  # last offset of the batch holding max_timestamp
        self.rolling_base_timestamp: int | None = None  # first batch's max timestamp
        self.next_offset = base_offset  # exact for the active segment and after a scan
        self.preallocated_bytes = 0
        self.recovered_epoch_starts: list[tuple[int, int]] = []  # (leader epoch, first offset) seen by recover()
        self.txn_index_stale = False  # emptied by recovery, to be rebuilt from the producer state

    # ---- files ----

    @property
    def log_path(self) -> Path:
        return self.directory / (segment_name(self.base_offset) + ".log")

    @property
    def index_path(self) -> Path:
        return self.directory / (segment_name(self.base_offset) + ".index")

    @property
    def time_index_path(self) -> Path:
        return self.directory / (segment_name(self.base_offset) + ".timeindex")

    @property
    def txn_index_path(self) -> Path:
        return self.directory / (segment_name(self.base_offset) + TXN_INDEX_SUFFIX)

    @property
    def file_paths(self) -> tuple[Path, ...]:
        """Every file the segment may have under its live names."""
        return (self.log_path, self.index_path, self.time_index_path, self.txn_index_path)

    @classmethod
    def create(cls, directory: Path, base_offset: int, config: LogConfig, now_ms: int) -> "LogSegment":
        """A new empty active segment (any files of that name are replaced)."""
        name = segment_name(base_offset)
        for suffix in (".log", ".index", ".timeindex", TXN_INDEX_SUFFIX):
            (directory / (name + suffix)).unlink(missing_ok=True)
        file = io.FileIO(directory / (name + ".log"), "w+")
        offset_index = OffsetIndex(directory / (name + ".index"), base_offset, config.segment_index_bytes)
        time_index = TimeIndex(directory / (name + ".timeindex"), base_offset, config.segment_index_bytes)
        segment = cls(directory, base_offset, file, 0, offset_index, time_index, config.index_interval_bytes, now_ms)
        segment.make_active(config)
        return segment

    @classmethod
    def open(cls, log_path: Path, config: LogConfig, now_ms: int) -> tuple["LogSegment", str | None]:
        """Open an existing segment; the second value says why its indexes must be
        rebuilt (missing or failing their sanity check), None when they are usable."""
        directory = log_path.parent
        base_offset = int(log_path.stem)
        file = io.FileIO(log_path, "r+")
        size = os.fstat(file.fileno()).st_size
        problem = None
        index_path = directory / (log_path.stem + ".index")
        time_index_path = directory / (log_path.stem + ".timeindex")
        if not index_path.exists() or not time_index_path.exists():
            missing = index_path if not index_path.exists() else time_index_path
            problem = f"index file {missing.name} is missing"
        try:
            offset_index = OffsetIndex.open(index_path, base_offset, config.segment_index_bytes, segment_bytes=size)
        except CorruptIndexError as exc:
            problem = f"corrupt offset index: {exc}"
            index_path.unlink()
            offset_index = OffsetIndex(index_path, base_offset, config.segment_index_bytes)
        try:
            time_index = TimeIndex.open(time_index_path, base_offset, config.segment_index_bytes)
        except CorruptIndexError as exc:
            problem = problem or f"corrupt time index: {exc}"
            time_index_path.unlink()
            time_index = TimeIndex(time_index_path, base_offset, config.segment_index_bytes)
        txn_index_path = directory / (log_path.stem + TXN_INDEX_SUFFIX)
        try:
            txn_index = TransactionIndex.open(txn_index_path, base_offset)
        except CorruptTransactionIndexError as exc:
            # Rebuilt from the log with the producer state (PartitionLog.open).
            problem = problem or f"corrupt transaction index: {exc}"
            txn_index_path.unlink()
            txn_index = TransactionIndex(txn_index_path, base_offset, [])
        segment = cls(
            directory, base_offset, file, size, offset_index, time_index, config.index_interval_bytes, now_ms, txn_index
        )
        last_time_entry = time_index.last_entry()
        if last_time_entry is not None:
            segment.max_timestamp, segment.offset_of_max_timestamp = last_time_entry
        return segment, problem

    def make_active(self, config: LogConfig) -> None:
        """Preallocate the index files (and the log with `preallocate`) like Kafka."""
        self.offset_index.preallocate()
        self.time_index.preallocate()
        if config.preallocate and self.size == 0:
            os.posix_fallocate(self.file.fileno(), 0, config.segment_bytes)
            self.preallocated_bytes = config.segment_bytes

    def make_inactive(self) -> None:
        """Called when the segment is rolled or closed: final time index entry, trimmed files."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.offset_index.trim()
        self.time_index.trim()
        if self.preallocated_bytes:
            os.ftruncate(self.file.fileno(), self.size)
            self.preallocated_bytes = 0

    def flush(self) -> None:
        os.fsync(self.file.fileno())
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def close(self) -> None:
        """Close the index files and let go of the log file: it closes as soon as no
        FileSlice still reads it (at once when none does)."""
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.close()
        self.file = None  # type: ignore[assignment]  # the segment is unusable from here on

    def rename_to_deleted(self) -> None:
        """First step of Kafka's asynchronous delete; open readers keep working."""
        os.rename(self.log_path, str(self.log_path) + DELETED_SUFFIX)
        self.offset_index.rename(Path(str(self.index_path) + DELETED_SUFFIX))
        self.time_index.rename(Path(str(self.time_index_path) + DELETED_SUFFIX))
        self.txn_index.rename(Path(str(self.txn_index_path) + DELETED_SUFFIX))

    def delete_files(self) -> None:
        """Unlink the (renamed) files. The log file object is left to the garbage collector,
        so a FileSlice still holding it can finish reading."""
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.delete()
        for path in (str(self.log_path) + DELETED_SUFFIX, self.offset_index.path, self.time_index.path):
            Path(path).unlink(missing_ok=True)

    # ---- appends ----

    @property
    def is_index_full(self) -> bool:
        return self.offset_index.is_full or self.time_index.is_full

    def append(self, data: bytes | bytearray | memoryview, batches: list[AppendedBatch]) -> None:
        """Write `data` (whole batches, offsets assigned) at the end in one write, then
        add sparse index entries computed from `batches`."""
        start = self.size
        view = memoryview(data)
        written = os.pwrite(self.file.fileno(), view, start)
        while written < len(view):  # a short write: rare, finish it
            written += os.pwrite(self.file.fileno(), view[written:], start + written)
        for batch in batches:
            self._index_batch(start + batch.position, batch.size, batch.last_offset, batch.max_timestamp)
        if self.rolling_base_timestamp is None and batches:
            self.rolling_base_timestamp = batches[0].max_timestamp
        self.size = start + len(view)
        self.next_offset = batches[-1].last_offset + 1

    def _index_batch(self, position: int, size: int, last_offset: int, max_timestamp: int) -> None:
        # Kafka's LogSegment.append: index a batch under its last offset once more than
        # index.interval.bytes were written since the previous entry.
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = last_offset
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += size

    def time_waited_for_roll(self, now_ms: int, incoming_max_timestamp: int) -> int:
        """Kafka's LogSegment.timeWaitedForRoll: message time since the first batch when
        it has a timestamp, else wall time since the segment was created."""
        if self.rolling_base_timestamp is not None and self.rolling_base_timestamp >= 0:
            return incoming_max_timestamp - self.rolling_base_timestamp
        return now_ms - self.created_ms

    # ---- reads ----

    def read_header(self, position: int) -> BatchHeader | None:
        data = os.pread(self.file.fileno(), BATCH_HEADER_SIZE, position)
        if len(data) < BATCH_HEADER_SIZE:
            return None
        return BatchHeader._make(BATCH_HEADER.unpack(data))

    def find_batch(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose last offset >= `offset`."""
        _, position = self.offset_index.lookup(offset)
        while position < self.size:
            header = self.read_header(position)
            if header is None:
                return None
            if header.base_offset + header.last_offset_delta >= offset:
                return position, header
            position += header.batch_length + LOG_OVERHEAD
        return None

    def position_of_offset_bound(self, offset: int) -> int:
        """Position of the first batch that starts at or after `offset` (size if none)."""
        _, position = self.offset_index.lookup(offset)
        while position < self.size:
            data = os.pread(self.file.fileno(), LOG_OVERHEAD, position)
            base_offset, batch_length = _LENGTH_PREFIX.unpack(data)
            if base_offset >= offset:
                return position
            position += batch_length + LOG_OVERHEAD
        return self.size

    def whole_batches_end(self, start: int, limit: int) -> int:
        """The largest batch boundary <= `limit` reached from `start`; walks at most
        index.interval.bytes of headers thanks to the offset index."""
        if limit >= self.size:
            return self.size
        position = max(start, self.offset_index.floor_position(limit))
        while position < limit:
            (_, batch_length) = _LENGTH_PREFIX.unpack(os.pread(self.file.fileno(), LOG_OVERHEAD, position))
            if position + batch_length + LOG_OVERHEAD > limit:
                break
            position += batch_length + LOG_OVERHEAD
        return position

    def read_bytes(self, position: int, size: int) -> bytes:
        return os.pread(self.file.fileno(), size, position)

    def iter_headers(self, start_position: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """Headers of the whole batches from `start_position`, no CRC check; stops at
        anything that is not a whole batch."""
        if self.size <= start_position:
            return
        with mmap.mmap(self.file.fileno(), self.size, access=mmap.ACCESS_READ) as mapped:
            position = start_position
            while self.size - position >= BATCH_HEADER_SIZE:
                header = BatchHeader._make(BATCH_HEADER.unpack_from(mapped, position))
                if header.batch_length < MIN_BATCH_LENGTH or position + header.size > self.size:
                    return
                yield position, header
                position += header.size

    def truncate_to(self, position: int) -> None:
        """Cut the segment at batch boundary `position`; indexes follow, and what the
        segment knows of its batches is re-read from the headers that remain."""
        os.ftruncate(self.file.fileno(), position)
        self.size = position
        self.preallocated_bytes = 0
        self.offset_index.truncate_to_position(position)
        _, last_indexed_position = self.offset_index.lookup(2**63 - 1)
        self.next_offset = self.base_offset
        self.bytes_since_last_index_entry = 0
        self.rolling_base_timestamp = None
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        # The time index may name offsets past the cut: rebuild its tail from the headers.
        header = self.read_header(last_indexed_position) if position else None
        first_kept_offset = header.base_offset if header is not None else self.base_offset
        self.time_index.truncate_to_offset(first_kept_offset)
        last_entry = self.time_index.last_entry()
        if last_entry is not None:
            self.max_timestamp, self.offset_of_max_timestamp = last_entry
        self.scan_tail(last_indexed_position)
        self.txn_index.truncate_to(self.next_offset)  # Kafka's txnIndex.truncateTo: markers cut off go

    # ---- recovery ----

    def scan_tail(self, start_position: int) -> str | None:
        """Learn next_offset / max timestamp from the headers after `start_position`
        (a clean open). Returns why the segment needs recovery, or None."""
        first = self.read_header(0)
        if first is not None:
            self.rolling_base_timestamp = first.max_timestamp
        position = start_position
        for position, header in self.iter_headers(start_position):
            self._note_batch(header)
            position += header.size
        if position != self.size and self.size > start_position:
            return f"bytes after position {position} are not a whole batch"
        return None

    def _note_batch(self, header: BatchHeader) -> None:
        last_offset = header.base_offset + header.last_offset_delta
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = last_offset
        self.next_offset = last_offset + 1

    def recover(self, start_offset: int) -> tuple[int, str | None]:
        """Re-validate every batch (sizes, magic, CRC32C, increasing offsets from
        `start_offset`), rebuild both indexes, truncate at the first invalid batch.
        Returns (bytes truncated, why) — (0, None) when everything was valid."""
        self.offset_index.reset()
        self.time_index.reset()
        self.bytes_since_last_index_entry = 0
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.rolling_base_timestamp = None
        self.recovered_epoch_starts = []
        self.next_offset = max(self.base_offset, start_offset)
        position = 0
        reason = None
        if self.size:
            with mmap.mmap(self.file.fileno(), self.size, access=mmap.ACCESS_READ) as mapped:
                position, reason = self._validate_batches(mapped)
                if reason is not None and _all_zero(mapped, position, self.size):
                    reason = None  # the unused end of a preallocated file
        truncated = self.size - position
        if truncated:
            os.ftruncate(self.file.fileno(), position)
            self.size = position
        self.preallocated_bytes = 0
        return truncated, reason

    def _validate_batches(self, mapped: mmap.mmap) -> tuple[int, str | None]:
        position = 0
        view = memoryview(mapped)
        try:
            while position < self.size:
                remaining = self.size - position
                if remaining < BATCH_HEADER_SIZE:
                    return position, f"{remaining} bytes at position {position} are too short for a batch header"
                header = BatchHeader._make(BATCH_HEADER.unpack_from(mapped, position))
                where = f"batch at position {position} (offset {header.base_offset})"
                if header.batch_length < MIN_BATCH_LENGTH:
                    return position, f"{where} has batch_length {header.batch_length}"
                if header.size > remaining:
                    return position, f"{where} needs {header.size} bytes, only {remaining} remain (torn write)"
                if header.magic != MAGIC:
                    return position, f"{where} has magic {header.magic}"
                if crc32c.crc32c(view[position + CRC_COVERS_FROM : position + header.size]) != header.crc:
                    return position, f"{where} fails its CRC check"
                if header.base_offset < self.next_offset or header.last_offset_delta < 0:
                    return position, f"{where} does not follow offset {self.next_offset - 1}"
                if header.base_offset + header.last_offset_delta - self.base_offset > INT32_MAX:
                    return position, f"{where} is too far from the segment base offset"
                self._index_batch(position, header.size, header.last_offset, header.max_timestamp)
                epoch = header.partition_leader_epoch
                if epoch >= 0 and (not self.recovered_epoch_starts or self.recovered_epoch_starts[-1][0] != epoch):
                    self.recovered_epoch_starts.append((epoch, header.base_offset))
                if self.rolling_base_timestamp is None:
                    self.rolling_base_timestamp = header.max_timestamp
                self.next_offset = header.next_offset
                position += header.size
            return position, None
        finally:
            view.release()


def _all_zero(mapped: mmap.mmap, start: int, end: int) -> bool:
    chunk_bytes = 1 << 20
    zeros = bytes(chunk_bytes)
    for position in range(start, end, chunk_bytes):
        piece = mapped[position : min(end, position + chunk_bytes)]
        if piece != zeros[: len(piece)]:
            return False
    return True
