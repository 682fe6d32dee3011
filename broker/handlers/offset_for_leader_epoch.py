from __future__ import annotations

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH, versions=range(0, 5))
async def offset_for_leader_epoch(ctx, request) -> dict:
    broker = ctx.broker
    version = ctx.header.api_version
    topics = []
    for topic in request.topics:
        partitions = []
        for wanted in topic.partitions:
            try:
                partition_log = broker.require_partition(topic.topic, wanted.partition)
                if version >= 2:
                    broker.check_leader_epoch(topic.topic, wanted.current_leader_epoch)
                leader_epoch, end_offset = partition_log.end_offset_for_epoch(wanted.leader_epoch)
                partitions.append({"error_code": ErrorCode.NONE, "partition": wanted.partition,
                                   "leader_epoch": leader_epoch, "end_offset": end_offset})
            except KafkaError as exc:
                partitions.append({"error_code": exc.code, "partition": wanted.partition,
                                   "leader_epoch": -1, "end_offset": -1})
        topics.append({"topic": topic.topic, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
