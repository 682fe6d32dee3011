"""Kafka framing, request/response headers and bodies; sans-IO.

A frame is a 4-byte big-endian size followed by that many bytes. Requests carry
header v1 (INT16 api key, INT16 api version, INT32 correlation id, nullable STRING
client id) or, in an API's flexible versions, v2 (v1 plus a tagged fields section;
the client id keeps its two-byte length). Responses carry header v0 (correlation id)
or v1 (plus tagged fields); ApiVersions responses always use v0 so that a client can
read the answer to any version it tried (KIP-511).
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cache

from construct import ConstructError, Container

from wire.errors import UnsupportedVersion, WireError
from wire.messages import (
    API_VERSIONS,
    FLEXIBLE_FROM,
    REQUEST_HEADERS,
    REQUESTS,
    RESPONSE_HEADERS,
    RESPONSES,
    ApiKey,
)
from wire.types import DeferredBytes

__all__ = [
    "FrameReader", "RequestHeader", "request_header_version", "response_header_version",
    "decode_request_header", "decode_request_body", "decode_request", "encode_response",
    "encode_request", "decode_response", "encode_response_parts", "DeferredBytes",
]

# Everything a malformed frame can raise while being parsed.
_DECODE_ERRORS = (ConstructError, struct.error, UnicodeDecodeError, ValueError, OverflowError)
_SIZE = struct.Struct(">i")
_API_KEY_AND_VERSION = struct.Struct(">hh")


class FrameReader:
    """Splits a byte stream into Kafka frames; does no I/O."""

    def __init__(self, max_frame_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next whole frame without its size prefix, or None until more bytes come.

        Raises WireError for a negative size or one over max_frame_bytes, before
        buffering the body."""
        if len(self._buffer) < 4:
            return None
        size = int.from_bytes(self._buffer[:4], "big", signed=True)
        if not 0 <= size <= self._max_frame_bytes:  # refuse before buffering it
            raise WireError(f"frame size {size} outside 0..{self._max_frame_bytes}")
        if len(self._buffer) < 4 + size:
            return None
        frame = bytes(self._buffer[4 : 4 + size])
        del self._buffer[: 4 + size]
        return frame


# Every schema is compiled (construct's .compile()) on first use. Safe for parsing
# untrusted bytes: all reads in wire/types.py are length-checked (stream_read, or
# struct.unpack which raises on a short read), which the truncation and fuzz tests check.
@cache
def _request_schema(api_key: int, api_version: int):
    return REQUESTS[api_key, api_version].compile()


@cache
def _response_schema(api_key: int, api_version: int):
    return RESPONSES[api_key, api_version].compile()


@cache
def _request_header_schema(version: int):
    return REQUEST_HEADERS[version].compile()


@cache
def _response_header_schema(version: int):
    return RESPONSE_HEADERS[version].compile()


