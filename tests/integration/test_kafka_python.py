"""A real `gregor serve` process driven by kafka-python: produce, fetch, admin, restarts.

Consumers here never join a group (consumer groups are not served yet): they assign
partitions and read from the beginning."""
from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, OffsetSpec
from kafka.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OffsetOutOfRangeError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from kafka.record.default_records import DefaultRecordBatchBuilder

from . import raw_kafka

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ROUND_TRIP_MESSAGES = 10_000
UNKNOWN_TOPIC_OR_PARTITION = 3


@dataclass(frozen=True)
class Sent:
    """One produced message and where the broker said it went."""
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int
    partition: int
    offset: int


# -- helpers ---------------------------------------------------------------------------

def admin_client(address: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=15_000)


def new_producer(address: str, **config) -> KafkaProducer:
    config.setdefault("acks", "all")
    config.setdefault("request_timeout_ms", 15_000)
    config.setdefault("max_block_ms", 15_000)
    return KafkaProducer(bootstrap_servers=address, **config)


def create_topic(address: str, name: str, partitions: int,
                 configs: dict[str, str] | None = None) -> None:
    admin = admin_client(address)
    try:
        result = admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                             "configs": configs or {}}})
        assert [(t["name"], t["error_code"]) for t in result["topics"]] == [(name, 0)]
    finally:
        admin.close()


def produce(producer: KafkaProducer, topic: str, messages, partition: int | None = None,
            timeout_s: float = 120.0) -> list[Sent]:
    """Sends (key, value, headers, timestamp_ms) tuples; returns them with the partition
    and offset the broker acknowledged."""
    futures = [(message, producer.send(topic, key=message[0], value=message[1],
                                       headers=message[2], timestamp_ms=message[3],
                                       partition=partition))
               for message in messages]
    producer.flush(timeout=timeout_s)
    sent = []
    for (key, value, headers, timestamp_ms), future in futures:
        metadata = future.get(timeout=timeout_s)
        sent.append(Sent(key, value, headers, timestamp_ms, metadata.partition, metadata.offset))
    return sent


def read_all(address: str, topic: str, partitions: int, expected_total: int,
             timeout_s: float = 30.0) -> dict[int, list]:
    """Every record of the topic from the log start, per partition, with a consumer
    that assigns partitions (no group). Reads until expected_total records came, then
    polls once more so that extra records would show up too."""
    consumer = KafkaConsumer(bootstrap_servers=address, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=15_000)
    try:
        topic_partitions = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(topic_partitions)
        consumer.seek_to_beginning(*topic_partitions)
        records = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + timeout_s
        received = 0
        while received < expected_total and time.monotonic() < deadline:
            for topic_partition, batch in consumer.poll(timeout_ms=500).items():
                records[topic_partition.partition].extend(batch)
                received += len(batch)
        for topic_partition, batch in consumer.poll(timeout_ms=300).items():
            records[topic_partition.partition].extend(batch)
        return records
    finally:
        consumer.close()


def as_sent(records: dict[int, list]) -> dict[int, list[Sent]]:
    return {partition: [Sent(r.key, r.value, list(r.headers), r.timestamp, r.partition, r.offset)
                        for r in batch]
            for partition, batch in records.items()}


def by_partition(sent: list[Sent], partitions: int) -> dict[int, list[Sent]]:
    grouped = {p: [] for p in range(partitions)}
    for message in sent:
        grouped[message.partition].append(message)
    return grouped


def assert_contiguous_from(grouped: dict[int, list[Sent]], first_offsets: dict[int, int]) -> None:
    for partition, messages in grouped.items():
        start = first_offsets.get(partition, 0)
        assert [m.offset for m in messages] == list(range(start, start + len(messages))), \
            f"partition {partition}: offsets not contiguous from {start}"


def keyed_messages(prefix: str, count: int, base_timestamp_ms: int):
    """Keyed messages with headers; every 1000th value is null (a tombstone)."""
    for i in range(count):
        key = f"key-{i % 101}".encode()
        value = None if i % 1000 == 999 else f"{prefix}-{i:05d}-".encode() + b"x" * (i % 300)
        headers = [("index", str(i).encode()), ("source", prefix.encode()), ("empty", b"")]
        yield key, value, headers, base_timestamp_ms + i


def list_offsets(address: str, specs: dict) -> dict:
    admin = admin_client(address)
    try:
        return {tp: (answer.offset, answer.timestamp)
                for tp, answer in admin.list_partition_offsets(specs).items()}
    finally:
        admin.close()


def topic_configs(address: str, topic: str) -> dict[str, tuple[str, str]]:
    """name -> (value, source name) for every config of the topic."""
    admin = admin_client(address)
    try:
        described = admin.describe_configs([ConfigResource("TOPIC", topic)], config_filter="all")
    finally:
        admin.close()
    return {name: (entry["value"], entry["config_source"])
            for name, entry in described["topic"][topic].items()}


