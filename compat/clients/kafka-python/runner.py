"""compat runner for kafka-python (see compat/SCENARIOS.md for what each scenario checks)."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import kafka  # noqa: E402

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import (ConfigResource, NewPartitions, NewTopic,  # noqa: E402
                         OffsetSpec)
from kafka.errors import MessageSizeTooLargeError, UnknownTopicOrPartitionError  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

from compat.clients.common import (covers_once, expect_acks_acknowledged,  # noqa: E402
                                   expect_acks_logs, expect_cross_consumed,
                                   expect_own_partitions, expect_produce_consume,
                                   expect_transaction_reads, null_key_and_value)
from compat.pyrunner import (DELETE_WAIT_S, READ_TIMEOUT_S, T0_MS, Context,  # noqa: E402
                             Message, Record, expect, expect_equal, expect_partition_log,
                             expect_placed, fail, large_value, run_main, standard_message,
                             standard_messages, wait_until)

CLIENT = "kafka-python"
REQUEST_TIMEOUT_MS = 30_000
CODECS = ("gzip", "snappy", "lz4", "zstd")


# -- helpers ---------------------------------------------------------------------------

def admin_client(ctx: Context) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS)


def create_topic(ctx: Context, topic: str, partitions: int,
                 configs: dict[str, str] | None = None) -> None:
    admin = admin_client(ctx)
    try:
        result = admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})])
        (answer,) = result["topics"]
        expect_equal(answer["error_code"], 0, f"CreateTopics {topic} error code")
    finally:
        admin.close()


def new_producer(ctx: Context, **config) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=ctx.bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS,
                         **config)


def produce(producer: KafkaProducer, topic: str, messages: list[Message],
            partition: int | None = None) -> dict[int, tuple[int, int]]:
    """Sends in order, flushes; index in `messages` -> acknowledged (partition, offset)."""
    futures = [producer.send(topic, key=m.key, value=m.value, headers=list(m.headers),
                             partition=partition, timestamp_ms=m.timestamp_ms)
               for m in messages]
    producer.flush(timeout=READ_TIMEOUT_S)
    placed = {}
    for index, future in enumerate(futures):
        metadata = future.get(timeout=READ_TIMEOUT_S)
        placed[index] = (metadata.partition, metadata.offset)
    return placed


def as_record(record) -> Record:
    return Record(record.partition, record.offset,
                  Message(record.key, record.value, tuple(record.headers), record.timestamp))


def read_partitions(ctx: Context, topic: str, partitions: list[int], expected_count: int,
                    **config) -> list[Record]:
    """Assigns the partitions (no group), reads from the log start until expected_count
    records came, then half a second more to catch any surplus."""
    consumer = KafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None,
                             enable_auto_commit=False, request_timeout_ms=REQUEST_TIMEOUT_MS,
                             **config)
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[Record] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(records) < expected_count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(as_record(r) for r in batch)
        surplus_deadline = time.monotonic() + 0.5
        while time.monotonic() < surplus_deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(as_record(r) for r in batch)
        return records
    finally:
        consumer.close()


def list_offsets(ctx: Context, specs: dict[TopicPartition, object]) -> dict:
    admin = admin_client(ctx)
    try:
        return {tp: (answer.offset, answer.timestamp)
                for tp, answer in admin.list_partition_offsets(specs).items()}
    finally:
        admin.close()


# -- scenarios -------------------------------------------------------------------------

def metadata(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    admin = admin_client(ctx)
    try:
        cluster = admin.describe_cluster()
        expect_equal([b["port"] for b in cluster["brokers"]], [ctx.port], "broker ports")
        expect(bool(cluster["cluster_id"]), f"cluster id is {cluster['cluster_id']!r}")
        broker_id = cluster["brokers"][0]["broker_id"]
        (described,) = admin.describe_topics([ctx.topic])
        expect_equal([(p["partition_index"], p["leader_id"]) for p in
                      sorted(described["partitions"], key=lambda p: p["partition_index"])],
                     [(0, broker_id), (1, broker_id), (2, broker_id)], "partitions and leaders")
    finally:
        admin.close()


def topic_admin(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3, {"retention.ms": "3600000"})
    admin = admin_client(ctx)
    resource = ConfigResource("TOPIC", ctx.topic)

    def overrides() -> dict[str, tuple[str, str]]:
        described = admin.describe_configs([resource], config_filter="all")["topic"][ctx.topic]
        return {name: (entry["value"], entry["config_source"])
                for name, entry in described.items()
                if entry["config_source"] == "DYNAMIC_TOPIC_CONFIG"}

    def partitions() -> list[int]:
        (described,) = admin.describe_topics([ctx.topic])
        expect_equal(described["error_code"], 0, "DescribeTopics error code")
        return sorted(p["partition_index"] for p in described["partitions"])

    try:
        expect_equal(partitions(), [0, 1, 2], "partitions after create")
        expect_equal(overrides(), {"retention.ms": ("3600000", "DYNAMIC_TOPIC_CONFIG")},
                     "topic overrides after create")
        result = admin.alter_configs([ConfigResource("TOPIC", ctx.topic,
                                                     {"retention.ms": "7200000"})],
                                     incremental=True)
        expect_equal(result, {"topic": {ctx.topic: "OK"}}, "IncrementalAlterConfigs")
        expect_equal(overrides(), {"retention.ms": ("7200000", "DYNAMIC_TOPIC_CONFIG")},
                     "topic overrides after alter")
        admin.create_partitions({ctx.topic: NewPartitions(5)})
        expect_equal(partitions(), [0, 1, 2, 3, 4], "partitions after create_partitions")
        admin.delete_topics([ctx.topic])

        def gone() -> bool:
            (described,) = admin.describe_topics([ctx.topic])
            return described["error_code"] == UnknownTopicOrPartitionError.errno
        wait_until(gone, DELETE_WAIT_S, "topic still described after delete")
        expect(ctx.topic not in admin.list_topics(), "deleted topic still listed")
    finally:
        admin.close()


def produce_consume(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    sent = standard_messages(CLIENT, 1000)
    producer = new_producer(ctx)
    placed = produce(producer, ctx.topic, sent)
    nulls = null_key_and_value(CLIENT)
    null_places = produce(producer, ctx.topic, nulls, partition=0)
    producer.close(timeout=10)
    records = read_partitions(ctx, ctx.topic, [0, 1, 2], len(sent) + 2)
    expect_produce_consume(records, placed, sent, nulls, null_places)


def compression(ctx: Context) -> None:
    for codec in CODECS:
        topic = f"{ctx.topic}-{codec}"
        create_topic(ctx, topic, 1)
        sent = standard_messages(CLIENT, 200)
        producer = new_producer(ctx, compression_type=codec, linger_ms=20)
        produce(producer, topic, sent, partition=0)
        producer.close(timeout=10)
        expect_partition_log(read_partitions(ctx, topic, [0], len(sent)), 0, sent, codec)


def acks(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    # acks=0 last: a broker that is not ready for a new topic answers acks=0 by closing
    # the connection (Kafka does), and the messages are silently gone.
    for partition, acks_setting in reversed(list(enumerate((0, 1, "all")))):
        sent = standard_messages(CLIENT, 100, start=partition * 100)
        producer = new_producer(ctx, acks=acks_setting)
        placed = produce(producer, ctx.topic, sent, partition=partition)
        producer.close(timeout=10)
        expect_acks_acknowledged(placed, partition, acks_setting)
    expect_acks_logs(read_partitions(ctx, ctx.topic, [0, 1, 2], 300), CLIENT, (0, 1, "all"))


def idempotent(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    sent = standard_messages(CLIENT, 1000)
    producer = new_producer(ctx, enable_idempotence=True, acks="all")
    placed = produce(producer, ctx.topic, sent, partition=0)
    producer.close(timeout=10)
    expect_equal(sorted(placed.values()), [(0, o) for o in range(1000)], "acknowledged offsets")
    expect_partition_log(read_partitions(ctx, ctx.topic, [0], 1000), 0, sent, "idempotent")


def list_offsets_scenario(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    sent = [standard_message(i, CLIENT, timestamp_ms=T0_MS + i * 1000) for i in range(10)]
    producer = new_producer(ctx, linger_ms=50)
    produce(producer, ctx.topic, sent, partition=0)
    producer.close(timeout=10)
    tp = TopicPartition(ctx.topic, 0)
    answers = {name: list_offsets(ctx, {tp: spec})[tp][0] for name, spec in
               (("earliest", OffsetSpec.EARLIEST), ("latest", OffsetSpec.LATEST),
                ("T0+5000", T0_MS + 5000), ("T0+5500", T0_MS + 5500),
                ("beyond", T0_MS + 100_000))}
    expect_equal(answers, {"earliest": 0, "latest": 10, "T0+5000": 5, "T0+5500": 6,
                           "beyond": -1}, "ListOffsets")
    # The consumer's own lookups agree.
    consumer = KafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None)
    try:
        found = consumer.offsets_for_times({tp: T0_MS + 5500})[tp]
        expect_equal((found.offset, found.timestamp), (6, T0_MS + 6000), "offsets_for_times")
        expect_equal(consumer.offsets_for_times({tp: T0_MS + 100_000}), {tp: None},
                     "offsets_for_times beyond the last")
        expect_equal((consumer.beginning_offsets([tp]), consumer.end_offsets([tp])),
                     ({tp: 0}, {tp: 10}), "beginning/end offsets")
    finally:
        consumer.close()


def delete_records(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    sent = standard_messages(CLIENT, 10)
    producer = new_producer(ctx)
    produce(producer, ctx.topic, sent, partition=0)
    producer.close(timeout=10)
    tp = TopicPartition(ctx.topic, 0)
    admin = admin_client(ctx)
    try:
        expect_equal(admin.delete_records({tp: 4})[tp]["low_watermark"], 4, "low watermark")
    finally:
        admin.close()
    expect_equal(list_offsets(ctx, {tp: OffsetSpec.EARLIEST})[tp][0], 4, "earliest offset")
    expect_partition_log(read_partitions(ctx, ctx.topic, [0], 6), 0, sent[4:], "after delete",
                         first_offset=4)


def large_messages(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    large = Message(b"large", large_value(900_000), (("client", CLIENT.encode()),), T0_MS)
    # The client's own limit is raised above 2,000,000 so the broker is the one refusing.
    producer = new_producer(ctx, max_request_size=3_000_000, retries=0)
    produce(producer, ctx.topic, [large], partition=0)
    try:
        producer.send(ctx.topic, value=large_value(2_000_000), partition=0).get(timeout=30)
        fail("a 2,000,000-byte value was accepted")
    except MessageSizeTooLargeError:
        pass
    producer.close(timeout=10)
    records = read_partitions(ctx, ctx.topic, [0], 1, max_partition_fetch_bytes=2_000_000)
    expect_partition_log(records, 0, [large], "900,000-byte value")


def unknown_topic(ctx: Context) -> None:
    missing = f"{ctx.topic}-missing"
    admin = admin_client(ctx)
    try:
        (described,) = admin.describe_topics([missing])
        expect_equal(described["error_code"], UnknownTopicOrPartitionError.errno,
                     "DescribeTopics error code")
        # The admin client asks for metadata without auto-creation: still no such topic.
        expect(missing not in admin.list_topics(), "describing the topic created it")
    finally:
        admin.close()
    producer = new_producer(ctx, max_block_ms=10_000)
    try:
        producer.send("bad topic!", value=b"v").get(timeout=15)
        fail("producing to 'bad topic!' succeeded")
    except ValueError as exc:  # kafka-python's own name check, before anything is sent
        expect(str(exc).startswith('Topic name "bad topic!" is illegal'), f"ValueError: {exc}")
    finally:
        producer.close(timeout=10)


class GroupMember:
    """A subscribed consumer polled in its own thread (KafkaConsumer is not thread-safe,
    and a member that stops polling holds up the group's rebalances)."""

    def __init__(self, ctx: Context, topic: str, group: str) -> None:
        self.records: list[Record] = []
        self.assignment: frozenset[int] = frozenset()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            bootstrap_servers=ctx.bootstrap, group_id=group, auto_offset_reset="earliest",
            enable_auto_commit=True, auto_commit_interval_ms=500,
            request_timeout_ms=REQUEST_TIMEOUT_MS)
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for batch in self._consumer.poll(timeout_ms=100).values():
                    self.records.extend(as_record(r) for r in batch)
                self.assignment = frozenset(tp.partition for tp in self._consumer.assignment())
        except Exception as exc:  # reported by the scenario through .error
            self.error = exc
        finally:
            self._consumer.close()  # commits the consumed positions and leaves the group

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        expect(not self._thread.is_alive(), "a group member did not close within 30 s")
        if self.error is not None:
            fail(f"group member failed: {type(self.error).__name__}: {self.error}")


