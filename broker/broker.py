"""The broker: configuration, topics and their partition logs, request dispatch."""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import trio

from broker.config import BrokerConfig, topic_log_config, validate_topic_configs
from broker.coordinator_log import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC
from broker.handlers import Registration, load_handlers
from broker.log_dirs import ReplicaMover
from broker.metadata import LocalMetadata, TopicInfo
from broker.metrics import BrokerMetrics, NoMetrics
from broker.replication import ReplicaManager
from broker.topics import INTERNAL_TOPICS, collision_key, validate_topic_name
from broker.waiters import PartitionWaiters
from coordinator.producer_ids import ProducerIdManager
from coordinator.replica_assignment import check_topic_layout
from storage.log import LogConfig, PartitionLog
from storage.manager import LogManager, drop_duplicate_logs
from wire.api_keys import ApiKey
from wire.compression import Compression
from wire.errors import ErrorCode, KafkaError, WireError
from wire.protocol import (
    RequestHeader, decode_request_body, decode_request_header, encode_response,
    encode_response_parts,
)

if TYPE_CHECKING:
    from broker.cluster import ClusterRuntime
    from broker.groups import GroupRuntime
    from broker.transactions import TransactionRuntime

log = logging.getLogger(__name__)


CLUSTER_REFRESH_S = 1.0  # the longest a request waits for the view to catch up


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class RequestContext:
    """What a handler may use: the broker, the request header and the peer."""
    broker: "Broker"
    header: RequestHeader
    peer: str

    def now_ms(self) -> int:
        return now_ms()


@dataclass(frozen=True)
class TopicPolicy:
    min_insync_replicas: int
    compression: Compression | None  # None: keep the producer's codec


# compression.type values (Kafka's BrokerCompressionType)
_COMPRESSION_TYPES = {"producer": None, "uncompressed": Compression.NONE,
                      "gzip": Compression.GZIP, "snappy": Compression.SNAPPY,
                      "lz4": Compression.LZ4, "zstd": Compression.ZSTD}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


