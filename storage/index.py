"""Sparse offset and time indexes in Kafka's file formats.

Offset index entry: int32 offset relative to the segment base + int32 file position of
the batch (Kafka indexes a batch under its last offset). Time index entry: int64
timestamp + int32 relative offset. Files are preallocated to segment.index.bytes while
their segment is active and trimmed to their entries when it is rolled or closed, as Kafka
does. Entries are kept in memory too, so a lookup never reads the file.
"""
from __future__ import annotations

import bisect
import os
import struct
from typing import Iterator
from pathlib import Path

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")
INT32_MAX = 2**31 - 1


_READ_CHUNK_BYTES = 96 * 1024  # a multiple of both entry sizes (8 and 12 bytes)


class CorruptIndexError(Exception):
    """An index file that fails its sanity check; the caller rebuilds it."""


class _IndexFile:
    entry: struct.Struct

    def __init__(self, path: Path, base_offset: int, max_index_bytes: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max_index_bytes // self.entry.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def _read_raw(self) -> Iterator[tuple]:
        """The file's entries, read lazily: `open` stops at the zero padding, so an
        index preallocated to segment.index.bytes (after a crash) costs only its entries."""
        size = os.fstat(self._fd).st_size
        whole = size - size % self.entry.size
        for start in range(0, whole, _READ_CHUNK_BYTES):
            yield from self.entry.iter_unpack(os.pread(self._fd, min(_READ_CHUNK_BYTES, whole - start), start))

    def _write_entry(self, index: int, *values: int) -> None:
        os.pwrite(self._fd, self.entry.pack(*values), index * self.entry.size)

    @property
    def is_full(self) -> bool:
        return len(self) >= self.max_entries  # type: ignore[arg-type]  # subclasses define __len__

    def preallocate(self) -> None:
        """Size the file for the active segment (a sparse file: costs no disk)."""
        os.ftruncate(self._fd, self.max_entries * self.entry.size)

    def trim(self) -> None:
        os.ftruncate(self._fd, len(self) * self.entry.size)

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def rename(self, path: Path) -> None:
        os.rename(self.path, path)
        self.path = path


class OffsetIndex(_IndexFile):
    entry = OFFSET_ENTRY

    def __init__(self, path: Path, base_offset: int, max_index_bytes: int) -> None:
        super().__init__(path, base_offset, max_index_bytes)
        self.offsets: list[int] = []
        self.positions: list[int] = []

    @classmethod
    def open(cls, path: Path, base_offset: int, max_index_bytes: int, *, segment_bytes: int) -> "OffsetIndex":
        """Load the entries of an existing file (CorruptIndexError when they cannot be
        right for a segment of `segment_bytes`); preallocated zero padding ends them."""
        index = cls(path, base_offset, max_index_bytes)
        try:
            for relative_offset, position in index._read_raw():
                if relative_offset == 0 and position == 0 and (index.offsets or segment_bytes == 0):
                    break  # zero padding of a preallocated file (all of it for an empty segment)
                offset = base_offset + relative_offset
                if relative_offset < 0 or position < 0 or position >= segment_bytes:
                    raise CorruptIndexError(f"{path.name}: entry ({offset}, {position}) outside the segment")
                if index.offsets and (offset <= index.offsets[-1] or position <= index.positions[-1]):
                    raise CorruptIndexError(f"{path.name}: entry ({offset}, {position}) does not increase")
                index.offsets.append(offset)
                index.positions.append(position)
        except CorruptIndexError:
            index.close()
            raise
        return index

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, offset: int, position: int) -> None:
        self._write_entry(len(self.offsets), offset - self.base_offset, position)
        self.offsets.append(offset)
        self.positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry with offset <= `offset`, else (base, 0).
        Since entries name a batch's last offset, the batch holding `offset` starts at or
        after the returned position."""
        slot = bisect.bisect_right(self.offsets, offset) - 1
        if slot < 0:
            return self.base_offset, 0
        return self.offsets[slot], self.positions[slot]

    def floor_position(self, position: int) -> int:
        """The largest indexed batch position <= `position` (0 when none)."""
        slot = bisect.bisect_right(self.positions, position) - 1
        return self.positions[slot] if slot >= 0 else 0

    def reset(self) -> None:
        self.offsets.clear()
        self.positions.clear()
        os.ftruncate(self._fd, 0)

    def truncate_to_position(self, position: int) -> None:
        """Forget entries for batches at or after file `position` (the log was cut there)."""
        keep = bisect.bisect_left(self.positions, position)
        del self.offsets[keep:]
        del self.positions[keep:]
        os.ftruncate(self._fd, keep * self.entry.size)


class TimeIndex(_IndexFile):
    entry = TIME_ENTRY

    def __init__(self, path: Path, base_offset: int, max_index_bytes: int) -> None:
        super().__init__(path, base_offset, max_index_bytes)
        self.timestamps: list[int] = []
        self.offsets: list[int] = []

    @classmethod
    def open(cls, path: Path, base_offset: int, max_index_bytes: int) -> "TimeIndex":
        index = cls(path, base_offset, max_index_bytes)
        try:
            for timestamp, relative_offset in index._read_raw():
                if index.timestamps and timestamp == 0 and relative_offset == 0:
                    break  # zero padding of a preallocated file
                offset = base_offset + relative_offset
                if relative_offset < 0:
                    raise CorruptIndexError(f"{path.name}: entry ({timestamp}, {offset}) below the segment base")
                if index.timestamps and (timestamp <= index.timestamps[-1] or offset < index.offsets[-1]):
                    raise CorruptIndexError(f"{path.name}: entry ({timestamp}, {offset}) does not increase")
                index.timestamps.append(timestamp)
                index.offsets.append(offset)
        except CorruptIndexError:
            index.close()
            raise
        return index

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def is_full(self) -> bool:
        # One slot stays free for the entry a segment gets when it stops being active.
        return len(self.timestamps) >= self.max_entries - 1

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add (timestamp, offset) if the timestamp is larger than the last entry's."""
        if self.timestamps and timestamp <= self.timestamps[-1]:
            return
        if len(self.timestamps) >= self.max_entries:
            return
        self._write_entry(len(self.timestamps), timestamp, offset - self.base_offset)
        self.timestamps.append(timestamp)
        self.offsets.append(offset)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the last entry with timestamp <= `timestamp`,
        else (-1, base offset)."""
        slot = bisect.bisect_right(self.timestamps, timestamp) - 1
        if slot < 0:
            return -1, self.base_offset
        return self.timestamps[slot], self.offsets[slot]

    def last_entry(self) -> tuple[int, int] | None:
        return (self.timestamps[-1], self.offsets[-1]) if self.timestamps else None

    def reset(self) -> None:
        self.timestamps.clear()
        self.offsets.clear()
        os.ftruncate(self._fd, 0)

    def truncate_to_offset(self, offset: int) -> None:
        """Forget entries naming offsets at or after `offset`."""
        keep = bisect.bisect_left(self.offsets, offset)
        del self.timestamps[keep:]
        del self.offsets[keep:]
        os.ftruncate(self._fd, keep * self.entry.size)
