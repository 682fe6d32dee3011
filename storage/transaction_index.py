"""A segment's `.txnindex`: the aborted transactions whose abort marker the segment
holds, after Kafka's TransactionIndex / AbortedTxn.

File format: a plain sequence of 34-byte entries, no header, no preallocation:
int16 version (0), int64 producer_id, int64 first_offset, int64 last_offset (the
abort marker's offset), int64 last_stable_offset (the LSO once the abort completed).
The file is created with the first entry. Entries are few (one per aborted
transaction), so they are kept in memory once read.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

ABORTED_TXN = struct.Struct(">hqqqq")
ABORTED_TXN_VERSION = 0
TXN_INDEX_SUFFIX = ".txnindex"


class CorruptTransactionIndexError(ValueError):
    pass


@dataclass(frozen=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def pack(self) -> bytes:
        return ABORTED_TXN.pack(
            ABORTED_TXN_VERSION, self.producer_id, self.first_offset, self.last_offset, self.last_stable_offset
        )


def parse_entries(data: bytes, path: Path | str = "") -> list[AbortedTxn]:
    """The entries of a `.txnindex` file's bytes; a partial entry at the end is
    ignored, as Kafka's reader does."""
    entries = []
    for offset in range(0, len(data) - ABORTED_TXN.size + 1, ABORTED_TXN.size):
        version, producer_id, first_offset, last_offset, last_stable_offset = ABORTED_TXN.unpack_from(data, offset)
        if version > ABORTED_TXN_VERSION:
            raise CorruptTransactionIndexError(f"aborted transaction version {version} in {path}")
        entries.append(AbortedTxn(producer_id, first_offset, last_offset, last_stable_offset))
    return entries


class TransactionIndex:
    """The `.txnindex` of the segment starting at `base_offset`. Not thread safe: the
    log's lock guards it."""

    def __init__(self, path: Path, base_offset: int, entries: list[AbortedTxn]) -> None:
        self.path = path
        self.base_offset = base_offset
        self._entries = entries
        self._fd: int | None = None

    @classmethod
    def open(cls, path: Path, base_offset: int) -> "TransactionIndex":
        """Read an existing index (or start an empty one when there is no file).
        CorruptTransactionIndexError when it fails Kafka's sanity check (an entry
        ending before the segment) or is not ordered by last offset."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(path, base_offset, [])
        entries = parse_entries(data, path)
        previous = -1
        for entry in entries:
            if entry.last_offset < base_offset:
                raise CorruptTransactionIndexError(
                    f"last offset {entry.last_offset} of aborted transaction of producer {entry.producer_id} "
                    f"is below the segment's base offset {base_offset}"
                )
            if entry.last_offset <= previous:
                raise CorruptTransactionIndexError(f"last offsets not increasing at {entry.last_offset}")
            previous = entry.last_offset
        index = cls(path, base_offset, entries)
        if len(data) % ABORTED_TXN.size:
            index._rewrite()  # a torn last entry
        return index

    @property
    def entries(self) -> list[AbortedTxn]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, entry: AbortedTxn) -> None:
        if self._entries and self._entries[-1].last_offset >= entry.last_offset:
            raise ValueError(
                f"last offset {entry.last_offset} does not follow {self._entries[-1].last_offset} in {self.path}"
            )
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._fd, entry.pack())
        self._entries.append(entry)

    def collect(self, fetch_offset: int, upper_bound_offset: int) -> tuple[list[AbortedTxn], bool]:
        """Kafka's collectAbortedTxns: the entries overlapping [fetch_offset,
        upper_bound_offset), and whether the search is complete (an entry's last
        stable offset reached the upper bound, so later segments cannot overlap)."""
        found = []
        for entry in self._entries:
            if entry.last_offset >= fetch_offset and entry.first_offset < upper_bound_offset:
                found.append(entry)
            if entry.last_stable_offset >= upper_bound_offset:
                return found, True
        return found, False

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose marker is at or after `offset`."""
        kept = [entry for entry in self._entries if entry.last_offset < offset]
        if len(kept) != len(self._entries):
            self._entries = kept
            self._rewrite()

    def reset(self) -> None:
        """Remove every entry (before a rebuild); the file goes too."""
        self._entries = []
        self.close()
        self.path.unlink(missing_ok=True)

    def _rewrite(self) -> None:
        self.close()
        if not self._entries:
            self.path.unlink(missing_ok=True)
            return
        os.truncate(self.path, len(self._entries) * ABORTED_TXN.size)

    def flush(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def rename(self, path: Path) -> None:
        if self.path.exists():
            os.rename(self.path, path)
        self.path = path

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
