"""The transaction coordinator state machine, with a fake clock and exact data."""
import itertools

import pytest

from coordinator.transaction_records import TransactionLogValue, decode_key, decode_value, encode_key, encode_value
from coordinator.transactions import (
    MarkerRequest, TransactionConfig, TransactionCoordinator, TransactionState,
)
from wire.errors import ErrorCode

TID = "tx-1"
TIMEOUT_MS = 60_000
NUM_PARTITIONS = 4


def make(now_ms: int = 0, first_producer_id: int = 1000, load: bool = True, coordinator_epoch: int = 5,
         **config) -> TransactionCoordinator:
    ids = itertools.count(first_producer_id)
    txns = TransactionCoordinator(TransactionConfig(transaction_state_log_num_partitions=NUM_PARTITIONS, **config),
                                  allocate_producer_id=lambda: next(ids),
                                  group_partition_for=lambda group_id: 7)
    if load:
        for partition in range(NUM_PARTITIONS):
            txns.load(partition, [], now_ms, coordinator_epoch)
    return txns


def states(outcome) -> list[tuple[str, TransactionLogValue | None]]:
    return [(decode_key(record.key), decode_value(record.value)) for record in outcome.records]


def init(txns, now_ms=0, expected=(-1, -1), api_version=4, tid=TID, timeout_ms=TIMEOUT_MS):
    return txns.init_producer_id(tid, timeout_ms, expected[0], expected[1], now_ms=now_ms, api_version=api_version)


def begin(txns, now_ms=10, partitions=(("orders", 0), ("orders", 1)), producer=(1000, 0)):
    """InitProducerId then AddPartitionsToTxn."""
    assert init(txns, now_ms=0).response == {"error_code": ErrorCode.NONE, "producer_id": producer[0],
                                             "producer_epoch": producer[1]}
    outcome = txns.add_partitions(TID, *producer, list(partitions), now_ms=now_ms, api_version=3)
    assert outcome.response == {partition: ErrorCode.NONE for partition in partitions}
    return outcome


def test_partition_for_is_kafkas_hash():
    txns = make(load=False)
    assert txns.partition_for("tx-1") == 3572520 % 4  # "tx-1".hashCode() == 3572520
    big = TransactionCoordinator(TransactionConfig(transaction_state_log_num_partitions=50),
                                 allocate_producer_id=lambda: 0, group_partition_for=lambda g: 0)
    # "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's abs gives 0.
    assert big.partition_for("polygenelubricants") == 0
    assert big.partition_for("transactional-id") == abs(java_hash("transactional-id")) % 50
    # "tx-0-negative".hashCode() == -276060133: Kafka takes its absolute value (-> 33),
    # not its low 31 bits (which would give 15).
    assert big.partition_for("tx-0-negative") == 33


def java_hash(text: str) -> int:
    value = 0
    for char in text:
        value = (31 * value + ord(char)) & 0xFFFFFFFF
    return value


def test_init_new_transactional_id_writes_empty_epoch_0():
    txns = make()
    outcome = init(txns, now_ms=100)
    assert outcome.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 0}
    assert [record.partition for record in outcome.records] == [txns.partition_for(TID)]
    assert states(outcome) == [(TID, TransactionLogValue(
        producer_id=1000, producer_epoch=0, transaction_timeout_ms=TIMEOUT_MS, state=0, partitions=(),
        last_update_timestamp_ms=100, start_timestamp_ms=-1, previous_producer_id=1000))]
    assert outcome.markers == []


def test_init_again_bumps_epoch_and_fences_the_old_producer():
    txns = make()
    init(txns)
    outcome = init(txns, now_ms=5)
    assert outcome.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 1}
    fenced = txns.add_partitions(TID, 1000, 0, [("orders", 0)], now_ms=6, api_version=3)
    assert fenced.response == {("orders", 0): ErrorCode.PRODUCER_FENCED}
    assert fenced.records == []
    old = txns.add_partitions(TID, 1000, 0, [("orders", 0)], now_ms=6, api_version=1)
    assert old.response == {("orders", 0): ErrorCode.INVALID_PRODUCER_EPOCH}


