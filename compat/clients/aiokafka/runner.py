"""compat runner for aiokafka (asyncio); see compat/SCENARIOS.md.

aiokafka's admin client has AlterConfigs but not IncrementalAlterConfigs, and returns
the brokers' responses as they are: the scenarios read their fields."""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import aiokafka  # noqa: E402

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import (AIOKafkaAdminClient, NewPartitions, NewTopic,  # noqa: E402
                            RecordsToDelete)
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType  # noqa: E402
from aiokafka.errors import MessageSizeTooLargeError, UnknownTopicOrPartitionError  # noqa: E402

from compat.clients.common import (covers_once, expect_acks_acknowledged,  # noqa: E402
                                   expect_acks_logs, expect_cross_consumed,
                                   expect_own_partitions, expect_produce_consume,
                                   expect_transaction_reads, null_key_and_value)
from compat.pyrunner import (DELETE_WAIT_S, READ_TIMEOUT_S, T0_MS, Context,  # noqa: E402
                             Message, Record, expect, expect_equal, expect_partition_log,
                             expect_placed, fail, large_value, run_main, standard_message,
                             standard_messages)

CLIENT = "aiokafka"
REQUEST_TIMEOUT_MS = 30_000
CODECS = ("gzip", "snappy", "lz4", "zstd")
UNKNOWN_TOPIC_OR_PARTITION = 3
DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source


# -- helpers ---------------------------------------------------------------------------

class Admin:
    """`async with Admin(ctx) as admin:` a started AIOKafkaAdminClient, closed after."""

    def __init__(self, ctx: Context) -> None:
        self.client = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap,
                                          request_timeout_ms=REQUEST_TIMEOUT_MS)

    async def __aenter__(self) -> AIOKafkaAdminClient:
        await self.client.start()
        return self.client

    async def __aexit__(self, *exc_info) -> None:
        await self.client.close()


async def create_topic(ctx: Context, topic: str, partitions: int,
                       configs: dict[str, str] | None = None) -> None:
    async with Admin(ctx) as admin:
        response = await admin.create_topics(
            [NewTopic(topic, partitions, 1, topic_configs=configs or {})])
        expect_equal([(e["topic"], e["error_code"]) for e in response.to_object()["topic_errors"]],
                     [(topic, 0)], "CreateTopics")


async def wait_until(condition: Callable[[], bool], timeout_s: float, reason: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            fail(reason)
        await asyncio.sleep(0.1)


async def topic_config_error(admin: AIOKafkaAdminClient, topic: str) -> int:
    """The error code DescribeConfigs gives for the topic (0: it exists)."""
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (resource,) = response.to_object()["resources"]
    return resource["error_code"]


async def started_producer(ctx: Context, **config) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap,
                                **{"request_timeout_ms": REQUEST_TIMEOUT_MS, **config})
    await producer.start()
    return producer


async def produce(producer: AIOKafkaProducer, topic: str, messages: list[Message],
                  partition: int | None = None) -> dict[int, tuple[int, int]]:
    """Sends in order, waits for every acknowledgement; index -> (partition, offset)."""
    futures = [await producer.send(topic, key=m.key, value=m.value, headers=list(m.headers),
                                   partition=partition, timestamp_ms=m.timestamp_ms)
               for m in messages]
    acknowledged = await asyncio.wait_for(asyncio.gather(*futures), READ_TIMEOUT_S)
    return {index: (metadata.partition, metadata.offset)
            for index, metadata in enumerate(acknowledged)
            if metadata is not None}  # acks=0: no metadata at all


def as_record(record) -> Record:
    return Record(record.partition, record.offset,
                  Message(record.key, record.value, tuple(record.headers), record.timestamp))


async def read_partitions(ctx: Context, topic: str, partitions: list[int], expected_count: int,
                          **config) -> list[Record]:
    """Assigns the partitions (no group), reads from the log start until expected_count
    records came, then half a second more to catch any surplus."""
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None,
                                enable_auto_commit=False, request_timeout_ms=REQUEST_TIMEOUT_MS,
                                **config)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Record] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(records) < expected_count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(as_record(r) for r in batch)
        surplus_deadline = time.monotonic() + 0.5
        while time.monotonic() < surplus_deadline:
            for batch in (await consumer.getmany(timeout_ms=100)).values():
                records.extend(as_record(r) for r in batch)
        return records
    finally:
        await consumer.stop()


