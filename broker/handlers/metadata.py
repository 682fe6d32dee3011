from __future__ import annotations

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

NO_AUTHORIZED_OPERATIONS = -2147483648
# Without an authorizer every operation is allowed: Kafka's AclOperation codes as bits.
ALL_TOPIC_OPERATIONS = 0b1101_1111_1000  # READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
ALL_CLUSTER_OPERATIONS = 0b1_1111_1010_0000  # CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE


@handles(ApiKey.METADATA, versions=range(0, 13))
async def metadata(ctx, request) -> dict:
    broker = ctx.broker
    version = ctx.header.api_version
    # v0: an empty list means all topics; v1+: null means all, empty means none.
    if request.topics is None or (version == 0 and not request.topics):
        names = [name for name in sorted(broker.metadata.topics)]
        requested = [(name, None) for name in names]
    else:
        requested = []
        for entry in request.topics:
            name = entry.name
            if name is None and version >= 10:
                topic = broker.metadata.topic_by_id(entry.topic_id)
                requested.append((topic.name if topic else None, entry.topic_id))
            else:
                requested.append((name, None))
    allow_auto_create = (version < 4 or request.allow_auto_topic_creation) \
        and broker.config.auto_create_topics_enable
    include_topic_ops = version >= 8 and request.include_topic_authorized_operations
    topics = [_topic(ctx, name, topic_id, allow_auto_create, include_topic_ops)
              for name, topic_id in requested]
    body = {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": node, "host": host, "port": port, "rack": rack}
                    for node, host, port, rack in broker.registered_brokers()],
        "cluster_id": broker.cluster_id,
        "controller_id": broker.controller_id,
        "topics": topics,
    }
    if 8 <= version <= 10 and request.include_cluster_authorized_operations:
        body["cluster_authorized_operations"] = ALL_CLUSTER_OPERATIONS
    return body


def _topic(ctx, name, topic_id, allow_auto_create: bool, include_ops: bool) -> dict:
    broker = ctx.broker
    if name is None:
        return {"error_code": ErrorCode.UNKNOWN_TOPIC_ID, "name": None, "topic_id": topic_id,
                "partitions": []}
    topic = broker.metadata.topics.get(name)
    if topic is None:
        try:
            if not allow_auto_create:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            topic = broker.auto_create_topic(name)
        except KafkaError as exc:
            return {"error_code": exc.code, "name": name, "partitions": []}
    return {
        "error_code": ErrorCode.NONE,
        "name": name,
        "topic_id": topic.topic_id,
        "is_internal": broker.is_internal(name),
        "partitions": [_partition(broker, name, partition)
                       for partition in range(topic.partition_count)],
        "topic_authorized_operations": ALL_TOPIC_OPERATIONS if include_ops
        else NO_AUTHORIZED_OPERATIONS,
    }


def _partition(broker, topic: str, partition: int) -> dict:
    cluster = broker.cluster
    if cluster is None:
        node = broker.node_id
        return {"error_code": ErrorCode.NONE, "partition_index": partition, "leader_id": node,
                "leader_epoch": broker.replicas.leader_epoch(topic, partition),
                "replica_nodes": [node], "isr_nodes": [node], "offline_replicas": []}
    view = cluster.partition(topic, partition)
    if view is None:
        return {"error_code": ErrorCode.LEADER_NOT_AVAILABLE, "partition_index": partition,
                "leader_id": -1, "leader_epoch": -1, "replica_nodes": [], "isr_nodes": [],
                "offline_replicas": []}
    live = cluster.brokers
    offline = [node for node in view.replicas if node not in live]
    # Kafka: a partition without a live leader is LEADER_NOT_AVAILABLE; one with a
    # replica down still answers NONE and lists it offline.
    error = ErrorCode.NONE if view.leader in live else ErrorCode.LEADER_NOT_AVAILABLE
    return {"error_code": error, "partition_index": partition,
            "leader_id": view.leader if view.leader in live else -1,
            "leader_epoch": view.leader_epoch, "replica_nodes": view.replicas,
            "isr_nodes": view.isr, "offline_replicas": offline}
