"""PartitionLog: appends, reads, validation, indexes, rolling, retention, DeleteRecords,
timestamp and leader-epoch lookups."""
from __future__ import annotations

import os
import struct
import threading
from dataclasses import replace

import crc32c
import pytest

from storage.config import LogConfig
from storage.log import AppendInfo, AppendOrigin
from .storage_testing import T0_MS, batch, open_log, values_in
from wire.errors import ErrorCode, KafkaError
from wire.records import build_batch, read_batch_header, verify_crc

VALUE = b"v" * 100
BATCH_BYTES = len(batch(VALUE))  # one 100-byte record


def refused(code: ErrorCode, call, *args, **kwargs) -> KafkaError:
    with pytest.raises(KafkaError) as caught:
        call(*args, **kwargs)
    assert caught.value.code is code
    return caught.value


# ---- append and read ----


def test_append_assigns_offsets_and_read_returns_stored_batches(log_dir):
    log = open_log(log_dir)
    assert log.append(batch(b"a"), leader_epoch=4, now_ms=T0_MS) == AppendInfo(0, 0, -1, 0)
    assert log.append(batch(b"b", b"c"), leader_epoch=4, now_ms=T0_MS) == AppendInfo(1, 2, -1, 0)
    assert log.append(batch(b"d", b"e", b"f"), leader_epoch=4, now_ms=T0_MS) == AppendInfo(3, 5, -1, 0)
    assert (log.topic, log.partition, log.log_end_offset, log.high_watermark) == ("orders", 0, 6, 0)

    data = log.read(0, 1 << 20).read()
    assert values_in(data) == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d"), (4, b"e"), (5, b"f")]
    assert len(data) == log.size_bytes == (log_dir / "00000000000000000000.log").stat().st_size
    header = read_batch_header(data)
    assert (header.base_offset, header.partition_leader_epoch) == (0, 4)
    # From an offset inside a batch: that whole batch first (the client skips what it has).
    assert values_in(log.read(4, 1 << 20).read()) == [(3, b"d"), (4, b"e"), (5, b"f")]
    assert log.read(6, 1 << 20).size == 0
    refused(ErrorCode.OFFSET_OUT_OF_RANGE, log.read, 7, 100)
    refused(ErrorCode.OFFSET_OUT_OF_RANGE, log.read, -1, 100)


def test_read_is_whole_batches_within_max_bytes_and_at_least_one(log_dir):
    log = open_log(log_dir)
    for value in (b"a" * 10, b"b" * 10, b"c" * 10):
        log.append(batch(value), leader_epoch=0, now_ms=T0_MS)
    size = len(batch(b"a" * 10))
    assert values_in(log.read(0, 2 * size + size - 1).read()) == [(0, b"a" * 10), (1, b"b" * 10)]
    assert values_in(log.read(0, 3 * size).read()) == [(0, b"a" * 10), (1, b"b" * 10), (2, b"c" * 10)]
    one = log.read(1, 5)
    assert (one.position, one.size) == (size, size)  # KIP-74: the first batch even when larger
    assert log.read(1, 5, min_one_batch=False).size == 0


def test_read_stops_before_max_offset(log_dir):
    log = open_log(log_dir)
    log.append(batch(b"a"), leader_epoch=0, now_ms=T0_MS)
    log.append(batch(b"b", b"c"), leader_epoch=0, now_ms=T0_MS)
    log.append(batch(b"d"), leader_epoch=0, now_ms=T0_MS)
    assert values_in(log.read(0, 1 << 20, max_offset=3).read()) == [(0, b"a"), (1, b"b"), (2, b"c")]
    assert values_in(log.read(0, 1 << 20, max_offset=1).read()) == [(0, b"a")]
    assert log.read(3, 1 << 20, max_offset=3).size == 0
    assert log.read(0, 1 << 20, max_offset=0).size == 0


def test_append_patches_a_writable_buffer_in_place_and_copies_bytes(log_dir):
    log = open_log(log_dir)
    log.append(batch(b"first"), leader_epoch=0, now_ms=T0_MS)
    buffer = bytearray(batch(b"second"))
    log.append(buffer, leader_epoch=7, now_ms=T0_MS)
    header = read_batch_header(buffer)
    assert (header.base_offset, header.partition_leader_epoch) == (1, 7)
    original = batch(b"third")
    log.append(original, leader_epoch=7, now_ms=T0_MS)
    assert read_batch_header(original).base_offset == 0  # bytes are never modified


