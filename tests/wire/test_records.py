"""Record batch v2 header view, patching, record codec and compression codecs,
checked against kafka-python's own batch builder/reader and the codecs' reference
libraries (python-snappy, lz4, zstandard)."""
from __future__ import annotations

import gzip
import struct

import crc32c
import lz4.frame
import pytest
import snappy
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from wire.compression import XERIAL_HEADER, Compression, compress, decompress
from wire.errors import ErrorCode, KafkaError
from wire.records import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    Record,
    assign_base_offset,
    build_batch,
    decode_records,
    increment_sequence,
    iter_batches,
    read_batch_header,
    set_log_append_time,
    set_partition_leader_epoch,
    verify_crc,
)

CODECS = list(Compression)
PAYLOAD = b"".join(b"record %06d of a compressible payload; " % i for i in range(3000))  # ~120 KB


def kafka_python_batch(codec: int, records: list[tuple[bytes | None, bytes | None, list, int]], **kwargs) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=kwargs.get("is_transactional", False),
        producer_id=kwargs.get("producer_id", -1),
        producer_epoch=kwargs.get("producer_epoch", -1),
        base_sequence=kwargs.get("base_sequence", -1),
        batch_size=1 << 30,
    )
    for offset, (key, value, headers, timestamp_ms) in enumerate(records):
        builder.append(offset, timestamp=timestamp_ms, key=key, value=value, headers=headers)
    return bytes(builder.build())


SAMPLE = [
    (b"key-0", b"value-0", [("trace", b"abc"), ("empty", None)], 1_700_000_000_000),
    (None, b"value-1" * 50, [], 1_700_000_000_005),
    (b"key-2", None, [], 1_699_999_999_990),  # timestamps may go backwards within a batch
]


# ---- compression ----


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_round_trips(codec):
    assert decompress(codec, compress(codec, PAYLOAD)) == PAYLOAD
    assert decompress(codec, compress(codec, b"")) == b""


def test_snappy_is_written_in_xerial_framing_with_32k_blocks():
    data = compress(Compression.SNAPPY, PAYLOAD)
    assert data[:16] == XERIAL_HEADER == b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
    position, blocks = 16, []
    while position < len(data):
        (length,) = struct.unpack_from(">i", data, position)
        blocks.append(snappy.uncompress(data[position + 4 : position + 4 + length]))
        position += 4 + length
    assert [len(block) for block in blocks] == [32768, 32768, 32768, len(PAYLOAD) - 3 * 32768]
    assert b"".join(blocks) == PAYLOAD


def test_snappy_decodes_raw_blocks_and_python_snappy_xerial_streams():
    from kafka.codec import snappy_encode

    assert decompress(Compression.SNAPPY, snappy.compress(PAYLOAD)) == PAYLOAD
    assert decompress(Compression.SNAPPY, snappy_encode(PAYLOAD, xerial_compatible=True)) == PAYLOAD


def test_lz4_writes_independent_blocks_and_reads_any_frame():
    data = compress(Compression.LZ4, PAYLOAD)
    assert data[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame magic (KIP-57)
    assert data[4] & 0x20  # FLG: block independence, which Kafka's Java reader requires
    assert lz4.frame.decompress(data) == PAYLOAD
    linked = lz4.frame.compress(PAYLOAD, block_linked=True, content_checksum=True, store_size=True)
    assert decompress(Compression.LZ4, linked) == PAYLOAD


def test_zstd_and_gzip_interoperate_with_reference_libraries():
    streamed = zstandard.ZstdCompressor().compressobj()
    frame_without_size = streamed.compress(PAYLOAD) + streamed.flush()
    assert decompress(Compression.ZSTD, frame_without_size) == PAYLOAD
    assert zstandard.ZstdDecompressor().decompressobj().decompress(compress(Compression.ZSTD, PAYLOAD)) == PAYLOAD
    assert decompress(Compression.GZIP, gzip.compress(PAYLOAD)) == PAYLOAD
    assert gzip.decompress(compress(Compression.GZIP, PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("codec", [5, 7])
def test_unknown_codec_is_unsupported_compression_type(codec):
    for function in (compress, decompress):
        with pytest.raises(KafkaError) as caught:
            function(codec, b"data")
        assert caught.value.code is ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD])
def test_garbage_is_corrupt_message(codec):
    garbage = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x10\x00junk" if codec == Compression.SNAPPY else b"junk" * 8
    with pytest.raises(KafkaError) as caught:
        decompress(codec, garbage)
    assert caught.value.code is ErrorCode.CORRUPT_MESSAGE


# ---- decoding what kafka-python builds ----


@pytest.mark.parametrize("codec", CODECS)
def test_decode_kafka_python_batch_for_every_codec(codec):
    batch = kafka_python_batch(codec, SAMPLE)
    header = read_batch_header(batch)
    assert header.compression == codec
    assert (header.magic, header.records_count, header.last_offset_delta) == (2, 3, 2)
    assert (header.base_timestamp, header.max_timestamp) == (1_700_000_000_000, 1_700_000_000_005)
    assert header.size == len(batch)
    verify_crc(memoryview(batch))
    assert decode_records(batch) == [
        Record(0, 1_700_000_000_000, b"key-0", b"value-0", [("trace", b"abc"), ("empty", None)]),
        Record(1, 1_700_000_000_005, None, b"value-1" * 50, []),
        Record(2, 1_699_999_999_990, b"key-2", None, []),
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_reads_what_build_batch_writes(codec):
    batch = build_batch(
        SAMPLE, base_offset=40, compression=codec, producer_id=7, producer_epoch=2, base_sequence=11,
        is_transactional=True, partition_leader_epoch=5,
    )
    reader = DefaultRecordBatch(batch)
    assert reader.validate_crc()
    assert (reader.base_offset, reader.leader_epoch, reader.producer_id, reader.producer_epoch) == (40, 5, 7, 2)
    assert (reader.base_sequence, reader.is_transactional, reader.compression_type) == (11, True, codec)
    assert [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in reader] == [
        (40, 1_700_000_000_000, b"key-0", b"value-0", [("trace", b"abc"), ("empty", None)]),
        (41, 1_700_000_000_005, None, b"value-1" * 50, []),
        (42, 1_699_999_999_990, b"key-2", None, []),
    ]


def test_header_matches_kafka_python_field_by_field():
    batch = kafka_python_batch(Compression.NONE, SAMPLE, producer_id=99, producer_epoch=3, base_sequence=2**31 - 2,
                               is_transactional=True)
    header = read_batch_header(batch)
    assert header == BatchHeader(0, len(batch) - 12, header.partition_leader_epoch, 2, header.crc, 0x10, 2,
                                 1_700_000_000_000, 1_700_000_000_005, 99, 3, 2**31 - 2, 3)
    assert header.crc == crc32c.crc32c(batch[21:])
    assert (header.is_transactional, header.is_control, header.timestamp_type) == (True, False, 0)
    assert (header.last_offset, header.next_offset) == (2, 3)
    assert header.last_sequence == 0  # 2**31-2 + 2 wraps past INT32_MAX to 0, as in Kafka
    assert increment_sequence(5, 3) == 8


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.none() | st.binary(max_size=40),
            st.none() | st.binary(max_size=200),
            st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)), max_size=3),
            st.integers(min_value=0, max_value=2**42),
        ),
        min_size=1,
        max_size=8,
    ),
    codec=st.sampled_from(CODECS),
    base_offset=st.integers(min_value=0, max_value=2**40),
)
def test_build_then_decode_round_trips(records, codec, base_offset):
    batch = build_batch(records, base_offset=base_offset, compression=codec)
    verify_crc(batch)
    assert decode_records(batch) == [
        Record(base_offset + index, timestamp, key, value, headers)
        for index, (key, value, headers, timestamp) in enumerate(records)
    ]