async def lookup_consumer(ctx: Context) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None,
                                enable_auto_commit=False, request_timeout_ms=REQUEST_TIMEOUT_MS)
    await consumer.start()
    return consumer


# -- scenarios -------------------------------------------------------------------------

async def metadata(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 3)
    async with Admin(ctx) as admin:
        cluster = await admin.describe_cluster()
        expect_equal([b["port"] for b in cluster["brokers"]], [ctx.port], "broker ports")
        expect(bool(cluster["cluster_id"]), f"cluster id is {cluster['cluster_id']!r}")
        broker_id = cluster["brokers"][0]["node_id"]
        # Kafka creates a topic's partitions asynchronously: they may take a moment to
        # show up in metadata after CreateTopics returns.
        deadline = time.monotonic() + READ_TIMEOUT_S
        while True:
            (described,) = await admin.describe_topics([ctx.topic])
            if described["partitions"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        expect_equal(sorted((p["partition"], p["leader"]) for p in described["partitions"]),
                     [(0, broker_id), (1, broker_id), (2, broker_id)], "partitions and leaders")


async def topic_admin(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 3, {"retention.ms": "3600000"})
    async with Admin(ctx) as admin:
        async def overrides() -> dict[str, str]:
            (response,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, ctx.topic)])
            (resource,) = response.to_object()["resources"]
            expect_equal(resource["error_code"], 0, "DescribeConfigs error code")
            return {e["config_names"]: e["config_value"] for e in resource["config_entries"]
                    if e["config_source"] == DYNAMIC_TOPIC_CONFIG}

        async def described() -> dict:
            (topic,) = await admin.describe_topics([ctx.topic])
            return topic

        expect_equal(sorted(p["partition"] for p in (await described())["partitions"]),
                     [0, 1, 2], "partitions after create")
        expect_equal(await overrides(), {"retention.ms": "3600000"}, "overrides after create")
        # AlterConfigs (aiokafka has no incremental variant) replaces the topic's overrides.
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, ctx.topic, {"retention.ms": "7200000"})])
        expect_equal([(r["resource_name"], r["error_code"]) for response in responses
                      for r in response.to_object()["resources"]], [(ctx.topic, 0)],
                     "AlterConfigs")
        expect_equal(await overrides(), {"retention.ms": "7200000"}, "overrides after alter")
        await admin.create_partitions({ctx.topic: NewPartitions(5)})
        expect_equal(sorted(p["partition"] for p in (await described())["partitions"]),
                     [0, 1, 2, 3, 4], "partitions after create_partitions")
        response = await admin.delete_topics([ctx.topic])
        expect_equal([tuple(e)[:2] for e in response.topic_error_codes], [(ctx.topic, 0)],
                     "DeleteTopics")
        # Gone: not in the all-topics Metadata (which never auto-creates) and DescribeConfigs
        # says UNKNOWN_TOPIC_OR_PARTITION (describe_topics would re-create it).
        deadline = time.monotonic() + DELETE_WAIT_S
        while ctx.topic in await admin.list_topics():
            if time.monotonic() > deadline:
                fail("topic still listed after delete")
            await asyncio.sleep(0.2)
        expect_equal(await topic_config_error(admin, ctx.topic), UNKNOWN_TOPIC_OR_PARTITION,
                     "DescribeConfigs of the deleted topic")


async def produce_consume(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 3)
    sent = standard_messages(CLIENT, 1000)
    producer = await started_producer(ctx)
    try:
        placed = await produce(producer, ctx.topic, sent)
        nulls = null_key_and_value(CLIENT)
        null_places = await produce(producer, ctx.topic, nulls, partition=0)
    finally:
        await producer.stop()
    records = await read_partitions(ctx, ctx.topic, [0, 1, 2], len(sent) + 2)
    expect_produce_consume(records, placed, sent, nulls, null_places)


async def compression(ctx: Context) -> None:
    for codec in CODECS:
        topic = f"{ctx.topic}-{codec}"
        await create_topic(ctx, topic, 1)
        sent = standard_messages(CLIENT, 200)
        producer = await started_producer(ctx, compression_type=codec, linger_ms=20)
        try:
            await produce(producer, topic, sent, partition=0)
        finally:
            await producer.stop()
        expect_partition_log(await read_partitions(ctx, topic, [0], len(sent)), 0, sent, codec)


