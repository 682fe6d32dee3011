"""Framing, headers, and request/response decoding against frames real clients sent."""
from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .golden import GOLDEN
from wire.api_keys import ApiKey
from wire.errors import UnsupportedVersion, WireError
from wire.messages import REQUESTS
from wire.protocol import (
    FrameReader,
    RequestHeader,
    decode_request,
    decode_request_body,
    decode_request_header,
    decode_response,
    encode_request,
    encode_response,
    encode_response_parts,
    request_header_version,
    response_header_version,
)

# The record batch all three producers sent: v2, one record key=b"k1" value=b"v1",
# timestamp 1700000000000, no producer id; identical bytes from each client.
BATCH = bytes.fromhex(
    "0000000000000000" "0000003c" "00000000" "02" "6ba48e85" "0000" "00000000"
    "0000018bcfe56800" "0000018bcfe56800" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
    "14" "00" "00" "00" "04" "6b31" "04" "7631" "00"
)
TOPIC = "golden-topic"

EXPECTED = {
    "kafka_python_admin_api_versions_v4": (
        RequestHeader(ApiKey.API_VERSIONS, 4, 1, "golden-admin"),
        {"client_software_name": "kafka-python", "client_software_version": "3.0.12"}),
    "kafka_python_admin_metadata_v12": (
        RequestHeader(ApiKey.METADATA, 12, 2, "golden-admin"),
        {"topics": [], "allow_auto_topic_creation": True, "include_topic_authorized_operations": False}),
    "kafka_python_admin_metadata_v12_2": (  # list_topics(): all topics
        RequestHeader(ApiKey.METADATA, 12, 2, "golden-admin"),
        {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": True}),
    "kafka_python_producer_api_versions_v4": (
        RequestHeader(ApiKey.API_VERSIONS, 4, 1, "golden-producer"),
        {"client_software_name": "kafka-python", "client_software_version": "3.0.12"}),
    "kafka_python_producer_metadata_v12": (
        RequestHeader(ApiKey.METADATA, 12, 2, "golden-producer"),
        {"topics": [], "allow_auto_topic_creation": True, "include_topic_authorized_operations": False}),
    "kafka_python_producer_produce_v9": (
        RequestHeader(ApiKey.PRODUCE, 9, 2, "golden-producer"),
        {"transactional_id": None, "acks": 1, "timeout_ms": 30000,
         "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": BATCH}]}]}),
    "kafka_python_pinned_api_versions_v2": (
        RequestHeader(ApiKey.API_VERSIONS, 2, 1, "golden-pinned"), {}),
    "kafka_python_pinned_metadata_v6": (
        RequestHeader(ApiKey.METADATA, 6, 2, "golden-pinned"),
        {"topics": [{"name": TOPIC}], "allow_auto_topic_creation": True}),
    "kafka_python_pinned_produce_v6": (
        RequestHeader(ApiKey.PRODUCE, 6, 2, "golden-pinned"),
        {"transactional_id": None, "acks": 1, "timeout_ms": 30000,
         "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": BATCH}]}]}),
    "rdkafka_api_versions_v3": (
        RequestHeader(ApiKey.API_VERSIONS, 3, 1, "golden-rdkafka"),
        {"client_software_name": "confluent-kafka-python", "client_software_version": "2.16.1-rdkafka-2.16.0"}),
    "rdkafka_metadata_v12": (
        RequestHeader(ApiKey.METADATA, 12, 2, "golden-rdkafka"),
        {"topics": [{"topic_id": uuid.UUID(int=0), "name": TOPIC}], "allow_auto_topic_creation": True,
         "include_topic_authorized_operations": False}),
    "rdkafka_produce_v10": (
        RequestHeader(ApiKey.PRODUCE, 10, 2, "golden-rdkafka"),
        {"transactional_id": None, "acks": 1, "timeout_ms": 30000,
         "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": BATCH}]}]}),
}


