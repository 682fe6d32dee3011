from __future__ import annotations

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

HIGH_WATERMARK = -1  # "delete everything below the high watermark"


@handles(ApiKey.DELETE_RECORDS, versions=range(0, 3))
async def delete_records(ctx, request) -> dict:
    broker = ctx.broker
    topics = []
    for topic in request.topics:
        partitions = []
        for wanted in topic.partitions:
            try:
                partition_log = broker.require_partition(topic.name, wanted.partition_index)
                offset = wanted.offset
                if offset == HIGH_WATERMARK:
                    offset = partition_log.high_watermark
                elif offset < 0:
                    raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                                     f"Cannot delete records before offset {offset}")
                low_watermark = partition_log.delete_records_before(offset)
                partitions.append({"partition_index": wanted.partition_index,
                                   "low_watermark": low_watermark, "error_code": ErrorCode.NONE})
            except KafkaError as exc:
                partitions.append({"partition_index": wanted.partition_index,
                                   "low_watermark": -1, "error_code": exc.code})
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