def test_init_validation_errors():
    txns = make(transaction_max_timeout_ms=1000)
    for timeout_ms in (0, -1, 1001):
        assert init(txns, timeout_ms=timeout_ms).response == {
            "error_code": ErrorCode.INVALID_TRANSACTION_TIMEOUT, "producer_id": -1, "producer_epoch": -1}
    assert init(txns, timeout_ms=1000).response["error_code"] == ErrorCode.NONE
    assert init(txns, tid="").response["error_code"] == ErrorCode.INVALID_REQUEST
    assert init(txns, expected=(1000, -1), timeout_ms=1000).response["error_code"] == ErrorCode.INVALID_REQUEST
    # An idempotent producer: a new id, epoch 0, nothing written.
    idempotent = txns.init_producer_id(None, 0, now_ms=0, api_version=4)
    assert (idempotent.response, idempotent.records) == (
        {"error_code": ErrorCode.NONE, "producer_id": 1001, "producer_epoch": 0}, [])


def test_not_coordinator_and_loading():
    txns = make(load=False)
    assert init(txns).response["error_code"] == ErrorCode.NOT_COORDINATOR
    txns.begin_loading(txns.partition_for(TID))
    assert init(txns).response["error_code"] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert txns.add_partitions(TID, 1, 0, [("t", 0)], now_ms=0, api_version=3).response == {
        ("t", 0): ErrorCode.COORDINATOR_LOAD_IN_PROGRESS}
    assert txns.end_txn(TID, 1, 0, True, now_ms=0, api_version=3).response["error_code"] == \
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert txns.list_transactions(now_ms=0)["error_code"] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert txns.describe_transactions([TID])[0]["error_code"] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS


def test_add_partitions_and_offsets_to_ongoing():
    txns = make()
    outcome = begin(txns, now_ms=10)
    assert states(outcome) == [(TID, TransactionLogValue(
        1000, 0, TIMEOUT_MS, 1, (("orders", 0), ("orders", 1)), 10, 10, previous_producer_id=1000))]
    again = txns.add_partitions(TID, 1000, 0, [("orders", 1)], now_ms=20, api_version=3)
    assert (again.response, again.records) == ({("orders", 1): ErrorCode.NONE}, [])
    offsets = txns.add_offsets(TID, 1000, 0, "group", now_ms=30, api_version=3)
    assert offsets.response == ErrorCode.NONE
    assert states(offsets) == [(TID, TransactionLogValue(
        1000, 0, TIMEOUT_MS, 1, (("__consumer_offsets", 7), ("orders", 0), ("orders", 1)), 30, 10,
        previous_producer_id=1000))]
    assert txns.partition_in_transaction(TID, 1000, 0, "orders", 1)
    assert not txns.partition_in_transaction(TID, 1000, 0, "orders", 2)
    assert not txns.partition_in_transaction(TID, 1000, 1, "orders", 1)


