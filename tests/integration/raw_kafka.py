"""Hand-built Kafka frames over a plain socket, for tests that must control every byte.

Requests are assembled with `struct` from the protocol spec, not with the broker's own
wire module, so a test of the broker's parser does not share its assumptions."""
from __future__ import annotations

import socket
import struct
import time

API_VERSIONS = 18
METADATA = 3
PRODUCE = 0
UNSUPPORTED_VERSION = 35


def kafka_string(text: str | None) -> bytes:
    """INT16 length + UTF-8 bytes; -1 for null."""
    if text is None:
        return struct.pack(">h", -1)
    data = text.encode("utf-8")
    return struct.pack(">h", len(data)) + data


def request_header_v1(api_key: int, api_version: int, correlation_id: int,
                      client_id: str | None = "raw-test") -> bytes:
    return struct.pack(">hhi", api_key, api_version, correlation_id) + kafka_string(client_id)


def request_header_v2(api_key: int, api_version: int, correlation_id: int,
                      client_id: str | None = "raw-test") -> bytes:
    return request_header_v1(api_key, api_version, correlation_id, client_id) + b"\x00"


def frame(payload: bytes) -> bytes:
    """Size prefix + payload."""
    return struct.pack(">i", len(payload)) + payload


def api_versions_v0_request(correlation_id: int) -> bytes:
    return frame(request_header_v1(API_VERSIONS, 0, correlation_id))


def metadata_v1_request(correlation_id: int) -> bytes:
    # Metadata v1: topics ARRAY(STRING); an empty array asks for brokers only.
    return frame(request_header_v1(METADATA, 1, correlation_id) + struct.pack(">i", 0))


def connect(host: str, port: int, timeout_s: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes; raises ConnectionError if the peer closes first."""
    chunks = bytearray()
    while len(chunks) < size:
        data = sock.recv(size - len(chunks))
        if not data:
            raise ConnectionError(f"connection closed after {len(chunks)} of {size} bytes")
        chunks += data
    return bytes(chunks)


def receive_frame(sock: socket.socket) -> bytes:
    """One response frame without its size prefix (socket timeout applies)."""
    (size,) = struct.unpack(">i", receive_exactly(sock, 4))
    return receive_exactly(sock, size)


def closed_by_peer(sock: socket.socket, timeout_s: float = 5.0) -> bool:
    """True if the peer closes the connection within timeout_s (recv gives b"" or the
    connection is reset) without sending anything first; False on timeout or data."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            return False
        sock.settimeout(remaining_s)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return data == b""


def parse_api_versions_v0(response: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(correlation_id, error_code, [(api_key, min_version, max_version)]) of an
    ApiVersions v0 response frame (header v0, body v0)."""
    correlation_id, error_code, count = struct.unpack_from(">ihi", response, 0)
    offset = 10
    api_keys = []
    for _ in range(count):
        api_keys.append(struct.unpack_from(">hhh", response, offset))
        offset += 6
    if offset != len(response):
        raise ValueError(f"{len(response) - offset} trailing bytes in ApiVersions v0 response")
    return correlation_id, error_code, api_keys


def parse_metadata_v1_brokers(response: bytes) -> tuple[int, list[tuple[int, str, int]]]:
    """(correlation_id, [(node_id, host, port)]) from a Metadata v1 response frame."""
    correlation_id, broker_count = struct.unpack_from(">ii", response, 0)
    offset = 8
    brokers = []
    for _ in range(broker_count):
        (node_id, host_length) = struct.unpack_from(">ih", response, offset)
        offset += 6
        host = response[offset:offset + host_length].decode("utf-8")
        offset += host_length
        (port, rack_length) = struct.unpack_from(">ih", response, offset)
        offset += 6 + max(rack_length, 0)
        brokers.append((node_id, host, port))
    return correlation_id, brokers
