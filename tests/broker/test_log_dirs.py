"""AlterReplicaLogDirs and DescribeLogDirs on a broker with two log dirs: Kafka's error
codes, a replica moved while it is written to (every batch, its offsets and its producer
state arrive), a copy that starts over when the replica's log is truncated under it, and
what a restart finds after an interrupted move."""
from __future__ import annotations

from pathlib import Path

import pytest
import trio

from broker import log_dirs
from broker.broker import Broker
from broker.config import load_broker_config
from broker.server import serve
from tests.broker.conftest import BROKER_SETTINGS, Client
from tests.broker.test_handlers import create_topic, fetch, produce, records
from wire.api_keys import ApiKey
from wire.errors import ErrorCode
from wire.records import decode_records

WAIT_S = 30


def open_broker(base: Path) -> Broker:
    config = load_broker_config(None, {**BROKER_SETTINGS, "num.partitions": "1",
                                       "log.dirs": f"{base / 'a'},{base / 'b'}"})
    return Broker.open(config)


@pytest.fixture
async def served(tmp_path):
    """(broker, client) of a broker with log dirs a and b."""
    broker = open_broker(tmp_path)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, broker)
        stream = await trio.open_tcp_stream(*address)
        yield broker, Client(stream)
        await stream.aclose()
        nursery.cancel_scope.cancel()
    broker.close()


def dir_path(broker: Broker, index: int) -> str:
    return str(broker.log_managers[index].log_dir.resolve())


async def alter(client: Client, moves: dict[str, dict[str, list[int]]], version: int = 2):
    response = await client.call(ApiKey.ALTER_REPLICA_LOG_DIRS, version, {"dirs": [
        {"path": path, "topics": [{"name": name, "partitions": partitions}
                                  for name, partitions in topics.items()]}
        for path, topics in moves.items()]})
    return {(topic.topic_name, p.partition_index): p.error_code
            for topic in response.results for p in topic.partitions}


async def described(client: Client, version: int = 4):
    """{log dir: [(topic, partition, is_future)]} from DescribeLogDirs."""
    response = await client.call(ApiKey.DESCRIBE_LOG_DIRS, version, {"topics": None})
    return {result.log_dir: sorted((t.name, p.partition_index, p.is_future_key)
                                   for t in result.topics for p in t.partitions)
            for result in response.results}


def home_of(broker: Broker, topic: str) -> int:
    return next(i for i, manager in enumerate(broker.log_managers) if manager.get(topic, 0))


async def wait_moved(broker: Broker, topic: str, index: int) -> None:
    with trio.fail_after(WAIT_S):
        while broker.log_managers[index].get(topic, 0) is None or broker.mover.futures():
            await trio.sleep(0.01)


