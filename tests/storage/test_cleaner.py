"""Log compaction (storage/cleaner.py, PartitionLog.clean, LogManager.clean_due):
exact records after cleaning, tombstones, bounds of the cleanable range, control and
transactional batches, restart, and crashes between the steps of the swap."""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from storage import cleaner
from storage.config import LogConfig
from storage.log import AppendOrigin, PartitionLog
from storage.manager import CLEANER_OFFSET_CHECKPOINT, LogManager
from .storage_testing import T0_MS, open_log
from wire.records import build_batch, decode_records, iter_batches, read_batch_header, verify_crc

# segment_bytes=120: every append to a non-empty active segment rolls first, so each
# batch is its own segment; min ratio 0 cleans whenever anything is dirty.
ONE_BATCH_PER_SEGMENT = LogConfig(segment_bytes=120, cleanup_policy_compact=True, min_cleanable_dirty_ratio=0.0)


def keyed(*records: tuple[bytes, bytes | None], timestamp_ms: int = T0_MS, **kwargs) -> bytes:
    return build_batch([(key, value, [], timestamp_ms) for key, value in records], **kwargs)


def append(log: PartitionLog, *records: tuple[bytes, bytes | None], timestamp_ms: int = T0_MS, **kwargs) -> int:
    info = log.append(keyed(*records, timestamp_ms=timestamp_ms, **kwargs), leader_epoch=0, now_ms=T0_MS)
    log.update_high_watermark(log.log_end_offset)
    return info.base_offset


