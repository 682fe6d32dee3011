from __future__ import annotations

from functools import partial

from broker.handlers import answer_partitions, handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

DEBUG_REPLICA_ID = -2


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH, versions=range(0, 5))
async def offset_for_leader_epoch(ctx, request) -> dict:
    broker = ctx.broker
    version = ctx.header.api_version
    # v3+ names the asker: a follower (>= 0) or a consumer (-1), answered by the leader
    # only; earlier versions carry the default, the debugging id (-2), which Kafka lets
    # ask any replica.
    replica_id = request.replica_id if version >= 3 else DEBUG_REPLICA_ID
    topics = []
    for topic in request.topics:
        topics.append({"topic": topic.topic, "partitions": answer_partitions(
            topic.partitions, "partition",
            partial(_answer, broker, topic.topic, version, replica_id),
            {"leader_epoch": -1, "end_offset": -1})})
    return {"throttle_time_ms": 0, "topics": topics}


def _answer(broker, topic: str, version: int, replica_id: int, wanted) -> dict:
    if replica_id == DEBUG_REPLICA_ID:
        # Kafka's debugging replica id may ask any replica, leader or not.
        found = broker.replicas.get(topic, wanted.partition)
        if found is None:
            broker.require_partition(topic, wanted.partition)
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                             f"{topic}-{wanted.partition} has no replica state here")
    else:
        found = broker.replicas.leader_partition(topic, wanted.partition)
    if version >= 2:
        found.check_leader_epoch(wanted.current_leader_epoch)
    leader_epoch, end_offset = found.log.end_offset_for_epoch(wanted.leader_epoch)
    return {"leader_epoch": leader_epoch, "end_offset": end_offset}
