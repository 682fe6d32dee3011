"""A coordinator's internal topic (`__consumer_offsets`, `__transaction_state`): created
on first use like Kafka does, written one batch per coordinator outcome, read back in full
when the broker starts so the coordinator's state can be replayed."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, NamedTuple

from storage.log import AppendOrigin
from wire.compression import Compression
from wire.errors import ErrorCode, KafkaError
from wire.records import build_batch, decode_records, iter_batches, parse_end_txn_marker

if TYPE_CHECKING:
    from broker.broker import Broker
    from broker.replication import Partition

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 1 << 20
_CODECS = {0: Compression.NONE, 1: Compression.GZIP, 2: Compression.SNAPPY, 3: Compression.LZ4,
           4: Compression.ZSTD}


@dataclass(frozen=True)
class InternalTopic:
    name: str
    partitions_config: str  # e.g. offsets.topic.num.partitions
    replication_factor_config: str
    segment_bytes_config: str
    compression_config: str | None
    min_isr_config: str | None  # the topic's min.insync.replicas comes from it


OFFSETS_TOPIC = InternalTopic("__consumer_offsets", "offsets.topic.num.partitions",
                              "offsets.topic.replication.factor", "offsets.topic.segment.bytes",
                              "offsets.topic.compression.codec", None)
TRANSACTION_STATE_TOPIC = InternalTopic(
    "__transaction_state", "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor", "transaction.state.log.segment.bytes", None,
    "transaction.state.log.min.isr")


class LogEntry(NamedTuple):
    """One thing read back from an internal topic: a record (`producer_id` set when it was
    written inside a transaction), or a transaction marker (`commit` set, no key)."""

    partition: int
    key: bytes | None
    value: bytes | None
    producer_id: int | None = None
    commit: bool | None = None


class Written(NamedTuple):
    """An append on a partition's leader: done (acks=all) once the high watermark
    reaches `end_offset`."""

    partition: "Partition"
    end_offset: int


class CoordinatorLog:
    def __init__(self, broker: "Broker", topic: InternalTopic) -> None:
        self._broker = broker
        self._topic = topic

    @property
    def name(self) -> str:
        return self._topic.name

    @property
    def partition_count(self) -> int:
        existing = self._broker.metadata.topics.get(self._topic.name)
        if existing is not None:
            return existing.partition_count
        return self._broker.config.value(self._topic.partitions_config)

    def exists(self) -> bool:
        return self._topic.name in self._broker.metadata.topics

    def ensure_topic(self) -> None:
        """Creates the topic on first use; COORDINATOR_NOT_AVAILABLE when its configured
        replication factor cannot be met, as Kafka answers FindCoordinator then. In a
        cluster the topic is written to ZooKeeper: it exists here once the next refresh
        brings it (another broker may be creating it at the same time)."""
        broker = self._broker
        if self._topic.name in broker.metadata.topics:
            return
        replication_factor = broker.config.value(self._topic.replication_factor_config)
        registered = 1 if broker.cluster is None else len(broker.cluster.brokers)
        if replication_factor > registered:
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE,
                             f"{self._topic.replication_factor_config}={replication_factor} "
                             f"needs more brokers than the {registered} registered")
        configs = {"cleanup.policy": "compact", "compression.type": "producer",
                   "segment.bytes": str(broker.config.value(self._topic.segment_bytes_config))}
        if self._topic.min_isr_config is not None:
            configs["min.insync.replicas"] = str(broker.config.value(self._topic.min_isr_config))
        if broker.cluster is None:
            broker.create_topic(self._topic.name, self.partition_count, configs)
            return
        from broker.zookeeper.store import TopicExists  # kazoo: only a clustered broker
        try:
            broker.create_topic(self._topic.name, self.partition_count, configs,
                                replication_factor)
        except TopicExists:
            pass  # another broker created it first

    def append(self, partition: int, records: list[tuple[bytes, bytes | None]],
               now_ms: int, *, producer: tuple[int, int] | None = None) -> "Written":
        """Appends `records` as one batch on this broker, the partition's leader.
        `producer` (id, epoch): the batch belongs to that producer's transaction
        (TxnOffsetCommit). Returns what to wait for before the write counts (acks=all)."""
        codec = Compression.NONE
        if self._topic.compression_config is not None:
            codec = _CODECS.get(self._broker.config.value(self._topic.compression_config),
                                Compression.NONE)
        transactional = {}
        if producer is not None:
            transactional = {"producer_id": producer[0], "producer_epoch": producer[1],
                             "is_transactional": True}
        batch = build_batch([(key, value, [], now_ms) for key, value in records],
                            compression=codec, **transactional)
        replicas = self._broker.replicas
        leader = replicas.leader_partition(self._topic.name, partition)
        info = leader.log.append(batch, leader_epoch=leader.leader_epoch, now_ms=now_ms,
                                 origin=AppendOrigin.COORDINATOR)
        replicas.appended(leader)
        self._broker.notify_append(self._topic.name, partition)
        return Written(leader, info.last_offset + 1)

    def read_all(self) -> Iterator[LogEntry]:
        """Every keyed record and transaction marker of every partition, in log order."""
        if not self.exists():
            return
        for partition in range(self.partition_count):
            yield from self.read_partition(partition)

    def read_partition(self, partition: int) -> Iterator[LogEntry]:
        """Every keyed record and transaction marker of one local partition, in log order,
        up to its log end (Kafka loads a coordinator partition that far)."""
        partition_log = self._broker.require_partition(self._topic.name, partition)
        offset = partition_log.log_start_offset
        end = partition_log.log_end_offset
        while offset < end:
            data = partition_log.read(offset, READ_CHUNK_BYTES, max_offset=end).read()
            if not data:
                break
            for position, header in iter_batches(data, allow_partial_tail=True):
                offset = header.next_offset
                batch = memoryview(data)[position:position + header.size]
                if header.is_control:
                    marker = parse_end_txn_marker(batch)
                    if marker is not None:
                        yield LogEntry(partition, None, None, header.producer_id,
                                       commit=marker.commit)
                    continue
                producer_id = header.producer_id if header.is_transactional else None
                for record in decode_records(batch):
                    if record.key is not None:
                        yield LogEntry(partition, record.key, record.value, producer_id)