# -- produce and fetch -----------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_10000_keyed_messages_with_headers(gregor, codec):
    topic = f"round-trip-{codec}"
    create_topic(gregor.address, topic, partitions=3)
    base_timestamp_ms = int(time.time() * 1000) - 60_000
    producer = new_producer(gregor.address, compression_type=None if codec == "none" else codec,
                            linger_ms=20, batch_size=64 * 1024)
    started_s = time.monotonic()
    sent = produce(producer, topic, keyed_messages(codec, ROUND_TRIP_MESSAGES, base_timestamp_ms))
    producer.close(timeout=10)
    produced_s = time.monotonic() - started_s

    expected = by_partition(sent, 3)
    assert all(expected.values()), "the keys should spread over all 3 partitions"
    assert_contiguous_from(expected, {})

    started_s = time.monotonic()
    received = as_sent(read_all(gregor.address, topic, 3, ROUND_TRIP_MESSAGES))
    consumed_s = time.monotonic() - started_s
    print(f"{codec}: produced {ROUND_TRIP_MESSAGES} in {produced_s:.2f} s, "
          f"consumed in {consumed_s:.2f} s")
    for partition in range(3):
        assert received[partition] == expected[partition], f"partition {partition} differs"


def test_consumer_records_carry_create_time(gregor):
    create_topic(gregor.address, "timestamps", partitions=1)
    producer = new_producer(gregor.address)
    sent = produce(producer, "timestamps", [(b"k", b"v", [], 1_600_000_000_123)])
    producer.close(timeout=10)
    (record,) = read_all(gregor.address, "timestamps", 1, 1)[0]
    assert (record.offset, record.timestamp, record.timestamp_type) == (0, 1_600_000_000_123, 0)
    assert sent[0].offset == 0


def test_log_append_time_topic_stamps_records_with_broker_time(gregor):
    create_topic(gregor.address, "appended", partitions=1,
                 configs={"message.timestamp.type": "LogAppendTime"})
    producer = new_producer(gregor.address, linger_ms=20)
    before_ms = int(time.time() * 1000)
    futures = [producer.send("appended", value=f"v{i}".encode(), partition=0,
                             timestamp_ms=1_600_000_000_000 + i) for i in range(20)]
    producer.flush(timeout=15)
    acknowledged = [future.get(timeout=15) for future in futures]
    after_ms = int(time.time() * 1000)
    producer.close(timeout=10)
    records = read_all(gregor.address, "appended", 1, 20)[0]
    assert [(r.offset, r.value, r.timestamp_type) for r in records] == \
        [(i, f"v{i}".encode(), 1) for i in range(20)]
    assert all(before_ms <= r.timestamp <= after_ms for r in records)
    # The produce answer carries the append time (log_append_time_ms): the client
    # reports the time the broker stored, not the one it sent.
    assert [m.timestamp for m in acknowledged] == [r.timestamp for r in records]


def first_batch_codec(data_dir, topic: str, partition: int) -> int:
    """The compression codec (attributes & 7) of the first batch in the partition's
    first segment, read from Kafka's on-disk layout."""
    segment = data_dir / f"{topic}-{partition}" / "00000000000000000000.log"
    (attributes,) = struct.unpack_from(">h", segment.read_bytes(), 21)
    return attributes & 7


@pytest.mark.parametrize("topic_codec, producer_codec, stored_codec", [
    ("gzip", None, 1),       # the topic's codec wins
    ("zstd", "snappy", 4),
    ("producer", "lz4", 3),  # Kafka's default: keep what the producer sent
    ("uncompressed", "gzip", 0),
])
def test_topic_compression_type(gregor, topic_codec, producer_codec, stored_codec):
    topic = f"compressed-{topic_codec}"
    create_topic(gregor.address, topic, partitions=1, configs={"compression.type": topic_codec})
    producer = new_producer(gregor.address, compression_type=producer_codec, linger_ms=20)
    messages = list(keyed_messages(topic, 200, 1_700_000_000_000))
    sent = produce(producer, topic, messages, partition=0)
    producer.close(timeout=10)
    assert as_sent(read_all(gregor.address, topic, 1, 200))[0] == sent
    assert first_batch_codec(gregor.data_dir, topic, 0) == stored_codec