@dataclass(frozen=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def _is_flexible(api_key: int, api_version: int) -> bool:
    first = FLEXIBLE_FROM.get(api_key)
    return first is not None and api_version >= first


def request_header_version(api_key: int, api_version: int) -> int:
    """2 in the API's flexible versions, else 1. Versions above the known maximum follow
    the "N+" rule, so ApiVersions v5 is read with header v2."""
    return 2 if _is_flexible(api_key, api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """1 in the API's flexible versions, else 0; ApiVersions always 0."""
    if api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if _is_flexible(api_key, api_version) else 0


def decode_request_header(frame: bytes) -> tuple[RequestHeader, int]:
    """The header of a request frame (without size prefix) and the offset of its body.

    Raises WireError for an unknown API key or malformed bytes. A version of a known API
    that we do not know still gives a header (ApiVersions answers it)."""
    if len(frame) < 4:
        raise WireError(f"request of {len(frame)} bytes has no header")
    api_key, api_version = _API_KEY_AND_VERSION.unpack_from(frame)
    if api_key not in API_VERSIONS:
        raise WireError(f"unknown api key {api_key}")
    stream = io.BytesIO(frame)
    try:
        parsed = _request_header_schema(request_header_version(api_key, api_version))._parse(stream, None, "header")
    except _DECODE_ERRORS as exc:
        raise WireError(f"malformed request header: {exc}") from exc
    header = RequestHeader(api_key, api_version, parsed.correlation_id, parsed.client_id)
    return header, stream.tell()


def _parse(schema, frame, offset: int, what: str, *, allow_trailing: bool) -> Container:
    stream = io.BytesIO(frame)
    stream.seek(offset)
    try:
        body = schema._parse(stream, None, what)
    except _DECODE_ERRORS as exc:
        raise WireError(f"malformed {what}: {exc}") from exc
    trailing = len(frame) - stream.tell()
    if trailing and not allow_trailing:
        raise WireError(f"{what}: {trailing} trailing bytes")
    return body


def decode_request_body(header: RequestHeader, frame: bytes, offset: int) -> Container:
    """Parse the body of `frame` from `offset` (see decode_request_header).

    Raises UnsupportedVersion for an (api key, version) we have no schema for, WireError
    for malformed or truncated bytes. Bytes after a complete body are ignored, as Kafka's
    AbstractRequest.parseRequest does (librdkafka's all-topics Metadata v12 has some)."""
    key = (header.api_key, header.api_version)
    if key not in REQUESTS:
        raise UnsupportedVersion(f"{_api_name(header.api_key)} v{header.api_version} is not supported")
    return _parse(_request_schema(*key), frame, offset,
                  f"{_api_name(header.api_key)} v{header.api_version} request", allow_trailing=True)


def decode_request(frame: bytes) -> tuple[RequestHeader, Container]:
    header, offset = decode_request_header(frame)
    return header, decode_request_body(header, frame, offset)


def _frame(header_schema, header_fields: dict, body_schema, body: dict) -> bytes:
    stream = io.BytesIO()
    stream.write(b"\x00\x00\x00\x00")
    header_schema._build(header_fields, stream, None, "header")
    body_schema._build(body, stream, None, "body")
    buffer = stream.getbuffer()
    _SIZE.pack_into(buffer, 0, len(buffer) - 4)
    del buffer
    return stream.getvalue()


class _PartsWriter(io.BytesIO):
    """A build stream that leaves DeferredBytes out, noting where they go."""

    def __init__(self) -> None:
        super().__init__()
        self.deferred: list[tuple[int, DeferredBytes]] = []

    def write_deferred(self, data: DeferredBytes) -> None:
        self.deferred.append((self.tell(), data))


def encode_response_parts(header: RequestHeader, body: dict) -> list[bytes | DeferredBytes]:
    """The response frame as parts to send in order: bytes, and the DeferredBytes values
    of its BYTES/RECORDS fields left where they lie (Fetch serves file ranges this way,
    with sendfile). The size prefix counts them all. One bytes part when none is deferred."""
    schema = _response_schema(header.api_key, header.api_version)
    header_schema = _response_header_schema(response_header_version(header.api_key, header.api_version))
    stream = _PartsWriter()
    stream.write(b"\x00\x00\x00\x00")
    header_schema._build({"correlation_id": header.correlation_id}, stream, None, "header")
    schema._build(body, stream, None, "body")
    buffer = stream.getbuffer()
    deferred_bytes = sum(data.size for _, data in stream.deferred)
    _SIZE.pack_into(buffer, 0, len(buffer) - 4 + deferred_bytes)
    parts: list[bytes | DeferredBytes] = []
    start = 0
    for position, data in stream.deferred:
        parts.append(bytes(buffer[start:position]))
        parts.append(data)
        start = position
    parts.append(bytes(buffer[start:]))
    del buffer
    return parts


def encode_response(header: RequestHeader, body: dict, *, api_version: int | None = None) -> bytes:
    """The whole response frame, size prefix included.

    `api_version` overrides the body's version (ApiVersions answers a version it does not
    support with a v0 body). Raises KeyError for an (api key, version) with no schema."""
    version = header.api_version if api_version is None else api_version
    schema = _response_schema(header.api_key, version)
    header_schema = _response_header_schema(response_header_version(header.api_key, version))
    return _frame(header_schema, {"correlation_id": header.correlation_id}, schema, body)


def encode_request(api_key: int, api_version: int, correlation_id: int, client_id: str | None,
                   body: dict) -> bytes:
    """A whole request frame, size prefix included (clients and tests)."""
    header_schema = _request_header_schema(request_header_version(api_key, api_version))
    header_fields = {"request_api_key": api_key, "request_api_version": api_version,
                     "correlation_id": correlation_id, "client_id": client_id}
    return _frame(header_schema, header_fields, _request_schema(api_key, api_version), body)


def decode_response(api_key: int, api_version: int, frame: bytes) -> tuple[int, Container]:
    """Correlation id and body of a response frame (without size prefix).

    Raises UnsupportedVersion for an unknown (api key, version), WireError for bad bytes."""
    if (api_key, api_version) not in RESPONSES:
        raise UnsupportedVersion(f"{_api_name(api_key)} v{api_version} is not supported")
    stream = io.BytesIO(frame)
    try:
        header = _response_header_schema(response_header_version(api_key, api_version))._parse(stream, None, "header")
    except _DECODE_ERRORS as exc:
        raise WireError(f"malformed response header: {exc}") from exc
    what = f"{_api_name(api_key)} v{api_version} response"
    return header.correlation_id, _parse(_response_schema(api_key, api_version), frame, stream.tell(), what,
                                         allow_trailing=False)


def _api_name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name
    except ValueError:
        return f"api key {api_key}"
