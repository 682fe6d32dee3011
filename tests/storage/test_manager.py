"""LogManager: Kafka's data directory files, clean and unclean restarts, create/delete."""
from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from storage.checkpoint import uuid_from_kafka, uuid_to_kafka
from storage.config import LogConfig
from storage.log import AppendInfo
from storage.manager import LogManager
from .storage_testing import T0_MS, batch, values_in

TOPIC_ID = uuid.UUID("3f0d8a5e-1c2b-4d6e-9f70-123456789abc")


def open_manager(log_dir, **topic_overrides) -> LogManager:
    default = LogConfig()
    return LogManager.open(
        log_dir,
        default_config=default,
        topic_configs=lambda topic: replace(default, **topic_overrides.get(topic, {})),
        now_ms=T0_MS,
        node_id=3,
        cluster_id="gregor-test-cluster",
    )


def test_new_directory_gets_meta_properties_and_empty_checkpoints(tmp_path):
    manager = open_manager(tmp_path)
    properties = dict(line.split("=", 1) for line in (tmp_path / "meta.properties").read_text().splitlines())
    assert properties.keys() == {"cluster.id", "directory.id", "node.id", "version"}
    assert (properties["cluster.id"], properties["node.id"], properties["version"]) == ("gregor-test-cluster", "3", "1")
    assert len(uuid_from_kafka(properties["directory.id"]).bytes) == 16
    assert manager.meta_properties == properties
    for name in ("recovery-point-offset-checkpoint", "log-start-offset-checkpoint", "replication-offset-checkpoint"):
        assert (tmp_path / name).read_text() == "0\n0\n"
    assert manager.logs() == {}


def test_create_writes_partition_metadata_like_kafka(tmp_path):
    manager = open_manager(tmp_path)
    log = manager.create("orders", 2, topic_id=TOPIC_ID, now_ms=T0_MS)
    assert manager.create("orders", 2) is log
    assert manager.get("orders", 2) is log and manager.get("orders", 0) is None
    assert (tmp_path / "orders-2" / "partition.metadata").read_text() == f"version: 0\ntopic_id: {uuid_to_kafka(TOPIC_ID)}\n"
    assert uuid_to_kafka(TOPIC_ID) == "Pw2KXhwrTW6fcBI0VniavA"  # Kafka's Uuid.toString form
    assert (log.topic, log.partition, log.topic_id) == ("orders", 2, TOPIC_ID)


