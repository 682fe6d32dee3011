"""Reopening a partition log: clean restarts, torn tails, corrupt batches, missing and
corrupt index files. A crash is simulated by dropping the log without close()."""
from __future__ import annotations

import logging
import struct

import pytest

from storage.config import LogConfig
from .storage_testing import T0_MS, batch, open_log, values_in

S = len(batch(b"v" * 100))  # bytes of each test batch
SEGMENT = "00000000000000000000"


def fill(log, count: int, first: int = 0) -> None:
    for i in range(first, first + count):
        assert log.append(batch(b"%03d" % i + b"v" * 97, timestamp_ms=T0_MS + i), leader_epoch=1, now_ms=T0_MS).base_offset == i


def offsets(log) -> list[int]:
    result = []
    for base in log.segment_base_offsets():
        start = max(base, log.log_start_offset)
        if start < log.log_end_offset:
            result += [offset for offset, _ in values_in(log.read(start, 1 << 30).read())]
    return result


@pytest.fixture
def warnings(caplog):
    caplog.set_level(logging.WARNING, logger="storage.log")
    return caplog


def recovery_messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "storage.log"]


def test_clean_restart_finds_everything_and_rewrites_identical_indexes(log_dir, warnings):
    config = LogConfig(segment_bytes=3 * S, index_interval_bytes=0)
    log = open_log(log_dir, config)
    fill(log, 7)
    log.update_high_watermark(7)
    log.close()
    files = {path.name: path.read_bytes() for path in log_dir.iterdir() if path.suffix in (".index", ".timeindex", ".log")}
    log = open_log(log_dir, config, recovery_point=7, high_watermark=7)
    assert (log.log_end_offset, log.high_watermark, log.recovery_point, log.segment_base_offsets()) == (7, 7, 7, [0, 3, 6])
    assert offsets(log) == list(range(7))
    assert log.offset_for_timestamp(T0_MS + 4) == (4, T0_MS + 4)
    fill(log, 1, first=7)
    log.close()
    assert recovery_messages(warnings) == []
    for name, data in files.items():
        if not name.startswith("00000000000000000006"):  # the active segment grew by one batch
            assert (log_dir / name).read_bytes() == data, name


def test_torn_tail_is_truncated_to_the_last_whole_batch(log_dir, warnings):
    log = open_log(log_dir)
    fill(log, 5)
    del log  # crash: no close, indexes still preallocated
    with open(log_dir / f"{SEGMENT}.log", "r+b") as file:
        file.truncate(5 * S - 10)
    log = open_log(log_dir, clean_shutdown=False, recovery_point=0)
    assert (log.log_end_offset, log.recovery_point, offsets(log)) == (4, 4, [0, 1, 2, 3])
    assert recovery_messages(warnings) == [
        f"recovered partition orders-0: truncated segment {SEGMENT}.log to {4 * S} bytes (log end offset 4), "
        f"dropping {S - 10} bytes: batch at position {4 * S} (offset 4) needs {S} bytes, only {S - 10} remain (torn write)"
    ]
    assert (log_dir / f"{SEGMENT}.log").stat().st_size == 4 * S
    assert log.append(batch(b"after"), leader_epoch=1, now_ms=T0_MS).base_offset == 4


def test_tail_shorter_than_a_header_is_truncated(log_dir, warnings):
    log = open_log(log_dir)
    fill(log, 3)
    del log
    with open(log_dir / f"{SEGMENT}.log", "r+b") as file:
        file.truncate(2 * S + 30)
    log = open_log(log_dir, clean_shutdown=False)
    assert (log.log_end_offset, offsets(log)) == (2, [0, 1])
    assert recovery_messages(warnings) == [
        f"recovered partition orders-0: truncated segment {SEGMENT}.log to {2 * S} bytes (log end offset 2), "
        f"dropping 30 bytes: 30 bytes at position {2 * S} are too short for a batch header"
    ]


