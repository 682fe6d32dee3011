"""All partition logs of one log directory, with Kafka's checkpoint files and
clean-shutdown marker."""
from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from storage.checkpoint import (
    read_offset_checkpoint,
    uuid_to_kafka,
    write_atomically,
    write_offset_checkpoint,
    write_partition_metadata,
)
from storage.config import LogConfig
from wire.errors import KafkaError
from storage.log import (
    FUTURE_DIRECTORY_SUFFIX,
    PARTITION_METADATA_NAME,
    PartitionLog,
    parse_partition_directory,
)

log = logging.getLogger(__name__)

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
HIGH_WATERMARK_CHECKPOINT = "replication-offset-checkpoint"
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"
CLEAN_SHUTDOWN_MARKER = ".kafka_cleanshutdown"
META_PROPERTIES = "meta.properties"
DELETE_DIRECTORY_SUFFIX = "-delete"


class LogManager:
    def __init__(
        self,
        log_dir: Path,
        default_config: LogConfig,
        topic_configs: Callable[[str], LogConfig],
        logs: dict[tuple[str, int], PartitionLog],
        meta_properties: dict[str, str],
    ) -> None:
        self.log_dir = log_dir
        self.default_config = default_config
        self._topic_configs = topic_configs
        self._logs = logs
        self.meta_properties = meta_properties
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        log_dir: Path,
        *,
        default_config: LogConfig,
        topic_configs: Callable[[str], LogConfig],
        now_ms: int,
        node_id: int = 0,
        cluster_id: str | None = None,
    ) -> "LogManager":
        """Load every `<topic>-<partition>` directory. Without the clean-shutdown marker
        each log re-validates what lies past its recovery point. The marker is removed
        so that a crash from now on is noticed at the next open."""
        log_dir.mkdir(parents=True, exist_ok=True)
        meta_properties = _ensure_meta_properties(log_dir, node_id, cluster_id)
        marker = log_dir / CLEAN_SHUTDOWN_MARKER
        clean_shutdown = marker.exists()
        recovery_points = read_offset_checkpoint(log_dir / RECOVERY_POINT_CHECKPOINT)
        log_start_offsets = read_offset_checkpoint(log_dir / LOG_START_OFFSET_CHECKPOINT)
        high_watermarks = read_offset_checkpoint(log_dir / HIGH_WATERMARK_CHECKPOINT)
        cleaner_offsets = read_offset_checkpoint(log_dir / CLEANER_OFFSET_CHECKPOINT)
        logs: dict[tuple[str, int], PartitionLog] = {}
        for directory in sorted(log_dir.iterdir()):
            if not directory.is_dir():
                continue
            if directory.name.endswith(DELETE_DIRECTORY_SUFFIX):
                shutil.rmtree(directory, ignore_errors=True)  # a delete that a stop interrupted
                continue
            if directory.name.endswith(FUTURE_DIRECTORY_SUFFIX):
                # A move between log dirs that a stop interrupted: the replica it copied is
                # whole where it was; the partial copy goes.
                log.info("removing %s: a replica move between log dirs did not finish",
                         directory)
                shutil.rmtree(directory, ignore_errors=True)
                continue
            try:
                key = parse_partition_directory(directory.name)
            except ValueError:
                continue
            logs[key] = PartitionLog.open(
                directory,
                topic_configs(key[0]),
                topic_id=None,
                recovery_point=recovery_points.get(key, 0),
                log_start_offset=log_start_offsets.get(key, 0),
                high_watermark=high_watermarks.get(key, 0),
                now_ms=now_ms,
                clean_shutdown=clean_shutdown,
            )
            logs[key].cleaner_checkpoint = cleaner_offsets.get(key, 0)
        marker.unlink(missing_ok=True)
        manager = cls(log_dir, default_config, topic_configs, logs, meta_properties)
        manager.checkpoint()
        return manager

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    def logs(self) -> dict[tuple[str, int], PartitionLog]:
        return dict(self._logs)

    def create(
        self,
        topic: str,
        partition: int,
        config: LogConfig | None = None,
        topic_id: uuid.UUID | None = None,
        *,
        now_ms: int | None = None,
    ) -> PartitionLog:
        """The partition's log, created empty (with partition.metadata) if absent.
        `now_ms` (default: the wall clock) starts the first segment's segment.ms age."""
        with self._lock:
            existing = self._logs.get((topic, partition))
            if existing is not None:
                return existing
            directory = self.log_dir / f"{topic}-{partition}"
            directory.mkdir(parents=True, exist_ok=True)
            if topic_id is not None:
                write_partition_metadata(directory / PARTITION_METADATA_NAME, topic_id)
            partition_log = PartitionLog.open(
                directory,
                config or self._topic_configs(topic),
                topic_id=topic_id,
                recovery_point=0,
                log_start_offset=0,
                high_watermark=0,
                clean_shutdown=True,
                now_ms=int(time.time() * 1000) if now_ms is None else now_ms,
            )
            self._logs[(topic, partition)] = partition_log
            return partition_log

    def create_future(self, topic: str, partition: int, config: LogConfig,
                      topic_id: uuid.UUID | None, *, start_offset: int,
                      now_ms: int) -> PartitionLog:
        """An empty log starting at `start_offset` in `<topic>-<partition>.<id>-future`, to
        copy a replica of another log dir into; not one of this manager's logs until
        `adopt_future`."""
        directory = self.log_dir / f"{topic}-{partition}.{uuid.uuid4().hex}{FUTURE_DIRECTORY_SUFFIX}"
        directory.mkdir(parents=True)
        if topic_id is not None:
            write_partition_metadata(directory / PARTITION_METADATA_NAME, topic_id)
        return PartitionLog.open(directory, config, topic_id=topic_id,
                                 recovery_point=start_offset, log_start_offset=start_offset,
                                 high_watermark=start_offset, clean_shutdown=True,
                                 now_ms=now_ms)

    def adopt_future(self, future: PartitionLog, *, high_watermark: int, cleaner_checkpoint: int,
                     now_ms: int) -> PartitionLog:
        """Makes a finished future log this manager's log of its partition: closed, renamed
        to `<topic>-<partition>` and opened again from there."""
        key = (future.topic, future.partition)
        log_start_offset, log_end_offset = future.log_start_offset, future.log_end_offset
        future.close()
        directory = self.log_dir / f"{future.topic}-{future.partition}"
        future.directory.rename(directory)
        with self._lock:
            adopted = PartitionLog.open(directory, self._topic_configs(future.topic),
                                        topic_id=future.topic_id,
                                        recovery_point=log_end_offset,
                                        log_start_offset=log_start_offset,
                                        high_watermark=high_watermark, clean_shutdown=True,
                                        now_ms=now_ms)
            adopted.cleaner_checkpoint = cleaner_checkpoint
            self._logs[key] = adopted
        self.checkpoint()
        return adopted

    @staticmethod
    def discard_future(future: PartitionLog) -> None:
        """Closes and removes a future log whose move was called off."""
        future.close()
        shutil.rmtree(future.directory, ignore_errors=True)

    def delete(self, topic: str, partition: int) -> bool:
        """Close and remove the partition's directory (renamed `-delete` first, as Kafka
        does, so a crash midway leaves nothing that loads as a log)."""
        with self._lock:
            partition_log = self._logs.pop((topic, partition), None)
        if partition_log is None:
            return False
        partition_log.close()
        renamed = self.log_dir / f"{topic}-{partition}.{uuid.uuid4().hex}{DELETE_DIRECTORY_SUFFIX}"
        partition_log.directory.rename(renamed)
        shutil.rmtree(renamed)
        self.checkpoint()
        return True

    def checkpoint(self) -> None:
        """Write the three checkpoint files (each atomically: temp, fsync, rename)."""
        logs = self.logs()
        write_offset_checkpoint(
            self.log_dir / RECOVERY_POINT_CHECKPOINT, {key: log.recovery_point for key, log in logs.items()}
        )
        write_offset_checkpoint(
            self.log_dir / LOG_START_OFFSET_CHECKPOINT, {key: log.log_start_offset for key, log in logs.items()}
        )
        write_offset_checkpoint(
            self.log_dir / HIGH_WATERMARK_CHECKPOINT, {key: log.high_watermark for key, log in logs.items()}
        )

    def update_topic_config(self, topic: str, config: LogConfig) -> None:
        for (log_topic, _), partition_log in self.logs().items():
            if log_topic == topic:
                partition_log.update_config(config)

    def enforce_retention(self, now_ms: int) -> int:
        return sum(self._each_open_log(lambda log: log.enforce_retention(now_ms)))

    def flush_due(self, now_ms: int) -> None:
        """flush.ms, fsync of rolled segments, delayed file deletes, for every log."""
        self._each_open_log(lambda log: log.flush_due(now_ms))

    def roll_due(self, now_ms: int) -> int:
        """Roll every idle active segment older than its segment.ms; returns how many."""
        return sum(self._each_open_log(lambda log: log.roll_if_due(now_ms)))

    def clean_due(self, now_ms: int) -> int:
        """Compact every log whose cleanup.policy has compact and whose dirty ratio is
        due; writes cleaner-offset-checkpoint after a pass. Returns logs cleaned."""
        results = self._each_open_log(
            lambda log: log.clean(now_ms) if log.config.cleanup_policy_compact else None
        )
        cleaned = sum(1 for result in results if result is not None)
        if cleaned:
            self.write_cleaner_checkpoint()
        return cleaned

    def write_cleaner_checkpoint(self) -> None:
        write_offset_checkpoint(
            self.log_dir / CLEANER_OFFSET_CHECKPOINT,
            {key: log.cleaner_checkpoint for key, log in self.logs().items() if log.cleaner_checkpoint > 0},
        )

    def _each_open_log(self, job: Callable[[PartitionLog], int | bool | None]) -> list:
        """Runs a maintenance job on every log; a log closed meanwhile (its topic was
        deleted while the job ran in a worker thread) is skipped, not an error."""
        results = []
        for partition_log in self.logs().values():
            try:
                results.append(job(partition_log))
            except KafkaError:
                if not partition_log.closed:
                    raise
        return results

    def close(self) -> None:
        """Close every log (flush, producer snapshots, trimmed indexes), write the
        checkpoints, then the clean-shutdown marker: the next open skips recovery."""
        logs = self.logs()
        for partition_log in logs.values():
            partition_log.close()
        self.checkpoint()
        write_atomically(self.log_dir / CLEAN_SHUTDOWN_MARKER, b'{"version":0,"BrokerEpoch":-1}')


