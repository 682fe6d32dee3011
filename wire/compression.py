"""Record batch compression codecs (attributes bits 0-2 of a v2 batch), via cramjam.

Snappy as Kafka clients write it is the xerial framing: a 16-byte magic header and then
blocks of [int32 length, raw snappy]; decompress also takes plain raw snappy (some clients
send it). LZ4 is the standard LZ4 frame format (KIP-57).
"""
from __future__ import annotations

import struct
from enum import IntEnum

import cramjam

from wire.errors import ErrorCode, KafkaError


class Compression(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


# b"\x82SNAPPY\x00" then int32 version 1 and int32 minimum compatible version 1.
XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
XERIAL_BLOCK_BYTES = 32 * 1024  # the xerial/Java client's block size
_INT32 = struct.Struct(">i")


def _snappy_xerial_compress(data: bytes | memoryview) -> bytes:
    view = memoryview(data)
    parts = [XERIAL_HEADER]
    for start in range(0, len(view), XERIAL_BLOCK_BYTES):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + XERIAL_BLOCK_BYTES]))
        parts.append(_INT32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _snappy_decompress(data: bytes | memoryview) -> bytes:
    view = memoryview(data)
    if bytes(view[:8]) != XERIAL_MAGIC:
        return bytes(cramjam.snappy.decompress_raw(view))
    if len(view) < 16:
        raise ValueError("xerial snappy header truncated")
    parts = []
    position = 16
    while position < len(view):
        if position + 4 > len(view):
            raise ValueError("xerial snappy block length truncated")
        (block_bytes,) = _INT32.unpack_from(view, position)
        position += 4
        if block_bytes < 0 or position + block_bytes > len(view):
            raise ValueError(f"xerial snappy block of {block_bytes} bytes runs past the data")
        parts.append(bytes(cramjam.snappy.decompress_raw(view[position : position + block_bytes])))
        position += block_bytes
    return b"".join(parts)


def _lz4_compress(data: bytes | memoryview) -> bytes:
    # Independent blocks: Kafka's Java KafkaLZ4BlockInputStream decodes each block alone.
    compressor = cramjam.lz4.Compressor(content_checksum=False, block_linked=False)
    compressor.compress(data)
    return bytes(compressor.finish())


def compress(codec: Compression | int, data: bytes | memoryview) -> bytes:
    """Compress `data` with `codec` as a Kafka producer would; NONE returns it unchanged."""
    if codec == Compression.NONE:
        return bytes(data)
    if codec == Compression.GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == Compression.SNAPPY:
        return _snappy_xerial_compress(data)
    if codec == Compression.LZ4:
        return _lz4_compress(data)
    if codec == Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"compression codec {int(codec)}")


_DECOMPRESSORS = {
    Compression.GZIP: lambda data: bytes(cramjam.gzip.decompress(data)),
    Compression.SNAPPY: _snappy_decompress,
    Compression.LZ4: lambda data: bytes(cramjam.lz4.decompress(data)),
    Compression.ZSTD: lambda data: bytes(cramjam.zstd.decompress(data)),
}


def decompress(codec: Compression | int, data: bytes | memoryview) -> bytes:
    """Decompress `data`; KafkaError UNSUPPORTED_COMPRESSION_TYPE for an unknown codec,
    CORRUPT_MESSAGE for data the codec cannot decode."""
    if codec == Compression.NONE:
        return bytes(data)
    try:
        decoder = _DECOMPRESSORS[Compression(codec)]
    except (ValueError, KeyError):
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"compression codec {int(codec)}") from None
    try:
        return decoder(data)
    except (cramjam.DecompressionError, ValueError, OSError) as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{Compression(codec).name} data does not decompress: {exc}") from exc
