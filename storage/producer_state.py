"""Idempotent/transactional producer state per partition, after Kafka's
ProducerStateManager / ProducerAppendInfo, and its `<offset>.snapshot` file format.

Transactions: a transactional data batch opens a transaction of its producer (its
first offset); an end-transaction marker completes it. A completed transaction stays
"unreplicated" until the high watermark passes its marker: the first offset of the
earliest ongoing or unreplicated transaction is the first unstable offset, which
bounds the last stable offset (Kafka's firstUnstableOffset).

Snapshot file (version 1): int16 version, uint32 CRC32C of what follows, int32 entry
count, then per producer: int64 producer_id, int16 epoch, int32 last_sequence,
int64 last_offset, int32 offset_delta, int64 timestamp, int32 coordinator_epoch,
int64 current_txn_first_offset (-1 = none).
"""
from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

from storage.checkpoint import write_atomically
from wire.errors import ErrorCode, KafkaError
from wire.records import INT32_MAX, NO_PRODUCER_EPOCH, NO_SEQUENCE, BatchHeader

BATCHES_TO_RETAIN = 5  # Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN
SNAPSHOT_VERSION = 1
SNAPSHOT_SUFFIX = ".snapshot"
_SNAPSHOT_HEADER = struct.Struct(">hI")
_SNAPSHOT_COUNT = struct.Struct(">i")
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")


def decrement_sequence(sequence: int, decrement: int) -> int:
    if sequence < decrement:
        return INT32_MAX - (decrement - sequence) + 1
    return sequence - decrement


def in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == INT32_MAX)


@dataclass(frozen=True)
class BatchMetadata:
    last_sequence: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @property
    def first_sequence(self) -> int:
        return decrement_sequence(self.last_sequence, self.offset_delta)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


@dataclass(frozen=True)
class CompletedTxn:
    producer_id: int
    first_offset: int
    last_offset: int  # the marker's offset
    is_aborted: bool


@dataclass
class ProducerStateEntry:
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))
    coordinator_epoch: int = -1
    last_timestamp: int = -1
    current_txn_first_offset: int | None = None

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else NO_SEQUENCE

    @property
    def first_sequence(self) -> int:
        return self.batches[0].first_sequence if self.batches else NO_SEQUENCE

    def copy(self) -> "ProducerStateEntry":
        return ProducerStateEntry(
            self.producer_id,
            self.producer_epoch,
            deque(self.batches, maxlen=BATCHES_TO_RETAIN),
            self.coordinator_epoch,
            self.last_timestamp,
            self.current_txn_first_offset,
        )

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        if header.producer_epoch != self.producer_epoch:
            return None
        last_sequence = header.last_sequence
        for batch in self.batches:
            if batch.first_sequence == header.base_sequence and batch.last_sequence == last_sequence:
                return batch
        return None

    def update_epoch(self, producer_epoch: int) -> None:
        if self.producer_epoch != producer_epoch:
            self.batches.clear()  # sequences restart with a new epoch
            self.producer_epoch = producer_epoch

    def add_batch(self, producer_epoch: int, last_sequence: int, last_offset: int, offset_delta: int, timestamp: int) -> None:
        self.update_epoch(producer_epoch)
        self.batches.append(BatchMetadata(last_sequence, last_offset, offset_delta, timestamp))
        self.last_timestamp = timestamp