def test_fetch_returns_a_whole_batch_larger_than_the_fetch_limits(gregor):
    """KIP-74: the first batch is returned even when it is larger than max_bytes and
    partition_max_bytes, so that a consumer always makes progress."""
    create_topic(gregor.address, "big-batches", partitions=1)
    producer = new_producer(gregor.address, linger_ms=50, batch_size=256 * 1024)
    messages = [(None, f"{i:05d}".encode() + b"b" * 2000, [], 1_700_000_000_000 + i)
                for i in range(300)]
    sent = produce(producer, "big-batches", messages, partition=0)
    producer.close(timeout=10)
    consumer = KafkaConsumer(bootstrap_servers=gregor.address, group_id=None,
                             enable_auto_commit=False, max_partition_fetch_bytes=1024,
                             fetch_max_bytes=1024)
    try:
        partition = TopicPartition("big-batches", 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        records = []
        deadline = time.monotonic() + 30
        while len(records) < 300 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records += batch
    finally:
        consumer.close()
    assert [(r.offset, r.value) for r in records] == [(m.offset, m.value) for m in sent]


def test_waiting_fetch_returns_as_soon_as_data_arrives(gregor):
    """A fetch waiting for fetch_min_bytes is answered when a produce appends, not at
    fetch_max_wait_ms (Kafka's delayed fetch)."""
    create_topic(gregor.address, "long-poll", partitions=1)
    consumer = KafkaConsumer(bootstrap_servers=gregor.address, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=5000,
                             fetch_min_bytes=1)
    producer = new_producer(gregor.address)
    try:
        partition = TopicPartition("long-poll", 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        assert consumer.poll(timeout_ms=300) == {}  # a fetch is now waiting at the broker
        sent_at_s = time.monotonic()
        producer.send("long-poll", value=b"wake up", partition=0).get(timeout=10)
        records = []
        while not records and time.monotonic() - sent_at_s < 10:
            for batch in consumer.poll(timeout_ms=100).values():
                records += batch
        latency_s = time.monotonic() - sent_at_s
    finally:
        producer.close(timeout=10)
        consumer.close()
    assert [(r.offset, r.value) for r in records] == [(0, b"wake up")]
    assert latency_s < 2.5, f"delivered {latency_s:.2f} s after the produce (max wait 5 s)"


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_acks(gregor, acks):
    topic = f"acks-{acks}"
    create_topic(gregor.address, topic, partitions=1)
    producer = new_producer(gregor.address, acks=acks, enable_idempotence=False, linger_ms=5)
    messages = list(keyed_messages(f"acks-{acks}", 300, 1_700_000_000_000))
    sent = produce(producer, topic, messages, partition=0)
    producer.close(timeout=10)
    if acks == 0:
        # No response: what the client reports as offsets is its own guess, not the
        # broker's answer, so only the log itself is checked.
        sent = [Sent(*m[:4], partition=0, offset=i) for i, m in enumerate(messages)]
    else:
        assert [message.offset for message in sent] == list(range(300))
    assert as_sent(read_all(gregor.address, topic, 1, 300))[0] == sent


def test_idempotent_producer_round_trip(gregor):
    create_topic(gregor.address, "idempotent", partitions=3)
    producer = new_producer(gregor.address, enable_idempotence=True, acks="all", linger_ms=5,
                            batch_size=4096, compression_type="lz4")
    sent = produce(producer, "idempotent", keyed_messages("idempotent", 3000, 1_700_000_000_000))
    producer.close(timeout=10)
    expected = by_partition(sent, 3)
    assert_contiguous_from(expected, {})
    assert as_sent(read_all(gregor.address, "idempotent", 3, 3000)) == expected


def _init_producer_id(sock) -> tuple[int, int]:
    # InitProducerId v0: transactional_id (nullable string, null), transaction_timeout_ms.
    payload = raw_kafka.request_header_v1(22, 0, 1) + raw_kafka.kafka_string(None) \
        + struct.pack(">i", 60_000)
    sock.sendall(raw_kafka.frame(payload))
    response = raw_kafka.receive_frame(sock)
    correlation_id, _throttle_ms, error_code, producer_id, producer_epoch = \
        struct.unpack(">iihqh", response)
    assert (correlation_id, error_code) == (1, 0)
    return producer_id, producer_epoch


def _produce_v3(sock, correlation_id: int, topic: str, batch: bytes) -> tuple[int, int]:
    """(error_code, base_offset) of a Produce v3 of one batch to partition 0, acks=-1."""
    payload = (raw_kafka.request_header_v1(0, 3, correlation_id) + raw_kafka.kafka_string(None)
               + struct.pack(">hii", -1, 10_000, 1) + raw_kafka.kafka_string(topic)
               + struct.pack(">iii", 1, 0, len(batch)) + batch)
    sock.sendall(raw_kafka.frame(payload))
    response = raw_kafka.receive_frame(sock)
    offset = 0
    (got_correlation_id, topic_count) = struct.unpack_from(">ii", response, offset)
    offset += 8
    (name_length,) = struct.unpack_from(">h", response, offset)
    offset += 2 + name_length
    partition_count, partition, error_code, base_offset = struct.unpack_from(">iihq", response, offset)
    assert (got_correlation_id, topic_count, partition_count, partition) == (correlation_id, 1, 1, 0)
    return error_code, base_offset


def _idempotent_batch(producer_id: int, producer_epoch: int, base_sequence: int,
                      values: list[bytes]) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                        producer_id=producer_id, producer_epoch=producer_epoch,
                                        base_sequence=base_sequence, batch_size=1 << 20)
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=1_700_000_000_000 + offset, key=None, value=value,
                       headers=[])
    return bytes(builder.build())


