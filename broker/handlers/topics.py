from __future__ import annotations

from collections import Counter

import trio

from broker.config import describe_topic_configs
from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

DEFAULT = -1  # num_partitions / replication_factor: use the broker's default
DELETION_POLL_S = 0.05


@handles(ApiKey.CREATE_TOPICS, versions=range(0, 8))
async def create_topics(ctx, request) -> dict:
    broker = ctx.broker
    version = ctx.header.api_version
    counts = Counter(topic.name for topic in request.topics)
    results = []
    for topic in request.topics:
        result = {"name": topic.name, "error_code": ErrorCode.NONE, "error_message": None}
        try:
            if counts[topic.name] > 1:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 "Create topics request from client contains duplicate topic names.")
            partition_count, replication_factor, assignment = _layout(broker, topic)
            configs = {config.name: config.value for config in topic.configs}
            null_keys = [key for key, value in configs.items() if value is None]
            if null_keys:
                raise KafkaError(ErrorCode.INVALID_CONFIG,
                                 f"Null value not supported for topic configs: {null_keys[0]}")
            overrides = broker.check_new_topic(topic.name, partition_count, replication_factor,
                                               configs)
            if not request.validate_only:
                created = broker.create_topic(topic.name, partition_count, overrides,
                                              replication_factor, assignment)
                result["topic_id"] = created.topic_id
                if broker.cluster is not None:
                    await broker.cluster.wait_for_topic(topic.name, partition_count,
                                                        max(request.timeout_ms, 0) / 1000)
            if version >= 5:
                result.update(num_partitions=partition_count,
                              replication_factor=replication_factor,
                              configs=[_config(entry) for entry in
                                       describe_topic_configs(overrides, broker.config)])
        except KafkaError as exc:
            result.update(error_code=exc.code, error_message=exc.message or None, configs=None)
        results.append(result)
    return {"throttle_time_ms": 0, "topics": results}


def _layout(broker, topic) -> tuple[int, int, dict[int, list[int]] | None]:
    """(partitions, replication factor, replicas given by the request or None)."""
    if not topic.assignments:
        partition_count = broker.config.num_partitions if topic.num_partitions == DEFAULT \
            else topic.num_partitions
        replication_factor = broker.config.default_replication_factor \
            if topic.replication_factor == DEFAULT else topic.replication_factor
        return partition_count, replication_factor, None
    if topic.num_partitions != DEFAULT or topic.replication_factor != DEFAULT:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         "Both numPartitions or replicationFactor and replicasAssignments were set. "
                         "Both cannot be used at the same time.")
    indexes = sorted(assignment.partition_index for assignment in topic.assignments)
    if indexes != list(range(len(indexes))):
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         "Partitions should be a consecutive 0-based integer sequence")
    replica_sets = [list(assignment.broker_ids) for assignment in topic.assignments]
    _check_replicas(broker, replica_sets)
    assignment = {entry.partition_index: list(entry.broker_ids) for entry in topic.assignments}
    return len(indexes), len(replica_sets[0]), assignment


def _check_replicas(broker, replica_sets: list[list[int]]) -> None:
    if broker.cluster is not None:
        return  # the cluster checks them against the registered brokers, as Kafka
    for replicas in replica_sets:
        if not replicas or len(set(replicas)) != len(replicas):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"Duplicate or empty replica assignment {replicas}")
        unknown = [node for node in replicas if node != broker.node_id]
        if unknown:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"Unknown broker(s) in replica assignment: {unknown}")


def _config(entry) -> dict:
    return {"name": entry.name, "value": entry.value, "read_only": entry.read_only,
            "config_source": entry.source, "is_sensitive": entry.is_sensitive}


@handles(ApiKey.DELETE_TOPICS, versions=range(0, 7))
async def delete_topics(ctx, request) -> dict:
    broker = ctx.broker
    if ctx.header.api_version >= 6:
        wanted = [(topic.name, topic.topic_id) for topic in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    responses = []
    for name, topic_id in wanted:
        result = {"name": name, "topic_id": topic_id, "error_code": ErrorCode.NONE,
                  "error_message": None}
        try:
            if name is None:
                info = broker.metadata.topic_by_id(topic_id)
                if info is None:
                    raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID, f"Topic id {topic_id} not found")
                name = result["name"] = info.name
            deleted = broker.delete_topic(name)
            result["topic_id"] = deleted.topic_id
        except KafkaError as exc:
            result.update(error_code=exc.code, error_message=exc.message or None)
        if result["topic_id"] is None:
            del result["topic_id"]
        responses.append(result)
    if broker.cluster is not None and request.timeout_ms > 0:
        await _wait_until_deleted(broker, [result for result in responses
                                           if result["error_code"] == ErrorCode.NONE],
                                  request.timeout_ms)
    return {"throttle_time_ms": 0, "responses": responses}


async def _wait_until_deleted(broker, results: list[dict], timeout_ms: int) -> None:
    """Kafka's DelayedDeleteTopics: in a cluster the controller deletes the topics; the
    answer waits until this broker's metadata no longer has them (bounded by timeout_ms;
    REQUEST_TIMED_OUT for those still there)."""
    with trio.move_on_after(timeout_ms / 1000):
        while any(result["name"] in broker.metadata.topics for result in results):
            await trio.sleep(DELETION_POLL_S)
            await broker.cluster.wait_for_refresh(timeout_ms / 1000)
    for result in results:
        if result["name"] in broker.metadata.topics:
            result.update(error_code=ErrorCode.REQUEST_TIMED_OUT, error_message=None)


@handles(ApiKey.CREATE_PARTITIONS, versions=range(0, 4))
async def create_partitions(ctx, request) -> dict:
    broker = ctx.broker
    counts = Counter(topic.name for topic in request.topics)
    results = []
    for topic in request.topics:
        try:
            if counts[topic.name] > 1:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 "Create partitions request contains duplicate topic names.")
            info = broker.metadata.topics.get(topic.name)
            if info is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                 f"The topic '{topic.name}' does not exist.")
            if topic.count <= info.partition_count:
                raise KafkaError(ErrorCode.INVALID_PARTITIONS,
                                 f"Topic currently has {info.partition_count} partitions, which is "
                                 f"higher than the requested {topic.count}.")
            if topic.assignments is not None:
                if len(topic.assignments) != topic.count - info.partition_count:
                    raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                     f"Increasing the number of partitions by "
                                     f"{topic.count - info.partition_count} but "
                                     f"{len(topic.assignments)} assignments provided.")
                _check_replicas(broker, [list(a.broker_ids) for a in topic.assignments])
            if not request.validate_only:
                broker.add_partitions(topic.name, topic.count,
                                      None if topic.assignments is None
                                      else [list(a.broker_ids) for a in topic.assignments])
            results.append({"name": topic.name, "error_code": ErrorCode.NONE})
        except KafkaError as exc:
            results.append({"name": topic.name, "error_code": exc.code,
                            "error_message": exc.message or None})
    return {"throttle_time_ms": 0, "results": results}