def test_add_partitions_errors():
    txns = make()
    assert txns.add_partitions(TID, 1000, 0, [("t", 0)], now_ms=0, api_version=3).response == {
        ("t", 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING}
    init(txns)
    assert txns.add_partitions(TID, 999, 0, [("t", 0)], now_ms=0, api_version=3).response == {
        ("t", 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING}
    assert txns.add_partitions("", 1000, 0, [("t", 0)], now_ms=0, api_version=3).response == {
        ("t", 0): ErrorCode.INVALID_REQUEST}
    assert txns.add_offsets(TID, 1000, 3, "g", now_ms=0, api_version=2).response == ErrorCode.PRODUCER_FENCED
    assert txns.add_offsets(TID, 1000, 3, "g", now_ms=0, api_version=1).response == \
        ErrorCode.INVALID_PRODUCER_EPOCH


def test_verify_only():
    txns = make()
    begin(txns, partitions=[("orders", 0)])
    outcome = txns.add_partitions(TID, 1000, 0, [("orders", 0), ("orders", 5)], now_ms=50, api_version=4,
                                  verify_only=True)
    assert outcome.response == {("orders", 0): ErrorCode.NONE, ("orders", 5): ErrorCode.TRANSACTION_ABORTABLE}
    assert outcome.records == []
    assert not txns.partition_in_transaction(TID, 1000, 0, "orders", 5)


def test_commit_prepare_markers_complete():
    txns = make()
    begin(txns, now_ms=10)
    outcome = txns.end_txn(TID, 1000, 0, True, now_ms=100, api_version=3)
    assert outcome.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 0}
    assert states(outcome) == [(TID, TransactionLogValue(
        1000, 0, TIMEOUT_MS, 2, (("orders", 0), ("orders", 1)), 100, 10, previous_producer_id=1000))]
    assert outcome.markers == [MarkerRequest(TID, 1000, 0, True, 5, [("orders", 0), ("orders", 1)])]
    # While the markers are written: retries wait, the other result is refused.
    assert txns.end_txn(TID, 1000, 0, True, now_ms=101, api_version=3).response["error_code"] == \
        ErrorCode.CONCURRENT_TRANSACTIONS
    assert txns.end_txn(TID, 1000, 0, False, now_ms=101, api_version=3).response["error_code"] == \
        ErrorCode.INVALID_TXN_STATE
    assert txns.add_partitions(TID, 1000, 0, [("x", 0)], now_ms=101, api_version=3).response == {
        ("x", 0): ErrorCode.CONCURRENT_TRANSACTIONS}
    assert init(txns, now_ms=101).response["error_code"] == ErrorCode.CONCURRENT_TRANSACTIONS
    done = txns.markers_written(TID, 1000, 0, now_ms=120)
    assert done.response == ErrorCode.NONE
    assert states(done) == [(TID, TransactionLogValue(1000, 0, TIMEOUT_MS, 4, (), 120, 10,
                                                      previous_producer_id=1000))]
    # A retry of the finished commit succeeds; an abort now is an invalid state.
    retry = txns.end_txn(TID, 1000, 0, True, now_ms=130, api_version=3)
    assert (retry.response, retry.records) == (
        {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 0}, [])
    assert txns.end_txn(TID, 1000, 0, False, now_ms=130, api_version=3).response["error_code"] == \
        ErrorCode.INVALID_TXN_STATE
    # markers_written again: nothing to complete.
    assert txns.markers_written(TID, 1000, 0, now_ms=131).response == ErrorCode.INVALID_TXN_STATE
    # The next transaction starts from CompleteCommit with a new start time.
    nxt = txns.add_partitions(TID, 1000, 0, [("orders", 2)], now_ms=200, api_version=3)
    assert states(nxt) == [(TID, TransactionLogValue(1000, 0, TIMEOUT_MS, 1, (("orders", 2),), 200, 200,
                                                     previous_producer_id=1000))]


def test_abort_and_its_retries():
    txns = make()
    begin(txns)
    outcome = txns.end_txn(TID, 1000, 0, False, now_ms=100, api_version=3)
    assert outcome.markers == [MarkerRequest(TID, 1000, 0, False, 5, [("orders", 0), ("orders", 1)])]
    assert txns.end_txn(TID, 1000, 0, False, now_ms=101, api_version=3).response["error_code"] == \
        ErrorCode.CONCURRENT_TRANSACTIONS
    assert txns.end_txn(TID, 1000, 0, True, now_ms=101, api_version=3).response["error_code"] == \
        ErrorCode.INVALID_TXN_STATE
    assert txns.markers_written(TID, 1000, 0, now_ms=110).response == ErrorCode.NONE
    assert txns.transaction(TID).state is TransactionState.COMPLETE_ABORT
    assert txns.end_txn(TID, 1000, 0, False, now_ms=120, api_version=3).response["error_code"] == ErrorCode.NONE
    assert txns.end_txn(TID, 1000, 0, True, now_ms=120, api_version=3).response["error_code"] == \
        ErrorCode.INVALID_TXN_STATE


def test_end_txn_errors():
    txns = make()
    assert txns.end_txn(TID, 1000, 0, True, now_ms=0, api_version=3).response == {
        "error_code": ErrorCode.INVALID_PRODUCER_ID_MAPPING, "producer_id": -1, "producer_epoch": -1}
    init(txns)
    assert txns.end_txn(TID, 1000, 0, True, now_ms=0, api_version=3).response["error_code"] == \
        ErrorCode.INVALID_TXN_STATE  # Empty: no transaction
    assert txns.end_txn(TID, 1001, 0, True, now_ms=0, api_version=3).response["error_code"] == \
        ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert txns.end_txn(TID, 1000, 1, True, now_ms=0, api_version=2).response["error_code"] == \
        ErrorCode.PRODUCER_FENCED
    assert txns.end_txn(TID, 1000, 1, True, now_ms=0, api_version=1).response["error_code"] == \
        ErrorCode.INVALID_PRODUCER_EPOCH
    assert txns.end_txn("", 1000, 0, True, now_ms=0, api_version=3).response["error_code"] == \
        ErrorCode.INVALID_REQUEST


def test_init_during_ongoing_fences_and_aborts_first():
    txns = make()
    begin(txns, now_ms=10)
    outcome = init(txns, now_ms=50)
    assert outcome.response == {"error_code": ErrorCode.CONCURRENT_TRANSACTIONS, "producer_id": -1,
                                "producer_epoch": -1}
    assert states(outcome) == [(TID, TransactionLogValue(
        1000, 1, TIMEOUT_MS, 3, (("orders", 0), ("orders", 1)), 50, 10, previous_producer_id=1000))]
    assert outcome.markers == [MarkerRequest(TID, 1000, 1, False, 5, [("orders", 0), ("orders", 1)])]
    # The old producer is fenced at once.
    assert txns.end_txn(TID, 1000, 0, True, now_ms=51, api_version=3).response["error_code"] == \
        ErrorCode.PRODUCER_FENCED
    assert init(txns, now_ms=52).response["error_code"] == ErrorCode.CONCURRENT_TRANSACTIONS
    assert txns.markers_written(TID, 1000, 1, now_ms=60).response == ErrorCode.NONE
    retry = init(txns, now_ms=70)
    assert retry.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 2}