def balanced(members: list[GroupMember], partitions: int) -> bool:
    for member in members:
        if member.error is not None:
            fail(f"group member failed: {type(member.error).__name__}: {member.error}")
    return covers_once([m.assignment for m in members], partitions)


def consumer_group(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 6)
    members = [GroupMember(ctx, ctx.topic, f"{ctx.topic}-group") for _ in range(3)]
    try:
        wait_until(lambda: balanced(members, 6), READ_TIMEOUT_S,
                   "3 members never shared the 6 partitions")
        sent = standard_messages(CLIENT, 3000)
        producer = new_producer(ctx)
        placed = produce(producer, ctx.topic, sent)
        producer.close(timeout=10)
        wait_until(lambda: balanced(members, 6) and sum(len(m.records) for m in members) >= 3000,
                   READ_TIMEOUT_S,
                   "the group did not read 3,000 messages")
        time.sleep(0.5)  # any duplicate would arrive now
    finally:
        for member in members:
            member.close()
    expect_own_partitions([m.records for m in members], [m.assignment for m in members])
    expect_placed([r for m in members for r in m.records], placed, sent, "group")


def commits_rebalance(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 3)
    group = f"{ctx.topic}-group"
    producer = new_producer(ctx)
    for partition in range(3):
        produce(producer, ctx.topic, standard_messages(CLIENT, 100, start=partition * 100),
                partition=partition)
    partitions = [TopicPartition(ctx.topic, p) for p in range(3)]

    # 1. A member reads everything, commits offset 60 everywhere, closes.
    first = KafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False)
    first.subscribe([ctx.topic])
    seen = 0
    deadline = time.monotonic() + READ_TIMEOUT_S
    while seen < 300 and time.monotonic() < deadline:
        seen += sum(len(batch) for batch in first.poll(timeout_ms=200).values())
    expect_equal(seen, 300, "first member read")
    first.commit({tp: OffsetAndMetadata(60, "", -1) for tp in partitions})
    expect_equal([first.committed(tp) for tp in partitions], [60, 60, 60], "committed")
    first.close()

    # 2. A new member resumes from the committed offsets.
    second = GroupMember(ctx, ctx.topic, group)
    third = None
    try:
        wait_until(lambda: len(second.records) >= 120, READ_TIMEOUT_S,
                   "the second member did not read 120 messages")
        time.sleep(0.5)
        for partition in range(3):
            expect_partition_log(second.records, partition,
                                 standard_messages(CLIENT, 40, start=partition * 100 + 60),
                                 "resumed", first_offset=60)
        # 3. A third joins, the two share; the second leaves, the third takes over.
        third = GroupMember(ctx, ctx.topic, group)
        wait_until(lambda: balanced([second, third], 3), READ_TIMEOUT_S,
                   "two members never shared the 3 partitions")
        second.close()
        wait_until(lambda: third.assignment == frozenset(range(3)), READ_TIMEOUT_S,
                   "the remaining member did not take over every partition")
        for partition in range(3):
            produce(producer, ctx.topic,
                    standard_messages(CLIENT, 30, start=300 + partition * 30),
                    partition=partition)
        wait_until(lambda: len(third.records) >= 90, READ_TIMEOUT_S,
                   "the remaining member did not read the 90 new messages")
        time.sleep(0.5)
    finally:
        producer.close(timeout=10)
        if third is not None:
            third.close()
    for partition in range(3):
        expect_partition_log(third.records, partition,
                             standard_messages(CLIENT, 30, start=300 + partition * 30),
                             "taken over", first_offset=100)
    check = KafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=group,
                          enable_auto_commit=False)
    try:
        expect_equal([check.committed(tp) for tp in partitions], [130, 130, 130],
                      "committed after close")
    finally:
        check.close()


