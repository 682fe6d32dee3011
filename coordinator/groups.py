"""The group coordinator for the classic rebalance protocol, and committed offsets.

A state machine without sockets or clocks, following Kafka's GroupMetadataManager,
OffsetMetadataManager and ClassicGroup (group-coordinator module, Kafka 4). Every call
takes plain arguments and `now_ms` and returns an `Outcome`:

- `records`: __consumer_offsets records, each with the partition it belongs to. The
  broker appends them (in order) BEFORE it sends any answer of that Outcome.
- `response`: the answer to this call. JoinGroup and SyncGroup have none here: they are
  answered through `replies`, because Kafka parks them until the rebalance moves on.
- `replies`: (token, JoinGroup or SyncGroup response) for parked requests, including
  the call's own when it is answered at once. A token is whatever the broker passed
  with the request (not None); it may be answered by a later call or by `expire()`.

Timers are data: after every call, `next_deadline()` says when `expire(now_ms)` must
run next (it may already be due, e.g. an initial rebalance delay of 0).

Durable state (committed offsets, group deletions) changes only through `replay()`: live
operations build records and apply them through it, and `load()` replays a partition's
log at start. GroupMetadata records are the group's own snapshot (generation, leader,
members and assignments): live they are written and not replayed, as Kafka does, and
`load()` rebuilds groups from them.
"""
from __future__ import annotations

import heapq
import logging
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Generic, Iterable, NamedTuple, TypeVar

from coordinator.assignors import assignor_for
from coordinator.classic_group import (
    CONSUMER_PROTOCOL_TYPE, UNKNOWN_MEMBER_ID, ClassicGroup, ClassicGroupMember, GroupState,
    Protocols,
)
from coordinator.consumer_group import (
    GROUP_TYPE_CONSUMER, ConsumerGroup, ConsumerGroupProtocol, HeartbeatRequest, TopicsMetadata,
    is_consumer_group_key,
)
from coordinator.group_records import (
    NO_LEADER_EPOCH, NO_TIMESTAMP, GroupMetadataKey, GroupMetadataValue, GroupRecordKey,
    GroupRecordValue, MemberMetadata, OffsetCommitKey, OffsetCommitValue, decode_key,
    decode_value, encode_key, encode_value, partition_for,
)
from wire.errors import ErrorCode

log = logging.getLogger(__name__)

T = TypeVar("T")

# Kafka's GroupCoordinatorConfig.CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS (not a config):
# how long a new member's JoinGroup may wait before the member is dropped.
CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
DEFAULT_RETENTION_TIME_MS = -1  # OffsetCommit retention_time_ms: use the broker's retention
INVALID_OFFSET = -1
GROUP_TYPE_CLASSIC = "classic"


@dataclass(frozen=True)
class GroupConfig:
    """Kafka's group coordinator settings, with Kafka's defaults (group.* and offsets.*)."""

    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1800000
    group_initial_rebalance_delay_ms: int = 3000
    group_max_size: int = 2147483647
    offsets_retention_minutes: int = 10080
    offsets_retention_check_interval_ms: int = 600000
    offset_metadata_max_bytes: int = 4096
    offsets_topic_num_partitions: int = 50
    # KIP-848 consumer groups (group.consumer.*).
    group_consumer_session_timeout_ms: int = 45000
    group_consumer_heartbeat_interval_ms: int = 5000
    group_consumer_max_size: int = 2147483647
    group_consumer_assignors: tuple[str, ...] = ("uniform", "range")

    @property
    def offsets_retention_ms(self) -> int:
        return self.offsets_retention_minutes * 60 * 1000


class CoordinatorRecord(NamedTuple):
    """One record to append to __consumer_offsets partition `partition`; value None is a
    tombstone."""

    partition: int
    key: bytes
    value: bytes | None


@dataclass(frozen=True)
class Outcome(Generic[T]):
    records: list[CoordinatorRecord]  # appended before any answer below is sent
    response: T
    replies: list[tuple[Any, dict]] = field(default_factory=list)
    # Transaction markers to write after `records` (TransactionCoordinator only):
    # coordinator.transactions.MarkerRequest each.
    markers: list = field(default_factory=list)
    # (producer_id, producer_epoch): `records` must be appended as a transactional batch
    # of that producer (TxnOffsetCommit), ended later by its transaction marker.
    transactional: tuple[int, int] | None = None


class LoadedRecord(NamedTuple):
    """One entry of a __consumer_offsets partition for load(): a record (control None)
    with the producer id of a transactional batch (None otherwise), or a transaction
    marker (control True: commit, False: abort; key and value unused) of producer_id."""

    key: bytes | None
    value: bytes | None
    producer_id: int | None = None
    control: bool | None = None


@dataclass(frozen=True)
class OffsetAndMetadata:
    committed_offset: int
    leader_epoch: int | None
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int | None  # from OffsetCommit v2-v4 retention_time_ms only


class PartitionState(Enum):
    LOADING = "loading"
    ACTIVE = "active"


class _Effects:
    """What one call produces: records (with whether they are replayed live) and replies."""

    def __init__(self) -> None:
        self.records: list[tuple[int, GroupRecordKey, GroupRecordValue | None, bool]] = []
        self.replies: list[tuple[Any, dict]] = []

    def record(self, partition: int, key: GroupRecordKey, value: GroupRecordValue | None,
               replay_live: bool) -> None:
        self.records.append((partition, key, value, replay_live))

    def reply(self, token: Any, response: dict) -> None:
        if token is None:
            raise AssertionError("a parked request without a token")
        self.replies.append((token, response))


class _Timers:
    """Deadlines by key; rescheduling a key replaces its deadline (a heap with lazy
    deletion keeps next_deadline cheap)."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[int, int, Callable[[_Effects], None]]] = {}
        self._heap: list[tuple[int, int, tuple]] = []
        self._sequence_floor = 0

    def schedule(self, key: tuple, deadline_ms: int, action: Callable[[_Effects], None]) -> None:
        sequence = self._sequence_floor
        self._sequence_floor += 1
        self._entries[key] = (deadline_ms, sequence, action)
        heapq.heappush(self._heap, (deadline_ms, sequence, key))

    def cancel(self, key: tuple) -> None:
        self._entries.pop(key, None)

    def cancel_group(self, group_id: str) -> None:
        for key in [key for key in self._entries if len(key) > 1 and key[1] == group_id]:
            del self._entries[key]

    def _drop_stale(self) -> None:
        while self._heap:
            deadline_ms, sequence, key = self._heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry[1] == sequence:
                return
            heapq.heappop(self._heap)

    def next_deadline(self) -> int | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def watermark(self) -> int:
        """A sequence number: timers scheduled from now on have one at least as large."""
        return self._sequence_floor

    def pop_due(self, now_ms: int, scheduled_before: int) -> Callable[[_Effects], None] | None:
        """The action of the earliest timer due at now_ms that was scheduled before the
        `scheduled_before` watermark (so a timer re-armed with a zero delay waits for the
        next expire() instead of spinning), removing it; None when there is none."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now_ms or self._heap[0][1] >= scheduled_before:
            return None
        _, _, key = heapq.heappop(self._heap)
        return self._entries.pop(key)[2]

    def deadline(self, key: tuple) -> int | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]


def _join_response(member_id: str, error: ErrorCode, *, generation_id: int = -1,
                   protocol_type: str | None = None, protocol_name: str | None = "",
                   leader: str = "", skip_assignment: bool = False,
                   members: list[dict] | None = None) -> dict:
    """A JoinGroup response body; the defaults are JoinGroupResponse.json's."""
    return {
        "error_code": error,
        "generation_id": generation_id,
        "protocol_type": protocol_type,
        "protocol_name": protocol_name,
        "leader": leader,
        "skip_assignment": skip_assignment,
        "member_id": member_id,
        "members": members if members is not None else [],
    }


def _sync_response(error: ErrorCode, protocol_type: str | None = None,
                   protocol_name: str | None = None, assignment: bytes = b"") -> dict:
    return {"error_code": error, "protocol_type": protocol_type,
            "protocol_name": protocol_name, "assignment": assignment}


def _java_string_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # String.length() counts UTF-16 code units


def _by_topic(items: Iterable[tuple[str, dict]]) -> list[dict]:
    """[(topic, partition entry)] -> [{name, partitions}] in first-seen topic order."""
    topics: dict[str, list[dict]] = {}
    for topic, entry in items:
        topics.setdefault(topic, []).append(entry)
    return [{"name": topic, "partitions": partitions} for topic, partitions in topics.items()]


