"""Bad bytes close only the connection that sent them; bad configuration stops startup.

Each case opens a healthy connection first, sends the bad bytes on a second one, and
checks that the second is closed by the broker while the first and a new kafka-python
client still work."""
from __future__ import annotations

import struct
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from . import raw_kafka
from .raw_kafka import frame, request_header_v1, request_header_v2

SOCKET_REQUEST_MAX_BYTES = 104_857_600  # Kafka's default socket.request.max.bytes

BAD_FRAMES = {
    "negative length prefix": struct.pack(">i", -1) + b"\x00" * 16,
    "most negative length prefix": struct.pack(">i", -(2 ** 31)) + b"\x00" * 16,
    "length one over socket.request.max.bytes":
        struct.pack(">i", SOCKET_REQUEST_MAX_BYTES + 1) + b"\x00" * 64,
    "largest length prefix": struct.pack(">i", 2 ** 31 - 1) + b"\x00" * 64,
    "empty frame": frame(b""),
    "frame shorter than a header": frame(b"\x00\x03\x00"),
    "unknown api key": frame(request_header_v1(999, 0, 1)),
    "negative api key": frame(request_header_v1(-2, 0, 1)),
    "client id longer than the frame": frame(struct.pack(">hhih", 3, 1, 1, 200) + b"abc"),
    # Metadata v1 whose topics array count is cut after 2 of its 4 bytes.
    "truncated body": frame(request_header_v1(raw_kafka.METADATA, 1, 1) + b"\x00\x00"),
    # Metadata v1 claiming 5 topics and carrying one.
    "array longer than the body": frame(request_header_v1(raw_kafka.METADATA, 1, 1)
                                        + struct.pack(">i", 5) + raw_kafka.kafka_string("t")),
    "http request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "tls client hello": bytes.fromhex("160301020001000200030340") + b"\x00" * 40,
    # Produce v2 is a real request that Kafka 4.0 no longer serves (Produce starts at v3):
    # acks, timeout_ms, zero topics.
    "unsupported version of produce": frame(request_header_v1(raw_kafka.PRODUCE, 2, 1)
                                            + struct.pack(">hii", 1, 1000, 0)),
    "unsupported version of metadata": frame(request_header_v2(raw_kafka.METADATA, 99, 1)
                                             + b"\x01\x00\x00\x00"),
}


def api_versions_v0(sock, correlation_id: int) -> tuple[int, list[tuple[int, int, int]]]:
    sock.sendall(raw_kafka.api_versions_v0_request(correlation_id))
    got_correlation_id, error_code, api_keys = raw_kafka.parse_api_versions_v0(
        raw_kafka.receive_frame(sock))
    assert got_correlation_id == correlation_id
    return error_code, api_keys


def produce_and_fetch(address: str, topic: str, value: bytes) -> None:
    """A normal client still works: one message produced (acks=all) and fetched back."""
    producer = KafkaProducer(bootstrap_servers=address, request_timeout_ms=10_000,
                             max_block_ms=10_000)
    offset = producer.send(topic, value=value, partition=0).get(timeout=15).offset
    producer.close(timeout=10)
    consumer = KafkaConsumer(bootstrap_servers=address, group_id=None, enable_auto_commit=False)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, offset)
        deadline = time.monotonic() + 15
        records = []
        while not records and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records += batch
    finally:
        consumer.close()
    assert [(r.offset, r.value) for r in records[:1]] == [(offset, value)]


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_bytes_close_only_that_connection(gregor, case):
    with raw_kafka.connect(gregor.host, gregor.port) as healthy:
        assert api_versions_v0(healthy, 1)[0] == 0
        with raw_kafka.connect(gregor.host, gregor.port) as bad:
            try:
                bad.sendall(BAD_FRAMES[case])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the broker already closed it: what we want
            assert raw_kafka.closed_by_peer(bad, timeout_s=5.0), \
                f"{case}: connection still open 5 s after the bad bytes"
        assert api_versions_v0(healthy, 2)[0] == 0
    produce_and_fetch(gregor.address, "after-bad-input", f"after {case}".encode())
    assert gregor.running


