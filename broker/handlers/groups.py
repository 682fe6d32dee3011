"""The classic consumer group APIs: thin mappings between the wire and the group
coordinator (coordinator/groups.py) run by broker/groups.py."""
from __future__ import annotations

from typing import Awaitable, Callable

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

GROUP_KEY = 0
TRANSACTION_KEY = 1
# Without an authorizer every group operation is allowed: READ, DELETE, DESCRIBE as bits.
ALL_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
NO_AUTHORIZED_OPERATIONS = -2147483648


def _client_host(ctx) -> str:
    # Kafka reports the client's InetAddress.toString(): "/127.0.0.1".
    return "/" + ctx.peer.rsplit(":", 1)[0]


# -- FindCoordinator ---------------------------------------------------------------

@handles(ApiKey.FIND_COORDINATOR, versions=range(0, 7))
async def find_coordinator(ctx, request) -> dict:
    version = ctx.header.api_version
    keys = list(request.coordinator_keys) if version >= 4 else [request.key]
    key_type = request.key_type if version >= 1 else GROUP_KEY
    coordinators = [_coordinator(ctx.broker, key, key_type) for key in keys]
    if version >= 4:
        return {"throttle_time_ms": 0, "coordinators": coordinators}
    only = coordinators[0]
    return {"throttle_time_ms": 0, "error_code": only["error_code"],
            "error_message": only["error_message"], "node_id": only["node_id"],
            "host": only["host"], "port": only["port"]}


def _coordinator(broker, key: str, key_type: int) -> dict:
    try:
        if key_type == GROUP_KEY:
            node_id, host, port = broker.groups.coordinator_node(key)
        elif key_type == TRANSACTION_KEY:
            node_id, host, port = broker.transactions.coordinator_node(key)
        else:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown coordinator key type {key_type}")
    except KafkaError as exc:
        return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": exc.code,
                "error_message": exc.message or None}
    return {"key": key, "node_id": node_id, "host": host, "port": port,
            "error_code": ErrorCode.NONE, "error_message": None}


# -- membership ---------------------------------------------------------------------

@handles(ApiKey.JOIN_GROUP, versions=range(0, 10))
async def join_group(ctx, request) -> dict:
    version = ctx.header.api_version
    groups = ctx.broker.groups
    response = await groups.call_parked(
        groups.coordinator.join_group, request.group_id, request.member_id,
        request.group_instance_id if version >= 5 else None,
        ctx.header.client_id or "", _client_host(ctx), request.session_timeout_ms,
        # v0 has no rebalance timeout: Kafka uses the session timeout for it.
        request.rebalance_timeout_ms if version >= 1 else request.session_timeout_ms,
        request.protocol_type,
        [(protocol.name, protocol.metadata) for protocol in request.protocols],
        reason=request.reason if version >= 8 else None,
        require_known_member_id=version >= 4, supports_skip_assignment=version >= 9)
    if version < 7 and response.get("protocol_name") is None:
        response = {**response, "protocol_name": ""}  # not nullable before v7
    return {"throttle_time_ms": 0, **response}


@handles(ApiKey.SYNC_GROUP, versions=range(0, 6))
async def sync_group(ctx, request) -> dict:
    version = ctx.header.api_version
    groups = ctx.broker.groups
    response = await groups.call_parked(
        groups.coordinator.sync_group, request.group_id, request.generation_id,
        request.member_id, request.group_instance_id if version >= 3 else None,
        request.protocol_type if version >= 5 else None,
        request.protocol_name if version >= 5 else None,
        [(assignment.member_id, assignment.assignment) for assignment in request.assignments])
    return {"throttle_time_ms": 0, **response}


@handles(ApiKey.HEARTBEAT, versions=range(0, 5))
async def heartbeat(ctx, request) -> dict:
    groups = ctx.broker.groups
    error = await groups.call(groups.coordinator.heartbeat, request.group_id, request.generation_id,
                              request.member_id,
                              request.group_instance_id if ctx.header.api_version >= 3 else None)
    return {"throttle_time_ms": 0, "error_code": error}


@handles(ApiKey.LEAVE_GROUP, versions=range(0, 6))
async def leave_group(ctx, request) -> dict:
    version = ctx.header.api_version
    groups = ctx.broker.groups
    if version >= 3:
        members = [(member.member_id, member.group_instance_id,
                    member.reason if version >= 5 else None) for member in request.members]
    else:
        members = [(request.member_id, None, None)]
    response = await groups.call(groups.coordinator.leave_group, request.group_id, members)
    if version < 3 and response["error_code"] == ErrorCode.NONE and response["members"]:
        # One member, no per-member list before v3: its error is the answer.
        return {"throttle_time_ms": 0, "error_code": response["members"][0]["error_code"]}
    return {"throttle_time_ms": 0, **response}


# -- offsets ---------------------------------------------------------------------------

