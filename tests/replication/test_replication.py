"""Replication between in-process brokers under a fixed assignment: followers copy the
leader byte for byte, the high watermark waits for the ISR, acks=all waits for it, the
ISR shrinks and expands, and a leader change truncates the old leader's divergent tail."""
from __future__ import annotations

import trio

from broker.broker import Broker
from broker.config import load_broker_config
from broker.replication import PartitionState
from broker.server import serve
from tests.replication.conftest import SETTINGS, Client, log_bytes, wait_until
from wire.api_keys import ApiKey
from wire.errors import ErrorCode
from wire.records import decode_records, iter_batches

TOPIC = "replicated"


def values_in(broker, topic: str = TOPIC) -> list[bytes]:
    data = log_bytes(broker, topic)
    found = []
    for position, header in iter_batches(data):
        found.extend(record.value for record in decode_records(
            memoryview(data)[position:position + header.size]))
    return found


def in_sync(leader, follower, topic: str = TOPIC) -> bool:
    ours, theirs = leader.partition_log(topic, 0), follower.partition_log(topic, 0)
    return (ours.log_end_offset == theirs.log_end_offset
            and ours.high_watermark == theirs.high_watermark == ours.log_end_offset)


async def test_a_follower_replicates_what_the_leader_has(cluster_factory):
    cluster = cluster_factory()
    leader, follower = await cluster.start(1), await cluster.start(2)
    cluster.create_topic(TOPIC)
    await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1, 2])
    client = await cluster.client(1)
    offsets = []
    for round_ in range(3):
        answer = await client.produce(TOPIC, [b"v%d-%d" % (round_, i) for i in range(4)])
        assert answer.error_code == ErrorCode.NONE
        offsets.append(answer.base_offset)
    assert offsets == [0, 4, 8]
    # acks=all answered: the follower has everything, and the leader's high watermark says so.
    assert leader.partition_log(TOPIC, 0).high_watermark == 12
    await wait_until(lambda: in_sync(leader, follower), what="the follower's high watermark")
    assert log_bytes(follower, TOPIC) == log_bytes(leader, TOPIC)
    assert follower.partition_log(TOPIC, 0).leader_epoch_entries() == [(1, 0)]
    assert leader.partition_log(TOPIC, 0).leader_epoch_entries() == [(1, 0)]
    assert values_in(follower) == [b"v%d-%d" % (r, i) for r in range(3) for i in range(4)]
    consumed = await client.fetch(TOPIC, 0, leader_epoch=1)
    assert consumed.error_code == ErrorCode.NONE and consumed.high_watermark == 12
    assert bytes(consumed.records) == log_bytes(leader, TOPIC)


async def test_three_brokers_all_replicate(cluster_factory):
    cluster = cluster_factory()
    brokers = [await cluster.start(node) for node in (1, 2, 3)]
    cluster.create_topic(TOPIC, {"min.insync.replicas": "3"})
    await cluster.assign(TOPIC, [2, 3, 1], leader=2, leader_epoch=5, isr=[2, 3, 1])
    client = await cluster.client(2)
    for round_ in range(5):
        answer = await client.produce(TOPIC, [b"r%d" % round_] * 3)
        assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 3 * round_)
    for broker in brokers:
        await wait_until(lambda: in_sync(brokers[1], broker), what="all three in sync")
        assert log_bytes(broker, TOPIC) == log_bytes(brokers[1], TOPIC)
        assert broker.partition_log(TOPIC, 0).leader_epoch_entries() == [(5, 0)]