class ProducerAppendInfo:
    """The producer-state changes of one append, checked batch by batch and applied to
    the manager only once the whole append is accepted.

    `validate`: a client's append (Kafka's AppendOrigin.CLIENT), every check;
    `check_epochs`: a coordinator's append (AppendOrigin.COORDINATOR), producer and
    coordinator epochs only; neither: replication and recovery, no checks."""

    def __init__(self, manager: "ProducerStateManager", *, validate: bool, check_epochs: bool = False) -> None:
        self._manager = manager
        self._validate = validate
        self._check_epochs = validate or check_epochs
        self.updated: dict[int, ProducerStateEntry] = {}
        self.started_txns: list[tuple[int, int]] = []  # (first offset, producer id)
        self.completed_txns: list[CompletedTxn] = []

    def _entry(self, producer_id: int) -> ProducerStateEntry:
        entry = self.updated.get(producer_id)
        if entry is None:
            current = self._manager.producers.get(producer_id)
            entry = current.copy() if current is not None else ProducerStateEntry(producer_id)
            self.updated[producer_id] = entry
        return entry

    def append_data_batch(self, header: BatchHeader, first_offset: int, last_offset: int, timestamp: int) -> None:
        """`timestamp`: the batch's max timestamp as stored (the append time for LogAppendTime)."""
        entry = self._entry(header.producer_id)
        if self._check_epochs:
            self._check_epoch(entry, header)
        if self._validate:
            self._check_sequence(entry, header)
        entry.add_batch(header.producer_epoch, header.last_sequence, last_offset, last_offset - first_offset, timestamp)
        if entry.current_txn_first_offset is not None and not header.is_transactional:
            if self._check_epochs:
                raise KafkaError(
                    ErrorCode.INVALID_TXN_STATE,
                    f"non-transactional write from producer {header.producer_id} during its transaction",
                )
        elif entry.current_txn_first_offset is None and header.is_transactional:
            entry.current_txn_first_offset = first_offset
            self.started_txns.append((first_offset, header.producer_id))

    def append_end_transaction_marker(
        self, header: BatchHeader, coordinator_epoch: int, timestamp: int, *, offset: int, is_commit: bool
    ) -> CompletedTxn | None:
        """Kafka's appendEndTxnMarker: the transaction the marker at `offset` completes,
        None when its producer had none open here (the marker is still written)."""
        entry = self._entry(header.producer_id)
        if self._check_epochs:
            self._check_epoch(entry, header)
            if coordinator_epoch < entry.coordinator_epoch:
                raise KafkaError(
                    ErrorCode.TRANSACTION_COORDINATOR_FENCED,
                    f"invalid coordinator epoch for producer {header.producer_id} at offset {offset}: "
                    f"{coordinator_epoch} (zombie), {entry.coordinator_epoch} (current)",
                )
        completed = None
        if entry.current_txn_first_offset is not None:
            completed = CompletedTxn(header.producer_id, entry.current_txn_first_offset, offset, not is_commit)
            self.completed_txns.append(completed)
        entry.update_epoch(header.producer_epoch)
        entry.coordinator_epoch = coordinator_epoch
        entry.current_txn_first_offset = None
        entry.last_timestamp = timestamp
        return completed

    @staticmethod
    def _check_epoch(entry: ProducerStateEntry, header: BatchHeader) -> None:
        if header.producer_epoch < entry.producer_epoch:
            raise KafkaError(
                ErrorCode.INVALID_PRODUCER_EPOCH,
                f"epoch of producer {header.producer_id} is {header.producer_epoch}, smaller than the last seen "
                f"epoch {entry.producer_epoch}",
            )

    def _check_sequence(self, entry: ProducerStateEntry, header: BatchHeader) -> None:
        current = self._manager.producers.get(header.producer_id)
        current_epoch = current.producer_epoch if current is not None else NO_PRODUCER_EPOCH
        if header.producer_epoch != entry.producer_epoch:
            # Kafka accepts any sequence from a producer it has no state for (KIP-360);
            # a known producer's new epoch must start at 0.
            if header.base_sequence != 0 and entry.producer_epoch != NO_PRODUCER_EPOCH:
                raise KafkaError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"invalid sequence number for new epoch of producer {header.producer_id}: "
                    f"{header.producer_epoch} (request epoch), {header.base_sequence} (seq. number), "
                    f"{entry.producer_epoch} (current producer epoch)",
                )
            return
        if current_epoch == NO_PRODUCER_EPOCH:
            return  # all state lost (retention, DeleteRecords): any sequence goes
        current_last_sequence = entry.last_sequence
        if not in_sequence(current_last_sequence, header.base_sequence):
            raise KafkaError(
                ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"out of order sequence number for producer {header.producer_id}: {header.base_sequence} "
                f"(incoming seq. number), {current_last_sequence} (current end sequence number)",
            )


