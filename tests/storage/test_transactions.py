"""Transactions in the partition log: the last stable offset, end-transaction markers,
the `.txnindex` files (Kafka's format) and aborted_transactions, across restarts,
crashes, truncation, retention and compaction."""
from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import pytest

from storage import cleaner
from storage.config import LogConfig
from storage.log import AppendInfo, AppendOrigin, PartitionLog
from storage.transaction_index import ABORTED_TXN
from wire.errors import ErrorCode, KafkaError
from wire.records import decode_records, iter_batches, read_batch_header
from .storage_testing import T0_MS, batch, open_log

# Every append to a non-empty active segment rolls first: one batch per segment.
ONE_BATCH_PER_SEGMENT = LogConfig(segment_bytes=120)


class Producer:
    """A transactional producer's data batches, with its sequence numbers."""

    def __init__(self, log: PartitionLog, producer_id: int, epoch: int = 0) -> None:
        self.log, self.producer_id, self.epoch, self.sequence = log, producer_id, epoch, 0

    def send(self, *values: bytes, transactional: bool = True) -> AppendInfo:
        records = batch(*values, producer_id=self.producer_id, producer_epoch=self.epoch,
                        base_sequence=self.sequence, is_transactional=transactional)
        info = self.log.append(records, leader_epoch=0, now_ms=T0_MS)
        self.sequence += len(values)
        return info

    def end(self, *, commit: bool, coordinator_epoch: int = 0) -> AppendInfo:
        return self.log.append_marker(self.producer_id, self.epoch, commit=commit,
                                      coordinator_epoch=coordinator_epoch, leader_epoch=0, now_ms=T0_MS)


def replicate(log: PartitionLog) -> None:
    log.update_high_watermark(log.log_end_offset)


def txn_index(directory: Path, base_offset: int) -> list[tuple[int, int, int, int, int]]:
    return list(ABORTED_TXN.iter_unpack((directory / f"{base_offset:020d}.txnindex").read_bytes()))


def plain(log: PartitionLog, value: bytes = b"x") -> AppendInfo:
    return log.append(batch(value), leader_epoch=0, now_ms=T0_MS)


# ---- the last stable offset ----


def test_last_stable_offset_follows_an_open_transaction_and_its_commit(log_dir):
    log = open_log(log_dir)
    plain(log)
    replicate(log)
    assert (log.high_watermark, log.last_stable_offset) == (1, 1)
    producer = Producer(log, 7)
    assert producer.send(b"a", b"b") == AppendInfo(1, 2, -1, 0)
    plain(log)
    replicate(log)
    assert (log.high_watermark, log.last_stable_offset) == (4, 1)
    assert log.ongoing_transactions() == {7: 1}
    assert producer.end(commit=True) == AppendInfo(4, 4, -1, 0)
    assert log.ongoing_transactions() == {}
    # Decided, but the marker is not replicated yet: the LSO waits for the high watermark.
    assert log.last_stable_offset == 1
    log.update_high_watermark(4)
    assert log.last_stable_offset == 1
    log.update_high_watermark(5)
    assert log.last_stable_offset == 5
    assert log.aborted_transactions(0, 5) == []
    assert not (log_dir / "00000000000000000000.txnindex").exists()  # commits are not indexed


def test_abort_is_indexed_and_the_earliest_open_transaction_holds_the_lso(log_dir):
    log = open_log(log_dir)
    first, second = Producer(log, 1), Producer(log, 2)
    first.send(b"a")  # 0
    second.send(b"b")  # 1
    first.send(b"c")  # 2
    replicate(log)
    assert log.last_stable_offset == 0
    assert log.ongoing_transactions() == {1: 0, 2: 1}
    assert first.end(commit=False).base_offset == 3
    replicate(log)
    assert log.last_stable_offset == 1  # producer 2 is still open
    # Kafka's AbortedTxn: the LSO at completion is the next open transaction's start.
    assert txn_index(log_dir, 0) == [(0, 1, 0, 3, 1)]
    assert second.end(commit=False).base_offset == 4
    assert log.last_stable_offset == 1  # decided, but its marker is not below the high watermark
    replicate(log)
    assert log.last_stable_offset == 5
    assert txn_index(log_dir, 0) == [(0, 1, 0, 3, 1), (0, 2, 1, 4, 5)]
    assert (log_dir / "00000000000000000000.txnindex").stat().st_size == 2 * 34
    assert log.aborted_transactions(0, 5) == [(1, 0), (2, 1)]
    assert log.aborted_transactions(4, 5) == [(2, 1)]
    assert log.aborted_transactions(0, 1) == [(1, 0)]
    assert log.aborted_transactions(5, 6) == []


