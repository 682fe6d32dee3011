"""__consumer_offsets record bytes, pinned against Kafka's schemas (computed by hand from
group-coordinator/src/main/resources/common/message/*.json)."""
import pytest

from coordinator.group_records import (
    GroupMetadataKey, GroupMetadataValue, GroupRecordError, MemberMetadata, OffsetCommitKey, OffsetCommitValue,
    decode_key, decode_value, encode_key, encode_value, java_string_hash, partition_for,
)


def test_offset_commit_key_v1():
    key = OffsetCommitKey("g", "t", 3)
    data = bytes.fromhex("0001" "0001" "67" "0001" "74" "00000003")
    assert encode_key(key) == data
    assert decode_key(data) == key
    assert decode_key(bytes.fromhex("0000" "0001" "67" "0001" "74" "00000003")) == key  # v0 reads the same


def test_offset_commit_value_v3_and_v1():
    value = OffsetCommitValue(offset=5, metadata="m", commit_timestamp_ms=1000, leader_epoch=2)
    v3 = bytes.fromhex("0003" "0000000000000005" "00000002" "0001" "6d" "00000000000003e8")
    assert encode_value(value) == v3
    assert decode_value(OffsetCommitKey("g", "t", 0), v3) == value

    with_expiry = OffsetCommitValue(offset=5, metadata="", commit_timestamp_ms=1000, expire_timestamp_ms=2000)
    v1 = bytes.fromhex("0001" "0000000000000005" "0000" "00000000000003e8" "00000000000007d0")
    assert encode_value(with_expiry) == v1
    assert decode_value(OffsetCommitKey("g", "t", 0), v1) == with_expiry


def test_older_and_flexible_offset_commit_values_decode():
    key = OffsetCommitKey("g", "t", 0)
    v0 = bytes.fromhex("0000" "0000000000000007" "0002" "6162" "0000000000000009")
    assert decode_value(key, v0) == OffsetCommitValue(7, "ab", 9)
    # v4: compact string (length + 1 as a varint) and an empty tagged fields section.
    v4 = bytes.fromhex("0004" "0000000000000007" "00000001" "03" "6162" "0000000000000009" "00")
    assert decode_value(key, v4) == OffsetCommitValue(7, "ab", 9, leader_epoch=1)
    assert decode_value(key, None) is None


def test_group_metadata_key_and_value_v3():
    assert encode_key(GroupMetadataKey("g")) == bytes.fromhex("0002" "0001" "67")
    value = GroupMetadataValue(
        protocol_type="consumer", generation=1, protocol="range", leader="m", current_state_timestamp_ms=5,
        members=(MemberMetadata("m", None, "c", "/h", 300_000, 10_000, b"\x01", b""),))
    data = bytes.fromhex(
        "0003"
        "0008" + b"consumer".hex() + "00000001" "0005" + b"range".hex() + "0001" "6d" "0000000000000005"
        "00000001"
        "0001" "6d" "ffff" "0001" "63" "0002" "2f68" "000493e0" "00002710" "00000001" "01" "00000000")
    assert encode_value(value) == data
    assert decode_value(GroupMetadataKey("g"), data) == value


def test_empty_group_metadata_value_has_null_protocol_and_leader():
    data = encode_value(GroupMetadataValue("", 0, None, None, -1, ()))
    assert data == bytes.fromhex("0003" "0000" "00000000" "ffff" "ffff" "ffffffffffffffff" "00000000")


def test_group_metadata_value_v0_fills_later_fields_with_defaults():
    data = bytes.fromhex(
        "0000" "0008" + b"consumer".hex() + "00000002" "0005" + b"range".hex() + "0001" "6d"
        "00000001" "0001" "6d" "0001" "63" "0002" "2f68" "00002710" "00000000" "00000001" "02")
    assert decode_value(GroupMetadataKey("g"), data) == GroupMetadataValue(
        "consumer", 2, "range", "m", -1, (MemberMetadata("m", None, "c", "/h", -1, 10_000, b"", b"\x02"),))


def test_unknown_record_types_are_not_ours_and_garbage_is_an_error():
    assert decode_key(bytes.fromhex("000a" "0001" "67")) is None  # a share group record (type 10)
    with pytest.raises(GroupRecordError):
        decode_key(b"\x00")
    with pytest.raises(GroupRecordError):
        decode_key(bytes.fromhex("0001" "0005" "67"))
    with pytest.raises(GroupRecordError):
        decode_value(OffsetCommitKey("g", "t", 0), bytes.fromhex("0009" "00"))


def test_partition_for_follows_java_string_hash_code():
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("\U0001F600") == 0xD83D * 31 + 0xDE00  # two UTF-16 code units
    assert java_string_hash("polygenelubricants") == -(1 << 31)
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(Integer.MIN_VALUE) is 0
    assert partition_for("", 50) == 0