class Broker:
    def __init__(self, config: BrokerConfig, metadata: LocalMetadata,
                 log_managers: list[LogManager]) -> None:
        self.config = config
        self.metadata = metadata
        self.log_managers = log_managers
        self.handlers: dict[int, Registration] = load_handlers()
        self.waiters = PartitionWaiters()
        self.producer_ids = ProducerIdManager(metadata.producer_id_block_end)
        self.metrics = BrokerMetrics(self) if config.metrics_listen is not None else NoMetrics()
        self._groups: "GroupRuntime | None" = None
        self._transactions: "TransactionRuntime | None" = None
        self._background: trio.Nursery | None = None
        self.advertised: Endpoint | None = None  # set once the listener is bound
        self._policies: dict[str, TopicPolicy] = {}
        self.mover = ReplicaMover(self)
        # Alone, this broker leads every partition it hosts. With zookeeper.connect the
        # cluster runtime connects this manager to its peers and ISR writes
        # (replicas.connect) and applies the partition states.
        if config.zookeeper_connect is None:
            self.replicas = ReplicaManager.standalone_for(self)
        else:
            self.replicas = ReplicaManager(self, config.node_id, lambda _node: None, None)
        self.cluster: "ClusterRuntime | None" = None  # set by the cluster runtime

    @classmethod
    def open(cls, config: BrokerConfig) -> "Broker":
        """Opens (and if needed recovers) every log dir; sync, done before serving."""
        log_dirs = config.log_dirs
        for log_dir in log_dirs:
            log_dir.mkdir(parents=True, exist_ok=True)
        metadata = LocalMetadata.load(log_dirs[0])
        configured_cluster_id = config.cluster_id
        if configured_cluster_id and configured_cluster_id != metadata.cluster_id:
            if metadata.topics or metadata.path.exists():
                raise StartupError(f"cluster.id {configured_cluster_id} does not match the "
                                   f"cluster id {metadata.cluster_id} stored in {metadata.path}")
            metadata.cluster_id = configured_cluster_id
        if metadata.broker_configs:
            config = config.with_dynamic(metadata.broker_configs)
        broker_config = config

        def config_for(topic: str) -> LogConfig:
            info = metadata.topics.get(topic)
            return topic_log_config(info.configs if info else {}, broker_config)

        start_ms = now_ms()
        managers = [LogManager.open(log_dir, default_config=topic_log_config({}, config),
                                    topic_configs=config_for, now_ms=start_ms,
                                    node_id=config.node_id, cluster_id=metadata.cluster_id)
                    for log_dir in log_dirs]
        for log_dir, manager in zip(log_dirs, managers):
            _check_meta_properties(log_dir, manager.meta_properties, config.node_id,
                                   metadata.cluster_id)
        drop_duplicate_logs(managers)
        if not metadata.path.exists():
            metadata.save()
        broker = cls(config, metadata, managers)
        if config.zookeeper_connect is None:
            # In a cluster the partitions assigned here get their logs at the first refresh.
            broker._create_missing_partitions()
            broker._lead_all_partitions()
            # In a cluster the coordinators load a partition when they come to lead it.
            if OFFSETS_TOPIC.name in metadata.topics:
                broker.groups.load()
            if TRANSACTION_STATE_TOPIC.name in metadata.topics:
                broker.transactions.load()
        return broker

    @property
    def groups(self) -> "GroupRuntime":
        """The group coordinator, created on first use: a broker nobody asks about groups
        does not load it (start-up time)."""
        if self._groups is None:
            from broker.groups import GroupRuntime
            self._groups = GroupRuntime(self)
            if self._background is not None:
                self._background.start_soon(self._groups.run_timers)
        return self._groups

    @property
    def transactions(self) -> "TransactionRuntime":
        """The transaction coordinator, created on first use like the group coordinator."""
        if self._transactions is None:
            from broker.transactions import TransactionRuntime
            self._transactions = TransactionRuntime(self)
            if self._background is not None:
                self._background.start_soon(self._transactions.run_timers)
        return self._transactions

    def start_background(self, nursery: trio.Nursery) -> None:
        """Starts the broker's own tasks (maintenance, coordinator timers) in `nursery`."""
        self._background = nursery
        nursery.start_soon(self.run_maintenance)
        nursery.start_soon(self.replicas.run)
        for runtime in (self._groups, self._transactions):
            if runtime is not None:
                nursery.start_soon(runtime.run_timers)

    def spawn(self, async_fn, *args) -> None:
        """Runs a task among the broker's own (a coordinator waiting for replication)."""
        if self._background is None:
            raise RuntimeError("the broker's tasks are not running")
        self._background.start_soon(async_fn, *args)

    def leadership_changed(self, topic: str, partition: int, leading: bool) -> None:
        """The replica manager made this broker leader of a partition, or not any more: the
        coordinator of an internal topic follows its partitions' leadership."""
        if topic == OFFSETS_TOPIC.name:
            runtime = self.groups
        elif topic == TRANSACTION_STATE_TOPIC.name:
            runtime = self.transactions
        else:
            return
        if leading:
            runtime.lead(partition)
        else:
            runtime.resign(partition)

    def use_replica_manager(self, manager: ReplicaManager) -> None:
        """Installs the cluster's replica manager in place of the standalone one (before
        any state is applied); started at once if the broker's tasks already run."""
        self.replicas = manager
        if self._background is not None:
            self._background.start_soon(manager.run)

    @property
    def node_id(self) -> int:
        return self.config.node_id

    def registered_brokers(self) -> list[tuple[int, str, int, str | None]]:
        """(node id, host, port, rack) of every live broker, this one alone without a
        cluster, for Metadata and DescribeCluster."""
        if self.cluster is None:
            endpoint = self.advertised
            return [(self.node_id, endpoint.host, endpoint.port,
                     self.config.value("broker.rack"))]
        return [(registration.id, registration.host, registration.port, registration.rack)
                for registration in self.cluster.live_brokers()]

    @property
    def controller_id(self) -> int:
        if self.cluster is None:
            return self.node_id
        return -1 if self.cluster.controller_id is None else self.cluster.controller_id

    @property
    def cluster_id(self) -> str:
        return self.metadata.cluster_id

    # -- requests --------------------------------------------------------------------

    async def handle(self, frame: bytes, peer: str) -> bytes | list | None:
        """Answers one request frame: its bytes, or parts (bytes and file ranges to send
        with sendfile) for a Fetch; None when no response is due (acks=0).
        Raises WireError for bytes the connection must be closed for."""
        header, body_offset = decode_request_header(frame)
        registration = self.handlers.get(header.api_key)
        if registration is None or header.api_version not in registration.versions:
            if header.api_key == ApiKey.API_VERSIONS:
                # KIP-511: a client newer than us learns our versions from a v0 answer.
                from broker.handlers.api_versions import unsupported_version_body
                return encode_response(header, unsupported_version_body(), api_version=0)
            raise WireError(f"unsupported request: api key {header.api_key} "
                            f"version {header.api_version}")
        request = decode_request_body(header, frame, body_offset)
        context = RequestContext(self, header, peer)
        started = time.perf_counter()
        try:
            response = await registration.handler(context, request)
        except CloseConnection:
            raise
        except KafkaError as exc:
            response = {"error_code": exc.code}
        except Exception:
            log.exception("%s v%d from %s failed", registration.api_key.name,
                          header.api_version, peer)
            response = {"error_code": ErrorCode.UNKNOWN_SERVER_ERROR}
        self.metrics.observe_request(registration.api_key.name, time.perf_counter() - started)
        if response is None:
            return None
        parts = encode_response_parts(header, response)
        return parts[0] if len(parts) == 1 else parts

    # -- partitions --------------------------------------------------------------------

    def partition_log(self, topic: str, partition: int) -> PartitionLog | None:
        manager = self.hosting_manager(topic, partition)
        return None if manager is None else manager.get(topic, partition)

    def hosting_manager(self, topic: str, partition: int) -> LogManager | None:
        """The log manager (log dir) holding the partition's log here, if any."""
        return next((manager for manager in self.log_managers
                     if manager.get(topic, partition) is not None), None)

    def partition_exists(self, topic: str, partition: int) -> bool:
        """Whether the cluster has this partition (hosted here or not)."""
        info = self.metadata.topics.get(topic)
        return info is not None and 0 <= partition < info.partition_count

    async def partitions_exist(self, partitions: Iterable[tuple[str, int]]) -> list[bool]:
        """partition_exists of each. In a cluster a client may name a partition newer than
        this broker's view (a topic just created through another broker): then the view
        is refreshed from ZooKeeper once (at most CLUSTER_REFRESH_S) before it counts as
        unknown."""
        wanted = list(partitions)
        found = [self.partition_exists(topic, index) for topic, index in wanted]
        if self.cluster is not None and not all(found):
            await self.cluster.wait_for_refresh(CLUSTER_REFRESH_S)
            found = [self.partition_exists(topic, index) for topic, index in wanted]
        return found

    def require_partition(self, topic: str, partition: int) -> PartitionLog:
        found = self.partition_log(topic, partition)
        if found is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"This server does not host this topic-partition: {topic}-{partition}")
        return found

    def partition_leader_epoch(self, topic: str, partition: int) -> int:
        """The partition's leader epoch as this broker knows it (-1: not hosted here)."""
        return self.replicas.leader_epoch(topic, partition)

    def topic_policy(self, topic: str) -> "TopicPolicy":
        """The topic configs the produce path applies, derived once per config change."""
        policy = self._policies.get(topic)
        if policy is None:
            configs = self.metadata.topics[topic].configs
            min_insync = configs.get("min.insync.replicas")
            compression = configs.get("compression.type", self.config.value("compression.type"))
            policy = TopicPolicy(
                min_insync_replicas=int(min_insync) if min_insync is not None
                else self.config.value("min.insync.replicas"),
                compression=_COMPRESSION_TYPES[compression])
            self._policies[topic] = policy
        return policy

    def notify_append(self, topic: str, partition: int) -> None:
        self.waiters.notify((topic, partition))

    def _least_loaded_manager(self) -> LogManager:
        return min(self.log_managers, key=lambda manager: len(manager.logs()))

    def _create_missing_partitions(self) -> None:
        """Metadata is written before logs; finish a creation a crash interrupted."""
        for topic in self.metadata.topics.values():
            self._create_logs(topic, range(topic.partition_count))

    def _lead_all_partitions(self) -> None:
        # Alone, this broker is the whole ISR of every partition, so as leader its high
        # watermark is its log end offset (what recovery kept is what was acknowledged).
        for manager in self.log_managers:
            for (topic, partition), partition_log in manager.logs().items():
                info = self.metadata.topics.get(topic)
                self.replicas.lead_locally(topic, partition, partition_log,
                                           info.leader_epoch if info is not None else 0)

    def _create_logs(self, topic: TopicInfo, partitions: Iterable[int]) -> None:
        config = topic_log_config(topic.configs, self.config)
        for partition in partitions:
            if self.partition_log(topic.name, partition) is None:
                # AlterReplicaLogDirs may have named its dir before it was created here.
                manager = (self.mover.preferred.pop((topic.name, partition), None)
                           or self._least_loaded_manager())
                created = manager.create(topic.name, partition, config, topic.topic_id)
                self.replicas.local_log_created(topic.name, partition, created,
                                                topic.leader_epoch)

    def ensure_local_partitions(self, topic: TopicInfo, partitions: Iterable[int]) -> None:
        """Creates the logs of `partitions` of `topic` that this broker does not have yet
        (the cluster runtime: the partitions assigned here)."""
        self._create_logs(topic, partitions)

    def topic_changed(self, name: str) -> None:
        """The topic's configs or partition count changed in the metadata (the cluster
        runtime): re-derive its policies and the configs of its local logs."""
        self._policies.pop(name, None)
        topic = self.metadata.topics.get(name)
        if topic is None:
            return
        log_config = topic_log_config(topic.configs, self.config)
        for manager in self.log_managers:
            for (topic_name, _), partition_log in manager.logs().items():
                if topic_name == name:
                    partition_log.update_config(log_config)

    def drop_local_topic(self, name: str) -> None:
        """Forgets a topic the cluster deleted (or replaced): removes it from the local
        metadata and deletes every local log of it."""
        if name in self.metadata.topics:
            self.metadata.remove_topic(name)
        self._policies.pop(name, None)
        for manager in self.log_managers:
            for (topic_name, partition) in list(manager.logs()):
                if topic_name == name:
                    self.replicas.remove(name, partition)
                    manager.delete(name, partition)
                    self.notify_append(name, partition)

    def drop_local_partition(self, topic: str, partition: int) -> None:
        """Deletes the local log of one partition no longer assigned to this broker (a
        reassignment moved it away), after the replica manager lets go of it."""
        for manager in self.log_managers:
            if manager.get(topic, partition) is not None:
                self.replicas.remove(topic, partition)
                manager.delete(topic, partition)
                self.notify_append(topic, partition)

    # -- topics --------------------------------------------------------------------

    def check_new_topic(self, name: str, partition_count: int, replication_factor: int,
                        configs: dict[str, str | None]) -> dict[str, str]:
        """Validates a CreateTopics entry; returns the config overrides to store."""
        validate_topic_name(name)
        if name in self.metadata.topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        colliding = [other for other in self.metadata.topics
                     if collision_key(other) == collision_key(name)]
        if colliding:
            raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION,
                             f"Topic '{name}' collides with existing topic: {colliding[0]}")
        check_topic_layout(partition_count, replication_factor)
        registered = 1 if self.cluster is None else len(self.cluster.brokers)
        if replication_factor > registered:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                             f"Unable to replicate the partition {replication_factor} time(s): "
                             "The target replication factor of "
                             f"{replication_factor} cannot be reached because only "
                             f"{registered} broker(s) are registered.")
        return self.check_topic_configs(configs)

    @staticmethod
    def check_topic_configs(configs: dict[str, str | None]) -> dict[str, str]:
        from broker.config import ConfigError
        try:
            return validate_topic_configs(configs)
        except ConfigError as exc:
            raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from exc

    def create_topic(self, name: str, partition_count: int, configs: dict[str, str],
                     replication_factor: int = 1,
                     assignment: dict[int, list[int]] | None = None) -> TopicInfo:
        """Creates the topic (in a cluster: writes it to ZooKeeper, where the controller
        takes it up; the local metadata follows at the next refresh)."""
        if self.cluster is not None:
            topic_id = self.cluster.create_topic(name, partition_count, replication_factor,
                                                 configs, assignment)
            return TopicInfo(name=name, topic_id=topic_id, partition_count=partition_count,
                             configs=dict(configs))
        topic = TopicInfo(name=name, topic_id=uuid.uuid4(), partition_count=partition_count,
                          configs=dict(configs))
        self.metadata.add_topic(topic)
        self.metadata.save()
        self._create_logs(topic, range(partition_count))
        log.info("created topic %s with %d partitions (id %s)", name, partition_count,
                 topic.topic_id)
        return topic

    def auto_create_topic(self, name: str) -> TopicInfo:
        replication_factor = 1 if self.cluster is None \
            else self.config.default_replication_factor
        self.check_new_topic(name, self.config.num_partitions, replication_factor, {})
        return self.create_topic(name, self.config.num_partitions, {}, replication_factor)

    def delete_topic(self, name: str) -> TopicInfo:
        if not self.config.delete_topic_enable:
            raise KafkaError(ErrorCode.TOPIC_DELETION_DISABLED, "Topic deletion is disabled.")
        topic = self.metadata.topics.get(name)
        if topic is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             "This server does not host this topic-partition.")
        if self.cluster is not None:
            self.cluster.request_deletion(name)  # the controller deletes it
            return topic
        self.metadata.remove_topic(name)
        self.metadata.save()
        self._policies.pop(name, None)
        for partition in range(topic.partition_count):
            self.replicas.remove(name, partition)
            for manager in self.log_managers:
                if manager.get(name, partition) is not None:
                    manager.delete(name, partition)
            self.notify_append(name, partition)  # waiting fetches see the topic gone
        log.info("deleted topic %s", name)
        return topic

    def add_partitions(self, name: str, new_count: int,
                       assignments: list[list[int]] | None = None) -> None:
        if self.cluster is not None:
            self.cluster.add_partitions(name, new_count, assignments)
            return
        topic = self.metadata.topics[name]
        old_count = topic.partition_count
        topic.partition_count = new_count
        self.metadata.save()
        self._create_logs(topic, range(old_count, new_count))
        log.info("topic %s: partitions %d -> %d", name, old_count, new_count)

    def alter_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        if self.cluster is not None:
            self.cluster.set_topic_configs(name, configs)
        topic = self.metadata.topics[name]
        topic.configs = dict(configs)
        self.metadata.save()
        self._policies.pop(name, None)
        log_config = topic_log_config(topic.configs, self.config)
        for partition in range(topic.partition_count):
            self.require_partition(name, partition).update_config(log_config)

    def alter_broker_configs(self, dynamic: dict[str, str]) -> None:
        """Replaces the dynamic broker configs (validated by the caller) and re-derives
        every topic's log config, since topic defaults come from broker configs."""
        changes: dict[str, str | None] = {key: None for key in self.config.dynamic()}
        changes.update(dynamic)
        self.config = self.config.with_dynamic(changes)
        self.metadata.broker_configs = dict(dynamic)
        self.metadata.save()
        self._policies.clear()
        for topic in self.metadata.topics.values():
            log_config = topic_log_config(topic.configs, self.config)
            for partition in range(topic.partition_count):
                self.require_partition(topic.name, partition).update_config(log_config)

    def is_internal(self, name: str) -> bool:
        return name in INTERNAL_TOPICS

    # -- producer ids --------------------------------------------------------------------

    def allocate_producer_id(self) -> int:
        if self.cluster is not None:
            return self.cluster.allocate_producer_id()
        allocation = self.producer_ids.allocate()
        if allocation.new_block_end is not None:
            self.metadata.producer_id_block_end = allocation.new_block_end
            self.metadata.save()
        return allocation.producer_id

    # -- maintenance --------------------------------------------------------------------

    async def run_maintenance(self) -> None:
        """Retention, checkpoints and time-based flushes, off the trio thread."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._every, lambda: self.config.log_retention_check_interval_ms,
                               self._enforce_retention)
            nursery.start_soon(self._every,
                               lambda: self.config.log_flush_offset_checkpoint_interval_ms,
                               self._checkpoint)
            # flush.ms is per topic; checking once a second bounds its error to 1 s.
            nursery.start_soon(self._every, lambda: 1000, self._flush_due)
            # Dynamic: a new value applies from the next pass.
            nursery.start_soon(self._every, lambda: self.config.value("log.cleaner.backoff.ms"),
                               self._clean_due)

    @staticmethod
    async def _every(interval_ms: Callable[[], int], job) -> None:
        while True:
            await trio.sleep(max(interval_ms(), 10) / 1000)
            try:
                await trio.to_thread.run_sync(job)
            except Exception:
                # A maintenance pass must never take the broker down; the next pass retries.
                log.exception("maintenance job %s failed", job.__name__)

    def _enforce_retention(self) -> None:
        now = now_ms()
        for manager in self.log_managers:
            manager.roll_due(now)  # an idle log's segment.ms: no append would roll it
        deleted = sum(manager.enforce_retention(now) for manager in self.log_managers)
        if deleted:
            log.info("retention deleted %d segment(s)", deleted)

    def _checkpoint(self) -> None:
        for manager in self.log_managers:
            manager.checkpoint()

    def _clean_due(self) -> None:
        now = now_ms()
        cleaned = sum(manager.clean_due(now) for manager in self.log_managers)
        if cleaned:
            log.info("compacted %d log(s)", cleaned)

    def _flush_due(self) -> None:
        for manager in self.log_managers:
            manager.flush_due(now_ms())

    def close(self) -> None:
        self.mover.close()
        for manager in self.log_managers:
            manager.close()
        log.info("logs flushed and checkpointed")


class CloseConnection(WireError):
    """A request answered by closing its connection: an acks=0 produce that failed, as
    Kafka does, so that the client learns something is wrong and refreshes its metadata."""


class StartupError(Exception):
    """The broker cannot start on this data; the message says why."""


def _check_meta_properties(log_dir: Path, properties: dict[str, str], node_id: int,
                           cluster_id: str) -> None:
    # Like Kafka, refuse a log dir that belongs to another node or cluster.
    if properties.get("node.id") != str(node_id):
        raise StartupError(f"{log_dir}/meta.properties has node.id={properties.get('node.id')}, "
                           f"but this broker is node.id={node_id}")
    if properties.get("cluster.id") != cluster_id:
        raise StartupError(f"{log_dir}/meta.properties has cluster.id="
                           f"{properties.get('cluster.id')}, but this cluster is {cluster_id}")


def peer_name(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)