def test_several_batches_in_one_append_are_one_write(log_dir):
    log = open_log(log_dir)
    records = batch(b"a", b"b") + batch(b"c") + batch(b"d", b"e", b"f")
    assert log.append(records, leader_epoch=1, now_ms=T0_MS) == AppendInfo(0, 5, -1, 0)
    assert values_in(log.read(0, 1 << 20).read()) == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d"), (4, b"e"), (5, b"f")]


def test_log_append_time_stamps_batch_and_recomputes_crc(log_dir):
    log = open_log(log_dir, LogConfig(message_timestamp_type="LogAppendTime"))
    now_ms = T0_MS + 123_456
    assert log.append(batch(b"a", b"b"), leader_epoch=0, now_ms=now_ms) == AppendInfo(0, 1, now_ms, 0)
    stored = log.read(0, 1 << 20).read()
    header = read_batch_header(stored)
    assert (header.timestamp_type, header.max_timestamp, header.base_timestamp) == (1, now_ms, T0_MS)
    verify_crc(stored)
    assert log.max_timestamp() == (now_ms, 0)


# ---- validation: nothing is written on refusal ----


def _with_recomputed_crc(data: bytearray) -> bytes:
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:])))
    return bytes(data)


def test_refusals_write_nothing(log_dir):
    log = open_log(log_dir, LogConfig(max_message_bytes=500))
    good = batch(b"ok")
    old_format = bytearray(good)
    old_format[16] = 1
    refused(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, log.append, bytes(old_format), leader_epoch=0, now_ms=T0_MS)
    flipped = bytearray(good)
    flipped[-1] ^= 0xFF
    refused(ErrorCode.CORRUPT_MESSAGE, log.append, bytes(flipped), leader_epoch=0, now_ms=T0_MS)
    refused(ErrorCode.CORRUPT_MESSAGE, log.append, good[:-1], leader_epoch=0, now_ms=T0_MS)
    refused(ErrorCode.CORRUPT_MESSAGE, log.append, good + good[:30], leader_epoch=0, now_ms=T0_MS)
    refused(ErrorCode.MESSAGE_TOO_LARGE, log.append, batch(b"x" * 500), leader_epoch=0, now_ms=T0_MS)
    wrong_count = bytearray(good)
    struct.pack_into(">i", wrong_count, 57, 2)
    refused(ErrorCode.INVALID_RECORD, log.append, _with_recomputed_crc(wrong_count), leader_epoch=0, now_ms=T0_MS)
    control = batch(b"marker", is_control=True, producer_id=5, producer_epoch=0)
    error = refused(ErrorCode.INVALID_RECORD, log.append, control, leader_epoch=0, now_ms=T0_MS)
    assert error.message == "clients are not allowed to write control records"
    no_sequence = batch(b"x", producer_id=5, producer_epoch=0, base_sequence=-1)
    refused(ErrorCode.INVALID_RECORD, log.append, no_sequence, leader_epoch=0, now_ms=T0_MS)
    # A bad second batch refuses the whole append.
    refused(ErrorCode.CORRUPT_MESSAGE, log.append, good + bytes(flipped), leader_epoch=0, now_ms=T0_MS)
    assert (log.log_end_offset, log.size_bytes) == (0, 0)
    assert log.append(good, leader_epoch=0, now_ms=T0_MS) == AppendInfo(0, 0, -1, 0)


def test_timestamps_outside_before_and_after_max_ms_are_invalid(log_dir):
    log = open_log(log_dir, LogConfig(message_timestamp_before_max_ms=1000, message_timestamp_after_max_ms=100))
    now_ms = T0_MS
    error = refused(ErrorCode.INVALID_TIMESTAMP, log.append, batch(b"old", timestamp_ms=now_ms - 1001),
                    leader_epoch=0, now_ms=now_ms)
    assert error.message == f"timestamp {now_ms - 1001} is out of range: it should be within [{now_ms - 1000}, {now_ms + 100}]"
    refused(ErrorCode.INVALID_TIMESTAMP, log.append, batch(b"future", timestamp_ms=now_ms + 101),
            leader_epoch=0, now_ms=now_ms)
    assert log.append(batch(b"edge", timestamp_ms=now_ms - 1000), leader_epoch=0, now_ms=now_ms).base_offset == 0
    assert log.append(batch(b"edge", timestamp_ms=now_ms + 100), leader_epoch=0, now_ms=now_ms).base_offset == 1


