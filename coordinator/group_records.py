"""The records of the __consumer_offsets topic, byte for byte as Kafka writes them.

A record key is an INT16 record type (Kafka calls it the key's version) followed by the
key struct; a record value is an INT16 value version followed by the value struct, and
a tombstone has no value at all (group-coordinator/.../message/*.json, written by
CoordinatorRecordSerde). Types 0 and 1 are OffsetCommitKey, type 2 is GroupMetadataKey,
types 3 to 8 the KIP-848 consumer group records (ConsumerGroupMetadata,
ConsumerGroupPartitionMetadata, ConsumerGroupMemberMetadata,
ConsumerGroupTargetAssignmentMetadata, ConsumerGroupTargetAssignmentMember,
ConsumerGroupCurrentMemberAssignment); types 9 and up (share groups) are not kept.

Kafka 4 writes OffsetCommitKey v1, OffsetCommitValue v3 (v1 when the commit carries an
expire timestamp), GroupMetadataKey v2 and GroupMetadataValue v3
(MetadataVersion.offsetCommitValueVersion / groupMetadataValueVersion); every version
of the values is read, so logs written by older brokers load too.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from construct import ConstructError

from wire.types import (
    ArrayOf, CompactArrayOf, CompactBytes, CompactNullableString, CompactString, Field,
    Int8sb, Int32sb, Int64sb, KafkaBytes, Message, NullableString, String, Uuid,
)

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
GROUP_METADATA_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE_TIMESTAMP = 1
NO_TIMESTAMP = -1
NO_LEADER_EPOCH = -1


class GroupRecordError(ValueError):
    """Bytes of a known record type that do not parse as that type."""


@dataclass(frozen=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True)
class OffsetCommitValue:
    offset: int
    metadata: str
    commit_timestamp_ms: int
    leader_epoch: int = NO_LEADER_EPOCH
    expire_timestamp_ms: int = NO_TIMESTAMP  # only OffsetCommit v2-v4 requests set one


@dataclass(frozen=True)
class GroupMetadataKey:
    group: str


@dataclass(frozen=True)
class MemberMetadata:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupMetadataValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp_ms: int
    members: tuple[MemberMetadata, ...]


# GroupRecordKey / GroupRecordValue (every record kept) are defined at the end of this
# module, after the consumer group records (types 3..8).

_OFFSET_COMMIT_KEY = Message(
    Field("group", String, ""), Field("topic", String, ""), Field("partition", Int32sb, 0),
    flexible=False,
)
_GROUP_METADATA_KEY = Message(Field("group", String, ""), flexible=False)


def _offset_commit_value(version: int) -> Message:
    flexible = version >= 4
    string = CompactString if flexible else String
    fields = [Field("offset", Int64sb, 0)]
    if version >= 3:
        fields.append(Field("leader_epoch", Int32sb, NO_LEADER_EPOCH))
    fields.append(Field("metadata", string, ""))
    fields.append(Field("commit_timestamp", Int64sb, 0))
    if version == 1:
        fields.append(Field("expire_timestamp", Int64sb, NO_TIMESTAMP))
    return Message(*fields, flexible=flexible)


def _group_metadata_value(version: int) -> Message:
    flexible = version >= 4
    string = CompactString if flexible else String
    nullable_string = CompactNullableString if flexible else NullableString
    member_fields = [Field("member_id", string, "")]
    if version >= 3:
        member_fields.append(Field("group_instance_id", nullable_string, None))
    member_fields += [Field("client_id", string, ""), Field("client_host", string, "")]
    if version >= 1:
        member_fields.append(Field("rebalance_timeout", Int32sb, -1))
    member_fields += [
        Field("session_timeout", Int32sb, 0),
        Field("subscription", CompactBytes if flexible else KafkaBytes, b""),
        Field("assignment", CompactBytes if flexible else KafkaBytes, b""),
    ]
    member = Message(*member_fields, flexible=flexible)
    fields = [
        Field("protocol_type", string, ""),
        Field("generation", Int32sb, 0),
        Field("protocol", nullable_string, None),
        Field("leader", nullable_string, None),
    ]
    if version >= 2:
        fields.append(Field("current_state_timestamp", Int64sb, NO_TIMESTAMP))
    fields.append(Field("members", (CompactArrayOf if flexible else ArrayOf)(member), []))
    return Message(*fields, flexible=flexible)


_OFFSET_COMMIT_VALUES = {version: _offset_commit_value(version) for version in range(5)}
_GROUP_METADATA_VALUES = {version: _group_metadata_value(version) for version in range(5)}


def _prefixed(version: int, schema: Message, fields: dict) -> bytes:
    return version.to_bytes(2, "big", signed=True) + schema.build(fields)


def encode_key(key: GroupRecordKey) -> bytes:
    if type(key) in _CONSUMER_GROUP_RECORDS:
        return _encode_consumer_group_key(key)
    if isinstance(key, OffsetCommitKey):
        return _prefixed(OFFSET_COMMIT_KEY_VERSION, _OFFSET_COMMIT_KEY,
                         {"group": key.group, "topic": key.topic, "partition": key.partition})
    return _prefixed(GROUP_METADATA_KEY_VERSION, _GROUP_METADATA_KEY, {"group": key.group})


def encode_value(value: GroupRecordValue) -> bytes:
    if not isinstance(value, (OffsetCommitValue, GroupMetadataValue)):
        return _encode_consumer_group_value(value)
    if isinstance(value, OffsetCommitValue):
        version = (OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE_TIMESTAMP
                   if value.expire_timestamp_ms != NO_TIMESTAMP else OFFSET_COMMIT_VALUE_VERSION)
        return _prefixed(version, _OFFSET_COMMIT_VALUES[version], {
            "offset": value.offset, "leader_epoch": value.leader_epoch,
            "metadata": value.metadata, "commit_timestamp": value.commit_timestamp_ms,
            "expire_timestamp": value.expire_timestamp_ms,
        })
    return _prefixed(GROUP_METADATA_VALUE_VERSION, _GROUP_METADATA_VALUES[GROUP_METADATA_VALUE_VERSION], {
        "protocol_type": value.protocol_type,
        "generation": value.generation,
        "protocol": value.protocol,
        "leader": value.leader,
        "current_state_timestamp": value.current_state_timestamp_ms,
        "members": [{
            "member_id": member.member_id,
            "group_instance_id": member.group_instance_id,
            "client_id": member.client_id,
            "client_host": member.client_host,
            "rebalance_timeout": member.rebalance_timeout_ms,
            "session_timeout": member.session_timeout_ms,
            "subscription": member.subscription,
            "assignment": member.assignment,
        } for member in value.members],
    })


def split_version(data: bytes, what: str,
                  error: type[ValueError] = GroupRecordError) -> tuple[int, bytes]:
    """A coordinator record's int16 version and the rest (`error` when too short)."""
    if len(data) < 2:
        raise error(f"{what} of {len(data)} bytes has no version")
    return int.from_bytes(data[:2], "big", signed=True), data[2:]