async def acks(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 3)
    # acks=0 last: a broker that is not ready for a new topic answers acks=0 by closing
    # the connection (Kafka does), and the messages are silently gone.
    for partition, acks_setting in reversed(list(enumerate((0, 1, "all")))):
        sent = standard_messages(CLIENT, 100, start=partition * 100)
        producer = await started_producer(ctx, acks=acks_setting)
        try:
            placed = await produce(producer, ctx.topic, sent, partition=partition)
        finally:
            await producer.stop()
        expect_acks_acknowledged(placed, partition, acks_setting)
    expect_acks_logs(await read_partitions(ctx, ctx.topic, [0, 1, 2], 300), CLIENT,
                     (0, 1, "all"))


async def idempotent(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 1)
    sent = standard_messages(CLIENT, 1000)
    producer = await started_producer(ctx, enable_idempotence=True, acks="all")
    try:
        placed = await produce(producer, ctx.topic, sent, partition=0)
    finally:
        await producer.stop()
    expect_equal(sorted(placed.values()), [(0, o) for o in range(1000)], "acknowledged offsets")
    expect_partition_log(await read_partitions(ctx, ctx.topic, [0], 1000), 0, sent, "idempotent")


async def list_offsets(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 1)
    sent = [standard_message(i, CLIENT, timestamp_ms=T0_MS + i * 1000) for i in range(10)]
    producer = await started_producer(ctx, linger_ms=50)
    try:
        await produce(producer, ctx.topic, sent, partition=0)
    finally:
        await producer.stop()
    tp = TopicPartition(ctx.topic, 0)
    consumer = await lookup_consumer(ctx)
    try:
        expect_equal((await consumer.beginning_offsets([tp]), await consumer.end_offsets([tp])),
                     ({tp: 0}, {tp: 10}), "earliest and latest offsets")
        found = {}
        for name, timestamp_ms in (("T0+5000", T0_MS + 5000), ("T0+5500", T0_MS + 5500),
                                   ("beyond", T0_MS + 100_000)):
            answer = (await consumer.offsets_for_times({tp: timestamp_ms}))[tp]
            found[name] = None if answer is None else (answer.offset, answer.timestamp)
        expect_equal(found, {"T0+5000": (5, T0_MS + 5000), "T0+5500": (6, T0_MS + 6000),
                             "beyond": None}, "offsets_for_times")
    finally:
        await consumer.stop()


async def delete_records(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 1)
    sent = standard_messages(CLIENT, 10)
    producer = await started_producer(ctx)
    try:
        await produce(producer, ctx.topic, sent, partition=0)
    finally:
        await producer.stop()
    tp = TopicPartition(ctx.topic, 0)
    async with Admin(ctx) as admin:
        expect_equal(await admin.delete_records({tp: RecordsToDelete(4)}), {tp: 4},
                     "low watermark")
    consumer = await lookup_consumer(ctx)
    try:
        expect_equal(await consumer.beginning_offsets([tp]), {tp: 4}, "earliest offset")
    finally:
        await consumer.stop()
    expect_partition_log(await read_partitions(ctx, ctx.topic, [0], 6), 0, sent[4:],
                         "after delete", first_offset=4)


async def large_messages(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 1)
    large = Message(b"large", large_value(900_000), (("client", CLIENT.encode()),), T0_MS)
    # The client's own limit is raised above 2,000,000 so the broker is the one refusing.
    producer = await started_producer(ctx, max_request_size=3_000_000)
    try:
        await produce(producer, ctx.topic, [large], partition=0)
        try:
            await produce(producer, ctx.topic, [Message(None, large_value(2_000_000), (), T0_MS)],
                          partition=0)
            fail("a 2,000,000-byte value was accepted")
        except MessageSizeTooLargeError:
            pass
    finally:
        await producer.stop()
    records = await read_partitions(ctx, ctx.topic, [0], 1, max_partition_fetch_bytes=2_000_000)
    expect_partition_log(records, 0, [large], "900,000-byte value")


