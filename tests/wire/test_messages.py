"""Schemas for every broker API and version, the primitives under them, and the generator."""
from __future__ import annotations

import itertools
import struct
import uuid
from pathlib import Path

import pytest
from construct import ConstructError

from wire import generate, types
from wire.api_keys import ApiKey
from wire.messages import API_VERSIONS, FLEXIBLE_FROM, REQUEST_HEADERS, REQUESTS, RESPONSE_HEADERS, RESPONSES
from wire.types import (
    CompactArrayOf, CompactNullableString, CompactString, Field, Int32sb, Message, NullableString,
    NullableStruct, String, TaggedNullableStruct, UnsignedVarInt, VarInt, VarLong,
)

MESSAGES_DIR = generate.DEFAULT_MESSAGES_DIR

_INTS = {types.Int8sb: 7, types.Int16sb: 300, types.Int16ub: 65000, types.Int32sb: 70000,
         types.Int32ub: 4000000000, types.Int64sb: 1 << 40}


def sample(subcon, default, counter, nulls: bool):
    """A value for `subcon` that differs from `default`; nullable things are None when
    `nulls` (unless None is the default: then a value, so it still differs)."""
    n = next(counter)
    if subcon in _INTS:
        value = _INTS[subcon] + n
        return value + 1 if value == default else value
    if subcon is types.Boolean:
        return not default
    if subcon is types.Float64b:
        return 1.5 + n
    if subcon is types.Uuid:
        return uuid.UUID(int=(n + 1) * 0x1000_0000_0000_0001)
    if isinstance(subcon, types._LengthPrefixed):
        if subcon.nullable and nulls and default is not None:
            return None
        return f"s{n}-é" if subcon.text else bytes([n % 256, 0, 255]) * 2
    if isinstance(subcon, types._KafkaArray):
        if subcon.nullable and nulls and default is not None:
            return None
        return [sample(subcon.element, None, counter, nulls) for _ in range(2)]
    if isinstance(subcon, NullableStruct):
        if nulls and default is not None:
            return None
        return sample(subcon.struct, None, counter, nulls)
    if isinstance(subcon, Message):
        return {f.name: sample(f.subcon, f.default_value(), counter, nulls)
                for f in itertools.chain(subcon.fields, subcon.tagged.values())}
    raise AssertionError(f"no sample for {subcon!r}")


def _all_schemas():
    for table, kind in ((REQUESTS, "request"), (RESPONSES, "response")):
        for api_key, version in table:
            yield pytest.param(table, (api_key, version), id=f"{ApiKey(api_key).name}-v{version}-{kind}")
    for table, kind in ((REQUEST_HEADERS, "request_header"), (RESPONSE_HEADERS, "response_header")):
        for version in table:
            yield pytest.param(table, version, id=f"{kind}-v{version}")


@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
@pytest.mark.parametrize("table, key", list(_all_schemas()))
def test_every_api_and_version_round_trips(table, key, nulls):
    schema = table[key]
    value = sample(schema, None, itertools.count(), nulls)
    data = schema.build(value)
    parsed = schema.parse(data)
    assert parsed == value
    assert schema.build(parsed) == data


@pytest.mark.parametrize("table, key", list(_all_schemas()))
def test_compiled_schemas_match_interpreted_ones(table, key):
    # wire/protocol.py serves every schema compiled; it must give the same bytes and values.
    schema = table[key]
    compiled = schema.compile()
    for nulls in (False, True):
        value = sample(schema, None, itertools.count(), nulls)
        data = schema.build(value)
        assert compiled.build(value) == data
        assert compiled.parse(data) == value
        assert compiled.build({}) == schema.build({})
    if data:  # some bodies are empty (ListGroups v0)
        with pytest.raises((ConstructError, struct.error)):
            compiled.parse(data[:-1])