def test_markers_written_for_another_epoch_changes_nothing():
    txns = make()
    begin(txns)
    txns.end_txn(TID, 1000, 0, True, now_ms=100, api_version=3)
    assert txns.markers_written(TID, 1000, 1, now_ms=110).response == ErrorCode.PRODUCER_FENCED
    assert txns.markers_written(TID, 999, 0, now_ms=110).response == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert txns.markers_written("nope", 999, 0, now_ms=110).response == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert txns.transaction(TID).state is TransactionState.PREPARE_COMMIT


def loaded_with(value: TransactionLogValue, now_ms: int = 0, **config) -> TransactionCoordinator:
    txns = make(load=False, first_producer_id=5000, **config)
    for partition in range(NUM_PARTITIONS):
        records = [(encode_key(TID), encode_value(value))] if partition == txns.partition_for(TID) else []
        txns.load(partition, records, now_ms, 9)
    return txns


def test_epoch_exhaustion_gives_a_new_producer_id():
    txns = loaded_with(TransactionLogValue(1000, 32766, TIMEOUT_MS, 4, (), 10, 5))
    outcome = init(txns, now_ms=20)
    assert outcome.response == {"error_code": ErrorCode.NONE, "producer_id": 5000, "producer_epoch": 0}
    assert states(outcome) == [(TID, TransactionLogValue(5000, 0, TIMEOUT_MS, 0, (), 20, -1,
                                                         previous_producer_id=1000))]


