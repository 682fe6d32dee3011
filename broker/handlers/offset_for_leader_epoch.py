from __future__ import annotations

from functools import partial

from broker.handlers import answer_partitions, handles
from wire.api_keys import ApiKey


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH, versions=range(0, 5))
async def offset_for_leader_epoch(ctx, request) -> dict:
    broker = ctx.broker
    version = ctx.header.api_version
    topics = []
    for topic in request.topics:
        topics.append({"topic": topic.topic, "partitions": answer_partitions(
            topic.partitions, "partition", partial(_answer, broker, topic.topic, version),
            {"leader_epoch": -1, "end_offset": -1})})
    return {"throttle_time_ms": 0, "topics": topics}


def _answer(broker, topic: str, version: int, wanted) -> dict:
    partition_log = broker.require_partition(topic, wanted.partition)
    if version >= 2:
        broker.check_leader_epoch(topic, wanted.current_leader_epoch)
    leader_epoch, end_offset = partition_log.end_offset_for_epoch(wanted.leader_epoch)
    return {"leader_epoch": leader_epoch, "end_offset": end_offset}