def parse_record(schema: Message, data: bytes, what: str,
                 error: type[ValueError] = GroupRecordError):
    """`schema` parsed from `data`; `error` naming `what` when malformed."""
    try:
        return schema.parse(data)
    except (ConstructError, UnicodeDecodeError, ValueError) as exc:
        raise error(f"malformed {what}: {exc}") from exc


def decode_key(data: bytes) -> GroupRecordKey | None:
    """The key of a __consumer_offsets record; None for a record type this coordinator
    does not keep (share group records, or types newer than this code), which loading
    skips as Kafka's loader skips unknown record types."""
    record_type, body = split_version(bytes(data), "record key")
    if record_type in (0, 1):
        parsed = parse_record(_OFFSET_COMMIT_KEY, body, "OffsetCommitKey")
        return OffsetCommitKey(parsed.group, parsed.topic, parsed.partition)
    if record_type == GROUP_METADATA_KEY_VERSION:
        return GroupMetadataKey(parse_record(_GROUP_METADATA_KEY, body, "GroupMetadataKey").group)
    if record_type in _CONSUMER_GROUP_KEY_BY_TYPE:
        return _decode_consumer_group_key(record_type, body)
    return None


def decode_value(key: GroupRecordKey, data: bytes | None) -> GroupRecordValue | None:
    """The value for `key`; None for a tombstone."""
    if data is None:
        return None
    if type(key) in _CONSUMER_GROUP_RECORDS:
        return _decode_consumer_group_value(key, bytes(data))
    version, body = split_version(bytes(data), "record value")
    if isinstance(key, OffsetCommitKey):
        schema = _OFFSET_COMMIT_VALUES.get(version)
        if schema is None:
            raise GroupRecordError(f"OffsetCommitValue version {version} is not 0..4")
        parsed = parse_record(schema, body, f"OffsetCommitValue v{version}")
        return OffsetCommitValue(
            offset=parsed.offset,
            metadata=parsed.metadata,
            commit_timestamp_ms=parsed.commit_timestamp,
            leader_epoch=parsed.get("leader_epoch", NO_LEADER_EPOCH),
            expire_timestamp_ms=parsed.get("expire_timestamp", NO_TIMESTAMP),
        )
    schema = _GROUP_METADATA_VALUES.get(version)
    if schema is None:
        raise GroupRecordError(f"GroupMetadataValue version {version} is not 0..4")
    parsed = parse_record(schema, body, f"GroupMetadataValue v{version}")
    return GroupMetadataValue(
        protocol_type=parsed.protocol_type,
        generation=parsed.generation,
        protocol=parsed.protocol,
        leader=parsed.leader,
        current_state_timestamp_ms=parsed.get("current_state_timestamp", NO_TIMESTAMP),
        members=tuple(MemberMetadata(
            member_id=member.member_id,
            group_instance_id=member.get("group_instance_id"),
            client_id=member.client_id,
            client_host=member.client_host,
            rebalance_timeout_ms=member.get("rebalance_timeout", -1),
            session_timeout_ms=member.session_timeout,
            subscription=bytes(member.subscription),
            assignment=bytes(member.assignment),
        ) for member in parsed.members),
    )


