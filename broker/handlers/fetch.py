from __future__ import annotations

import uuid

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

SENDFILE_MIN_BYTES = 64 * 1024
READ_COMMITTED = 1
DEBUG_REPLICA_ID = -2  # Kafka's debugging consumer: may read up to the log end offset
FINAL_SESSION_EPOCH = -1
INITIAL_SESSION_EPOCH = 0


@handles(ApiKey.FETCH, versions=range(4, 18))
async def fetch(ctx, request) -> dict:
    version = ctx.header.api_version
    session_error = _check_session(request, version)
    if session_error is not None:
        return {"error_code": session_error, "session_id": 0, "responses": []}
    broker = ctx.broker
    replica_id = request.replica_state.replica_id if version >= 15 else request.replica_id
    if replica_id >= 0:
        # A follower: this broker has none until replication exists.
        error = ErrorCode.NOT_LEADER_OR_FOLLOWER
    else:
        error = None
    topics = []
    for topic in request.topics:
        if version >= 13:
            info = broker.metadata.topic_by_id(topic.topic_id)
            name, topic_id = (info.name if info else None), topic.topic_id
        else:
            info = broker.metadata.topics.get(topic.topic)
            name, topic_id = topic.topic, (info.topic_id if info else uuid.UUID(int=0))
        topics.append((name, topic_id, topic.partitions))

    read_committed = request.isolation_level == READ_COMMITTED
    deadline_ms = ctx.now_ms() + max(request.max_wait_ms, 0)
    keys = [(name, p.partition) for name, _, partitions in topics for p in partitions]
    while True:
        responses, total_bytes, any_error = _read_all(
            broker, topics, request.max_bytes, read_committed, version, error,
            upto_log_end=replica_id == DEBUG_REPLICA_ID)
        remaining_ms = deadline_ms - ctx.now_ms()
        if total_bytes >= request.min_bytes or any_error or remaining_ms <= 0:
            break
        await broker.waiters.wait_for_append(keys, remaining_ms / 1000)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "session_id": 0,
            "responses": responses}


def _check_session(request, version: int) -> ErrorCode | None:
    """Fetch sessions (KIP-227) are declined: we answer session id 0, so clients send
    full fetches. A client naming a session id we never handed out is told so."""
    if version < 7:
        return None
    if request.session_id != 0:
        return ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    if request.session_epoch not in (INITIAL_SESSION_EPOCH, FINAL_SESSION_EPOCH):
        return ErrorCode.INVALID_FETCH_SESSION_EPOCH
    return None


def _read_all(broker, topics, max_bytes: int, read_committed: bool, version: int,
              error: ErrorCode | None, upto_log_end: bool):
    budget = max_bytes
    total_bytes = 0
    any_error = False
    responses = []
    for name, topic_id, partitions in topics:
        results = []
        for wanted in partitions:
            result, size = _read_partition(broker, name, version, wanted, budget,
                                           min_one_batch=total_bytes == 0,
                                           read_committed=read_committed, error=error,
                                           upto_log_end=upto_log_end)
            if result["error_code"] != ErrorCode.NONE:
                any_error = True
            budget = max(budget - size, 0)
            total_bytes += size
            if size:
                broker.metrics.bytes_out(name, size)
            results.append(result)
        responses.append({"topic": name, "topic_id": topic_id, "partitions": results})
    return responses, total_bytes, any_error


def _read_partition(broker, topic: str | None, version: int, wanted, budget: int, *,
                    min_one_batch: bool, read_committed: bool, error: ErrorCode | None,
                    upto_log_end: bool) -> tuple[dict, int]:
    index = wanted.partition
    empty = {"partition_index": index, "high_watermark": -1, "last_stable_offset": -1,
             "log_start_offset": -1, "aborted_transactions": None, "records": b""}
    if error is not None:
        return {**empty, "error_code": error}, 0
    if topic is None:
        return {**empty, "error_code": ErrorCode.UNKNOWN_TOPIC_ID}, 0
    try:
        partition_log = broker.require_partition(topic, index)
        if version >= 9:
            broker.check_leader_epoch(topic, wanted.current_leader_epoch)
        high_watermark = partition_log.high_watermark
        last_stable_offset = partition_log.last_stable_offset
        if upto_log_end:
            limit = partition_log.log_end_offset
        else:
            # read_committed stops at the last stable offset: nothing of an undecided
            # transaction is shown.
            limit = last_stable_offset if read_committed else high_watermark
        max_bytes = max(min(wanted.partition_max_bytes, budget), 0)
        found = partition_log.read(wanted.fetch_offset, max_bytes, max_offset=limit,
                                   min_one_batch=min_one_batch)
        # Large ranges go from the segment file to the socket with sendfile; small ones
        # are cheaper copied than sent as separate writes.
        data = found if found.size >= SENDFILE_MIN_BYTES else found.read()
        size = found.size
    except KafkaError as exc:
        found = broker.partition_log(topic, index)
        if found is not None:
            empty.update(high_watermark=found.high_watermark,
                         last_stable_offset=found.last_stable_offset,
                         log_start_offset=found.log_start_offset)
        return {**empty, "error_code": exc.code}, 0
    aborted = None
    if read_committed:
        # Every aborted transaction that may overlap what is sent: the client drops their
        # batches. Up to the limit, a superset of the slice's range, as clients expect.
        aborted = [{"producer_id": producer_id, "first_offset": first_offset}
                   for producer_id, first_offset in
                   partition_log.aborted_transactions(wanted.fetch_offset, limit)] if size else []
    return {
        "partition_index": index,
        "error_code": ErrorCode.NONE,
        "high_watermark": high_watermark,
        "last_stable_offset": last_stable_offset,
        "log_start_offset": partition_log.log_start_offset,
        "aborted_transactions": aborted,
        "preferred_read_replica": -1,
        "records": data,
    }, size