def test_kip_360_resume_with_expected_epoch():
    txns = make()
    init(txns)  # 1000/0
    bumped = init(txns, now_ms=1, expected=(1000, 0), api_version=4)
    assert bumped.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 1}
    # A retry of that call (same expected epoch): the same epoch, no bump.
    retry = init(txns, now_ms=2, expected=(1000, 0), api_version=4)
    assert retry.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 1}
    # Another producer re-initialises without expectations: last epoch forgotten.
    assert init(txns, now_ms=3).response["producer_epoch"] == 2
    assert init(txns, now_ms=4, expected=(1000, 0), api_version=4).response == {
        "error_code": ErrorCode.PRODUCER_FENCED, "producer_id": -1, "producer_epoch": -1}
    assert init(txns, now_ms=4, expected=(1000, 0), api_version=3).response["error_code"] == \
        ErrorCode.INVALID_PRODUCER_EPOCH
    assert init(txns, now_ms=4, expected=(77, 2), api_version=4).response["error_code"] == \
        ErrorCode.PRODUCER_FENCED


def test_kip_360_after_exhaustion_previous_producer_id_is_valid():
    txns = loaded_with(TransactionLogValue(1000, 32766, TIMEOUT_MS, 5, (), 10, 5))
    rotated = init(txns, now_ms=20, expected=(1000, 32766))
    assert rotated.response == {"error_code": ErrorCode.NONE, "producer_id": 5000, "producer_epoch": 0}
    # Retried: the expected id is now the previous one, with an exhausted epoch.
    retry = init(txns, now_ms=21, expected=(1000, 32766))
    assert retry.response == {"error_code": ErrorCode.NONE, "producer_id": 5000, "producer_epoch": 0}


def test_transaction_version_2_bumps_the_epoch_on_every_end_txn():
    txns = make()
    begin(txns)
    outcome = txns.end_txn(TID, 1000, 0, True, now_ms=100, api_version=5)
    assert outcome.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 1}
    assert states(outcome) == [(TID, TransactionLogValue(
        1000, 1, TIMEOUT_MS, 2, (("orders", 0), ("orders", 1)), 100, 10, previous_producer_id=1000,
        client_transaction_version=2))]
    assert outcome.markers == [MarkerRequest(TID, 1000, 1, True, 5, [("orders", 0), ("orders", 1)])]
    # The client retries with its old epoch: still waiting for markers.
    assert txns.end_txn(TID, 1000, 0, True, now_ms=101, api_version=5).response["error_code"] == \
        ErrorCode.CONCURRENT_TRANSACTIONS
    txns.markers_written(TID, 1000, 1, now_ms=110)
    retry = txns.end_txn(TID, 1000, 0, True, now_ms=120, api_version=5)
    assert retry.response == {"error_code": ErrorCode.NONE, "producer_id": 1000, "producer_epoch": 1}
    assert txns.end_txn(TID, 1000, 1, True, now_ms=120, api_version=5).response["error_code"] == \
        ErrorCode.PRODUCER_FENCED


def test_transaction_version_2_epoch_overflow_moves_to_next_producer_id():
    txns = loaded_with(TransactionLogValue(1000, 32766, TIMEOUT_MS, 1, (("t", 0),), 10, 5,
                                           client_transaction_version=2))
    outcome = txns.end_txn(TID, 1000, 32766, False, now_ms=20, api_version=5)
    assert outcome.response == {"error_code": ErrorCode.NONE, "producer_id": 5000, "producer_epoch": 0}
    assert states(outcome) == [(TID, TransactionLogValue(1000, 32767, TIMEOUT_MS, 3, (("t", 0),), 20, 5,
                                                         next_producer_id=5000, client_transaction_version=2))]
    assert outcome.markers == [MarkerRequest(TID, 1000, 32767, False, 9, [("t", 0)])]
    done = txns.markers_written(TID, 1000, 32767, now_ms=30)
    assert states(done) == [(TID, TransactionLogValue(5000, 0, TIMEOUT_MS, 5, (), 30, 5,
                                                      previous_producer_id=1000, client_transaction_version=2))]
    retry = txns.end_txn(TID, 1000, 32766, False, now_ms=40, api_version=5)
    assert retry.response == {"error_code": ErrorCode.NONE, "producer_id": 5000, "producer_epoch": 0}