def test_every_golden_frame_has_an_expectation():
    assert set(EXPECTED) == set(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_frames_decode_to_exact_fields(name):
    header, body = decode_request(GOLDEN[name])
    expected_header, expected_body = EXPECTED[name]
    assert header == expected_header
    assert body == expected_body


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_frames_re_encode_byte_for_byte(name):
    header, body = decode_request(GOLDEN[name])
    frame = encode_request(header.api_key, header.api_version, header.correlation_id, header.client_id, body)
    assert frame[4:] == GOLDEN[name]
    assert int.from_bytes(frame[:4], "big") == len(GOLDEN[name])


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_truncated_golden_frame_is_a_wire_error(name):
    frame = GOLDEN[name]
    for cut in range(len(frame)):
        with pytest.raises(WireError):
            decode_request(frame[:cut])


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_trailing_bytes_after_a_request_are_ignored_as_kafka_does(name):
    assert decode_request(GOLDEN[name] + b"\x01\x00\x00") == decode_request(GOLDEN[name])


def test_librdkafka_all_topics_metadata_v12_with_trailing_bytes():
    # librdkafka 2.16 AdminClient.list_topics(): 3 bytes after the v12 body; Kafka answers it.
    frame = bytes.fromhex("0003000c00000003000772646b61666b610000000000010000")
    header, body = decode_request(frame)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == \
        (ApiKey.METADATA, 12, 3, "rdkafka")
    assert (body.topics, body.allow_auto_topic_creation,
            body.include_topic_authorized_operations) == (None, False, False)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_wire_error_and_nothing_else(data):
    try:
        decode_request(data)
    except WireError:
        pass


@settings(max_examples=3000, deadline=None)
@given(key=st.sampled_from(sorted(REQUESTS)), body=st.binary(max_size=120))
def test_random_bodies_of_every_api_raise_wire_error_and_nothing_else(key, body):
    api_key, api_version = key
    frame = encode_request(api_key, api_version, 1, "fuzz", {})[4:]
    _, offset = decode_request_header(frame)
    try:
        decode_request(frame[:offset] + body)
    except WireError:
        pass


@settings(max_examples=1000, deadline=None)
@given(name=st.sampled_from(sorted(GOLDEN)), data=st.data())
def test_corrupted_golden_frames_raise_wire_error_and_nothing_else(name, data):
    frame = bytearray(GOLDEN[name])
    for _ in range(data.draw(st.integers(1, 4))):
        frame[data.draw(st.integers(4, len(frame) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode_request(bytes(frame))
    except WireError:
        pass


def test_unknown_api_key_is_a_wire_error():
    with pytest.raises(WireError, match="unknown api key 4"):  # LeaderAndIsr: not a broker API
        decode_request_header(bytes.fromhex("0004000000000001ffff"))
    with pytest.raises(WireError, match="unknown api key"):
        decode_request_header(bytes.fromhex("7fff000000000001ffff"))


def test_unknown_version_of_a_known_api_still_gives_the_header():
    # ApiVersions v5 from a newer client: header v2 by the "3+" flexible rule.
    frame = bytes.fromhex("0012" "0005" "0000002a" "0003616263" "00" "0261" "0262" "00")
    header, offset = decode_request_header(frame)
    assert header == RequestHeader(ApiKey.API_VERSIONS, 5, 42, "abc")
    assert offset == 14
    with pytest.raises(UnsupportedVersion):
        decode_request_body(header, frame, offset)
    with pytest.raises(UnsupportedVersion):
        decode_request(frame)


def test_null_client_id():
    header, _ = decode_request(bytes.fromhex("0012" "0000" "00000007" "ffff"))
    assert header == RequestHeader(ApiKey.API_VERSIONS, 0, 7, None)


def test_header_versions():
    assert request_header_version(ApiKey.PRODUCE, 8) == 1
    assert request_header_version(ApiKey.PRODUCE, 9) == 2
    assert request_header_version(ApiKey.API_VERSIONS, 2) == 1
    assert request_header_version(ApiKey.API_VERSIONS, 5) == 2
    assert request_header_version(ApiKey.SASL_HANDSHAKE, 1) == 1
    assert response_header_version(ApiKey.FETCH, 11) == 0
    assert response_header_version(ApiKey.FETCH, 12) == 1
    assert response_header_version(ApiKey.API_VERSIONS, 3) == 0
    assert response_header_version(ApiKey.METADATA, 9) == 1


def test_encode_response_frames_with_the_right_header():
    header = RequestHeader(ApiKey.HEARTBEAT, 4, 99, "c")
    frame = encode_response(header, {"throttle_time_ms": 5, "error_code": 27})
    # size 12: correlation id, empty tagged fields (header v1), throttle, error, tagged fields
    assert frame.hex() == "0000000c" "00000063" "00" "00000005" "001b" "00"
    assert decode_response(ApiKey.HEARTBEAT, 4, frame[4:]) == (99, {"throttle_time_ms": 5, "error_code": 27})


def test_api_versions_response_header_is_v0_even_when_flexible():
    header = RequestHeader(ApiKey.API_VERSIONS, 3, 1, "c")
    frame = encode_response(header, {"api_keys": [{"api_key": 18, "min_version": 0, "max_version": 4}]})
    assert frame.hex() == ("00000013" "00000001" "0000" "02" "0012" "0000" "0004" "00" "00000000" "00")
    correlation_id, body = decode_response(ApiKey.API_VERSIONS, 3, frame[4:])
    assert correlation_id == 1
    assert body.api_keys == [{"api_key": 18, "min_version": 0, "max_version": 4}]


def test_unsupported_api_versions_request_answered_with_v0_body():
    header = RequestHeader(ApiKey.API_VERSIONS, 9, 3, "c")
    frame = encode_response(header, {"error_code": 35, "api_keys": [
        {"api_key": 18, "min_version": 0, "max_version": 4}]}, api_version=0)
    assert frame.hex() == "00000010" "00000003" "0023" "00000001" "0012" "0000" "0004"


def test_decode_response_refuses_trailing_and_truncated_bytes():
    frame = encode_response(RequestHeader(ApiKey.HEARTBEAT, 0, 1, None), {"error_code": 0})[4:]
    with pytest.raises(WireError):
        decode_response(ApiKey.HEARTBEAT, 0, frame + b"\x00")
    with pytest.raises(WireError):
        decode_response(ApiKey.HEARTBEAT, 0, frame[:-1])
    with pytest.raises(UnsupportedVersion):
        decode_response(ApiKey.HEARTBEAT, 99, frame)


def test_fetch_response_round_trips_through_the_frame():
    body = {"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": [
        {"topic_id": uuid.UUID("6b1c5e1e-3f0a-4c39-9a57-0d5d2c3f7a11"), "partitions": [
            {"partition_index": 0, "error_code": 0, "high_watermark": 1, "last_stable_offset": 1,
             "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1,
             "records": BATCH, "diverging_epoch": {"epoch": -1, "end_offset": -1},
             "current_leader": {"leader_id": 0, "leader_epoch": 3},
             "snapshot_id": {"end_offset": -1, "epoch": -1}}]}],
        "node_endpoints": []}
    frame = encode_response(RequestHeader(ApiKey.FETCH, 16, 5, "c"), body)
    assert decode_response(ApiKey.FETCH, 16, frame[4:]) == (5, body)


# --- FrameReader ---

def test_frame_reader_splits_a_stream_fed_in_pieces():
    frames = FrameReader(max_frame_bytes=100)
    stream = b"\x00\x00\x00\x02ab" b"\x00\x00\x00\x00" b"\x00\x00\x00\x03xyz"
    out = []
    for byte in stream:
        frames.feed(bytes([byte]))
        while (frame := frames.next_frame()) is not None:
            out.append(frame)
    assert out == [b"ab", b"", b"xyz"]
    assert frames.next_frame() is None


@pytest.mark.parametrize("prefix", ["ffffffff", "80000000", "00000065", "7fffffff"])
def test_frame_reader_refuses_negative_and_oversize_prefixes_before_the_body(prefix):
    frames = FrameReader(max_frame_bytes=100)
    frames.feed(bytes.fromhex(prefix))  # no body at all: refused on the prefix alone
    with pytest.raises(WireError, match="frame size"):
        frames.next_frame()


def test_frame_reader_accepts_exactly_the_maximum():
    frames = FrameReader(max_frame_bytes=3)
    frames.feed(b"\x00\x00\x00\x03abc")
    assert frames.next_frame() == b"abc"


class _FileRange:
    """A DeferredBytes stand-in: bytes known by size, read only on demand."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self) -> bytes:
        return self.data


@pytest.mark.parametrize("version", [4, 11, 12, 17])
def test_response_parts_leave_deferred_records_in_place_and_frame_them(version):
    ranges = [_FileRange(b"a" * 70), _FileRange(b"b" * 5)]
    body = {"responses": [{"topic": "t", "topic_id": uuid.UUID(int=7), "partitions": [
        {"partition_index": i, "high_watermark": 9, "records": r} for i, r in enumerate(ranges)]}]}
    header = RequestHeader(ApiKey.FETCH, version, 42, "c")
    parts = encode_response_parts(header, body)
    assert [type(p) for p in parts] == [bytes, _FileRange, bytes, _FileRange, bytes]
    assert parts[1] is ranges[0] and parts[3] is ranges[1]
    joined = b"".join(p if isinstance(p, bytes) else p.read() for p in parts)
    assert joined == encode_response(header, body)
    assert struct.unpack(">i", joined[:4])[0] == len(joined) - 4
