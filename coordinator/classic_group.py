"""One classic-protocol consumer group: members, generations, protocol votes.

The in-memory model of Kafka's ClassicGroup / ClassicGroupMember. It knows nothing of
records, timers or replies; GroupCoordinator (coordinator/groups.py) drives it. A parked
JoinGroup or SyncGroup is represented by the opaque token the broker gave with it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any

from coordinator.group_records import java_string_hash
from wire.errors import ErrorCode

CONSUMER_PROTOCOL_TYPE = "consumer"
UNKNOWN_MEMBER_ID = ""


class GroupState(Enum):
    """Kafka's ClassicGroupState; the value is the name DescribeGroups and ListGroups show."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS_STATES = {
    GroupState.EMPTY: {GroupState.PREPARING_REBALANCE},
    GroupState.PREPARING_REBALANCE: {
        GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY},
    GroupState.COMPLETING_REBALANCE: {GroupState.PREPARING_REBALANCE},
    GroupState.STABLE: {GroupState.COMPLETING_REBALANCE},
    GroupState.DEAD: set(GroupState),
}

Protocols = tuple[tuple[str, bytes], ...]  # (name, metadata) in the member's preference order


@dataclass(eq=False)
class ClassicGroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    join_token: Any = None  # set while a JoinGroup waits for the join phase to end
    sync_token: Any = None  # set while a SyncGroup waits for the leader's assignment
    # A member that has not had a JoinGroup answer yet may expire even while its
    # JoinGroup waits (Kafka's isNew).
    is_new: bool = False

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def is_awaiting_join(self) -> bool:
        return self.join_token is not None

    @property
    def is_awaiting_sync(self) -> bool:
        return self.sync_token is not None

    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}

    def metadata(self, protocol_name: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        raise ValueError(f"member {self.member_id} does not support protocol {protocol_name}")

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def has_satisfied_heartbeat(self) -> bool:
        # A member parked in JoinGroup or SyncGroup cannot heartbeat, so its waiting
        # request counts as one -- except for a brand-new member (its JoinGroup may be a
        # dead client's that will never read the answer).
        if self.is_new:
            return False
        return self.is_awaiting_join or self.is_awaiting_sync


def _java_hash_map_order(keys: list[str]) -> list[str]:
    """Keys in the order a java.util.HashMap holding them iterates (bucket index of the
    spread String.hashCode, then insertion order within a bucket), so ties between
    protocol votes break as Kafka's `stream().max()` over its HashMap breaks them."""
    capacity = 16
    while len(keys) > capacity * 3 // 4:
        capacity *= 2

    def bucket(key: str) -> int:
        hash_code = java_string_hash(key) & 0xFFFFFFFF
        return (hash_code ^ (hash_code >> 16)) & (capacity - 1)

    return sorted(keys, key=bucket)


class ClassicGroup:
    def __init__(
        self,
        group_id: str,
        partition: int,
        state: GroupState,
        current_state_timestamp_ms: int | None,
        generation_id: int = 0,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
        leader_id: str | None = None,
    ) -> None:
        self.group_id = group_id
        self.partition = partition
        self.state = state
        self.previous_state = GroupState.DEAD
        self.current_state_timestamp_ms = current_state_timestamp_ms
        self.generation_id = generation_id
        self.protocol_type = protocol_type
        self.protocol_name = protocol_name
        self.leader_id = leader_id
        self.members: dict[str, ClassicGroupMember] = {}
        self.static_members: dict[str, str] = {}  # group instance id -> member id
        self.pending_join_members: set[str] = set()  # ids handed out with MEMBER_ID_REQUIRED
        self.pending_sync_members: set[str] = set()
        self.num_members_awaiting_join = 0
        self.supported_protocols: Counter[str] = Counter()
        # Topics the members subscribe to, parsed from the consumer protocol metadata;
        # None when unknown (not a consumer group, or unparsable metadata).
        self.subscribed_topics: set[str] | None = None
        self.new_member_added = False  # extends the initial rebalance delay

    # -- state --------------------------------------------------------------------

    def is_in(self, state: GroupState) -> bool:
        return self.state is state

    def transition_to(self, state: GroupState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS_STATES[state]:
            raise AssertionError(
                f"group {self.group_id} cannot move from {self.state.value} to {state.value}")
        self.previous_state = self.state
        self.state = state
        self.current_state_timestamp_ms = now_ms

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    @property
    def is_empty(self) -> bool:
        return self.is_in(GroupState.EMPTY)

    def uses_consumer_protocol(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    # -- members ------------------------------------------------------------------

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id is not None and self.leader_id == member_id

    def is_pending_member(self, member_id: str) -> bool:
        return member_id in self.pending_join_members

    def add(self, member: ClassicGroupMember, join_token: Any = None) -> None:
        if member.group_instance_id is not None:
            if member.group_instance_id in self.static_members:
                raise AssertionError(f"static member {member.group_instance_id} is already in {self.group_id}")
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.protocol_type != member.protocol_type:
            raise AssertionError("the group's and the member's protocol types differ")
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.supported_protocols.update(member.protocol_names())
        member.join_token = join_token
        if member.is_awaiting_join:
            self.num_members_awaiting_join += 1
        self.pending_join_members.discard(member.member_id)

    def remove(self, member_id: str) -> None:
        removed = self.members.pop(member_id, None)
        if removed is not None:
            self.supported_protocols.subtract(removed.protocol_names())
            if removed.is_awaiting_join:
                self.num_members_awaiting_join -= 1
            if removed.group_instance_id is not None:
                self.static_members.pop(removed.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_join_members.discard(member_id)
        self.pending_sync_members.discard(member_id)

    def update_member(self, member: ClassicGroupMember, protocols: Protocols,
                      rebalance_timeout_ms: int, session_timeout_ms: int, join_token: Any) -> None:
        self.supported_protocols.subtract(member.protocol_names())
        member.protocols = protocols
        self.supported_protocols.update(member.protocol_names())
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if join_token is not None and not member.is_awaiting_join:
            self.num_members_awaiting_join += 1
        elif join_token is None and member.is_awaiting_join:
            self.num_members_awaiting_join -= 1
        member.join_token = join_token

    def take_join_token(self, member: ClassicGroupMember) -> Any:
        """The member's parked JoinGroup token (None if none), now answered."""
        token = member.join_token
        if token is not None:
            member.join_token = None
            self.num_members_awaiting_join -= 1
        return token

    @staticmethod
    def take_sync_token(member: ClassicGroupMember) -> Any:
        token = member.sync_token
        member.sync_token = None
        return token

    def replace_static_member(self, group_instance_id: str, old_member_id: str,
                              new_member_id: str) -> tuple[ClassicGroupMember, ClassicGroupMember]:
        """Give a static member's place to a new member id; returns (old, new). The old
        member's parked requests are still in `old` for the caller to fence."""
        old = self.members.pop(old_member_id)
        if old.is_awaiting_join:
            self.num_members_awaiting_join -= 1
        new = ClassicGroupMember(
            member_id=new_member_id,
            group_instance_id=old.group_instance_id,
            client_id=old.client_id,
            client_host=old.client_host,
            rebalance_timeout_ms=old.rebalance_timeout_ms,
            session_timeout_ms=old.session_timeout_ms,
            protocol_type=old.protocol_type,
            protocols=old.protocols,
            assignment=old.assignment,
        )
        self.members[new_member_id] = new
        if self.is_leader(old_member_id):
            self.leader_id = new_member_id
        self.static_members[group_instance_id] = new_member_id
        return old, new

    def maybe_elect_new_joined_leader(self) -> bool:
        """Make sure the leader is a member that rejoined; False if none did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].is_awaiting_join:
            return True
        for member in self.members.values():
            if member.is_awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def has_all_members_joined(self) -> bool:
        return (len(self.members) == self.num_members_awaiting_join
                and not self.pending_join_members)

    def not_yet_rejoined_members(self) -> list[ClassicGroupMember]:
        return [member for member in self.members.values() if not member.is_awaiting_join]

    def rebalance_timeout_ms(self) -> int:
        return max((member.rebalance_timeout_ms for member in self.members.values()), default=0)

    def validate_member(self, member_id: str, group_instance_id: str | None) -> ErrorCode | None:
        """UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID (another member id holds the instance
        id), or None when the member is who it says it is."""
        if group_instance_id is not None:
            existing_member_id = self.static_members.get(group_instance_id)
            if existing_member_id is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if existing_member_id != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return None

    # -- protocols ----------------------------------------------------------------

    def supports_protocols(self, protocol_type: str, protocol_names: set[str]) -> bool:
        if self.is_in(GroupState.EMPTY):
            return bool(protocol_type) and bool(protocol_names)
        return (self.protocol_type == protocol_type
                and any(self.supported_protocols[name] == len(self.members) for name in protocol_names))

    def select_protocol(self) -> str:
        """The protocol every member supports that most members prefer."""
        if not self.members:
            raise AssertionError(f"cannot select a protocol for empty group {self.group_id}")
        candidates = {name for name, count in self.supported_protocols.items()
                      if count == len(self.members)}
        votes: Counter[str] = Counter(member.vote(candidates) for member in self.members.values())
        best = None
        for name in _java_hash_map_order(list(votes)):
            if best is None or votes[name] > votes[best]:
                best = name
        return best

    def compute_subscribed_topics(self) -> set[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return set()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = parse_subscription_topics(member.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics.update(parsed)
        return topics

    def is_subscribed_to_topic(self, topic: str) -> bool:
        if self.subscribed_topics is None:
            return self.uses_consumer_protocol()
        return topic in self.subscribed_topics

    def init_next_generation(self, now_ms: int) -> None:
        # A new generation fences members that missed the rebalance: their commits and
        # heartbeats now get ILLEGAL_GENERATION.
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def join_members_for_leader(self) -> list[dict]:
        return [{
            "member_id": member.member_id,
            "group_instance_id": member.group_instance_id,
            "metadata": member.metadata(self.protocol_name),
        } for member in self.members.values()]

    def group_assignment(self) -> dict[str, bytes]:
        return {member_id: member.assignment for member_id, member in self.members.items()}


def parse_subscription_topics(metadata: bytes) -> list[str] | None:
    """The topics of a ConsumerProtocolSubscription, read with its version-0 layout (a
    prefix of every version, as Kafka reads it): INT16 version, topics as an INT32 count
    of INT16-length strings, then nullable user data. None when the bytes do not parse."""
    try:
        version = int.from_bytes(metadata[0:2], "big", signed=True)
        if len(metadata) < 2 or version < 0:
            return None
        count = int.from_bytes(metadata[2:6], "big", signed=True)
        if len(metadata) < 6 or count < -1:
            return None
        position = 6
        topics = []
        for _ in range(max(count, 0)):
            length = int.from_bytes(metadata[position:position + 2], "big", signed=True)
            position += 2
            if length < 0 or position + length > len(metadata):
                return None
            topics.append(bytes(metadata[position:position + length]).decode("utf-8"))
            position += length
        if position + 4 > len(metadata):
            return None
        user_data_length = int.from_bytes(metadata[position:position + 4], "big", signed=True)
        if user_data_length < -1 or position + 4 + max(user_data_length, 0) > len(metadata):
            return None
        return topics
    except UnicodeDecodeError:
        return None
