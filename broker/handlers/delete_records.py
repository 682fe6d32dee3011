"""DeleteRecords: the leader moves its log start offset, and the answer waits until
every live replica has moved too (Kafka's DelayedDeleteRecords)."""
from __future__ import annotations

import trio

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

HIGH_WATERMARK = -1  # "delete everything below the high watermark"


@handles(ApiKey.DELETE_RECORDS, versions=range(0, 3))
async def delete_records(ctx, request) -> dict:
    broker = ctx.broker
    topics = []
    waits = []  # (partition, offset every replica's log start must reach, result)
    for topic in request.topics:
        results = []
        for wanted in topic.partitions:
            result = {"partition_index": wanted.partition_index, "low_watermark": -1,
                      "error_code": ErrorCode.NONE}
            try:
                partition = broker.replicas.leader_partition(topic.name, wanted.partition_index)
                result["low_watermark"] = _delete(partition.log, wanted.offset)
            except KafkaError as exc:
                result["error_code"] = exc.code
            else:
                waits.append((partition, result["low_watermark"], result))
            results.append(result)
        topics.append({"name": topic.name, "partitions": results})
    await _wait_for_replicas(broker, waits, request.timeout_ms)
    return {"throttle_time_ms": 0, "topics": topics}


def _delete(partition_log, offset: int) -> int:
    if offset == HIGH_WATERMARK:
        offset = partition_log.high_watermark
    elif offset < 0:
        raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                         f"Cannot delete records before offset {offset}")
    return partition_log.delete_records_before(offset)


async def _wait_for_replicas(broker, waits: list, timeout_ms: int) -> None:
    """Until each partition's low watermark reaches its new log start (the followers
    take it on their next fetch), at most timeout_ms; REQUEST_TIMED_OUT for those that
    do not, NOT_LEADER_OR_FOLLOWER where the leadership moved meanwhile. A lone leader
    waits for nothing."""
    replicas = broker.replicas
    deadline = trio.current_time() + max(timeout_ms, 0) / 1000
    while True:
        outstanding = []
        for partition, offset, result in waits:
            if not partition.is_leader:
                result.update(error_code=ErrorCode.NOT_LEADER_OR_FOLLOWER, low_watermark=-1)
                continue
            low = replicas.low_watermark(partition)
            if low >= offset:
                result["low_watermark"] = low
            else:
                outstanding.append((partition, offset, result))
        waits = outstanding
        remaining_s = deadline - trio.current_time()
        if not waits:
            return
        if remaining_s <= 0:
            for _, _, result in waits:
                result.update(error_code=ErrorCode.REQUEST_TIMED_OUT, low_watermark=-1)
            return
        await broker.waiters.wait_for_append(
            [(partition.topic, partition.partition) for partition, _, _ in waits], remaining_s)