def java_string_hash(text: str) -> int:
    """Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, as a
    signed 32-bit int."""
    utf16 = text.encode("utf-16-be")
    value = 0
    for index in range(0, len(utf16), 2):
        value = (31 * value + int.from_bytes(utf16[index:index + 2], "big")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def partition_for(group_id: str, offsets_topic_num_partitions: int) -> int:
    """The __consumer_offsets partition that owns a group:
    Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions, where Kafka's
    Utils.abs maps Integer.MIN_VALUE to 0."""
    hash_code = java_string_hash(group_id)
    return (0 if hash_code == -(1 << 31) else abs(hash_code)) % offsets_topic_num_partitions


# -- KIP-848 consumer group records (types 3..8) -------------------------------------------
#
# Keys are non-flexible (INT16 type, then the key struct); values are version 0, flexible
# (compact strings and arrays, tagged fields), as GroupCoordinatorRecordHelpers writes them.

CONSUMER_GROUP_METADATA_KEY_VERSION = 3
CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION = 4
CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION = 5
CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION = 6
CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION = 7
CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION = 8
CONSUMER_GROUP_VALUE_VERSION = 0

# (topic id, sorted partitions) per topic, sorted by topic id: a hashable assignment.
TopicPartitions = tuple[tuple[uuid.UUID, tuple[int, ...]], ...]


@dataclass(frozen=True)
class ConsumerGroupMetadataKey:
    group: str


@dataclass(frozen=True)
class ConsumerGroupMetadataValue:
    epoch: int


@dataclass(frozen=True)
class ConsumerGroupPartitionMetadataKey:
    group: str


@dataclass(frozen=True)
class TopicMetadata:
    topic_id: uuid.UUID
    topic_name: str
    num_partitions: int


@dataclass(frozen=True)
class ConsumerGroupPartitionMetadataValue:
    topics: tuple[TopicMetadata, ...]


@dataclass(frozen=True)
class ConsumerGroupMemberMetadataKey:
    group: str
    member_id: str


@dataclass(frozen=True)
class ConsumerGroupMemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None


@dataclass(frozen=True)
class ConsumerGroupTargetAssignmentMetadataKey:
    group: str


@dataclass(frozen=True)
class ConsumerGroupTargetAssignmentMetadataValue:
    assignment_epoch: int


@dataclass(frozen=True)
class ConsumerGroupTargetAssignmentMemberKey:
    group: str
    member_id: str


@dataclass(frozen=True)
class ConsumerGroupTargetAssignmentMemberValue:
    topic_partitions: TopicPartitions


@dataclass(frozen=True)
class ConsumerGroupCurrentMemberAssignmentKey:
    group: str
    member_id: str


@dataclass(frozen=True)
class ConsumerGroupCurrentMemberAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int  # MemberState: 0 stable, 1 unrevoked partitions, 2 unreleased partitions
    assigned_partitions: TopicPartitions
    partitions_pending_revocation: TopicPartitions


ConsumerGroupRecordKey = (
    ConsumerGroupMetadataKey | ConsumerGroupPartitionMetadataKey | ConsumerGroupMemberMetadataKey
    | ConsumerGroupTargetAssignmentMetadataKey | ConsumerGroupTargetAssignmentMemberKey
    | ConsumerGroupCurrentMemberAssignmentKey
)
ConsumerGroupRecordValue = (
    ConsumerGroupMetadataValue | ConsumerGroupPartitionMetadataValue | ConsumerGroupMemberMetadataValue
    | ConsumerGroupTargetAssignmentMetadataValue | ConsumerGroupTargetAssignmentMemberValue
    | ConsumerGroupCurrentMemberAssignmentValue
)

GroupRecordKey = OffsetCommitKey | GroupMetadataKey | ConsumerGroupRecordKey
GroupRecordValue = OffsetCommitValue | GroupMetadataValue | ConsumerGroupRecordValue

_GROUP_ID_KEY = Message(Field("group_id", String, ""), flexible=False)
_GROUP_MEMBER_KEY = Message(Field("group_id", String, ""), Field("member_id", String, ""), flexible=False)
_TOPIC_PARTITIONS = CompactArrayOf(Message(
    Field("topic_id", Uuid, None), Field("partitions", CompactArrayOf(Int32sb), []), flexible=True))

_CONSUMER_GROUP_METADATA_VALUE = Message(Field("epoch", Int32sb, 0), flexible=True)
_CONSUMER_GROUP_PARTITION_METADATA_VALUE = Message(Field("topics", CompactArrayOf(Message(
    Field("topic_id", Uuid, None),
    Field("topic_name", CompactString, ""),
    Field("num_partitions", Int32sb, 0),
    # Racks per partition; Kafka 4 stores an empty list (the field is deprecated).
    Field("partition_metadata", CompactArrayOf(Message(
        Field("partition", Int32sb, 0), Field("racks", CompactArrayOf(CompactString), []),
        flexible=True)), []),
    flexible=True)), []), flexible=True)
_CONSUMER_GROUP_MEMBER_METADATA_VALUE = Message(
    Field("instance_id", CompactNullableString, None),
    Field("rack_id", CompactNullableString, None),
    Field("client_id", CompactString, ""),
    Field("client_host", CompactString, ""),
    Field("subscribed_topic_names", CompactArrayOf(CompactString), []),
    Field("subscribed_topic_regex", CompactNullableString, None),
    Field("rebalance_timeout_ms", Int32sb, -1),
    Field("server_assignor", CompactNullableString, None),
    # Tag 0, ClassicMemberMetadata, only for classic-protocol members: skipped when read.
    flexible=True)
_CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_VALUE = Message(Field("assignment_epoch", Int32sb, 0), flexible=True)
_CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_VALUE = Message(
    Field("topic_partitions", _TOPIC_PARTITIONS, []), flexible=True)
_CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE = Message(
    Field("member_epoch", Int32sb, 0),
    Field("previous_member_epoch", Int32sb, 0),
    Field("state", Int8sb, 0),
    Field("assigned_partitions", _TOPIC_PARTITIONS, []),
    Field("partitions_pending_revocation", _TOPIC_PARTITIONS, []),
    flexible=True)

# key class -> (record type, key schema, value schema)
_CONSUMER_GROUP_RECORDS = {
    ConsumerGroupMetadataKey: (CONSUMER_GROUP_METADATA_KEY_VERSION, _GROUP_ID_KEY,
                               _CONSUMER_GROUP_METADATA_VALUE),
    ConsumerGroupPartitionMetadataKey: (CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION, _GROUP_ID_KEY,
                                        _CONSUMER_GROUP_PARTITION_METADATA_VALUE),
    ConsumerGroupMemberMetadataKey: (CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION, _GROUP_MEMBER_KEY,
                                     _CONSUMER_GROUP_MEMBER_METADATA_VALUE),
    ConsumerGroupTargetAssignmentMetadataKey: (CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION,
                                               _GROUP_ID_KEY, _CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_VALUE),
    ConsumerGroupTargetAssignmentMemberKey: (CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION,
                                             _GROUP_MEMBER_KEY, _CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_VALUE),
    ConsumerGroupCurrentMemberAssignmentKey: (CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION,
                                              _GROUP_MEMBER_KEY, _CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE),
}
_CONSUMER_GROUP_KEY_BY_TYPE = {record_type: key_class
                               for key_class, (record_type, _, _) in _CONSUMER_GROUP_RECORDS.items()}


def _topic_partitions_fields(topic_partitions: TopicPartitions) -> list[dict]:
    return [{"topic_id": topic_id, "partitions": list(partitions)}
            for topic_id, partitions in topic_partitions]


def _topic_partitions(parsed) -> TopicPartitions:
    return tuple(sorted((entry.topic_id, tuple(sorted(entry.partitions))) for entry in parsed))


def _encode_consumer_group_key(key: ConsumerGroupRecordKey) -> bytes:
    record_type, schema, _ = _CONSUMER_GROUP_RECORDS[type(key)]
    return _prefixed(record_type, schema, {"group_id": key.group,
                                           "member_id": getattr(key, "member_id", "")})


def _encode_consumer_group_value(value: ConsumerGroupRecordValue) -> bytes:
    if isinstance(value, ConsumerGroupMetadataValue):
        return _prefixed(CONSUMER_GROUP_VALUE_VERSION, _CONSUMER_GROUP_METADATA_VALUE, {"epoch": value.epoch})
    if isinstance(value, ConsumerGroupPartitionMetadataValue):
        return _prefixed(CONSUMER_GROUP_VALUE_VERSION, _CONSUMER_GROUP_PARTITION_METADATA_VALUE, {"topics": [
            {"topic_id": topic.topic_id, "topic_name": topic.topic_name,
             "num_partitions": topic.num_partitions, "partition_metadata": []}
            for topic in value.topics]})
    if isinstance(value, ConsumerGroupMemberMetadataValue):
        return _prefixed(CONSUMER_GROUP_VALUE_VERSION, _CONSUMER_GROUP_MEMBER_METADATA_VALUE, {
            "instance_id": value.instance_id, "rack_id": value.rack_id,
            "client_id": value.client_id, "client_host": value.client_host,
            "subscribed_topic_names": list(value.subscribed_topic_names),
            "subscribed_topic_regex": value.subscribed_topic_regex,
            "rebalance_timeout_ms": value.rebalance_timeout_ms,
            "server_assignor": value.server_assignor})
    if isinstance(value, ConsumerGroupTargetAssignmentMetadataValue):
        return _prefixed(CONSUMER_GROUP_VALUE_VERSION, _CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_VALUE,
                         {"assignment_epoch": value.assignment_epoch})
    if isinstance(value, ConsumerGroupTargetAssignmentMemberValue):
        return _prefixed(CONSUMER_GROUP_VALUE_VERSION, _CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_VALUE,
                         {"topic_partitions": _topic_partitions_fields(value.topic_partitions)})
    return _prefixed(CONSUMER_GROUP_VALUE_VERSION, _CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE, {
        "member_epoch": value.member_epoch,
        "previous_member_epoch": value.previous_member_epoch,
        "state": value.state,
        "assigned_partitions": _topic_partitions_fields(value.assigned_partitions),
        "partitions_pending_revocation": _topic_partitions_fields(value.partitions_pending_revocation)})


def _decode_consumer_group_key(record_type: int, body: bytes) -> ConsumerGroupRecordKey:
    key_class = _CONSUMER_GROUP_KEY_BY_TYPE[record_type]
    _, schema, _ = _CONSUMER_GROUP_RECORDS[key_class]
    parsed = parse_record(schema, body, key_class.__name__)
    if schema is _GROUP_MEMBER_KEY:
        return key_class(parsed.group_id, parsed.member_id)
    return key_class(parsed.group_id)


def _decode_consumer_group_value(key: ConsumerGroupRecordKey, data: bytes) -> ConsumerGroupRecordValue:
    version, body = split_version(data, "record value")
    name = type(key).__name__.replace("Key", "Value")
    if version != CONSUMER_GROUP_VALUE_VERSION:
        raise GroupRecordError(f"{name} version {version} is not 0")
    schema = _CONSUMER_GROUP_RECORDS[type(key)][2]
    parsed = parse_record(schema, body, name)
    if isinstance(key, ConsumerGroupMetadataKey):
        return ConsumerGroupMetadataValue(parsed.epoch)
    if isinstance(key, ConsumerGroupPartitionMetadataKey):
        return ConsumerGroupPartitionMetadataValue(tuple(
            TopicMetadata(topic.topic_id, topic.topic_name, topic.num_partitions) for topic in parsed.topics))
    if isinstance(key, ConsumerGroupMemberMetadataKey):
        return ConsumerGroupMemberMetadataValue(
            instance_id=parsed.instance_id, rack_id=parsed.rack_id, client_id=parsed.client_id,
            client_host=parsed.client_host, subscribed_topic_names=tuple(parsed.subscribed_topic_names),
            subscribed_topic_regex=parsed.subscribed_topic_regex,
            rebalance_timeout_ms=parsed.rebalance_timeout_ms, server_assignor=parsed.server_assignor)
    if isinstance(key, ConsumerGroupTargetAssignmentMetadataKey):
        return ConsumerGroupTargetAssignmentMetadataValue(parsed.assignment_epoch)
    if isinstance(key, ConsumerGroupTargetAssignmentMemberKey):
        return ConsumerGroupTargetAssignmentMemberValue(_topic_partitions(parsed.topic_partitions))
    return ConsumerGroupCurrentMemberAssignmentValue(
        member_epoch=parsed.member_epoch, previous_member_epoch=parsed.previous_member_epoch,
        state=parsed.state, assigned_partitions=_topic_partitions(parsed.assigned_partitions),
        partitions_pending_revocation=_topic_partitions(parsed.partitions_pending_revocation))