async def unknown_topic(ctx: Context) -> None:
    missing = f"{ctx.topic}-missing"
    async with Admin(ctx) as admin:
        # aiokafka's describe_topics asks Metadata with auto-creation allowed (it would
        # create the topic on either broker): DescribeConfigs is its way to describe one.
        expect_equal(await topic_config_error(admin, missing), UNKNOWN_TOPIC_OR_PARTITION,
                     "DescribeConfigs error code")
        expect(missing not in await admin.list_topics(), "describing the topic created it")
    # aiokafka logs the broker's INVALID_TOPIC_EXCEPTION from Metadata, keeps asking until
    # request_timeout_ms, then raises UnknownTopicOrPartitionError.
    metadata_errors = CapturedLog("aiokafka.cluster")
    producer = await started_producer(ctx, request_timeout_ms=5_000)
    try:
        await produce(producer, "bad topic!", [Message(None, b"v", (), T0_MS)])
        fail("producing to 'bad topic!' succeeded")
    except UnknownTopicOrPartitionError:
        expect("'bad topic!' is not a valid topic name" in metadata_errors.messages,
               f"no INVALID_TOPIC_EXCEPTION from Metadata; aiokafka logged "
               f"{metadata_errors.messages[:3]}")
    finally:
        await producer.stop()


