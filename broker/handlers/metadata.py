from __future__ import annotations

import uuid

from broker.handlers import handles
from broker.topics import validate_topic_name
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


# -- DescribeTopicPartitions (KIP-966) -------------------------------------------------------

_ZERO_UUID = uuid.UUID(int=0)


@handles(ApiKey.DESCRIBE_TOPIC_PARTITIONS, versions=range(0, 1))
async def describe_topic_partitions(ctx, request) -> dict:
    """Metadata's topics and partitions, paged: at most response_partition_limit
    partitions (and max.request.partition.size.limit), from the cursor on, with the cursor
    to go on from (Kafka's DescribeTopicPartitionsRequestHandler and KRaftMetadataCache)."""
    broker = ctx.broker
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    describe_all = not request.topics
    if describe_all:
        names = [name for name in broker.metadata.topics if name >= cursor_topic]
    else:
        names = {topic.name for topic in request.topics if topic.name >= cursor_topic}
        if cursor is not None and cursor.topic_name not in names:
            return _refused(request)  # the topic list must name the cursor's topic
    if cursor is not None and cursor.partition_index < 0:
        return _refused(request)  # a negative cursor partition
    remaining = max(min(broker.config.value("max.request.partition.size.limit"),
                        request.response_partition_limit), 1)
    topics = []
    next_cursor = None
    for name in sorted(names):
        if remaining == 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        info = broker.metadata.topics.get(name)
        if info is None:
            if not describe_all:
                topics.append(_unknown_topic(broker, name))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        end = min(info.partition_count, start + remaining)
        topics.append({"error_code": ErrorCode.NONE, "name": name, "topic_id": info.topic_id,
                       "is_internal": broker.is_internal(name),
                       "partitions": [_described_partition(broker, name, index)
                                      for index in range(start, end)],
                       "topic_authorized_operations": ALL_TOPIC_OPERATIONS})
        if end < info.partition_count:
            next_cursor = {"topic_name": name, "partition_index": end}
            break
        remaining -= max(end - start, 0)
    return {"throttle_time_ms": 0, "topics": topics, "next_cursor": next_cursor}


def _described_partition(broker, topic: str, partition: int) -> dict:
    # KRaft's cache answers NONE for each partition, a leaderless one with leader -1.
    return {**_partition(broker, topic, partition), "error_code": ErrorCode.NONE,
            "eligible_leader_replicas": [], "last_known_elr": []}


def _unknown_topic(broker, name: str) -> dict:
    try:
        validate_topic_name(name)
        error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    except KafkaError as exc:
        error = exc.code
    return {"error_code": error, "name": name, "topic_id": _ZERO_UUID,
            "is_internal": broker.is_internal(name), "partitions": [],
            "topic_authorized_operations": ALL_TOPIC_OPERATIONS}


def _refused(request) -> dict:
    """Kafka's answer to an InvalidRequestException: each requested topic gets
    INVALID_REQUEST (DescribeTopicPartitionsRequest.getErrorResponse)."""
    return {"throttle_time_ms": 0, "next_cursor": None, "topics": [
        {"error_code": ErrorCode.INVALID_REQUEST, "name": topic.name, "topic_id": _ZERO_UUID,
         "is_internal": False, "partitions": [],
         "topic_authorized_operations": NO_AUTHORIZED_OPERATIONS}
        for topic in request.topics]}
