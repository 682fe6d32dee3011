"""KIP-848 consumer groups: the ConsumerGroupHeartbeat and ConsumerGroupDescribe state
machine, after Kafka's GroupMetadataManager, ConsumerGroup, ConsumerGroupMember and
CurrentAssignmentBuilder (group-coordinator module, Kafka 4).

The group coordinator (coordinator/groups.py) owns one `ConsumerGroupProtocol`; it shares
its timers, its records-then-replay discipline and its __consumer_offsets partitions.
As in Kafka, a group changes only by replaying its records (types 3..8 of
group_records.py): an operation reads the current state, emits records, and the
coordinator replays them before answering, live and when loading.

A heartbeat:
1. creates or updates the member (a ConsumerGroupMemberMetadata record when it changed);
   a changed subscription, or changed metadata of the subscribed topics, bumps the group
   epoch (ConsumerGroupPartitionMetadata, ConsumerGroupMetadata records);
2. when the group epoch is ahead of the target assignment epoch, runs the server-side
   assignor for every member (ConsumerGroupTargetAssignmentMember records for those whose
   target changed, then ConsumerGroupTargetAssignmentMetadata);
3. moves the member's current assignment towards its target (CurrentAssignmentBuilder):
   partitions it must give up are revoked first, in its current epoch; it gets new
   partitions, and the target epoch, only once no other member still owns them.

Subscriptions by regex (ConsumerGroupHeartbeat v1) are resolved against the topics the
broker knows at every heartbeat with Python's `re.fullmatch`; Kafka uses RE2/J, which
agrees on common patterns (literals, classes, `.*`, alternation, repetition) but has no
backreferences or lookaround (Python accepts them; RE2/J refuses such a regex).
"""
from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any, Callable

from coordinator.assignors import (
    Assignment, MemberSubscription, PartitionAssignorError, ServerAssignor,
)
from coordinator.group_records import (
    ConsumerGroupCurrentMemberAssignmentKey, ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataKey, ConsumerGroupMemberMetadataValue, ConsumerGroupMetadataKey,
    ConsumerGroupMetadataValue, ConsumerGroupPartitionMetadataKey, ConsumerGroupPartitionMetadataValue,
    ConsumerGroupRecordKey, ConsumerGroupRecordValue, ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMemberValue, ConsumerGroupTargetAssignmentMetadataKey,
    ConsumerGroupTargetAssignmentMetadataValue, GroupMetadataKey, TopicMetadata, TopicPartitions,
)
from wire.errors import ErrorCode

if TYPE_CHECKING:
    from coordinator.groups import GroupCoordinator

log = logging.getLogger(__name__)

JOIN_GROUP_MEMBER_EPOCH = 0
LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2
NO_REBALANCE_TIMEOUT = -1
CONSUMER_PROTOCOL_TYPE = "consumer"
GROUP_TYPE_CONSUMER = "consumer"
# Topic metadata from the broker: topic name -> (topic id, partition count).
TopicsMetadata = dict[str, tuple[uuid.UUID, int]]
OwnedPartitions = list[tuple[uuid.UUID, list[int]]]