def test_idempotent_duplicate_batch_is_written_once(gregor):
    """A retried batch (same producer id, epoch, sequence) is acknowledged with the
    offset of the first copy and not appended again; a sequence gap is refused with
    OUT_OF_ORDER_SEQUENCE_NUMBER (45), as Kafka does."""
    create_topic(gregor.address, "dedup", partitions=1)
    with raw_kafka.connect(gregor.host, gregor.port) as sock:
        producer_id, producer_epoch = _init_producer_id(sock)
        assert producer_id >= 0 and producer_epoch >= 0
        first = _idempotent_batch(producer_id, producer_epoch, 0, [b"a", b"b", b"c"])
        assert _produce_v3(sock, 2, "dedup", first) == (0, 0)
        assert _produce_v3(sock, 3, "dedup", first) == (0, 0)
        second = _idempotent_batch(producer_id, producer_epoch, 3, [b"d", b"e", b"f"])
        assert _produce_v3(sock, 4, "dedup", second) == (0, 3)
        gap = _idempotent_batch(producer_id, producer_epoch, 10, [b"g"])
        assert _produce_v3(sock, 5, "dedup", gap)[0] == 45
    records = read_all(gregor.address, "dedup", 1, 6)[0]
    assert [(r.offset, r.value) for r in records] == \
        [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d"), (4, b"e"), (5, b"f")]


def test_message_larger_than_max_message_bytes_is_refused(gregor):
    create_topic(gregor.address, "small", partitions=1, configs={"max.message.bytes": "10000"})
    producer = new_producer(gregor.address, enable_idempotence=False, retries=0)
    with pytest.raises(MessageSizeTooLargeError):
        producer.send("small", value=b"x" * 20_000, partition=0).get(timeout=15)
    # The refused batch left nothing behind: the next one gets offset 0.
    assert producer.send("small", value=b"y" * 5_000, partition=0).get(timeout=15).offset == 0
    producer.close(timeout=10)
    records = read_all(gregor.address, "small", 1, 1)[0]
    assert [(r.offset, r.value) for r in records] == [(0, b"y" * 5_000)]


def test_broker_message_max_bytes_is_the_topic_default(gregor_factory):
    broker = gregor_factory({"message.max.bytes": "4000"})
    create_topic(broker.address, "limited", partitions=1)
    assert topic_configs(broker.address, "limited")["max.message.bytes"] == \
        ("4000", "STATIC_BROKER_CONFIG")
    producer = new_producer(broker.address, enable_idempotence=False, retries=0)
    with pytest.raises(MessageSizeTooLargeError):
        producer.send("limited", value=b"x" * 8_000, partition=0).get(timeout=15)
    assert producer.send("limited", value=b"y" * 1_000, partition=0).get(timeout=15).offset == 0
    producer.close(timeout=10)


# -- restarts --------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["sigterm", "kill -9"])
def test_acknowledged_messages_survive_restart(gregor, how):
    create_topic(gregor.address, "durable", partitions=3, configs={"retention.ms": "86400000"})
    producer = new_producer(gregor.address, linger_ms=5, compression_type="gzip")
    sent = produce(producer, "durable", keyed_messages("durable", 3000, 1_700_000_000_000))
    producer.close(timeout=10)
    if how == "sigterm":
        assert gregor.stop() == 0
        assert "stopped" in gregor.current_log_text()
    else:
        gregor.kill()
    gregor.restart()

    expected = by_partition(sent, 3)
    assert as_sent(read_all(gregor.address, "durable", 3, 3000)) == expected
    assert topic_configs(gregor.address, "durable")["retention.ms"] == \
        ("86400000", "DYNAMIC_TOPIC_CONFIG")

    producer = new_producer(gregor.address)
    more = []
    for partition in range(3):
        more += produce(producer, "durable",
                        keyed_messages(f"after-{partition}", 5, 1_750_000_000_000),
                        partition=partition)
    producer.close(timeout=10)
    assert_contiguous_from(by_partition(more, 3), {p: len(expected[p]) for p in range(3)})
    everything = by_partition(sent + more, 3)
    assert as_sent(read_all(gregor.address, "durable", 3, 3015)) == everything


def test_kill_9_while_producing_keeps_every_acknowledged_message(gregor):
    """kill -9 lands in the middle of appends: after recovery every partition is a
    gap-free log from offset 0, every acknowledged message is at its acknowledged offset,
    and anything else present is a whole message that was sent (a torn tail is cut)."""
    create_topic(gregor.address, "torn", partitions=3)
    producer = new_producer(gregor.address, enable_idempotence=False, linger_ms=0,
                            request_timeout_ms=2_000, delivery_timeout_ms=4_000,
                            max_block_ms=4_000, retries=0)
    sent: dict[bytes, tuple[int, object]] = {}  # value -> (partition, future)
    sent_lock = threading.Lock()
    stop = threading.Event()

    def send_until_stopped() -> None:
        index = 0
        while not stop.is_set():
            value = f"torn-{index:07d}-".encode() + b"t" * (index % 500)
            try:
                future = producer.send("torn", key=b"k", value=value, partition=index % 3)
            except KafkaTimeoutError:  # buffer full and the broker gone
                break
            with sent_lock:
                sent[value] = (index % 3, future)
            index += 1

    sender = threading.Thread(target=send_until_stopped, daemon=True)
    sender.start()
    deadline = time.monotonic() + 30
    def acknowledged_count() -> int:
        with sent_lock:
            futures = [future for _, future in sent.values()]
        return sum(1 for future in futures if future.succeeded())

    while acknowledged_count() < 2000:
        assert time.monotonic() < deadline, "fewer than 2000 acknowledgements in 30 s"
        time.sleep(0.05)
    gregor.kill()
    stop.set()
    sender.join(timeout=15)
    assert not sender.is_alive()
    producer.close(timeout=10)

    acknowledged = {value: (partition, future.value.offset)
                    for value, (partition, future) in sent.items() if future.succeeded()}
    assert len(acknowledged) >= 2000
    gregor.restart()
    records = read_all(gregor.address, "torn", 3, len(acknowledged), timeout_s=60)
    for partition, batch in records.items():
        assert [r.offset for r in batch] == list(range(len(batch))), partition
        for record in batch:
            assert record.value in sent, f"record {partition}/{record.offset} was never sent"
            assert sent[record.value][0] == partition
    found = {r.value: (partition, r.offset) for partition, batch in records.items() for r in batch}
    print(f"sent {len(sent)}, acknowledged {len(acknowledged)}, found after restart {len(found)}")
    missing = {value: place for value, place in acknowledged.items() if found.get(value) != place}
    assert missing == {}, f"{len(missing)} acknowledged messages lost or moved"

    producer = new_producer(gregor.address)
    after = produce(producer, "torn", [(b"k", b"after", [], int(time.time() * 1000))], partition=0)
    producer.close(timeout=10)
    assert after[0].offset == len(records[0])


def test_sigterm_exits_cleanly(gregor):
    assert gregor.stop() == 0
    log_text = gregor.current_log_text()
    assert "received SIGTERM" in log_text
    assert log_text.rstrip().endswith("stopped")


# -- admin -----------------------------------------------------------------------------

def test_create_describe_delete_topic(gregor):
    admin = admin_client(gregor.address)
    try:
        result = admin.create_topics({"orders": {"num_partitions": 3, "replication_factor": 1}})
        (created,) = result["topics"]
        assert (created["name"], created["error_code"], created["num_partitions"],
                created["replication_factor"]) == ("orders", 0, 3, 1)
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics({"orders": {"num_partitions": 1, "replication_factor": 1}})
        assert "orders" in admin.list_topics()

        (described,) = admin.describe_topics(["orders"])
        assert (described["name"], described["error_code"], described["is_internal"]) == \
            ("orders", 0, False)
        assert [(p["partition_index"], p["error_code"], p["leader_id"], p["replica_nodes"],
                 p["isr_nodes"]) for p in described["partitions"]] == \
            [(p, 0, gregor.node_id, [gregor.node_id], [gregor.node_id]) for p in range(3)]

        producer = new_producer(gregor.address)
        assert producer.send("orders", value=b"before", partition=2).get(timeout=15).offset == 0
        producer.close(timeout=10)

        result = admin.delete_topics(["orders"])
        assert [(t["name"], t["error_code"]) for t in result["topics"]] == [("orders", 0)]
        assert "orders" not in admin.list_topics()
        (gone,) = admin.describe_topics(["orders"])
        assert (gone["name"], gone["error_code"]) == ("orders", UNKNOWN_TOPIC_OR_PARTITION)

        # A topic created again under the same name starts empty.
        admin.create_topics({"orders": {"num_partitions": 3, "replication_factor": 1}})
        producer = new_producer(gregor.address)
        assert producer.send("orders", value=b"after", partition=2).get(timeout=15).offset == 0
        producer.close(timeout=10)
    finally:
        admin.close()
    assert [r.value for r in read_all(gregor.address, "orders", 3, 1)[2]] == [b"after"]


def test_create_topic_errors(gregor):
    admin = admin_client(gregor.address)
    try:
        with pytest.raises(InvalidTopicError):
            admin.create_topics({"bad name!": {"num_partitions": 1, "replication_factor": 1}})
        with pytest.raises(InvalidPartitionsError):
            admin.create_topics({"zero": {"num_partitions": 0, "replication_factor": 1}})
        with pytest.raises(InvalidReplicationFactorError):
            admin.create_topics({"three-copies": {"num_partitions": 1, "replication_factor": 3}})
        assert not {"bad name!", "zero", "three-copies"} & set(admin.list_topics())
    finally:
        admin.close()


def test_create_topic_with_broker_defaults(gregor_factory):
    broker = gregor_factory({"num.partitions": "4"})
    admin = admin_client(broker.address)
    try:
        admin.create_topics({"defaults": {}})  # -1, -1: the broker's defaults (KIP-464)
        (described,) = admin.describe_topics(["defaults"])
        assert [p["partition_index"] for p in described["partitions"]] == [0, 1, 2, 3]
    finally:
        admin.close()


def test_create_partitions(gregor):
    create_topic(gregor.address, "growing", partitions=2)
    admin = admin_client(gregor.address)
    try:
        admin.create_partitions({"growing": 5})
        (described,) = admin.describe_topics(["growing"])
        assert [(p["partition_index"], p["leader_id"]) for p in described["partitions"]] == \
            [(p, gregor.node_id) for p in range(5)]
        with pytest.raises(InvalidPartitionsError):
            admin.create_partitions({"growing": 3})  # fewer than it has
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.create_partitions({"no-such-topic": 3})
    finally:
        admin.close()
    producer = new_producer(gregor.address)
    assert producer.send("growing", value=b"new partition", partition=4).get(timeout=15).offset == 0
    producer.close(timeout=10)
    assert [r.value for r in read_all(gregor.address, "growing", 5, 1)[4]] == [b"new partition"]


def test_describe_topic_configs_values_and_sources(gregor):
    create_topic(gregor.address, "described", partitions=1,
                 configs={"retention.ms": "3600000", "cleanup.policy": "compact"})
    admin = admin_client(gregor.address)
    try:
        described = admin.describe_configs([ConfigResource("TOPIC", "described")],
                                           config_filter="all")["topic"]["described"]
    finally:
        admin.close()
    expected = {
        "retention.ms": ("3600000", "DYNAMIC_TOPIC_CONFIG", "LONG"),
        "cleanup.policy": ("compact", "DYNAMIC_TOPIC_CONFIG", "LIST"),
        "segment.bytes": ("1073741824", "DEFAULT_CONFIG", "INT"),
        "max.message.bytes": ("1048588", "DEFAULT_CONFIG", "INT"),
        "min.insync.replicas": ("1", "DEFAULT_CONFIG", "INT"),
        "retention.bytes": ("-1", "DEFAULT_CONFIG", "LONG"),
        "message.timestamp.type": ("CreateTime", "DEFAULT_CONFIG", "STRING"),
    }
    for name, (value, source, config_type) in expected.items():
        entry = described[name]
        assert (entry["value"], entry["config_source"], entry["config_type"], entry["read_only"],
                entry["is_sensitive"]) == (value, source, config_type, False, False), name


def test_broker_settings_are_static_broker_config(gregor_factory):
    broker = gregor_factory({"num.partitions": "3", "log.retention.ms": "7200000"})
    create_topic(broker.address, "inherits", partitions=1)
    configs = topic_configs(broker.address, "inherits")
    assert configs["retention.ms"] == ("7200000", "STATIC_BROKER_CONFIG")
    assert configs["segment.bytes"] == ("1073741824", "DEFAULT_CONFIG")
    admin = admin_client(broker.address)
    try:
        described = admin.describe_configs([ConfigResource("BROKER", str(broker.node_id))],
                                           config_filter="all")["broker"][str(broker.node_id)]
    finally:
        admin.close()
    assert (described["num.partitions"]["value"], described["num.partitions"]["config_source"]) \
        == ("3", "STATIC_BROKER_CONFIG")
    assert (described["log.retention.ms"]["value"],
            described["log.retention.ms"]["config_source"]) == ("7200000", "STATIC_BROKER_CONFIG")
    assert (described["log.segment.bytes"]["value"],
            described["log.segment.bytes"]["config_source"]) == ("1073741824", "DEFAULT_CONFIG")
    assert (described["log.dirs"]["value"], described["log.dirs"]["config_source"]) == \
        (str(broker.data_dir), "STATIC_BROKER_CONFIG")


def test_incremental_alter_configs(gregor):
    create_topic(gregor.address, "tuned", partitions=1,
                 configs={"retention.ms": "3600000", "cleanup.policy": "compact"})
    admin = admin_client(gregor.address)
    try:
        result = admin.alter_configs([ConfigResource("TOPIC", "tuned", {
            "max.message.bytes": "2000",
            "retention.ms": (AlterConfigOp.DELETE, None),
            "cleanup.policy": (AlterConfigOp.APPEND, "delete"),
        })], incremental=True)
        assert result == {"topic": {"tuned": "OK"}}
        configs = topic_configs(gregor.address, "tuned")
        assert configs["max.message.bytes"] == ("2000", "DYNAMIC_TOPIC_CONFIG")
        assert configs["retention.ms"] == ("604800000", "DEFAULT_CONFIG")
        assert configs["cleanup.policy"] == ("compact,delete", "DYNAMIC_TOPIC_CONFIG")

        result = admin.alter_configs([ConfigResource("TOPIC", "tuned", {
            "cleanup.policy": (AlterConfigOp.SUBTRACT, "compact")})], incremental=True)
        assert result == {"topic": {"tuned": "OK"}}
        assert topic_configs(gregor.address, "tuned")["cleanup.policy"] == \
            ("delete", "DYNAMIC_TOPIC_CONFIG")

        result = admin.alter_configs([ConfigResource("TOPIC", "tuned", {"retention.ms": "soon"})],
                                     incremental=True)
        assert result["topic"]["tuned"].startswith("[Error 40] InvalidConfigurationError")
        result = admin.alter_configs([ConfigResource("TOPIC", "tuned", {"no.such.config": "1"})],
                                     incremental=True, raise_on_unknown=False)
        assert result["topic"]["tuned"].startswith("[Error 40] InvalidConfigurationError")
    finally:
        admin.close()
    # The refused changes changed nothing, and the accepted ones outlive a restart.
    gregor.restart()
    configs = topic_configs(gregor.address, "tuned")
    assert configs["retention.ms"] == ("604800000", "DEFAULT_CONFIG")
    assert configs["max.message.bytes"] == ("2000", "DYNAMIC_TOPIC_CONFIG")
    assert configs["cleanup.policy"] == ("delete", "DYNAMIC_TOPIC_CONFIG")
    producer = new_producer(gregor.address, enable_idempotence=False, retries=0)
    with pytest.raises(MessageSizeTooLargeError):
        producer.send("tuned", value=b"x" * 3000, partition=0).get(timeout=15)
    producer.close(timeout=10)


def test_alter_configs(gregor):
    create_topic(gregor.address, "replaced", partitions=1, configs={"cleanup.policy": "compact"})
    admin = admin_client(gregor.address)
    try:
        result = admin.alter_configs([ConfigResource("TOPIC", "replaced", {"retention.ms": "1000"})],
                                     incremental=False)
        assert result == {"topic": {"replaced": "OK"}}
    finally:
        admin.close()
    configs = topic_configs(gregor.address, "replaced")
    assert configs["retention.ms"] == ("1000", "DYNAMIC_TOPIC_CONFIG")
    # kafka-python resends the other modified keys, since AlterConfigs replaces the set.
    assert configs["cleanup.policy"] == ("compact", "DYNAMIC_TOPIC_CONFIG")
    assert configs["segment.bytes"] == ("1073741824", "DEFAULT_CONFIG")


def test_delete_records_then_list_offsets(gregor):
    create_topic(gregor.address, "trimmed", partitions=1)
    base_ms = 1_700_000_000_000
    producer = new_producer(gregor.address, linger_ms=50)
    # One batch: a timestamp lookup must find the record inside it, not just the batch.
    sent = produce(producer, "trimmed",
                   [(None, f"m{i}".encode(), [], base_ms + i * 1000) for i in range(10)],
                   partition=0)
    producer.close(timeout=10)
    assert [m.offset for m in sent] == list(range(10))
    tp = TopicPartition("trimmed", 0)

    admin = admin_client(gregor.address)
    try:
        assert admin.delete_records({tp: 4})[tp]["low_watermark"] == 4
        with pytest.raises(OffsetOutOfRangeError):
            admin.delete_records({tp: 11})  # beyond the high watermark
    finally:
        admin.close()
    specs = {"earliest": OffsetSpec.EARLIEST, "latest": OffsetSpec.LATEST,
             "max timestamp": OffsetSpec.MAX_TIMESTAMP}
    expected = {"earliest": (4, -1), "latest": (10, -1), "max timestamp": (9, base_ms + 9000),
                base_ms + 5000: (5, base_ms + 5000),
                base_ms + 2500: (4, base_ms + 4000),  # its record was deleted: the next one
                base_ms + 100_000: (-1, -1)}  # later than every record
    for spec_name, answer in expected.items():
        spec = specs.get(spec_name, spec_name)
        assert list_offsets(gregor.address, {tp: spec}) == {tp: answer}, spec_name

    records = read_all(gregor.address, "trimmed", 1, 6)[0]
    assert [(r.offset, r.value) for r in records] == [(i, f"m{i}".encode()) for i in range(4, 10)]

    # The log start offset is checkpointed: it survives a restart.
    gregor.restart()
    assert list_offsets(gregor.address, {tp: OffsetSpec.EARLIEST}) == {tp: (4, -1)}
    admin = admin_client(gregor.address)
    try:
        assert admin.delete_records({tp: -1})[tp]["low_watermark"] == 10  # -1: up to the end
    finally:
        admin.close()
    assert list_offsets(gregor.address, {tp: OffsetSpec.EARLIEST}) == {tp: (10, -1)}


def test_consumer_offsets_for_times_and_end_offsets(gregor):
    create_topic(gregor.address, "clock", partitions=2)
    base_ms = 1_700_000_000_000
    producer = new_producer(gregor.address)
    for partition in range(2):
        produce(producer, "clock", [(None, b"v", [], base_ms + i * 10) for i in range(5)],
                partition=partition)
    producer.close(timeout=10)
    consumer = KafkaConsumer(bootstrap_servers=gregor.address, group_id=None,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition("clock", p) for p in range(2)]
        assert consumer.beginning_offsets(partitions) == {tp: 0 for tp in partitions}
        assert consumer.end_offsets(partitions) == {tp: 5 for tp in partitions}
        found = consumer.offsets_for_times({tp: base_ms + 25 for tp in partitions})
        assert {tp: (o.offset, o.timestamp) for tp, o in found.items()} == \
            {tp: (3, base_ms + 30) for tp in partitions}
    finally:
        consumer.close()


def test_describe_cluster(gregor):
    admin = admin_client(gregor.address)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert [(b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"]] == \
        [(gregor.node_id, gregor.host, gregor.port)]
    assert cluster["controller_id"] == gregor.node_id
    ready_line = gregor.current_log_text()
    assert f"cluster {cluster['cluster_id']}," in ready_line  # the id the broker announced


def test_describe_log_dirs_reports_the_bytes_on_disk(gregor):
    create_topic(gregor.address, "sized", partitions=2)
    producer = new_producer(gregor.address)
    produce(producer, "sized", keyed_messages("sized", 100, 1_700_000_000_000), partition=1)
    producer.close(timeout=10)
    admin = admin_client(gregor.address)
    try:
        (answer,) = admin.describe_log_dirs(topic_partitions=["sized"])
    finally:
        admin.close()
    assert answer["broker"] == gregor.node_id
    (log_dir,) = answer["log_dirs"]
    assert (log_dir["error_code"], log_dir["log_dir"]) == (0, str(gregor.data_dir))
    (topic,) = log_dir["topics"]
    sizes = {p["partition_index"]: p["partition_size"] for p in topic["partitions"]}
    on_disk = {partition: sum(f.stat().st_size for f in
                              (gregor.data_dir / f"sized-{partition}").glob("*.log"))
               for partition in range(2)}
    assert (topic["name"], sizes) == ("sized", on_disk)
    assert on_disk[0] == 0 and on_disk[1] > 100 * 20


@pytest.mark.parametrize("reset, expected_offsets", [("earliest", [0, 1, 2]), ("latest", [3])])
def test_fetch_beyond_the_log_end_resets_the_position(gregor, reset, expected_offsets):
    """Fetching past the high watermark answers OFFSET_OUT_OF_RANGE; the consumer then
    applies auto_offset_reset."""
    create_topic(gregor.address, "reset", partitions=1)
    producer = new_producer(gregor.address)
    produce(producer, "reset", [(None, f"m{i}".encode(), [], 1_700_000_000_000) for i in range(3)],
            partition=0)
    consumer = KafkaConsumer(bootstrap_servers=gregor.address, group_id=None,
                             enable_auto_commit=False, auto_offset_reset=reset)
    try:
        partition = TopicPartition("reset", 0)
        consumer.assign([partition])
        consumer.seek(partition, 100)
        records = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and consumer.position(partition) == 100:
            for batch in consumer.poll(timeout_ms=200).values():
                records += batch
        if reset == "latest":
            assert consumer.position(partition) == 3
            produce(producer, "reset", [(None, b"m3", [], 1_700_000_000_000)], partition=0)
        while time.monotonic() < deadline and len(records) < len(expected_offsets):
            for batch in consumer.poll(timeout_ms=200).values():
                records += batch
    finally:
        consumer.close()
        producer.close(timeout=10)
    assert [(r.offset, r.value) for r in records] == [(o, f"m{o}".encode()) for o in expected_offsets]


# -- unknown topics --------------------------------------------------------------------

def test_unknown_topic_errors(gregor):
    admin = admin_client(gregor.address)
    try:
        (described,) = admin.describe_topics(["no-such-topic"])
        assert (described["name"], described["error_code"]) == \
            ("no-such-topic", UNKNOWN_TOPIC_OR_PARTITION)
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics(["no-such-topic"])
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.list_partition_offsets({TopicPartition("no-such-topic", 0): OffsetSpec.LATEST})
        # Describing metadata must not have created it (the admin client asks without
        # auto-creation).
        assert "no-such-topic" not in admin.list_topics()
    finally:
        admin.close()


def test_producing_to_unknown_topic_auto_creates_it(gregor):
    producer = new_producer(gregor.address)
    assert producer.send("auto-created", key=b"k", value=b"v").get(timeout=15).offset == 0
    producer.close(timeout=10)
    admin = admin_client(gregor.address)
    try:
        (described,) = admin.describe_topics(["auto-created"])
        assert (described["error_code"], len(described["partitions"])) == (0, 1)  # num.partitions
    finally:
        admin.close()


def test_producing_to_unknown_topic_without_auto_create_times_out(gregor_factory):
    broker = gregor_factory({"auto.create.topics.enable": "false"})
    producer = new_producer(broker.address, max_block_ms=2000)
    with pytest.raises(KafkaTimeoutError):
        producer.send("never-created", value=b"v").get(timeout=10)
    producer.close(timeout=5)
    admin = admin_client(broker.address)
    try:
        assert "never-created" not in admin.list_topics()
    finally:
        admin.close()
