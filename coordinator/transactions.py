"""The transaction coordinator: Kafka's transactional-id state machine, without I/O.

Follows Kafka's TransactionCoordinator, TransactionMetadata and TransactionStateManager
(core/.../coordinator/transaction). Every operation takes plain arguments and `now_ms`
and returns an `Outcome` (coordinator.groups.Outcome):

- `records`: __transaction_state records (CoordinatorRecord(partition, key, value)),
  appended in order BEFORE the response is sent. The state they describe is already in
  effect when the call returns (as GroupCoordinator does): a call that follows sees it.
- `markers`: MarkerRequest per ended transaction, to write AFTER the records: one
  transaction marker (commit or abort control batch of that producer id and epoch,
  with the coordinator epoch) in every partition listed. Once every partition has its
  marker, the runtime calls `markers_written()`, which writes CompleteCommit /
  CompleteAbort.
- `response`: the answer (a dict shaped like the response body, or an ErrorCode).

A transaction moves Empty -> Ongoing (AddPartitionsToTxn / AddOffsetsToTxn) ->
PrepareCommit / PrepareAbort (EndTxn, or a server-side abort) -> CompleteCommit /
CompleteAbort (markers written) -> Ongoing (next transaction) or Empty (InitProducerId).

Timers are data: `next_deadline()` says when `expire(now_ms)` must run next: it aborts
transactions Ongoing longer than their timeout (every
transaction.abort.timed.out.transaction.cleanup.interval.ms) and removes transactional
ids idle longer than transactional.id.expiration.ms (every
transaction.remove.expired.transaction.cleanup.interval.ms).

Differences from Kafka, all from having no asynchronous log append here: there is no
"pending state" (a transition takes effect when its Outcome is returned), so
CONCURRENT_TRANSACTIONS comes only from transactions whose markers are not yet written.
PrepareEpochFence is, as in Kafka, never written: fencing an Ongoing transaction writes
PrepareAbort with the bumped epoch; a PrepareEpochFence loaded from a foreign log is
kept and requests on it answer UNKNOWN_SERVER_ERROR (Kafka throws IllegalStateException).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Callable, Iterable, NamedTuple

from coordinator.group_records import partition_for
from coordinator.groups import CoordinatorRecord, Outcome, PartitionState
from coordinator.transaction_records import (
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TransactionLogValue, decode_key, decode_value,
    encode_key, encode_value,
)
from wire.errors import ErrorCode

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
MAX_PRODUCER_EPOCH = 32767  # Short.MaxValue
TRANSACTION_VERSION_2 = 2  # transaction.version at which every EndTxn bumps the epoch (KIP-890)


class TransactionState(IntEnum):
    """Kafka's TransactionState; the value is the id stored in TransactionLogValue."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        """The name DescribeTransactions / ListTransactions use ("PrepareCommit")."""
        return "".join(word.capitalize() for word in self.name.split("_"))

    @classmethod
    def from_kafka_name(cls, name: str) -> "TransactionState | None":
        return next((state for state in cls if state.kafka_name == name), None)


_EXPIRABLE = (TransactionState.EMPTY, TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT)
_PREPARE = (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT)
_COMPLETE = (TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT)


@dataclass(frozen=True)
class TransactionConfig:
    """Kafka's transaction coordinator settings with Kafka's defaults."""

    transaction_max_timeout_ms: int = 900000  # transaction.max.timeout.ms
    transactional_id_expiration_ms: int = 604800000  # transactional.id.expiration.ms
    transaction_state_log_num_partitions: int = 50  # transaction.state.log.num.partitions
    # transaction.abort.timed.out.transaction.cleanup.interval.ms
    abort_timed_out_transaction_cleanup_interval_ms: int = 10000
    # transaction.remove.expired.transaction.cleanup.interval.ms
    remove_expired_transaction_cleanup_interval_ms: int = 3600000


