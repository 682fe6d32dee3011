"""Idempotent producer state: duplicates, sequence gaps, epochs, and the Kafka-format
snapshot that carries it across restarts."""
from __future__ import annotations

import struct

import crc32c
import pytest

from storage.config import LogConfig
from storage.log import AppendInfo
from .storage_testing import T0_MS, batch, open_log
from wire.errors import ErrorCode, KafkaError

PRODUCER_ID = 1000


def produce(log, sequence: int, *values: bytes, epoch: int = 0, producer_id: int = PRODUCER_ID,
            timestamp_ms: int = T0_MS, transactional: bool = False) -> AppendInfo:
    records = batch(*values, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                    timestamp_ms=timestamp_ms, is_transactional=transactional)
    return log.append(records, leader_epoch=0, now_ms=T0_MS)


def refused(code: ErrorCode, log, *args, **kwargs) -> str:
    with pytest.raises(KafkaError) as caught:
        produce(log, *args, **kwargs)
    assert caught.value.code is code
    return caught.value.message


def test_retry_of_a_recent_batch_is_answered_with_its_original_offsets(log_dir):
    log = open_log(log_dir)
    assert produce(log, 0, b"a", b"b", b"c") == AppendInfo(0, 2, -1, 0)
    assert produce(log, 3, b"d") == AppendInfo(3, 3, -1, 0)
    assert produce(log, 0, b"a", b"b", b"c") == AppendInfo(0, 2, -1, 0, duplicate=True)
    assert produce(log, 3, b"d") == AppendInfo(3, 3, -1, 0, duplicate=True)
    assert (log.log_end_offset, log.producer_states()) == (4, {PRODUCER_ID: (0, 3, T0_MS)})


def test_only_the_last_five_batches_are_deduplicated(log_dir):
    log = open_log(log_dir)
    for sequence in range(6):
        produce(log, sequence, b"x")
    assert produce(log, 1, b"x") == AppendInfo(1, 1, -1, 0, duplicate=True)
    message = refused(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, log, 0, b"x")
    assert message == (f"out of order sequence number for producer {PRODUCER_ID}: 0 (incoming seq. number), "
                       "5 (current end sequence number)")


def test_sequence_gap_is_out_of_order_and_writes_nothing(log_dir):
    log = open_log(log_dir)
    produce(log, 0, b"a")
    refused(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, log, 2, b"c")
    assert log.log_end_offset == 1
    assert produce(log, 1, b"b") == AppendInfo(1, 1, -1, 0)


def test_epochs_fence_and_a_new_epoch_starts_at_zero(log_dir):
    log = open_log(log_dir)
    produce(log, 0, b"a", epoch=3)
    message = refused(ErrorCode.INVALID_PRODUCER_EPOCH, log, 1, b"b", epoch=2)
    assert message == f"epoch of producer {PRODUCER_ID} is 2, smaller than the last seen epoch 3"
    message = refused(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, log, 1, b"b", epoch=4)
    assert message == (f"invalid sequence number for new epoch of producer {PRODUCER_ID}: 4 (request epoch), "
                       "1 (seq. number), 3 (current producer epoch)")
    assert produce(log, 0, b"b", epoch=4) == AppendInfo(1, 1, -1, 0)
    # The old epoch's batch is no duplicate any more: its epoch is fenced.
    refused(ErrorCode.INVALID_PRODUCER_EPOCH, log, 0, b"a", epoch=3)
    assert log.producer_states() == {PRODUCER_ID: (4, 0, T0_MS)}


def test_unknown_producer_may_start_at_any_sequence_as_in_kafka(log_dir):
    # KIP-360: a producer whose state is gone (retention, DeleteRecords, expiry) goes on.
    log = open_log(log_dir)
    assert produce(log, 17, b"a", b"b", producer_id=2000) == AppendInfo(0, 1, -1, 0)
    refused(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, log, 20, b"c", producer_id=2000)
    assert produce(log, 19, b"c", producer_id=2000) == AppendInfo(2, 2, -1, 0)


def test_sequence_wraps_after_int32_max(log_dir):
    log = open_log(log_dir)
    assert produce(log, 2**31 - 2, b"a", b"b") == AppendInfo(0, 1, -1, 0)
    assert log.producer_states() == {PRODUCER_ID: (0, 2**31 - 1, T0_MS)}
    assert produce(log, 0, b"c") == AppendInfo(2, 2, -1, 0)


