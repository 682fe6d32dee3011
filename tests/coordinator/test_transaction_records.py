"""__transaction_state records against bytes built by hand from TransactionLog{Key,Value}.json."""
import struct

import pytest

from coordinator.transaction_records import (
    TransactionLogValue, TransactionRecordError, decode_key, decode_value, encode_key, encode_value,
)


def string(text: str) -> bytes:
    return struct.pack(">h", len(text)) + text.encode()


def compact_string(text: str) -> bytes:
    return bytes([len(text) + 1]) + text.encode()


ONGOING = TransactionLogValue(
    producer_id=1000, producer_epoch=3, transaction_timeout_ms=60000, state=1,
    partitions=(("a", 2), ("t", 0), ("t", 1)), last_update_timestamp_ms=1700, start_timestamp_ms=1600)


def test_key_is_version_0_then_the_transactional_id():
    assert encode_key("tx-1") == b"\x00\x00" + string("tx-1")
    assert decode_key(b"\x00\x00" + string("tx-1")) == "tx-1"


def test_key_of_an_unknown_version_is_skipped():
    assert decode_key(b"\x00\x01" + string("tx-1")) is None


def test_value_v1_without_tagged_fields():
    expected = (
        b"\x00\x01"  # version 1
        + struct.pack(">qhib", 1000, 3, 60000, 1)
        + b"\x03"  # two topics, compact
        + compact_string("a") + b"\x02" + struct.pack(">i", 2) + b"\x00"
        + compact_string("t") + b"\x03" + struct.pack(">ii", 0, 1) + b"\x00"
        + struct.pack(">qq", 1700, 1600)
        + b"\x00"  # no tagged fields: every one at its default
    )
    assert encode_value(ONGOING) == expected
    assert decode_value(expected) == ONGOING


def test_value_v1_tagged_fields_written_only_when_not_default():
    value = TransactionLogValue(
        producer_id=7, producer_epoch=0, transaction_timeout_ms=1000, state=4, partitions=(),
        last_update_timestamp_ms=5, start_timestamp_ms=4, previous_producer_id=6, next_producer_id=-1,
        client_transaction_version=2)
    expected = (
        b"\x00\x01" + struct.pack(">qhib", 7, 0, 1000, 4)
        + b"\x01"  # empty partitions array (not null: the state is not Empty)
        + struct.pack(">qq", 5, 4)
        + b"\x02"  # two tagged fields
        + b"\x00\x08" + struct.pack(">q", 6)  # tag 0 PreviousProducerId
        + b"\x02\x02" + struct.pack(">h", 2)  # tag 2 ClientTransactionVersion
    )
    assert encode_value(value) == expected
    assert decode_value(expected) == value


def test_empty_state_writes_null_partitions():
    value = TransactionLogValue(producer_id=1, producer_epoch=0, transaction_timeout_ms=1000, state=0,
                                partitions=(), last_update_timestamp_ms=10, start_timestamp_ms=-1)
    expected = b"\x00\x01" + struct.pack(">qhib", 1, 0, 1000, 0) + b"\x00" + struct.pack(">qq", 10, -1) + b"\x00"
    assert encode_value(value) == expected
    assert decode_value(expected) == value


def test_value_v0_as_kafka_3_writes_it():
    expected = (
        b"\x00\x00" + struct.pack(">qhib", 1000, 3, 60000, 1)
        + struct.pack(">i", 2)
        + string("a") + struct.pack(">ii", 1, 2)
        + string("t") + struct.pack(">iii", 2, 0, 1)
        + struct.pack(">qq", 1700, 1600)
    )
    assert encode_value(ONGOING, version=0) == expected
    assert decode_value(expected) == ONGOING


def test_v0_null_partitions_and_v1_next_producer_id():
    v0 = b"\x00\x00" + struct.pack(">qhib", 5, 2, 100, 5) + struct.pack(">i", -1) + struct.pack(">qq", 9, 8)
    assert decode_value(v0) == TransactionLogValue(5, 2, 100, 5, (), 9, 8)
    v1 = (b"\x00\x01" + struct.pack(">qhib", 5, 32767, 100, 2) + b"\x02" + compact_string("x")
          + b"\x02" + struct.pack(">i", 0) + b"\x00" + struct.pack(">qq", 9, 8)
          + b"\x01\x01\x08" + struct.pack(">q", 77))
    assert decode_value(v1) == TransactionLogValue(5, 32767, 100, 2, (("x", 0),), 9, 8, next_producer_id=77)


def test_tombstone_and_bad_values():
    assert decode_value(None) is None
    with pytest.raises(TransactionRecordError):
        decode_value(b"\x00\x02" + bytes(40))
    with pytest.raises(TransactionRecordError):
        decode_value(encode_value(ONGOING)[:-3])
    with pytest.raises(TransactionRecordError):
        decode_value(b"\x00")
