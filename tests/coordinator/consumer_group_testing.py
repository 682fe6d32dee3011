"""Helpers for the KIP-848 consumer group tests: a coordinator serving every partition,
with topics it is told about and predictable member ids."""
from __future__ import annotations

import itertools
import uuid

from coordinator.groups import GroupConfig, GroupCoordinator, Outcome

GROUP = "payments"
ORDERS = uuid.UUID(int=1)
REFUNDS = uuid.UUID(int=2)
REBALANCE_TIMEOUT_MS = 30_000


def coordinator(topics: dict[str, tuple[uuid.UUID, int]] | None = None, **overrides) -> GroupCoordinator:
    """A coordinator that has loaded every (empty) partition; `topics` (mutable, read at
    every heartbeat) defaults to orders with 6 partitions; new member ids are m1, m2..."""
    topics = topics if topics is not None else {"orders": (ORDERS, 6)}
    config = GroupConfig(**overrides)
    counter = itertools.count(1)
    groups = GroupCoordinator(config, new_uuid=lambda: f"m{next(counter)}", topic_metadata=lambda: topics)
    for partition in range(config.offsets_topic_num_partitions):
        groups.load(partition, [], now_ms=0)
    return groups


def heartbeat(groups: GroupCoordinator, member_id: str, member_epoch: int, *, now_ms: int,
              topics: list[str] | None = None, regex: str | None = None,
              owned: dict[uuid.UUID, list[int]] | None = None, instance_id: str | None = None,
              assignor: str | None = None, rebalance_timeout_ms: int | None = None,
              group_id: str = GROUP) -> Outcome[dict]:
    """A heartbeat; joining (epoch 0) sends the full request by default."""
    joining = member_epoch == 0
    if rebalance_timeout_ms is None:
        rebalance_timeout_ms = REBALANCE_TIMEOUT_MS if joining else -1
    if joining and topics is None and regex is None:
        topics = ["orders"]
    owned_list = [] if joining and owned is None else (
        None if owned is None else [(topic_id, partitions) for topic_id, partitions in owned.items()])
    return groups.consumer_group_heartbeat(
        group_id, member_id, member_epoch, instance_id, None, rebalance_timeout_ms, topics, regex,
        assignor, owned_list, client_id="client", client_host="/127.0.0.1", now_ms=now_ms)


def assigned(response: dict) -> dict[uuid.UUID, list[int]] | None:
    """The response's assignment as {topic id: sorted partitions}; None when absent."""
    if response["assignment"] is None:
        return None
    return {entry["topic_id"]: sorted(entry["partitions"])
            for entry in response["assignment"]["topic_partitions"]}