def transactions(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    producer = new_producer(ctx, transactional_id=f"{ctx.topic}-tx")
    producer.init_transactions()
    committed = standard_messages(CLIENT, 10)
    aborted = standard_messages(CLIENT, 10, start=10)
    producer.begin_transaction()
    produce(producer, ctx.topic, committed, partition=0)
    producer.commit_transaction()
    producer.begin_transaction()
    produce(producer, ctx.topic, aborted, partition=0)
    producer.abort_transaction()
    producer.close(timeout=10)
    expect_transaction_reads(
        read_partitions(ctx, ctx.topic, [0], 10, isolation_level="read_committed"),
        read_partitions(ctx, ctx.topic, [0], 20, isolation_level="read_uncommitted"),
        committed, aborted)


def cross_produce(ctx: Context) -> None:
    create_topic(ctx, ctx.topic, 1)
    producer = new_producer(ctx)
    produce(producer, ctx.topic, standard_messages(CLIENT, 100), partition=0)
    producer.close(timeout=10)


def cross_consume(ctx: Context) -> None:
    expect_cross_consumed(ctx, read_partitions(ctx, ctx.topic, [0], 100))


SCENARIOS = {
    "metadata": metadata, "topic_admin": topic_admin, "produce_consume": produce_consume,
    "compression": compression, "acks": acks, "idempotent": idempotent,
    "list_offsets": list_offsets_scenario, "delete_records": delete_records,
    "large_messages": large_messages, "unknown_topic": unknown_topic,
    "consumer_group": consumer_group, "commits_rebalance": commits_rebalance,
    "transactions": transactions, "cross_produce": cross_produce,
    "cross_consume": cross_consume,
}

if __name__ == "__main__":
    run_main(CLIENT, SCENARIOS, lambda: f"kafka-python {kafka.__version__}")