class MemberState(IntEnum):
    """Kafka's MemberState; the value is what ConsumerGroupCurrentMemberAssignment stores."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127


class ConsumerGroupState(Enum):
    """The value is the name ListGroups and ConsumerGroupDescribe show."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class ConsumerGroupError(Exception):
    """A heartbeat Kafka refuses: answered with `code` and `message`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


# -- assignments as records store them -------------------------------------------------------

def to_topic_partitions(assignment: Assignment) -> TopicPartitions:
    return tuple(sorted((topic_id, tuple(sorted(partitions)))
                        for topic_id, partitions in assignment.items() if partitions))


def from_topic_partitions(topic_partitions: TopicPartitions) -> Assignment:
    return {topic_id: frozenset(partitions) for topic_id, partitions in topic_partitions if partitions}


@dataclass(frozen=True)
class ConsumerGroupMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: frozenset[str] = frozenset()
    subscribed_topic_regex: str | None = None
    rebalance_timeout_ms: int = NO_REBALANCE_TIMEOUT
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned_partitions: Assignment = field(default_factory=dict)
    partitions_pending_revocation: Assignment = field(default_factory=dict)

    def is_reconciled_to(self, target_assignment_epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.member_epoch == target_assignment_epoch

    def with_member_epoch(self, member_epoch: int, **changes) -> "ConsumerGroupMember":
        """The member at a new epoch; the current one becomes its previous epoch."""
        return replace(self, member_epoch=member_epoch, previous_member_epoch=self.member_epoch, **changes)

    def metadata_value(self) -> ConsumerGroupMemberMetadataValue:
        return ConsumerGroupMemberMetadataValue(
            instance_id=self.instance_id, rack_id=self.rack_id, client_id=self.client_id,
            client_host=self.client_host, subscribed_topic_names=tuple(sorted(self.subscribed_topic_names)),
            subscribed_topic_regex=self.subscribed_topic_regex,
            rebalance_timeout_ms=self.rebalance_timeout_ms, server_assignor=self.server_assignor)

    def assignment_value(self) -> ConsumerGroupCurrentMemberAssignmentValue:
        return ConsumerGroupCurrentMemberAssignmentValue(
            member_epoch=self.member_epoch, previous_member_epoch=self.previous_member_epoch,
            state=int(self.state), assigned_partitions=to_topic_partitions(self.assigned_partitions),
            partitions_pending_revocation=to_topic_partitions(self.partitions_pending_revocation))


class ConsumerGroup:
    """One consumer group as its records left it."""

    def __init__(self, group_id: str, partition: int) -> None:
        self.group_id = group_id
        self.partition = partition
        self.group_epoch = 0
        self.assignment_epoch = 0
        self.subscription_metadata: dict[str, TopicMetadata] = {}
        self.members: dict[str, ConsumerGroupMember] = {}
        self.static_members: dict[str, str] = {}  # instance id -> member id
        self.target_assignment: dict[str, Assignment] = {}
        # (topic id, partition) -> epoch of the member that owns it (assigned or still
        # revoking): a partition is given to a new owner only when it has none.
        self.partition_epochs: dict[tuple[uuid.UUID, int], int] = {}

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(not member.is_reconciled_to(self.assignment_epoch) for member in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    @property
    def is_empty(self) -> bool:
        return not self.members

    def current_partition_epoch(self, topic_id: uuid.UUID, partition: int) -> int:
        return self.partition_epochs.get((topic_id, partition), -1)

    def static_member(self, instance_id: str) -> ConsumerGroupMember | None:
        member_id = self.static_members.get(instance_id)
        return None if member_id is None else self.members.get(member_id)

    def update_member(self, member: ConsumerGroupMember) -> None:
        self._remove_partition_epochs(self.members.get(member.member_id))
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        for assignment in (member.assigned_partitions, member.partitions_pending_revocation):
            for topic_id, partitions in assignment.items():
                for partition in partitions:
                    self.partition_epochs[(topic_id, partition)] = member.member_epoch

    def remove_member(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        self._remove_partition_epochs(member)
        if member is not None and member.instance_id is not None \
                and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]

    def _remove_partition_epochs(self, member: ConsumerGroupMember | None) -> None:
        if member is None:
            return
        for assignment in (member.assigned_partitions, member.partitions_pending_revocation):
            for topic_id, partitions in assignment.items():
                for partition in partitions:
                    if self.partition_epochs.get((topic_id, partition)) == member.member_epoch:
                        del self.partition_epochs[(topic_id, partition)]

    def is_subscribed_to_topic(self, topic: str) -> bool:
        return topic in self.subscription_metadata or any(
            topic in member.subscribed_topic_names for member in self.members.values())

    def topic_names_by_id(self) -> dict[uuid.UUID, str]:
        return {topic.topic_id: name for name, topic in self.subscription_metadata.items()}


# -- reconciliation (Kafka's CurrentAssignmentBuilder) ----------------------------------------

def _owns_any(owned: OwnedPartitions | None, partitions: Assignment) -> bool:
    """Whether the member still reports any of `partitions`; not knowing (owned None)
    counts as owning them."""
    if owned is None:
        return True
    return any(partition in partitions.get(topic_id, ())
               for topic_id, owned_partitions in owned for partition in owned_partitions)


def reconcile(member: ConsumerGroupMember, target_assignment_epoch: int, target: Assignment,
              current_partition_epoch: Callable[[uuid.UUID, int], int],
              owned: OwnedPartitions | None) -> ConsumerGroupMember:
    """The member moved one step towards its target assignment."""
    if member.state is MemberState.STABLE:
        if member.member_epoch != target_assignment_epoch:
            return _next_assignment(member, member.member_epoch, target_assignment_epoch, target,
                                    current_partition_epoch, owned)
        return member
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if _owns_any(owned, member.partitions_pending_revocation):
            return member  # it has not acknowledged the revocation yet
        return _next_assignment(member, member.member_epoch + 1, target_assignment_epoch, target,
                                current_partition_epoch, owned)
    if member.state is MemberState.UNRELEASED_PARTITIONS:
        return _next_assignment(member, member.member_epoch, target_assignment_epoch, target,
                                current_partition_epoch, owned)
    if owned is None or owned:
        raise ConsumerGroupError(ErrorCode.FENCED_MEMBER_EPOCH,
                                 "The consumer group member is in a unknown state. "
                                 "The member must abandon all its partitions and rejoin.")
    return _next_assignment(member, target_assignment_epoch, target_assignment_epoch, target,
                            current_partition_epoch, owned)


def _next_assignment(member: ConsumerGroupMember, member_epoch: int, target_assignment_epoch: int,
                     target: Assignment, current_partition_epoch: Callable[[uuid.UUID, int], int],
                     owned: OwnedPartitions | None) -> ConsumerGroupMember:
    has_unreleased = False
    assigned: dict[uuid.UUID, set[int]] = {}
    pending_revocation: dict[uuid.UUID, frozenset[int]] = {}
    pending_assignment: dict[uuid.UUID, set[int]] = {}
    for topic_id in set(target) | set(member.assigned_partitions):
        wanted = target.get(topic_id, frozenset())
        current = member.assigned_partitions.get(topic_id, frozenset())
        kept = current & wanted
        revoked = current - kept
        # Partitions to add, except those another member still owns (unreleased).
        to_add = {partition for partition in wanted - kept
                  if current_partition_epoch(topic_id, partition) == -1}
        has_unreleased = has_unreleased or len(to_add) < len(wanted - kept)
        if kept:
            assigned[topic_id] = set(kept)
        if revoked:
            pending_revocation[topic_id] = frozenset(revoked)
        if to_add:
            pending_assignment[topic_id] = to_add

    if pending_revocation and _owns_any(owned, pending_revocation):
        # Revoke first: the member stays in its epoch until it reports them gone.
        return member.with_member_epoch(
            member_epoch, state=MemberState.UNREVOKED_PARTITIONS,
            assigned_partitions={topic_id: frozenset(p) for topic_id, p in assigned.items()},
            partitions_pending_revocation=pending_revocation)
    for topic_id, partitions in pending_assignment.items():
        assigned.setdefault(topic_id, set()).update(partitions)
    state = MemberState.UNRELEASED_PARTITIONS if has_unreleased else MemberState.STABLE
    return member.with_member_epoch(
        target_assignment_epoch, state=state,
        assigned_partitions={topic_id: frozenset(p) for topic_id, p in assigned.items()},
        partitions_pending_revocation={})


def _is_subset(owned: OwnedPartitions | None, assignment: Assignment) -> bool:
    if owned is None:
        return False
    return all(partition in assignment.get(topic_id, ())
               for topic_id, partitions in owned for partition in partitions)


# -- the protocol ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class HeartbeatRequest:
    """A ConsumerGroupHeartbeat request; None fields did not change since the last one."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = NO_REBALANCE_TIMEOUT
    subscribed_topic_names: list[str] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    topic_partitions: OwnedPartitions | None = None
    client_id: str = ""
    client_host: str = ""