def test_the_marker_is_kafkas_end_transaction_control_batch(log_dir):
    log = open_log(log_dir)
    Producer(log, 42, epoch=3).send(b"a")
    info = log.append_marker(42, 3, commit=False, coordinator_epoch=9, leader_epoch=5, now_ms=T0_MS + 1)
    data = log.read(info.base_offset, 1 << 20).read()
    header = read_batch_header(data)
    assert (header.base_offset, header.is_control, header.is_transactional, header.producer_id,
            header.producer_epoch, header.base_sequence, header.partition_leader_epoch,
            header.records_count) == (1, True, True, 42, 3, -1, 5, 1)
    (record,) = decode_records(data)
    assert (record.offset, record.key, record.value, record.timestamp) == (
        1, struct.pack(">hh", 0, 0), struct.pack(">hi", 0, 9), T0_MS + 1)
    commit = log.append_marker(42, 3, commit=True, coordinator_epoch=9, leader_epoch=5, now_ms=T0_MS)
    (record,) = decode_records(log.read(commit.base_offset, 1 << 20).read())
    assert record.key == struct.pack(">hh", 0, 1)


def test_a_marker_without_an_open_transaction_is_still_written(log_dir):
    log = open_log(log_dir)
    assert log.append_marker(5, 0, commit=False, coordinator_epoch=1, leader_epoch=0, now_ms=T0_MS).base_offset == 0
    replicate(log)
    assert (log.log_end_offset, log.last_stable_offset) == (1, 1)
    assert log.aborted_transactions(0, 1) == []
    assert log.producer_states() == {5: (0, -1, T0_MS)}
    assert log.describe_producers() == {5: (0, -1, T0_MS, 1)}


# ---- fencing ----


def test_older_coordinator_epoch_is_fenced_and_writes_nothing(log_dir):
    log = open_log(log_dir)
    producer = Producer(log, 1)
    producer.send(b"a")
    producer.end(commit=True, coordinator_epoch=4)
    producer.send(b"b")
    with pytest.raises(KafkaError) as caught:
        producer.end(commit=False, coordinator_epoch=3)
    assert caught.value.code is ErrorCode.TRANSACTION_COORDINATOR_FENCED
    assert (log.log_end_offset, log.ongoing_transactions()) == (3, {1: 2})
    assert producer.end(commit=False, coordinator_epoch=4).base_offset == 3  # the same epoch goes


def test_older_producer_epoch_is_invalid_producer_epoch(log_dir):
    log = open_log(log_dir)
    Producer(log, 1, epoch=2).send(b"a")
    with pytest.raises(KafkaError) as caught:
        log.append_marker(1, 1, commit=True, coordinator_epoch=0, leader_epoch=0, now_ms=T0_MS)
    assert caught.value.code is ErrorCode.INVALID_PRODUCER_EPOCH
    assert (log.log_end_offset, log.ongoing_transactions()) == (1, {1: 0})
    # A newer epoch (the coordinator fenced the producer and bumped it) aborts it.
    assert log.append_marker(1, 3, commit=False, coordinator_epoch=0, leader_epoch=0, now_ms=T0_MS).base_offset == 1
    assert (log.ongoing_transactions(), log.producer_states()[1][0]) == ({}, 3)
    assert log.aborted_transactions(0, 2) == [(1, 0)]