def test_coordinator_may_write_control_batches(log_dir):
    log = open_log(log_dir)
    marker = build_batch([(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x03", [], T0_MS)], is_control=True,
                         is_transactional=True, producer_id=5, producer_epoch=0)
    assert log.append(marker, leader_epoch=0, now_ms=T0_MS, origin=AppendOrigin.COORDINATOR) == AppendInfo(0, 0, -1, 0)


# ---- indexes and rolling ----


def test_sparse_index_entries_in_kafka_format(log_dir):
    log = open_log(log_dir, LogConfig(index_interval_bytes=BATCH_BYTES + 1, segment_index_bytes=1200))
    for i in range(7):
        log.append(batch(VALUE, timestamp_ms=T0_MS + i), leader_epoch=0, now_ms=T0_MS)
    # Preallocated while active, as Kafka does: 1200 // 8 and 1200 // 12 entries.
    assert (log_dir / "00000000000000000000.index").stat().st_size == 1200
    assert (log_dir / "00000000000000000000.timeindex").stat().st_size == 1200
    log.close()
    # An entry once more than index.interval.bytes were written: every second batch,
    # under its last offset and its position.
    index = (log_dir / "00000000000000000000.index").read_bytes()
    assert list(struct.iter_unpack(">ii", index)) == [(2, 2 * BATCH_BYTES), (4, 4 * BATCH_BYTES), (6, 6 * BATCH_BYTES)]
    time_index = (log_dir / "00000000000000000000.timeindex").read_bytes()
    assert list(struct.iter_unpack(">qi", time_index)) == [(T0_MS + 2, 2), (T0_MS + 4, 4), (T0_MS + 6, 6)]


def test_roll_on_segment_bytes_and_reads_never_span_segments(log_dir):
    log = open_log(log_dir, LogConfig(segment_bytes=3 * BATCH_BYTES))
    for i in range(7):
        log.append(batch(b"%03d" % i + VALUE[3:]), leader_epoch=0, now_ms=T0_MS)
    assert log.segment_base_offsets() == [0, 3, 6]
    first = log.read(0, 1 << 20)
    assert [offset for offset, _ in values_in(first.read())] == [0, 1, 2]
    assert [offset for offset, _ in values_in(log.read(3, 1 << 20).read())] == [3, 4, 5]
    assert [offset for offset, _ in values_in(log.read(6, 1 << 20).read())] == [6]
    # Each roll snapshots producer state at the new segment's base offset.
    assert sorted(p.name for p in log_dir.glob("*.snapshot")) == ["00000000000000000003.snapshot",
                                                                  "00000000000000000006.snapshot"]
    # Rolled segments' indexes are trimmed to their entries (none here).
    assert (log_dir / "00000000000000000000.index").stat().st_size == 0


def test_roll_on_segment_ms_by_message_time_and_when_idle(log_dir):
    log = open_log(log_dir, LogConfig(segment_ms=1000))
    log.append(batch(b"a", timestamp_ms=T0_MS), leader_epoch=0, now_ms=T0_MS)
    log.append(batch(b"b", timestamp_ms=T0_MS + 1000), leader_epoch=0, now_ms=T0_MS)
    assert log.segment_base_offsets() == [0]
    log.append(batch(b"c", timestamp_ms=T0_MS + 1001), leader_epoch=0, now_ms=T0_MS)
    assert log.segment_base_offsets() == [0, 2]
    assert log.roll_if_due(T0_MS + 2001) is False
    assert log.roll_if_due(T0_MS + 2002) is True
    assert log.segment_base_offsets() == [0, 2, 3]
    assert log.roll_if_due(T0_MS + 9999) is False  # an empty active segment is not rolled


def test_roll_when_index_is_full(log_dir):
    log = open_log(log_dir, LogConfig(index_interval_bytes=0, segment_index_bytes=24))  # 3 offset entries
    for _ in range(6):
        log.append(batch(b"x"), leader_epoch=0, now_ms=T0_MS)
    # The time index holds 2 entries, one kept free for the entry written when the segment
    # is rolled; equal timestamps add no entry, so the entry for offset 1 fills it.
    assert log.segment_base_offsets() == [0, 2, 4]
    assert values_in(b"".join(log.read(o, 1 << 20).read() for o in log.segment_base_offsets())) == [
        (i, b"x") for i in range(6)
    ]


# ---- retention and DeleteRecords ----


def _six_batches_in_three_segments(log_dir, **config):
    log = open_log(log_dir, LogConfig(segment_bytes=2 * BATCH_BYTES, file_delete_delay_ms=500, **config))
    for i in range(6):
        log.append(batch(VALUE, timestamp_ms=T0_MS + i * 1000), leader_epoch=0, now_ms=T0_MS)
    assert log.segment_base_offsets() == [0, 2, 4]
    return log


def test_retention_ms_deletes_old_segments_after_the_high_watermark_passes(log_dir):
    log = _six_batches_in_three_segments(log_dir, retention_ms=2500)
    now_ms = T0_MS + 5000
    assert log.enforce_retention(now_ms) == 0  # high watermark 0: nothing is replicated yet
    log.update_high_watermark(6)
    in_flight = log.read(0, 1 << 20)
    assert log.enforce_retention(now_ms) == 1  # segment 0 (max 1000) is 4000 ms old; segment 2 only 2000
    assert (log.segment_base_offsets(), log.log_start_offset) == ([2, 4], 2)
    assert sorted(p.name for p in log_dir.glob("00000000000000000000.*")) == [
        "00000000000000000000.index.deleted", "00000000000000000000.log.deleted", "00000000000000000000.timeindex.deleted"]
    log.enforce_retention(now_ms + 500)
    assert sorted(p.name for p in log_dir.glob("00000000000000000000.*")) == []
    # A slice handed out before deletion still reads the deleted bytes.
    assert [offset for offset, _ in values_in(in_flight.read())] == [0, 1]
    refused(ErrorCode.OFFSET_OUT_OF_RANGE, log.read, 1, 100)


def test_retention_bytes_keeps_the_newest_segments_within_the_limit(log_dir):
    log = _six_batches_in_three_segments(log_dir, retention_bytes=3 * BATCH_BYTES)
    log.update_high_watermark(6)
    assert log.enforce_retention(T0_MS) == 1  # 6 batches: dropping 2 leaves 4 > 3, stop
    assert (log.segment_base_offsets(), log.log_start_offset, log.size_bytes) == ([2, 4], 2, 4 * BATCH_BYTES)


def test_retention_of_every_segment_rolls_so_the_log_goes_on(log_dir):
    log = _six_batches_in_three_segments(log_dir, retention_ms=10)
    log.update_high_watermark(6)
    assert log.enforce_retention(T0_MS + 100_000) == 3
    assert (log.segment_base_offsets(), log.log_start_offset, log.log_end_offset) == ([6], 6, 6)
    assert log.read(6, 100).size == 0
    assert log.append(batch(b"next"), leader_epoch=0, now_ms=T0_MS).base_offset == 6


def test_delete_records_before(log_dir):
    log = _six_batches_in_three_segments(log_dir)
    log.update_high_watermark(5)
    refused(ErrorCode.OFFSET_OUT_OF_RANGE, log.delete_records_before, 6)
    assert log.delete_records_before(3) == 3
    assert log.segment_base_offsets() == [2, 4]  # segment 0 lies wholly below 3
    refused(ErrorCode.OFFSET_OUT_OF_RANGE, log.read, 2, 1 << 20)
    assert [offset for offset, _ in values_in(log.read(3, 1 << 20).read())] == [3]
    assert log.delete_records_before(1) == 3  # never moves back
    assert log.offset_for_timestamp(T0_MS) == (3, T0_MS + 3000)


# ---- lookups ----


def test_offset_for_timestamp_finds_the_record_inside_a_batch(log_dir):
    batches = [
        build_batch([(b"k", b"v%02d" % (start + i), [], T0_MS + start + 3 * i) for i in range(3)])
        for start in (0, 10, 20, 30)
    ]
    log = open_log(log_dir, LogConfig(segment_bytes=2 * len(batches[0]), index_interval_bytes=0))
    for records in batches:
        log.append(records, leader_epoch=0, now_ms=T0_MS)
    # Offsets 0-2 at +0/+3/+6 ms, 3-5 at +10/+13/+16, 6-8 at +20/+23/+26, 9-11 at +30/+33/+36.
    assert log.segment_base_offsets() == [0, 6]
    assert log.offset_for_timestamp(T0_MS - 100) == (0, T0_MS)
    assert log.offset_for_timestamp(T0_MS) == (0, T0_MS)
    assert log.offset_for_timestamp(T0_MS + 4) == (2, T0_MS + 6)
    assert log.offset_for_timestamp(T0_MS + 7) == (3, T0_MS + 10)
    assert log.offset_for_timestamp(T0_MS + 26) == (8, T0_MS + 26)
    assert log.offset_for_timestamp(T0_MS + 27) == (9, T0_MS + 30)
    assert log.offset_for_timestamp(T0_MS + 36) == (11, T0_MS + 36)
    assert log.offset_for_timestamp(T0_MS + 37) is None


def test_max_timestamp_is_the_first_record_with_the_largest_timestamp(log_dir):
    log = open_log(log_dir)
    assert log.max_timestamp() is None
    log.append(build_batch([(None, b"a", [], T0_MS + 5), (None, b"b", [], T0_MS + 50), (None, b"c", [], T0_MS + 7)]),
               leader_epoch=0, now_ms=T0_MS)
    log.append(build_batch([(None, b"d", [], T0_MS + 50), (None, b"e", [], T0_MS + 1)]), leader_epoch=0, now_ms=T0_MS)
    assert log.max_timestamp() == (T0_MS + 50, 1)


def test_end_offset_for_epoch_and_leader_epoch_checkpoint(log_dir):
    log = open_log(log_dir)
    log.append(batch(b"a", b"b", b"c"), leader_epoch=0, now_ms=T0_MS)
    log.append(batch(b"d", b"e"), leader_epoch=2, now_ms=T0_MS)
    log.append(batch(b"f"), leader_epoch=5, now_ms=T0_MS)
    log.append(batch(b"g"), leader_epoch=5, now_ms=T0_MS)
    assert (log_dir / "leader-epoch-checkpoint").read_text() == "0\n3\n0 0\n2 3\n5 5\n"
    assert [log.end_offset_for_epoch(epoch) for epoch in (0, 1, 2, 3, 5, 6, -1)] == [
        (0, 3), (0, 3), (2, 5), (2, 5), (5, 7), (-1, -1), (-1, -1)]


def test_flush_messages_fsyncs_and_moves_the_recovery_point(log_dir):
    log = open_log(log_dir, LogConfig(flush_messages=3))
    log.append(batch(b"a", b"b"), leader_epoch=0, now_ms=T0_MS)
    assert log.recovery_point == 0
    log.append(batch(b"c"), leader_epoch=0, now_ms=T0_MS)
    assert log.recovery_point == 3
    log.append(batch(b"d"), leader_epoch=0, now_ms=T0_MS)
    log.flush()
    assert log.recovery_point == 4


def test_flush_ms_by_flush_due(log_dir):
    log = open_log(log_dir, LogConfig(flush_ms=1000), now_ms=T0_MS)
    log.append(batch(b"a"), leader_epoch=0, now_ms=T0_MS + 10)
    log.flush_due(T0_MS + 999)
    assert log.recovery_point == 0
    log.flush_due(T0_MS + 1000)
    assert log.recovery_point == 1


def test_retention_in_a_worker_thread_while_appending(log_dir):
    log = open_log(log_dir, LogConfig(segment_bytes=4 * BATCH_BYTES, retention_bytes=8 * BATCH_BYTES,
                                      file_delete_delay_ms=0))
    stop = threading.Event()
    deleted = []

    def retention() -> None:
        while not stop.is_set():
            deleted.append(log.enforce_retention(T0_MS))

    worker = threading.Thread(target=retention)
    worker.start()
    try:
        for i in range(400):
            assert log.append(batch(VALUE), leader_epoch=0, now_ms=T0_MS).base_offset == i
            log.update_high_watermark(log.log_end_offset)
            assert log.read(log.log_end_offset - 1, 1 << 20).size == BATCH_BYTES
    finally:
        stop.set()
        worker.join(timeout=30)
    log.enforce_retention(T0_MS)
    assert log.log_end_offset == 400
    assert log.size_bytes <= 8 * BATCH_BYTES
    assert [offset for offset, _ in values_in(log.read(log.log_start_offset, 1 << 20).read())] == list(
        range(log.log_start_offset, log.segment_base_offsets()[-1]))


def test_update_config_applies_to_later_appends(log_dir):
    log = open_log(log_dir)
    log.append(batch(b"x" * 300), leader_epoch=0, now_ms=T0_MS)
    log.update_config(replace(log.config, max_message_bytes=100))
    refused(ErrorCode.MESSAGE_TOO_LARGE, log.append, batch(b"x" * 300), leader_epoch=0, now_ms=T0_MS)
    assert os.path.exists(log_dir / "00000000000000000000.log")


# ---- follower truncation ----


def test_truncate_to_drops_later_batches_segments_epochs_and_producer_state(log_dir):
    log = open_log(log_dir, LogConfig(segment_bytes=2 * BATCH_BYTES, index_interval_bytes=0))
    for i in range(5):
        records = batch(VALUE, producer_id=9, producer_epoch=0, base_sequence=i, timestamp_ms=T0_MS + i)
        log.append(records, leader_epoch=i, now_ms=T0_MS)
    assert log.segment_base_offsets() == [0, 2, 4]
    log.update_high_watermark(5)
    assert log.truncate_to(5, now_ms=T0_MS) is False
    assert log.truncate_to(3, now_ms=T0_MS) is True
    assert (log.log_end_offset, log.high_watermark, log.segment_base_offsets()) == (3, 3, [0, 2])
    assert log.leader_epoch_entries() == [(0, 0), (1, 1), (2, 2)]
    assert log.producer_states() == {9: (0, 2, T0_MS + 2)}
    assert log.max_timestamp() == (T0_MS + 2, 2)
    assert [offset for offset, _ in values_in(log.read(2, 1 << 20).read())] == [2]
    # The follower then appends what the leader has, offsets and epochs as they are.
    leader_batch = bytearray(batch(b"new", producer_id=9, producer_epoch=0, base_sequence=3, partition_leader_epoch=7))
    struct.pack_into(">q", leader_batch, 0, 3)
    assert log.append_as_follower(bytes(leader_batch), now_ms=T0_MS) == AppendInfo(3, 3, -1, 0)
    assert log.leader_epoch_entries()[-1] == (7, 3)
    assert values_in(log.read(3, 1 << 20).read()) == [(3, b"new")]
    refused(ErrorCode.INVALID_RECORD, log.append_as_follower, bytes(leader_batch), now_ms=T0_MS)


def test_truncate_fully_and_start_at(log_dir):
    log = open_log(log_dir)
    log.append(batch(b"a", b"b"), leader_epoch=1, now_ms=T0_MS)
    log.truncate_fully_and_start_at(0, now_ms=T0_MS)
    assert (log.log_start_offset, log.log_end_offset, log.segment_base_offsets(), log.leader_epoch_entries()) == (0, 0, [0], [])
    log.truncate_fully_and_start_at(40, now_ms=T0_MS)
    assert (log.log_start_offset, log.log_end_offset, log.segment_base_offsets()) == (40, 40, [40])
    assert log.append(batch(b"c"), leader_epoch=2, now_ms=T0_MS) == AppendInfo(40, 40, -1, 40)
    log.close()
    log = open_log(log_dir, recovery_point=41, log_start_offset=40)
    assert values_in(log.read(40, 1 << 20).read()) == [(40, b"c")]


def test_preallocated_segment_is_trimmed_and_its_zero_tail_is_no_corruption(log_dir, caplog):
    config = LogConfig(preallocate=True, segment_bytes=64 * 1024)
    log = open_log(log_dir, config)
    log.append(batch(b"a"), leader_epoch=0, now_ms=T0_MS)
    assert (log_dir / "00000000000000000000.log").stat().st_size == 64 * 1024
    del log  # crash: the file keeps its preallocated zeros
    log = open_log(log_dir, config, clean_shutdown=False)
    assert (log.log_end_offset, caplog.records) == (1, [])
    log.close()
    assert (log_dir / "00000000000000000000.log").stat().st_size == len(batch(b"a"))
