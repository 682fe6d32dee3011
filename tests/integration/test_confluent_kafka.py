"""A real `gregor serve` process driven by confluent-kafka (librdkafka).

The consumer has a group.id (librdkafka wants one) but only assign()s partitions and
never commits, so it needs no group coordinator."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic, OffsetSpec

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ROUND_TRIP_MESSAGES = 10_000


def admin_client(address: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": address})


def create_topic(address: str, name: str, partitions: int) -> None:
    admin = admin_client(address)  # must outlive the future: its handle does the work
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    assert futures[name].result(timeout=15) is None


def produce_all(address: str, topic: str, messages, partition: int | None = None,
                **config) -> list[tuple]:
    """Produces (key, value, headers, timestamp_ms) tuples with acks=all and returns
    (partition, offset, key, value, headers, timestamp_ms) from the delivery reports,
    in send order. Fails on any delivery error."""
    settings = {"bootstrap.servers": address, "acks": "all", "linger.ms": 20,
                "enable.idempotence": True, "message.timeout.ms": 30_000}
    settings.update(config)
    producer = Producer(settings)
    reports: dict[int, tuple] = {}
    errors = []

    def on_delivery(index, err, msg):
        if err is not None:
            errors.append((index, err))
        else:
            reports[index] = (msg.partition(), msg.offset())

    messages = list(messages)
    for index, (key, value, headers, timestamp_ms) in enumerate(messages):
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers,
                                 timestamp=timestamp_ms,
                                 on_delivery=lambda err, msg, index=index: on_delivery(index, err, msg),
                                 **kwargs)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still queued after 60 s"
    assert errors == []
    return [(*reports[i], *messages[i]) for i in range(len(messages))]


def consume_all(address: str, topic: str, partitions: int, expected_total: int,
                timeout_s: float = 30.0) -> list[tuple]:
    """(partition, offset, key, value, headers, timestamp_ms) of every record from the
    beginning of each partition, in the order each partition holds them."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": "gregor-assign-only",
                         "enable.auto.commit": False, "enable.auto.offset.store": False})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        records = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected_total and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                assert message.error() is None, message.error()
                timestamp_type, timestamp_ms = message.timestamp()
                assert timestamp_type == TIMESTAMP_CREATE_TIME
                records.append((message.partition(), message.offset(), message.key(),
                                message.value(), message.headers() or [], timestamp_ms))
        for message in consumer.consume(num_messages=1000, timeout=0.3):  # nothing more
            records.append((message.partition(), message.offset()))
        return records
    finally:
        consumer.close()


def by_partition(records: list[tuple]) -> dict[int, list[tuple]]:
    grouped: dict[int, list[tuple]] = {}
    for record in records:
        grouped.setdefault(record[0], []).append(record)
    return grouped


def keyed_messages(prefix: str, count: int, base_timestamp_ms: int):
    for i in range(count):
        key = f"key-{i % 101}".encode()
        value = None if i % 1000 == 999 else f"{prefix}-{i:05d}-".encode() + b"y" * (i % 300)
        headers = [("index", str(i).encode()), ("source", prefix.encode()), ("empty", b"")]
        yield key, value, headers, base_timestamp_ms + i


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_10000_keyed_messages_with_headers(gregor, codec):
    topic = f"librdkafka-{codec}"
    create_topic(gregor.address, topic, 3)
    sent = produce_all(gregor.address, topic,
                       keyed_messages(codec, ROUND_TRIP_MESSAGES, 1_700_000_000_000),
                       **{"compression.type": codec})
    expected = by_partition(sent)
    assert sorted(expected) == [0, 1, 2]
    for partition, records in expected.items():
        assert [r[1] for r in records] == list(range(len(records))), partition
    received = by_partition(consume_all(gregor.address, topic, 3, ROUND_TRIP_MESSAGES))
    assert received == expected


def test_idempotence_is_the_default_and_works(gregor):
    """librdkafka >= 2.x: enable.idempotence must get a producer id from InitProducerId;
    a broker without it would fail every produce with a fatal error."""
    create_topic(gregor.address, "librdkafka-idempotent", 1)
    sent = produce_all(gregor.address, "librdkafka-idempotent",
                       [(None, f"v{i}".encode(), [], 1_700_000_000_000 + i) for i in range(500)],
                       partition=0, **{"enable.idempotence": True, "batch.num.messages": 50,
                                       "max.in.flight.requests.per.connection": 5})
    assert [r[1] for r in sent] == list(range(500))
    assert consume_all(gregor.address, "librdkafka-idempotent", 1, 500) == sent