def test_non_transactional_write_during_a_transaction_is_invalid_txn_state(log_dir):
    log = open_log(log_dir)
    producer = Producer(log, 1)
    producer.send(b"a")
    with pytest.raises(KafkaError) as caught:
        producer.send(b"b", transactional=False)
    assert caught.value.code is ErrorCode.INVALID_TXN_STATE
    assert log.log_end_offset == 1


def test_coordinator_appends_check_producer_epochs(log_dir):
    log = open_log(log_dir)
    Producer(log, 1, epoch=2).send(b"a")
    stale = batch(b"offset", producer_id=1, producer_epoch=1, base_sequence=0, is_transactional=True)
    with pytest.raises(KafkaError) as caught:
        log.append(stale, leader_epoch=0, now_ms=T0_MS, origin=AppendOrigin.COORDINATOR)
    assert caught.value.code is ErrorCode.INVALID_PRODUCER_EPOCH


# ---- segments ----


def test_aborted_transactions_across_segment_rolls(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    first, second = Producer(log, 1), Producer(log, 2)
    first.send(b"a")  # 0
    second.send(b"b")  # 1
    first.end(commit=False)  # 2
    plain(log)  # 3
    second.end(commit=False)  # 4
    first.send(b"c")  # 5
    first.end(commit=True)  # 6
    first.send(b"d")  # 7
    first.end(commit=False)  # 8
    replicate(log)
    assert log.segment_base_offsets() == list(range(9))
    assert sorted(path.name for path in log_dir.glob("*.txnindex")) == [
        "00000000000000000002.txnindex", "00000000000000000004.txnindex", "00000000000000000008.txnindex"]
    assert txn_index(log_dir, 2) == [(0, 1, 0, 2, 1)]
    assert txn_index(log_dir, 4) == [(0, 2, 1, 4, 5)]
    assert txn_index(log_dir, 8) == [(0, 1, 7, 8, 9)]
    assert log.aborted_transactions(0, 9) == [(1, 0), (2, 1), (1, 7)]
    # From the segment holding the fetch offset on: producer 1's first abort ended at 2.
    assert log.aborted_transactions(3, 4) == [(2, 1)]
    assert log.aborted_transactions(5, 7) == []
    assert log.aborted_transactions(7, 8) == [(1, 7)]
    assert log.aborted_transactions(1, 2) == [(1, 0), (2, 1)]


def test_follower_appends_build_the_same_index(log_dir, tmp_path):
    leader = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    producer = Producer(leader, 1)
    producer.send(b"a")
    plain(leader)
    producer.end(commit=False)
    producer.send(b"b")
    follower = open_log(tmp_path / "orders-1", ONE_BATCH_PER_SEGMENT)
    offset = 0
    while offset < leader.log_end_offset:
        data = leader.read(offset, 1 << 20).read()
        follower.append_as_follower(data, now_ms=T0_MS)
        offset = follower.log_end_offset
    assert follower.aborted_transactions(0, 4) == [(1, 0)]
    assert txn_index(tmp_path / "orders-1", 2) == txn_index(log_dir, 2) == [(0, 1, 0, 2, 3)]
    assert follower.ongoing_transactions() == {1: 3}
    follower.update_high_watermark(4)
    assert follower.last_stable_offset == 3


# ---- restarts and crashes ----


def _transactions(log_dir: Path, config: LogConfig = ONE_BATCH_PER_SEGMENT) -> PartitionLog:
    log = open_log(log_dir, config)
    first, second = Producer(log, 1), Producer(log, 2)
    first.send(b"a")  # 0
    second.send(b"b")  # 1
    first.end(commit=False)  # 2
    plain(log)  # 3
    second.send(b"c")  # 4
    first.send(b"d")  # 5: producer 1's second transaction, still open
    replicate(log)
    return log


def _state(log: PartitionLog) -> tuple:
    return (log.log_end_offset, log.last_stable_offset, log.ongoing_transactions(),
            log.aborted_transactions(0, log.log_end_offset))


def test_reopen_after_close_restores_transactions_lso_and_index(log_dir):
    log = _transactions(log_dir)
    before = _state(log)
    assert before == (6, 1, {2: 1, 1: 5}, [(1, 0)])
    index_bytes = (log_dir / "00000000000000000002.txnindex").read_bytes()
    log.close()
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT, high_watermark=6)
    assert _state(log) == before
    assert (log_dir / "00000000000000000002.txnindex").read_bytes() == index_bytes
    Producer(log, 2).end(commit=False)  # 6
    Producer(log, 1).end(commit=True)  # 7
    replicate(log)
    assert log.last_stable_offset == 8
    assert log.aborted_transactions(0, 8) == [(1, 0), (2, 1)]
    assert txn_index(log_dir, 6) == [(0, 2, 1, 6, 5)]


