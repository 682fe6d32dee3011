"""Record batch v2 ("magic 2"): the 61-byte header view and patching used on the
produce/fetch path, plus full record encoding/decoding for the few places whose semantics
need records (timestamp lookups, control markers, tests).

Header functions read or patch only the header: no per-record work.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple, Sequence

import crc32c

from wire.compression import Compression, compress, decompress
from wire.errors import ErrorCode, KafkaError

BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset + batch_length precede what batch_length counts
MAGIC = 2
CRC_COVERS_FROM = 21  # attributes .. end of batch
# Offsets of the fields patched in place.
BASE_OFFSET_AT = 0
PARTITION_LEADER_EPOCH_AT = 12
MAGIC_AT = 16
CRC_AT = 17
ATTRIBUTES_AT = 21
MAX_TIMESTAMP_AT = 35
# batch_length counts from partition_leader_epoch: the smallest legal value, no records.
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20

CREATE_TIME = 0
LOG_APPEND_TIME = 1
NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
INT32_MAX = 2**31 - 1

_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")


def increment_sequence(sequence: int, increment: int) -> int:
    """Kafka's sequence arithmetic: sequences wrap from INT32_MAX to 0."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """0 = CreateTime, 1 = LogAppendTime."""
        return (self.attributes & TIMESTAMP_TYPE_MASK) >> 3

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size(self) -> int:
        """Bytes of the whole batch, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return increment_sequence(self.base_sequence, self.last_offset_delta)


def read_batch_header(buf: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """The v2 header at `position`; KafkaError CORRUPT_MESSAGE if fewer than 61 bytes remain."""
    if len(buf) - position < BATCH_HEADER_SIZE:
        raise KafkaError(
            ErrorCode.CORRUPT_MESSAGE,
            f"{len(buf) - position} bytes at position {position}, a batch header needs {BATCH_HEADER_SIZE}",
        )
    return BatchHeader._make(BATCH_HEADER.unpack_from(buf, position))


def iter_batches(
    data: bytes | bytearray | memoryview, *, allow_partial_tail: bool = False
) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each batch in `data`, reading headers only.

    A batch_length too small for a header is CORRUPT_MESSAGE. Bytes at the end too short
    for a whole batch are CORRUPT_MESSAGE unless `allow_partial_tail` (a fetch response may
    end with a partial batch), in which case iteration stops there.
    """
    total = len(data)
    position = 0
    unpack_from = BATCH_HEADER.unpack_from
    make = BatchHeader._make
    while position < total:
        if total - position < BATCH_HEADER_SIZE:
            if allow_partial_tail:
                return
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{total - position} trailing bytes at {position}: partial batch")
        header = make(unpack_from(data, position))
        if header.batch_length < MIN_BATCH_LENGTH:
            raise KafkaError(
                ErrorCode.CORRUPT_MESSAGE, f"batch at {position} has batch_length {header.batch_length} < {MIN_BATCH_LENGTH}"
            )
        end = position + header.batch_length + LOG_OVERHEAD
        if end > total:
            if allow_partial_tail:
                return
            raise KafkaError(
                ErrorCode.CORRUPT_MESSAGE,
                f"batch at {position} of {header.batch_length + LOG_OVERHEAD} bytes runs past the {total} bytes given",
            )
        yield position, header
        position = end


def compute_crc(batch: bytes | bytearray | memoryview) -> int:
    return crc32c.crc32c(memoryview(batch)[CRC_COVERS_FROM:])


def verify_crc(batch: bytes | bytearray | memoryview) -> None:
    """Raise KafkaError CORRUPT_MESSAGE unless the stored CRC32C matches the batch bytes."""
    view = memoryview(batch)
    if len(view) < BATCH_HEADER_SIZE:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch of {len(view)} bytes is shorter than its header")
    stored = _UINT32.unpack_from(view, CRC_AT)[0]
    computed = crc32c.crc32c(view[CRC_COVERS_FROM:])
    if stored != computed:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")


def assign_base_offset(buf: bytearray | memoryview, position: int, base_offset: int) -> None:
    # Not covered by the CRC: no re-checksum needed.
    _INT64.pack_into(buf, position + BASE_OFFSET_AT, base_offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, position: int, epoch: int) -> None:
    # Not covered by the CRC either, so a leader can stamp it without re-checksumming.
    _INT32.pack_into(buf, position + PARTITION_LEADER_EPOCH_AT, epoch)