def test_every_bad_frame_in_a_row_leaves_the_broker_serving(gregor):
    for number, (case, data) in enumerate(BAD_FRAMES.items()):
        with raw_kafka.connect(gregor.host, gregor.port) as bad:
            try:
                bad.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert raw_kafka.closed_by_peer(bad, timeout_s=5.0), case
    produce_and_fetch(gregor.address, "after-all-bad-input", b"still serving")
    assert gregor.running


def test_unsupported_api_versions_version_gets_a_v0_answer(gregor):
    """KIP-511: a client newer than the broker sends ApiVersions at a version the broker
    does not know; the broker answers UNSUPPORTED_VERSION (35) in a v0 body that lists
    what it supports, and the connection stays usable."""
    with raw_kafka.connect(gregor.host, gregor.port) as sock:
        error_code, supported = api_versions_v0(sock, 1)
        assert error_code == 0
        # ApiVersions v127, sent as a flexible request the way new clients do:
        # client_software_name, client_software_version (compact strings), no tags.
        body = b"\x07gregor" + b"\x041.0" + b"\x00"
        sock.sendall(frame(request_header_v2(raw_kafka.API_VERSIONS, 127, 2) + body))
        correlation_id, error_code, listed = raw_kafka.parse_api_versions_v0(
            raw_kafka.receive_frame(sock))
        assert (correlation_id, error_code) == (2, raw_kafka.UNSUPPORTED_VERSION)
        assert listed == supported
        versions = {api_key: (low, high) for api_key, low, high in listed}
        assert versions[raw_kafka.API_VERSIONS][0] == 0 and versions[raw_kafka.API_VERSIONS][1] >= 3
        assert versions[raw_kafka.PRODUCE][0] == 3  # record batch v2 only, as Kafka 4.0
        assert versions[1][0] == 4  # Fetch

        # The client then retries with the highest version both know, same connection.
        retry_version = versions[raw_kafka.API_VERSIONS][1]
        sock.sendall(frame(request_header_v2(raw_kafka.API_VERSIONS, retry_version, 3) + body))
        response = raw_kafka.receive_frame(sock)
    from wire.protocol import decode_response
    correlation_id, decoded = decode_response(raw_kafka.API_VERSIONS, retry_version, response)
    assert (correlation_id, decoded.error_code) == (3, 0)
    assert [(k.api_key, k.min_version, k.max_version) for k in decoded.api_keys] == supported


def test_pipelined_requests_are_answered_in_order(gregor):
    with raw_kafka.connect(gregor.host, gregor.port) as sock:
        sock.sendall(b"".join(raw_kafka.metadata_v1_request(i) if i % 2
                              else raw_kafka.api_versions_v0_request(i) for i in range(1, 21)))
        correlation_ids = [struct.unpack_from(">i", raw_kafka.receive_frame(sock))[0]
                           for _ in range(20)]
    assert correlation_ids == list(range(1, 21))


# -- configuration ---------------------------------------------------------------------

@pytest.mark.parametrize("setting, key", [
    ("num.partitions=abc", "num.partitions"),
    ("num.partitions=0", "num.partitions"),
    ("no.such.setting=1", "no.such.setting"),
    ("log.segment.bytes=lots", "log.segment.bytes"),
])
def test_bad_config_exits_2_naming_the_key(gregor_command, tmp_path, setting, key):
    result = gregor_command(["serve", "--listen", "127.0.0.1:0",
                                 "--data-dir", str(tmp_path / "data"), "--set", setting])
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("gregor: configuration error: "), result.stderr
    assert key in result.stderr
    assert "ready" not in result.stderr


def test_a_valid_request_leaves_the_connection_open(gregor):
    # The other side of closed_by_peer: a healthy connection is not reported closed.
    with raw_kafka.connect(gregor.host, gregor.port) as sock:
        assert api_versions_v0(sock, 1)[0] == 0
        assert not raw_kafka.closed_by_peer(sock, timeout_s=0.5)
        assert api_versions_v0(sock, 2)[0] == 0