def test_corrupt_batch_in_the_middle_of_the_active_segment(log_dir, warnings):
    log = open_log(log_dir)
    fill(log, 5)
    del log
    with open(log_dir / f"{SEGMENT}.log", "r+b") as file:
        file.seek(3 * S - 5)  # inside the value of the batch at offset 2
        file.write(b"X")
    log = open_log(log_dir, clean_shutdown=False)
    assert (log.log_end_offset, offsets(log)) == (2, [0, 1])
    assert recovery_messages(warnings) == [
        f"recovered partition orders-0: truncated segment {SEGMENT}.log to {2 * S} bytes (log end offset 2), "
        f"dropping {3 * S} bytes: batch at position {2 * S} (offset 2) fails its CRC check"
    ]
    index = (log_dir / f"{SEGMENT}.index").read_bytes()
    assert index.rstrip(b"\x00") == b""  # no entry: 2 batches never pass index.interval.bytes


def test_corruption_in_an_older_segment_drops_every_later_segment(log_dir, warnings):
    config = LogConfig(segment_bytes=2 * S)
    log = open_log(log_dir, config)
    fill(log, 5)
    assert log.segment_base_offsets() == [0, 2, 4]
    del log
    with open(log_dir / f"{SEGMENT}.log", "r+b") as file:
        file.seek(S + 40)  # the attributes..max_timestamp area of the batch at offset 1
        file.write(b"\xff")
    log = open_log(log_dir, config, clean_shutdown=False, recovery_point=0)
    assert (log.log_end_offset, log.segment_base_offsets(), offsets(log)) == (1, [0], [0])
    assert recovery_messages(warnings) == [
        f"recovered partition orders-0: truncated segment {SEGMENT}.log to {S} bytes (log end offset 1), "
        f"dropping {S} bytes: batch at position {S} (offset 1) fails its CRC check; "
        f"deleted 2 later segment(s) of {3 * S} bytes"
    ]
    assert sorted(path.name for path in log_dir.iterdir()) == [
        f"{SEGMENT}.index", f"{SEGMENT}.log", f"{SEGMENT}.timeindex", "leader-epoch-checkpoint"]
    assert log.append(batch(b"next"), leader_epoch=1, now_ms=T0_MS).base_offset == 1


def test_segments_before_the_recovery_point_are_trusted(log_dir, warnings):
    config = LogConfig(segment_bytes=2 * S)
    log = open_log(log_dir, config)
    fill(log, 5)
    del log
    log = open_log(log_dir, config, clean_shutdown=False, recovery_point=4)
    assert (log.log_end_offset, offsets(log), recovery_messages(warnings)) == (5, [0, 1, 2, 3, 4], [])


def _closed_log_with_indexes(log_dir):
    config = LogConfig(segment_bytes=3 * S, index_interval_bytes=0)
    log = open_log(log_dir, config)
    fill(log, 7)
    log.close()
    return config


def test_missing_index_is_rebuilt_identically(log_dir, warnings):
    config = _closed_log_with_indexes(log_dir)
    original = (log_dir / f"{SEGMENT}.index").read_bytes()
    assert list(struct.iter_unpack(">ii", original)) == [(1, S), (2, 2 * S)]
    (log_dir / f"{SEGMENT}.index").unlink()
    log = open_log(log_dir, config, recovery_point=7)
    assert recovery_messages(warnings) == [
        f"recovered partition orders-0: rebuilt the indexes of segment {SEGMENT}.log "
        f"(index file {SEGMENT}.index is missing)"
    ]
    assert (log_dir / f"{SEGMENT}.index").read_bytes() == original
    assert (log.log_end_offset, offsets(log)) == (7, list(range(7)))


