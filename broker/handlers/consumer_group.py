"""The KIP-848 consumer group APIs (ConsumerGroupHeartbeat, ConsumerGroupDescribe): thin
mappings between the wire and the group coordinator (coordinator/consumer_group.py)."""
from __future__ import annotations

from broker.handlers import handles
from broker.handlers.groups import ALL_GROUP_OPERATIONS, NO_AUTHORIZED_OPERATIONS, _client_host
from wire.api_keys import ApiKey


@handles(ApiKey.CONSUMER_GROUP_HEARTBEAT, versions=range(0, 2))
async def consumer_group_heartbeat(ctx, request) -> dict:
    groups = ctx.broker.groups
    owned = None if request.topic_partitions is None else [
        (entry.topic_id, list(entry.partitions)) for entry in request.topic_partitions]
    response = await groups.call(
        groups.coordinator.consumer_group_heartbeat, request.group_id, request.member_id,
        request.member_epoch, request.instance_id, request.rack_id, request.rebalance_timeout_ms,
        None if request.subscribed_topic_names is None else list(request.subscribed_topic_names),
        request.subscribed_topic_regex if ctx.header.api_version >= 1 else None,
        request.server_assignor, owned, ctx.header.client_id or "", _client_host(ctx))
    return {"throttle_time_ms": 0, **response}


@handles(ApiKey.CONSUMER_GROUP_DESCRIBE, versions=range(0, 1))
async def consumer_group_describe(ctx, request) -> dict:
    groups = ctx.broker.groups
    operations = ALL_GROUP_OPERATIONS if request.include_authorized_operations else NO_AUTHORIZED_OPERATIONS
    described = groups.query(groups.coordinator.consumer_group_describe, list(request.group_ids),
                             operations, timed=False)
    return {"throttle_time_ms": 0, "groups": described}