class MarkerRequest(NamedTuple):
    """Write a commit (or abort) marker of producer_id / producer_epoch, with
    coordinator_epoch, to each (topic, partition); then call markers_written()."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: list[tuple[str, int]]


@dataclass(frozen=True)
class TransactionMetadata:
    """One transactional id's state (Kafka's TransactionMetadata). last_producer_epoch is
    not in the log (Kafka loads it as -1): it lets a KIP-360 retry of a successful
    InitProducerId get the same epoch again."""

    transactional_id: str
    partition: int  # of __transaction_state
    producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    timeout_ms: int
    state: TransactionState
    partitions: frozenset[tuple[str, int]]
    start_timestamp_ms: int
    last_update_timestamp_ms: int
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    client_transaction_version: int = 0

    @property
    def epoch_exhausted(self) -> bool:
        # Short.MaxValue is kept so the coordinator can always fence one more time.
        return self.producer_epoch >= MAX_PRODUCER_EPOCH - 1


def _fenced(api_version: int, fenced_since_version: int) -> ErrorCode:
    """PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for request versions older than the
    one that introduced it (KafkaApis maps it for old clients)."""
    return ErrorCode.PRODUCER_FENCED if api_version >= fenced_since_version else ErrorCode.INVALID_PRODUCER_EPOCH


def _version_error(error: ErrorCode, api_version: int, fenced_since_version: int) -> ErrorCode:
    return _fenced(api_version, fenced_since_version) if error is ErrorCode.PRODUCER_FENCED else error


class _Effects:
    def __init__(self) -> None:
        self.records: list[CoordinatorRecord] = []
        self.markers: list[MarkerRequest] = []


class TransactionCoordinator:
    """Transactional ids of the __transaction_state partitions this broker leads. A
    partition is served after `load()`; before, its ids get COORDINATOR_LOAD_IN_PROGRESS
    while loading and NOT_COORDINATOR otherwise."""

    def __init__(self, config: TransactionConfig | None = None, *,
                 allocate_producer_id: Callable[[], int],
                 group_partition_for: Callable[[str], int]) -> None:
        """`allocate_producer_id()`: a producer id never handed out before.
        `group_partition_for(group_id)`: the group's __consumer_offsets partition."""
        self.config = config if config is not None else TransactionConfig()
        self._allocate_producer_id = allocate_producer_id
        self._group_partition_for = group_partition_for
        self._transactions: dict[str, TransactionMetadata] = {}
        self._partitions: dict[int, PartitionState] = {}
        self._coordinator_epochs: dict[int, int] = {}
        self._abort_deadline_ms: int | None = None
        self._remove_deadline_ms: int | None = None

    # -- ownership and loading ------------------------------------------------------------

    def partition_for(self, transactional_id: str) -> int:
        """Utils.abs(transactionalId.hashCode) % transaction.state.log.num.partitions,
        the same rule as a group's partition."""
        return partition_for(transactional_id, self.config.transaction_state_log_num_partitions)

    def begin_loading(self, partition: int) -> None:
        """Take over a partition; its ids answer COORDINATOR_LOAD_IN_PROGRESS until load()
        finishes."""
        self._partitions[partition] = PartitionState.LOADING

    def load(self, partition: int, records: Iterable[tuple[bytes, bytes | None]], now_ms: int,
             coordinator_epoch: int = 0) -> Outcome[None]:
        """Replay the partition's (key, value) records in offset order and serve it with
        `coordinator_epoch` (the leader epoch of the partition, written into markers).
        Transactions left in PrepareCommit / PrepareAbort get their markers again in
        `outcome.markers` (Kafka's loadTransactionsForTxnTopicPartition); Ongoing ones
        wait for their timeout. Raises TransactionRecordError for malformed values."""
        self.begin_loading(partition)
        for transactional_id in [tid for tid, meta in self._transactions.items() if meta.partition == partition]:
            del self._transactions[transactional_id]
        for key, value in records:
            self.replay(partition, key, value)
        self._partitions[partition] = PartitionState.ACTIVE
        self._coordinator_epochs[partition] = coordinator_epoch
        effects = _Effects()
        for meta in self._transactions.values():
            if meta.partition == partition and meta.state in _PREPARE:
                log.info("resending %s markers of transactional id %s after loading partition %d",
                         meta.state.kafka_name, meta.transactional_id, partition)
                effects.markers.append(self._marker(meta))
        if self._abort_deadline_ms is None:
            self._abort_deadline_ms = now_ms + self.config.abort_timed_out_transaction_cleanup_interval_ms
            self._remove_deadline_ms = now_ms + self.config.remove_expired_transaction_cleanup_interval_ms
        return Outcome([], None, markers=effects.markers)

    def replay(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Apply one __transaction_state record (a tombstone removes the id). Keys of an
        unknown version are skipped, as Kafka does."""
        transactional_id = decode_key(key)
        if transactional_id is None:
            log.warning("skipping __transaction_state key of unknown version in partition %d", partition)
            return
        decoded = decode_value(value)
        if decoded is None:
            self._transactions.pop(transactional_id, None)
            return
        self._transactions[transactional_id] = TransactionMetadata(
            transactional_id=transactional_id,
            partition=partition,
            producer_id=decoded.producer_id,
            producer_epoch=decoded.producer_epoch,
            last_producer_epoch=NO_PRODUCER_EPOCH,
            timeout_ms=decoded.transaction_timeout_ms,
            state=TransactionState(decoded.state),
            partitions=frozenset(decoded.partitions),
            start_timestamp_ms=decoded.start_timestamp_ms,
            last_update_timestamp_ms=decoded.last_update_timestamp_ms,
            previous_producer_id=decoded.previous_producer_id,
            next_producer_id=decoded.next_producer_id,
            client_transaction_version=decoded.client_transaction_version,
        )

    def unload(self, partition: int) -> None:
        """Give up a partition (another broker leads it): its state is dropped."""
        self._partitions.pop(partition, None)
        self._coordinator_epochs.pop(partition, None)
        for transactional_id in [tid for tid, meta in self._transactions.items() if meta.partition == partition]:
            del self._transactions[transactional_id]

    def _coordinator_error(self, transactional_id: str) -> ErrorCode | None:
        state = self._partitions.get(self.partition_for(transactional_id))
        if state is PartitionState.ACTIVE:
            return None
        if state is PartitionState.LOADING:
            return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return ErrorCode.NOT_COORDINATOR

    # -- writing state ---------------------------------------------------------------------

    def _write(self, meta: TransactionMetadata, effects: _Effects) -> TransactionMetadata:
        """Make `meta` the id's state and emit its record."""
        self._transactions[meta.transactional_id] = meta
        effects.records.append(CoordinatorRecord(meta.partition, encode_key(meta.transactional_id), encode_value(
            TransactionLogValue(
                producer_id=meta.producer_id,
                producer_epoch=meta.producer_epoch,
                transaction_timeout_ms=meta.timeout_ms,
                state=int(meta.state),
                partitions=tuple(sorted(meta.partitions)),
                last_update_timestamp_ms=meta.last_update_timestamp_ms,
                start_timestamp_ms=meta.start_timestamp_ms,
                previous_producer_id=meta.previous_producer_id,
                next_producer_id=meta.next_producer_id,
                client_transaction_version=meta.client_transaction_version,
            ))))
        return meta

    def _marker(self, meta: TransactionMetadata) -> MarkerRequest:
        return MarkerRequest(meta.transactional_id, meta.producer_id, meta.producer_epoch,
                             meta.state is TransactionState.PREPARE_COMMIT,
                             self._coordinator_epochs.get(meta.partition, 0), sorted(meta.partitions))

    @staticmethod
    def _outcome(effects: _Effects, response) -> Outcome:
        return Outcome(effects.records, response, markers=effects.markers)

    # -- InitProducerId --------------------------------------------------------------------

    def init_producer_id(self, transactional_id: str | None, transaction_timeout_ms: int,
                         expected_producer_id: int = NO_PRODUCER_ID,
                         expected_producer_epoch: int = NO_PRODUCER_EPOCH, now_ms: int = 0,
                         api_version: int = 0) -> Outcome[dict]:
        """InitProducerId. Response {error_code, producer_id, producer_epoch} (-1/-1 on
        error). transactional_id None: an idempotent producer gets a new id, epoch 0.
        Otherwise the id's epoch is bumped (fencing older producers); a new producer id
        when the epoch is exhausted; an Ongoing transaction is aborted first with a
        bumped epoch (records + markers) and the answer is CONCURRENT_TRANSACTIONS until
        its markers are written; PrepareCommit/PrepareAbort also give
        CONCURRENT_TRANSACTIONS. expected_producer_id/epoch (v3+, KIP-360; -1/-1: none)
        must be the id's current producer, or the previous one with an exhausted epoch,
        else PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v4); only one of them -1:
        INVALID_REQUEST. INVALID_TRANSACTION_TIMEOUT outside 1..transaction.max.timeout.ms."""
        effects = _Effects()

        def answer(error: ErrorCode, producer_id: int = NO_PRODUCER_ID,
                   producer_epoch: int = NO_PRODUCER_EPOCH) -> Outcome[dict]:
            return self._outcome(effects, {"error_code": _version_error(error, api_version, 4),
                                           "producer_id": producer_id, "producer_epoch": producer_epoch})

        if transactional_id is None:
            return answer(ErrorCode.NONE, self._allocate_producer_id(), 0)
        if not transactional_id:
            return answer(ErrorCode.INVALID_REQUEST)
        if (expected_producer_id == NO_PRODUCER_ID) != (expected_producer_epoch == NO_PRODUCER_EPOCH):
            return answer(ErrorCode.INVALID_REQUEST)
        if not 0 < transaction_timeout_ms <= self.config.transaction_max_timeout_ms:
            return answer(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        error = self._coordinator_error(transactional_id)
        if error is not None:
            return answer(error)
        expected = None if expected_producer_id == NO_PRODUCER_ID else (expected_producer_id, expected_producer_epoch)
        meta = self._transactions.get(transactional_id)
        if meta is None:
            meta = TransactionMetadata(
                transactional_id=transactional_id, partition=self.partition_for(transactional_id),
                producer_id=self._allocate_producer_id(), producer_epoch=NO_PRODUCER_EPOCH,
                last_producer_epoch=NO_PRODUCER_EPOCH, timeout_ms=transaction_timeout_ms,
                state=TransactionState.EMPTY, partitions=frozenset(), start_timestamp_ms=-1,
                last_update_timestamp_ms=now_ms)

        if expected is not None and not (
                meta.producer_epoch == NO_PRODUCER_EPOCH or expected[0] == meta.producer_id
                or (expected[0] == meta.previous_producer_id and expected[1] >= MAX_PRODUCER_EPOCH - 1)):
            return answer(ErrorCode.PRODUCER_FENCED)
        if meta.state in _PREPARE:
            return answer(ErrorCode.CONCURRENT_TRANSACTIONS)
        if meta.state is TransactionState.ONGOING:
            # Fence the current producer, abort its transaction; the client retries.
            self._abort_with_fence(meta, now_ms, effects)
            return answer(ErrorCode.CONCURRENT_TRANSACTIONS)
        if meta.state not in _EXPIRABLE:
            log.error("transactional id %s is in state %s, which should never be seen",
                      transactional_id, meta.state.kafka_name)
            return answer(ErrorCode.UNKNOWN_SERVER_ERROR)

        if meta.epoch_exhausted and (expected is None or expected[1] == meta.producer_epoch):
            producer_id, epoch = self._allocate_producer_id(), 0
            last_epoch = meta.producer_epoch if expected is not None else NO_PRODUCER_EPOCH
        elif expected is None:
            producer_id, epoch, last_epoch = meta.producer_id, meta.producer_epoch + 1, NO_PRODUCER_EPOCH
        elif meta.producer_epoch == NO_PRODUCER_EPOCH or expected[1] == meta.producer_epoch:
            # The producer continues after an error and nobody took over: bump.
            producer_id, epoch, last_epoch = meta.producer_id, meta.producer_epoch + 1, meta.producer_epoch
        elif expected[1] == meta.last_producer_epoch:
            # A retry of an InitProducerId that succeeded: the same epoch again.
            producer_id, epoch, last_epoch = meta.producer_id, meta.producer_epoch, meta.last_producer_epoch
        else:
            return answer(ErrorCode.PRODUCER_FENCED)
        meta = self._write(replace(
            meta, producer_id=producer_id, previous_producer_id=meta.producer_id,
            next_producer_id=NO_PRODUCER_ID, producer_epoch=epoch, last_producer_epoch=last_epoch,
            timeout_ms=transaction_timeout_ms, state=TransactionState.EMPTY, partitions=frozenset(),
            start_timestamp_ms=-1, last_update_timestamp_ms=now_ms, client_transaction_version=0), effects)
        log.info("initialized transactional id %s with producer id %d epoch %d",
                 transactional_id, meta.producer_id, meta.producer_epoch)
        return answer(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)

    def _abort_with_fence(self, meta: TransactionMetadata, now_ms: int, effects: _Effects) -> None:
        """Kafka's prepareFenceProducerEpoch then endTransaction(ABORT, not from the
        client): PrepareAbort with the epoch bumped (so the old producer is fenced) and
        its markers."""
        if meta.producer_epoch >= MAX_PRODUCER_EPOCH:
            raise AssertionError(f"cannot fence producer {meta.producer_id} at epoch {meta.producer_epoch}")
        meta = self._write(replace(
            meta, producer_epoch=meta.producer_epoch + 1, last_producer_epoch=NO_PRODUCER_EPOCH,
            state=TransactionState.PREPARE_ABORT, next_producer_id=NO_PRODUCER_ID,
            last_update_timestamp_ms=now_ms, client_transaction_version=0), effects)
        effects.markers.append(self._marker(meta))

    # -- AddPartitionsToTxn / AddOffsetsToTxn -------------------------------------------------

    def add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                       partitions: Iterable[tuple[str, int]], now_ms: int = 0, api_version: int = 0,
                       verify_only: bool = False) -> Outcome[dict[tuple[str, int], ErrorCode]]:
        """AddPartitionsToTxn for one transaction: {(topic, partition): error_code}.
        INVALID_PRODUCER_ID_MAPPING (unknown id or other producer id), PRODUCER_FENCED
        (other epoch; INVALID_PRODUCER_EPOCH before v2), CONCURRENT_TRANSACTIONS (markers
        of the previous transaction not yet written); else the transaction becomes
        Ongoing with these partitions (no record if it already has them all).
        verify_only (v4+, from a partition leader): nothing changes; each partition is
        NONE if in the transaction, TRANSACTION_ABORTABLE if not."""
        partitions = list(dict.fromkeys(partitions))
        effects = _Effects()

        def answer(error: ErrorCode) -> Outcome[dict]:
            error = _version_error(error, api_version, 2)
            return self._outcome(effects, {partition: error for partition in partitions})

        error = ErrorCode.INVALID_REQUEST if not transactional_id else self._coordinator_error(transactional_id)
        if error is not None:
            return answer(error)
        meta = self._transactions.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return answer(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if meta.producer_epoch != producer_epoch:
            return answer(ErrorCode.PRODUCER_FENCED)
        if meta.state in _PREPARE:
            return answer(ErrorCode.CONCURRENT_TRANSACTIONS)
        if verify_only:
            return self._outcome(effects, {
                partition: ErrorCode.NONE if partition in meta.partitions else ErrorCode.TRANSACTION_ABORTABLE
                for partition in partitions})
        if meta.state is TransactionState.ONGOING and meta.partitions.issuperset(partitions):
            return answer(ErrorCode.NONE)
        if meta.state not in _EXPIRABLE + (TransactionState.ONGOING,):
            log.error("transactional id %s is in state %s, which should never be seen",
                      transactional_id, meta.state.kafka_name)
            return answer(ErrorCode.UNKNOWN_SERVER_ERROR)
        self._write(replace(
            meta, state=TransactionState.ONGOING, partitions=meta.partitions | frozenset(partitions),
            start_timestamp_ms=now_ms if meta.state is not TransactionState.ONGOING else meta.start_timestamp_ms,
            last_update_timestamp_ms=now_ms), effects)
        return answer(ErrorCode.NONE)

    def add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str,
                    now_ms: int = 0, api_version: int = 0) -> Outcome[ErrorCode]:
        """AddOffsetsToTxn: adds the group's __consumer_offsets partition to the
        transaction, with AddPartitionsToTxn's errors (INVALID_PRODUCER_EPOCH for
        PRODUCER_FENCED before v2)."""
        partition = (OFFSETS_TOPIC, self._group_partition_for(group_id))
        outcome = self.add_partitions(transactional_id, producer_id, producer_epoch, [partition],
                                      now_ms=now_ms, api_version=api_version)
        return Outcome(outcome.records, outcome.response[partition], markers=outcome.markers)

    def partition_in_transaction(self, transactional_id: str, producer_id: int, producer_epoch: int,
                                 topic: str, partition: int) -> bool:
        """Whether the producer's current transaction has this partition (a transactional
        produce to a partition never added is refused)."""
        meta = self._transactions.get(transactional_id)
        return (meta is not None and meta.producer_id == producer_id and meta.producer_epoch == producer_epoch
                and meta.state is TransactionState.ONGOING and (topic, partition) in meta.partitions)

    # -- EndTxn and markers ------------------------------------------------------------------

    def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int, committed: bool,
                now_ms: int = 0, api_version: int = 0) -> Outcome[dict]:
        """EndTxn. Response {error_code, producer_id, producer_epoch} (the ids are v5+).
        Ongoing: writes PrepareCommit / PrepareAbort and emits the markers; answers NONE.
        A retry after the markers: NONE for the same result (CompleteCommit + commit,
        CompleteAbort + abort), CONCURRENT_TRANSACTIONS while its markers are written,
        INVALID_TXN_STATE for the other result or with no transaction (Empty).
        INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2).
        v5+ (transaction.version 2, KIP-890): each EndTxn bumps the epoch; the answer
        carries the producer id and epoch to use next (a new producer id, epoch 0, once the
        epoch is exhausted)."""
        effects = _Effects()
        client_transaction_version = TRANSACTION_VERSION_2 if api_version > 4 else 0

        def answer(error: ErrorCode, producer_id: int = NO_PRODUCER_ID,
                   producer_epoch: int = NO_PRODUCER_EPOCH) -> Outcome[dict]:
            return self._outcome(effects, {"error_code": _version_error(error, api_version, 2),
                                           "producer_id": producer_id, "producer_epoch": producer_epoch})

        error = ErrorCode.INVALID_REQUEST if not transactional_id else self._coordinator_error(transactional_id)
        if error is not None:
            return answer(error)
        meta = self._transactions.get(transactional_id)
        if meta is None:
            return answer(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        is_v2 = meta.client_transaction_version >= TRANSACTION_VERSION_2
        retry_on_overflow = (is_v2 and meta.previous_producer_id == producer_id
                             and producer_epoch == MAX_PRODUCER_EPOCH - 1 and meta.producer_epoch == 0)
        retry_on_epoch_bump = is_v2 and meta.producer_epoch == producer_epoch + 1
        if not is_v2:
            valid_epoch = producer_epoch == meta.producer_epoch
        elif meta.state in _PREPARE:
            valid_epoch = retry_on_epoch_bump
        elif meta.state in _COMPLETE:
            valid_epoch = retry_on_epoch_bump or retry_on_overflow
        else:
            valid_epoch = producer_epoch == meta.producer_epoch
        if meta.producer_id != producer_id and not retry_on_overflow:
            return answer(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if not valid_epoch:
            return answer(ErrorCode.PRODUCER_FENCED)

        state = meta.state
        if state is TransactionState.ONGOING:
            meta = self._prepare_end(meta, committed, client_transaction_version, now_ms, effects)
            if meta.next_producer_id != NO_PRODUCER_ID:
                return answer(ErrorCode.NONE, meta.next_producer_id, 0)
            return answer(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)
        if state in _COMPLETE:
            if (state is TransactionState.COMPLETE_COMMIT) == committed:
                return answer(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)
            return answer(ErrorCode.INVALID_TXN_STATE)
        if state in _PREPARE:
            if (state is TransactionState.PREPARE_COMMIT) == committed:
                return answer(ErrorCode.CONCURRENT_TRANSACTIONS)
            return answer(ErrorCode.INVALID_TXN_STATE)
        if state is TransactionState.EMPTY:
            return answer(ErrorCode.INVALID_TXN_STATE)
        log.error("transactional id %s is in state %s, which should never be seen",
                  transactional_id, state.kafka_name)
        return answer(ErrorCode.UNKNOWN_SERVER_ERROR)

    def _prepare_end(self, meta: TransactionMetadata, commit: bool, client_transaction_version: int,
                     now_ms: int, effects: _Effects) -> TransactionMetadata:
        """Ongoing -> PrepareCommit / PrepareAbort, with its markers."""
        epoch, last_epoch, next_producer_id = meta.producer_epoch, meta.last_producer_epoch, NO_PRODUCER_ID
        if client_transaction_version >= TRANSACTION_VERSION_2:
            if meta.epoch_exhausted:
                next_producer_id = self._allocate_producer_id()
            epoch, last_epoch = meta.producer_epoch + 1, meta.producer_epoch
        meta = self._write(replace(
            meta, state=TransactionState.PREPARE_COMMIT if commit else TransactionState.PREPARE_ABORT,
            producer_epoch=epoch, last_producer_epoch=last_epoch, next_producer_id=next_producer_id,
            last_update_timestamp_ms=now_ms, client_transaction_version=client_transaction_version), effects)
        effects.markers.append(self._marker(meta))
        return meta

    def markers_written(self, transactional_id: str, producer_id: int, producer_epoch: int,
                        now_ms: int = 0) -> Outcome[ErrorCode]:
        """Every marker of the MarkerRequest (transactional_id, producer_id,
        producer_epoch) is written: PrepareCommit -> CompleteCommit, PrepareAbort ->
        CompleteAbort (record). Under transaction.version 2 an exhausted epoch moves to the
        next producer id with epoch 0 here. Response NONE; NOT_COORDINATOR,
        INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED or INVALID_TXN_STATE (and no record)
        when the transaction is no longer the one the markers were for."""
        effects = _Effects()
        error = self._coordinator_error(transactional_id)
        if error is not None:
            return Outcome([], error)
        meta = self._transactions.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return Outcome([], ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if meta.producer_epoch != producer_epoch:
            return Outcome([], ErrorCode.PRODUCER_FENCED)
        if meta.state not in _PREPARE:
            return Outcome([], ErrorCode.INVALID_TXN_STATE)
        changes: dict = {}
        if meta.client_transaction_version >= TRANSACTION_VERSION_2:
            changes = {"last_producer_epoch": meta.producer_epoch, "previous_producer_id": meta.producer_id}
            if meta.next_producer_id != NO_PRODUCER_ID:
                changes.update(producer_id=meta.next_producer_id, producer_epoch=0)
        self._write(replace(
            meta, state=(TransactionState.COMPLETE_COMMIT if meta.state is TransactionState.PREPARE_COMMIT
                         else TransactionState.COMPLETE_ABORT),
            partitions=frozenset(), next_producer_id=NO_PRODUCER_ID, last_update_timestamp_ms=now_ms,
            **changes), effects)
        return self._outcome(effects, ErrorCode.NONE)

    # -- timers ---------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When expire() must next run (ms, same clock as now_ms); None before any load."""
        deadlines = [d for d in (self._abort_deadline_ms, self._remove_deadline_ms) if d is not None]
        return min(deadlines) if deadlines else None

    def expire(self, now_ms: int) -> list[Outcome[None]]:
        """Run the due periodic tasks. Abort (Kafka's abortTimedOutTransactions): every
        Ongoing transaction with start + timeout < now_ms gets PrepareAbort with a bumped
        epoch and its markers, one Outcome each. Removal: ids in Empty, CompleteCommit or
        CompleteAbort last updated at or before now_ms - transactional.id.expiration.ms
        are deleted with a tombstone (one Outcome per partition). Each task is then
        re-armed one interval after now_ms."""
        outcomes: list[Outcome[None]] = []
        if self._abort_deadline_ms is not None and self._abort_deadline_ms <= now_ms:
            self._abort_deadline_ms = now_ms + self.config.abort_timed_out_transaction_cleanup_interval_ms
            for meta in list(self._transactions.values()):
                if (self._partitions.get(meta.partition) is PartitionState.ACTIVE
                        and meta.state is TransactionState.ONGOING
                        and meta.start_timestamp_ms + meta.timeout_ms < now_ms):
                    log.info("aborting transaction of %s (producer id %d epoch %d): past its %d ms timeout",
                             meta.transactional_id, meta.producer_id, meta.producer_epoch, meta.timeout_ms)
                    effects = _Effects()
                    self._abort_with_fence(meta, now_ms, effects)
                    outcomes.append(self._outcome(effects, None))
        if self._remove_deadline_ms is not None and self._remove_deadline_ms <= now_ms:
            self._remove_deadline_ms = now_ms + self.config.remove_expired_transaction_cleanup_interval_ms
            by_partition: dict[int, list[CoordinatorRecord]] = {}
            for meta in list(self._transactions.values()):
                if (self._partitions.get(meta.partition) is PartitionState.ACTIVE
                        and meta.state in _EXPIRABLE
                        and meta.last_update_timestamp_ms <= now_ms - self.config.transactional_id_expiration_ms):
                    log.info("transactional id %s expired", meta.transactional_id)
                    del self._transactions[meta.transactional_id]
                    by_partition.setdefault(meta.partition, []).append(
                        CoordinatorRecord(meta.partition, encode_key(meta.transactional_id), None))
            outcomes += [Outcome(records, None) for records in by_partition.values()]
        return outcomes

    # -- admin ----------------------------------------------------------------------------

    def describe_transactions(self, transactional_ids: list[str]) -> list[dict]:
        """DescribeTransactions v0 entries: {error_code, transactional_id,
        transaction_state, transaction_timeout_ms, transaction_start_time_ms, producer_id,
        producer_epoch, topics: [{topic, partitions}]}; INVALID_REQUEST for "",
        TRANSACTIONAL_ID_NOT_FOUND, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR (other
        fields at the schema defaults then)."""
        described = []
        for transactional_id in transactional_ids:
            entry = {"error_code": ErrorCode.NONE, "transactional_id": transactional_id,
                     "transaction_state": "", "transaction_timeout_ms": 0, "transaction_start_time_ms": 0,
                     "producer_id": 0, "producer_epoch": 0, "topics": []}
            error = ErrorCode.INVALID_REQUEST if not transactional_id else self._coordinator_error(transactional_id)
            meta = self._transactions.get(transactional_id) if error is None else None
            if error is None and (meta is None or meta.state is TransactionState.DEAD):
                error = ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
            if error is not None:
                entry["error_code"] = error
                described.append(entry)
                continue
            topics: dict[str, list[int]] = {}
            for topic, partition in sorted(meta.partitions):
                topics.setdefault(topic, []).append(partition)
            entry.update(transaction_state=meta.state.kafka_name, transaction_timeout_ms=meta.timeout_ms,
                         transaction_start_time_ms=meta.start_timestamp_ms, producer_id=meta.producer_id,
                         producer_epoch=meta.producer_epoch,
                         topics=[{"topic": topic, "partitions": ids} for topic, ids in topics.items()])
            described.append(entry)
        return described

    def list_transactions(self, state_filters: Iterable[str] = (), producer_id_filters: Iterable[int] = (),
                          duration_filter_ms: int = -1, now_ms: int = 0) -> dict:
        """ListTransactions v0-1: {error_code, unknown_state_filters, transaction_states:
        [{transactional_id, producer_id, transaction_state}]} over the loaded partitions.
        Filters: state names as Kafka spells them ("Ongoing"; unknown ones are echoed in
        unknown_state_filters), producer ids, and duration (v1: only transactions started
        more than duration_filter_ms before now_ms; -1 none). COORDINATOR_LOAD_IN_PROGRESS
        while any partition loads."""
        if any(state is PartitionState.LOADING for state in self._partitions.values()):
            return {"error_code": ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "unknown_state_filters": [],
                    "transaction_states": []}
        state_filters = list(state_filters)
        producer_ids = set(producer_id_filters)
        states = {TransactionState.from_kafka_name(name) for name in state_filters} - {None}
        unknown = [name for name in state_filters if TransactionState.from_kafka_name(name) is None]
        listed = [{"transactional_id": meta.transactional_id, "producer_id": meta.producer_id,
                   "transaction_state": meta.state.kafka_name}
                  for meta in self._transactions.values()
                  if self._partitions.get(meta.partition) is PartitionState.ACTIVE
                  and meta.state is not TransactionState.DEAD
                  and (not producer_ids or meta.producer_id in producer_ids)
                  and (not state_filters or meta.state in states)
                  and not (duration_filter_ms >= 0 and now_ms - meta.start_timestamp_ms <= duration_filter_ms)]
        return {"error_code": ErrorCode.NONE, "unknown_state_filters": unknown, "transaction_states": listed}

    # -- introspection ---------------------------------------------------------------------

    def transaction(self, transactional_id: str) -> TransactionMetadata | None:
        return self._transactions.get(transactional_id)