def test_crash_without_snapshots_rebuilds_transactions_and_indexes(log_dir):
    log = _transactions(log_dir)
    before = _state(log)
    index_bytes = (log_dir / "00000000000000000002.txnindex").read_bytes()
    log.flush()
    # kill -9: no close; then lose every producer snapshot and the index.
    for path in log_dir.glob("*.snapshot"):
        path.unlink()
    (log_dir / "00000000000000000002.txnindex").unlink()
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT, clean_shutdown=False, recovery_point=0, high_watermark=6)
    assert _state(log) == before
    assert (log_dir / "00000000000000000002.txnindex").read_bytes() == index_bytes


def test_crash_recovery_rebuilds_indexes_past_the_recovery_point_from_a_snapshot(log_dir):
    log = _transactions(log_dir)
    before = _state(log)
    snapshots = sorted(path.name for path in log_dir.glob("*.snapshot"))
    assert snapshots  # taken at the rolls
    (log_dir / "00000000000000000002.txnindex").write_bytes(b"\x00" * 10)  # garbage, must be rebuilt
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT, clean_shutdown=False, recovery_point=2, high_watermark=6)
    assert _state(log) == before
    assert txn_index(log_dir, 2) == [(0, 1, 0, 2, 1)]


def test_crash_that_loses_the_abort_marker_reopens_the_transaction(log_dir):
    config = LogConfig()  # one segment
    log = open_log(log_dir, config)
    producer = Producer(log, 1)
    producer.send(b"a")  # 0
    plain(log)  # 1
    marker = producer.end(commit=False)  # 2
    replicate(log)
    assert log.aborted_transactions(0, 3) == [(1, 0)]
    segment = log_dir / "00000000000000000000.log"
    marker_position = len(log.read(0, 1 << 20, max_offset=marker.base_offset).read())
    log.flush()
    # kill -9 with the marker half written, no snapshot.
    with open(segment, "r+b") as file:
        file.truncate(marker_position + 20)
    for path in log_dir.glob("*.snapshot"):
        path.unlink()
    log = open_log(log_dir, config, clean_shutdown=False, recovery_point=0, high_watermark=3)
    assert (log.log_end_offset, log.high_watermark, log.last_stable_offset) == (2, 2, 0)
    assert log.ongoing_transactions() == {1: 0}
    assert log.aborted_transactions(0, 2) == []
    assert not (log_dir / "00000000000000000000.txnindex").exists()


def test_snapshots_keep_an_open_transaction_whose_start_was_deleted(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    producer = Producer(log, 1)
    producer.send(b"a")  # 0
    plain(log)  # 1
    plain(log)  # 2
    replicate(log)
    log.delete_records_before(2)
    log.enforce_retention(T0_MS)
    assert log.segment_base_offsets() == [2]
    assert (log.last_stable_offset, log.ongoing_transactions()) == (2, {1: 0})  # clamped to the log start
    log.close()
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT, log_start_offset=2, high_watermark=3)
    assert (log.last_stable_offset, log.ongoing_transactions()) == (2, {1: 0})
    producer.log = log
    producer.end(commit=False)  # 3
    replicate(log)
    assert log.aborted_transactions(2, 4) == [(1, 0)]
    assert log.last_stable_offset == 4


# ---- truncation, retention, compaction, expiry ----


