"""Log compaction for cleanup.policy=compact (Kafka's LogCleaner / Cleaner).

A pass over one log: the inactive segments below the first uncleanable offset are
read for the latest offset of each key (the offset map, over the dirty part only),
then every segment from the log start up to there is rewritten keeping a record only
when it is the latest for its key; tombstones go once they are older than
delete.retention.ms. The rewritten files are written as `.cleaned`, renamed `.swap`,
then put in place of the old segments (PartitionLog holds its lock only for that
last step). Transactional batches and markers are copied as they are (aborted
transactions are not removed), so the cleaned segment's `.txnindex` is the group's
entries in order. A crash leaves `.cleaned` files (dropped at open) or `.swap` files (the
swap is completed at open by `complete_interrupted_swaps`).
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
from storage.index import OffsetIndex, TimeIndex
from storage.segment import INT32_MAX, AppendedBatch, LogSegment, segment_name
from storage.transaction_index import TXN_INDEX_SUFFIX, AbortedTxn, TransactionIndex
from wire.records import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CRC_AT,
    CRC_COVERS_FROM,
    MIN_BATCH_LENGTH,
    BatchHeader,
    build_batch,
    decode_records,
)

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
SEGMENT_FILE_SUFFIXES = (".log", ".index", ".timeindex")
ALL_SEGMENT_FILE_SUFFIXES = SEGMENT_FILE_SUFFIXES + (TXN_INDEX_SUFFIX,)
_LAST_OFFSET_DELTA_AT = 23
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")


@dataclass(frozen=True)
class SegmentSnapshot:
    """An inactive segment as the cleaner reads it outside the log's lock: the file
    object keeps the bytes readable even if retention deletes the segment meanwhile."""

    segment: LogSegment
    file: io.FileIO
    base_offset: int
    end_offset: int  # the next segment's base offset
    size: int
    largest_timestamp_ms: int  # max record timestamp, else the file's mtime (Kafka's lastModified)
    aborted_txns: tuple[AbortedTxn, ...] = ()  # its transaction index, read under the log's lock


@dataclass(frozen=True)
class CleanResult:
    first_dirty_offset: int  # the cleaner checkpoint this pass started from
    end_offset: int  # the new cleaner checkpoint: everything below it is clean
    segments_before: int
    segments_after: int
    bytes_before: int
    bytes_after: int
    records_removed: int


def dirty_ratio(clean_bytes: int, dirty_bytes: int) -> float:
    total = clean_bytes + dirty_bytes
    return dirty_bytes / total if total else 0.0


def iter_stored_batches(file: io.FileIO, size: int) -> Iterator[tuple[BatchHeader, bytes]]:
    """(header, bytes) of each whole batch in the first `size` bytes of a segment file."""
    if size < BATCH_HEADER_SIZE:
        return
    with mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as mapped:
        position = 0
        while size - position >= BATCH_HEADER_SIZE:
            header = BatchHeader._make(BATCH_HEADER.unpack_from(mapped, position))
            if header.batch_length < MIN_BATCH_LENGTH or position + header.size > size:
                return
            yield header, mapped[position : position + header.size]
            position += header.size


def _compactable(header: BatchHeader) -> bool:
    # Control batches and transactional data are copied as they are: an aborted
    # transaction's records must never hide an older committed value.
    return not header.is_control and not header.is_transactional


def build_offset_map(dirty: list[SegmentSnapshot], first_dirty_offset: int) -> dict[bytes, int]:
    """key -> the latest offset holding it in the dirty segments."""
    offset_map: dict[bytes, int] = {}
    for snapshot in dirty:
        for header, data in iter_stored_batches(snapshot.file, snapshot.size):
            if not _compactable(header) or header.last_offset < first_dirty_offset:
                continue
            for record in decode_records(data):
                if record.key is not None and record.offset >= first_dirty_offset:
                    offset_map[record.key] = record.offset
    return offset_map


def filter_batch(
    header: BatchHeader, data: bytes, offset_map: dict[bytes, int], retain_deletes: bool
) -> tuple[bytes | None, int]:
    """The batch with only the records to keep, and how many were removed. A batch
    keeping every record is returned as stored; one keeping none is None."""
    if not _compactable(header):
        return data, 0
    records = decode_records(data)
    kept = [
        record
        for record in records
        # A keyless record has no later version; Kafka refuses them on append instead.
        if record.key is None
        or (record.offset >= offset_map.get(record.key, -1) and (record.value is not None or retain_deletes))
    ]
    if len(kept) == len(records):
        return data, 0
    if not kept:
        return None, len(records)
    rebuilt = bytearray(
        build_batch(
            kept,
            base_offset=header.base_offset,
            compression=header.compression,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            partition_leader_epoch=header.partition_leader_epoch,
            timestamp_type=header.timestamp_type,
        )
    )
    # As Kafka: the batch keeps its original last offset, so the producer's sequence
    # range and the offsets that follow stay as they were.
    _INT32.pack_into(rebuilt, _LAST_OFFSET_DELTA_AT, header.last_offset_delta)
    _UINT32.pack_into(rebuilt, CRC_AT, crc32c.crc32c(memoryview(rebuilt)[CRC_COVERS_FROM:]))
    return bytes(rebuilt), len(records) - len(kept)


def group_segments(snapshots: list[SegmentSnapshot], config: LogConfig) -> list[list[SegmentSnapshot]]:
    """Kafka's groupSegmentsBySize: consecutive segments merged while their bytes fit
    segment.bytes, their offsets one index and their batches one offset index."""
    max_index_entries = config.segment_index_bytes // 8
    groups: list[list[SegmentSnapshot]] = []
    for snapshot in snapshots:
        if groups:
            group = groups[-1]
            fits = (
                sum(member.size for member in group) + snapshot.size <= config.segment_bytes
                and snapshot.end_offset - 1 - group[0].base_offset <= INT32_MAX
                and sum(len(member.segment.offset_index) for member in group) + len(snapshot.segment.offset_index)
                < max_index_entries
            )
            if fits:
                group.append(snapshot)
                continue
        groups.append([snapshot])
    return groups


def suffixed(directory: Path, base_offset: int, suffix: str, extra: str) -> Path:
    return directory / (segment_name(base_offset) + suffix + extra)


def write_cleaned_group(
    directory: Path,
    group: list[SegmentSnapshot],
    offset_map: dict[bytes, int],
    delete_horizon_ms: int | None,
    config: LogConfig,
    now_ms: int,
) -> tuple[int, int]:
    """Write the cleaned form of `group` as `<base>.log.cleaned` (+ both indexes), fsync
    it, then rename the three files to `.swap`, the log last: a `.log.swap` means the
    whole cleaned segment is on disk. Returns (bytes written, records removed)."""
    base_offset = group[0].base_offset
    paths = {suffix: suffixed(directory, base_offset, suffix, CLEANED_SUFFIX) for suffix in SEGMENT_FILE_SUFFIXES}
    for path in paths.values():
        path.unlink(missing_ok=True)
    cleaned = LogSegment(
        directory,
        base_offset,
        io.FileIO(paths[".log"], "w+"),
        0,
        OffsetIndex(paths[".index"], base_offset, config.segment_index_bytes),
        TimeIndex(paths[".timeindex"], base_offset, config.segment_index_bytes),
        config.index_interval_bytes,
        now_ms,
        TransactionIndex(suffixed(directory, base_offset, TXN_INDEX_SUFFIX, CLEANED_SUFFIX), base_offset, []),
    )
    removed = 0
    try:
        for snapshot in group:
            # Kafka keeps tombstones of a segment modified after the delete horizon.
            retain_deletes = delete_horizon_ms is None or snapshot.largest_timestamp_ms > delete_horizon_ms
            for header, data in iter_stored_batches(snapshot.file, snapshot.size):
                kept, removed_here = filter_batch(header, data, offset_map, retain_deletes)
                removed += removed_here
                if kept is not None:
                    cleaned.append(kept, [AppendedBatch(0, len(kept), header.last_offset, _max_timestamp(kept))])
        cleaned.make_inactive()
        cleaned.flush()
        size = cleaned.size
    finally:
        cleaned.offset_index.close()
        cleaned.time_index.close()
        cleaned.file.close()
    # As Kafka: the cleaned file keeps the last modified time of what it replaces, on
    # which the tombstone horizon of later passes depends.
    last_modified_ns = max(snapshot.largest_timestamp_ms for snapshot in group) * 1_000_000
    os.utime(paths[".log"], ns=(last_modified_ns, last_modified_ns))
    suffixes = [".index", ".timeindex"]
    aborted = [entry for snapshot in group for entry in snapshot.aborted_txns]
    if aborted:
        txn_index_path = suffixed(directory, base_offset, TXN_INDEX_SUFFIX, CLEANED_SUFFIX)
        with open(txn_index_path, "wb") as file:
            file.write(b"".join(entry.pack() for entry in aborted))
            file.flush()
            os.fsync(file.fileno())
        suffixes.append(TXN_INDEX_SUFFIX)
    for suffix in suffixes + [".log"]:
        os.rename(suffixed(directory, base_offset, suffix, CLEANED_SUFFIX), suffixed(directory, base_offset, suffix, SWAP_SUFFIX))
    _fsync_directory(directory)
    return size, removed


def _max_timestamp(batch: bytes) -> int:
    return BatchHeader._make(BATCH_HEADER.unpack_from(batch, 0)).max_timestamp


def install_swap_files(directory: Path, base_offset: int) -> None:
    """`<base>.{index,timeindex,log}.swap` -> their final names (indexes first, so the
    `.log.swap` that marks an unfinished swap goes last)."""
    for suffix in (".index", ".timeindex", TXN_INDEX_SUFFIX, ".log"):
        swap = suffixed(directory, base_offset, suffix, SWAP_SUFFIX)
        if suffix == TXN_INDEX_SUFFIX and not swap.exists():
            continue  # no aborted transaction in the group
        os.replace(swap, suffixed(directory, base_offset, suffix, ""))
    _fsync_directory(directory)


def remove_cleaner_files(directory: Path, base_offset: int) -> None:
    for suffix in ALL_SEGMENT_FILE_SUFFIXES:
        for extra in (CLEANED_SUFFIX, SWAP_SUFFIX):
            suffixed(directory, base_offset, suffix, extra).unlink(missing_ok=True)


def complete_interrupted_swaps(directory: Path) -> list[str]:
    """At open, before segments load: a `.log.swap` is a whole cleaned segment whose
    swap a crash interrupted. As Kafka's recovery, the old segments it covers are
    deleted and the swap files take their place; index swaps without their log swap,
    and every `.cleaned` file, are dropped. Returns what was done, for the log."""
    notes = []
    for path in list(directory.iterdir()):
        if path.name.endswith(CLEANED_SUFFIX):
            path.unlink(missing_ok=True)
    for swap in sorted(directory.glob("*.log" + SWAP_SUFFIX)):
        base_offset = int(swap.name.split(".")[0])
        end_offset = base_offset
        with io.FileIO(swap, "r") as file:
            for header, _ in iter_stored_batches(file, os.fstat(file.fileno()).st_size):
                end_offset = header.next_offset
        replaced = []
        for old in directory.glob("*.log"):
            old_base = int(old.stem)
            if old_base == base_offset or base_offset <= old_base < end_offset:
                replaced.append(old.name)
                for suffix in ALL_SEGMENT_FILE_SUFFIXES:
                    if (
                        suffix == TXN_INDEX_SUFFIX
                        and old_base == base_offset
                        and not suffixed(directory, base_offset, suffix, SWAP_SUFFIX).exists()
                    ):
                        continue  # installed before the crash (or never needed): it is the cleaned one
                    suffixed(directory, old_base, suffix, "").unlink(missing_ok=True)
        for suffix in (".index", ".timeindex", TXN_INDEX_SUFFIX):
            index_swap = suffixed(directory, base_offset, suffix, SWAP_SUFFIX)
            if index_swap.exists():
                os.replace(index_swap, suffixed(directory, base_offset, suffix, ""))
        os.replace(swap, suffixed(directory, base_offset, ".log", ""))
        notes.append(f"completed the swap of cleaned segment {segment_name(base_offset)}.log for {sorted(replaced)}")
    for path in list(directory.iterdir()):
        if path.name.endswith(SWAP_SUFFIX):  # an index swap whose log swap never came
            path.unlink(missing_ok=True)
    if notes:
        _fsync_directory(directory)
    return notes


def _fsync_directory(directory: Path) -> None:
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