async def test_high_watermark_and_acks_all_wait_for_the_isr(cluster_factory):
    cluster = cluster_factory()
    leader, follower = await cluster.start(1), await cluster.start(2)
    cluster.create_topic(TOPIC)
    # The follower is in the ISR but not fetching yet: the leader does not know it has
    # anything, so nothing is committed.
    await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1, 2], to=[1])
    client = await cluster.client(1)
    answer = await client.produce(TOPIC, [b"a", b"b"], acks=1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 0)
    leader_log = leader.partition_log(TOPIC, 0)
    assert (leader_log.log_end_offset, leader_log.high_watermark) == (2, 0)
    consumed = await client.fetch(TOPIC, 0)
    assert (consumed.error_code, consumed.high_watermark, bytes(consumed.records or b"")) == \
        (ErrorCode.NONE, 0, b"")
    started = trio.current_time()
    answer = await client.produce(TOPIC, [b"c"], acks=-1, timeout_ms=300)
    # Kafka's DelayedProduce: appended, then timed out waiting for the ISR.
    assert (answer.error_code, answer.base_offset) == (ErrorCode.REQUEST_TIMED_OUT, 2)
    assert trio.current_time() - started >= 0.29
    assert leader_log.high_watermark == 0

    # The follower starts: the high watermark follows what it has, and acks=all answers.
    await cluster.apply(cluster.state(TOPIC), to=[2])
    answer = await client.produce(TOPIC, [b"d"], acks=-1, timeout_ms=10_000)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 3)
    assert leader_log.high_watermark == 4
    consumed = await client.fetch(TOPIC, 0)
    assert consumed.high_watermark == 4
    assert bytes(consumed.records) == log_bytes(leader, TOPIC)
    await wait_until(lambda: in_sync(leader, follower))
    assert values_in(follower) == [b"a", b"b", b"c", b"d"]


async def test_not_enough_replicas_below_min_insync(cluster_factory):
    cluster = cluster_factory()
    leader = await cluster.start(1)
    await cluster.start(2)
    cluster.create_topic(TOPIC, {"min.insync.replicas": "2"})
    await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1], to=[1])
    client = await cluster.client(1)
    answer = await client.produce(TOPIC, [b"x"], acks=-1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NOT_ENOUGH_REPLICAS, -1)
    assert leader.partition_log(TOPIC, 0).log_end_offset == 0  # refused before appending
    answer = await client.produce(TOPIC, [b"y"], acks=1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 0)


async def test_a_stopped_follower_leaves_the_isr_and_rejoins_when_caught_up(cluster_factory):
    cluster = cluster_factory(**{"replica.lag.time.max.ms": "400"})
    leader = await cluster.start(1)
    await cluster.start(2)
    cluster.create_topic(TOPIC)
    await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1, 2])
    client = await cluster.client(1)
    assert (await client.produce(TOPIC, [b"before"])).error_code == ErrorCode.NONE

    await cluster.stop(2)
    # A follower at the leader's log end is in sync however long it is silent (Kafka's
    # isCaughtUp); once the leader has more, it lags.
    answer = await client.produce(TOPIC, [b"while-away"], acks=1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 1)
    assert leader.partition_log(TOPIC, 0).high_watermark == 1
    await wait_until(lambda: cluster.state(TOPIC).isr == [1], what="the ISR shrink")
    assert leader.replicas.get(TOPIC, 0).isr == [1]
    assert leader.partition_log(TOPIC, 0).high_watermark == 2
    # min.insync.replicas=1: the leader alone acknowledges acks=all.
    answer = await client.produce(TOPIC, [b"while-away"] * 2, acks=-1, timeout_ms=5_000)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 2)
    assert leader.partition_log(TOPIC, 0).high_watermark == 4

    # Back, it follows the current state, catches up and is added to the ISR again.
    follower = await cluster.start(2)
    await cluster.apply(cluster.state(TOPIC), to=[2])
    await wait_until(lambda: cluster.state(TOPIC).isr == [1, 2], what="the ISR expansion")
    assert leader.replicas.get(TOPIC, 0).isr == [1, 2]
    await wait_until(lambda: in_sync(leader, follower))
    assert values_in(follower) == [b"before"] + [b"while-away"] * 3
    assert cluster.controller.isr_changes == [[1], [1, 2]]
    # With the follower back in the ISR, acks=all waits for it again.
    answer = await client.produce(TOPIC, [b"after"], acks=-1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 4)
    assert follower.partition_log(TOPIC, 0).log_end_offset == 5


