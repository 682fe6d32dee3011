"""compat runner for confluent-kafka (librdkafka); see compat/SCENARIOS.md."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import confluent_kafka  # noqa: E402

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer,  # noqa: E402
                             ConsumerGroupType, KafkaError, KafkaException, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,  # noqa: E402
                                   ConfigResource, ConfigSource, NewPartitions, NewTopic,
                                   OffsetSpec, ResourceType)

from compat.clients.common import (expect_acks_acknowledged, expect_acks_logs,  # noqa: E402
                                   expect_cross_consumed, expect_own_partitions,
                                   expect_produce_consume, expect_transaction_reads,
                                   null_key_and_value)
from compat.pyrunner import (DELETE_WAIT_S, READ_TIMEOUT_S, T0_MS, Context,  # noqa: E402
                             Message, Record, expect, expect_equal, expect_partition_log,
                             expect_placed, fail, large_value, run_main, standard_message,
                             standard_messages, wait_until)

CLIENT = "confluent-kafka"
TIMEOUT_S = 30.0
CODECS = ("gzip", "snappy", "lz4", "zstd")


# -- helpers ---------------------------------------------------------------------------

def admin_client(ctx: Context, **config) -> AdminClient:
    return AdminClient({"bootstrap.servers": ctx.bootstrap, **config})


def create_topic(ctx: Context, topic: str, partitions: int,
                 configs: dict[str, str] | None = None) -> None:
    admin = admin_client(ctx)  # referenced until the answer came: a freed handle cancels it
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=configs or {})],
        operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
    futures[topic].result(timeout=TIMEOUT_S)


def new_producer(ctx: Context, **config) -> Producer:
    return Producer({"bootstrap.servers": ctx.bootstrap, **config})


def produce(producer: Producer, topic: str, messages: list[Message],
            partition: int | None = None) -> dict[int, tuple[int, int]]:
    """Sends in order and flushes; index -> acknowledged (partition, offset). A delivery
    error fails the scenario with librdkafka's error."""
    placed: dict[int, tuple[int, int]] = {}
    errors: list[KafkaError] = []

    def delivered(index: int):
        def on_delivery(error, message) -> None:
            if error is not None:
                errors.append(error)
            else:
                placed[index] = (message.partition(), message.offset())
        return on_delivery

    for index, m in enumerate(messages):
        extra = {} if partition is None else {"partition": partition}
        while True:
            try:
                producer.produce(topic, value=m.value, key=m.key, headers=list(m.headers),
                                 timestamp=m.timestamp_ms, on_delivery=delivered(index), **extra)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(READ_TIMEOUT_S)
    expect_equal(remaining, 0, "messages still undelivered after flush")
    if errors:
        raise KafkaException(errors[0])
    return placed


def as_record(message) -> Record:
    timestamp_type, timestamp_ms = message.timestamp()
    expect_equal(timestamp_type, TIMESTAMP_CREATE_TIME, "timestamp type")
    return Record(message.partition(), message.offset(),
                  Message(message.key(), message.value(), tuple(message.headers() or ()),
                          timestamp_ms))


def new_consumer(ctx: Context, group: str, **config) -> Consumer:
    return Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", **config})


def read_partitions(ctx: Context, topic: str, partitions: list[int], expected_count: int,
                    **config) -> list[Record]:
    """Assigns the partitions (no group join, no commits: librdkafka wants a group.id
    all the same), reads from the log start until expected_count records came, then a
    moment more to catch any surplus."""
    consumer = new_consumer(ctx, f"{topic}-assign-only", **{"enable.auto.commit": False,
                                                            **config})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(records) < expected_count and time.monotonic() < deadline:
            records.extend(_consume(consumer, 0.2))
        records.extend(_consume(consumer, 0.5))
        return records
    finally:
        consumer.close()


def _consume(consumer: Consumer, timeout_s: float) -> list[Record]:
    records = []
    for message in consumer.consume(num_messages=1000, timeout=timeout_s):
        if message.error() is not None:
            if message.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(message.error())
        records.append(as_record(message))
    return records


def list_offsets(ctx: Context, tp: TopicPartition, spec: OffsetSpec) -> int:
    admin = admin_client(ctx)
    futures = admin.list_offsets({tp: spec}, request_timeout=TIMEOUT_S)
    return futures[tp].result(timeout=TIMEOUT_S).offset


def describe_topic(admin: AdminClient, topic: str):
    futures = admin.describe_topics(TopicCollection([topic]), request_timeout=TIMEOUT_S)
    return futures[topic].result(timeout=TIMEOUT_S)


