from __future__ import annotations

import trio

from broker.broker import CLUSTER_REFRESH_S, CloseConnection
from broker.handlers import handles
from broker.handlers.transactions import check_verified, verify_transactional_produce
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError
from wire.records import read_batch_header, recompress

_MESSAGE_CODES = frozenset({ErrorCode.INVALID_RECORD, ErrorCode.INVALID_TIMESTAMP})
_NOT_TRANSACTIONAL: dict = {}  # nothing verified: a request without a transactional id


@handles(ApiKey.PRODUCE, versions=range(3, 12))
async def produce(ctx, request) -> dict | None:
    broker = ctx.broker
    acks = request.acks
    if acks not in (-1, 0, 1):
        error = ErrorCode.INVALID_REQUIRED_ACKS
    else:
        error = None
    now = ctx.now_ms()
    responses = []
    # acks=all: (partition, offset the high watermark must reach, result) of each append
    # the ISR has yet to replicate; acks=1 and acks=0 allocate nothing for it.
    waits: list | None = [] if acks == -1 else None
    if broker.cluster is not None and error is None:
        await _learn_new_leaderships(broker, request)
    verified = _NOT_TRANSACTIONAL
    if request.transactional_id is not None and error is None:
        verified = await verify_transactional_produce(broker, request)
    for topic_data in request.topic_data:
        partitions = []
        for partition_data in topic_data.partition_data:
            if error is not None:
                partitions.append({"index": partition_data.index, "error_code": error,
                                   "base_offset": -1})
                continue
            partitions.append(_append(broker, topic_data.name, partition_data, acks, now,
                                      request.transactional_id, ctx.header.api_version, waits,
                                      verified))
        responses.append({"name": topic_data.name, "partition_responses": partitions})
    if acks == 0:
        failed = [f"{topic['name']}-{partition['index']}: {ErrorCode(partition['error_code']).name}"
                  for topic in responses for partition in topic["partition_responses"]
                  if partition["error_code"] != ErrorCode.NONE]
        if failed:
            raise CloseConnection(f"acks=0 produce failed ({', '.join(failed)})")
        return None
    if waits:
        # Kafka answers a connection's requests in order, so waiting here holds back only
        # this connection, as Kafka's purgatory does.
        await broker.replicas.wait_for_acks(waits, request.timeout_ms)
    return {"responses": responses, "throttle_time_ms": 0}


async def _learn_new_leaderships(broker, request) -> None:
    """A client may learn that this broker leads a partition (from another broker's
    Metadata, or from this one's view, which is updated before the replicas take up their
    roles) before this broker has taken the leadership up. Then wait for the view to
    catch up (bounded) rather than refuse the records, which acks=0 would lose."""
    replicas, cluster, node_id = broker.replicas, broker.cluster, broker.node_id

    def catching_up(topic: str, index: int) -> bool:
        partition = replicas.get(topic, index)
        if partition is not None and partition.is_leader:
            return False
        view = cluster.partition(topic, index)
        return view is None or view.leader == node_id or view.leader not in cluster.brokers

    def any_catching_up() -> bool:
        return any(catching_up(topic_data.name, partition_data.index)
                   for topic_data in request.topic_data
                   for partition_data in topic_data.partition_data)

    deadline = trio.current_time() + CLUSTER_REFRESH_S
    while any_catching_up():
        remaining_s = deadline - trio.current_time()
        if remaining_s <= 0:
            return
        # A refresh under way may have read ZooKeeper before the change: loop for the next.
        await cluster.wait_for_refresh(remaining_s)


def _append(broker, topic: str, partition_data, acks: int, now_ms: int,
            transactional_id: str | None, version: int, waits: list | None,
            verified: dict) -> dict:
    index = partition_data.index
    records = partition_data.records
    try:
        partition = broker.replicas.leader_partition(topic, index)
        partition_log = partition.log
        if broker.is_internal(topic):
            raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION,
                             f"Cannot append to internal topic {topic}")
        if records is None or len(records) == 0:
            raise KafkaError(ErrorCode.INVALID_RECORD, "Produce request carries no records")
        header = read_batch_header(records)
        if header.is_transactional:
            if transactional_id is None:
                # Kafka: transactional records need a transactional id to authorize.
                raise KafkaError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                                 "transactional records without a transactional id")
            check_verified(verified.get((topic, index), ErrorCode.NONE), topic, index, version)
        policy = broker.topic_policy(topic)
        if acks == -1:
            min_insync = policy.min_insync_replicas
            isr = partition.isr
            if len(isr) < min_insync:
                raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS,
                                 f"The size of the current ISR {isr} is insufficient to "
                                 f"satisfy the min.isr requirement of {min_insync} for "
                                 f"partition {topic}-{index}")
        if policy.compression is not None:
            records = recompress(records, policy.compression)
        info = partition_log.append(records, leader_epoch=partition.leader_epoch,
                                    now_ms=now_ms)
    except KafkaError as exc:
        # Kafka sends a message only for record validation failures; clients show their
        # standard wording for the other codes.
        message = exc.message if exc.code in _MESSAGE_CODES else None
        return {"index": index, "error_code": exc.code, "base_offset": -1,
                "error_message": message or None}
    if not info.duplicate:
        # Alone in the ISR, the high watermark follows the log end at once; otherwise it
        # moves as the followers fetch.
        broker.replicas.appended(partition)
        broker.notify_append(topic, index)
        broker.metrics.bytes_in(topic, len(records))
    result = {"index": index, "error_code": ErrorCode.NONE, "base_offset": info.base_offset,
              "log_append_time_ms": info.log_append_time_ms,
              "log_start_offset": info.log_start_offset}
    if waits is not None and partition_log.high_watermark <= info.last_offset:
        waits.append((partition, info.last_offset + 1, result))
    return result