def test_every_broker_api_has_every_version_both_ways():
    assert len(API_VERSIONS) == 72  # requests whose "listeners" include "broker"
    for api_key, (low, high) in API_VERSIONS.items():
        for version in range(low, high + 1):
            assert (api_key, version) in REQUESTS and (api_key, version) in RESPONSES
        assert (api_key, high + 1) not in REQUESTS
    assert 4 not in API_VERSIONS and 7 not in API_VERSIONS  # LeaderAndIsr, ControlledShutdown: not "broker"
    assert API_VERSIONS[ApiKey.PRODUCE] == (0, 11)
    assert API_VERSIONS[ApiKey.FETCH] == (0, 17)
    assert API_VERSIONS[ApiKey.API_VERSIONS] == (0, 4)
    assert FLEXIBLE_FROM[ApiKey.PRODUCE] == 9
    assert FLEXIBLE_FROM[ApiKey.SASL_HANDSHAKE] is None
    assert FLEXIBLE_FROM[ApiKey.API_VERSIONS] == 3


def test_api_key_names():
    assert (ApiKey.PRODUCE, ApiKey.FETCH, ApiKey.LIST_OFFSETS, ApiKey.METADATA) == (0, 1, 2, 3)
    assert (ApiKey.API_VERSIONS, ApiKey.CREATE_TOPICS, ApiKey.OFFSET_FOR_LEADER_EPOCH) == (18, 19, 23)
    assert ApiKey.DESCRIBE_TOPIC_PARTITIONS == 75
    assert set(ApiKey) == set(API_VERSIONS)


def test_snake_case_names():
    assert generate.snake_case("PartitionIndex") == "partition_index"
    assert generate.snake_case("TopicId") == "topic_id"
    assert generate.snake_case("KRaftVersion") == "k_raft_version"
    assert generate.snake_case("ResultsByTopicV3AndBelow") == "results_by_topic_v3_and_below"
    assert generate.snake_case("isKRaftController") == "is_k_raft_controller"


def test_comments_are_stripped_outside_strings_only():
    text = '{"a": "http://x//y", // comment\n "b": 1 // another\n}'
    assert generate.strip_comments(text) == '{"a": "http://x//y", \n "b": 1 \n}'


@pytest.mark.skipif(not MESSAGES_DIR.is_dir(), reason="no ../shared/kafka-protocol to regenerate from")
def test_committed_messages_module_is_not_stale():
    committed = (Path(generate.__file__).parent / "messages.py").read_text(encoding="utf-8")
    assert generate.generate(MESSAGES_DIR) == committed, "re-run `python -m wire.generate`"


# --- encodings checked against Kafka's serializers (ByteUtils, MessageDataGenerator) ---