class CapturedLog(logging.Handler):
    """Collects the messages of one logger from now on."""

    def __init__(self, logger_name: str) -> None:
        super().__init__()
        self.messages: list[str] = []
        logging.getLogger(logger_name).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class GroupMember:
    """A subscribed consumer polled by its own task."""

    def __init__(self, ctx: Context, topic: str, group: str) -> None:
        self.records: list[Record] = []
        self.error: BaseException | None = None
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=ctx.bootstrap, group_id=group, auto_offset_reset="earliest",
            enable_auto_commit=True, auto_commit_interval_ms=500,
            request_timeout_ms=REQUEST_TIMEOUT_MS)
        self._topic = topic
        self._task: asyncio.Task | None = None

    async def start(self) -> "GroupMember":
        await self.consumer.start()
        self.consumer.subscribe([self._topic])
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            while True:
                for batch in (await self.consumer.getmany(timeout_ms=100)).values():
                    self.records.extend(as_record(r) for r in batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported by the scenario through .error
            self.error = exc

    @property
    def assignment(self) -> frozenset[int]:
        if self.error is not None:
            fail(f"group member failed: {type(self.error).__name__}: {self.error}")
        return frozenset(tp.partition for tp in self.consumer.assignment())

    async def close(self) -> None:
        """Stops polling, commits the consumed positions, leaves the group."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            await self.consumer.stop()


def balanced(members: list[GroupMember], partitions: int) -> bool:
    return covers_once([m.assignment for m in members], partitions)


async def consumer_group(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 6)
    members = [GroupMember(ctx, ctx.topic, f"{ctx.topic}-group") for _ in range(3)]
    try:
        for member in members:
            await member.start()
        await wait_until(lambda: balanced(members, 6), READ_TIMEOUT_S,
                         "3 members never shared the 6 partitions")
        assignments = [m.assignment for m in members]
        sent = standard_messages(CLIENT, 3000)
        producer = await started_producer(ctx)
        try:
            placed = await produce(producer, ctx.topic, sent)
        finally:
            await producer.stop()
        await wait_until(lambda: balanced(members, 6)
                         and sum(len(m.records) for m in members) >= 3000,
                         READ_TIMEOUT_S, "the group did not read 3,000 messages")
        await asyncio.sleep(0.5)  # any duplicate would arrive now
        expect_equal([m.assignment for m in members], assignments, "assignments while reading")
    finally:
        for member in members:
            await member.close()
    expect_own_partitions([m.records for m in members], assignments)
    expect_placed([r for m in members for r in m.records], placed, sent, "group")


async def commits_rebalance(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 3)
    group = f"{ctx.topic}-group"
    partitions = [TopicPartition(ctx.topic, p) for p in range(3)]
    producer = await started_producer(ctx)
    try:
        for partition in range(3):
            await produce(producer, ctx.topic,
                          standard_messages(CLIENT, 100, start=partition * 100),
                          partition=partition)

        # 1. A member reads everything, commits offset 60 everywhere, closes.
        first = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False)
        await first.start()
        try:
            first.subscribe([ctx.topic])
            seen = 0
            deadline = time.monotonic() + READ_TIMEOUT_S
            while seen < 300 and time.monotonic() < deadline:
                seen += sum(map(len, (await first.getmany(timeout_ms=200)).values()))
            expect_equal(seen, 300, "first member read")
            await first.commit({tp: 60 for tp in partitions})
            expect_equal([await first.committed(tp) for tp in partitions], [60, 60, 60],
                         "committed")
        finally:
            await first.stop()

        # 2. A new member resumes from the committed offsets.
        second = await GroupMember(ctx, ctx.topic, group).start()
        third = GroupMember(ctx, ctx.topic, group)
        try:
            await wait_until(lambda: len(second.records) >= 120, READ_TIMEOUT_S,
                             "the second member did not read 120 messages")
            await asyncio.sleep(0.5)
            for partition in range(3):
                expect_partition_log(second.records, partition,
                                     standard_messages(CLIENT, 40, start=partition * 100 + 60),
                                     "resumed", first_offset=60)
            # 3. A third joins, the two share; the second leaves, the third takes over.
            await third.start()
            await wait_until(lambda: balanced([second, third], 3), READ_TIMEOUT_S,
                             "two members never shared the 3 partitions")
            await second.close()
            await wait_until(lambda: third.assignment == frozenset(range(3)), READ_TIMEOUT_S,
                             "the remaining member did not take over every partition")
            for partition in range(3):
                await produce(producer, ctx.topic,
                              standard_messages(CLIENT, 30, start=300 + partition * 30),
                              partition=partition)
            await wait_until(lambda: len(third.records) >= 90, READ_TIMEOUT_S,
                             "the remaining member did not read the 90 new messages")
            await asyncio.sleep(0.5)
        finally:
            await second.close()
            await third.close()
    finally:
        await producer.stop()
    for partition in range(3):
        expect_partition_log(third.records, partition,
                             standard_messages(CLIENT, 30, start=300 + partition * 30),
                             "taken over", first_offset=100)
    check = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=group,
                             enable_auto_commit=False)
    await check.start()
    try:
        expect_equal([await check.committed(tp) for tp in partitions], [130, 130, 130],
                     "committed after close")
    finally:
        await check.stop()


async def transactions(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 1)
    committed = standard_messages(CLIENT, 10)
    aborted = standard_messages(CLIENT, 10, start=10)
    producer = await started_producer(ctx, transactional_id=f"{ctx.topic}-tx")
    try:
        await producer.begin_transaction()
        await produce(producer, ctx.topic, committed, partition=0)
        await producer.commit_transaction()
        await producer.begin_transaction()
        await produce(producer, ctx.topic, aborted, partition=0)
        await producer.abort_transaction()
    finally:
        await producer.stop()
    expect_transaction_reads(
        await read_partitions(ctx, ctx.topic, [0], 10, isolation_level="read_committed"),
        await read_partitions(ctx, ctx.topic, [0], 20, isolation_level="read_uncommitted"),
        committed, aborted)


async def cross_produce(ctx: Context) -> None:
    await create_topic(ctx, ctx.topic, 1)
    producer = await started_producer(ctx)
    try:
        await produce(producer, ctx.topic, standard_messages(CLIENT, 100), partition=0)
    finally:
        await producer.stop()


async def cross_consume(ctx: Context) -> None:
    expect_cross_consumed(ctx, await read_partitions(ctx, ctx.topic, [0], 100))


def synchronous(scenario: Callable[[Context], Awaitable[None]]) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        asyncio.run(scenario(ctx))
    return run


SCENARIOS = {name: synchronous(scenario) for name, scenario in (
    ("metadata", metadata), ("topic_admin", topic_admin), ("produce_consume", produce_consume),
    ("compression", compression), ("acks", acks), ("idempotent", idempotent),
    ("list_offsets", list_offsets), ("delete_records", delete_records),
    ("large_messages", large_messages), ("unknown_topic", unknown_topic),
    ("consumer_group", consumer_group), ("commits_rebalance", commits_rebalance),
    ("transactions", transactions), ("cross_produce", cross_produce),
    ("cross_consume", cross_consume),
)}

if __name__ == "__main__":
    run_main(CLIENT, SCENARIOS, lambda: f"aiokafka {aiokafka.__version__}")