def drop_duplicate_logs(managers: list[LogManager]) -> None:
    """A stop between the two steps of finishing a move between log dirs (the copy renamed
    into place, the original deleted) leaves a partition in two dirs: keep the copy that
    reaches further (they hold the same batches otherwise), delete the other."""
    holders: dict[tuple[str, int], list[LogManager]] = {}
    for manager in managers:
        for key in manager.logs():
            holders.setdefault(key, []).append(manager)
    for (topic, partition), found in holders.items():
        if len(found) < 2:
            continue
        found.sort(key=lambda manager: manager.get(topic, partition).log_end_offset,
                   reverse=True)
        for manager in found[1:]:
            log.warning("%s-%d is in %s and %s; deleting the copy in %s", topic, partition,
                        found[0].log_dir, manager.log_dir, manager.log_dir)
            manager.delete(topic, partition)


def _ensure_meta_properties(log_dir: Path, node_id: int, cluster_id: str | None) -> dict[str, str]:
    """Read meta.properties, or write Kafka's v1 form (KRaft layout) when it is missing."""
    path = log_dir / META_PROPERTIES
    if path.exists():
        properties = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                properties[key.strip()] = value.strip()
        return properties
    properties = {
        "cluster.id": cluster_id or uuid_to_kafka(uuid.uuid4()),
        "directory.id": uuid_to_kafka(uuid.uuid4()),
        "node.id": str(node_id),
        "version": "1",
    }
    text = "".join(f"{key}={value}\n" for key, value in properties.items())
    write_atomically(path, text.encode("utf-8"))
    return properties
