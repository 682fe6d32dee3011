"""ElectLeaders, AlterPartitionReassignments and ListPartitionReassignments.

In a cluster these are the controller's work (broker/cluster.py); as in Kafka's ZooKeeper
mode, a broker that is not the controller answers NOT_CONTROLLER and clients retry at the
controller their Metadata names. A broker alone is its own controller and the only
replica of every partition: the same rules give ELECTION_NOT_NEEDED, and a reassignment
can only name itself."""
from __future__ import annotations

from broker.handlers import handles
from coordinator.replica_assignment import (
    ElectionType,
    LeaderAndIsr,
    ReplicaAssignment,
    elect_leaders as elect_leader,
    plan_reassignment,
)
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

Key = tuple[str, int]


@handles(ApiKey.ELECT_LEADERS, versions=range(0, 3))
async def elect_leaders(ctx, request) -> dict:
    broker = ctx.broker
    version = ctx.header.api_version
    if request.topic_partitions is None:
        wanted = _all_partitions(broker)
    else:
        wanted = list(dict.fromkeys((topic.topic, partition)
                                    for topic in request.topic_partitions
                                    for partition in topic.partitions))
    election_type = request.election_type if version >= 1 else ElectionType.PREFERRED
    if election_type not in tuple(ElectionType):
        # Kafka's ElectionType.valueOf throws: the whole request fails, every partition
        # asked for with UNKNOWN_SERVER_ERROR and no message.
        failed = KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR)
        named = [] if request.topic_partitions is None else wanted
        return _election_response(ErrorCode.UNKNOWN_SERVER_ERROR,
                                  {key: failed for key in named})
    timeout_s = max(request.timeout_ms, 0) / 1000
    if broker.cluster is None:
        results = {key: _elect_alone(broker, key, ElectionType(election_type)) for key in wanted}
    else:
        results = await broker.cluster.elect_leaders(ElectionType(election_type), wanted,
                                                     timeout_s)
    if request.topic_partitions is None:
        # Kafka leaves out the partitions that needed no election when asked for all.
        results = {key: error for key, error in results.items()
                   if error is None or error.code != ErrorCode.ELECTION_NOT_NEEDED}
    return _election_response(ErrorCode.NONE, results)


def _all_partitions(broker) -> list[Key]:
    if broker.cluster is not None:
        return sorted(broker.cluster.partitions)
    return [(name, partition) for name, info in sorted(broker.metadata.topics.items())
            for partition in range(info.partition_count)]


def _elect_alone(broker, key: Key, election_type: ElectionType) -> KafkaError | None:
    topic, partition = key
    if broker.partition_log(topic, partition) is None:
        return KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")
    node = broker.node_id
    leader_epoch = broker.partition_leader_epoch(topic, partition)
    try:
        elect_leader(LeaderAndIsr(node, leader_epoch, (node,)), election_type, [node], {node})
    except KafkaError as exc:
        return exc
    raise AssertionError("a broker alone always leads its partitions")


def _election_response(error_code: ErrorCode, results: dict[Key, KafkaError | None]) -> dict:
    return {"throttle_time_ms": 0, "error_code": error_code,
            "replica_election_results": [
                {"topic": topic, "partition_result": [
                    {"partition_id": partition, **_error_fields(error)}
                    for partition, error in partitions]}
                for topic, partitions in _by_topic(results).items()]}


@handles(ApiKey.ALTER_PARTITION_REASSIGNMENTS, versions=range(0, 1))
async def alter_partition_reassignments(ctx, request) -> dict:
    broker = ctx.broker
    requests = {(topic.name, partition.partition_index):
                None if partition.replicas is None else list(partition.replicas)
                for topic in request.topics for partition in topic.partitions}
    try:
        if broker.cluster is None:
            results = {key: _reassign_alone(broker, key, target)
                       for key, target in requests.items()}
        else:
            results = await broker.cluster.alter_partition_reassignments(
                requests, max(request.timeout_ms, 0) / 1000)
    except KafkaError as exc:  # NOT_CONTROLLER
        return {"throttle_time_ms": 0, "error_code": exc.code,
                "error_message": exc.message or None, "responses": []}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "responses": [{"name": topic, "partitions": [
                {"partition_index": partition, **_error_fields(error)}
                for partition, error in partitions]}
                for topic, partitions in _by_topic(results).items()]}


def _reassign_alone(broker, key: Key, target: list[int] | None) -> KafkaError | None:
    topic, partition = key
    node = broker.node_id
    current = None if broker.partition_log(topic, partition) is None \
        else ReplicaAssignment((node,))
    try:
        plan_reassignment(current, target, {node})
    except KafkaError as exc:
        return exc
    return None  # the target is this broker alone: it holds the partition already


@handles(ApiKey.LIST_PARTITION_REASSIGNMENTS, versions=range(0, 1))
async def list_partition_reassignments(ctx, request) -> dict:
    broker = ctx.broker
    partitions = None if request.topics is None else [
        (topic.name, partition) for topic in request.topics
        for partition in topic.partition_indexes]
    if broker.cluster is None:
        running: dict[Key, ReplicaAssignment] = {}  # one replica: nothing ever moves
    else:
        try:
            running = await broker.cluster.list_partition_reassignments(partitions)
        except KafkaError as exc:  # NOT_CONTROLLER
            return {"throttle_time_ms": 0, "error_code": exc.code,
                    "error_message": exc.message or None, "topics": []}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "topics": [{"name": topic, "partitions": [
                {"partition_index": partition, "replicas": list(assignment.replicas),
                 "adding_replicas": list(assignment.adding_replicas),
                 "removing_replicas": list(assignment.removing_replicas)}
                for partition, assignment in partitions]}
                for topic, partitions in _by_topic(running).items()]}


def _by_topic(results: dict) -> dict[str, list]:
    """(topic, partition) -> value, grouped by topic in first-seen order."""
    grouped: dict[str, list] = {}
    for (topic, partition), value in results.items():
        grouped.setdefault(topic, []).append((partition, value))
    return grouped


def _error_fields(error: KafkaError | None) -> dict:
    if error is None:
        return {"error_code": ErrorCode.NONE, "error_message": None}
    return {"error_code": error.code, "error_message": error.message or None}