async def test_a_leader_change_truncates_the_old_leaders_divergent_records(cluster_factory):
    cluster = cluster_factory()
    old, new = await cluster.start(1), await cluster.start(2)
    cluster.create_topic(TOPIC)
    await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1, 2])
    to_old, to_new = await cluster.client(1), await cluster.client(2)
    for value in (b"c0", b"c1"):
        assert (await to_old.produce(TOPIC, [value])).error_code == ErrorCode.NONE
    await wait_until(lambda: in_sync(old, new))

    # Broker 2 is elected (epoch 2) while broker 1 has not heard yet: it still takes
    # acks=1 writes in epoch 1, which nobody else will ever have.
    state = cluster.controller.set(PartitionState(TOPIC, 0, [1, 2], 2, 2, [1, 2], 0))
    await cluster.apply(state, to=[2])
    answer = await to_old.produce(TOPIC, [b"lost-1", b"lost-2"], acks=1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 2)
    answer = await to_old.produce(TOPIC, [b"lost-3"], acks=1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 4)
    answer = await to_new.produce(TOPIC, [b"n0"], acks=1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 2)
    assert old.partition_log(TOPIC, 0).log_end_offset == 5

    # Broker 1 learns it follows broker 2: it cuts its epoch-1 tail and copies epoch 2.
    await cluster.apply(state, to=[1])
    await wait_until(lambda: in_sync(new, old), what="the old leader following")
    assert log_bytes(old, TOPIC) == log_bytes(new, TOPIC)
    assert values_in(old) == [b"c0", b"c1", b"n0"]
    assert old.partition_log(TOPIC, 0).leader_epoch_entries() == [(1, 0), (2, 2)]
    answer = await to_new.produce(TOPIC, [b"n1"], acks=-1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 3)

    # Clients asking the wrong broker, or with the wrong epoch, are told so.
    answer = await to_old.produce(TOPIC, [b"refused"], acks=1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NOT_LEADER_OR_FOLLOWER, -1)
    assert (await to_old.fetch(TOPIC, 0)).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert (await to_new.fetch(TOPIC, 0, leader_epoch=1)).error_code == \
        ErrorCode.FENCED_LEADER_EPOCH
    assert (await to_new.fetch(TOPIC, 0, leader_epoch=3)).error_code == \
        ErrorCode.UNKNOWN_LEADER_EPOCH
    assert (await to_new.fetch(TOPIC, 0, leader_epoch=2)).error_code == ErrorCode.NONE
    listed = await to_old.call(ApiKey.LIST_OFFSETS, 7, {
        "replica_id": -1, "isolation_level": 0, "topics": [{"name": TOPIC, "partitions": [
            {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]})
    assert listed.topics[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    listed = await to_new.call(ApiKey.LIST_OFFSETS, 7, {
        "replica_id": -1, "isolation_level": 0, "topics": [{"name": TOPIC, "partitions": [
            {"partition_index": 0, "current_leader_epoch": 2, "timestamp": -1}]}]})
    answer = listed.topics[0].partitions[0]
    assert (answer.error_code, answer.offset, answer.leader_epoch) == (ErrorCode.NONE, 4, 2)
    epochs = await to_old.call(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {
        "replica_id": -1, "topics": [{"topic": TOPIC, "partitions": [
            {"partition": 0, "current_leader_epoch": 2, "leader_epoch": 1}]}]})
    assert epochs.topics[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    epochs = await to_new.call(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {
        "replica_id": -1, "topics": [{"topic": TOPIC, "partitions": [
            {"partition": 0, "current_leader_epoch": 2, "leader_epoch": 1}]}]})
    answer = epochs.topics[0].partitions[0]
    assert (answer.error_code, answer.leader_epoch, answer.end_offset) == (ErrorCode.NONE, 1, 2)
    deleted = await to_old.call(ApiKey.DELETE_RECORDS, 2, {
        "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "offset": 1}]}],
        "timeout_ms": 1000})
    assert deleted.topics[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


async def test_a_replica_fetch_from_a_non_replica_is_refused(cluster_factory):
    cluster = cluster_factory()
    await cluster.start(1)
    await cluster.start(2)
    cluster.create_topic(TOPIC)
    await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1, 2])
    client = await cluster.client(1)
    response = await client.call(ApiKey.FETCH, 12, {
        "replica_id": 7, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20,
        "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": TOPIC, "partitions": [
            {"partition": 0, "current_leader_epoch": 1, "fetch_offset": 0,
             "last_fetched_epoch": -1, "log_start_offset": 0, "partition_max_bytes": 1024}]}]})
    assert response.responses[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


async def test_isr_shrinking_below_min_insync_while_waiting(cluster_factory):
    cluster = cluster_factory(**{"replica.lag.time.max.ms": "300"})
    leader = await cluster.start(1)
    await cluster.start(2)
    cluster.create_topic(TOPIC, {"min.insync.replicas": "2"})
    await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1, 2])
    client = await cluster.client(1)
    assert (await client.produce(TOPIC, [b"both"])).error_code == ErrorCode.NONE
    await cluster.stop(2)
    # Appended with two in the ISR; the follower never takes it, the leader drops it
    # from the ISR, the high watermark passes the batch with one replica left: Kafka's
    # NOT_ENOUGH_REPLICAS_AFTER_APPEND.
    answer = await client.produce(TOPIC, [b"alone"], acks=-1, timeout_ms=10_000)
    assert (answer.error_code, answer.base_offset) == \
        (ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, 1)
    assert cluster.state(TOPIC).isr == [1]
    assert leader.partition_log(TOPIC, 0).high_watermark == 2
    answer = await client.produce(TOPIC, [b"refused"], acks=-1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NOT_ENOUGH_REPLICAS, -1)


async def test_failover_among_three_brokers(cluster_factory):
    cluster = cluster_factory()
    first = await cluster.start(1)
    second, third = await cluster.start(2), await cluster.start(3)
    cluster.create_topic(TOPIC, {"min.insync.replicas": "2"})
    await cluster.assign(TOPIC, [1, 2, 3], leader=1, leader_epoch=1, isr=[1, 2, 3])
    to_first = await cluster.client(1)
    for value in (b"e1-a", b"e1-b"):
        assert (await to_first.produce(TOPIC, [value])).error_code == ErrorCode.NONE

    # Broker 1 dies; the controller elects 2 from the ISR; 3 now follows 2.
    await cluster.stop(1)
    await cluster.assign(TOPIC, [1, 2, 3], leader=2, leader_epoch=2, isr=[2, 3])
    to_second = await cluster.client(2)
    answer = await to_second.produce(TOPIC, [b"e2-a"])
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 2)
    await wait_until(lambda: in_sync(second, third))
    assert log_bytes(third, TOPIC) == log_bytes(second, TOPIC)

    # Broker 1 comes back as a follower, catches up and rejoins the ISR.
    first = await cluster.start(1)
    await cluster.apply(cluster.state(TOPIC), to=[1])
    await wait_until(lambda: cluster.state(TOPIC).isr == [2, 3, 1], what="broker 1 rejoining")
    answer = await to_second.produce(TOPIC, [b"e2-b"])
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 3)
    for broker in (first, third):
        await wait_until(lambda: in_sync(second, broker))
        assert log_bytes(broker, TOPIC) == log_bytes(second, TOPIC)
        assert broker.partition_log(TOPIC, 0).leader_epoch_entries() == [(1, 0), (2, 2)]
    assert values_in(first) == [b"e1-a", b"e1-b", b"e2-a", b"e2-b"]