def test_transactional_producer_cannot_write_outside_its_transaction(log_dir):
    log = open_log(log_dir)
    produce(log, 0, b"a", transactional=True)
    refused(ErrorCode.INVALID_TXN_STATE, log, 1, b"b", transactional=False)


def test_duplicate_of_a_log_append_time_batch_reports_its_append_time(log_dir):
    log = open_log(log_dir, LogConfig(message_timestamp_type="LogAppendTime"))
    records = batch(b"a", producer_id=PRODUCER_ID, producer_epoch=0, base_sequence=0)
    assert log.append(records, leader_epoch=0, now_ms=T0_MS + 5) == AppendInfo(0, 0, T0_MS + 5, 0)
    assert log.append(records, leader_epoch=0, now_ms=T0_MS + 9) == AppendInfo(0, 0, T0_MS + 5, 0, duplicate=True)


def test_clean_close_writes_a_kafka_format_snapshot_that_reopen_loads(log_dir):
    log = open_log(log_dir)
    produce(log, 0, b"a", b"b", timestamp_ms=T0_MS + 1)
    produce(log, 2, b"c", timestamp_ms=T0_MS + 2)
    produce(log, 0, b"z", producer_id=7, epoch=5, timestamp_ms=T0_MS + 3)
    log.close()
    data = (log_dir / "00000000000000000004.snapshot").read_bytes()
    version, crc, count = struct.unpack_from(">hIi", data)
    assert (version, crc, count) == (1, crc32c.crc32c(data[6:]), 2)
    assert list(struct.iter_unpack(">qhiqiqiq", data[10:])) == [
        # producer id, epoch, last sequence, last offset, offset delta, timestamp, coordinator epoch, txn first offset
        (7, 5, 0, 3, 0, T0_MS + 3, -1, -1),
        (PRODUCER_ID, 0, 2, 2, 0, T0_MS + 2, -1, -1),
    ]
    log = open_log(log_dir, recovery_point=4)
    assert log.producer_states() == {7: (5, 0, T0_MS + 3), PRODUCER_ID: (0, 2, T0_MS + 2)}
    # Kafka snapshots keep only each producer's last batch: that retry is still caught...
    assert produce(log, 2, b"c") == AppendInfo(2, 2, -1, 0, duplicate=True)
    # ...an older one is not, and the sequence goes on.
    refused(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, log, 0, b"a", b"b")
    assert produce(log, 3, b"d") == AppendInfo(4, 4, -1, 0)


def test_after_a_crash_producer_state_is_rebuilt_from_batch_headers(log_dir):
    log = open_log(log_dir)
    for sequence in range(4):
        produce(log, sequence, b"x")
    del log  # no close: no snapshot
    assert list(log_dir.glob("*.snapshot")) == []
    log = open_log(log_dir, clean_shutdown=False)
    assert log.producer_states() == {PRODUCER_ID: (0, 3, T0_MS)}
    assert produce(log, 1, b"x") == AppendInfo(1, 1, -1, 0, duplicate=True)
    assert produce(log, 4, b"x") == AppendInfo(4, 4, -1, 0)


def test_replay_after_the_latest_snapshot(log_dir):
    log = open_log(log_dir, LogConfig(segment_bytes=2 * len(batch(b"x", producer_id=1, producer_epoch=0, base_sequence=0))))
    for sequence in range(5):
        produce(log, sequence, b"x")
    assert sorted(p.name for p in log_dir.glob("*.snapshot")) == ["00000000000000000002.snapshot",
                                                                  "00000000000000000004.snapshot"]
    del log
    log = open_log(log_dir, clean_shutdown=False, recovery_point=4)
    assert log.producer_states() == {PRODUCER_ID: (0, 4, T0_MS)}
    assert produce(log, 4, b"x") == AppendInfo(4, 4, -1, 0, duplicate=True)
    assert produce(log, 5, b"x") == AppendInfo(5, 5, -1, 0)


def test_remove_expired_producers(log_dir):
    log = open_log(log_dir)
    produce(log, 0, b"a", producer_id=1, timestamp_ms=T0_MS)
    produce(log, 0, b"b", producer_id=2, timestamp_ms=T0_MS + 500)
    assert log.remove_expired_producers(T0_MS + 1000, 1000) == [1]
    assert log.producer_states() == {2: (0, 0, T0_MS + 500)}