def test_close_and_reopen_restores_offsets_from_checkpoints(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    manager = open_manager(tmp_path, **{"my-topic.v2": {"segment_bytes": 2 * len(batch(b"x"))}})
    orders = manager.create("orders", 0, topic_id=TOPIC_ID, now_ms=T0_MS)
    dashed = manager.create("my-topic.v2", 11, now_ms=T0_MS)
    for value in (b"a", b"b", b"c"):
        orders.append(batch(value), leader_epoch=0, now_ms=T0_MS)
    for value in (b"w", b"x", b"y", b"z"):
        dashed.append(batch(value), leader_epoch=0, now_ms=T0_MS)
    orders.update_high_watermark(3)
    dashed.update_high_watermark(4)
    assert dashed.delete_records_before(2) == 2
    manager.close()
    assert (tmp_path / "recovery-point-offset-checkpoint").read_text() == "0\n2\nmy-topic.v2 11 4\norders 0 3\n"
    assert (tmp_path / "log-start-offset-checkpoint").read_text() == "0\n2\nmy-topic.v2 11 2\norders 0 0\n"
    assert (tmp_path / "replication-offset-checkpoint").read_text() == "0\n2\nmy-topic.v2 11 4\norders 0 3\n"
    assert (tmp_path / ".kafka_cleanshutdown").exists()

    manager = open_manager(tmp_path, **{"my-topic.v2": {"segment_bytes": 2 * len(batch(b"x"))}})
    assert not (tmp_path / ".kafka_cleanshutdown").exists()  # a crash from now on is detected
    assert sorted(manager.logs()) == [("my-topic.v2", 11), ("orders", 0)]
    orders, dashed = manager.get("orders", 0), manager.get("my-topic.v2", 11)
    assert (orders.log_start_offset, orders.log_end_offset, orders.high_watermark, orders.topic_id) == (0, 3, 3, TOPIC_ID)
    assert (dashed.log_start_offset, dashed.log_end_offset, dashed.high_watermark, dashed.topic_id) == (2, 4, 4, None)
    assert dashed.config.segment_bytes == 2 * len(batch(b"x"))
    assert values_in(orders.read(0, 1 << 20).read()) == [(0, b"a"), (1, b"b"), (2, b"c")]
    assert values_in(dashed.read(2, 1 << 20).read()) == [(2, b"y"), (3, b"z")]
    assert caplog.records == []


def test_unclean_shutdown_recovers_past_the_recovery_point(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="storage.log")
    manager = open_manager(tmp_path)
    log = manager.create("orders", 0, now_ms=T0_MS)
    for value in (b"a", b"b", b"c"):
        log.append(batch(value), leader_epoch=0, now_ms=T0_MS)
    log.flush()
    manager.checkpoint()  # recovery point 3 on disk
    log.append(batch(b"d"), leader_epoch=0, now_ms=T0_MS)
    segment = tmp_path / "orders-0" / "00000000000000000000.log"
    del manager, log  # crash: no clean-shutdown marker
    with open(segment, "r+b") as file:
        file.truncate(segment.stat().st_size - 1)
    manager = open_manager(tmp_path)
    log = manager.get("orders", 0)
    assert (log.log_end_offset, log.recovery_point) == (3, 3)
    size = len(batch(b"a"))
    assert [record.getMessage() for record in caplog.records] == [
        "recovered partition orders-0: truncated segment 00000000000000000000.log to "
        f"{3 * size} bytes (log end offset 3), dropping {size - 1} bytes: batch at position {3 * size} "
        f"(offset 3) needs {size} bytes, only {size - 1} remain (torn write)"
    ]
    assert log.append(batch(b"d"), leader_epoch=0, now_ms=T0_MS) == AppendInfo(3, 3, -1, 0)


def test_delete_removes_the_partition_directory(tmp_path):
    manager = open_manager(tmp_path)
    log = manager.create("orders", 0, now_ms=T0_MS)
    log.append(batch(b"a"), leader_epoch=0, now_ms=T0_MS)
    held = log.read(0, 1 << 20)
    assert manager.delete("orders", 0) is True
    assert manager.delete("orders", 0) is False
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == []
    assert manager.get("orders", 0) is None
    assert (tmp_path / "recovery-point-offset-checkpoint").read_text() == "0\n0\n"
    assert values_in(held.read()) == [(0, b"a")]  # an in-flight fetch still completes


def test_interrupted_delete_directories_are_removed_at_open(tmp_path):
    leftover = tmp_path / f"orders-0.{uuid.uuid4().hex}-delete"
    leftover.mkdir()
    (leftover / "00000000000000000000.log").write_bytes(b"x")
    open_manager(tmp_path)
    assert not leftover.exists()


def test_retention_and_flush_over_all_logs(tmp_path):
    size = len(batch(b"a"))
    manager = open_manager(tmp_path, orders={"segment_bytes": size, "retention_ms": 1000, "flush_ms": 10,
                                             "file_delete_delay_ms": 0})
    log = manager.create("orders", 0, now_ms=T0_MS)
    for value in (b"a", b"b", b"c"):
        log.append(batch(value), leader_epoch=0, now_ms=T0_MS)
    log.update_high_watermark(3)
    manager.flush_due(T0_MS + 10)
    assert log.recovery_point == 3
    assert manager.roll_due(T0_MS) == 0
    assert manager.enforce_retention(T0_MS + 1001) == 3
    assert (log.log_start_offset, log.segment_base_offsets()) == (3, [3])
    assert sorted(path.name for path in (tmp_path / "orders-0").glob("*.log*")) == ["00000000000000000003.log"]


def test_maintenance_skips_a_log_closed_while_it_runs(tmp_path):
    # A topic deleted while a retention pass runs in a worker thread: its log is closed
    # but still in the pass's snapshot; the pass goes on with the other logs.
    size = len(batch(b"a"))
    manager = open_manager(tmp_path, orders={"segment_bytes": size, "retention_ms": 1000,
                                             "file_delete_delay_ms": 0})
    closed = manager.create("orders", 0, now_ms=T0_MS)
    kept = manager.create("orders", 1, now_ms=T0_MS)
    for value in (b"a", b"b"):
        kept.append(batch(value), leader_epoch=0, now_ms=T0_MS)
    kept.update_high_watermark(2)
    closed.close()
    assert manager.enforce_retention(T0_MS + 1001) == 2
    assert manager.roll_due(T0_MS) == 0
    manager.flush_due(T0_MS)
    assert kept.log_start_offset == 2
