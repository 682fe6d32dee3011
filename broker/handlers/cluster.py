from __future__ import annotations

import shutil

from broker.handlers import handles
from broker.handlers.metadata import ALL_CLUSTER_OPERATIONS, NO_AUTHORIZED_OPERATIONS
from wire.api_keys import ApiKey
from wire.errors import ErrorCode

BROKERS_ENDPOINT = 1  # KIP-919: endpoint type 2 (controllers) is not served by brokers


@handles(ApiKey.DESCRIBE_CLUSTER, versions=range(0, 2))
async def describe_cluster(ctx, request) -> dict:
    broker = ctx.broker
    if ctx.header.api_version >= 1 and request.endpoint_type != BROKERS_ENDPOINT:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.MISMATCHED_ENDPOINT_TYPE,
                "error_message": "The request was sent to an endpoint of type BROKER, but we "
                                 f"wanted an endpoint of type {request.endpoint_type}",
                "endpoint_type": BROKERS_ENDPOINT, "cluster_id": broker.cluster_id,
                "brokers": []}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "endpoint_type": BROKERS_ENDPOINT,
        "cluster_id": broker.cluster_id,
        "controller_id": broker.controller_id,
        "brokers": [{"broker_id": node, "host": host, "port": port, "rack": rack}
                    for node, host, port, rack in broker.registered_brokers()],
        "cluster_authorized_operations": ALL_CLUSTER_OPERATIONS
        if request.include_cluster_authorized_operations else NO_AUTHORIZED_OPERATIONS,
    }


@handles(ApiKey.DESCRIBE_LOG_DIRS, versions=range(0, 5))
async def describe_log_dirs(ctx, request) -> dict:
    broker = ctx.broker
    wanted = None
    if request.topics is not None:
        wanted = {(topic.topic, partition) for topic in request.topics
                  for partition in topic.partitions}
    results = []
    moves = broker.mover.futures()
    for log_dir, manager in zip(broker.config.log_dirs, broker.log_managers):
        by_topic: dict[str, list[dict]] = {}
        replicas = [(key, partition_log.size_bytes, 0, False)
                    for key, partition_log in manager.logs().items()]
        # A replica on its way here (AlterReplicaLogDirs): Kafka's future replica, its lag
        # how far its copy is behind the replica it will replace.
        replicas += [(key, move.future.size_bytes, move.offset_lag, True)
                     for key, move in moves.items() if move.destination is manager]
        for (topic, partition), size, lag, is_future in sorted(replicas):
            if wanted is not None and (topic, partition) not in wanted:
                continue
            by_topic.setdefault(topic, []).append({
                "partition_index": partition, "partition_size": size,
                "offset_lag": lag, "is_future_key": is_future})
        usage = shutil.disk_usage(log_dir)
        results.append({
            "error_code": ErrorCode.NONE,
            "log_dir": str(log_dir.resolve()),
            "topics": [{"name": name, "partitions": partitions}
                       for name, partitions in by_topic.items()],
            "total_bytes": usage.total,
            "usable_bytes": usage.free,
        })
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results": results}


@handles(ApiKey.ALTER_REPLICA_LOG_DIRS, versions=range(0, 3))
async def alter_replica_log_dirs(ctx, request) -> dict:
    """Moves replicas between this broker's log dirs (broker/log_dirs.py); answered at
    once, as Kafka does: DescribeLogDirs shows a move under way as a future replica."""
    destinations: dict[tuple[str, int], str] = {}
    for directory in request.dirs:
        for topic in directory.topics:
            for partition in topic.partitions:
                destinations[(topic.name, partition)] = directory.path  # the last one wins
    managers = {str(manager.log_dir.resolve()): manager for manager in ctx.broker.log_managers}
    by_topic: dict[str, list[dict]] = {}
    for (topic, partition), path in destinations.items():
        error = ctx.broker.mover.alter(topic, partition, managers.get(path))
        by_topic.setdefault(topic, []).append({"partition_index": partition,
                                               "error_code": error})
    return {"throttle_time_ms": 0, "results": [
        {"topic_name": topic, "partitions": partitions} for topic, partitions in by_topic.items()]}