def test_corrupt_offset_index_is_rebuilt(log_dir, warnings):
    config = _closed_log_with_indexes(log_dir)
    name = "00000000000000000003.index"
    original = (log_dir / name).read_bytes()
    (log_dir / name).write_bytes(struct.pack(">iiii", 2, S, 1, 2 * S))  # offsets go backwards
    log = open_log(log_dir, config, recovery_point=7)
    assert recovery_messages(warnings) == [
        "recovered partition orders-0: rebuilt the indexes of segment 00000000000000000003.log "
        f"(corrupt offset index: {name}: entry (4, {2 * S}) does not increase)"
    ]
    assert (log_dir / name).read_bytes() == original
    assert offsets(log) == list(range(7))


def test_index_entry_past_the_segment_end_is_rebuilt(log_dir, warnings):
    config = _closed_log_with_indexes(log_dir)
    (log_dir / f"{SEGMENT}.index").write_bytes(struct.pack(">ii", 1, 10 * S))
    log = open_log(log_dir, config, recovery_point=7)
    assert recovery_messages(warnings) == [
        f"recovered partition orders-0: rebuilt the indexes of segment {SEGMENT}.log "
        f"(corrupt offset index: {SEGMENT}.index: entry (1, {10 * S}) outside the segment)"
    ]
    assert list(struct.iter_unpack(">ii", (log_dir / f"{SEGMENT}.index").read_bytes())) == [(1, S), (2, 2 * S)]
    assert offsets(log) == list(range(7))


def test_corrupt_time_index_is_rebuilt(log_dir, warnings):
    config = _closed_log_with_indexes(log_dir)
    name = f"{SEGMENT}.timeindex"
    original = (log_dir / name).read_bytes()
    assert list(struct.iter_unpack(">qi", original)) == [(T0_MS + 1, 1), (T0_MS + 2, 2)]
    (log_dir / name).write_bytes(struct.pack(">qiqi", T0_MS + 2, 1, T0_MS + 1, 2))
    log = open_log(log_dir, config, recovery_point=7)
    assert recovery_messages(warnings) == [
        f"recovered partition orders-0: rebuilt the indexes of segment {SEGMENT}.log "
        f"(corrupt time index: {name}: entry ({T0_MS + 1}, 2) does not increase)"
    ]
    assert (log_dir / name).read_bytes() == original
    assert log.offset_for_timestamp(T0_MS + 1) == (1, T0_MS + 1)


def test_leader_epochs_are_relearned_from_batches_after_a_crash(log_dir, warnings):
    log = open_log(log_dir)
    log.append(batch(b"a", b"b"), leader_epoch=3, now_ms=T0_MS)
    log.append(batch(b"c"), leader_epoch=6, now_ms=T0_MS)
    del log
    (log_dir / "leader-epoch-checkpoint").unlink()
    log = open_log(log_dir, clean_shutdown=False)
    assert log.leader_epoch_entries() == [(3, 0), (6, 2)]
    assert (log_dir / "leader-epoch-checkpoint").read_text() == "0\n2\n3 0\n6 2\n"
    assert log.end_offset_for_epoch(3) == (3, 2)


def test_truncation_forgets_leader_epochs_past_the_new_end(log_dir, warnings):
    log = open_log(log_dir)
    log.append(batch(b"a"), leader_epoch=3, now_ms=T0_MS)
    log.append(batch(b"b"), leader_epoch=6, now_ms=T0_MS)
    del log
    with open(log_dir / f"{SEGMENT}.log", "r+b") as file:
        file.truncate(len(batch(b"a")) + 1)
    log = open_log(log_dir, clean_shutdown=False)
    assert (log.log_end_offset, log.leader_epoch_entries()) == (1, [(3, 0)])
    assert log.end_offset_for_epoch(6) == (-1, -1)


def test_crash_with_an_empty_active_segment_needs_no_index_rebuild(log_dir, warnings):
    # kill -9 leaves the empty segment's indexes preallocated and all zero: that is
    # padding, not corruption (a rebuild per empty partition made restarts slow).
    log = open_log(log_dir)
    assert (log_dir / f"{SEGMENT}.index").stat().st_size > 0
    log = open_log(log_dir, clean_shutdown=False)
    assert (log.log_end_offset, offsets(log)) == (0, [])
    assert recovery_messages(warnings) == []