def set_log_append_time(buf: bytearray | memoryview, position: int, timestamp_ms: int) -> None:
    """Mark the batch LogAppendTime with max_timestamp = timestamp_ms; both are under the
    CRC, so it is recomputed (over the batch bytes, in C)."""
    view = memoryview(buf)
    (attributes,) = _INT16.unpack_from(view, position + ATTRIBUTES_AT)
    _INT16.pack_into(view, position + ATTRIBUTES_AT, attributes | TIMESTAMP_TYPE_MASK)
    _INT64.pack_into(view, position + MAX_TIMESTAMP_AT, timestamp_ms)
    (batch_length,) = _INT32.unpack_from(view, position + 8)
    end = position + batch_length + LOG_OVERHEAD
    _UINT32.pack_into(view, position + CRC_AT, crc32c.crc32c(view[position + CRC_COVERS_FROM : end]))


# ---- full records: not for the produce/fetch path ----


@dataclass
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def _read_varint(buf: bytes, position: int) -> tuple[int, int]:
    """Zigzag varint (Kafka's varint/varlong) at position -> (value, next position)."""
    shift = 0
    raw = 0
    while True:
        if position >= len(buf):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "varint runs past the end of the records")
        byte = buf[position]
        position += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "varint longer than 10 bytes")
    return (raw >> 1) ^ -(raw & 1), position


def _write_varint(out: bytearray, value: int) -> None:
    raw = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)


def _read_nullable_bytes(buf: bytes, position: int) -> tuple[bytes | None, int]:
    length, position = _read_varint(buf, position)
    if length < 0:
        return None, position
    if position + length > len(buf):
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record field runs past the end of the records")
    return bytes(buf[position : position + length]), position + length


def decode_records(batch: bytes | bytearray | memoryview) -> list[Record]:
    """Every record of one whole v2 batch, decompressed. In a LogAppendTime batch each
    record's timestamp is the batch's max_timestamp, as Kafka reports it."""
    header = read_batch_header(batch)
    if header.magic != MAGIC:
        raise KafkaError(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"record batch magic {header.magic}")
    body = bytes(memoryview(batch)[BATCH_HEADER_SIZE : header.size])
    if len(body) != header.size - BATCH_HEADER_SIZE:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "batch shorter than its batch_length")
    data = decompress(header.compression, body)
    log_append_time = header.timestamp_type == LOG_APPEND_TIME
    records = []
    position = 0
    for _ in range(header.records_count):
        length, position = _read_varint(data, position)
        end = position + length
        if length < 0 or end > len(data):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"record of {length} bytes runs past the batch")
        position += 1  # record attributes: unused in v2
        timestamp_delta, position = _read_varint(data, position)
        offset_delta, position = _read_varint(data, position)
        key, position = _read_nullable_bytes(data, position)
        value, position = _read_nullable_bytes(data, position)
        header_count, position = _read_varint(data, position)
        headers = []
        for _ in range(header_count):
            name, position = _read_nullable_bytes(data, position)
            header_value, position = _read_nullable_bytes(data, position)
            if name is None:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record header with a null key")
            headers.append((name.decode("utf-8"), header_value))
        if position != end:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"record length {length} disagrees with its fields")
        timestamp = header.max_timestamp if log_append_time else header.base_timestamp + timestamp_delta
        records.append(Record(header.base_offset + offset_delta, timestamp, key, value, headers))
    if position != len(data):
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{len(data) - position} bytes after the last record")
    return records


# (key, value, headers, timestamp_ms)
RecordInput = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int]


def _encode_record(out: bytearray, offset_delta: int, timestamp_delta: int, key, value, headers) -> None:
    body = bytearray(b"\x00")
    _write_varint(body, timestamp_delta)
    _write_varint(body, offset_delta)
    for item in (key, value):
        if item is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(item))
            body += item
    _write_varint(body, len(headers))
    for name, header_value in headers:
        encoded = name.encode("utf-8")
        _write_varint(body, len(encoded))
        body += encoded
        if header_value is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(header_value))
            body += header_value
    _write_varint(out, len(body))
    out += body