# ---- header patching ----


def test_patches_outside_the_crc_keep_it_valid():
    batch = bytearray(b"\x00" * 7 + build_batch(SAMPLE))  # a batch at position 7 of a buffer
    assign_base_offset(batch, 7, 1234)
    set_partition_leader_epoch(batch, 7, 9)
    header = read_batch_header(batch, 7)
    assert (header.base_offset, header.partition_leader_epoch) == (1234, 9)
    verify_crc(memoryview(batch)[7:])
    assert [record.offset for record in decode_records(memoryview(batch)[7:])] == [1234, 1235, 1236]


def test_set_log_append_time_rewrites_type_max_timestamp_and_crc():
    batch = bytearray(build_batch(SAMPLE))
    set_log_append_time(batch, 0, 1_800_000_000_000)
    header = read_batch_header(batch)
    assert (header.timestamp_type, header.max_timestamp) == (1, 1_800_000_000_000)
    verify_crc(batch)
    reader = DefaultRecordBatch(bytes(batch))
    assert reader.validate_crc()
    # Kafka reports the append time for every record of a LogAppendTime batch.
    assert [record.timestamp for record in decode_records(batch)] == [1_800_000_000_000] * 3


def test_verify_crc_detects_any_flipped_byte_it_covers():
    batch = build_batch(SAMPLE)
    for position in (21, 40, 61, len(batch) - 1):
        damaged = bytearray(batch)
        damaged[position] ^= 0x01
        with pytest.raises(KafkaError) as caught:
            verify_crc(damaged)
        assert caught.value.code is ErrorCode.CORRUPT_MESSAGE


def test_read_batch_header_needs_61_bytes():
    batch = build_batch(SAMPLE)
    assert read_batch_header(batch[:BATCH_HEADER_SIZE]).records_count == 3
    with pytest.raises(KafkaError) as caught:
        read_batch_header(batch[:60])
    assert caught.value.code is ErrorCode.CORRUPT_MESSAGE


def test_iter_batches_positions_and_partial_tail():
    first = build_batch(SAMPLE, base_offset=0)
    second = build_batch([(b"k", b"v", [], 5)], base_offset=3)
    data = first + second
    assert [(position, header.base_offset) for position, header in iter_batches(data)] == [(0, 0), (len(first), 3)]
    for cut in (len(data) - 1, len(first) + 30):
        with pytest.raises(KafkaError) as caught:
            list(iter_batches(data[:cut]))
        assert caught.value.code is ErrorCode.CORRUPT_MESSAGE
        assert [position for position, _ in iter_batches(data[:cut], allow_partial_tail=True)] == [0]


def test_iter_batches_rejects_a_batch_length_below_the_header():
    batch = bytearray(build_batch(SAMPLE))
    struct.pack_into(">i", batch, 8, 10)
    with pytest.raises(KafkaError) as caught:
        list(iter_batches(batch, allow_partial_tail=True))
    assert caught.value.code is ErrorCode.CORRUPT_MESSAGE


def test_decode_refuses_truncated_record_data():
    batch = bytearray(build_batch(SAMPLE))
    body_cut = batch[:-3]
    struct.pack_into(">i", body_cut, 8, len(body_cut) - LOG_OVERHEAD)
    with pytest.raises(KafkaError) as caught:
        decode_records(body_cut)
    assert caught.value.code is ErrorCode.CORRUPT_MESSAGE


def test_header_struct_is_61_bytes():
    assert BATCH_HEADER.size == BATCH_HEADER_SIZE == 61
