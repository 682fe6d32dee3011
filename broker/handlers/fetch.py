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
    now = ctx.now_ms()
    deadline_ms = now + max(request.max_wait_ms, 0)
    keys = [(name, p.partition) for name, _, partitions in topics for p in partitions]
    refused = None
    if replica_id >= 0:
        # A follower: checked and its progress recorded once, before any waiting.
        refused = _follower_fetch(broker, topics, replica_id, version, now)
    while True:
        responses, total_bytes, any_error = _read_all(
            broker, topics, request.max_bytes, read_committed, version, refused,
            upto_log_end=replica_id >= 0 or replica_id == DEBUG_REPLICA_ID)
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


def _follower_fetch(broker, topics, replica_id: int, version: int, now_ms: int) -> dict:
    """Checks a follower's fetch of each partition (led here, the follower among its
    replicas, its leader epoch current, its log not diverged) and records its progress;
    returns the answers of the partitions that get no records, by (topic, partition)."""
    replicas = broker.replicas
    refused = {}
    for name, _, partitions in topics:
        for wanted in partitions:
            index = wanted.partition
            if name is None:
                continue  # UNKNOWN_TOPIC_ID, answered by the read
            try:
                partition = replicas.leader_partition(name, index)
                state = partition.state
                if state is not None and replica_id not in state.replicas:
                    raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                                     f"broker {replica_id} is not a replica of {name}-{index}")
                if state is None:  # alone: nobody follows
                    raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                                     f"{name}-{index} has no followers")
                if version >= 9:
                    partition.check_leader_epoch(wanted.current_leader_epoch)
            except KafkaError as exc:
                refused[(name, index)] = _empty(index, exc.code, broker.partition_log(name, index))
                continue
            partition_log = partition.log
            last_fetched_epoch = wanted.last_fetched_epoch if version >= 12 else -1
            if last_fetched_epoch >= 0:
                # KIP-595: the follower's log diverged if its last epoch ends earlier here
                # than where it fetches; it truncates to the answer instead of appending.
                epoch, end_offset = partition_log.end_offset_for_epoch(last_fetched_epoch)
                if end_offset >= 0 and (epoch != last_fetched_epoch
                                        or end_offset < wanted.fetch_offset):
                    answer = _empty(index, ErrorCode.NONE, partition_log)
                    answer["diverging_epoch"] = {"epoch": epoch, "end_offset": end_offset}
                    refused[(name, index)] = answer
                    continue
            # The follower's log start offset came with Fetch v5; older fetches leave it unknown.
            replicas.follower_fetched(name, index, replica_id, wanted.fetch_offset, now_ms,
                                      wanted.log_start_offset if version >= 5 else -1)
    return refused


def _empty(index: int, error: ErrorCode, partition_log) -> dict:
    answer = {"partition_index": index, "error_code": error, "high_watermark": -1,
              "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": None,
              "records": b""}
    if partition_log is not None:
        answer.update(high_watermark=partition_log.high_watermark,
                      last_stable_offset=partition_log.last_stable_offset,
                      log_start_offset=partition_log.log_start_offset)
    return answer


def _read_all(broker, topics, max_bytes: int, read_committed: bool, version: int,
              refused: dict | None, upto_log_end: bool):
    budget = max_bytes
    total_bytes = 0
    any_error = False
    responses = []
    for name, topic_id, partitions in topics:
        results = []
        for wanted in partitions:
            if refused is not None and (name, wanted.partition) in refused:
                # Refused, or diverged (KIP-595): answered now, without waiting.
                result, size = refused[(name, wanted.partition)], 0
                any_error = True
            else:
                result, size = _read_partition(broker, name, version, wanted, budget,
                                               min_one_batch=total_bytes == 0,
                                               read_committed=read_committed,
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
                    min_one_batch: bool, read_committed: bool,
                    upto_log_end: bool) -> tuple[dict, int]:
    index = wanted.partition
    if topic is None:
        return _empty(index, ErrorCode.UNKNOWN_TOPIC_ID, None), 0
    try:
        partition = broker.replicas.leader_partition(topic, index)
        if version >= 9:
            partition.check_leader_epoch(wanted.current_leader_epoch)
        partition_log = partition.log
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
        return _empty(index, exc.code, broker.partition_log(topic, index)), 0
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