@pytest.mark.parametrize("value, encoded", [
    (0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (0xFFFFFFFF, "ffffffff0f"),
])
def test_unsigned_varint(value, encoded):
    assert UnsignedVarInt.build(value).hex() == encoded
    assert UnsignedVarInt.parse(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize("value, encoded", [
    (0, "00"), (-1, "01"), (1, "02"), (-2, "03"), (63, "7e"), (-64, "7f"), (64, "8001"),
    (2**31 - 1, "feffffff0f"), (-(2**31), "ffffffff0f"),
])
def test_zigzag_varint(value, encoded):
    assert VarInt.build(value).hex() == encoded
    assert VarInt.parse(bytes.fromhex(encoded)) == value


def test_zigzag_varlong_extremes():
    assert VarLong.build(-(2**63)).hex() == "ffffffffffffffffff01"
    assert VarLong.parse(VarLong.build(2**63 - 1)) == 2**63 - 1
    with pytest.raises(ConstructError):
        VarInt.build(2**31)


def test_varint_longer_than_five_bytes_is_refused():
    with pytest.raises(ConstructError):
        UnsignedVarInt.parse(bytes.fromhex("8080808080"))
    with pytest.raises(ConstructError):
        UnsignedVarInt.parse(bytes.fromhex("80"))


def test_strings():
    assert String.build("abc").hex() == "0003616263"
    assert NullableString.build(None).hex() == "ffff"
    assert CompactString.build("abc").hex() == "04616263"
    assert CompactNullableString.build(None).hex() == "00"
    assert CompactString.build("é").hex() == "03c3a9"
    assert NullableString.parse(bytes.fromhex("ffff")) is None
    assert CompactNullableString.parse(b"\x00") is None


@pytest.mark.parametrize("schema, data", [
    (String, "ffff"),                   # null where null is not allowed
    (NullableString, "fffe"),           # -2: only -1 means null
    (CompactString, "00"),              # compact null where not allowed
    (String, "8000"),                   # -32768
    (types.NullableBytes, "fffffffe"),
    (types.KafkaBytes, "ffffffff"),
    (String, "0003ff6263"),             # not UTF-8
    (String, "000561"),                 # truncated
])
def test_bad_lengths_and_bytes_are_refused(schema, data):
    with pytest.raises((ConstructError, UnicodeDecodeError)):
        schema.parse(bytes.fromhex(data))


def test_string_longer_than_kafka_allows_is_refused_both_ways():
    with pytest.raises(ConstructError):
        CompactString.parse(UnsignedVarInt.build(0x8001) + b"a" * 0x8000)
    with pytest.raises(ConstructError):
        String.build("a" * 0x8000)


def test_records_accept_bytes_like_and_parse_to_bytes():
    assert types.NullableRecords.build(memoryview(b"xyz")).hex() == "0000000378797a"
    assert types.CompactNullableRecords.build(bytearray(b"xyz")).hex() == "0478797a"
    assert types.CompactNullableRecords.build(None).hex() == "00"
    assert types.NullableRecords.parse(bytes.fromhex("0000000378797a")) == b"xyz"
    assert types.NullableRecords.parse(bytes.fromhex("ffffffff")) is None


def test_uuid():
    topic_id = uuid.UUID("6b1c5e1e-3f0a-4c39-9a57-0d5d2c3f7a11")
    assert types.Uuid.build(topic_id) == topic_id.bytes
    assert types.Uuid.parse(topic_id.bytes) == topic_id


def test_arrays():
    assert types.ArrayOf(Int32sb).build([1, 2]).hex() == "000000020000000100000002"
    assert CompactArrayOf(Int32sb).build([1]).hex() == "0200000001"
    assert types.NullableArrayOf(Int32sb).build(None).hex() == "ffffffff"
    assert types.CompactNullableArrayOf(Int32sb).parse(b"\x00") is None
    with pytest.raises(ConstructError):
        types.ArrayOf(Int32sb).parse(bytes.fromhex("ffffffff"))
    with pytest.raises(ConstructError):
        types.NullableArrayOf(Int32sb).parse(bytes.fromhex("fffffffe"))


def test_huge_array_count_is_refused_before_looping():
    empty_struct = Message(flexible=False)
    with pytest.raises(ConstructError):
        types.ArrayOf(empty_struct).parse(bytes.fromhex("7fffffff"))


# --- defaults, ignored fields, tagged fields ---

def test_missing_fields_take_spec_defaults():
    fetch_partition = RESPONSES[ApiKey.FETCH, 11].build({"responses": [{"topic": "t", "partitions": [{}]}]})
    parsed = RESPONSES[ApiKey.FETCH, 11].parse(fetch_partition)
    partition = parsed.responses[0].partitions[0]
    assert partition == {"partition_index": 0, "error_code": 0, "high_watermark": 0,
                         "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": [],
                         "preferred_read_replica": -1, "records": None}
    # ConsumerGroupHeartbeat: "default": "null" strings, a 0x7fffffff default isn't in it but
    # MetadataRequest's AllowAutoTopicCreation defaults to true.
    assert REQUESTS[ApiKey.METADATA, 4].parse(REQUESTS[ApiKey.METADATA, 4].build({})).allow_auto_topic_creation is True
    heartbeat = RESPONSES[ApiKey.CONSUMER_GROUP_HEARTBEAT, 0]
    assert heartbeat.parse(heartbeat.build({})) == {
        "throttle_time_ms": 0, "error_code": 0, "error_message": None, "member_id": None,
        "member_epoch": 0, "heartbeat_interval_ms": 0, "assignment": None}


def test_explicit_none_stays_null_even_when_default_is_not():
    # AbortedTransactions is nullable with an empty-list default.
    schema = RESPONSES[ApiKey.FETCH, 11]
    data = schema.build({"responses": [{"topic": "t", "partitions": [{"aborted_transactions": None}]}]})
    assert schema.parse(data).responses[0].partitions[0].aborted_transactions is None


def test_fields_not_in_the_version_are_ignored():
    heartbeat_v0 = REQUESTS[ApiKey.HEARTBEAT, 0]
    data = heartbeat_v0.build({"group_id": "g", "generation_id": 3, "member_id": "m",
                               "group_instance_id": "not in v0"})
    assert data.hex() == "00016700000003" "00016d"


def test_struct_field_missing_takes_all_its_defaults():
    # ConsumerGroupHeartbeatResponse.Assignment is nullable with default null; give it.
    schema = RESPONSES[ApiKey.CONSUMER_GROUP_HEARTBEAT, 0]
    parsed = schema.parse(schema.build({"assignment": {}}))
    assert parsed.assignment == {"topic_partitions": []}


def test_tagged_field_written_only_when_not_default():
    schema = RESPONSES[ApiKey.FETCH, 12]
    plain = schema.build({"responses": [{"topic": "t", "partitions": [{}]}]})
    same = schema.build({"responses": [{"topic": "t", "partitions": [
        {"current_leader": {"leader_id": -1, "leader_epoch": -1}}]}]})
    assert plain == same
    tagged = schema.build({"responses": [{"topic": "t", "partitions": [
        {"current_leader": {"leader_id": 5, "leader_epoch": 2}}]}]})
    # partition tagged section: 1 field, tag 1, size 9: leader id 5, epoch 2, no nested tags
    assert tagged.endswith(bytes.fromhex("ffffffff" "00" "01" "01" "09" "00000005" "00000002" "00" "00" "00"))
    parsed = schema.parse(tagged).responses[0].partitions[0]
    assert parsed.current_leader == {"leader_id": 5, "leader_epoch": 2}
    assert parsed.diverging_epoch == {"epoch": -1, "end_offset": -1}


def test_unknown_tags_are_skipped():
    schema = REQUESTS[ApiKey.API_VERSIONS, 3]
    data = bytes.fromhex("0261" "0262" "02" "05" "02" "abcd" "07" "00")  # tags 5 and 7, unknown
    assert schema.parse(data) == {"client_software_name": "a", "client_software_version": "b"}


def test_tagged_field_with_wrong_size_is_refused():
    schema = RESPONSES[ApiKey.FETCH, 12]
    good = schema.build({"responses": [{"topic": "t", "partitions": [
        {"current_leader": {"leader_id": 5, "leader_epoch": 2}}]}]})
    bad = good.replace(bytes.fromhex("010109000000050000000200"), bytes.fromhex("01010a000000050000000200"))
    assert bad != good
    with pytest.raises(ConstructError):
        schema.parse(bad)


def test_nullable_struct_markers():
    inner = Message(Field("value", Int32sb, 0), flexible=True)
    assert NullableStruct(inner).build(None).hex() == "ff"
    assert NullableStruct(inner).build({"value": 1}).hex() == "010000000100"
    assert TaggedNullableStruct(inner).build(None).hex() == "00"
    assert TaggedNullableStruct(inner).build({"value": 1}).hex() == "010000000100"
    with pytest.raises(ConstructError):
        NullableStruct(inner).parse(bytes.fromhex("fe"))


def test_request_header_client_id_is_never_compact():
    header_v2 = REQUEST_HEADERS[2]
    data = header_v2.build({"request_api_key": 18, "request_api_version": 3, "correlation_id": 1,
                            "client_id": "ab"})
    assert data.hex() == "0012" "0003" "00000001" "00026162" "00"


def test_schemas_are_built_once():
    assert REQUESTS[ApiKey.PRODUCE, 9] is REQUESTS[ApiKey.PRODUCE, 9]
    assert REQUESTS[ApiKey.PRODUCE, 9] is REQUESTS[ApiKey.PRODUCE, 10]  # identical layouts alias