def contents(log: PartitionLog, from_offset: int | None = None) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record, read segment by segment through log.read."""
    result = []
    offset = log.log_start_offset if from_offset is None else from_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20).read()
        if not data:
            break
        for position, header in iter_batches(data):
            batch = memoryview(data)[position : position + header.size]
            verify_crc(batch)
            result += [(record.offset, record.key, record.value) for record in decode_records(batch)]
            offset = header.next_offset
    return result


def segment_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if not path.name.endswith(".snapshot"))


def test_keeps_the_latest_value_of_each_key_at_its_original_offset(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for key, value in [(b"k1", b"a"), (b"k2", b"b"), (b"k1", b"c"), (b"k3", b"d"), (b"k2", b"e")]:
        append(log, (key, value))
    assert log.segment_base_offsets() == [0, 1, 2, 3, 4]
    active_bytes = (log_dir / "00000000000000000004.log").read_bytes()

    result = log.clean(T0_MS)

    # k2=e at offset 4 is in the active segment: never read for the map, never touched.
    assert contents(log) == [(1, b"k2", b"b"), (2, b"k1", b"c"), (3, b"k3", b"d"), (4, b"k2", b"e")]
    batch_bytes = len(keyed((b"k1", b"a")))
    assert result == cleaner.CleanResult(
        first_dirty_offset=0, end_offset=4, segments_before=4, segments_after=4,
        bytes_before=4 * batch_bytes, bytes_after=3 * batch_bytes, records_removed=1,
    )
    assert log.cleaner_checkpoint == 4
    assert log.segment_base_offsets() == [0, 1, 2, 3, 4]
    assert (log_dir / "00000000000000000000.log").stat().st_size == 0
    assert (log_dir / "00000000000000000004.log").read_bytes() == active_bytes
    # Reads from any offset land on the right batch; the log keeps growing.
    assert contents(log, 0)[0] == (1, b"k2", b"b")
    assert contents(log, 3) == [(3, b"k3", b"d"), (4, b"k2", b"e")]
    assert log.offset_for_timestamp(T0_MS) == (1, T0_MS)
    assert append(log, (b"k4", b"f")) == 5
    assert contents(log, 4) == [(4, b"k2", b"e"), (5, b"k4", b"f")]
    # The old files go after file.delete.delay.ms, like retention's.
    assert "00000000000000000000.log.deleted" in segment_files(log_dir)
    log.flush_due(T0_MS + LogConfig().file_delete_delay_ms)
    assert not [name for name in segment_files(log_dir) if name.endswith((".deleted", ".swap", ".cleaned"))]


def test_nothing_dirty_means_no_pass(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    append(log, (b"k1", b"a"))
    assert log.clean(T0_MS) is None  # only the active segment
    append(log, (b"k1", b"b"))
    assert log.clean(T0_MS).end_offset == 1
    assert log.clean(T0_MS) is None  # everything below the active segment is clean
    not_compacted = open_log(log_dir.parent / "plain-0", replace(ONE_BATCH_PER_SEGMENT, cleanup_policy_compact=False))
    for value in (b"a", b"b", b"c"):
        append(not_compacted, (b"k1", value))
    assert not_compacted.clean(T0_MS) is None
    assert [value for _, _, value in contents(not_compacted)] == [b"a", b"b", b"c"]


def test_partly_kept_batch_is_rebuilt_with_its_offsets_and_producer_fields(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    first = keyed((b"k0", b"a"), (b"k1", b"b"), (b"k2", b"c"), producer_id=42, producer_epoch=3, base_sequence=0)
    log.append(first, leader_epoch=7, now_ms=T0_MS)
    log.append(keyed((b"k1", b"B"), producer_id=42, producer_epoch=3, base_sequence=3), leader_epoch=7, now_ms=T0_MS)
    append(log, (b"k9", b"z"))
    log.update_high_watermark(log.log_end_offset)

    assert log.clean(T0_MS).records_removed == 1

    data = (log_dir / "00000000000000000000.log").read_bytes()
    header = read_batch_header(data)
    verify_crc(data)
    assert (header.base_offset, header.last_offset_delta, header.records_count) == (0, 2, 2)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 0)
    assert (header.partition_leader_epoch, header.max_timestamp) == (7, T0_MS)
    assert [(r.offset, r.key, r.value) for r in decode_records(data)] == [(0, b"k0", b"a"), (2, b"k2", b"c")]
    assert contents(log) == [(0, b"k0", b"a"), (2, b"k2", b"c"), (3, b"k1", b"B"), (4, b"k9", b"z")]
    # The idempotent producer's state still follows on from sequence 3.
    assert log.producer_states()[42][:2] == (3, 3)


def test_tombstones_stay_until_delete_retention_ms_after_the_clean_part(log_dir):
    log = open_log(log_dir, replace(ONE_BATCH_PER_SEGMENT, delete_retention_ms=1000))
    append(log, (b"k1", b"a"))
    append(log, (b"k1", None))
    append(log, (b"k2", b"x"), timestamp_ms=T0_MS + 5000)

    log.clean(T0_MS + 5000)
    # No clean part yet: Kafka's delete horizon is 0, the tombstone stays.
    assert contents(log) == [(1, b"k1", None), (2, b"k2", b"x")]

    append(log, (b"k3", b"y"), timestamp_ms=T0_MS + 5000)
    log.clean(T0_MS + 5000)
    # The last clean segment (offset 1, at T0) sets the horizon to T0 - 1000: kept.
    assert contents(log) == [(1, b"k1", None), (2, b"k2", b"x"), (3, b"k3", b"y")]

    append(log, (b"k4", b"z"), timestamp_ms=T0_MS + 5000)
    result = log.clean(T0_MS + 5000)
    # Now the clean part ends with the T0+5000 segment: horizon T0+4000 >= T0, gone.
    assert result.records_removed == 1
    assert contents(log) == [(2, b"k2", b"x"), (3, b"k3", b"y"), (4, b"k4", b"z")]


def test_dirty_ratio_below_min_cleanable_dirty_ratio_waits(log_dir):
    log = open_log(log_dir, replace(ONE_BATCH_PER_SEGMENT, min_cleanable_dirty_ratio=0.5))
    for index in range(5):
        append(log, (b"k%d" % index, b"v"))
    assert log.clean(T0_MS).end_offset == 4  # all dirty: ratio 1
    append(log, (b"k5", b"v"))  # dirty 1 batch, clean 4: 0.2
    assert log.clean(T0_MS) is None
    for index in range(6, 8):
        append(log, (b"k%d" % index, b"v"))
        assert log.clean(T0_MS) is None  # 2/6, 3/7
    append(log, (b"k8", b"v"))  # 4 dirty of 8: 0.5 reaches the ratio
    result = log.clean(T0_MS)
    assert (result.first_dirty_offset, result.end_offset, result.records_removed) == (4, 8, 0)


def test_cleanable_range_stops_at_compaction_lag_and_high_watermark(log_dir):
    log = open_log(log_dir, replace(ONE_BATCH_PER_SEGMENT, min_compaction_lag_ms=60_000))
    append(log, (b"k1", b"a"))
    append(log, (b"k1", b"b"))
    append(log, (b"k1", b"c"), timestamp_ms=T0_MS + 50_000)
    append(log, (b"k1", b"d"), timestamp_ms=T0_MS + 50_000)
    # At T0+60000 only the T0 segments are older than min.compaction.lag.ms.
    assert log.clean(T0_MS + 60_000).end_offset == 2
    assert contents(log) == [(1, b"k1", b"b"), (2, b"k1", b"c"), (3, b"k1", b"d")]

    log.update_high_watermark(2)  # a follower may still lack offset 2
    assert log.clean(T0_MS + 200_000) is None
    log.update_high_watermark(4)
    assert log.clean(T0_MS + 200_000).end_offset == 3
    assert contents(log) == [(2, b"k1", b"c"), (3, b"k1", b"d")]


def test_control_batches_and_transactional_data_are_copied_as_they_are(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    append(log, (b"k1", b"old"))
    transactional = keyed((b"k1", b"in-txn"), producer_id=9, producer_epoch=0, base_sequence=0, is_transactional=True)
    log.append(transactional, leader_epoch=0, now_ms=T0_MS)
    commit = build_batch([(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x03", [], T0_MS)], is_control=True,
                         is_transactional=True, producer_id=9, producer_epoch=0)
    log.append(commit, leader_epoch=0, now_ms=T0_MS, origin=AppendOrigin.COORDINATOR)
    append(log, (b"k1", b"new"))
    append(log, (b"k2", b"x"))
    stored = {offset: (log_dir / f"{offset:020d}.log").read_bytes() for offset in (1, 2)}

    assert log.clean(T0_MS).records_removed == 1

    assert contents(log) == [
        (1, b"k1", b"in-txn"),
        (2, b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x03"),
        (3, b"k1", b"new"),
        (4, b"k2", b"x"),
    ]
    for offset, data in stored.items():
        assert (log_dir / f"{offset:020d}.log").read_bytes() == data


def test_small_segments_merge_into_one_with_working_indexes(log_dir):
    config = LogConfig(segment_ms=10, index_interval_bytes=1, cleanup_policy_compact=True)
    log = open_log(log_dir, config)
    expected = []
    for round_number in range(3):
        for index in range(4):
            offset = append(log, (b"k%d" % index, b"r%d" % round_number), timestamp_ms=T0_MS + offset_time(round_number, index))
            if round_number == 2:
                expected.append((offset, b"k%d" % index, b"r2"))
        assert log.roll_if_due(T0_MS + 10_000 * (round_number + 1))
    append(log, (b"k0", b"active"), timestamp_ms=T0_MS + 100_000)
    assert log.segment_base_offsets() == [0, 4, 8, 12]

    result = log.clean(T0_MS + 100_000)

    assert (result.segments_before, result.segments_after, result.records_removed) == (3, 1, 8)
    assert log.segment_base_offsets() == [0, 12]
    assert contents(log) == expected + [(12, b"k0", b"active")]
    for offset, key, value in expected:  # the rebuilt offset index finds each batch
        assert contents(log, offset)[0] == (offset, key, value)
    assert log.offset_for_timestamp(T0_MS + offset_time(2, 2)) == (10, T0_MS + offset_time(2, 2))
    assert log.max_timestamp() == (T0_MS + 100_000, 12)


def offset_time(round_number: int, index: int) -> int:
    return round_number * 10 + index


def test_restart_after_cleaning_reads_the_same_log(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for key, value in [(b"k1", b"a"), (b"k1", b"b"), (b"k2", b"c"), (b"k1", b"d"), (b"k3", b"e")]:
        append(log, (key, value))
    log.clean(T0_MS)
    before = contents(log)
    assert before == [(2, b"k2", b"c"), (3, b"k1", b"d"), (4, b"k3", b"e")]
    log.close()

    for clean_shutdown in (True, False):
        reopened = open_log(log_dir, ONE_BATCH_PER_SEGMENT, clean_shutdown=clean_shutdown, high_watermark=5)
        assert contents(reopened) == before
        assert reopened.segment_base_offsets() == [0, 1, 2, 3, 4]
        assert (reopened.log_start_offset, reopened.log_end_offset) == (0, 5)
        reopened.close()


def test_manager_cleans_compacted_logs_and_keeps_the_cleaner_checkpoint(tmp_path):
    configs = {"compacted": ONE_BATCH_PER_SEGMENT, "plain": replace(ONE_BATCH_PER_SEGMENT, cleanup_policy_compact=False)}

    def open_manager() -> LogManager:
        return LogManager.open(tmp_path, default_config=LogConfig(), topic_configs=configs.__getitem__,
                               now_ms=T0_MS, node_id=1, cluster_id="gregor-test-cluster")

    manager = open_manager()
    for topic in configs:
        log = manager.create(topic, 0, now_ms=T0_MS)
        for value in (b"a", b"b", b"c"):
            append(log, (b"k", value))
    assert manager.clean_due(T0_MS) == 1
    assert manager.clean_due(T0_MS) == 0
    assert (tmp_path / CLEANER_OFFSET_CHECKPOINT).read_text() == "0\n1\ncompacted 0 2\n"
    assert [value for _, _, value in contents(manager.get("compacted", 0))] == [b"b", b"c"]
    assert [value for _, _, value in contents(manager.get("plain", 0))] == [b"a", b"b", b"c"]
    manager.close()

    manager = open_manager()
    assert manager.get("compacted", 0).cleaner_checkpoint == 2
    assert manager.get("plain", 0).cleaner_checkpoint == 0
    manager.close()


def _fail(*args, **kwargs):
    raise OSError("simulated crash")


def _install_indexes_then_fail(directory: Path, base_offset: int) -> None:
    for suffix in (".index", ".timeindex"):
        cleaner.suffixed(directory, base_offset, suffix, cleaner.SWAP_SUFFIX).replace(
            cleaner.suffixed(directory, base_offset, suffix, ""))
    raise OSError("simulated crash")


@pytest.mark.parametrize("crash_point", ["before_swap", "after_old_renamed", "after_indexes_installed"])
def test_crash_during_the_swap_recovers_the_cleaned_log(log_dir, monkeypatch, crash_point):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for key, value in [(b"k1", b"a"), (b"k2", b"b"), (b"k1", b"c"), (b"k2", b"d"), (b"k3", b"e")]:
        append(log, (key, value))
    if crash_point == "before_swap":
        monkeypatch.setattr(PartitionLog, "_swap_in_cleaned", _fail)
    elif crash_point == "after_old_renamed":
        monkeypatch.setattr(cleaner, "install_swap_files", _fail)
    else:
        monkeypatch.setattr(cleaner, "install_swap_files", _install_indexes_then_fail)
    with pytest.raises(OSError, match="simulated crash"):
        log.clean(T0_MS)
    assert any(name.endswith(".log.swap") for name in segment_files(log_dir))
    monkeypatch.undo()

    # The process dies here: no close. The next open completes the swap.
    recovered = open_log(log_dir, ONE_BATCH_PER_SEGMENT, clean_shutdown=False, high_watermark=5)
    assert contents(recovered) == [(2, b"k1", b"c"), (3, b"k2", b"d"), (4, b"k3", b"e")]
    assert recovered.segment_base_offsets() == [0, 1, 2, 3, 4]
    assert segment_files(log_dir) == sorted(
        f"{offset:020d}{suffix}" for offset in range(5) for suffix in (".log", ".index", ".timeindex")
    ) + ["leader-epoch-checkpoint"]
    assert append(recovered, (b"k4", b"f")) == 5
    assert contents(recovered, 3) == [(3, b"k2", b"d"), (4, b"k3", b"e"), (5, b"k4", b"f")]
    # A later pass starts from scratch (checkpoint 0) and finds nothing more to drop.
    assert recovered.clean(T0_MS).records_removed == 0
    recovered.close()


def test_crash_while_writing_cleaned_files_keeps_the_old_log(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for value in (b"a", b"b", b"c"):
        append(log, (b"k1", value))
    log.close()
    # A half-written .cleaned segment (no .swap yet): dropped at open, nothing replaced.
    (log_dir / "00000000000000000000.log.cleaned").write_bytes(b"\x00" * 30)
    (log_dir / "00000000000000000000.index.cleaned").write_bytes(b"")
    (log_dir / "00000000000000000001.index.swap").write_bytes(b"")  # an index swap without its log swap

    reopened = open_log(log_dir, ONE_BATCH_PER_SEGMENT, clean_shutdown=False, high_watermark=3)

    assert contents(reopened) == [(0, b"k1", b"a"), (1, b"k1", b"b"), (2, b"k1", b"c")]
    assert not [name for name in segment_files(log_dir) if name.endswith((".cleaned", ".swap"))]
    reopened.close()


def test_a_swap_replacing_several_segments_removes_them_all_at_open(log_dir):
    config = LogConfig(segment_ms=10, cleanup_policy_compact=True)
    log = open_log(log_dir, config)
    for index, value in enumerate((b"a", b"b", b"c")):
        append(log, (b"k1", value), timestamp_ms=T0_MS + index)
        log.roll_if_due(T0_MS + 1000 * (index + 1))
    append(log, (b"k2", b"x"), timestamp_ms=T0_MS + 10_000)
    assert log.segment_base_offsets() == [0, 1, 2, 3]
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(PartitionLog, "_swap_in_cleaned", _fail)
    with pytest.raises(OSError):
        log.clean(T0_MS + 10_000)
    monkeypatch.undo()

    recovered = open_log(log_dir, config, clean_shutdown=False, high_watermark=4)

    assert recovered.segment_base_offsets() == [0, 3]
    assert contents(recovered) == [(2, b"k1", b"c"), (3, b"k2", b"x")]
    recovered.close()


def test_segments_deleted_during_a_pass_abandon_it(log_dir, monkeypatch):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for value in (b"a", b"b", b"c", b"d"):
        append(log, (b"k1", value))
    write_cleaned_group = cleaner.write_cleaned_group

    def write_then_delete_records(*args, **kwargs):
        written = write_cleaned_group(*args, **kwargs)
        log.delete_records_before(2, now_ms=T0_MS)  # DeleteRecords retires segments 0 and 1 meanwhile
        return written

    monkeypatch.setattr(cleaner, "write_cleaned_group", write_then_delete_records)

    assert log.clean(T0_MS) is None

    assert log.cleaner_checkpoint == 0
    assert contents(log) == [(2, b"k1", b"c"), (3, b"k1", b"d")]
    assert not [name for name in segment_files(log_dir) if name.endswith((".cleaned", ".swap"))]


def test_appends_continue_while_a_pass_runs_in_another_thread(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for index in range(40):
        append(log, (b"k%d" % (index % 4), b"%d" % index))
    results = []
    worker = threading.Thread(target=lambda: results.append(log.clean(T0_MS)))
    worker.start()
    for index in range(40, 80):
        append(log, (b"k%d" % (index % 4), b"%d" % index))
    worker.join(timeout=30)

    # The pass cleaned up to the active segment it saw when it started (offset 39 or
    # later, as the appends rolled on): below that only each key's latest value
    # survives, the four offsets just below; everything after is intact.
    end_offset = results[0].end_offset
    assert 39 <= end_offset <= 79
    assert contents(log) == [
        (offset, b"k%d" % (offset % 4), b"%d" % offset) for offset in range(end_offset - 4, 80)
    ]


def test_a_write_failure_leaves_no_swap_files_and_the_log_as_it_was(log_dir, monkeypatch):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for value in (b"a", b"b", b"c", b"d"):
        append(log, (b"k1", value))
    write_cleaned_group = cleaner.write_cleaned_group
    calls = []

    def fail_on_the_second_group(*args, **kwargs):
        calls.append(args[1][0].base_offset)
        if len(calls) == 2:
            raise OSError("disk full")
        return write_cleaned_group(*args, **kwargs)

    monkeypatch.setattr(cleaner, "write_cleaned_group", fail_on_the_second_group)
    with pytest.raises(OSError, match="disk full"):
        log.clean(T0_MS)

    assert calls == [0, 1]
    assert not [name for name in segment_files(log_dir) if name.endswith((".cleaned", ".swap"))]
    assert contents(log) == [(0, b"k1", b"a"), (1, b"k1", b"b"), (2, b"k1", b"c"), (3, b"k1", b"d")]
    monkeypatch.undo()
    assert log.clean(T0_MS).records_removed == 2
    assert contents(log) == [(2, b"k1", b"c"), (3, b"k1", b"d")]


def test_truncation_below_the_cleaner_checkpoint_lowers_it(log_dir):
    log = open_log(log_dir, ONE_BATCH_PER_SEGMENT)
    for value in (b"a", b"b", b"c", b"d", b"e"):
        append(log, (b"k1", value))
    assert log.clean(T0_MS).end_offset == 4
    assert log.truncate_to(2, now_ms=T0_MS)
    assert log.cleaner_checkpoint == 2
    assert log.log_end_offset == 2  # not 1: offset 1 was compacted away, not truncated
    assert [append(log, (b"k1", value)) for value in (b"x", b"y", b"z")] == [2, 3, 4]
    # The offsets 2.. written again after the truncation are dirty once more.
    result = log.clean(T0_MS)
    assert (result.first_dirty_offset, result.end_offset, result.records_removed) == (2, 4, 1)
    assert contents(log) == [(3, b"k1", b"y"), (4, b"k1", b"z")]