async def test_applying_an_unchanged_state_changes_nothing(cluster_factory):
    cluster = cluster_factory()
    leader, follower = await cluster.start(1), await cluster.start(2)
    cluster.create_topic(TOPIC)
    state = await cluster.assign(TOPIC, [1, 2], leader=1, leader_epoch=1, isr=[1, 2])
    client = await cluster.client(1)
    assert (await client.produce(TOPIC, [b"one"])).error_code == ErrorCode.NONE
    await wait_until(lambda: in_sync(leader, follower))
    progress = leader.replicas.get(TOPIC, 0).followers[2]
    fetch_state = follower.replicas._fetchers[1].partitions[(TOPIC, 0)]
    await cluster.apply(state)
    await cluster.apply(state)
    assert leader.replicas.get(TOPIC, 0).followers[2] is progress  # not reset
    assert follower.replicas._fetchers[1].partitions[(TOPIC, 0)] is fetch_state
    assert not fetch_state.truncating
    # A broker removed from the replicas stops following and serves nobody.
    removed = cluster.controller.set(PartitionState(TOPIC, 0, [1], 1, 1, [1], 0))
    await cluster.apply(removed)
    assert (TOPIC, 0) not in follower.replicas._fetchers[1].partitions
    assert leader.replicas.get(TOPIC, 0).followers == {}
    answer = await client.produce(TOPIC, [b"two"], acks=-1)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 1)
    to_follower = await cluster.client(2)
    assert (await to_follower.fetch(TOPIC, 0)).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


