"""The records of the __consumer_offsets topic, byte for byte as Kafka writes them.

A record key is an INT16 record type (Kafka calls it the key's version) followed by the
key struct; a record value is an INT16 value version followed by the value struct, and
a tombstone has no value at all (group-coordinator/.../message/*.json, written by
CoordinatorRecordSerde). Types 0 and 1 are OffsetCommitKey, type 2 is GroupMetadataKey;
types 3 and up belong to the KIP-848 and share group records.

Kafka 4 writes OffsetCommitKey v1, OffsetCommitValue v3 (v1 when the commit carries an
expire timestamp), GroupMetadataKey v2 and GroupMetadataValue v3
(MetadataVersion.offsetCommitValueVersion / groupMetadataValueVersion); every version
of the values is read, so logs written by older brokers load too.
"""
from __future__ import annotations

from dataclasses import dataclass

from construct import ConstructError

from wire.types import (
    ArrayOf, CompactArrayOf, CompactBytes, CompactNullableString, CompactString, Field,
    Int32sb, Int64sb, KafkaBytes, Message, NullableString, String,
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


GroupRecordKey = OffsetCommitKey | GroupMetadataKey
GroupRecordValue = OffsetCommitValue | GroupMetadataValue

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
    if isinstance(key, OffsetCommitKey):
        return _prefixed(OFFSET_COMMIT_KEY_VERSION, _OFFSET_COMMIT_KEY,
                         {"group": key.group, "topic": key.topic, "partition": key.partition})
    return _prefixed(GROUP_METADATA_KEY_VERSION, _GROUP_METADATA_KEY, {"group": key.group})


def encode_value(value: GroupRecordValue) -> bytes:
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


def _split_version(data: bytes, what: str) -> tuple[int, bytes]:
    if len(data) < 2:
        raise GroupRecordError(f"{what} of {len(data)} bytes has no version")
    return int.from_bytes(data[:2], "big", signed=True), data[2:]


def _parse(schema: Message, data: bytes, what: str):
    try:
        return schema.parse(data)
    except (ConstructError, UnicodeDecodeError, ValueError) as exc:
        raise GroupRecordError(f"malformed {what}: {exc}") from exc


def decode_key(data: bytes) -> GroupRecordKey | None:
    """The key of a __consumer_offsets record; None for a record type this coordinator
    does not keep (KIP-848 and share group records, or types newer than this code),
    which loading skips as Kafka's loader skips unknown record types."""
    record_type, body = _split_version(bytes(data), "record key")
    if record_type in (0, 1):
        parsed = _parse(_OFFSET_COMMIT_KEY, body, "OffsetCommitKey")
        return OffsetCommitKey(parsed.group, parsed.topic, parsed.partition)
    if record_type == GROUP_METADATA_KEY_VERSION:
        return GroupMetadataKey(_parse(_GROUP_METADATA_KEY, body, "GroupMetadataKey").group)
    return None


def decode_value(key: GroupRecordKey, data: bytes | None) -> GroupRecordValue | None:
    """The value for `key`; None for a tombstone."""
    if data is None:
        return None
    version, body = _split_version(bytes(data), "record value")
    if isinstance(key, OffsetCommitKey):
        schema = _OFFSET_COMMIT_VALUES.get(version)
        if schema is None:
            raise GroupRecordError(f"OffsetCommitValue version {version} is not 0..4")
        parsed = _parse(schema, body, f"OffsetCommitValue v{version}")
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
    parsed = _parse(schema, body, f"GroupMetadataValue v{version}")
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