def build_batch(
    records: Sequence[RecordInput | Record],
    *,
    base_offset: int = 0,
    compression: Compression | int = Compression.NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    timestamp_type: int = CREATE_TIME,
) -> bytes:
    """One v2 batch holding `records`: each a (key, value, headers, timestamp_ms) tuple or
    a Record (its offset is then relative to base_offset). At least one record."""
    if not records:
        raise ValueError("a record batch holds at least one record")
    normalized: list[tuple[int, bytes | None, bytes | None, Iterable, int]] = []
    for index, item in enumerate(records):
        if isinstance(item, Record):
            normalized.append((item.offset - base_offset, item.key, item.value, item.headers, item.timestamp))
        else:
            key, value, headers, timestamp_ms = item
            normalized.append((index, key, value, headers, timestamp_ms))
    base_timestamp = normalized[0][4]
    max_timestamp = max(item[4] for item in normalized)
    body = bytearray()
    for offset_delta, key, value, headers, timestamp_ms in normalized:
        _encode_record(body, offset_delta, timestamp_ms - base_timestamp, key, value, list(headers))
    payload = compress(compression, bytes(body))
    attributes = (
        int(compression)
        | (TIMESTAMP_TYPE_MASK if timestamp_type == LOG_APPEND_TIME else 0)
        | (TRANSACTIONAL_MASK if is_transactional else 0)
        | (CONTROL_MASK if is_control else 0)
    )
    batch = bytearray(BATCH_HEADER_SIZE) + payload
    BATCH_HEADER.pack_into(
        batch,
        0,
        base_offset,
        len(batch) - LOG_OVERHEAD,
        partition_leader_epoch,
        MAGIC,
        0,
        attributes,
        normalized[-1][0],
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(normalized),
    )
    _UINT32.pack_into(batch, CRC_AT, crc32c.crc32c(memoryview(batch)[CRC_COVERS_FROM:]))
    return bytes(batch)


def recompress(records: bytes | bytearray | memoryview, codec: Compression | int) -> bytes:
    """The batches of a Produce records field with every batch not already in `codec`
    rebuilt in it, as Kafka does for a topic whose compression.type names a codec.
    Each CRC is checked first, so a corrupt batch is refused, not re-sealed."""
    view = memoryview(records)
    out = bytearray()
    for position, header in iter_batches(view):
        batch = view[position : position + header.size]
        if header.compression == codec:
            out += batch
            continue
        verify_crc(batch)
        out += build_batch(
            decode_records(batch),
            base_offset=header.base_offset,
            compression=codec,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            is_transactional=header.is_transactional,
            is_control=header.is_control,
            partition_leader_epoch=header.partition_leader_epoch,
            timestamp_type=header.timestamp_type,
        )
    return bytes(out)


# -- transaction markers (control batches) ------------------------------------------------

_CONTROL_KEY = struct.Struct(">hh")  # version 0, type: 0 abort, 1 commit
_END_TXN_MARKER_VALUE = struct.Struct(">hi")  # version 0, coordinator epoch
ABORT_MARKER = 0
COMMIT_MARKER = 1


class EndTxnMarker(NamedTuple):
    commit: bool
    coordinator_epoch: int


def end_txn_marker_batch(producer_id: int, producer_epoch: int, *, commit: bool,
                         coordinator_epoch: int, timestamp_ms: int) -> bytes:
    """A control batch holding one EndTransactionMarker record, as Kafka's coordinator
    writes it (base offset 0 until the log assigns one)."""
    key = _CONTROL_KEY.pack(0, COMMIT_MARKER if commit else ABORT_MARKER)
    value = _END_TXN_MARKER_VALUE.pack(0, coordinator_epoch)
    return build_batch([(key, value, [], timestamp_ms)], producer_id=producer_id,
                       producer_epoch=producer_epoch, is_transactional=True, is_control=True)


def parse_end_txn_marker(batch: bytes | bytearray | memoryview) -> EndTxnMarker | None:
    """The EndTransactionMarker of a control batch; None for a control batch the cleaner
    emptied (Kafka ignores those). KafkaError for anything else in a control batch."""
    records = decode_records(batch)
    if not records:
        return None
    key, value = records[0].key, records[0].value
    if key is None or len(key) < _CONTROL_KEY.size or value is None \
            or len(value) < _END_TXN_MARKER_VALUE.size:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "control batch without an end-transaction marker")
    _, marker_type = _CONTROL_KEY.unpack_from(key)
    if marker_type not in (ABORT_MARKER, COMMIT_MARKER):
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"control record type {marker_type} is not a transaction marker")
    _, coordinator_epoch = _END_TXN_MARKER_VALUE.unpack_from(value)
    return EndTxnMarker(marker_type == COMMIT_MARKER, coordinator_epoch)