def error_code(exc: KafkaException) -> int:
    return exc.args[0].code()


# -- scenarios -------------------------------------------------------------------------

def metadata(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    admin = admin_client(ctx)
    cluster = admin.describe_cluster(request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S)
    expect_equal([node.port for node in cluster.nodes], [ctx.port], "broker ports")
    expect(bool(cluster.cluster_id), f"cluster id is {cluster.cluster_id!r}")
    broker_id = cluster.nodes[0].id
    # Kafka creates a topic asynchronously: right after CreateTopics a describe may still
    # answer UNKNOWN_TOPIC_OR_PARTITION.
    deadline = time.monotonic() + READ_TIMEOUT_S
    while True:
        try:
            described = describe_topic(admin, ctx.topic)
            break
        except KafkaException as exc:
            if error_code(exc) != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    expect_equal(sorted((p.id, p.leader.id) for p in described.partitions),
                 [(0, broker_id), (1, broker_id), (2, broker_id)], "partitions and leaders")
    # The classic Metadata view agrees.
    listed = admin.list_topics(topic=ctx.topic, timeout=TIMEOUT_S)
    expect_equal((listed.cluster_id, sorted(listed.brokers)), (cluster.cluster_id, [broker_id]),
                 "Metadata cluster id and brokers")
    expect_equal(sorted((p.id, p.leader) for p in listed.topics[ctx.topic].partitions.values()),
                 [(0, broker_id), (1, broker_id), (2, broker_id)], "Metadata partitions")


def topic_admin(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3, {"retention.ms": "3600000"})
    admin = admin_client(ctx)
    resource = ConfigResource(ResourceType.TOPIC, ctx.topic)

    def overrides() -> dict[str, str]:
        entries = admin.describe_configs([resource], request_timeout=TIMEOUT_S)[resource] \
            .result(timeout=TIMEOUT_S)
        return {name: entry.value for name, entry in entries.items()
                if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}

    def partitions() -> list[int]:
        return sorted(p.id for p in describe_topic(admin, ctx.topic).partitions)

    expect_equal(partitions(), [0, 1, 2], "partitions after create")
    expect_equal(overrides(), {"retention.ms": "3600000"}, "topic overrides after create")
    change = ConfigResource(ResourceType.TOPIC, ctx.topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([change]).values():
        future.result(timeout=TIMEOUT_S)
    expect_equal(overrides(), {"retention.ms": "7200000"}, "topic overrides after alter")
    for future in admin.create_partitions([NewPartitions(ctx.topic, 5)],
                                          request_timeout=TIMEOUT_S).values():
        future.result(timeout=TIMEOUT_S)
    expect_equal(partitions(), [0, 1, 2, 3, 4], "partitions after create_partitions")
    for future in admin.delete_topics([ctx.topic], request_timeout=TIMEOUT_S).values():
        future.result(timeout=TIMEOUT_S)

    def gone() -> bool:
        try:
            describe_topic(admin, ctx.topic)
        except KafkaException as exc:
            expect_equal(error_code(exc), KafkaError.UNKNOWN_TOPIC_OR_PART,
                         "describing the deleted topic")
            return True
        return False
    wait_until(gone, DELETE_WAIT_S, "topic still described after delete")
    expect(ctx.topic not in admin.list_topics(timeout=TIMEOUT_S).topics,
           "deleted topic still listed")


def produce_consume(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    sent = standard_messages(CLIENT, 1000)
    producer = new_producer(ctx)
    placed = produce(producer, ctx.topic, sent)
    nulls = null_key_and_value(CLIENT)
    null_places = produce(producer, ctx.topic, nulls, partition=0)
    records = read_partitions(ctx, ctx.topic, [0, 1, 2], len(sent) + 2)
    expect_produce_consume(records, placed, sent, nulls, null_places)


def compression(ctx: Context) -> None:
    for codec in CODECS:
        topic = f"{ctx.topic}-{codec}"
        create_topic(ctx, topic, 1)
        sent = standard_messages(CLIENT, 200)
        producer = new_producer(ctx, **{"compression.codec": codec, "linger.ms": 20})
        produce(producer, topic, sent, partition=0)
        expect_partition_log(read_partitions(ctx, topic, [0], len(sent)), 0, sent, codec)


def acks(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    # acks=0 last: a broker that is not ready for a new topic answers acks=0 by closing
    # the connection (Kafka does), and the messages are silently gone.
    for partition, acks_setting in reversed(list(enumerate(("0", "1", "all")))):
        sent = standard_messages(CLIENT, 100, start=partition * 100)
        # Idempotence would need acks=all: keep it off for acks 0 and 1.
        producer = new_producer(ctx, acks=acks_setting, **{"enable.idempotence": False})
        placed = produce(producer, ctx.topic, sent, partition=partition)
        expect_acks_acknowledged(placed, partition, acks_setting)
    expect_acks_logs(read_partitions(ctx, ctx.topic, [0, 1, 2], 300), CLIENT, ("0", "1", "all"))


def idempotent(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    sent = standard_messages(CLIENT, 1000)
    producer = new_producer(ctx, **{"enable.idempotence": True})
    placed = produce(producer, ctx.topic, sent, partition=0)
    expect_equal(sorted(placed.values()), [(0, o) for o in range(1000)], "acknowledged offsets")
    expect_partition_log(read_partitions(ctx, ctx.topic, [0], 1000), 0, sent, "idempotent")


def list_offsets_scenario(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    sent = [standard_message(i, CLIENT, timestamp_ms=T0_MS + i * 1000) for i in range(10)]
    produce(new_producer(ctx, **{"linger.ms": 50}), ctx.topic, sent, partition=0)
    tp = TopicPartition(ctx.topic, 0)
    answers = {name: list_offsets(ctx, tp, spec) for name, spec in
               (("earliest", OffsetSpec.earliest()), ("latest", OffsetSpec.latest()),
                ("T0+5000", OffsetSpec.for_timestamp(T0_MS + 5000)),
                ("T0+5500", OffsetSpec.for_timestamp(T0_MS + 5500)),
                ("beyond", OffsetSpec.for_timestamp(T0_MS + 100_000)))}
    expect_equal(answers, {"earliest": 0, "latest": 10, "T0+5000": 5, "T0+5500": 6,
                           "beyond": -1}, "ListOffsets")
    consumer = new_consumer(ctx, f"{ctx.topic}-lookups", **{"enable.auto.commit": False})
    try:
        found = consumer.offsets_for_times([TopicPartition(ctx.topic, 0, T0_MS + 5500)],
                                           timeout=TIMEOUT_S)
        expect_equal([p.offset for p in found], [6], "offsets_for_times")
        found = consumer.offsets_for_times([TopicPartition(ctx.topic, 0, T0_MS + 100_000)],
                                           timeout=TIMEOUT_S)
        expect_equal([p.offset for p in found], [-1], "offsets_for_times beyond the last")
        expect_equal(consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S), (0, 10),
                     "watermark offsets")
    finally:
        consumer.close()


def delete_records(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    sent = standard_messages(CLIENT, 10)
    produce(new_producer(ctx), ctx.topic, sent, partition=0)
    tp = TopicPartition(ctx.topic, 0, 4)
    admin = admin_client(ctx)
    futures = admin.delete_records([tp], request_timeout=TIMEOUT_S)
    deleted = futures[tp].result(timeout=TIMEOUT_S)
    expect_equal(deleted.low_watermark, 4, "low watermark")
    expect_equal(list_offsets(ctx, TopicPartition(ctx.topic, 0), OffsetSpec.earliest()), 4,
                 "earliest offset")
    expect_partition_log(read_partitions(ctx, ctx.topic, [0], 6), 0, sent[4:], "after delete",
                         first_offset=4)


def large_messages(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    large = Message(b"large", large_value(900_000), (("client", CLIENT.encode()),), T0_MS)
    # The client's own limit is raised above 2,000,000 so the broker is the one refusing.
    producer = new_producer(ctx, **{"message.max.bytes": 3_000_000, "retries": 0,
                                    "enable.idempotence": False})
    produce(producer, ctx.topic, [large], partition=0)
    try:
        produce(producer, ctx.topic, [Message(None, large_value(2_000_000), (), T0_MS)],
                partition=0)
        fail("a 2,000,000-byte value was accepted")
    except KafkaException as exc:
        expect_equal(error_code(exc), KafkaError.MSG_SIZE_TOO_LARGE, "delivery error")
    records = read_partitions(ctx, ctx.topic, [0], 1,
                              **{"fetch.message.max.bytes": 2_000_000})
    expect_partition_log(records, 0, [large], "900,000-byte value")


def unknown_topic(ctx: Context) -> None:
    missing = f"{ctx.topic}-missing"
    admin = admin_client(ctx, **{"allow.auto.create.topics": False})
    try:
        describe_topic(admin, missing)
        fail("describing a missing topic succeeded")
    except KafkaException as exc:
        expect_equal(error_code(exc), KafkaError.UNKNOWN_TOPIC_OR_PART, "DescribeTopics error")
    listed = admin.list_topics(topic=missing, timeout=TIMEOUT_S).topics[missing]
    expect_equal(listed.error.code() if listed.error else None,
                 KafkaError.UNKNOWN_TOPIC_OR_PART, "Metadata without auto-creation")
    expect_equal(listed.partitions, {}, "partitions of the missing topic")
    try:
        produce(new_producer(ctx, **{"message.timeout.ms": 15_000}), "bad topic!",
                [Message(None, b"v", (), T0_MS)])
        fail("producing to 'bad topic!' succeeded")
    except KafkaException as exc:  # librdkafka has no name check: the broker's error
        expect_equal(error_code(exc), KafkaError.TOPIC_EXCEPTION, "produce to 'bad topic!'")


class Members:
    """Subscribed consumers of one group, polled in turn from this thread (librdkafka
    runs each group protocol in its own background threads)."""

    def __init__(self, ctx: Context, topic: str, group: str) -> None:
        self._ctx, self._topic, self._group = ctx, topic, group
        self.consumers: list[Consumer] = []
        self.records: list[list[Record]] = []

    def add(self, **config) -> int:
        consumer = new_consumer(self._ctx, self._group, **{"auto.commit.interval.ms": 500,
                                                           **config})
        consumer.subscribe([self._topic])
        self.consumers.append(consumer)
        self.records.append([])
        return len(self.consumers) - 1

    def poll(self) -> None:
        for number, consumer in enumerate(self.consumers):
            if consumer is not None:
                self.records[number].extend(_consume(consumer, 0.05))

    def assignment(self, number: int) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.consumers[number].assignment())

    def poll_until(self, condition, reason: str) -> None:
        deadline = time.monotonic() + READ_TIMEOUT_S
        while True:
            self.poll()
            if condition():
                return
            if time.monotonic() > deadline:
                fail(reason)

    def balanced(self, partitions: int) -> bool:
        """Every live member holds its even share (KIP-848 reconciles incrementally, so a
        cover of all partitions can come before the even split)."""
        assignments = [self.assignment(n) for n, c in enumerate(self.consumers) if c is not None]
        share = partitions // len(assignments)
        return (all(len(a) in (share, share + 1) for a in assignments)
                and sum(map(len, assignments)) == partitions
                and frozenset().union(*assignments) == frozenset(range(partitions)))

    def close(self, number: int) -> None:
        self.consumers[number].close()  # commits stored offsets, leaves the group
        self.consumers[number] = None

    def close_all(self) -> None:
        for number, consumer in enumerate(self.consumers):
            if consumer is not None:
                self.close(number)


def consumer_group(ctx: Context, group_type: ConsumerGroupType | None = None,
                   **protocol_config) -> None:
    """group_type: what describing the group must say, when the protocol is not the
    default (a client falling back to classic would pass unnoticed otherwise)."""
    create_topic(ctx, ctx.topic, 6)
    group = f"{ctx.topic}-group"
    members = Members(ctx, ctx.topic, group)
    try:
        for _ in range(3):
            members.add(**protocol_config)
        members.poll_until(lambda: members.balanced(6), "3 members never shared the 6 partitions")
        if group_type is not None:
            admin = admin_client(ctx)  # kept referenced: a dropped client never resolves
            described = admin.describe_consumer_groups([group])[group].result(
                timeout=READ_TIMEOUT_S)
            expect_equal(described.type, group_type, "group type")
        assignments = [members.assignment(n) for n in range(3)]
        sent = standard_messages(CLIENT, 3000)
        placed = produce(new_producer(ctx), ctx.topic, sent)
        members.poll_until(lambda: sum(map(len, members.records)) >= 3000,
                           "the group did not read 3,000 messages")
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # any duplicate would arrive now
            members.poll()
        expect_equal([members.assignment(n) for n in range(3)], assignments,
                     "assignments while reading")
    finally:
        members.close_all()
    expect_own_partitions(members.records, assignments)
    expect_placed([r for records in members.records for r in records], placed, sent, "group")


def consumer_group_848(ctx: Context) -> None:
    """consumer_group over KIP-848 (ConsumerGroupHeartbeat, the broker assigns); the
    members set no classic-only settings, which librdkafka refuses with this protocol."""
    consumer_group(ctx, ConsumerGroupType.CONSUMER, **{"group.protocol": "consumer"})


def commits_rebalance(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    group = f"{ctx.topic}-group"
    producer = new_producer(ctx)
    for partition in range(3):
        produce(producer, ctx.topic, standard_messages(CLIENT, 100, start=partition * 100),
                partition=partition)
    partitions = [TopicPartition(ctx.topic, p) for p in range(3)]

    # 1. A member reads everything, commits offset 60 everywhere, closes.
    first = Members(ctx, ctx.topic, group)
    first.add(**{"enable.auto.commit": False})
    first.poll_until(lambda: len(first.records[0]) >= 300, "the first member did not read 300")
    first.consumers[0].commit(offsets=[TopicPartition(ctx.topic, p, 60) for p in range(3)],
                              asynchronous=False)
    expect_equal([tp.offset for tp in first.consumers[0].committed(partitions, timeout=TIMEOUT_S)],
                 [60, 60, 60], "committed")
    first.close_all()

    # 2. A new member resumes from the committed offsets.
    members = Members(ctx, ctx.topic, group)
    try:
        second = members.add()
        members.poll_until(lambda: len(members.records[second]) >= 120,
                           "the second member did not read 120 messages")
        for partition in range(3):
            expect_partition_log(members.records[second], partition,
                                 standard_messages(CLIENT, 40, start=partition * 100 + 60),
                                 "resumed", first_offset=60)
        # 3. A third joins, the two share; the second leaves, the third takes over.
        third = members.add()
        members.poll_until(lambda: members.balanced(3), "two members never shared 3 partitions")
        members.close(second)
        members.poll_until(lambda: members.assignment(third) == frozenset(range(3)),
                           "the remaining member did not take over every partition")
        for partition in range(3):
            produce(producer, ctx.topic,
                    standard_messages(CLIENT, 30, start=300 + partition * 30),
                    partition=partition)
        members.poll_until(lambda: len(members.records[third]) >= 90,
                           "the remaining member did not read the 90 new messages")
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            members.poll()
    finally:
        members.close_all()
    for partition in range(3):
        expect_partition_log(members.records[third], partition,
                             standard_messages(CLIENT, 30, start=300 + partition * 30),
                             "taken over", first_offset=100)
    check = new_consumer(ctx, group, **{"enable.auto.commit": False})
    try:
        expect_equal([tp.offset for tp in check.committed(partitions, timeout=TIMEOUT_S)],
                     [130, 130, 130], "committed after close")
    finally:
        check.close()


def transactions(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    producer = new_producer(ctx, **{"transactional.id": f"{ctx.topic}-tx"})
    producer.init_transactions(TIMEOUT_S)
    committed = standard_messages(CLIENT, 10)
    aborted = standard_messages(CLIENT, 10, start=10)
    producer.begin_transaction()
    produce(producer, ctx.topic, committed, partition=0)
    producer.commit_transaction(TIMEOUT_S)
    producer.begin_transaction()
    produce(producer, ctx.topic, aborted, partition=0)
    producer.abort_transaction(TIMEOUT_S)
    expect_transaction_reads(
        read_partitions(ctx, ctx.topic, [0], 10, **{"isolation.level": "read_committed"}),
        read_partitions(ctx, ctx.topic, [0], 20, **{"isolation.level": "read_uncommitted"}),
        committed, aborted)


def cross_produce(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    produce(new_producer(ctx), ctx.topic, standard_messages(CLIENT, 100), partition=0)


def cross_consume(ctx: Context) -> None:
    expect_cross_consumed(ctx, read_partitions(ctx, ctx.topic, [0], 100))


SCENARIOS = {
    "metadata": metadata, "topic_admin": topic_admin, "produce_consume": produce_consume,
    "compression": compression, "acks": acks, "idempotent": idempotent,
    "list_offsets": list_offsets_scenario, "delete_records": delete_records,
    "large_messages": large_messages, "unknown_topic": unknown_topic,
    "consumer_group": consumer_group, "consumer_group_848": consumer_group_848,
    "commits_rebalance": commits_rebalance,
    "transactions": transactions, "cross_produce": cross_produce,
    "cross_consume": cross_consume,
}

if __name__ == "__main__":
    run_main(CLIENT, SCENARIOS, lambda: f"confluent-kafka {confluent_kafka.__version__} "
                                        f"(librdkafka {confluent_kafka.libversion()[0]})")
