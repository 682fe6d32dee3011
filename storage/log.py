"""The log of one partition: a directory `<topic>-<partition>` of segments, as Kafka
lays it out, with appends that look only at batch headers and reads that return file
ranges.

Thread safety: every public method takes the log's lock, so a worker thread may run
`enforce_retention` / `flush` while another appends and reads; fsync runs outside it.
"""
from __future__ import annotations

import bisect
import io
import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

import crc32c

from storage import cleaner
from storage.checkpoint import read_partition_metadata, write_partition_metadata
from storage.config import LogConfig
from storage.leader_epoch import LeaderEpochCache
from storage.producer_state import ProducerAppendInfo, ProducerStateManager
from storage.segment import DELETED_SUFFIX, INT32_MAX, AppendedBatch, LogSegment
from storage.transaction_index import TXN_INDEX_SUFFIX, AbortedTxn
from wire.compression import Compression
from wire.errors import ErrorCode, KafkaError
from wire.records import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CRC_COVERS_FROM,
    LOG_OVERHEAD,
    MAGIC,
    MAGIC_AT,
    MIN_BATCH_LENGTH,
    NO_TIMESTAMP,
    BatchHeader,
    assign_base_offset,
    decode_records,
    end_txn_marker_batch,
    parse_end_txn_marker,
    set_log_append_time,
    set_partition_leader_epoch,
)

log = logging.getLogger(__name__)

PARTITION_METADATA_NAME = "partition.metadata"
# `<topic>-<partition>`, or a replica being moved to this log dir (AlterReplicaLogDirs):
# `<topic>-<partition>.<hex id>-future`, Kafka's name for it.
_DIRECTORY_NAME = re.compile(r"^(.+)-(\d+)(\.[0-9a-f]{32}-future)?$")
FUTURE_DIRECTORY_SUFFIX = "-future"
_SEGMENT_NAME = re.compile(r"^\d{20}\.log$")
SNAPSHOTS_TO_KEEP = 2


class AppendOrigin(Enum):
    CLIENT = "client"  # a Produce request: sequence checks, no control batches
    COORDINATOR = "coordinator"  # transaction markers and internal topics


@dataclass(frozen=True)
class AppendInfo:
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 for CreateTime topics
    log_start_offset: int
    duplicate: bool = False  # an idempotent retry answered with the original offsets


@dataclass(frozen=True)
class FileSlice:
    """`size` bytes of a segment file from `position`. Holds the file object, so the
    bytes stay readable even after retention deletes the segment."""

    file: io.FileIO
    position: int
    size: int

    @property
    def fd(self) -> int:
        return self.file.fileno()

    def read(self) -> bytes:
        if self.size == 0:
            return b""
        return os.pread(self.file.fileno(), self.size, self.position)


def parse_partition_directory(name: str) -> tuple[str, int]:
    match = _DIRECTORY_NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a <topic>-<partition> directory name")
    return match.group(1), int(match.group(2))