async def test_a_broker_alone_leads_everything_with_itself_as_the_isr(tmp_path):
    config = load_broker_config(None, {**SETTINGS, "node.id": "4",
                                       "log.dirs": str(tmp_path / "alone")})
    broker = Broker.open(config)
    broker.create_topic(TOPIC, 1, {})
    broker.create_topic("strict", 1, {"min.insync.replicas": "2"})
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, broker)
        client = Client(await trio.open_tcp_stream(*address))
        partition = broker.replicas.get(TOPIC, 0)
        assert (partition.is_leader, partition.isr, partition.leader_epoch) == (True, [4], 0)
        answer = await client.produce(TOPIC, [b"x", b"y"], acks=-1, timeout_ms=0)
        assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 0)
        assert broker.partition_log(TOPIC, 0).high_watermark == 2
        answer = await client.produce("strict", [b"x"], acks=-1)
        assert (answer.error_code, answer.base_offset) == (ErrorCode.NOT_ENOUGH_REPLICAS, -1)
        response = await client.call(ApiKey.FETCH, 12, {
            "replica_id": 5, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": TOPIC, "partitions": [
                {"partition": 0, "current_leader_epoch": 0, "fetch_offset": 0,
                 "last_fetched_epoch": -1, "log_start_offset": 0,
                 "partition_max_bytes": 1024}]}]})
        assert response.responses[0].partitions[0].error_code == \
            ErrorCode.NOT_LEADER_OR_FOLLOWER
        broker.delete_topic(TOPIC)
        assert broker.replicas.get(TOPIC, 0) is None
        await client.stream.aclose()
        nursery.cancel_scope.cancel()
    broker.close()


async def test_a_clustered_broker_leads_nothing_until_told(tmp_path):
    config = load_broker_config(None, {**SETTINGS, "node.id": "1",
                                       "zookeeper.connect": "127.0.0.1:2181",
                                       "log.dirs": str(tmp_path / "clustered")})
    broker = Broker.open(config)
    try:
        broker.create_topic(TOPIC, 1, {})
        assert broker.replicas.get(TOPIC, 0) is None
        assert broker.partition_leader_epoch(TOPIC, 0) == -1
        changes = []

        async def alter_isr(state, new_isr):
            changes.append(new_isr)
            return None

        broker.replicas.connect(lambda node: None, alter_isr)
        await broker.replicas.apply([PartitionState(TOPIC, 0, [1], 1, 3, [1], 7)])
        partition = broker.replicas.get(TOPIC, 0)
        assert (partition.is_leader, partition.leader_epoch, partition.isr) == (True, 3, [1])
        assert broker.partition_leader_epoch(TOPIC, 0) == 3
    finally:
        broker.close()