@handles(ApiKey.OFFSET_COMMIT, versions=range(2, 10))
async def offset_commit(ctx, request) -> dict:
    version = ctx.header.api_version
    groups = ctx.broker.groups
    topics = await commit_offsets(ctx.broker, request.topics, version >= 6, lambda known: groups.call(
        groups.coordinator.offset_commit, request.group_id,
        request.generation_id_or_member_epoch, request.member_id,
        request.group_instance_id if version >= 7 else None,
        request.retention_time_ms if version <= 4 else -1, known,
        report_group_id_not_found=version >= 9))
    return {"throttle_time_ms": 0, "topics": topics}


async def commit_offsets(broker, topics, has_leader_epoch: bool,
                         commit: Callable[[list[tuple]], Awaitable[list[dict]]]) -> list[dict]:
    """OffsetCommit and TxnOffsetCommit: `commit` takes the (topic, partition, offset,
    leader epoch, metadata) of the partitions that exist; the others are answered
    UNKNOWN_TOPIC_OR_PARTITION. Returns the response's topics."""
    entries = [(topic.name, partition.partition_index, partition.committed_offset,
                partition.committed_leader_epoch if has_leader_epoch else -1,
                partition.committed_metadata)
               for topic in topics for partition in topic.partitions]
    exist = await broker.partitions_exist((name, index) for name, index, *_ in entries)
    known = [entry for entry, exists in zip(entries, exist) if exists]
    unknown = [entry for entry, exists in zip(entries, exist) if not exists]
    answered: dict[str, list[dict]] = {}
    if known:
        for topic in await commit(known):
            answered.setdefault(topic["name"], []).extend(topic["partitions"])
    for name, partition, *_ in unknown:
        answered.setdefault(name, []).append(
            {"partition_index": partition, "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION})
    return [{"name": name, "partitions": partitions} for name, partitions in answered.items()]


@handles(ApiKey.OFFSET_FETCH, versions=range(1, 10))
async def offset_fetch(ctx, request) -> dict:
    version = ctx.header.api_version
    groups = ctx.broker.groups
    require_stable = version >= 7 and request.require_stable
    if version >= 8:
        results = [_fetch_group(groups, group.group_id, group.topics, require_stable,
                                *((group.member_id, group.member_epoch) if version >= 9 else ()))
                   for group in request.groups]
        return {"throttle_time_ms": 0, "groups": results}
    result = _fetch_group(groups, request.group_id, request.topics, require_stable)
    if version < 2 and result["error_code"] != ErrorCode.NONE:
        # No group error code before v2: each partition carries it.
        for topic in result["topics"]:
            for partition in topic["partitions"]:
                partition["error_code"] = result["error_code"]
    return {"throttle_time_ms": 0, "topics": result["topics"], "error_code": result["error_code"]}


def _fetch_group(groups, group_id: str, topics, require_stable: bool,
                 member_id: str | None = None, member_epoch: int = -1) -> dict:
    partitions = None if topics is None else [
        (topic.name, index) for topic in topics for index in topic.partition_indexes]
    return groups.query(groups.coordinator.offset_fetch, group_id, partitions, require_stable,
                        member_id, member_epoch, timed=False)


@handles(ApiKey.OFFSET_DELETE, versions=range(0, 1))
async def offset_delete(ctx, request) -> dict:
    groups = ctx.broker.groups
    partitions = [(topic.name, partition.partition_index)
                  for topic in request.topics for partition in topic.partitions]
    response = await groups.call(groups.coordinator.offset_delete, request.group_id, partitions)
    return {"throttle_time_ms": 0, **response}


# -- admin ---------------------------------------------------------------------------

@handles(ApiKey.LIST_GROUPS, versions=range(0, 6))
async def list_groups(ctx, request) -> dict:
    version = ctx.header.api_version
    groups = ctx.broker.groups
    response = groups.query(groups.coordinator.list_groups,
                            list(request.states_filter) if version >= 4 else (),
                            list(request.types_filter) if version >= 5 else (), timed=False)
    return {"throttle_time_ms": 0, **response}


@handles(ApiKey.DESCRIBE_GROUPS, versions=range(0, 6))
async def describe_groups(ctx, request) -> dict:
    groups = ctx.broker.groups
    include_operations = ctx.header.api_version >= 3 and request.include_authorized_operations
    described = groups.query(groups.coordinator.describe_groups, list(request.groups),
                             timed=False)
    for group in described:
        group["authorized_operations"] = ALL_GROUP_OPERATIONS if include_operations \
            else NO_AUTHORIZED_OPERATIONS
    return {"throttle_time_ms": 0, "groups": described}


@handles(ApiKey.DELETE_GROUPS, versions=range(0, 3))
async def delete_groups(ctx, request) -> dict:
    groups = ctx.broker.groups
    results = await groups.call(groups.coordinator.delete_groups, list(request.groups_names))
    return {"throttle_time_ms": 0, "results": results}