class PartitionLog:
    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        topic_id: uuid.UUID | None,
        segments: list[LogSegment],
        producer_state: ProducerStateManager,
        leader_epochs: LeaderEpochCache,
        *,
        log_start_offset: int,
        recovery_point: int,
        high_watermark: int,
        now_ms: int,
    ) -> None:
        self.directory = directory
        self.topic, self.partition = parse_partition_directory(directory.name)
        self.topic_id = topic_id
        self._config = config
        self._segments = segments
        self._base_offsets = [segment.base_offset for segment in segments]
        self._producer_state = producer_state
        self._leader_epochs = leader_epochs
        self._log_start_offset = log_start_offset
        self._log_end_offset = segments[-1].next_offset
        self._recovery_point = recovery_point
        self._high_watermark = high_watermark
        self._lock = threading.RLock()
        self._unflushed_messages = 0
        self._last_flush_ms = now_ms
        self._segments_to_flush: list[LogSegment] = []
        self._pending_deletes: list[tuple[int, LogSegment]] = []  # (due ms, renamed segment)
        self._closed = False
        self.cleaner_checkpoint = 0  # first dirty offset for compaction (cleaner-offset-checkpoint)
        self.truncations = 0  # how many times batches were cut off its end (a copy starts over)
        self._cleaning = threading.Lock()
        self._first_unstable_offset: int | None = None
        self._producer_state.remove_unreplicated_txns(high_watermark)
        self._update_first_unstable_offset()

    # ---- opening and recovery ----

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        topic_id: uuid.UUID | None,
        recovery_point: int,
        log_start_offset: int,
        high_watermark: int,
        now_ms: int,
        clean_shutdown: bool,
    ) -> "PartitionLog":
        """Load (or create) the partition directory. After an unclean shutdown every
        batch from the segment holding `recovery_point` on is re-validated and the log is
        truncated at the first bad one; indexes that are missing or fail their sanity
        check are rebuilt. What was dropped and why is logged as one WARNING."""
        directory.mkdir(parents=True, exist_ok=True)
        parse_partition_directory(directory.name)
        topic_id = _reconcile_topic_id(directory, topic_id)
        notes: list[str] = cleaner.complete_interrupted_swaps(directory)
        _remove_leftovers(directory)
        segments = _load_segments(directory, config, now_ms, recovery_point, clean_shutdown, notes)
        recovered = not clean_shutdown or bool(notes)
        if not segments:
            segments = [LogSegment.create(directory, max(log_start_offset, 0), config, now_ms)]
        log_end_offset = segments[-1].next_offset
        log_start_offset = max(log_start_offset, segments[0].base_offset)
        if log_start_offset > log_end_offset:
            # Everything up to the log start offset was lost in the crash: start over there.
            notes.append(f"log start offset {log_start_offset} is past the recovered end {log_end_offset}")
            for segment in segments:
                segment.close()
                for path in segment.file_paths:
                    path.unlink(missing_ok=True)
            segments = [LogSegment.create(directory, log_start_offset, config, now_ms)]
            log_end_offset = log_start_offset
        segments[-1].make_active(config)

        # Recovery re-learns epochs from the batches, as Kafka's LogSegment.recover does.
        leader_epochs = LeaderEpochCache.load(directory)
        recovered_epoch_starts = [start for segment in segments for start in segment.recovered_epoch_starts]
        for epoch, start_offset in recovered_epoch_starts:
            leader_epochs.assign(epoch, start_offset, persist=False)
        leader_epochs.truncate_from_end(log_end_offset)
        leader_epochs.truncate_from_start(log_start_offset)
        if recovered_epoch_starts:
            leader_epochs.persist()

        # Kafka rebuilds the transaction index of every segment it recovers.
        rebuild = [segment for segment in segments if segment.txn_index_stale]
        producer_state = _load_producer_state(directory, segments, log_end_offset, notes, rebuild)
        if recovered:
            for segment in segments:
                segment.flush()
            recovery_point = log_end_offset
        if notes:
            topic, partition = parse_partition_directory(directory.name)
            log.warning("recovered partition %s-%d: %s", topic, partition, "; ".join(notes))
        return cls(
            directory,
            config,
            topic_id,
            segments,
            producer_state,
            leader_epochs,
            log_start_offset=log_start_offset,
            recovery_point=min(max(recovery_point, log_start_offset), log_end_offset),
            high_watermark=min(max(high_watermark, log_start_offset), log_end_offset),
            now_ms=now_ms,
        )

    # ---- properties ----

    @property
    def config(self) -> LogConfig:
        return self._config

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def last_stable_offset(self) -> int:
        """Kafka's LSO: the first offset of the earliest transaction not yet decided, or
        decided but with its marker not yet below the high watermark; the high
        watermark when there is none or it is lower. read_committed fetches stop here."""
        first_unstable_offset = self._first_unstable_offset
        high_watermark = self._high_watermark
        if first_unstable_offset is not None and first_unstable_offset < high_watermark:
            return first_unstable_offset
        return high_watermark

    def ongoing_transactions(self) -> dict[int, int]:
        """producer id -> first offset of its open transaction on this partition."""
        with self._lock:
            return {producer_id: first_offset for first_offset, producer_id in self._producer_state.ongoing_txns.items()}

    def aborted_transactions(self, fetch_offset: int, upper_bound_offset: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of every aborted transaction overlapping
        [fetch_offset, upper_bound_offset), from the transaction indexes of the segment
        holding `fetch_offset` onward (Kafka's collectAbortedTransactions)."""
        with self._lock:
            self._check_open()
            slot = max(bisect.bisect_right(self._base_offsets, fetch_offset) - 1, 0)
            found = []
            for segment in self._segments[slot:]:
                entries, complete = segment.txn_index.collect(fetch_offset, upper_bound_offset)
                found.extend((entry.producer_id, entry.first_offset) for entry in entries)
                if complete:
                    break
            return found

    def _update_first_unstable_offset(self) -> None:
        # Kafka's maybeIncrementFirstUnstableOffset: never below the log start offset.
        first = self._producer_state.first_unstable_offset()
        self._first_unstable_offset = None if first is None else max(first, self._log_start_offset)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(segment.size for segment in self._segments)

    def segment_base_offsets(self) -> list[int]:
        with self._lock:
            return list(self._base_offsets)

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, kept within [log_start_offset, log_end_offset]."""
        with self._lock:
            self._high_watermark = min(max(offset, self._log_start_offset), self._log_end_offset)
            # Kafka's onHighWatermarkUpdated: decided transactions whose marker every
            # replica has stop holding the last stable offset back.
            if self._producer_state.unreplicated_txns and self._producer_state.remove_unreplicated_txns(
                self._high_watermark
            ):
                self._update_first_unstable_offset()
            return self._high_watermark

    def update_config(self, config: LogConfig) -> None:
        with self._lock:
            self._config = config
            self._segments[-1].index_interval_bytes = config.index_interval_bytes

    # ---- appends ----

    def append(
        self,
        records: bytes | bytearray | memoryview,
        *,
        leader_epoch: int,
        now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        """Append one or more v2 batches as the leader: validate them through their
        headers, assign offsets from the log end offset, stamp `leader_epoch` (and
        LogAppendTime when configured), write them in one write. A writable buffer is
        patched in place. Refusals raise KafkaError; nothing is written then."""
        view = memoryview(records)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        with self._lock:
            self._check_open()
            config = self._config
            batches = self._validate(view, config, now_ms, origin)
            if not batches:
                return AppendInfo(-1, -1, NO_TIMESTAMP, self._log_start_offset)
            if len(view) > config.segment_bytes:
                raise KafkaError(
                    ErrorCode.RECORD_LIST_TOO_LARGE,
                    f"{len(view)} bytes exceed the segment size {config.segment_bytes}",
                )
            producer_append = self._producer_state.start_append(
                validate=origin is AppendOrigin.CLIENT, check_epochs=origin is AppendOrigin.COORDINATOR
            )
            next_offset = self._log_end_offset
            base_offsets = []
            for position, header in batches:
                last_offset = next_offset + header.last_offset_delta
                if header.producer_id >= 0:
                    if origin is AppendOrigin.CLIENT:
                        duplicate = self._producer_state.find_duplicate(header)
                        if duplicate is not None:
                            return AppendInfo(
                                duplicate.first_offset,
                                duplicate.last_offset,
                                duplicate.timestamp if config.log_append_time else NO_TIMESTAMP,
                                self._log_start_offset,
                                duplicate=True,
                            )
                    stored_max_timestamp = now_ms if config.log_append_time else header.max_timestamp
                    self._update_producer(
                        producer_append, view, position, header, next_offset, last_offset, stored_max_timestamp
                    )
                base_offsets.append(next_offset)
                next_offset = last_offset + 1

            buffer = view if not view.readonly else memoryview(bytearray(view))
            log_append_time_ms = now_ms if config.log_append_time else NO_TIMESTAMP
            appended = []
            for (position, header), base_offset in zip(batches, base_offsets):
                assign_base_offset(buffer, position, base_offset)
                set_partition_leader_epoch(buffer, position, leader_epoch)
                if config.log_append_time:
                    set_log_append_time(buffer, position, now_ms)
                max_timestamp = now_ms if config.log_append_time else header.max_timestamp
                appended.append(
                    AppendedBatch(position, header.size, base_offset + header.last_offset_delta, max_timestamp)
                )
            self._write(buffer, appended, max(batch.max_timestamp for batch in appended), now_ms)
            self._complete_producer_append(producer_append)
            self._leader_epochs.assign(leader_epoch, base_offsets[0])
            self._after_append(sum(header.records_count for _, header in batches), now_ms)
            return AppendInfo(base_offsets[0], next_offset - 1, log_append_time_ms, self._log_start_offset)

    def append_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        *,
        commit: bool,
        coordinator_epoch: int,
        leader_epoch: int,
        now_ms: int,
    ) -> AppendInfo:
        """Write one end-transaction marker (Kafka's WriteTxnMarkers on a partition
        leader): a transactional control batch of the producer holding one
        EndTransactionMarker record, appended as the coordinator. It completes the
        producer's open transaction here, if any (a marker is written either way); an
        abort is recorded in the transaction index. Refusals: INVALID_PRODUCER_EPOCH
        for an older producer epoch, TRANSACTION_COORDINATOR_FENCED for an older
        coordinator epoch than the producer's last marker carried."""
        marker = bytearray(end_txn_marker_batch(producer_id, producer_epoch, commit=commit,
                                                coordinator_epoch=coordinator_epoch,
                                                timestamp_ms=now_ms))
        return self.append(marker, leader_epoch=leader_epoch, now_ms=now_ms, origin=AppendOrigin.COORDINATOR)

    def _complete_producer_append(self, producer_append: ProducerAppendInfo) -> None:
        """Apply an append's producer state (after its write); aborts go to the
        transaction index of the segment the markers went to (the active one)."""
        completed = self._producer_state.complete(producer_append)
        if not completed and not producer_append.started_txns:
            return
        segment = self._segments[-1]
        for txn, last_stable_offset in completed:
            if txn.is_aborted:
                segment.txn_index.append(
                    AbortedTxn(txn.producer_id, txn.first_offset, txn.last_offset, last_stable_offset)
                )
        self._update_first_unstable_offset()

    def append_as_follower(self, records: bytes | bytearray | memoryview, *, now_ms: int) -> AppendInfo:
        """Append batches fetched from the leader as they are (offsets and leader epochs
        already assigned): checks sizes, CRC and that offsets continue the log."""
        view = memoryview(records)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        with self._lock:
            self._check_open()
            batches = self._validate(view, self._config, now_ms, None)
            if not batches:
                return AppendInfo(-1, -1, NO_TIMESTAMP, self._log_start_offset)
            producer_append = self._producer_state.start_append(validate=False)
            expected = self._log_end_offset
            appended = []
            for position, header in batches:
                if header.base_offset < expected:
                    raise KafkaError(
                        ErrorCode.INVALID_RECORD,
                        f"batch at offset {header.base_offset} does not follow the log end offset {expected}",
                    )
                if header.producer_id >= 0:
                    self._update_producer(
                        producer_append, view, position, header, header.base_offset, header.last_offset, header.max_timestamp
                    )
                appended.append(AppendedBatch(position, header.size, header.last_offset, header.max_timestamp))
                expected = header.next_offset
            self._write(view, appended, max(batch.max_timestamp for batch in appended), now_ms)
            self._complete_producer_append(producer_append)
            for _, header in batches:
                self._leader_epochs.assign(header.partition_leader_epoch, header.base_offset)
            self._after_append(sum(header.records_count for _, header in batches), now_ms)
            first, last = batches[0][1], batches[-1][1]
            return AppendInfo(first.base_offset, last.last_offset, NO_TIMESTAMP, self._log_start_offset)

    def _check_open(self) -> None:
        if self._closed:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"log {self.topic}-{self.partition} is closed")

    def _validate(
        self, view: memoryview, config: LogConfig, now_ms: int, origin: AppendOrigin | None
    ) -> list[tuple[int, BatchHeader]]:
        """Kafka's analyzeAndValidateRecords + LogValidator checks, header by header."""
        total = len(view)
        position = 0
        batches = []
        unpack_from = BATCH_HEADER.unpack_from
        while position < total:
            remaining = total - position
            if remaining <= MAGIC_AT:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{remaining} trailing bytes at {position}")
            magic = view[position + MAGIC_AT]
            if magic != MAGIC:
                raise KafkaError(
                    ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"record batch magic {magic}: only v2 batches are accepted"
                )
            if remaining < BATCH_HEADER_SIZE:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{remaining} trailing bytes at {position}: partial header")
            header = BatchHeader._make(unpack_from(view, position))
            size = header.batch_length + LOG_OVERHEAD
            if header.batch_length < MIN_BATCH_LENGTH or size > remaining:
                raise KafkaError(
                    ErrorCode.CORRUPT_MESSAGE,
                    f"batch at {position} claims batch_length {header.batch_length}, {remaining} bytes remain",
                )
            if size > config.max_message_bytes:
                raise KafkaError(
                    ErrorCode.MESSAGE_TOO_LARGE,
                    f"batch of {size} bytes exceeds max.message.bytes {config.max_message_bytes}",
                )
            if crc32c.crc32c(view[position + CRC_COVERS_FROM : position + size]) != header.crc:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch at {position} fails its CRC check")
            if origin is not None:
                self._validate_batch(header, config, now_ms, origin)
            batches.append((position, header))
            position += size
        return batches

    @staticmethod
    def _validate_batch(header: BatchHeader, config: LogConfig, now_ms: int, origin: AppendOrigin) -> None:
        if header.last_offset_delta < 0:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"batch has an invalid offset range (delta {header.last_offset_delta})")
        if header.records_count <= 0:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"invalid record count {header.records_count}")
        if header.last_offset_delta + 1 != header.records_count:
            raise KafkaError(
                ErrorCode.INVALID_RECORD,
                f"inconsistent batch offset range ({header.last_offset_delta + 1}) and record count ({header.records_count})",
            )
        if header.compression > Compression.ZSTD:
            raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"compression codec {header.compression}")
        if header.is_control and origin is AppendOrigin.CLIENT:
            raise KafkaError(ErrorCode.INVALID_RECORD, "clients are not allowed to write control records")
        # Kafka's LogValidator checks sequences of client batches only: the coordinator
        # writes transactional offset commits without one (NO_SEQUENCE).
        if origin is AppendOrigin.CLIENT and header.producer_id >= 0 and header.base_sequence < 0:
            raise KafkaError(
                ErrorCode.INVALID_RECORD,
                f"invalid sequence number {header.base_sequence} in batch of producer {header.producer_id}",
            )
        if not config.log_append_time:
            # Kafka checks every record; the header bounds the first and the largest.
            earliest_ms = now_ms - config.message_timestamp_before_max_ms
            latest_ms = now_ms + config.message_timestamp_after_max_ms
            for timestamp in (header.base_timestamp, header.max_timestamp):
                if timestamp != NO_TIMESTAMP and not earliest_ms <= timestamp <= latest_ms:
                    raise KafkaError(
                        ErrorCode.INVALID_TIMESTAMP,
                        f"timestamp {timestamp} is out of range: it should be within [{earliest_ms}, {latest_ms}]",
                    )

    def _update_producer(
        self,
        producer_append: ProducerAppendInfo,
        view: memoryview,
        position: int,
        header: BatchHeader,
        first_offset: int,
        last_offset: int,
        max_timestamp: int,
    ) -> None:
        if header.is_control:
            marker = parse_end_txn_marker(view[position : position + header.size])
            if marker is not None:
                producer_append.append_end_transaction_marker(
                    header, marker.coordinator_epoch, max_timestamp, offset=first_offset, is_commit=marker.commit
                )
        else:
            producer_append.append_data_batch(header, first_offset, last_offset, max_timestamp)

    def _write(self, buffer: memoryview, appended: list[AppendedBatch], max_timestamp: int, now_ms: int) -> None:
        segment = self._segments[-1]
        if self._should_roll(segment, len(buffer), max_timestamp, appended[-1].last_offset, now_ms):
            self._roll(now_ms)
        self._segments[-1].append(buffer, appended)

    def _after_append(self, records_count: int, now_ms: int) -> None:
        self._log_end_offset = self._segments[-1].next_offset
        self._unflushed_messages += records_count
        config = self._config
        if self._unflushed_messages >= config.flush_messages or now_ms - self._last_flush_ms >= config.flush_ms:
            self._flush_locked_segments(now_ms)

    def _should_roll(self, segment: LogSegment, incoming_bytes: int, incoming_max_timestamp: int, last_offset: int, now_ms: int) -> bool:
        # Kafka's LogSegment.shouldRoll.
        if segment.size == 0:
            return False
        config = self._config
        return (
            segment.size > config.segment_bytes - incoming_bytes
            or segment.time_waited_for_roll(now_ms, incoming_max_timestamp) > config.segment_ms - config.segment_jitter_ms
            or segment.is_index_full
            or last_offset - segment.base_offset > INT32_MAX
        )

    def _roll(self, now_ms: int) -> None:
        old = self._segments[-1]
        old.make_inactive()
        self._segments_to_flush.append(old)
        new = LogSegment.create(self.directory, self._log_end_offset, self._config, now_ms)
        self._segments.append(new)
        self._base_offsets.append(new.base_offset)
        # Kafka snapshots producer state at each new segment so a restart replays little.
        self._producer_state.take_snapshot(new.base_offset, sync=False)
        self._prune_snapshots()

    def _prune_snapshots(self) -> None:
        offsets = self._producer_state.snapshot_offsets()
        keep_from = offsets[-SNAPSHOTS_TO_KEEP] if len(offsets) >= SNAPSHOTS_TO_KEEP else (offsets[0] if offsets else 0)
        self._producer_state.delete_snapshots(below=min(keep_from, self._segments[0].base_offset))

    def roll_if_due(self, now_ms: int) -> bool:
        """Roll a non-empty active segment older than segment.ms (an idle log gets no
        appends to trigger it)."""
        with self._lock:
            self._check_open()
            segment = self._segments[-1]
            config = self._config
            if segment.size and segment.time_waited_for_roll(now_ms, now_ms) > config.segment_ms - config.segment_jitter_ms:
                self._roll(now_ms)
                return True
            return False

    # ---- reads ----

    def read(
        self, fetch_offset: int, max_bytes: int, *, max_offset: int | None = None, min_one_batch: bool = True
    ) -> FileSlice:
        """Stored bytes of whole batches from the batch holding `fetch_offset`, within
        one segment: at most `max_bytes` unless `min_one_batch` (KIP-74: at least the
        first batch), none starting at or after `max_offset`. OFFSET_OUT_OF_RANGE outside
        [log_start_offset, log_end_offset]; an empty slice at log_end_offset."""
        with self._lock:
            self._check_open()
            if fetch_offset < self._log_start_offset or fetch_offset > self._log_end_offset:
                raise KafkaError(
                    ErrorCode.OFFSET_OUT_OF_RANGE,
                    f"offset {fetch_offset} is outside [{self._log_start_offset}, {self._log_end_offset}] "
                    f"of {self.topic}-{self.partition}",
                )
            active = self._segments[-1]
            empty = FileSlice(active.file, active.size, 0)
            if fetch_offset == self._log_end_offset or (max_offset is not None and fetch_offset >= max_offset):
                return empty
            slot = max(bisect.bisect_right(self._base_offsets, fetch_offset) - 1, 0)
            for index in range(slot, len(self._segments)):
                segment = self._segments[index]
                found = segment.find_batch(fetch_offset)
                if found is None:
                    continue
                position, header = found
                if max_offset is not None and header.base_offset >= max_offset:
                    return empty
                end_limit = segment.size
                next_base = self._base_offsets[index + 1] if index + 1 < len(self._segments) else None
                if max_offset is not None and max_offset < self._log_end_offset and (next_base is None or next_base > max_offset):
                    end_limit = segment.position_of_offset_bound(max_offset)
                limit = min(end_limit, position + max(max_bytes, 0))
                end = segment.whole_batches_end(position, limit)
                if end == position and min_one_batch:
                    end = position + header.size
                return FileSlice(segment.file, position, end - position)
            return empty

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= timestamp_ms at or
        after the log start offset, or None (Kafka's ListOffsets by timestamp)."""
        with self._lock:
            self._check_open()
            for segment in self._segments:
                if segment.max_timestamp < timestamp_ms:
                    continue
                _, indexed_offset = segment.time_index.lookup(timestamp_ms)
                _, position = segment.offset_index.lookup(max(indexed_offset, self._log_start_offset))
                for batch_position, header in segment.iter_headers(position):
                    if header.max_timestamp < timestamp_ms or header.last_offset < self._log_start_offset:
                        continue
                    for record in decode_records(segment.read_bytes(batch_position, header.size)):
                        if record.timestamp >= timestamp_ms and record.offset >= self._log_start_offset:
                            return record.offset, record.timestamp
            return None

    def max_timestamp(self) -> tuple[int, int] | None:
        """(timestamp, offset) of the first record with the largest timestamp (KIP-734)."""
        with self._lock:
            self._check_open()
            best = None
            for segment in self._segments:
                if segment.max_timestamp >= 0 and (best is None or segment.max_timestamp > best.max_timestamp):
                    best = segment
            if best is None:
                return None
            _, position = best.offset_index.lookup(best.offset_of_max_timestamp)
            for batch_position, header in best.iter_headers(position):
                if header.max_timestamp == best.max_timestamp:
                    for record in decode_records(best.read_bytes(batch_position, header.size)):
                        if record.timestamp == best.max_timestamp:
                            return record.timestamp, record.offset
            return None

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """(epoch, end offset) as OffsetForLeaderEpoch answers; (-1, -1) when unknown."""
        with self._lock:
            return self._leader_epochs.end_offset_for(leader_epoch, self._log_end_offset)

    def leader_epoch_entries(self) -> list[tuple[int, int]]:
        with self._lock:
            return list(self._leader_epochs.entries)

    def producer_states(self) -> dict[int, tuple[int, int, int]]:
        """producer id -> (epoch, last sequence, last timestamp)."""
        with self._lock:
            return {
                producer_id: (entry.producer_epoch, entry.last_sequence, entry.last_timestamp)
                for producer_id, entry in self._producer_state.producers.items()
            }

    def describe_producers(self) -> dict[int, tuple[int, int, int, int]]:
        """producer id -> (epoch, last sequence, last timestamp, coordinator epoch), for
        DescribeProducers (with ongoing_transactions for current_txn_start_offset)."""
        with self._lock:
            return {
                producer_id: (entry.producer_epoch, entry.last_sequence, entry.last_timestamp, entry.coordinator_epoch)
                for producer_id, entry in self._producer_state.producers.items()
            }

    def remove_expired_producers(self, now_ms: int, expiration_ms: int) -> list[int]:
        """producer.id.expiration.ms: drop idle producers without an open transaction."""
        with self._lock:
            return self._producer_state.remove_expired(now_ms, expiration_ms)

    # ---- deletion ----

    def delete_records_before(self, offset: int, *, now_ms: int | None = None) -> int:
        """DeleteRecords: move the log start offset up to `offset` (OFFSET_OUT_OF_RANGE
        past the high watermark) and delete the segments wholly below it."""
        with self._lock:
            self._check_open()
            if offset > self._high_watermark or offset < 0:
                raise KafkaError(
                    ErrorCode.OFFSET_OUT_OF_RANGE,
                    f"cannot delete records before {offset}: high watermark is {self._high_watermark}",
                )
            if offset > self._log_start_offset:
                self._log_start_offset = offset
                self._leader_epochs.truncate_from_start(offset)
                self._on_log_start_offset_incremented()
            self._delete_segments(self._log_start_offset_breached, self._last_flush_ms if now_ms is None else now_ms)
            return self._log_start_offset

    def enforce_retention(self, now_ms: int) -> int:
        """Delete segments past retention.ms / retention.bytes or below the log start
        offset (Kafka's deleteOldSegments); also removes renamed files whose
        file.delete.delay.ms has passed. Returns the number of segments deleted."""
        with self._lock:
            self._check_open()
            config = self._config
            deleted = 0
            if config.retention_ms >= 0:
                deleted += self._delete_segments(
                    lambda segment, _next: now_ms - _largest_timestamp(segment) > config.retention_ms, now_ms
                )
            if config.retention_bytes >= 0:
                excess = [self.size_bytes - config.retention_bytes]

                def over_size(segment: LogSegment, _next: LogSegment | None) -> bool:
                    if excess[0] - segment.size >= 0:
                        excess[0] -= segment.size
                        return True
                    return False

                deleted += self._delete_segments(over_size, now_ms)
            deleted += self._delete_segments(self._log_start_offset_breached, now_ms)
            self._delete_due_files(now_ms)
            return deleted

    def _log_start_offset_breached(self, _segment: LogSegment, next_segment: LogSegment | None) -> bool:
        return next_segment is not None and next_segment.base_offset <= self._log_start_offset

    def _delete_segments(self, predicate: Callable[[LogSegment, LogSegment | None], bool], now_ms: int) -> int:
        deletable = []
        for index, segment in enumerate(self._segments):
            next_segment = self._segments[index + 1] if index + 1 < len(self._segments) else None
            upper_bound = next_segment.base_offset if next_segment is not None else self._log_end_offset
            if next_segment is None and segment.size == 0:
                break
            # Only what every replica has (below the high watermark) may go.
            if self._high_watermark >= upper_bound and predicate(segment, next_segment):
                deletable.append(segment)
            else:
                break
        if not deletable:
            return 0
        if len(deletable) == len(self._segments):
            self._roll(now_ms)  # as Kafka: the active segment goes once a new one takes over
        self._retire_segments(deletable, now_ms)
        if self._segments[0].base_offset > self._log_start_offset:
            self._log_start_offset = self._segments[0].base_offset
            self._leader_epochs.truncate_from_start(self._log_start_offset)
            self._on_log_start_offset_incremented()
        self._high_watermark = max(self._high_watermark, self._log_start_offset)
        self._recovery_point = max(self._recovery_point, self._log_start_offset)
        self._prune_snapshots()
        return len(deletable)

    def _on_log_start_offset_incremented(self) -> None:
        # Kafka's onLogStartOffsetIncremented + maybeIncrementFirstUnstableOffset.
        self._producer_state.remove_unreplicated_txns(self._log_start_offset)
        self._update_first_unstable_offset()

    def _delete_due_files(self, now_ms: int) -> None:
        due = [entry for entry in self._pending_deletes if entry[0] <= now_ms]
        for entry in due:
            entry[1].delete_files()
            self._pending_deletes.remove(entry)

    # ---- compaction ----

    def clean(self, now_ms: int) -> cleaner.CleanResult | None:
        """One compaction pass (Kafka's Cleaner.clean) when cleanup.policy has compact
        and the dirty ratio below the cleanable bound reaches min.cleanable.dirty.ratio.
        Reads and writes outside the lock; holds it only to swap the cleaned segments
        in. None when nothing was due, or the segments changed meanwhile."""
        if not self._cleaning.acquire(blocking=False):
            return None
        try:
            with self._lock:
                if self._closed or not self._config.cleanup_policy_compact:
                    return None
                config = self._config
                plan = self._cleanable_segments(now_ms)
            if plan is None:
                return None
            first_dirty_offset, clean_part, dirty_part = plan
            cleanable = clean_part + dirty_part
            offset_map = cleaner.build_offset_map(dirty_part, first_dirty_offset)
            # Kafka: tombstones survive in segments modified after the last clean
            # segment's time minus delete.retention.ms.
            delete_horizon_ms = clean_part[-1].largest_timestamp_ms - config.delete_retention_ms if clean_part else None
            groups = cleaner.group_segments(cleanable, config)
            bytes_after = records_removed = 0
            try:
                for group in groups:
                    size, removed = cleaner.write_cleaned_group(
                        self.directory, group, offset_map, delete_horizon_ms, config, now_ms
                    )
                    bytes_after += size
                    records_removed += removed
            except Exception:
                # A `.swap` left behind would be installed at the next open, over
                # segments that may have changed by then.
                for group in groups:
                    cleaner.remove_cleaner_files(self.directory, group[0].base_offset)
                if self._closed:  # the topic was deleted under the pass
                    return None
                raise
            with self._lock:
                if not self._still_cleanable(cleanable):
                    for group in groups:
                        cleaner.remove_cleaner_files(self.directory, group[0].base_offset)
                    return None
                for group in groups:
                    self._swap_in_cleaned(group, now_ms)
                end_offset = dirty_part[-1].end_offset
                self.cleaner_checkpoint = end_offset
            return cleaner.CleanResult(
                first_dirty_offset=first_dirty_offset,
                end_offset=end_offset,
                segments_before=len(cleanable),
                segments_after=len(groups),
                bytes_before=sum(snapshot.size for snapshot in cleanable),
                bytes_after=bytes_after,
                records_removed=records_removed,
            )
        finally:
            self._cleaning.release()

    def _cleanable_segments(
        self, now_ms: int
    ) -> tuple[int, list[cleaner.SegmentSnapshot], list[cleaner.SegmentSnapshot]] | None:
        """Kafka's cleanableOffsets + dirty ratio: (first dirty offset, clean segments,
        dirty segments) or None. Whole inactive segments below the high watermark and
        older than min.compaction.lag.ms are cleanable."""
        config = self._config
        # Kafka's cleaner never cleans past the first unstable offset: control batches
        # and open transactions above the last stable offset stay as written.
        first_uncleanable_offset = min(self._segments[-1].base_offset, self.last_stable_offset)
        first_dirty_offset = self.cleaner_checkpoint
        if not self._log_start_offset <= first_dirty_offset <= self._log_end_offset:
            first_dirty_offset = self._log_start_offset
        clean_part = []
        dirty_part = []
        for segment, next_segment in zip(self._segments, self._segments[1:]):
            if next_segment.base_offset > first_uncleanable_offset:
                break
            snapshot = cleaner.SegmentSnapshot(
                segment, segment.file, segment.base_offset, next_segment.base_offset, segment.size,
                _largest_timestamp(segment), tuple(segment.txn_index.entries),
            )
            if next_segment.base_offset <= first_dirty_offset:
                clean_part.append(snapshot)
                continue
            if config.min_compaction_lag_ms > 0 and snapshot.largest_timestamp_ms > now_ms - config.min_compaction_lag_ms:
                break
            dirty_part.append(snapshot)
        dirty_bytes = sum(snapshot.size for snapshot in dirty_part)
        clean_bytes = sum(snapshot.size for snapshot in clean_part)
        if dirty_bytes == 0 or cleaner.dirty_ratio(clean_bytes, dirty_bytes) < config.min_cleanable_dirty_ratio:
            return None
        return first_dirty_offset, clean_part, dirty_part

    def _still_cleanable(self, snapshots: list[cleaner.SegmentSnapshot]) -> bool:
        # Retention, DeleteRecords or a follower truncation may have replaced them.
        if self._closed or self._segments[-1] in [snapshot.segment for snapshot in snapshots]:
            return False
        return all(snapshot.segment in self._segments for snapshot in snapshots)

    def _swap_in_cleaned(self, group: list[cleaner.SegmentSnapshot], now_ms: int) -> None:
        """Kafka's replaceSegments: old segments renamed `.deleted` (deleted after
        file.delete.delay.ms), then the `.swap` files take the first one's name."""
        old = [snapshot.segment for snapshot in group]
        index = self._segments.index(old[0])
        self._retire_segments(old, now_ms)
        cleaner.install_swap_files(self.directory, group[0].base_offset)
        segment, problem = LogSegment.open(old[0].log_path, self._config, now_ms)
        if problem is None:
            segment.scan_tail(segment.offset_index.lookup(2**63 - 1)[1])
        else:
            segment.recover(segment.base_offset)
        self._segments.insert(index, segment)
        self._base_offsets = [segment.base_offset for segment in self._segments]

    # ---- follower truncation ----

    def truncate_to(self, offset: int, *, now_ms: int) -> bool:
        """Remove every batch from the one holding `offset` on (a follower diverged from
        its leader, KIP-101/279). Returns False when the log ends at or before `offset`."""
        with self._lock:
            self._check_open()
            if offset >= self._log_end_offset:
                return False
            if offset <= self._log_start_offset:
                self._truncate_fully_locked(offset, now_ms)
                return True
            later = [segment for segment in self._segments[1:] if segment.base_offset >= offset]
            self._retire_segments(later, now_ms)
            segment = self._segments[-1]
            found = segment.find_batch(offset)
            if found is not None:
                segment.truncate_to(found[0])
            # Compaction may have removed the batches just below the cut (or all of a
            # segment's): the log still ends where the first removed batch began.
            segment.next_offset = found[1].base_offset if found is not None else max(segment.next_offset, offset)
            segment.make_active(self._config)
            self._after_truncation(now_ms)
            return True

    def truncate_fully_and_start_at(self, offset: int, *, now_ms: int) -> None:
        """Drop the whole log and start it empty at `offset` (a follower far behind)."""
        with self._lock:
            self._check_open()
            self._truncate_fully_locked(offset, now_ms)

    def _truncate_fully_locked(self, offset: int, now_ms: int) -> None:
        self._retire_segments(list(self._segments), now_ms)  # renamed first: the new base may reuse a name
        self._segments.append(LogSegment.create(self.directory, offset, self._config, now_ms))
        self._base_offsets = [offset]
        self._log_start_offset = offset
        self._leader_epochs.entries = []
        self._leader_epochs.persist()
        self._producer_state.clear()
        self._producer_state.delete_snapshots(below=2**63 - 1)
        self._after_truncation(now_ms)

    def _retire_segments(self, segments: list[LogSegment], now_ms: int) -> None:
        for segment in segments:
            self._segments.remove(segment)
            if segment in self._segments_to_flush:
                self._segments_to_flush.remove(segment)
            segment.rename_to_deleted()
            self._pending_deletes.append((now_ms + self._config.file_delete_delay_ms, segment))
        self._base_offsets = [segment.base_offset for segment in self._segments]

    def _after_truncation(self, now_ms: int) -> None:
        self.truncations += 1
        self._log_end_offset = self._segments[-1].next_offset
        self.cleaner_checkpoint = min(self.cleaner_checkpoint, self._log_end_offset)  # Kafka's maybeTruncateCheckpoint
        self._high_watermark = min(self._high_watermark, self._log_end_offset)
        self._recovery_point = min(self._recovery_point, self._log_end_offset)
        self._leader_epochs.truncate_from_end(self._log_end_offset)
        notes: list[str] = []
        # As Kafka's truncateAndReload: producer state and its transactions come back
        # from the newest snapshot at or below the new end plus the batches after it.
        self._producer_state = _load_producer_state(self.directory, self._segments, self._log_end_offset, notes)
        self._producer_state.remove_unreplicated_txns(self._high_watermark)
        self._update_first_unstable_offset()
        for note in notes:
            log.warning("%s-%d: %s", self.topic, self.partition, note)

    # ---- durability ----

    def flush(self, now_ms: int | None = None) -> None:
        """fsync everything written so far; the recovery point becomes the log end offset."""
        with self._lock:
            self._check_open()
        self._flush_outside_lock(now_ms)

    def flush_due(self, now_ms: int) -> None:
        """The periodic work: flush by flush.ms, flush rolled segments, finish delayed deletes."""
        with self._lock:
            if self._closed:
                return
            self._delete_due_files(now_ms)
            due = bool(self._segments_to_flush) or (
                self._unflushed_messages > 0 and now_ms - self._last_flush_ms >= self._config.flush_ms
            )
        if due:
            self._flush_outside_lock(now_ms)

    def _flush_outside_lock(self, now_ms: int | None) -> None:
        with self._lock:
            segments = self._segments_to_flush + [self._segments[-1]]
            self._segments_to_flush = []
            end_offset = self._log_end_offset
            flushed_messages = self._unflushed_messages
        for segment in segments:
            try:
                segment.flush()
            except (OSError, ValueError):
                if segment in self._segments:
                    raise  # a segment deleted meanwhile needs no flush; a live one does
        with self._lock:
            self._recovery_point = max(self._recovery_point, end_offset)
            self._unflushed_messages -= flushed_messages
            if now_ms is not None:
                self._last_flush_ms = now_ms

    def _flush_locked_segments(self, now_ms: int) -> None:
        for segment in self._segments_to_flush + [self._segments[-1]]:
            segment.flush()
        self._segments_to_flush = []
        self._recovery_point = self._log_end_offset
        self._unflushed_messages = 0
        self._last_flush_ms = now_ms

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Flush, snapshot producer state at the log end offset, trim the active
        segment's indexes (as Kafka does) and close every file."""
        with self._lock:
            if self._closed:
                return
            active = self._segments[-1]
            active.make_inactive()
            for segment in self._segments_to_flush + self._segments:
                segment.flush()
            self._segments_to_flush = []
            self._recovery_point = self._log_end_offset
            self._producer_state.take_snapshot(self._log_end_offset, sync=True)
            self._prune_snapshots()
            for _, segment in self._pending_deletes:
                segment.delete_files()
            self._pending_deletes = []
            for segment in self._segments:
                segment.close()
            self._closed = True


# ---- helpers for open ----


def _largest_timestamp(segment: LogSegment) -> int:
    # Kafka: the largest record timestamp, else the file's modification time.
    if segment.max_timestamp >= 0:
        return segment.max_timestamp
    return int(os.stat(segment.file.fileno()).st_mtime * 1000)


def _reconcile_topic_id(directory: Path, topic_id: uuid.UUID | None) -> uuid.UUID | None:
    path = directory / PARTITION_METADATA_NAME
    try:
        stored = read_partition_metadata(path)
    except ValueError as exc:
        log.warning("%s: %s; rewriting it", path, exc)
        stored = None
    if topic_id is None:
        return stored
    if stored is not None and stored != topic_id:
        raise KafkaError(
            ErrorCode.INCONSISTENT_TOPIC_ID, f"{directory.name} holds topic id {stored}, expected {topic_id}"
        )
    if stored is None:
        write_partition_metadata(path, topic_id)
    return topic_id


def _remove_leftovers(directory: Path) -> None:
    """Files an earlier run left half done: delayed deletes, temp files, and indexes
    whose segment is gone."""
    log_stems = {path.stem for path in directory.glob("*.log")}
    for path in directory.iterdir():
        name = path.name
        if name.endswith((DELETED_SUFFIX, ".tmp", ".cleaned", ".swap")):
            path.unlink(missing_ok=True)
        elif name.endswith((".index", ".timeindex", TXN_INDEX_SUFFIX)) and path.stem not in log_stems:
            path.unlink(missing_ok=True)


def _load_segments(
    directory: Path, config: LogConfig, now_ms: int, recovery_point: int, clean_shutdown: bool, notes: list[str]
) -> list[LogSegment]:
    paths = sorted((p for p in directory.glob("*.log") if _SEGMENT_NAME.match(p.name)), key=lambda p: int(p.stem))
    opened = [LogSegment.open(path, config, now_ms) for path in paths]
    segments = [segment for segment, _ in opened]
    if not segments:
        return []
    base_offsets = [segment.base_offset for segment in segments]
    recover_from = len(segments)
    if not clean_shutdown:
        recover_from = max(bisect.bisect_right(base_offsets, recovery_point) - 1, 0)
    for index, (segment, index_problem) in enumerate(opened):
        is_last = index == len(segments) - 1
        reason = None
        if index >= recover_from or index_problem is not None:
            if index_problem is not None:
                notes.append(f"rebuilt the indexes of segment {segment.log_path.name} ({index_problem})")
            truncated, reason = _recover_segment(segment)
        elif is_last:
            tail_problem = segment.scan_tail(segment.offset_index.lookup(2**63 - 1)[1])
            if tail_problem is not None:
                truncated, reason = _recover_segment(segment)
        if reason is not None:
            dropped = segments[index + 1 :]
            dropped_bytes = sum(later.size for later in dropped)
            for later in dropped:
                later.close()
                for path in later.file_paths:
                    path.unlink(missing_ok=True)
            message = (
                f"truncated segment {segment.log_path.name} to {segment.size} bytes (log end offset "
                f"{segment.next_offset}), dropping {truncated} bytes: {reason}"
            )
            if dropped:
                message += f"; deleted {len(dropped)} later segment(s) of {dropped_bytes} bytes"
            notes.append(message)
            return segments[: index + 1]
    return segments


def _recover_segment(segment: LogSegment) -> tuple[int, str | None]:
    """LogSegment.recover, with the transaction index emptied for the rebuild that
    `_load_producer_state` does from the producer state (as Kafka's recover)."""
    segment.txn_index.reset()
    segment.txn_index_stale = True
    return segment.recover(segment.base_offset)


def _load_producer_state(
    directory: Path,
    segments: list[LogSegment],
    log_end_offset: int,
    notes: list[str],
    rebuild_txn_indexes: list[LogSegment] = (),  # type: ignore[assignment]
) -> ProducerStateManager:
    """Latest Kafka-format snapshot at or below the log end, then the batch headers
    after it (or all of them without a snapshot), batch by batch, so the ongoing
    transactions and the last stable offset of each completion come out as they were.
    The transaction indexes of `rebuild_txn_indexes` (emptied) get their aborts back:
    the replay then starts from a snapshot at or below the first of them."""
    manager = ProducerStateManager(directory)
    manager.delete_snapshots(above=log_end_offset)
    rebuild = {id(segment) for segment in rebuild_txn_indexes}
    replay_limit = min((segment.base_offset for segment in rebuild_txn_indexes), default=log_end_offset)
    replay_from = segments[0].base_offset
    for offset in reversed(manager.snapshot_offsets()):
        if offset > replay_limit:
            continue
        try:
            manager.load_snapshot(offset)
        except (ValueError, OSError) as exc:
            notes.append(f"ignored producer snapshot {offset:020d}.snapshot ({exc})")
            manager.snapshot_path(offset).unlink(missing_ok=True)
            manager.clear()
            continue
        replay_from = offset
        break
    for segment in rebuild_txn_indexes:
        segment.txn_index_stale = False
    if replay_from >= log_end_offset:
        return manager
    base_offsets = [segment.base_offset for segment in segments]
    first = max(bisect.bisect_right(base_offsets, replay_from) - 1, 0)
    # One append for the whole replay, except in segments being re-indexed: there
    # batch by batch, so each abort gets the last stable offset of its moment.
    append = manager.start_append(validate=False)
    for segment in segments[first:]:
        rebuilding = id(segment) in rebuild
        if rebuilding:
            manager.complete(append)
            append = manager.start_append(validate=False)
        _, position = segment.offset_index.lookup(replay_from)
        for batch_position, header in segment.iter_headers(position):
            if header.producer_id < 0 or header.last_offset < replay_from:
                continue
            if header.is_control:
                marker = parse_end_txn_marker(memoryview(segment.read_bytes(batch_position, header.size)))
                if marker is None:
                    continue
                append.append_end_transaction_marker(
                    header, marker.coordinator_epoch, header.max_timestamp, offset=header.base_offset,
                    is_commit=marker.commit
                )
            else:
                append.append_data_batch(header, header.base_offset, header.last_offset, header.max_timestamp)
            if rebuilding:
                for txn, last_stable_offset in manager.complete(append):
                    if txn.is_aborted:
                        segment.txn_index.append(
                            AbortedTxn(txn.producer_id, txn.first_offset, txn.last_offset, last_stable_offset)
                        )
                append = manager.start_append(validate=False)
    manager.complete(append)
    return manager