class ProducerStateManager:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.producers: dict[int, ProducerStateEntry] = {}
        # first offset -> producer id, in first-offset order (transactions start in
        # offset order; a load sorts them).
        self.ongoing_txns: dict[int, int] = {}
        # first offset -> (producer id, marker offset): decided, marker not yet below
        # the high watermark.
        self.unreplicated_txns: dict[int, tuple[int, int]] = {}

    def start_append(self, *, validate: bool, check_epochs: bool = False) -> ProducerAppendInfo:
        return ProducerAppendInfo(self, validate=validate, check_epochs=check_epochs)

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        entry = self.producers.get(header.producer_id)
        return entry.find_duplicate(header) if entry is not None else None

    def complete(self, append: ProducerAppendInfo) -> list[tuple[CompletedTxn, int]]:
        """Apply an accepted append. Returns each transaction it completed with the
        last stable offset at its completion (for the transaction index, as Kafka's
        lastStableOffset(completedTxn): the next other ongoing transaction's first
        offset, else the marker's offset + 1)."""
        self.producers.update(append.updated)
        if not append.started_txns and not append.completed_txns:
            return []
        for first_offset, producer_id in append.started_txns:
            self.ongoing_txns[first_offset] = producer_id
        completed = []
        for txn in append.completed_txns:
            last_stable_offset = next(
                (first for first, producer_id in self.ongoing_txns.items() if producer_id != txn.producer_id),
                txn.last_offset + 1,
            )
            self.ongoing_txns.pop(txn.first_offset, None)
            self.unreplicated_txns[txn.first_offset] = (txn.producer_id, txn.last_offset)
            completed.append((txn, last_stable_offset))
        return completed

    def first_unstable_offset(self) -> int | None:
        """The first offset of the earliest ongoing or unreplicated transaction."""
        first = next(iter(self.ongoing_txns), None)
        if self.unreplicated_txns:
            earliest_unreplicated = min(self.unreplicated_txns)
            if first is None or earliest_unreplicated < first:
                first = earliest_unreplicated
        return first

    def remove_unreplicated_txns(self, offset: int) -> bool:
        """Forget the completed transactions whose marker is below `offset` (the high
        watermark or the log start offset passed it). True if any went."""
        below = [first for first, (_, last_offset) in self.unreplicated_txns.items() if last_offset < offset]
        for first in below:
            del self.unreplicated_txns[first]
        return bool(below)

    def clear(self) -> None:
        self.producers = {}
        self.ongoing_txns = {}
        self.unreplicated_txns = {}

    def remove_expired(self, now_ms: int, expiration_ms: int) -> list[int]:
        """Kafka's producer.id.expiration.ms: forget producers idle that long and
        without an open transaction; returns their ids."""
        expired = [
            producer_id
            for producer_id, entry in self.producers.items()
            if entry.current_txn_first_offset is None and now_ms - entry.last_timestamp >= expiration_ms
        ]
        for producer_id in expired:
            del self.producers[producer_id]
        return expired

    # ---- snapshots ----

    def snapshot_path(self, offset: int) -> Path:
        return self.directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"

    def snapshot_offsets(self) -> list[int]:
        offsets = []
        for path in self.directory.glob(f"*{SNAPSHOT_SUFFIX}"):
            try:
                offsets.append(int(path.name[: -len(SNAPSHOT_SUFFIX)]))
            except ValueError:
                continue
        return sorted(offsets)

    def take_snapshot(self, offset: int, *, sync: bool) -> None:
        entries = bytearray(_SNAPSHOT_COUNT.pack(len(self.producers)))
        for producer_id, entry in sorted(self.producers.items()):
            last = entry.batches[-1] if entry.batches else None
            entries += _SNAPSHOT_ENTRY.pack(
                producer_id,
                entry.producer_epoch,
                last.last_sequence if last else NO_SEQUENCE,
                last.last_offset if last else -1,
                last.offset_delta if last else 0,
                entry.last_timestamp,
                entry.coordinator_epoch,
                -1 if entry.current_txn_first_offset is None else entry.current_txn_first_offset,
            )
        data = _SNAPSHOT_HEADER.pack(SNAPSHOT_VERSION, crc32c.crc32c(entries)) + bytes(entries)
        write_atomically(self.snapshot_path(offset), data, sync=sync)

    def load_snapshot(self, offset: int) -> None:
        """Replace the state with the snapshot's; ValueError if the file is corrupt."""
        data = self.snapshot_path(offset).read_bytes()
        if len(data) < _SNAPSHOT_HEADER.size + _SNAPSHOT_COUNT.size:
            raise ValueError("snapshot shorter than its header")
        version, crc = _SNAPSHOT_HEADER.unpack_from(data, 0)
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {version}")
        if crc32c.crc32c(data[_SNAPSHOT_HEADER.size :]) != crc:
            raise ValueError("snapshot CRC mismatch")
        (count,) = _SNAPSHOT_COUNT.unpack_from(data, _SNAPSHOT_HEADER.size)
        start = _SNAPSHOT_HEADER.size + _SNAPSHOT_COUNT.size
        if count < 0 or len(data) != start + count * _SNAPSHOT_ENTRY.size:
            raise ValueError(f"snapshot of {len(data)} bytes cannot hold {count} entries")
        producers = {}
        for values in _SNAPSHOT_ENTRY.iter_unpack(data[start:]):
            producer_id, epoch, last_sequence, last_offset, offset_delta, timestamp, coordinator_epoch, txn_first = values
            entry = ProducerStateEntry(
                producer_id,
                epoch,
                coordinator_epoch=coordinator_epoch,
                last_timestamp=timestamp,
                current_txn_first_offset=None if txn_first < 0 else txn_first,
            )
            if last_offset >= 0:
                entry.batches.append(BatchMetadata(last_sequence, last_offset, offset_delta, timestamp))
            producers[producer_id] = entry
        self.producers = producers
        self.ongoing_txns = {
            entry.current_txn_first_offset: producer_id
            for producer_id, entry in sorted(producers.items(), key=lambda item: item[1].current_txn_first_offset or 0)
            if entry.current_txn_first_offset is not None
        }
        self.unreplicated_txns = {}

    def delete_snapshots(self, *, below: int | None = None, above: int | None = None) -> None:
        for offset in self.snapshot_offsets():
            if (below is not None and offset < below) or (above is not None and offset > above):
                self.snapshot_path(offset).unlink(missing_ok=True)