@pytest.mark.parametrize("state", [TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT])
def test_load_resends_markers_of_prepared_transactions(state):
    value = TransactionLogValue(1000, 3, TIMEOUT_MS, int(state), (("a", 1), ("b", 0)), 10, 5)
    txns = make(load=False)
    partition = txns.partition_for(TID)
    txns.begin_loading(partition)
    assert init(txns).response["error_code"] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    outcome = txns.load(partition, [(encode_key(TID), encode_value(value))], 50, 9)
    assert outcome.records == []
    assert outcome.markers == [MarkerRequest(TID, 1000, 3, state is TransactionState.PREPARE_COMMIT, 9,
                                             [("a", 1), ("b", 0)])]
    assert txns.markers_written(TID, 1000, 3, now_ms=60).response == ErrorCode.NONE
    assert txns.transaction(TID).state is (TransactionState.COMPLETE_COMMIT if state is TransactionState.PREPARE_COMMIT
                                           else TransactionState.COMPLETE_ABORT)


@pytest.mark.parametrize("state", [TransactionState.EMPTY, TransactionState.ONGOING,
                                   TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT])
def test_load_every_settled_state(state):
    partitions = (("a", 1),) if state is TransactionState.ONGOING else ()
    value = TransactionLogValue(1000, 3, TIMEOUT_MS, int(state), partitions, 10, 5 if partitions else -1)
    txns = loaded_with(value)
    meta = txns.transaction(TID)
    assert (meta.state, meta.producer_id, meta.producer_epoch, meta.last_producer_epoch, meta.partitions,
            meta.start_timestamp_ms) == (state, 1000, 3, -1, frozenset(partitions), value.start_timestamp_ms)
    assert txns.describe_transactions([TID])[0]["transaction_state"] == state.kafka_name


def test_load_replays_in_order_and_tombstones_remove():
    txns = make(load=False)
    partition = txns.partition_for(TID)
    records = [
        (encode_key(TID), encode_value(TransactionLogValue(1000, 0, TIMEOUT_MS, 0, (), 1, -1))),
        (encode_key("other"), encode_value(TransactionLogValue(1001, 0, TIMEOUT_MS, 0, (), 1, -1))),
        (encode_key(TID), encode_value(TransactionLogValue(1000, 1, TIMEOUT_MS, 1, (("t", 0),), 2, 2))),
        (encode_key("other"), None),
        (b"\x00\x07junk", b"ignored"),  # a key version we do not know is skipped
    ]
    outcome = txns.load(partition, records, 10, 1)
    assert outcome.markers == []
    assert txns.transaction(TID).producer_epoch == 1
    assert txns.transaction(TID).state is TransactionState.ONGOING
    assert txns.transaction("other") is None


def test_loaded_prepare_epoch_fence_is_refused_as_kafkas_illegal_state():
    txns = loaded_with(TransactionLogValue(1000, 3, TIMEOUT_MS, 7, (("a", 1),), 10, 5))
    assert init(txns).response["error_code"] == ErrorCode.UNKNOWN_SERVER_ERROR
    assert txns.end_txn(TID, 1000, 3, True, now_ms=0, api_version=3).response["error_code"] == \
        ErrorCode.UNKNOWN_SERVER_ERROR


def test_unload_forgets():
    txns = make()
    init(txns)
    txns.unload(txns.partition_for(TID))
    assert txns.transaction(TID) is None
    assert init(txns).response["error_code"] == ErrorCode.NOT_COORDINATOR


def test_timed_out_transaction_is_aborted_with_a_bumped_epoch():
    txns = make(abort_timed_out_transaction_cleanup_interval_ms=10_000,
                remove_expired_transaction_cleanup_interval_ms=3_600_000)
    assert txns.next_deadline() == 10_000
    begin(txns, now_ms=1_000)
    assert txns.expire(10_000) == []
    assert txns.next_deadline() == 20_000
    # start 1000 + timeout 60000 < now is required: 61000 is not yet past it.
    assert txns.expire(61_000) == []
    assert txns.next_deadline() == 71_000
    outcomes = txns.expire(71_000)
    assert len(outcomes) == 1
    assert states(outcomes[0]) == [(TID, TransactionLogValue(
        1000, 1, TIMEOUT_MS, 3, (("orders", 0), ("orders", 1)), 71_000, 1_000, previous_producer_id=1000))]
    assert outcomes[0].markers == [MarkerRequest(TID, 1000, 1, False, 5, [("orders", 0), ("orders", 1)])]
    assert txns.end_txn(TID, 1000, 0, True, now_ms=71_001, api_version=3).response["error_code"] == \
        ErrorCode.PRODUCER_FENCED
    # Prepared (markers pending): not aborted again.
    assert txns.expire(81_000) == []