def _error_response(code: ErrorCode, message: str | None) -> dict:
    return {"error_code": code, "error_message": message, "member_id": None, "member_epoch": 0,
            "heartbeat_interval_ms": 0, "assignment": None}


def _response_assignment(assignment: Assignment) -> dict:
    return {"topic_partitions": [{"topic_id": topic_id, "partitions": list(partitions)}
                                 for topic_id, partitions in to_topic_partitions(assignment)]}


class ConsumerGroupProtocol:
    """ConsumerGroupHeartbeat, ConsumerGroupDescribe, timers and replay of consumer groups,
    run inside a GroupCoordinator (its timers, partitions, classic groups and offsets)."""

    def __init__(self, coordinator: "GroupCoordinator", assignors: list[ServerAssignor],
                 topic_metadata: Callable[[], TopicsMetadata]) -> None:
        if not assignors:
            raise ValueError("group.consumer.assignors must name at least one assignor")
        self._coordinator = coordinator
        self._assignors = {assignor.name: assignor for assignor in assignors}
        self._default_assignor = assignors[0]
        self.topic_metadata = topic_metadata
        self.groups: dict[str, ConsumerGroup] = {}

    @property
    def _config(self):
        return self._coordinator.config

    # -- heartbeat --------------------------------------------------------------------------

    def heartbeat(self, request: HeartbeatRequest, effects) -> dict:
        """The ConsumerGroupHeartbeat response body (without throttle_time_ms); records go
        to `effects`."""
        try:
            self._validate(request)
            error = self._coordinator._coordinator_error(request.group_id)
            if error is not None:
                return _error_response(error, None)
            if request.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                return self._leave(request, effects)
            return self._heartbeat(request, effects)
        except ConsumerGroupError as exc:
            return _error_response(exc.code, exc.message)

    def _validate(self, request: HeartbeatRequest) -> None:
        def invalid(message: str) -> ConsumerGroupError:
            return ConsumerGroupError(ErrorCode.INVALID_REQUEST, message)

        if not request.group_id:
            raise invalid("GroupId can't be empty.")
        if request.instance_id is not None and not request.instance_id:
            raise invalid("InstanceId can't be empty.")
        if request.rack_id is not None and not request.rack_id:
            raise invalid("RackId can't be empty.")
        if request.member_epoch > 0 or request.member_epoch == LEAVE_GROUP_MEMBER_EPOCH:
            if not request.member_id:
                raise invalid("MemberId can't be empty.")
        elif request.member_epoch == JOIN_GROUP_MEMBER_EPOCH:
            if request.rebalance_timeout_ms == NO_REBALANCE_TIMEOUT:
                raise invalid("RebalanceTimeoutMs must be provided in first request.")
            if request.topic_partitions is None or request.topic_partitions:
                raise invalid("TopicPartitions must be empty when (re-)joining.")
            if not request.subscribed_topic_names and not request.subscribed_topic_regex:
                raise invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        elif request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if not request.member_id:
                raise invalid("MemberId can't be empty.")
            if request.instance_id is None:
                raise invalid("InstanceId can't be null.")
        else:
            raise invalid("MemberEpoch is invalid.")
        if request.subscribed_topic_regex:
            try:
                re.compile(request.subscribed_topic_regex)
            except re.error as exc:
                raise invalid(f"SubscribedTopicRegex {request.subscribed_topic_regex} is invalid: {exc}.")
        if request.server_assignor is not None and request.server_assignor not in self._assignors:
            raise ConsumerGroupError(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {request.server_assignor} is not supported. "
                f"Supported assignors: {', '.join(self._assignors)}.")

    def _group_or_error(self, group_id: str) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is None:
            if group_id in self._coordinator._groups:
                raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND,
                                         f"Group {group_id} is not a consumer group")
            raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {group_id} not found.")
        return group

    def _group_for_join(self, group_id: str, effects) -> ConsumerGroup:
        """The group, or a new one (not stored until its records replay). An Empty classic
        group gives way (its GroupMetadata is deleted; its offsets stay)."""
        group = self.groups.get(group_id)
        if group is not None:
            return group
        classic = self._coordinator._groups.get(group_id)
        if classic is not None:
            if not classic.is_empty:
                raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND,
                                         f"Group {group_id} is not a consumer group")
            effects.record(classic.partition, GroupMetadataKey(group_id), None, replay_live=True)
        return ConsumerGroup(group_id, self._coordinator.partition_for(group_id))

    def _heartbeat(self, request: HeartbeatRequest, effects) -> dict:
        joining = request.member_epoch == JOIN_GROUP_MEMBER_EPOCH
        group = (self._group_for_join(request.group_id, effects) if joining
                 else self._group_or_error(request.group_id))
        if (len(group.members) >= self._config.group_consumer_max_size
                and (not request.member_id or request.member_id not in group.members)):
            raise ConsumerGroupError(
                ErrorCode.GROUP_MAX_SIZE_REACHED,
                f"The consumer group has reached its maximum capacity of "
                f"{self._config.group_consumer_max_size} members.")
        member_id = request.member_id or self._coordinator._new_uuid()
        replaced_member_id = None
        if request.instance_id is None:
            member = self._dynamic_member(group, member_id, request, joining)
        else:
            member, replaced_member_id = self._static_member(group, member_id, request, joining, effects)

        # 1. The member and its subscription.
        updated = replace(
            member,
            instance_id=request.instance_id if request.instance_id is not None else member.instance_id,
            rack_id=request.rack_id if request.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=(request.rebalance_timeout_ms
                                  if request.rebalance_timeout_ms != NO_REBALANCE_TIMEOUT
                                  else member.rebalance_timeout_ms),
            server_assignor=(request.server_assignor if request.server_assignor is not None
                             else member.server_assignor),
            subscribed_topic_names=(frozenset(request.subscribed_topic_names)
                                    if request.subscribed_topic_names is not None
                                    else member.subscribed_topic_names),
            # An empty regex clears it (the member went back to topic names).
            subscribed_topic_regex=((request.subscribed_topic_regex or None)
                                    if request.subscribed_topic_regex is not None
                                    else member.subscribed_topic_regex),
            client_id=request.client_id,
            client_host=request.client_host,
        )
        # A static member replacing its old member id keeps its subscription: no new epoch.
        is_new = member_id not in group.members and replaced_member_id is None
        bump_group_epoch = False
        if is_new or updated.metadata_value() != member.metadata_value():
            effects.record(group.partition, ConsumerGroupMemberMetadataKey(group.group_id, member_id),
                           updated.metadata_value(), replay_live=True)
            bump_group_epoch = (is_new or updated.subscribed_topic_names != member.subscribed_topic_names
                                or updated.subscribed_topic_regex != member.subscribed_topic_regex)

        members = dict(group.members)
        if replaced_member_id is not None:
            members.pop(replaced_member_id, None)
        members[member_id] = updated
        metadata = self.topic_metadata()
        subscription_metadata = self._subscription_metadata(members.values(), metadata)
        if subscription_metadata != group.subscription_metadata:
            bump_group_epoch = True
            effects.record(group.partition, ConsumerGroupPartitionMetadataKey(group.group_id),
                           ConsumerGroupPartitionMetadataValue(tuple(subscription_metadata.values())),
                           replay_live=True)
        group_epoch = group.group_epoch
        if bump_group_epoch:
            group_epoch += 1
            effects.record(group.partition, ConsumerGroupMetadataKey(group.group_id),
                           ConsumerGroupMetadataValue(group_epoch), replay_live=True)
            log.info("group %s: bumped group epoch to %d", group.group_id, group_epoch)

        # 2. The target assignment.
        if group_epoch > group.assignment_epoch:
            target_assignment = self._update_target_assignment(
                group, group_epoch, members, subscription_metadata, replaced_member_id, effects)
            target_assignment_epoch = group_epoch
            target = target_assignment.get(member_id, {})
        else:
            target_assignment_epoch = group.assignment_epoch
            target = group.target_assignment.get(member_id)
            if target is None and replaced_member_id is not None:
                target = group.target_assignment.get(replaced_member_id)  # its records are not replayed yet
            target = target or {}

        # 3. Reconcile the member with its target.
        reconciled = reconcile(updated, target_assignment_epoch, target, group.current_partition_epoch,
                               request.topic_partitions)
        if reconciled.assignment_value() != updated.assignment_value() or is_new:
            effects.record(group.partition, ConsumerGroupCurrentMemberAssignmentKey(group.group_id, member_id),
                           reconciled.assignment_value(), replay_live=True)
            if reconciled.state is MemberState.UNREVOKED_PARTITIONS:
                self._schedule_rebalance_timeout(group.group_id, member_id, reconciled.member_epoch,
                                                 reconciled.rebalance_timeout_ms)
            else:
                self._coordinator._timers.cancel(("consumer-rebalance", group.group_id, member_id))
        self._schedule_session_timeout(group.group_id, member_id)

        response = {
            "error_code": ErrorCode.NONE, "error_message": None, "member_id": member_id,
            "member_epoch": reconciled.member_epoch,
            "heartbeat_interval_ms": self._config.group_consumer_heartbeat_interval_ms,
            "assignment": None,
        }
        is_full_request = joining or (
            request.rebalance_timeout_ms != NO_REBALANCE_TIMEOUT
            and (request.subscribed_topic_names is not None or request.subscribed_topic_regex is not None)
            and request.topic_partitions is not None)
        if is_full_request or reconciled.assigned_partitions != member.assigned_partitions:
            response["assignment"] = _response_assignment(reconciled.assigned_partitions)
        return response

    def _dynamic_member(self, group: ConsumerGroup, member_id: str, request: HeartbeatRequest,
                        joining: bool) -> ConsumerGroupMember:
        member = group.members.get(member_id)
        if member is None:
            if not joining:
                raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID,
                                         f"Member {member_id} is not a member of group {group.group_id}.")
            log.info("group %s: member %s joins", group.group_id, member_id)
            return ConsumerGroupMember(member_id)
        self._check_member_epoch(member, request)
        return member

    def _static_member(self, group: ConsumerGroup, member_id: str, request: HeartbeatRequest,
                       joining: bool, effects) -> tuple[ConsumerGroupMember, str | None]:
        """The static member and, when it replaces an earlier member id, that id."""
        existing = group.static_member(request.instance_id)
        if joining:
            if existing is None:
                if member_id in group.members:
                    self._check_member_epoch(group.members[member_id], request)
                    return group.members[member_id], None
                log.info("group %s: static member %s (instance %s) joins", group.group_id, member_id,
                         request.instance_id)
                return ConsumerGroupMember(member_id), None
            if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                raise ConsumerGroupError(
                    ErrorCode.UNRELEASED_INSTANCE_ID,
                    f"Static member {member_id} with instance id {request.instance_id} cannot join the "
                    f"group because the instance id is owned by {existing.member_id} member.")
            # The instance comes back (usually under a new member id): it takes over the
            # old member's assignment, at epoch 0.
            new_member = replace(existing, member_id=member_id, member_epoch=0, previous_member_epoch=0)
            if existing.member_id == member_id:
                effects.record(group.partition, ConsumerGroupCurrentMemberAssignmentKey(group.group_id, member_id),
                               new_member.assignment_value(), replay_live=True)
                return new_member, None
            self._remove_member_records(group, existing.member_id, effects)
            self._coordinator._timers.cancel(("consumer-session", group.group_id, existing.member_id))
            self._coordinator._timers.cancel(("consumer-rebalance", group.group_id, existing.member_id))
            effects.record(group.partition, ConsumerGroupMemberMetadataKey(group.group_id, member_id),
                           new_member.metadata_value(), replay_live=True)
            target = group.target_assignment.get(existing.member_id)
            if target is not None:
                effects.record(group.partition, ConsumerGroupTargetAssignmentMemberKey(group.group_id, member_id),
                               ConsumerGroupTargetAssignmentMemberValue(to_topic_partitions(target)),
                               replay_live=True)
            effects.record(group.partition, ConsumerGroupCurrentMemberAssignmentKey(group.group_id, member_id),
                           new_member.assignment_value(), replay_live=True)
            log.info("group %s: static member %s rejoins as %s, replacing %s", group.group_id,
                     request.instance_id, member_id, existing.member_id)
            return new_member, existing.member_id
        if existing is None:
            raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown.")
        if existing.member_id != member_id:
            raise ConsumerGroupError(
                ErrorCode.FENCED_INSTANCE_ID,
                f"Static member {member_id} with instance id {request.instance_id} was fenced by "
                f"member {existing.member_id}.")
        self._check_member_epoch(existing, request)
        return existing, None

    @staticmethod
    def _check_member_epoch(member: ConsumerGroupMember, request: HeartbeatRequest) -> None:
        received = request.member_epoch
        if received > member.member_epoch:
            raise ConsumerGroupError(
                ErrorCode.FENCED_MEMBER_EPOCH,
                f"The consumer group member has a greater member epoch ({received}) than the one known "
                f"by the group coordinator ({member.member_epoch}). The member must abandon all its "
                f"partitions and rejoin.")
        if received < member.member_epoch:
            # The answer that bumped its epoch may have been lost: the previous epoch is
            # accepted while the member owns nothing beyond its assignment.
            if received != member.previous_member_epoch or not _is_subset(
                    request.topic_partitions, member.assigned_partitions):
                raise ConsumerGroupError(
                    ErrorCode.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a smaller member epoch ({received}) than the one "
                    f"known by the group coordinator ({member.member_epoch}). The member must abandon "
                    f"all its partitions and rejoin.")

    @staticmethod
    def _subscribed_topics(member: ConsumerGroupMember, metadata: TopicsMetadata) -> set[str]:
        topics = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            pattern = re.compile(member.subscribed_topic_regex)
            topics.update(name for name in metadata if pattern.fullmatch(name))
        return topics

    def _subscription_metadata(self, members, metadata: TopicsMetadata) -> dict[str, TopicMetadata]:
        """The existing topics the members subscribe to, by name in name order."""
        names: set[str] = set()
        for member in members:
            names |= self._subscribed_topics(member, metadata)
        return {name: TopicMetadata(metadata[name][0], name, metadata[name][1])
                for name in sorted(names) if name in metadata}

    def _update_target_assignment(self, group: ConsumerGroup, group_epoch: int,
                                  members: dict[str, ConsumerGroupMember],
                                  subscription_metadata: dict[str, TopicMetadata],
                                  replaced_member_id: str | None, effects) -> dict[str, Assignment]:
        assignor = self._preferred_assignor(members.values())
        metadata = {topic.topic_name: (topic.topic_id, topic.num_partitions)
                    for topic in subscription_metadata.values()}
        specs = {}
        for member_id, member in members.items():
            current = group.target_assignment.get(member_id)
            if current is None and member_id not in group.members and replaced_member_id is not None:
                current = group.target_assignment.get(replaced_member_id)  # a replacing static member
            topic_ids = frozenset(metadata[name][0] for name in self._subscribed_topics(member, metadata))
            specs[member_id] = MemberSubscription(member.instance_id, topic_ids, current or {})
        partition_counts = {topic.topic_id: topic.num_partitions for topic in subscription_metadata.values()}
        try:
            new_assignment = assignor.assign(specs, partition_counts)
        except PartitionAssignorError as exc:
            raise ConsumerGroupError(
                ErrorCode.UNKNOWN_SERVER_ERROR,
                f"Failed to compute a new target assignment for epoch {group_epoch}: {exc}") from exc
        for member_id in specs:
            assignment = new_assignment.get(member_id, {})
            if member_id not in group.target_assignment or group.target_assignment[member_id] != assignment:
                effects.record(group.partition, ConsumerGroupTargetAssignmentMemberKey(group.group_id, member_id),
                               ConsumerGroupTargetAssignmentMemberValue(to_topic_partitions(assignment)),
                               replay_live=True)
        effects.record(group.partition, ConsumerGroupTargetAssignmentMetadataKey(group.group_id),
                       ConsumerGroupTargetAssignmentMetadataValue(group_epoch), replay_live=True)
        log.info("group %s: new target assignment for epoch %d with the %s assignor", group.group_id,
                 group_epoch, assignor.name)
        return {member_id: new_assignment.get(member_id, {}) for member_id in specs}

    def _preferred_assignor(self, members) -> ServerAssignor:
        """The server assignor most members ask for (first asked on a tie); the first of
        group.consumer.assignors when none asks."""
        counts: dict[str, int] = {}
        for member in members:
            if member.server_assignor is not None:
                counts[member.server_assignor] = counts.get(member.server_assignor, 0) + 1
        if not counts:
            return self._default_assignor
        best = max(counts, key=lambda name: counts[name])
        return self._assignors[best]

    # -- leaving and fencing ------------------------------------------------------------------

    def _leave(self, request: HeartbeatRequest, effects) -> dict:
        group = self._group_or_error(request.group_id)
        response = {"error_code": ErrorCode.NONE, "error_message": None, "member_id": request.member_id,
                    "member_epoch": request.member_epoch, "heartbeat_interval_ms": 0, "assignment": None}
        if request.instance_id is None:
            member = group.members.get(request.member_id)
            if member is None:
                raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID,
                                         f"Member {request.member_id} is not a member of group {group.group_id}.")
            log.info("group %s: member %s left", group.group_id, member.member_id)
            self._fence(group, member, effects)
            return response
        member = group.static_member(request.instance_id)
        if member is None:
            raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown.")
        if member.member_id != request.member_id:
            raise ConsumerGroupError(
                ErrorCode.FENCED_INSTANCE_ID,
                f"Static member {request.member_id} with instance id {request.instance_id} was fenced by "
                f"member {member.member_id}.")
        if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            # KIP-345: the instance will be back within its session timeout; it keeps its
            # assignment and the group does not rebalance.
            leaving = replace(member, member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH, partitions_pending_revocation={})
            effects.record(group.partition, ConsumerGroupCurrentMemberAssignmentKey(group.group_id, member.member_id),
                           leaving.assignment_value(), replay_live=True)
            log.info("group %s: static member %s (instance %s) left temporarily", group.group_id,
                     member.member_id, request.instance_id)
            return {**response, "member_id": member.member_id}
        log.info("group %s: static member %s (instance %s) left", group.group_id, member.member_id,
                 request.instance_id)
        self._fence(group, member, effects)
        return response

    def _remove_member_records(self, group: ConsumerGroup, member_id: str, effects) -> None:
        for key in (ConsumerGroupCurrentMemberAssignmentKey(group.group_id, member_id),
                    ConsumerGroupTargetAssignmentMemberKey(group.group_id, member_id),
                    ConsumerGroupMemberMetadataKey(group.group_id, member_id)):
            effects.record(group.partition, key, None, replay_live=True)

    def _fence(self, group: ConsumerGroup, member: ConsumerGroupMember, effects) -> None:
        """Remove the member; the group epoch moves so the others get a new target."""
        self._remove_member_records(group, member.member_id, effects)
        others = [other for other in group.members.values() if other.member_id != member.member_id]
        subscription_metadata = self._subscription_metadata(others, self.topic_metadata())
        if subscription_metadata != group.subscription_metadata:
            effects.record(group.partition, ConsumerGroupPartitionMetadataKey(group.group_id),
                           ConsumerGroupPartitionMetadataValue(tuple(subscription_metadata.values())),
                           replay_live=True)
        effects.record(group.partition, ConsumerGroupMetadataKey(group.group_id),
                       ConsumerGroupMetadataValue(group.group_epoch + 1), replay_live=True)
        for kind in ("consumer-session", "consumer-rebalance"):
            self._coordinator._timers.cancel((kind, group.group_id, member.member_id))

    def _fence_by_id(self, group_id: str, member_id: str, reason: str, effects,
                     member_epoch: int | None = None) -> None:
        group = self.groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if member is None or (member_epoch is not None and member.member_epoch != member_epoch):
            return
        log.info("group %s: member %s fenced because %s", group_id, member_id, reason)
        self._fence(group, member, effects)

    def _schedule_session_timeout(self, group_id: str, member_id: str) -> None:
        self._coordinator._timers.schedule(
            ("consumer-session", group_id, member_id),
            self._coordinator._now_ms + self._config.group_consumer_session_timeout_ms,
            lambda effects: self._fence_by_id(group_id, member_id, "the member session expired", effects))

    def _schedule_rebalance_timeout(self, group_id: str, member_id: str, member_epoch: int,
                                    rebalance_timeout_ms: int) -> None:
        self._coordinator._timers.schedule(
            ("consumer-rebalance", group_id, member_id), self._coordinator._now_ms + rebalance_timeout_ms,
            lambda effects: self._fence_by_id(
                group_id, member_id, f"it did not revoke its partitions of epoch {member_epoch} "
                                     f"within {rebalance_timeout_ms} ms", effects, member_epoch))

    def on_loaded(self, partition: int) -> None:
        """Loaded members get a fresh session (and rebalance) timeout, as in Kafka."""
        for group in self.groups.values():
            if group.partition != partition:
                continue
            for member in group.members.values():
                self._schedule_session_timeout(group.group_id, member.member_id)
                if member.state is MemberState.UNREVOKED_PARTITIONS:
                    self._schedule_rebalance_timeout(group.group_id, member.member_id, member.member_epoch,
                                                     member.rebalance_timeout_ms)

    def unload(self, partition: int) -> None:
        for group_id in [group_id for group_id, group in self.groups.items() if group.partition == partition]:
            del self.groups[group_id]
            self._coordinator._timers.cancel_group(group_id)

    def deletion_records(self, group: ConsumerGroup, effects) -> None:
        """Tombstones that delete an empty group (Kafka's createGroupTombstoneRecords)."""
        for member_id in group.members:
            self._remove_member_records(group, member_id, effects)
        for key in (ConsumerGroupTargetAssignmentMetadataKey(group.group_id),
                    ConsumerGroupPartitionMetadataKey(group.group_id),
                    ConsumerGroupMetadataKey(group.group_id)):
            effects.record(group.partition, key, None, replay_live=True)

    # -- validation for the offset APIs ------------------------------------------------------

    @staticmethod
    def validate_offset_commit(group: ConsumerGroup, member_id: str, member_epoch: int) -> ErrorCode | None:
        """Kafka's ConsumerGroup.validateOffsetCommit: epoch -1 commits (admin, assign())
        only while the group is Empty; a member must commit with its current epoch."""
        if member_epoch < 0 and group.is_empty:
            return None
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return None

    # -- describe ------------------------------------------------------------------------------

    def describe(self, group_ids: list[str], include_authorized_operations_bits: int) -> list[dict]:
        """ConsumerGroupDescribe groups; GROUP_ID_NOT_FOUND for unknown or classic groups."""
        described = []
        names = {topic_id: name for name, (topic_id, _) in self.topic_metadata().items()}
        for group_id in group_ids:
            error = (ErrorCode.INVALID_GROUP_ID if not group_id
                     else self._coordinator._coordinator_error(group_id))
            group = self.groups.get(group_id)
            if error is None and group is None:
                error = ErrorCode.GROUP_ID_NOT_FOUND
            if error is not None:
                described.append({"error_code": error, "error_message": None, "group_id": group_id,
                                  "group_state": "", "group_epoch": 0, "assignment_epoch": 0,
                                  "assignor_name": "", "members": [],
                                  "authorized_operations": include_authorized_operations_bits})
                continue
            described.append({
                "error_code": ErrorCode.NONE, "error_message": None, "group_id": group_id,
                "group_state": group.state.value, "group_epoch": group.group_epoch,
                "assignment_epoch": group.assignment_epoch,
                "assignor_name": self._preferred_assignor(group.members.values()).name,
                "members": [self._describe_member(group, member, names) for member in group.members.values()],
                "authorized_operations": include_authorized_operations_bits,
            })
        return described

    @staticmethod
    def _describe_member(group: ConsumerGroup, member: ConsumerGroupMember,
                         names: dict[uuid.UUID, str]) -> dict:
        def topic_partitions(assignment: Assignment) -> dict:
            # Topics deleted since are left out, as Kafka does (no name to show).
            return {"topic_partitions": [
                {"topic_id": topic_id, "topic_name": names[topic_id], "partitions": list(partitions)}
                for topic_id, partitions in to_topic_partitions(assignment) if topic_id in names]}

        return {
            "member_id": member.member_id, "instance_id": member.instance_id, "rack_id": member.rack_id,
            "member_epoch": member.member_epoch, "client_id": member.client_id,
            "client_host": member.client_host,
            "subscribed_topic_names": sorted(member.subscribed_topic_names),
            "subscribed_topic_regex": member.subscribed_topic_regex,
            "assignment": topic_partitions(member.assigned_partitions),
            "target_assignment": topic_partitions(group.target_assignment.get(member.member_id, {})),
        }

    # -- replay ----------------------------------------------------------------------------------

    def replay(self, key: ConsumerGroupRecordKey, value: ConsumerGroupRecordValue | None) -> None:
        """Apply one consumer group record (live or while loading)."""
        group_id = key.group
        group = self.groups.get(group_id)
        if value is None:
            self._replay_tombstone(key, group)
            return
        if group is None:
            group = self.groups[group_id] = ConsumerGroup(group_id, self._coordinator.partition_for(group_id))
            classic = self._coordinator._groups.get(group_id)
            if classic is not None and classic.is_empty:
                # The classic group that only held offsets (or was Empty) became this one.
                del self._coordinator._groups[group_id]
        if isinstance(value, ConsumerGroupMetadataValue):
            group.group_epoch = value.epoch
        elif isinstance(value, ConsumerGroupPartitionMetadataValue):
            group.subscription_metadata = {topic.topic_name: topic for topic in value.topics}
        elif isinstance(value, ConsumerGroupMemberMetadataValue):
            member = group.members.get(key.member_id) or ConsumerGroupMember(key.member_id)
            group.update_member(replace(
                member, instance_id=value.instance_id, rack_id=value.rack_id, client_id=value.client_id,
                client_host=value.client_host, subscribed_topic_names=frozenset(value.subscribed_topic_names),
                subscribed_topic_regex=value.subscribed_topic_regex,
                rebalance_timeout_ms=value.rebalance_timeout_ms, server_assignor=value.server_assignor))
        elif isinstance(value, ConsumerGroupTargetAssignmentMetadataValue):
            group.assignment_epoch = value.assignment_epoch
        elif isinstance(value, ConsumerGroupTargetAssignmentMemberValue):
            group.target_assignment[key.member_id] = from_topic_partitions(value.topic_partitions)
        elif isinstance(value, ConsumerGroupCurrentMemberAssignmentValue):
            member = group.members.get(key.member_id) or ConsumerGroupMember(key.member_id)
            try:
                state = MemberState(value.state)
            except ValueError:
                state = MemberState.UNKNOWN  # written by a newer broker: the member will rejoin
            group.update_member(replace(
                member, member_epoch=value.member_epoch, previous_member_epoch=value.previous_member_epoch,
                state=state, assigned_partitions=from_topic_partitions(value.assigned_partitions),
                partitions_pending_revocation=from_topic_partitions(value.partitions_pending_revocation)))

    def _replay_tombstone(self, key: ConsumerGroupRecordKey, group: ConsumerGroup | None) -> None:
        if group is None:
            return
        if isinstance(key, ConsumerGroupMetadataKey):
            del self.groups[key.group]
            self._coordinator._timers.cancel_group(key.group)
        elif isinstance(key, ConsumerGroupPartitionMetadataKey):
            group.subscription_metadata = {}
        elif isinstance(key, ConsumerGroupMemberMetadataKey):
            group.remove_member(key.member_id)
        elif isinstance(key, ConsumerGroupTargetAssignmentMetadataKey):
            group.assignment_epoch = -1
        elif isinstance(key, ConsumerGroupTargetAssignmentMemberKey):
            group.target_assignment.pop(key.member_id, None)
        elif isinstance(key, ConsumerGroupCurrentMemberAssignmentKey):
            member = group.members.get(key.member_id)
            if member is not None:
                # The member is gone once its metadata tombstone follows; until then it
                # owns nothing.
                group.update_member(replace(member, member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                                            previous_member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                                            assigned_partitions={}, partitions_pending_revocation={}))


def is_consumer_group_key(key: Any) -> bool:
    return isinstance(key, (ConsumerGroupMetadataKey, ConsumerGroupPartitionMetadataKey,
                            ConsumerGroupMemberMetadataKey, ConsumerGroupTargetAssignmentMetadataKey,
                            ConsumerGroupTargetAssignmentMemberKey, ConsumerGroupCurrentMemberAssignmentKey))
