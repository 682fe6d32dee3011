"""Server-side partition assignors of the KIP-848 consumer protocol: "uniform" and "range",
after Kafka's group-coordinator assignors (UniformAssignor, RangeAssignor).

An assignor maps members (in the group's member order) and the partition counts of the
subscribed topics (in topic name order) to each member's target assignment. Kafka's
assignors iterate Java HashMaps keyed by random UUIDs; ours iterate in the orders above,
so an assignment is deterministic but may give a different member the same share.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

Assignment = dict[uuid.UUID, frozenset[int]]  # topic id -> partitions; no empty sets

UNIFORM_ASSIGNOR_NAME = "uniform"
RANGE_ASSIGNOR_NAME = "range"


class PartitionAssignorError(Exception):
    """The assignor could not place every partition (Kafka's PartitionAssignorException)."""


@dataclass(frozen=True)
class MemberSubscription:
    instance_id: str | None
    subscribed_topic_ids: frozenset[uuid.UUID]
    assignment: Assignment = field(default_factory=dict)  # the current target assignment


class ServerAssignor(Protocol):
    name: str

    def assign(self, members: dict[str, MemberSubscription],
               partition_counts: dict[uuid.UUID, int]) -> dict[str, Assignment]:
        """The new target assignment of every member (members without partitions map to {})."""


def _frozen(assignment: dict[uuid.UUID, set[int]]) -> Assignment:
    return {topic_id: frozenset(partitions) for topic_id, partitions in assignment.items() if partitions}


def _is_homogeneous(members: dict[str, MemberSubscription]) -> bool:
    subscriptions = {member.subscribed_topic_ids for member in members.values()}
    return len(subscriptions) <= 1


class UniformAssignor:
    """Balance first (member sizes differ by at most one partition), then stickiness
    (members keep what they had where balance allows)."""

    name = UNIFORM_ASSIGNOR_NAME

    def assign(self, members: dict[str, MemberSubscription],
               partition_counts: dict[uuid.UUID, int]) -> dict[str, Assignment]:
        if not members:
            return {}
        if _is_homogeneous(members):
            return self._assign_homogeneous(members, partition_counts)
        return self._assign_heterogeneous(members, partition_counts)

    @staticmethod
    def _assign_homogeneous(members: dict[str, MemberSubscription],
                            partition_counts: dict[uuid.UUID, int]) -> dict[str, Assignment]:
        # Kafka's UniformHomogeneousAssignmentBuilder: every member gets the minimum quota,
        # the first (total % members) members one more; members keep what fits in their
        # quota and the rest is dealt out in topic, then partition order.
        subscribed = next(iter(members.values())).subscribed_topic_ids
        topics = [topic_id for topic_id in partition_counts if topic_id in subscribed]
        if not topics:
            return {member_id: {} for member_id in members}
        if any(topic_id not in partition_counts for topic_id in subscribed):
            raise PartitionAssignorError("members are subscribed to a topic without metadata")
        assigned = {(topic_id, partition)
                    for member in members.values()
                    for topic_id, partitions in member.assignment.items() for partition in partitions}
        unassigned = [(topic_id, partition) for topic_id in topics
                      for partition in range(partition_counts[topic_id])
                      if (topic_id, partition) not in assigned]
        total = sum(partition_counts[topic_id] for topic_id in topics)
        minimum_quota, members_with_extra = divmod(total, len(members))

        target: dict[str, dict[uuid.UUID, set[int]]] = {}
        unfilled: list[tuple[str, int]] = []
        for member_id, member in members.items():
            quota = minimum_quota
            if members_with_extra > 0:
                quota += 1
                members_with_extra -= 1
            kept: dict[uuid.UUID, set[int]] = {}
            for topic_id in sorted(member.assignment, key=_topic_order(topics)):
                if topic_id not in subscribed or topic_id not in partition_counts:
                    continue  # an unsubscribed (or deleted) topic is dropped whole
                for partition in sorted(member.assignment[topic_id]):
                    if partition >= partition_counts[topic_id]:
                        continue
                    if quota > 0:
                        quota -= 1
                        kept.setdefault(topic_id, set()).add(partition)
                    else:
                        unassigned.append((topic_id, partition))
            target[member_id] = kept
            if quota > 0:
                unfilled.append((member_id, quota))

        next_index = 0
        for member_id, quota in unfilled:
            for topic_id, partition in unassigned[next_index:next_index + quota]:
                target[member_id].setdefault(topic_id, set()).add(partition)
            next_index += min(quota, len(unassigned) - next_index)
        if next_index < len(unassigned):
            raise PartitionAssignorError("partitions were left unassigned")
        return {member_id: _frozen(assignment) for member_id, assignment in target.items()}

    @staticmethod
    def _assign_heterogeneous(members: dict[str, MemberSubscription],
                              partition_counts: dict[uuid.UUID, int]) -> dict[str, Assignment]:
        # Members subscribe to different topics. Kafka's UniformHeterogeneousAssignmentBuilder
        # is a longer optimisation; this one keeps the same priorities more simply: members
        # keep their subscribed partitions, every unassigned partition goes to the least
        # loaded subscriber, then partitions move from a member to a subscriber holding at
        # least two fewer until none can.
        topics = list(partition_counts)
        target: dict[str, dict[uuid.UUID, set[int]]] = {member_id: {} for member_id in members}
        owner: dict[tuple[uuid.UUID, int], str] = {}
        for member_id, member in members.items():
            for topic_id, partitions in member.assignment.items():
                if topic_id not in member.subscribed_topic_ids or topic_id not in partition_counts:
                    continue
                for partition in sorted(partitions):
                    if partition < partition_counts[topic_id] and (topic_id, partition) not in owner:
                        owner[(topic_id, partition)] = member_id
                        target[member_id].setdefault(topic_id, set()).add(partition)
        order = {member_id: index for index, member_id in enumerate(members)}

        def size(member_id: str) -> int:
            return sum(len(partitions) for partitions in target[member_id].values())

        def subscribers(topic_id: uuid.UUID) -> list[str]:
            return [member_id for member_id, member in members.items()
                    if topic_id in member.subscribed_topic_ids]

        for topic_id in topics:
            candidates = subscribers(topic_id)
            if not candidates:
                continue
            for partition in range(partition_counts[topic_id]):
                if (topic_id, partition) in owner:
                    continue
                chosen = min(candidates, key=lambda member_id: (size(member_id), order[member_id]))
                owner[(topic_id, partition)] = chosen
                target[chosen].setdefault(topic_id, set()).add(partition)

        moved = True
        while moved:
            moved = False
            for (topic_id, partition), current in sorted(owner.items(), key=lambda item: (
                    -size(item[1]), order[item[1]], topics.index(item[0][0]), item[0][1])):
                lighter = [member_id for member_id in subscribers(topic_id)
                           if size(member_id) < size(current) - 1]
                if lighter:
                    chosen = min(lighter, key=lambda member_id: (size(member_id), order[member_id]))
                    target[current][topic_id].discard(partition)
                    target[chosen].setdefault(topic_id, set()).add(partition)
                    owner[(topic_id, partition)] = chosen
                    moved = True
                    break
        return {member_id: _frozen(assignment) for member_id, assignment in target.items()}


def _topic_order(topics: list[uuid.UUID]):
    position = {topic_id: index for index, topic_id in enumerate(topics)}
    return lambda topic_id: (position.get(topic_id, len(position)), str(topic_id))


class RangeAssignor:
    """Per topic, consecutive ranges of partitions to the members subscribed to it, sorted
    by instance id (static members first) then member id; the first (partitions %
    members) members get one more (Kafka's server-side RangeAssignor, not sticky)."""

    name = RANGE_ASSIGNOR_NAME

    def assign(self, members: dict[str, MemberSubscription],
               partition_counts: dict[uuid.UUID, int]) -> dict[str, Assignment]:
        ordered = sorted(members, key=lambda member_id: (
            (0, members[member_id].instance_id) if members[member_id].instance_id is not None
            else (1, member_id)))
        target: dict[str, dict[uuid.UUID, set[int]]] = {member_id: {} for member_id in members}
        for topic_id, partition_count in partition_counts.items():
            subscribers = [member_id for member_id in ordered
                           if topic_id in members[member_id].subscribed_topic_ids]
            if not subscribers:
                continue
            minimum_quota, extra = divmod(partition_count, len(subscribers))
            start = 0
            for member_id in subscribers:
                quota = minimum_quota + (1 if extra > 0 else 0)
                extra -= 1 if extra > 0 else 0
                end = min(start + quota, partition_count)
                if start < end:
                    target[member_id][topic_id] = set(range(start, end))
                start = end
        for member_id, member in members.items():
            if any(topic_id not in partition_counts for topic_id in member.subscribed_topic_ids):
                raise PartitionAssignorError("member is subscribed to a non-existent topic")
        return {member_id: _frozen(assignment) for member_id, assignment in target.items()}


_BY_CONFIG_NAME = {
    UNIFORM_ASSIGNOR_NAME: UniformAssignor,
    "org.apache.kafka.coordinator.group.assignor.UniformAssignor": UniformAssignor,
    RANGE_ASSIGNOR_NAME: RangeAssignor,
    "org.apache.kafka.coordinator.group.assignor.RangeAssignor": RangeAssignor,
}


def assignor_for(config_name: str) -> ServerAssignor:
    """The assignor a `group.consumer.assignors` entry names (Kafka's class name or the
    assignor's short name); ValueError for any other."""
    assignor_class = _BY_CONFIG_NAME.get(config_name.strip())
    if assignor_class is None:
        raise ValueError(f"group.consumer.assignors: unknown assignor {config_name!r} "
                         f"(known: {', '.join(sorted(_BY_CONFIG_NAME))})")
    return assignor_class()