async def values(client: Client, topic: str) -> list[bytes]:
    found, offset = [], 0
    while True:
        partition = (await fetch(client, topic, 0, offset)).responses[0].partitions[0]
        assert partition.error_code == ErrorCode.NONE
        batch = bytes(partition.records)
        if not batch:
            return found
        for record in decode_records(batch[:12 + int.from_bytes(batch[8:12], "big")]):
            found.append(record.value)
            offset = record.offset + 1


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_errors_as_kafka_answers_them(served, version):
    broker, client = served
    await create_topic(client, "t")
    here, other = home_of(broker, "t"), 1 - home_of(broker, "t")
    assert await alter(client, {
        "/no/such/dir": {"t": [0]},
        dir_path(broker, here): {"nope": [0], "t": [7]},
    }, version) == {("t", 0): ErrorCode.LOG_DIR_NOT_FOUND,
                    ("nope", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                    ("t", 7): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    # To the dir it is in: nothing to do.
    assert await alter(client, {dir_path(broker, here): {"t": [0]}}, version) == {
        ("t", 0): ErrorCode.NONE}
    assert broker.mover.futures() == {}
    assert (await described(client))[dir_path(broker, other)] == []


async def test_a_replica_moves_while_it_is_written_and_keeps_its_producer_state(served):
    broker, client = served
    await create_topic(client, "moved")
    here, there = home_of(broker, "moved"), 1 - home_of(broker, "moved")
    idempotent = {"producer_id": 7, "producer_epoch": 0}
    first = records(*[b"%d" % i for i in range(50)], base_sequence=0, **idempotent)
    assert (await produce(client, "moved", 0, first)).base_offset == 0
    for start in range(50, 2000, 50):
        batch = records(*[b"%d" % i for i in range(start, start + 50)])
        assert (await produce(client, "moved", 0, batch)).error_code == ErrorCode.NONE
    log_dirs_copy_chunk = log_dirs.COPY_CHUNK_BYTES
    log_dirs.COPY_CHUNK_BYTES = 4096  # many rounds: the writes below land during the copy
    try:
        assert await alter(client, {dir_path(broker, there): {"moved": [0]}}) == {
            ("moved", 0): ErrorCode.NONE}
        assert (await described(client))[dir_path(broker, there)] == [("moved", 0, True)]
        for start in range(2000, 2500, 50):
            batch = records(*[b"%d" % i for i in range(start, start + 50)])
            assert (await produce(client, "moved", 0, batch)).error_code == ErrorCode.NONE
        await wait_moved(broker, "moved", there)
    finally:
        log_dirs.COPY_CHUNK_BYTES = log_dirs_copy_chunk
    assert await described(client) == {dir_path(broker, here): [],
                                       dir_path(broker, there): [("moved", 0, False)]}
    assert not (broker.log_managers[here].log_dir / "moved-0").exists()
    assert await values(client, "moved") == [b"%d" % i for i in range(2500)]
    # The producer's state came along: a retry of its first batch is answered as a
    # duplicate (the original offset), and its next sequence is taken.
    assert (await produce(client, "moved", 0, first)).base_offset == 0
    nxt = records(b"next", base_sequence=50, **idempotent)
    assert (await produce(client, "moved", 0, nxt)).base_offset == 2500


async def test_a_copy_starts_over_when_the_replica_is_truncated_under_it(served, monkeypatch):
    broker, client = served
    await create_topic(client, "cut")
    there = 1 - home_of(broker, "cut")
    for value in (b"a", b"b", b"c"):
        assert (await produce(client, "cut", 0, records(value))).error_code == ErrorCode.NONE
    copy_chunk = log_dirs._copy_chunk
    truncated = []

    def copy_then_truncate(source, future):
        copied = copy_chunk(source, future)
        if not truncated:  # the copy has all three; the replica loses the last two
            truncated.append(source.truncate_to(1, now_ms=0))
        return copied

    monkeypatch.setattr(log_dirs, "_copy_chunk", copy_then_truncate)
    assert await alter(client, {dir_path(broker, there): {"cut": [0]}}) == {
        ("cut", 0): ErrorCode.NONE}
    await wait_moved(broker, "cut", there)
    assert truncated == [True]
    moved = broker.log_managers[there].get("cut", 0)
    assert moved.log_end_offset == 1
    assert await values(client, "cut") == [b"a"]


async def test_alter_back_calls_the_move_off(served, monkeypatch):
    broker, client = served
    await create_topic(client, "stays")
    here, there = home_of(broker, "stays"), 1 - home_of(broker, "stays")
    assert (await produce(client, "stays", 0, records(b"x"))).error_code == ErrorCode.NONE
    monkeypatch.setattr(log_dirs, "_copy_chunk", lambda source, future: 0)  # never done
    assert await alter(client, {dir_path(broker, there): {"stays": [0]}}) == {
        ("stays", 0): ErrorCode.NONE}
    future_dir = broker.mover.futures()[("stays", 0)].future.directory
    assert future_dir.name.startswith("stays-0.") and future_dir.name.endswith("-future")
    assert await alter(client, {dir_path(broker, here): {"stays": [0]}}) == {
        ("stays", 0): ErrorCode.NONE}
    assert broker.mover.futures() == {}
    assert not future_dir.exists()
    assert await values(client, "stays") == [b"x"]


async def test_a_replica_not_hosted_yet_is_created_in_the_dir_named_for_it(served):
    broker, client = served
    for index in (0, 1):  # whichever dir would be the least loaded, b is named
        await create_topic(client, f"filler-{index}")
    assert await alter(client, {dir_path(broker, 1): {"later": [0]}}) == {
        ("later", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    await create_topic(client, "later")
    assert broker.log_managers[1].get("later", 0) is not None


def test_a_restart_removes_an_unfinished_copy_and_a_duplicate(tmp_path):
    broker = open_broker(tmp_path)
    topic = broker.create_topic("t", 1, {})
    a, b = broker.log_managers
    original = broker.partition_log("t", 0)
    original.append(records(b"1", b"2"), leader_epoch=0, now_ms=1_700_000_000_000)
    home = a if a.get("t", 0) is original else b
    other = b if home is a else a
    future = other.create_future("t", 0, original.config, topic.topic_id, start_offset=0,
                                 now_ms=0)
    broker.close()
    reopened = open_broker(tmp_path)
    assert not future.directory.exists()
    assert [manager.get("t", 0) is not None for manager in reopened.log_managers] == [
        manager is home for manager in (a, b)]
    reopened.close()

    # Stopped between the two steps of a switch: the copy in place, the original not yet
    # deleted; the copy that reaches further stays.
    stale = other.log_dir / "t-0"
    stale.mkdir()
    reopened = open_broker(tmp_path)
    assert [manager.get("t", 0) is not None for manager in reopened.log_managers] == [
        manager is home for manager in (a, b)]
    assert reopened.partition_log("t", 0).log_end_offset == 2
    assert not stale.exists()
    reopened.close()


async def test_a_copy_that_fails_leaves_the_replica_where_it_is(served, monkeypatch):
    broker, client = served
    await create_topic(client, "full")
    here, there = home_of(broker, "full"), 1 - home_of(broker, "full")
    assert (await produce(client, "full", 0, records(b"kept"))).error_code == ErrorCode.NONE

    def disk_full(source, future):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log_dirs, "_copy_chunk", disk_full)
    assert await alter(client, {dir_path(broker, there): {"full": [0]}}) == {
        ("full", 0): ErrorCode.NONE}
    with trio.fail_after(WAIT_S):
        while broker.mover.futures():
            await trio.sleep(0.01)
    assert await described(client) == {dir_path(broker, here): [("full", 0, False)],
                                       dir_path(broker, there): []}
    assert [p.name for p in broker.log_managers[there].log_dir.iterdir() if p.is_dir()] == []
    assert await values(client, "full") == [b"kept"]