class GroupCoordinator:
    """Classic groups and committed offsets of the __consumer_offsets partitions this
    broker leads. A partition is served after `load()` (or `begin_loading()` ... `replay()`
    ... `finish_loading()`); before, its groups get COORDINATOR_LOAD_IN_PROGRESS while
    loading and NOT_COORDINATOR otherwise."""

    def __init__(self, config: GroupConfig | None = None,
                 new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
                 topic_metadata: Callable[[], TopicsMetadata] = dict) -> None:
        """`topic_metadata()`: the broker's topics as {name: (topic id, partition count)},
        read by consumer group heartbeats (subscriptions and assignments)."""
        self.config = config if config is not None else GroupConfig()
        self._new_uuid = new_uuid  # member ids are `<client id or instance id>-<uuid>`
        self._groups: dict[str, ClassicGroup] = {}
        # group id -> topic -> partition -> committed offset
        self._offsets: dict[str, dict[str, dict[int, OffsetAndMetadata]]] = {}
        # Transactional offsets waiting for their marker (Kafka's
        # pendingTransactionalOffsets): producer id -> group -> topic -> partition ->
        # (offset, replay sequence). The sequence orders them against plain commits as
        # Kafka's record offsets do: the most recent record wins at commit.
        self._pending_offsets: dict[int, dict[str, dict[str, dict[int, tuple[OffsetAndMetadata, int]]]]] = {}
        self._offset_sequences: dict[tuple[str, str, int], int] = {}
        self._replay_sequence = 0
        self._partitions: dict[int, PartitionState] = {}
        self._timers = _Timers()
        self._now_ms = 0
        self._consumer = ConsumerGroupProtocol(
            self, [assignor_for(name) for name in self.config.group_consumer_assignors], topic_metadata)

    # -- ownership and loading --------------------------------------------------------

    def partition_for(self, group_id: str) -> int:
        """The __consumer_offsets partition holding this group's records."""
        return partition_for(group_id, self.config.offsets_topic_num_partitions)

    def begin_loading(self, partition: int) -> None:
        """Take over a partition; its groups answer COORDINATOR_LOAD_IN_PROGRESS until
        finish_loading()."""
        self._partitions[partition] = PartitionState.LOADING

    def finish_loading(self, partition: int, now_ms: int) -> Outcome[None]:
        """Serve the partition's groups: loaded members get a fresh session timeout."""
        self._now_ms = now_ms
        effects = _Effects()
        self._partitions[partition] = PartitionState.ACTIVE
        for group in [group for group in self._groups.values() if group.partition == partition]:
            for member in group.members.values():
                self._schedule_heartbeat(group, member)
            if len(group.members) > self.config.group_max_size:
                # group.max.size may have been lowered since the group was written.
                self._prepare_rebalance(group, effects, "loaded group is over group.max.size")
        self._consumer.on_loaded(partition)
        if self._timers.deadline(("retention",)) is None:
            self._schedule_retention_check()
        return self._outcome(effects, None)

    def load(self, partition: int, records: Iterable[tuple[bytes, bytes | None] | LoadedRecord],
             now_ms: int) -> Outcome[None]:
        """Replay the partition's log in offset order, then serve it. Each item is a
        (key, value) record outside transactions or a LoadedRecord: a record of a
        transactional batch (its offsets stay pending until the producer's marker) or a
        transaction marker (which commits or drops that producer's pending offsets)."""
        self.begin_loading(partition)
        for item in records:
            if isinstance(item, LoadedRecord):
                if item.control is not None:
                    self._replay_marker(item.producer_id, item.control, partition)
                else:
                    self.replay(item.key, item.value, item.producer_id)
            else:
                key, value = item
                self.replay(key, value)
        return self.finish_loading(partition, now_ms)

    def unload(self, partition: int, now_ms: int) -> Outcome[None]:
        """Give up a partition (another broker leads it now): its groups die, parked
        requests get NOT_COORDINATOR, its state is dropped."""
        self._now_ms = now_ms
        effects = _Effects()
        self._partitions.pop(partition, None)
        for group in [group for group in self._groups.values() if group.partition == partition]:
            previous_state = group.state
            group.transition_to(GroupState.DEAD, now_ms)
            for member in group.members.values():
                if previous_state is GroupState.PREPARING_REBALANCE:
                    token = group.take_join_token(member)
                    if token is not None:
                        effects.reply(token, _join_response(member.member_id, ErrorCode.NOT_COORDINATOR))
                elif previous_state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
                    token = group.take_sync_token(member)
                    if token is not None:
                        effects.reply(token, _sync_response(ErrorCode.NOT_COORDINATOR))
            del self._groups[group.group_id]
            self._offsets.pop(group.group_id, None)
            self._drop_pending_offsets(group.group_id)
            self._timers.cancel_group(group.group_id)
        for group_id in [group_id for group_id, group in self._consumer.groups.items()
                         if group.partition == partition]:
            self._offsets.pop(group_id, None)
            self._drop_pending_offsets(group_id)
        self._consumer.unload(partition)
        return self._outcome(effects, None)

    def _coordinator_error(self, group_id: str) -> ErrorCode | None:
        state = self._partitions.get(self.partition_for(group_id))
        if state is PartitionState.ACTIVE:
            return None
        if state is PartitionState.LOADING:
            return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return ErrorCode.NOT_COORDINATOR

    # -- replay -------------------------------------------------------------------------

    def replay(self, key: bytes, value: bytes | None, producer_id: int | None = None) -> None:
        """Apply one __consumer_offsets record; producer_id: that of the transactional
        batch holding it (its offset commit stays pending until the marker), None for a
        plain batch. Record types other than offset commits, group metadata and KIP-848
        consumer groups (share groups) are skipped, as Kafka's loader skips types it does
        not know. Raises GroupRecordError for malformed bytes."""
        decoded_key = decode_key(key)
        if decoded_key is None:
            return
        self._replay(decoded_key, decode_value(decoded_key, value), producer_id)

    def _replay(self, key: GroupRecordKey, value: GroupRecordValue | None,
                producer_id: int | None = None) -> None:
        if isinstance(key, OffsetCommitKey):
            self._replay_offset_commit(key, value, producer_id)
        elif is_consumer_group_key(key):
            self._consumer.replay(key, value)
        else:
            self._replay_group_metadata(key, value)

    def _replay_offset_commit(self, key: OffsetCommitKey, value: OffsetCommitValue | None,
                              producer_id: int | None = None) -> None:
        self._replay_sequence += 1
        if value is None:
            # A tombstone removes the pending transactional offsets of the partition too.
            self._offset_sequences.pop((key.group, key.topic, key.partition), None)
            for producer_id_, by_group in list(self._pending_offsets.items()):
                by_topic = by_group.get(key.group)
                if by_topic is not None and by_topic.get(key.topic, {}).pop(key.partition, None) is not None:
                    if not by_topic[key.topic]:
                        del by_topic[key.topic]
                    if not by_topic:
                        del by_group[key.group]
                    if not by_group:
                        del self._pending_offsets[producer_id_]
            by_topic = self._offsets.get(key.group)
            if by_topic is not None and key.partition in by_topic.get(key.topic, {}):
                del by_topic[key.topic][key.partition]
                if not by_topic[key.topic]:
                    del by_topic[key.topic]
                if not by_topic:
                    del self._offsets[key.group]
            return
        if key.group not in self._groups and key.group not in self._consumer.groups:
            # Offsets committed without group membership make a "simple" group: an Empty
            # classic group with no protocol type.
            self._groups[key.group] = ClassicGroup(
                key.group, self.partition_for(key.group), GroupState.EMPTY, None)
        committed = OffsetAndMetadata(
            committed_offset=value.offset,
            leader_epoch=None if value.leader_epoch == NO_LEADER_EPOCH else value.leader_epoch,
            metadata=value.metadata,
            commit_timestamp_ms=value.commit_timestamp_ms,
            expire_timestamp_ms=None if value.expire_timestamp_ms == NO_TIMESTAMP else value.expire_timestamp_ms,
        )
        if producer_id is not None:
            (self._pending_offsets.setdefault(producer_id, {}).setdefault(key.group, {})
             .setdefault(key.topic, {}))[key.partition] = (committed, self._replay_sequence)
            return
        self._offsets.setdefault(key.group, {}).setdefault(key.topic, {})[key.partition] = committed
        self._offset_sequences[(key.group, key.topic, key.partition)] = self._replay_sequence

    def _replay_marker(self, producer_id: int, commit: bool, partition: int) -> None:
        """A transaction marker of producer_id in __consumer_offsets partition `partition`:
        commit moves its pending offsets of the groups there into the committed offsets
        (unless a later plain commit of the same partition exists), abort drops them
        (Kafka's replayEndTransactionMarker)."""
        by_group = self._pending_offsets.get(producer_id)
        if by_group is None:
            return
        for group_id in [group_id for group_id in by_group if self.partition_for(group_id) == partition]:
            by_topic = by_group.pop(group_id)
            if not commit:
                continue
            for topic, by_partition in by_topic.items():
                for topic_partition, (committed, sequence) in by_partition.items():
                    existing = self._offset_sequences.get((group_id, topic, topic_partition))
                    if existing is None or sequence > existing:
                        self._offsets.setdefault(group_id, {}).setdefault(topic, {})[topic_partition] = committed
                        self._offset_sequences[(group_id, topic, topic_partition)] = sequence
        if not by_group:
            del self._pending_offsets[producer_id]

    def _drop_pending_offsets(self, group_id: str) -> None:
        for producer_id in list(self._pending_offsets):
            self._pending_offsets[producer_id].pop(group_id, None)
            if not self._pending_offsets[producer_id]:
                del self._pending_offsets[producer_id]

    def _has_pending_offset(self, group_id: str, topic: str, partition: int) -> bool:
        return any(partition in by_group.get(group_id, {}).get(topic, {})
                   for by_group in self._pending_offsets.values())

    def _has_open_transactions(self, group_id: str) -> bool:
        return any(group_id in by_group for by_group in self._pending_offsets.values())

    def _replay_group_metadata(self, key: GroupMetadataKey, value: GroupMetadataValue | None) -> None:
        previous = self._groups.pop(key.group, None)
        if previous is not None:
            self._timers.cancel_group(key.group)
        if value is None:
            return
        group = ClassicGroup(
            key.group,
            self.partition_for(key.group),
            GroupState.STABLE if value.members else GroupState.EMPTY,
            None if value.current_state_timestamp_ms == NO_TIMESTAMP else value.current_state_timestamp_ms,
            generation_id=value.generation,
            protocol_type=value.protocol_type or None,
            protocol_name=value.protocol,
            leader_id=value.leader,
        )
        for member in value.members:
            group.add(ClassicGroupMember(
                member_id=member.member_id,
                group_instance_id=member.group_instance_id,
                client_id=member.client_id,
                client_host=member.client_host,
                # Records before v1 have no rebalance timeout: Kafka uses the session's.
                rebalance_timeout_ms=(member.session_timeout_ms if member.rebalance_timeout_ms == -1
                                      else member.rebalance_timeout_ms),
                session_timeout_ms=member.session_timeout_ms,
                protocol_type=value.protocol_type,
                protocols=((value.protocol, member.subscription),),
                assignment=member.assignment,
            ))
        group.subscribed_topics = group.compute_subscribed_topics()
        self._groups[key.group] = group

    # -- records --------------------------------------------------------------------------

    def _outcome(self, effects: _Effects, response: T) -> Outcome[T]:
        records = []
        for partition, key, value, replay_live in effects.records:
            if replay_live:
                self._replay(key, value)
            records.append(CoordinatorRecord(
                partition, encode_key(key), None if value is None else encode_value(value)))
        return Outcome(records, response, effects.replies)

    def _write_group_metadata(self, group: ClassicGroup, effects: _Effects,
                              assignment: dict[str, bytes] | None) -> None:
        """The group as GroupMetadataValue; `assignment` None writes the empty-group form
        Kafka writes when it creates a group."""
        if assignment is None:
            value = GroupMetadataValue("", 0, None, None, self._state_timestamp(group), ())
        else:
            value = GroupMetadataValue(
                protocol_type=group.protocol_type or "",
                generation=group.generation_id,
                protocol=group.protocol_name,
                leader=group.leader_id,
                current_state_timestamp_ms=self._state_timestamp(group),
                members=tuple(MemberMetadata(
                    member_id=member.member_id,
                    group_instance_id=member.group_instance_id,
                    client_id=member.client_id,
                    client_host=member.client_host,
                    rebalance_timeout_ms=member.rebalance_timeout_ms,
                    session_timeout_ms=member.session_timeout_ms,
                    subscription=member.metadata(group.protocol_name),
                    assignment=assignment[member.member_id],
                ) for member in group.members.values()),
            )
        effects.record(group.partition, GroupMetadataKey(group.group_id), value, replay_live=False)

    @staticmethod
    def _state_timestamp(group: ClassicGroup) -> int:
        return NO_TIMESTAMP if group.current_state_timestamp_ms is None else group.current_state_timestamp_ms

    # -- timers ---------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When expire() must next run (ms, same clock as now_ms); None: no timer."""
        return self._timers.next_deadline()

    def expire(self, now_ms: int) -> list[Outcome[None]]:
        """Run every timer due at now_ms, in deadline order: session timeouts, join phase
        ends (rebalance timeout, initial rebalance delay), sync timeouts, offset retention.
        A timer armed during this call runs at a later call even if already due, so check
        next_deadline() again afterwards. Only Outcomes with records or replies are kept."""
        outcomes = []
        watermark = self._timers.watermark()
        while (action := self._timers.pop_due(now_ms, watermark)) is not None:
            self._now_ms = now_ms
            effects = _Effects()
            action(effects)
            if effects.records or effects.replies:
                outcomes.append(self._outcome(effects, None))
        return outcomes

    def _schedule_heartbeat(self, group: ClassicGroup, member: ClassicGroupMember,
                            timeout_ms: int | None = None) -> None:
        group_id, member_id = group.group_id, member.member_id
        self._timers.schedule(
            ("heartbeat", group_id, member_id),
            self._now_ms + (member.session_timeout_ms if timeout_ms is None else timeout_ms),
            lambda effects: self._expire_heartbeat(group_id, member_id, effects))

    def _schedule_join(self, group: ClassicGroup, delay_ms: int,
                       action: Callable[[_Effects], None]) -> None:
        self._timers.schedule(("join", group.group_id), self._now_ms + delay_ms, action)

    def _schedule_complete_join(self, group: ClassicGroup) -> None:
        group_id = group.group_id
        self._schedule_join(group, group.rebalance_timeout_ms(),
                            lambda effects: self._complete_join_by_id(group_id, effects))

    def _schedule_pending_sync(self, group: ClassicGroup) -> None:
        group_id, generation_id = group.group_id, group.generation_id
        self._timers.schedule(
            ("sync", group_id), self._now_ms + group.rebalance_timeout_ms(),
            lambda effects: self._expire_pending_sync(group_id, generation_id, effects))

    def _schedule_retention_check(self) -> None:
        self._timers.schedule(("retention",), self._now_ms + self.config.offsets_retention_check_interval_ms,
                              self._cleanup_group_metadata)

    def _expire_heartbeat(self, group_id: str, member_id: str, effects: _Effects) -> None:
        group = self._groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD):
            return
        if group.is_pending_member(member_id):
            log.info("pending member %s of group %s expired", member_id, group_id)
            group.remove(member_id)
            if group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
                self._complete_join(group, effects)
            return
        member = group.members.get(member_id)
        if member is not None and not member.has_satisfied_heartbeat():
            log.info("member %s of group %s failed its session timeout, removing it", member_id, group_id)
            self._remove_member_and_update_group(group, member, effects)

    def _remove_member_and_update_group(self, group: ClassicGroup, member: ClassicGroupMember,
                                        effects: _Effects) -> None:
        # A new member may time out while its JoinGroup is parked: answer it first, so
        # a live client retries the join.
        token = group.take_join_token(member)
        if token is not None:
            effects.reply(token, _join_response(UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group, effects, "member expired")
        elif group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
            self._complete_join(group, effects)

    def _expire_pending_sync(self, group_id: str, generation_id: int, effects: _Effects) -> None:
        group = self._groups.get(group_id)
        if group is None or group.generation_id != generation_id:
            return
        if group.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and group.pending_sync_members:
            missing = list(group.pending_sync_members)
            for member_id in missing:
                group.remove(member_id)
                self._timers.cancel(("heartbeat", group_id, member_id))
            log.info("group %s removed members %s that sent no SyncGroup", group_id, missing)
            self._prepare_rebalance(group, effects, "pending SyncGroup expired")

    # -- rebalance machinery ----------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup, effects: _Effects,
                                                  reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, effects, reason)
        else:
            self._maybe_complete_join_phase(group, effects)

    def _prepare_rebalance(self, group: ClassicGroup, effects: _Effects, reason: str) -> None:
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            # Members waiting in SyncGroup must rejoin instead.
            for member in group.members.values():
                member.assignment = b""
            self._propagate_assignment(group, ErrorCode.REBALANCE_IN_PROGRESS, effects)
        group.pending_sync_members.clear()
        self._timers.cancel(("sync", group.group_id))
        is_initial_rebalance = group.is_in(GroupState.EMPTY)
        if is_initial_rebalance:
            # group.initial.rebalance.delay.ms: give the other members of a new group
            # time to join before the first generation (Kafka's InitialDelayedJoin).
            delay_ms = self.config.group_initial_rebalance_delay_ms
            remaining_ms = max(group.rebalance_timeout_ms() - delay_ms, 0)
            group_id = group.group_id
            self._schedule_join(group, delay_ms, lambda effects: self._try_complete_initial_rebalance(
                group_id, delay_ms, remaining_ms, effects))
        group.transition_to(GroupState.PREPARING_REBALANCE, self._now_ms)
        log.info("preparing to rebalance group %s with old generation %d (reason: %s)",
                 group.group_id, group.generation_id, reason)
        if not is_initial_rebalance:
            if group.has_all_members_joined():
                self._complete_join(group, effects)
            else:
                self._schedule_complete_join(group)

    def _try_complete_initial_rebalance(self, group_id: str, delay_ms: int, remaining_ms: int,
                                        effects: _Effects) -> None:
        group = self._groups.get(group_id)
        if group is None:
            return
        if group.new_member_added and remaining_ms != 0:
            # Another member joined during the delay: wait again, never past the
            # rebalance timeout in total.
            group.new_member_added = False
            new_delay_ms = min(self.config.group_initial_rebalance_delay_ms, remaining_ms)
            new_remaining_ms = max(remaining_ms - delay_ms, 0)
            self._schedule_join(group, new_delay_ms, lambda effects: self._try_complete_initial_rebalance(
                group_id, new_delay_ms, new_remaining_ms, effects))
        else:
            self._complete_join(group, effects)

    def _maybe_complete_join_phase(self, group: ClassicGroup, effects: _Effects) -> None:
        if (group.is_in(GroupState.PREPARING_REBALANCE)
                and group.previous_state is not GroupState.EMPTY  # the initial delay decides
                and group.has_all_members_joined()):
            self._complete_join(group, effects)

    def _complete_join_by_id(self, group_id: str, effects: _Effects) -> None:
        group = self._groups.get(group_id)
        if group is not None:
            self._complete_join(group, effects)

    def _complete_join(self, group: ClassicGroup, effects: _Effects) -> None:
        """End the join phase: drop dynamic members that did not rejoin, start the next
        generation and answer every parked JoinGroup (the leader gets the members)."""
        self._timers.cancel(("join", group.group_id))
        for member in group.not_yet_rejoined_members():
            if not member.is_static:
                group.remove(member.member_id)
                self._timers.cancel(("heartbeat", group.group_id, member.member_id))
        if group.is_in(GroupState.DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only static members are left and none rejoined: wait another rebalance
            # timeout (their sessions expire meanwhile).
            self._schedule_complete_join(group)
            return
        group.init_next_generation(self._now_ms)
        if group.is_in(GroupState.EMPTY):
            log.info("group %s with generation %d is now empty", group.group_id, group.generation_id)
            self._write_group_metadata(group, effects, {})
            return
        log.info("stabilized group %s generation %d with %d members",
                 group.group_id, group.generation_id, len(group.members))
        for member in group.members.values():
            token = group.take_join_token(member)
            if token is not None:
                effects.reply(token, _join_response(
                    member.member_id, ErrorCode.NONE,
                    generation_id=group.generation_id,
                    protocol_type=group.protocol_type,
                    protocol_name=group.protocol_name,
                    leader=group.leader_id,
                    members=group.join_members_for_leader() if group.is_leader(member.member_id) else [],
                ))
            self._schedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        self._schedule_pending_sync(group)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode, effects: _Effects) -> None:
        ok = error is ErrorCode.NONE
        for member in group.members.values():
            token = group.take_sync_token(member)
            if token is not None:
                effects.reply(token, _sync_response(
                    error,
                    group.protocol_type if ok else None,
                    group.protocol_name if ok else None,
                    member.assignment,
                ))
                # Restart the session: an expiry while it waited was ignored.
                self._schedule_heartbeat(group, member)

    # -- JoinGroup ------------------------------------------------------------------------

    def join_group(
        self,
        token: Any,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        reason: str | None = None,
        require_known_member_id: bool = True,
        supports_skip_assignment: bool = True,
        *,
        now_ms: int,
    ) -> Outcome[None]:
        """JoinGroup. `require_known_member_id`: v4+ (a new dynamic member first gets
        MEMBER_ID_REQUIRED with its id); `supports_skip_assignment`: v9+. The answer,
        now or later, is a reply for `token` with JoinGroup response fields."""
        self._now_ms = now_ms
        effects = _Effects()
        error = None
        if not group_id:
            error = ErrorCode.INVALID_GROUP_ID
        elif not (self.config.group_min_session_timeout_ms <= session_timeout_ms
                  <= self.config.group_max_session_timeout_ms):
            error = ErrorCode.INVALID_SESSION_TIMEOUT
        else:
            error = self._coordinator_error(group_id)
        if error is not None:
            effects.reply(token, _join_response(member_id, error))
            return self._outcome(effects, None)

        request = _JoinRequest(token, member_id, group_instance_id, client_id, client_host,
                               session_timeout_ms, rebalance_timeout_ms, protocol_type,
                               tuple((name, bytes(metadata)) for name, metadata in protocols),
                               reason or "not provided", supports_skip_assignment)
        is_unknown_member = member_id == UNKNOWN_MEMBER_ID
        consumer_group = self._consumer.groups.get(group_id)
        if consumer_group is not None:
            if not consumer_group.is_empty:
                # Classic members joining a KIP-848 group (Kafka's online migration) are
                # not supported.
                effects.reply(token, _join_response(member_id, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
                return self._outcome(effects, None)
            # An Empty consumer group gives way to a classic one; its offsets stay.
            self._consumer.deletion_records(consumer_group, effects)
        group = self._groups.get(group_id)
        is_new_group = group is None
        if group is None:
            if not is_unknown_member:
                effects.reply(token, _join_response(member_id, ErrorCode.UNKNOWN_MEMBER_ID))
                return self._outcome(effects, None)
            group = ClassicGroup(group_id, self.partition_for(group_id), GroupState.EMPTY, now_ms)
            self._groups[group_id] = group

        if not self._accept_joining_member(group, member_id):
            group.remove(member_id)
            effects.reply(token, _join_response(UNKNOWN_MEMBER_ID, ErrorCode.GROUP_MAX_SIZE_REACHED))
        elif is_unknown_member:
            self._join_new_member(group, request, require_known_member_id, effects)
        else:
            self._join_existing_member(group, request, effects)

        if is_new_group and not any(isinstance(key, GroupMetadataKey) for _, key, _, _ in effects.records):
            # Kafka commits a new group with an empty GroupMetadata record.
            self._write_group_metadata(group, effects, None)
        return self._outcome(effects, None)

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        if group.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        if group.is_in(GroupState.PREPARING_REBALANCE):
            # Counting the members awaiting a JoinGroup answer (not the group size, which
            # may be over a lowered limit) turns away the last members to rejoin.
            member = group.members.get(member_id)
            return ((member is not None and member.is_awaiting_join)
                    or group.num_members_awaiting_join < self.config.group_max_size)
        return group.has_member(member_id) or len(group.members) < self.config.group_max_size

    def _join_new_member(self, group: ClassicGroup, request: _JoinRequest,
                         require_known_member_id: bool, effects: _Effects) -> None:
        if group.is_in(GroupState.DEAD):
            effects.reply(request.token, _join_response(UNKNOWN_MEMBER_ID, ErrorCode.COORDINATOR_NOT_AVAILABLE))
            return
        if not group.supports_protocols(request.protocol_type, request.protocol_names()):
            effects.reply(request.token, _join_response(UNKNOWN_MEMBER_ID, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
            return
        prefix = request.group_instance_id if request.group_instance_id is not None else request.client_id
        new_member_id = f"{prefix}-{self._new_uuid()}"
        if request.group_instance_id is not None:
            existing_member_id = group.static_members.get(request.group_instance_id)
            if existing_member_id is not None:
                log.info("static member %s of group %s rejoins with a new member id %s (was %s)",
                         request.group_instance_id, group.group_id, new_member_id, existing_member_id)
                self._update_static_member_then_rebalance_or_complete_join(
                    group, request, existing_member_id, new_member_id, effects)
            else:
                self._add_member_then_rebalance_or_complete_join(group, request, new_member_id, effects)
        elif require_known_member_id:
            # KIP-394: hand out the member id first, so a client that times out and
            # retries does not leave a defunct member behind in the rebalance.
            group.pending_join_members.add(new_member_id)
            group_id = group.group_id
            self._timers.schedule(
                ("heartbeat", group_id, new_member_id), self._now_ms + request.session_timeout_ms,
                lambda effects: self._expire_heartbeat(group_id, new_member_id, effects))
            effects.reply(request.token, _join_response(new_member_id, ErrorCode.MEMBER_ID_REQUIRED))
        else:
            self._add_member_then_rebalance_or_complete_join(group, request, new_member_id, effects)

    def _join_existing_member(self, group: ClassicGroup, request: _JoinRequest, effects: _Effects) -> None:
        member_id = request.member_id
        if group.is_in(GroupState.DEAD):
            effects.reply(request.token, _join_response(member_id, ErrorCode.COORDINATOR_NOT_AVAILABLE))
            return
        if not group.supports_protocols(request.protocol_type, request.protocol_names()):
            effects.reply(request.token, _join_response(member_id, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
            return
        if group.is_pending_member(member_id):
            if request.group_instance_id is not None:
                raise AssertionError(f"pending member {member_id} joined with group instance id "
                                     f"{request.group_instance_id}")
            self._add_member_then_rebalance_or_complete_join(group, request, member_id, effects)
            return
        error = group.validate_member(member_id, request.group_instance_id)
        if error is not None:
            effects.reply(request.token, _join_response(member_id, error, protocol_name=None))
            return
        member = group.members[member_id]
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._update_member_then_rebalance_or_complete_join(group, member, request, effects)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.protocols == request.protocols:
                # Same metadata: the member likely missed its JoinGroup answer; repeat it.
                effects.reply(request.token, self._current_generation_join_response(
                    group, member_id, with_members=group.is_leader(member_id)))
            else:
                self._update_member_then_rebalance_or_complete_join(group, member, request, effects)
        elif group.is_in(GroupState.STABLE):
            if group.is_leader(member_id) or member.protocols != request.protocols:
                # A leader's JoinGroup asks for a rebalance (e.g. topic metadata changed);
                # changed metadata needs one.
                self._update_member_then_rebalance_or_complete_join(group, member, request, effects)
            else:
                effects.reply(request.token, self._current_generation_join_response(
                    group, member_id, with_members=False))
        else:
            # Empty: the member is gone from the generation; it must reset and rejoin.
            effects.reply(request.token, _join_response(member_id, ErrorCode.UNKNOWN_MEMBER_ID))

    @staticmethod
    def _current_generation_join_response(group: ClassicGroup, member_id: str, with_members: bool,
                                          leader: str | None = None, skip_assignment: bool = False) -> dict:
        return _join_response(
            member_id, ErrorCode.NONE,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=group.leader_id if leader is None else leader,
            skip_assignment=skip_assignment,
            members=group.join_members_for_leader() if with_members else [],
        )

    def _add_member_then_rebalance_or_complete_join(self, group: ClassicGroup, request: _JoinRequest,
                                                    member_id: str, effects: _Effects) -> None:
        member = ClassicGroupMember(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=request.client_id,
            client_host=request.client_host,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            session_timeout_ms=request.session_timeout_ms,
            protocol_type=request.protocol_type,
            protocols=request.protocols,
            is_new=True,
        )
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True
        group.add(member, request.token)
        # A new member cannot heartbeat while its JoinGroup is parked, and a client that
        # gave up would leave it forever: bound its wait.
        self._schedule_heartbeat(group, member, CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(
            group, effects, f"adding new member {member_id} with group instance id "
                            f"{request.group_instance_id}; client reason: {request.reason}")

    def _update_member_then_rebalance_or_complete_join(self, group: ClassicGroup, member: ClassicGroupMember,
                                                       request: _JoinRequest, effects: _Effects) -> None:
        group.update_member(member, request.protocols, request.rebalance_timeout_ms,
                            request.session_timeout_ms, request.token)
        self._maybe_prepare_rebalance_or_complete_join(
            group, effects, f"member {member.member_id} joins during {group.state.value}; "
                            f"client reason: {request.reason}")

    def _update_static_member_then_rebalance_or_complete_join(
            self, group: ClassicGroup, request: _JoinRequest, old_member_id: str, new_member_id: str,
            effects: _Effects) -> None:
        current_leader = group.leader_id
        old_member, new_member = group.replace_static_member(
            request.group_instance_id, old_member_id, new_member_id)
        # The old member id is fenced: answer whatever it has parked.
        old_join_token = old_member.join_token
        old_member.join_token = None
        if old_join_token is not None:
            effects.reply(old_join_token, _join_response(
                old_member_id, ErrorCode.FENCED_INSTANCE_ID, protocol_name=None))
        old_sync_token = group.take_sync_token(old_member)
        if old_sync_token is not None:
            effects.reply(old_sync_token, _sync_response(ErrorCode.FENCED_INSTANCE_ID))
        self._timers.cancel(("heartbeat", group.group_id, old_member_id))
        self._schedule_heartbeat(group, new_member)
        group.update_member(new_member, request.protocols, request.rebalance_timeout_ms,
                            request.session_timeout_ms, request.token)

        if group.is_in(GroupState.STABLE):
            if group.protocol_name == group.select_protocol():
                # KIP-345: same protocol, so the assignment stands; persist the new member
                # id and answer without a rebalance.
                log.info("static member %s of group %s rejoined without a rebalance",
                         request.group_instance_id, group.group_id)
                self._write_group_metadata(group, effects, group.group_assignment())
                token = group.take_join_token(new_member)
                if request.supports_skip_assignment:
                    is_leader = group.is_leader(new_member_id)
                    effects.reply(token, self._current_generation_join_response(
                        group, new_member_id, with_members=is_leader, skip_assignment=is_leader))
                else:
                    # Before v9 the answer names the leader as it was before the swap,
                    # so a rejoining leader does not compute an assignment.
                    effects.reply(token, self._current_generation_join_response(
                        group, new_member_id, with_members=False, leader=current_leader or ""))
            else:
                self._maybe_prepare_rebalance_or_complete_join(
                    group, effects, f"static member {new_member_id} changed the selected protocol")
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            # The leader may already be assigning with the old member id.
            self._prepare_rebalance(group, effects, f"static member {new_member_id} rejoined")
        elif group.is_in(GroupState.PREPARING_REBALANCE):
            self._maybe_complete_join_phase(group, effects)
        else:
            raise AssertionError(f"static member replaced in group {group.group_id} in state {group.state.value}")

    # -- SyncGroup ------------------------------------------------------------------------

    def sync_group(
        self,
        token: Any,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: list[tuple[str, bytes]],
        *,
        now_ms: int,
    ) -> Outcome[None]:
        """SyncGroup; protocol_type/protocol_name are None before v5. The answer, now or
        when the leader's assignment arrives, is a reply for `token`."""
        self._now_ms = now_ms
        effects = _Effects()
        error = ErrorCode.INVALID_GROUP_ID if not group_id else self._coordinator_error(group_id)
        group = self._groups.get(group_id)
        if error is None and (group is None or group.is_empty):
            error = ErrorCode.UNKNOWN_MEMBER_ID
        if error is None:
            error = self._validate_sync(group, generation_id, member_id, group_instance_id,
                                        protocol_type, protocol_name)
        if error is None and group.is_in(GroupState.PREPARING_REBALANCE):
            error = ErrorCode.REBALANCE_IN_PROGRESS
        if error is not None:
            effects.reply(token, _sync_response(error))
            return self._outcome(effects, None)

        member = group.members[member_id]
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            member.sync_token = token
            self._remove_pending_sync_member(group, member_id)
            if group.is_leader(member_id):
                log.info("assignment received from leader %s of group %s for generation %d",
                         member_id, group_id, generation_id)
                assignment = {assigned_id: bytes(data) for assigned_id, data in assignments}
                for other_id in group.members:
                    assignment.setdefault(other_id, b"")
                self._write_group_metadata(group, effects, assignment)
                for other in group.members.values():
                    other.assignment = assignment[other.member_id]
                self._propagate_assignment(group, ErrorCode.NONE, effects)
                group.transition_to(GroupState.STABLE, now_ms)
        else:  # Stable: the member missed its answer; repeat the assignment
            self._remove_pending_sync_member(group, member_id)
            effects.reply(token, _sync_response(
                ErrorCode.NONE, group.protocol_type, group.protocol_name, member.assignment))
        return self._outcome(effects, None)

    @staticmethod
    def _validate_sync(group: ClassicGroup, generation_id: int, member_id: str,
                       group_instance_id: str | None, protocol_type: str | None,
                       protocol_name: str | None) -> ErrorCode | None:
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(member_id, group_instance_id)
        if error is not None:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION

        def inconsistent(requested: str | None, current: str | None) -> bool:
            return requested is not None and current is not None and requested != current

        if inconsistent(protocol_type, group.protocol_type) or inconsistent(protocol_name, group.protocol_name):
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        return None

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            self._timers.cancel(("sync", group.group_id))

    # -- Heartbeat and LeaveGroup -------------------------------------------------------

    def heartbeat(self, group_id: str, generation_id: int, member_id: str,
                  group_instance_id: str | None, *, now_ms: int) -> Outcome[ErrorCode]:
        """Heartbeat: restarts the member's session timeout; REBALANCE_IN_PROGRESS tells
        it to rejoin."""
        self._now_ms = now_ms
        if not group_id:
            return Outcome([], ErrorCode.INVALID_GROUP_ID)
        error = self._coordinator_error(group_id)
        if error is ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            return Outcome([], ErrorCode.NONE)  # Kafka answers blindly while loading
        if error is not None:
            return Outcome([], error)
        group = self._groups.get(group_id)
        if group is None:
            return Outcome([], ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_in(GroupState.DEAD):
            return Outcome([], ErrorCode.COORDINATOR_NOT_AVAILABLE)
        error = group.validate_member(member_id, group_instance_id)
        if error is not None:
            return Outcome([], error)
        if generation_id != group.generation_id:
            return Outcome([], ErrorCode.ILLEGAL_GENERATION)
        if group.is_in(GroupState.EMPTY):
            return Outcome([], ErrorCode.UNKNOWN_MEMBER_ID)
        self._schedule_heartbeat(group, group.members[member_id])
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return Outcome([], ErrorCode.REBALANCE_IN_PROGRESS)
        # CompletingRebalance too: consumers heartbeat once they have the JoinGroup answer.
        return Outcome([], ErrorCode.NONE)

    def leave_group(self, group_id: str, members: list[tuple[str, str | None, str | None]],
                    *, now_ms: int) -> Outcome[dict]:
        """LeaveGroup for (member_id, group_instance_id, reason) each (v0-v2 send one,
        without instance id). A static member may be removed by instance id alone with
        member id "". Response: {error_code, members: [{member_id, group_instance_id,
        error_code}]}; before v3 the broker answers with members[0]'s error_code."""
        self._now_ms = now_ms
        effects = _Effects()
        error = ErrorCode.INVALID_GROUP_ID if not group_id else self._coordinator_error(group_id)
        if error is not None:
            return Outcome([], {"error_code": error, "members": []})
        group = self._groups.get(group_id)
        if group is None:
            return Outcome([], {"error_code": ErrorCode.NONE, "members": [
                {"member_id": member_id, "group_instance_id": instance_id,
                 "error_code": ErrorCode.UNKNOWN_MEMBER_ID}
                for member_id, instance_id, _ in members]})
        if group.is_in(GroupState.DEAD):
            return Outcome([], {"error_code": ErrorCode.COORDINATOR_NOT_AVAILABLE, "members": []})

        responses = []
        for member_id, instance_id, reason in members:
            reason = reason or "not provided"
            member_error = ErrorCode.NONE
            if member_id == UNKNOWN_MEMBER_ID:
                # Admin removal of a static member by instance id (KIP-345).
                if instance_id is not None and instance_id in group.static_members:
                    self._remove_current_member(group, group.static_members[instance_id], reason, effects)
                else:
                    member_error = ErrorCode.UNKNOWN_MEMBER_ID
            elif group.is_pending_member(member_id):
                group.remove(member_id)
                self._timers.cancel(("heartbeat", group_id, member_id))
                log.info("pending member %s left group %s; client reason: %s", member_id, group_id, reason)
            else:
                member_error = group.validate_member(member_id, instance_id) or ErrorCode.NONE
                if member_error is ErrorCode.NONE:
                    self._remove_current_member(group, member_id, reason, effects)
            responses.append({"member_id": member_id, "group_instance_id": instance_id,
                              "error_code": member_error})

        if any(response["error_code"] is ErrorCode.NONE for response in responses):
            if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group, effects, "members left")
            elif group.is_in(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group, effects)
        return self._outcome(effects, {"error_code": ErrorCode.NONE, "members": responses})

    def _remove_current_member(self, group: ClassicGroup, member_id: str, reason: str,
                               effects: _Effects) -> None:
        member = group.members[member_id]
        self._timers.cancel(("heartbeat", group.group_id, member_id))
        log.info("member %s left group %s; client reason: %s", member_id, group.group_id, reason)
        token = group.take_join_token(member)
        if token is not None:
            effects.reply(token, _join_response(UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID))
        group.remove(member_id)

    # -- offsets --------------------------------------------------------------------------

    def offset_commit(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        retention_time_ms: int,
        offsets: list[tuple[str, int, int, int, str | None]],
        report_group_id_not_found: bool = True,
        *,
        now_ms: int,
    ) -> Outcome[list[dict]]:
        """OffsetCommit of (topic, partition, offset, leader_epoch, metadata) each.
        generation_id -1 with member id "" is a commit outside group management (admin
        tools, assign()), accepted while the group is Empty. retention_time_ms -1 means
        offsets.retention.minutes (v2-v4 may set one). report_group_id_not_found (v9+):
        a generation for an unknown group gets GROUP_ID_NOT_FOUND instead of
        ILLEGAL_GENERATION. Response: [{name, partitions: [{partition_index, error_code}]}]."""
        self._now_ms = now_ms
        effects = _Effects()
        error = self._coordinator_error(group_id)
        group = self._groups.get(group_id)
        consumer_group = self._consumer.groups.get(group_id)
        if error is None and consumer_group is not None:
            # A KIP-848 group: generation_id_or_member_epoch is the member epoch.
            error = self._consumer.validate_offset_commit(consumer_group, member_id, generation_id)
            group = consumer_group
        elif error is None:
            if group is None:
                if generation_id < 0:
                    group = ClassicGroup(group_id, self.partition_for(group_id), GroupState.EMPTY, now_ms)
                    self._groups[group_id] = group
                else:
                    error = (ErrorCode.GROUP_ID_NOT_FOUND if report_group_id_not_found
                             else ErrorCode.ILLEGAL_GENERATION)
            else:
                error = self._validate_offset_commit(group, generation_id, member_id, group_instance_id)
        if error is not None:
            return Outcome([], _by_topic((topic, {"partition_index": partition, "error_code": error})
                                         for topic, partition, *_ in offsets))

        if group is not consumer_group and group.state in (GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            # A classic member's commit keeps its session alive.
            self._schedule_heartbeat(group, group.members[member_id])
        expire_timestamp_ms = (NO_TIMESTAMP if retention_time_ms == DEFAULT_RETENTION_TIME_MS
                               else now_ms + retention_time_ms)
        entries = []
        for topic, partition, offset, leader_epoch, metadata in offsets:
            metadata = "" if metadata is None else metadata
            if _java_string_length(metadata) > self.config.offset_metadata_max_bytes:
                entries.append((topic, {"partition_index": partition,
                                        "error_code": ErrorCode.OFFSET_METADATA_TOO_LARGE}))
                continue
            effects.record(group.partition, OffsetCommitKey(group_id, topic, partition), OffsetCommitValue(
                offset=offset,
                metadata=metadata,
                commit_timestamp_ms=now_ms,
                leader_epoch=leader_epoch,
                expire_timestamp_ms=expire_timestamp_ms,
            ), replay_live=True)
            entries.append((topic, {"partition_index": partition, "error_code": ErrorCode.NONE}))
        return self._outcome(effects, _by_topic(entries))

    @staticmethod
    def _validate_offset_commit(group: ClassicGroup, generation_id: int, member_id: str,
                                group_instance_id: str | None) -> ErrorCode | None:
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.is_empty:
            return None
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = group.validate_member(member_id, group_instance_id)
            if error is not None:
                return error
            if generation_id != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        elif not group.is_empty:
            # No member id and no generation (v0): only an Empty group takes the commit.
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            # The member has the new generation but not its assignment yet.
            return ErrorCode.REBALANCE_IN_PROGRESS
        return None

    def txn_offset_commit(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        topics: list[tuple[str, int, int, int, str | None]],
        now_ms: int = 0,
        api_version: int = 0,
    ) -> Outcome[list[dict]]:
        """TxnOffsetCommit of (topic, partition, offset, leader_epoch, metadata) each
        (v0-v2 send generation -1, member "" and no instance id). The offsets stay pending
        for (group, producer id), invisible to OffsetFetch, until the producer's marker
        reaches the group's partition (complete_transaction). The Outcome's records must
        be appended as a transactional batch of `outcome.transactional` ==
        (producer_id, producer_epoch). Validation as Kafka's: an unknown group is
        accepted (as a simple group) with generation -1, ILLEGAL_GENERATION otherwise;
        UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION (also for a stale
        consumer group member epoch), COORDINATOR_NOT_AVAILABLE for a Dead group; unlike
        OffsetCommit no REBALANCE_IN_PROGRESS. COORDINATOR_LOAD_IN_PROGRESS
        (COORDINATOR_NOT_AVAILABLE before v2, as KafkaApis maps it), NOT_COORDINATOR,
        INVALID_GROUP_ID; OFFSET_METADATA_TOO_LARGE per partition. Response:
        [{name, partitions: [{partition_index, error_code}]}]."""
        self._now_ms = now_ms
        error = ErrorCode.INVALID_GROUP_ID if not group_id else self._coordinator_error(group_id)
        if error is ErrorCode.COORDINATOR_LOAD_IN_PROGRESS and api_version < 2:
            error = ErrorCode.COORDINATOR_NOT_AVAILABLE
        group = self._groups.get(group_id)
        consumer_group = self._consumer.groups.get(group_id)
        if error is None and consumer_group is not None:
            error = self._consumer.validate_offset_commit(consumer_group, member_id, generation_id)
            if error is ErrorCode.STALE_MEMBER_EPOCH:
                error = ErrorCode.ILLEGAL_GENERATION
            group = consumer_group
        elif error is None and group is None:
            if generation_id < 0:
                group = ClassicGroup(group_id, self.partition_for(group_id), GroupState.EMPTY, now_ms)
                self._groups[group_id] = group
            else:
                error = ErrorCode.ILLEGAL_GENERATION
        elif error is None:
            if group.is_in(GroupState.DEAD):
                error = ErrorCode.COORDINATOR_NOT_AVAILABLE
            elif not (generation_id < 0 and group.is_in(GroupState.EMPTY)) and (
                    generation_id >= 0 or member_id or group_instance_id is not None):
                error = group.validate_member(member_id, group_instance_id)
                if error is None and generation_id != group.generation_id:
                    error = ErrorCode.ILLEGAL_GENERATION
        if error is not None:
            return Outcome([], _by_topic((topic, {"partition_index": partition, "error_code": error})
                                         for topic, partition, *_ in topics))
        records = []
        entries = []
        for topic, partition, offset, leader_epoch, metadata in topics:
            metadata = "" if metadata is None else metadata
            if _java_string_length(metadata) > self.config.offset_metadata_max_bytes:
                entries.append((topic, {"partition_index": partition,
                                        "error_code": ErrorCode.OFFSET_METADATA_TOO_LARGE}))
                continue
            key = OffsetCommitKey(group_id, topic, partition)
            value = OffsetCommitValue(offset=offset, metadata=metadata, commit_timestamp_ms=now_ms,
                                      leader_epoch=leader_epoch)
            self._replay_offset_commit(key, value, producer_id)
            records.append(CoordinatorRecord(group.partition, encode_key(key), encode_value(value)))
            entries.append((topic, {"partition_index": partition, "error_code": ErrorCode.NONE}))
        return Outcome(records, _by_topic(entries),
                       transactional=(producer_id, producer_epoch) if records else None)

    def complete_transaction(self, producer_id: int, commit: bool, partition: int,
                             now_ms: int = 0) -> Outcome[None]:
        """The producer's transaction marker was written to __consumer_offsets partition
        `partition`: commit makes its pending offsets of the groups there committed
        (nothing to write: the records are in the log and the marker commits them on
        replay), abort drops them."""
        self._now_ms = now_ms
        self._replay_marker(producer_id, commit, partition)
        return Outcome([], None)

    def offset_fetch(self, group_id: str, partitions: list[tuple[str, int]] | None,
                     require_stable: bool = False, member_id: str | None = None,
                     member_epoch: int = -1) -> Outcome[dict]:
        """OffsetFetch for one group (v8+ sends several: call once per group). partitions
        None: every committed offset of the group. Response: {group_id, error_code,
        topics: [{name, partitions: [{partition_index, committed_offset,
        committed_leader_epoch, metadata, error_code}]}]}; an unknown partition has offset
        -1, leader epoch -1, metadata "". require_stable (v7+): a partition with a transactional offset
        waiting for its marker answers UNSTABLE_OFFSET_COMMIT (offset -1); pending offsets
        are never returned. member_id / member_epoch (v9+):
        a consumer group member fetching must give its current epoch (STALE_MEMBER_EPOCH,
        UNKNOWN_MEMBER_ID otherwise); member id None with epoch -1 fetches as anyone."""
        error = self._coordinator_error(group_id)
        if error is not None:
            return Outcome([], {"group_id": group_id, "error_code": error, "topics": []})
        consumer_group = self._consumer.groups.get(group_id)
        if consumer_group is not None and not (member_id is None and member_epoch < 0):
            member = consumer_group.members.get(member_id)
            error = (ErrorCode.UNKNOWN_MEMBER_ID if member is None
                     else ErrorCode.STALE_MEMBER_EPOCH if member.member_epoch != member_epoch else None)
            if error is not None:
                return Outcome([], {"group_id": group_id, "error_code": error, "topics": []})
        group = self._groups.get(group_id)
        known = (group is not None and not group.is_in(GroupState.DEAD)) or consumer_group is not None
        offsets = self._offsets.get(group_id, {}) if known else {}

        def entry(partition: int, committed: OffsetAndMetadata | None, topic: str) -> dict:
            if require_stable and self._has_pending_offset(group_id, topic, partition):
                return {"partition_index": partition, "committed_offset": INVALID_OFFSET,
                        "committed_leader_epoch": -1, "metadata": "",
                        "error_code": ErrorCode.UNSTABLE_OFFSET_COMMIT}
            if committed is None:
                return {"partition_index": partition, "committed_offset": INVALID_OFFSET,
                        "committed_leader_epoch": -1, "metadata": "", "error_code": ErrorCode.NONE}
            return {"partition_index": partition, "committed_offset": committed.committed_offset,
                    "committed_leader_epoch": -1 if committed.leader_epoch is None else committed.leader_epoch,
                    "metadata": committed.metadata, "error_code": ErrorCode.NONE}

        if partitions is None:
            topics = [{"name": topic, "partitions": [entry(partition, committed, topic)
                                                     for partition, committed in by_partition.items()]}
                      for topic, by_partition in offsets.items()]
        else:
            topics = _by_topic((topic, entry(partition, offsets.get(topic, {}).get(partition), topic))
                               for topic, partition in partitions)
        return Outcome([], {"group_id": group_id, "error_code": ErrorCode.NONE, "topics": topics})

    def offset_delete(self, group_id: str, partitions: list[tuple[str, int]], *,
                      now_ms: int) -> Outcome[dict]:
        """OffsetDelete. Response: {error_code, topics: [{name, partitions:
        [{partition_index, error_code}]}]}; GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP (a
        non-consumer group with members) for the group, GROUP_SUBSCRIBED_TO_TOPIC for the
        partitions of a topic the consumer group subscribes to."""
        self._now_ms = now_ms
        effects = _Effects()
        error = ErrorCode.INVALID_GROUP_ID if not group_id else self._coordinator_error(group_id)
        group = self._groups.get(group_id) or self._consumer.groups.get(group_id)
        if error is None and not isinstance(group, ConsumerGroup):
            # A consumer group's offsets may go while it has members (not its subscribed topics').
            if group is None or group.is_in(GroupState.DEAD):
                error = ErrorCode.GROUP_ID_NOT_FOUND
            elif not group.is_empty and not group.uses_consumer_protocol():
                error = ErrorCode.NON_EMPTY_GROUP
        if error is not None:
            return Outcome([], {"error_code": error, "topics": []})
        entries = []
        offsets = self._offsets.get(group_id, {})
        for topic, partition in partitions:
            if group.is_subscribed_to_topic(topic):
                entries.append((topic, {"partition_index": partition,
                                        "error_code": ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC}))
                continue
            entries.append((topic, {"partition_index": partition, "error_code": ErrorCode.NONE}))
            if partition in offsets.get(topic, {}) or self._has_pending_offset(group_id, topic, partition):
                effects.record(group.partition, OffsetCommitKey(group_id, topic, partition), None,
                               replay_live=True)
        return self._outcome(effects, {"error_code": ErrorCode.NONE, "topics": _by_topic(entries)})

    def committed_offsets(self, group_id: str) -> dict[tuple[str, int], OffsetAndMetadata]:
        """Every committed offset of a group by (topic, partition) (for metrics such as lag)."""
        return {(topic, partition): committed
                for topic, by_partition in self._offsets.get(group_id, {}).items()
                for partition, committed in by_partition.items()}

    def _cleanup_group_metadata(self, effects: _Effects) -> None:
        """offsets.retention.minutes: expire the offsets of groups that no longer consume
        them, then delete groups left Empty with no offsets."""
        for group in list(self._groups.values()):
            if self._partitions.get(group.partition) is not PartitionState.ACTIVE:
                continue
            if (self._cleanup_expired_offsets(group, effects) and group.is_empty
                    and not self._has_open_transactions(group.group_id)):
                effects.record(group.partition, GroupMetadataKey(group.group_id), None, replay_live=True)
        for consumer_group in list(self._consumer.groups.values()):
            if self._partitions.get(consumer_group.partition) is not PartitionState.ACTIVE:
                continue
            if (self._cleanup_expired_offsets(consumer_group, effects) and consumer_group.is_empty
                    and not self._has_open_transactions(consumer_group.group_id)):
                self._consumer.deletion_records(consumer_group, effects)
        self._schedule_retention_check()

    def _cleanup_expired_offsets(self, group: ClassicGroup | ConsumerGroup, effects: _Effects) -> bool:
        """Tombstone the group's expired offsets; True when none are left."""
        offsets = self._offsets.get(group.group_id)
        if not offsets:
            return True
        base_timestamp = self._offset_expiration_base(group)
        if base_timestamp is None:
            return False
        all_expired = True
        retention_ms = self.config.offsets_retention_ms
        for topic, by_partition in offsets.items():
            if group.is_subscribed_to_topic(topic):
                all_expired = False
                continue
            for partition, committed in by_partition.items():
                if committed.expire_timestamp_ms is not None:
                    expired = self._now_ms >= committed.expire_timestamp_ms
                else:
                    expired = self._now_ms - base_timestamp(committed) >= retention_ms
                if expired and not self._has_pending_offset(group.group_id, topic, partition):
                    effects.record(group.partition, OffsetCommitKey(group.group_id, topic, partition), None,
                                   replay_live=True)
                else:
                    all_expired = False
        return all_expired

    @staticmethod
    def _offset_expiration_base(group: ClassicGroup | ConsumerGroup) -> Callable[[OffsetAndMetadata], int] | None:
        """From when an offset's retention counts, or None when the group's offsets do
        not expire now (Kafka's ClassicGroup / ConsumerGroup.offsetExpirationCondition)."""
        if isinstance(group, ConsumerGroup):
            return lambda committed: committed.commit_timestamp_ms
        if group.protocol_type is None:
            return lambda committed: committed.commit_timestamp_ms  # a simple (admin/assign) group
        if group.is_empty:
            # Since the group became Empty (the commit time for records written before
            # the state timestamp existed).
            state_timestamp = group.current_state_timestamp_ms
            return lambda committed: (committed.commit_timestamp_ms if state_timestamp is None
                                      else state_timestamp)
        if (group.uses_consumer_protocol() and group.subscribed_topics is not None
                and group.is_in(GroupState.STABLE)):
            return lambda committed: committed.commit_timestamp_ms
        return None

    # -- admin ----------------------------------------------------------------------------

    def list_groups(self, states_filter: Iterable[str] = (), types_filter: Iterable[str] = ()) -> Outcome[dict]:
        """ListGroups: {error_code, groups: [{group_id, protocol_type, group_state,
        group_type}]}. Filters are case-insensitive; empty means all."""
        if any(state is PartitionState.LOADING for state in self._partitions.values()):
            return Outcome([], {"error_code": ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "groups": []})
        states = {state.strip().lower() for state in states_filter}
        types = {group_type.lower() for group_type in types_filter}
        groups = [{
            "group_id": group.group_id,
            "protocol_type": group.protocol_type or "",
            "group_state": group.state.value,
            "group_type": GROUP_TYPE_CLASSIC,
        } for group in self._groups.values()
            if self._partitions.get(group.partition) is PartitionState.ACTIVE
            and (not states or group.state.value.lower() in states)
            and (not types or GROUP_TYPE_CLASSIC in types)]
        groups += [{
            "group_id": group.group_id,
            "protocol_type": CONSUMER_PROTOCOL_TYPE,
            "group_state": group.state.value,
            "group_type": GROUP_TYPE_CONSUMER,
        } for group in self._consumer.groups.values()
            if self._partitions.get(group.partition) is PartitionState.ACTIVE
            and (not states or group.state.value.lower() in states)
            and (not types or GROUP_TYPE_CONSUMER in types)]
        return Outcome([], {"error_code": ErrorCode.NONE, "groups": groups})

    def describe_groups(self, group_ids: list[str]) -> Outcome[list[dict]]:
        """DescribeGroups: [{error_code, group_id, group_state, protocol_type,
        protocol_data, members: [{member_id, group_instance_id, client_id, client_host,
        member_metadata, member_assignment}]}]. An unknown group is described as Dead;
        member metadata is given only when the group is Stable."""
        described = []
        for group_id in group_ids:
            error = self._coordinator_error(group_id)
            group = self._groups.get(group_id)
            if error is None and group_id in self._consumer.groups:
                # Kafka 4 describes only classic groups here: a KIP-848 group is not found
                # (clients use ConsumerGroupDescribe for it).
                described.append({"error_code": ErrorCode.GROUP_ID_NOT_FOUND, "group_id": group_id,
                                  "group_state": GroupState.DEAD.value, "protocol_type": "",
                                  "protocol_data": "", "members": []})
                continue
            if error is not None or group is None:
                described.append({
                    "error_code": error if error is not None else ErrorCode.NONE,
                    "group_id": group_id,
                    "group_state": "" if error is not None else GroupState.DEAD.value,
                    "protocol_type": "", "protocol_data": "", "members": [],
                })
                continue
            stable = group.is_in(GroupState.STABLE)
            described.append({
                "error_code": ErrorCode.NONE,
                "group_id": group_id,
                "group_state": group.state.value,
                "protocol_type": group.protocol_type or "",
                "protocol_data": group.protocol_name if stable else "",
                "members": [{
                    "member_id": member.member_id,
                    "group_instance_id": member.group_instance_id,
                    "client_id": member.client_id,
                    "client_host": member.client_host,
                    "member_metadata": member.metadata(group.protocol_name) if stable else b"",
                    "member_assignment": member.assignment,
                } for member in group.members.values()],
            })
        return Outcome([], described)

    def delete_groups(self, group_ids: list[str], *, now_ms: int) -> Outcome[list[dict]]:
        """DeleteGroups: [{group_id, error_code}]; GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP.
        A deleted group's offsets go with it."""
        self._now_ms = now_ms
        effects = _Effects()
        results = []
        for group_id in group_ids:
            error = self._coordinator_error(group_id)
            group = self._groups.get(group_id) or self._consumer.groups.get(group_id)
            if error is None:
                if group is None or (isinstance(group, ClassicGroup) and group.is_in(GroupState.DEAD)):
                    error = ErrorCode.GROUP_ID_NOT_FOUND
                elif not group.is_empty:
                    error = ErrorCode.NON_EMPTY_GROUP
            if error is None:
                # Kafka's deleteAllOffsets: tombstones for committed and pending offsets.
                deleted = {(topic, partition) for topic, by_partition in self._offsets.get(group_id, {}).items()
                           for partition in by_partition}
                deleted |= {(topic, partition) for by_group in self._pending_offsets.values()
                            for topic, by_partition in by_group.get(group_id, {}).items()
                            for partition in by_partition}
                for topic, partition in sorted(deleted):
                    effects.record(group.partition, OffsetCommitKey(group_id, topic, partition), None,
                                   replay_live=True)
                if isinstance(group, ConsumerGroup):
                    self._consumer.deletion_records(group, effects)
                else:
                    effects.record(group.partition, GroupMetadataKey(group_id), None, replay_live=True)
                log.info("deleting group %s", group_id)
            results.append({"group_id": group_id, "error_code": error or ErrorCode.NONE})
        return self._outcome(effects, results)

    # -- KIP-848 consumer groups ---------------------------------------------------------

    def consumer_group_heartbeat(
        self,
        group_id: str,
        member_id: str,
        member_epoch: int,
        instance_id: str | None,
        rack_id: str | None,
        rebalance_timeout_ms: int,
        subscribed_topic_names: list[str] | None,
        subscribed_topic_regex: str | None,
        server_assignor: str | None,
        topic_partitions: list[tuple[uuid.UUID, list[int]]] | None,
        client_id: str = "",
        client_host: str = "",
        *,
        now_ms: int,
    ) -> Outcome[dict]:
        """ConsumerGroupHeartbeat (None: unchanged since the last heartbeat). Response:
        {error_code, error_message, member_id, member_epoch, heartbeat_interval_ms,
        assignment: None or {topic_partitions: [{topic_id, partitions}]}}."""
        self._now_ms = now_ms
        effects = _Effects()
        response = self._consumer.heartbeat(HeartbeatRequest(
            group_id=group_id, member_id=member_id, member_epoch=member_epoch, instance_id=instance_id,
            rack_id=rack_id, rebalance_timeout_ms=rebalance_timeout_ms,
            subscribed_topic_names=subscribed_topic_names, subscribed_topic_regex=subscribed_topic_regex,
            server_assignor=server_assignor, topic_partitions=topic_partitions,
            client_id=client_id, client_host=client_host), effects)
        if response["error_code"] != ErrorCode.NONE:
            return Outcome([], response)  # a refused heartbeat changes nothing
        return self._outcome(effects, response)

    def consumer_group_describe(self, group_ids: list[str],
                                authorized_operations: int) -> Outcome[list[dict]]:
        """ConsumerGroupDescribe: [{error_code, error_message, group_id, group_state,
        group_epoch, assignment_epoch, assignor_name, members: [...],
        authorized_operations}]; GROUP_ID_NOT_FOUND for unknown and classic groups."""
        return Outcome([], self._consumer.describe(group_ids, authorized_operations))

    def consumer_group(self, group_id: str) -> ConsumerGroup | None:
        return self._consumer.groups.get(group_id)

    # -- introspection --------------------------------------------------------------------

    def group_state(self, group_id: str) -> GroupState | None:
        group = self._groups.get(group_id)
        return None if group is None else group.state

    def group_generation(self, group_id: str) -> int | None:
        group = self._groups.get(group_id)
        return None if group is None else group.generation_id


@dataclass(frozen=True)
class _JoinRequest:
    token: Any
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    reason: str
    supports_skip_assignment: bool

    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}