def test_idle_transactional_ids_expire_with_a_tombstone():
    txns = make(transactional_id_expiration_ms=100_000, remove_expired_transaction_cleanup_interval_ms=50_000,
                abort_timed_out_transaction_cleanup_interval_ms=1_000_000)
    init(txns, now_ms=0)                 # Empty, updated at 0
    init(txns, now_ms=0, tid="busy")
    txns.add_partitions("busy", 1001, 0, [("t", 0)], now_ms=10, api_version=3)  # Ongoing: never expires
    assert txns.expire(50_000) == []
    assert txns.next_deadline() == 100_000
    outcomes = txns.expire(100_000)
    tombstones = [(record.partition, decode_key(record.key), record.value)
                  for outcome in outcomes for record in outcome.records]
    assert tombstones == [(txns.partition_for(TID), TID, None)]
    assert txns.transaction(TID) is None
    assert txns.transaction("busy") is not None
    # A new InitProducerId starts afresh with a new producer id.
    assert init(txns, now_ms=100_001).response == {"error_code": ErrorCode.NONE, "producer_id": 1002,
                                                   "producer_epoch": 0}


def test_describe_and_list():
    txns = make()
    begin(txns, now_ms=10)
    init(txns, tid="idle", now_ms=20)
    assert txns.describe_transactions([TID, "missing", ""]) == [
        {"error_code": ErrorCode.NONE, "transactional_id": TID, "transaction_state": "Ongoing",
         "transaction_timeout_ms": TIMEOUT_MS, "transaction_start_time_ms": 10, "producer_id": 1000,
         "producer_epoch": 0, "topics": [{"topic": "orders", "partitions": [0, 1]}]},
        {"error_code": ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, "transactional_id": "missing",
         "transaction_state": "", "transaction_timeout_ms": 0, "transaction_start_time_ms": 0,
         "producer_id": 0, "producer_epoch": 0, "topics": []},
        {"error_code": ErrorCode.INVALID_REQUEST, "transactional_id": "", "transaction_state": "",
         "transaction_timeout_ms": 0, "transaction_start_time_ms": 0, "producer_id": 0, "producer_epoch": 0,
         "topics": []},
    ]
    everything = txns.list_transactions(now_ms=100)
    assert everything["error_code"] == ErrorCode.NONE
    assert sorted(everything["transaction_states"], key=lambda s: s["transactional_id"]) == [
        {"transactional_id": "idle", "producer_id": 1001, "transaction_state": "Empty"},
        {"transactional_id": TID, "producer_id": 1000, "transaction_state": "Ongoing"},
    ]
    assert txns.list_transactions(["Ongoing", "Bogus"], now_ms=100) == {
        "error_code": ErrorCode.NONE, "unknown_state_filters": ["Bogus"],
        "transaction_states": [{"transactional_id": TID, "producer_id": 1000, "transaction_state": "Ongoing"}]}
    assert txns.list_transactions(producer_id_filters=[1001], now_ms=100)["transaction_states"] == [
        {"transactional_id": "idle", "producer_id": 1001, "transaction_state": "Empty"}]
    # Duration (v1): started more than 89 ms before 100. An Empty id has start time -1,
    # so Kafka's filter (now - start > duration) always lists it.
    assert sorted(state["transactional_id"] for state in
                  txns.list_transactions(duration_filter_ms=89, now_ms=100)["transaction_states"]) == ["idle", TID]
    assert txns.list_transactions(duration_filter_ms=90, now_ms=100)["transaction_states"] == [
        {"transactional_id": "idle", "producer_id": 1001, "transaction_state": "Empty"}]