def test_truncate_to_drops_transactions_and_index_entries_above_the_cut(log_dir):
    log = _transactions(log_dir, LogConfig())  # one segment
    second = Producer(log, 2)
    second.end(commit=False)  # 6
    replicate(log)
    assert txn_index(log_dir, 0) == [(0, 1, 0, 2, 1), (0, 2, 1, 6, 5)]
    assert log.ongoing_transactions() == {1: 5}
    assert log.truncate_to(5, now_ms=T0_MS)
    assert txn_index(log_dir, 0) == [(0, 1, 0, 2, 1)]
    assert (log.log_end_offset, log.last_stable_offset, log.ongoing_transactions()) == (5, 1, {2: 1})
    assert log.aborted_transactions(0, 5) == [(1, 0)]
    assert log.truncate_to(2, now_ms=T0_MS)
    assert not (log_dir / "00000000000000000000.txnindex").exists()
    assert (log.log_end_offset, log.last_stable_offset, log.ongoing_transactions()) == (2, 0, {1: 0, 2: 1})
    assert log.truncate_to(0, now_ms=T0_MS)
    assert (log.log_end_offset, log.last_stable_offset, log.ongoing_transactions()) == (0, 0, {})


def test_truncate_to_removes_the_indexes_of_later_segments(log_dir):
    log = _transactions(log_dir)
    assert log.truncate_to(2, now_ms=T0_MS)
    assert log.aborted_transactions(0, 2) == []
    assert (log_dir / "00000000000000000002.txnindex.deleted").exists()
    assert not (log_dir / "00000000000000000002.txnindex").exists()
    assert log.ongoing_transactions() == {1: 0, 2: 1}
    log.flush_due(T0_MS + 60_000)
    assert not (log_dir / "00000000000000000002.txnindex.deleted").exists()


def test_retention_deletes_the_txnindex_with_its_segment(log_dir):
    config = LogConfig(segment_bytes=120, retention_ms=1000, file_delete_delay_ms=0)
    log = open_log(log_dir, config)
    producer = Producer(log, 1)
    producer.send(b"a")  # 0
    producer.end(commit=False)  # 1
    plain(log)  # 2
    replicate(log)
    assert (log_dir / "00000000000000000001.txnindex").exists()
    assert log.enforce_retention(T0_MS + 2000) == 3
    assert log.segment_base_offsets() == [3]
    assert sorted(path.name for path in log_dir.iterdir() if "txnindex" in path.name) == []
    assert log.aborted_transactions(3, 3) == []
    assert log.last_stable_offset == 3


def test_compaction_stays_below_the_last_stable_offset_and_keeps_the_index(log_dir):
    config = LogConfig(segment_bytes=120, cleanup_policy_compact=True, min_cleanable_dirty_ratio=0.0)
    log = open_log(log_dir, config)
    plain(log, b"old")  # 0, key k0
    plain(log, b"new")  # 1, key k0
    aborter = Producer(log, 1)
    aborter.send(b"t")  # 2
    aborter.end(commit=False)  # 3
    open_txn = Producer(log, 2)
    open_txn.send(b"u")  # 4
    plain(log, b"newer")  # 5, key k0
    plain(log, b"last")  # 6
    replicate(log)
    assert log.last_stable_offset == 4
    log.update_config(replace(config, segment_bytes=1 << 20))  # let the cleaner merge segments
    result = log.clean(T0_MS)
    assert result.end_offset == 4  # not into producer 2's open transaction
    offsets = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20).read()
        for _, header in iter_batches(data):
            offsets.append(header.base_offset)
            offset = header.next_offset
    assert offsets == [1, 2, 3, 4, 5, 6]  # 0 cleaned; the aborted data and marker stay
    assert log.aborted_transactions(0, 7) == [(1, 2)]
    # The cleaned segments 0..3 merged into one: its .txnindex holds their entries.
    assert log.segment_base_offsets() == [0, 4, 5, 6]
    assert txn_index(log_dir, 0) == [(0, 1, 2, 3, 4)]
    log.close()
    log = open_log(log_dir, config, high_watermark=7)
    assert log.aborted_transactions(0, 7) == [(1, 2)]
    assert log.aborted_transactions(4, 7) == []
    assert (log.last_stable_offset, log.ongoing_transactions()) == (4, {2: 4})


