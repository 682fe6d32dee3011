from __future__ import annotations

from functools import partial

from broker.handlers import answer_partitions, handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3       # KIP-734, v7+
EARLIEST_LOCAL = -4      # KIP-405, v8+
LATEST_TIERED = -5       # KIP-1005, v9+
NO_TIMESTAMP = -1
READ_COMMITTED = 1


@handles(ApiKey.LIST_OFFSETS, versions=range(1, 11))
async def list_offsets(ctx, request) -> dict:
    broker = ctx.broker
    version = ctx.header.api_version
    topics = []
    for topic in request.topics:
        topics.append({"name": topic.name, "partitions": answer_partitions(
            topic.partitions, "partition_index",
            partial(_answer, broker, topic.name, version,
                    version >= 2 and request.isolation_level == READ_COMMITTED),
            {"timestamp": NO_TIMESTAMP, "offset": -1, "leader_epoch": -1})})
    return {"throttle_time_ms": 0, "topics": topics}


def _answer(broker, topic: str, version: int, read_committed: bool, wanted) -> dict:
    offset, timestamp, leader_epoch = _lookup(broker, topic, wanted, version, read_committed)
    return {"timestamp": timestamp, "offset": offset, "leader_epoch": leader_epoch}


def _lookup(broker, topic: str, wanted, version: int,
            read_committed: bool) -> tuple[int, int, int]:
    partition = broker.replicas.leader_partition(topic, wanted.partition_index)
    if version >= 4:
        partition.check_leader_epoch(wanted.current_leader_epoch)
    partition_log = partition.log
    leader_epoch = partition.leader_epoch
    timestamp = wanted.timestamp
    # What the isolation level may read: read_committed ends at the last stable offset.
    end = partition_log.last_stable_offset if read_committed else partition_log.high_watermark
    if timestamp == LATEST:
        return end, NO_TIMESTAMP, leader_epoch
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return partition_log.log_start_offset, NO_TIMESTAMP, leader_epoch
    if timestamp == LATEST_TIERED:
        # No tiered storage: Kafka answers "no offset" for the latest tiered offset.
        return -1, NO_TIMESTAMP, -1
    if timestamp == MAX_TIMESTAMP:
        found = partition_log.max_timestamp()
        if found is None:
            return -1, NO_TIMESTAMP, -1
        max_timestamp, offset = found
        return offset, max_timestamp, leader_epoch
    if timestamp < 0:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown special timestamp {timestamp}")
    found = partition_log.offset_for_timestamp(timestamp)
    if found is None or found[0] >= end:
        return -1, NO_TIMESTAMP, -1
    offset, record_timestamp = found
    return offset, record_timestamp, leader_epoch
