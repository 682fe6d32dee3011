from __future__ import annotations

from functools import partial

from broker.handlers import answer_partitions, handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

HIGH_WATERMARK = -1  # "delete everything below the high watermark"


@handles(ApiKey.DELETE_RECORDS, versions=range(0, 3))
async def delete_records(ctx, request) -> dict:
    broker = ctx.broker
    topics = []
    for topic in request.topics:
        topics.append({"name": topic.name, "partitions": answer_partitions(
            topic.partitions, "partition_index", partial(_answer, broker, topic.name),
            {"low_watermark": -1})})
    return {"throttle_time_ms": 0, "topics": topics}


def _answer(broker, topic: str, wanted) -> dict:
    # Kafka also waits until every follower's log start offset reaches the new one (its
    # low watermark); here the followers take it on their next fetch.
    partition_log = broker.replicas.leader_partition(topic, wanted.partition_index).log
    offset = wanted.offset
    if offset == HIGH_WATERMARK:
        offset = partition_log.high_watermark
    elif offset < 0:
        raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                         f"Cannot delete records before offset {offset}")
    return {"low_watermark": partition_log.delete_records_before(offset)}