def test_expiry_keeps_producers_with_an_open_transaction(log_dir):
    log = open_log(log_dir)
    Producer(log, 1).send(b"a")
    idle = Producer(log, 2)
    idle.send(b"b")
    idle.end(commit=True)
    assert log.remove_expired_producers(T0_MS + 10_000, 1000) == [2]
    assert log.ongoing_transactions() == {1: 0}


def _install_through_txn_index_then_fail(directory: Path, base_offset: int) -> None:
    for suffix in (".index", ".timeindex", ".txnindex"):
        cleaner.suffixed(directory, base_offset, suffix, cleaner.SWAP_SUFFIX).replace(
            cleaner.suffixed(directory, base_offset, suffix, ""))
    raise OSError("simulated crash")


def _fail(*args, **kwargs):
    raise OSError("simulated crash")


@pytest.mark.parametrize("crash_point", ["before_swap", "after_old_renamed", "after_txn_index_installed"])
def test_crash_during_a_compaction_swap_keeps_the_merged_txnindex(log_dir, monkeypatch, crash_point):
    config = LogConfig(segment_bytes=120, cleanup_policy_compact=True, min_cleanable_dirty_ratio=0.0)
    log = open_log(log_dir, config)
    first = Producer(log, 1)
    first.send(b"t")  # 0
    first.end(commit=False)  # 1
    plain(log, b"old")  # 2
    second = Producer(log, 2)
    second.send(b"u")  # 3
    second.end(commit=False)  # 4
    plain(log, b"new")  # 5
    replicate(log)
    log.update_config(replace(config, segment_bytes=1 << 20))
    if crash_point == "before_swap":
        monkeypatch.setattr(PartitionLog, "_swap_in_cleaned", _fail)
    elif crash_point == "after_old_renamed":
        monkeypatch.setattr(cleaner, "install_swap_files", _fail)
    else:
        monkeypatch.setattr(cleaner, "install_swap_files", _install_through_txn_index_then_fail)
    with pytest.raises(OSError, match="simulated crash"):
        log.clean(T0_MS)
    monkeypatch.undo()

    recovered = open_log(log_dir, config, clean_shutdown=False, recovery_point=6, high_watermark=6)
    assert recovered.segment_base_offsets() == [0, 5]
    assert txn_index(log_dir, 0) == [(0, 1, 0, 1, 2), (0, 2, 3, 4, 5)]
    assert sorted(path.name for path in log_dir.glob("*txnindex*")) == ["00000000000000000000.txnindex"]
    assert recovered.aborted_transactions(0, 6) == [(1, 0), (2, 3)]
    assert recovered.aborted_transactions(2, 6) == [(2, 3)]


def test_coordinator_writes_transactional_offset_commits_without_sequences(log_dir):
    log = open_log(log_dir)
    offsets = batch(b"offset", producer_id=3, producer_epoch=1, is_transactional=True)  # base sequence -1
    assert log.append(offsets, leader_epoch=0, now_ms=T0_MS, origin=AppendOrigin.COORDINATOR).base_offset == 0
    assert log.ongoing_transactions() == {3: 0}
    log.append_marker(3, 1, commit=True, coordinator_epoch=0, leader_epoch=0, now_ms=T0_MS)
    replicate(log)
    assert (log.ongoing_transactions(), log.last_stable_offset) == ({}, 2)
    with pytest.raises(KafkaError) as caught:  # a client batch still needs a sequence
        log.append(offsets, leader_epoch=0, now_ms=T0_MS)
    assert caught.value.code is ErrorCode.INVALID_RECORD


def test_a_txnindex_failing_its_sanity_check_is_rebuilt_at_a_clean_open(log_dir):
    log = _transactions(log_dir)
    before = _state(log)
    log.close()
    # An entry ending before its segment's base offset: Kafka's sanityCheck fails.
    (log_dir / "00000000000000000002.txnindex").write_bytes(ABORTED_TXN.pack(0, 1, 0, 1, 1))
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT, high_watermark=6)
    assert _state(log) == before
    assert txn_index(log_dir, 2) == [(0, 1, 0, 2, 1)]