def test_admin_create_describe_delete_topic(gregor):
    admin = admin_client(gregor.address)
    futures = admin.create_topics([NewTopic("managed", 3, 1)], operation_timeout=10)
    assert futures["managed"].result(timeout=15) is None
    with pytest.raises(KafkaException) as exists:
        admin.create_topics([NewTopic("managed", 3, 1)])["managed"].result(timeout=15)
    assert exists.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    topic = admin.list_topics("managed", timeout=10).topics["managed"]
    assert sorted(topic.partitions) == [0, 1, 2]
    assert [(p.leader, p.replicas, p.isrs) for _, p in sorted(topic.partitions.items())] == \
        [(gregor.node_id, [gregor.node_id], [gregor.node_id])] * 3

    description = admin.describe_topics(TopicCollection(["managed"]))["managed"].result(timeout=15)
    assert (description.name, description.is_internal) == ("managed", False)
    assert [(p.id, p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr])
            for p in description.partitions] == \
        [(p, gregor.node_id, [gregor.node_id], [gregor.node_id]) for p in range(3)]

    admin.create_partitions([NewPartitions("managed", 4)])["managed"].result(timeout=15)
    assert sorted(admin.list_topics("managed", timeout=10).topics["managed"].partitions) == \
        [0, 1, 2, 3]

    assert admin.delete_topics(["managed"], operation_timeout=10)["managed"].result(timeout=15) \
        is None
    with pytest.raises(KafkaException) as unknown:
        admin.describe_topics(TopicCollection(["managed"]))["managed"].result(timeout=15)
    assert unknown.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    with pytest.raises(KafkaException) as unknown:
        admin.delete_topics(["managed"])["managed"].result(timeout=15)
    assert unknown.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_metadata_for_all_topics(gregor):
    admin = admin_client(gregor.address)
    for name in ("first", "second"):
        assert admin.create_topics([NewTopic(name, 2, 1)])[name].result(timeout=15) is None
    metadata = admin.list_topics(timeout=10)
    assert [broker.id for broker in metadata.brokers.values()] == [gregor.node_id]
    assert (metadata.brokers[gregor.node_id].host, metadata.brokers[gregor.node_id].port) == \
        (gregor.host, gregor.port)
    assert metadata.cluster_id  # Kafka always has one
    assert {name: sorted(topic.partitions) for name, topic in metadata.topics.items()} == \
        {"first": [0, 1], "second": [0, 1]}
    admin.delete_topics(["first"])["first"].result(timeout=15)
    assert sorted(admin.list_topics(timeout=10).topics) == ["second"]


def test_admin_list_offsets(gregor):
    create_topic(gregor.address, "listed", 1)
    base_ms = 1_700_000_000_000
    produce_all(gregor.address, "listed",
                [(None, f"m{i}".encode(), [], base_ms + i * 1000) for i in range(10)], partition=0)
    admin = admin_client(gregor.address)
    tp = TopicPartition("listed", 0)
    deleted = admin.delete_records([TopicPartition("listed", 0, 3)])
    assert deleted[tp].result(timeout=15).low_watermark == 3
    cases = [
        (OffsetSpec.earliest(), (3, -1)),
        (OffsetSpec.latest(), (10, -1)),
        (OffsetSpec.max_timestamp(), (9, base_ms + 9000)),
        (OffsetSpec.for_timestamp(base_ms + 6000), (6, base_ms + 6000)),
        (OffsetSpec.for_timestamp(base_ms + 1500), (3, base_ms + 3000)),
    ]
    for spec, expected in cases:
        result = admin.list_offsets({tp: spec})[tp].result(timeout=15)
        assert (result.offset, result.timestamp) == expected, spec


def test_idempotent_producer_carries_on_across_a_broker_kill_and_restart(gregor):
    """The same librdkafka producer keeps producing after the broker is killed (-9) and
    restarted on the same port: the broker rebuilds each producer's last sequence from
    the log, so the producer's next sequence numbers are accepted without a gap, loss or
    duplicate."""
    create_topic(gregor.address, "carry-on", 1)
    producer = Producer({"bootstrap.servers": gregor.address, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 30_000, "reconnect.backoff.max.ms": 200})
    delivered: list[tuple] = []
    errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.offset(), msg.value()))

    def send(first: int, count: int) -> None:
        for i in range(first, first + count):
            producer.produce("carry-on", value=f"m{i}".encode(), partition=0,
                             on_delivery=on_delivery)
            producer.poll(0)
        assert producer.flush(30) == 0

    send(0, 100)
    port = gregor.port
    gregor.kill()
    gregor.restart()
    assert gregor.port == port, "restart could not reuse the port the producer knows"
    send(100, 100)
    assert errors == []
    assert delivered == [(i, f"m{i}".encode()) for i in range(200)]
    records = consume_all(gregor.address, "carry-on", 1, 200)
    assert [(r[1], r[3]) for r in records] == delivered
