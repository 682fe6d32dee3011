"""The records of the __transaction_state topic, byte for byte as Kafka writes them.

A record key is an INT16 key version (0) followed by TransactionLogKey (the
transactional id as an INT16-length string); a record value is an INT16 value version
followed by TransactionLogValue, and a tombstone (an expired transactional id) has no
value (transaction-coordinator/.../message/TransactionLog{Key,Value}.json, written by
Kafka's TransactionLog.keyToBytes / valueToBytes).

Value version 0 is Kafka 3.x's; version 1 (flexible: compact strings and arrays, and
the tagged fields PreviousProducerId (tag 0), NextProducerId (tag 1) and
ClientTransactionVersion (tag 2), written only when they differ from their defaults -1,
-1 and 0) is what Kafka 4 writes once transaction.version >= 1. We write version 1 and
read both. The schema has no last producer epoch: Kafka loads it as -1.
"""
from __future__ import annotations

from dataclasses import dataclass

from construct import Int8sb, Int16sb, Int32sb, Int64sb

from coordinator.group_records import parse_record, split_version
from wire.types import (
    ArrayOf, CompactArrayOf, CompactNullableArrayOf, CompactString, Field, Message,
    NullableArrayOf, String,
)

TRANSACTION_LOG_KEY_VERSION = 0
TRANSACTION_LOG_VALUE_VERSION = 1  # TransactionVersion.transactionLogValueVersion for TV >= 1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1


class TransactionRecordError(ValueError):
    """Bytes of __transaction_state that do not parse as TransactionLogKey / Value."""


@dataclass(frozen=True)
class TransactionLogValue:
    """One transactional id's state. `partitions` is the (topic, partition) set of the
    transaction, sorted; Kafka writes it as null in state Empty (0)."""

    producer_id: int
    producer_epoch: int
    transaction_timeout_ms: int
    state: int  # TransactionState id: 0 Empty .. 7 PrepareEpochFence
    partitions: tuple[tuple[str, int], ...]
    last_update_timestamp_ms: int
    start_timestamp_ms: int
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    client_transaction_version: int = 0


_KEY = Message(Field("transactional_id", String, ""), flexible=False)


def _value_schema(version: int) -> Message:
    flexible = version >= 1
    partitions = Message(
        Field("topic", CompactString if flexible else String, ""),
        Field("partition_ids", (CompactArrayOf if flexible else ArrayOf)(Int32sb), []),
        flexible=flexible)
    fields = [
        Field("producer_id", Int64sb, 0),
        Field("producer_epoch", Int16sb, 0),
        Field("transaction_timeout_ms", Int32sb, 0),
        Field("transaction_status", Int8sb, 0),
        Field("transaction_partitions",
              (CompactNullableArrayOf if flexible else NullableArrayOf)(partitions), None),
        Field("transaction_last_update_timestamp_ms", Int64sb, 0),
        Field("transaction_start_timestamp_ms", Int64sb, 0),
    ]
    if flexible:
        fields += [
            Field("previous_producer_id", Int64sb, NO_PRODUCER_ID, tag=0),
            Field("next_producer_id", Int64sb, NO_PRODUCER_ID, tag=1),
            Field("client_transaction_version", Int16sb, 0, tag=2),
        ]
    return Message(*fields, flexible=flexible)


_VALUES = {version: _value_schema(version) for version in (0, 1)}


def encode_key(transactional_id: str) -> bytes:
    return TRANSACTION_LOG_KEY_VERSION.to_bytes(2, "big") + _KEY.build({"transactional_id": transactional_id})


def encode_value(value: TransactionLogValue, version: int = TRANSACTION_LOG_VALUE_VERSION) -> bytes:
    """The value at `version` (1 unless asked; 0 cannot hold the tagged fields and drops
    them, as Kafka does under transaction.version 0)."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(value.partitions):
        by_topic.setdefault(topic, []).append(partition)
    # Kafka writes null partitions for Empty (its valueToBytes), a list otherwise.
    partitions = None if value.state == 0 else [
        {"topic": topic, "partition_ids": ids} for topic, ids in by_topic.items()]
    return version.to_bytes(2, "big") + _VALUES[version].build({
        "producer_id": value.producer_id,
        "producer_epoch": value.producer_epoch,
        "transaction_timeout_ms": value.transaction_timeout_ms,
        "transaction_status": value.state,
        "transaction_partitions": partitions,
        "transaction_last_update_timestamp_ms": value.last_update_timestamp_ms,
        "transaction_start_timestamp_ms": value.start_timestamp_ms,
        "previous_producer_id": value.previous_producer_id,
        "next_producer_id": value.next_producer_id,
        "client_transaction_version": value.client_transaction_version,
    })


def _split_version(data: bytes, what: str) -> tuple[int, bytes]:
    return split_version(data, what, TransactionRecordError)


def _parse(schema: Message, data: bytes, what: str):
    return parse_record(schema, data, what, TransactionRecordError)


def decode_key(data: bytes) -> str | None:
    """The transactional id of a record key; None for a key version other than 0, which
    loading skips as Kafka's does (UnknownKey)."""
    version, body = _split_version(bytes(data), "TransactionLogKey")
    if version != TRANSACTION_LOG_KEY_VERSION:
        return None
    return _parse(_KEY, body, "TransactionLogKey").transactional_id


def decode_value(data: bytes | None) -> TransactionLogValue | None:
    """The value; None for a tombstone. Raises TransactionRecordError for a version other
    than 0 and 1 (Kafka fails the load there too) or malformed bytes."""
    if data is None:
        return None
    version, body = _split_version(bytes(data), "TransactionLogValue")
    schema = _VALUES.get(version)
    if schema is None:
        raise TransactionRecordError(f"TransactionLogValue version {version} is not 0..1")
    parsed = _parse(schema, body, f"TransactionLogValue v{version}")
    state = parsed.transaction_status
    partitions: tuple[tuple[str, int], ...] = ()
    if state != 0 and parsed.transaction_partitions is not None:  # Kafka ignores them when Empty
        partitions = tuple(sorted({(entry.topic, partition)
                                   for entry in parsed.transaction_partitions
                                   for partition in entry.partition_ids}))
    return TransactionLogValue(
        producer_id=parsed.producer_id,
        producer_epoch=parsed.producer_epoch,
        transaction_timeout_ms=parsed.transaction_timeout_ms,
        state=state,
        partitions=partitions,
        last_update_timestamp_ms=parsed.transaction_last_update_timestamp_ms,
        start_timestamp_ms=parsed.transaction_start_timestamp_ms,
        previous_producer_id=parsed.get("previous_producer_id", NO_PRODUCER_ID),
        next_producer_id=parsed.get("next_producer_id", NO_PRODUCER_ID),
        client_transaction_version=parsed.get("client_transaction_version", 0),
    )
