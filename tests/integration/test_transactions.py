"""Transactions against a real broker: what was committed is read once, what was aborted
never by a read_committed consumer (kafka-python, confluent-kafka, aiokafka), zombies
are fenced, open transactions time out, a kill -9 never shows a partial transaction, and
a consume-transform-produce loop killed midway writes every message exactly once."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

READ_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 20.0
TRANSFORM_MESSAGES = 10_000
TRANSFORM_SCRIPT = Path(__file__).with_name("transform_loop.py")


def create_topic(address: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": address})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    assert futures[name].result(timeout=15) is None


def transactional_producer(address: str, transactional_id: str, **config) -> Producer:
    producer = Producer({"bootstrap.servers": address, "transactional.id": transactional_id,
                         "linger.ms": 0, **config})
    producer.init_transactions(CLIENT_TIMEOUT_S)
    return producer


def plain_producer(address: str) -> Producer:
    return Producer({"bootstrap.servers": address, "acks": "all", "linger.ms": 0})


def send_transaction(producer: Producer, topic: str, values: list[str], *, commit: bool,
                     partition: int = 0) -> None:
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, value.encode(), partition=partition)
    producer.flush(CLIENT_TIMEOUT_S)
    if commit:
        producer.commit_transaction(CLIENT_TIMEOUT_S)
    else:
        producer.abort_transaction(CLIENT_TIMEOUT_S)


def send_plain(address: str, topic: str, values: list[str], partition: int = 0) -> None:
    producer = plain_producer(address)
    for value in values:
        producer.produce(topic, value.encode(), partition=partition)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0


# -- the three consumers: every value of `topic` partition 0 up to its end ------------------

def read_confluent(address: str, topic: str, isolation: str, expected: int) -> list[str]:
    consumer = Consumer({"bootstrap.servers": address, "group.id": f"read-{topic}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values: list[str] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(values) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is None:
                    values.append(message.value().decode())
        # Nothing more than expected arrives in a further poll.
        values += [m.value().decode() for m in consumer.consume(num_messages=1000, timeout=1.0)
                   if m.error() is None]
        return values
    finally:
        consumer.close()


def read_kafka_python(address: str, topic: str, isolation: str, expected: int) -> list[str]:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    consumer = KafkaConsumer(bootstrap_servers=address, isolation_level=isolation,
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        partition = KafkaTopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        values: list[str] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values += [record.value.decode() for record in records]
        for records in consumer.poll(timeout_ms=1000).values():
            values += [record.value.decode() for record in records]
        return values
    finally:
        consumer.close()


def read_aiokafka(address: str, topic: str, isolation: str, expected: int) -> list[str]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    async def read() -> list[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=address, isolation_level=isolation,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            partition = AioTopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            values: list[str] = []
            deadline = time.monotonic() + READ_TIMEOUT_S
            while len(values) < expected and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [record.value.decode() for record in records]
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                values += [record.value.decode() for record in records]
            return values
        finally:
            await consumer.stop()

    return asyncio.run(read())


READERS = {"confluent-kafka": read_confluent, "kafka-python": read_kafka_python,
           "aiokafka": read_aiokafka}


@pytest.fixture
def txn_broker(gregor_factory):
    return gregor_factory({"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"})


# -- committed and aborted ---------------------------------------------------------------

@pytest.mark.parametrize("client", sorted(READERS))
def test_read_committed_sees_committed_only_read_uncommitted_sees_all(txn_broker, client):
    address = txn_broker.address
    create_topic(address, "txn", 1)
    producer = transactional_producer(address, "txn-visibility")
    send_transaction(producer, "txn", ["c1", "c2", "c3"], commit=True)
    send_transaction(producer, "txn", ["a1", "a2"], commit=False)
    send_plain(address, "txn", ["plain"])
    send_transaction(producer, "txn", ["c4"], commit=True)
    read = READERS[client]
    assert read(address, "txn", "read_committed", 5) == ["c1", "c2", "c3", "plain", "c4"]
    assert read(address, "txn", "read_uncommitted", 7) == [
        "c1", "c2", "c3", "a1", "a2", "plain", "c4"]


def test_an_open_transaction_holds_read_committed_back(txn_broker):
    address = txn_broker.address
    create_topic(address, "open", 1)
    send_plain(address, "open", ["before"])
    producer = transactional_producer(address, "txn-open")
    producer.begin_transaction()
    producer.produce("open", b"pending", partition=0)
    producer.flush(CLIENT_TIMEOUT_S)
    send_plain(address, "open", ["after"])
    # The last stable offset is the open transaction's first offset.
    assert read_confluent(address, "open", "read_committed", 1) == ["before"]
    assert read_confluent(address, "open", "read_uncommitted", 3) == [
        "before", "pending", "after"]
    producer.commit_transaction(CLIENT_TIMEOUT_S)
    assert read_confluent(address, "open", "read_committed", 3) == [
        "before", "pending", "after"]


def test_offsets_of_an_aborted_transaction_are_never_committed(txn_broker):
    address = txn_broker.address
    create_topic(address, "source", 1)
    create_topic(address, "sink", 1)
    group_consumer = Consumer({"bootstrap.servers": address, "group.id": "txn-offsets",
                               "enable.auto.commit": False})
    try:
        metadata = group_consumer.consumer_group_metadata()
        producer = transactional_producer(address, "txn-offsets")
        for offset, commit in ((10, True), (20, False)):
            producer.begin_transaction()
            producer.produce("sink", f"at-{offset}".encode(), partition=0)
            producer.send_offsets_to_transaction([TopicPartition("source", 0, offset)],
                                                 metadata, CLIENT_TIMEOUT_S)
            if commit:
                producer.commit_transaction(CLIENT_TIMEOUT_S)
            else:
                producer.abort_transaction(CLIENT_TIMEOUT_S)
        committed = group_consumer.committed([TopicPartition("source", 0)],
                                             timeout=CLIENT_TIMEOUT_S)
        assert [(tp.topic, tp.partition, tp.offset) for tp in committed] == [("source", 0, 10)]
    finally:
        group_consumer.close()
    assert read_confluent(address, "sink", "read_committed", 1) == ["at-10"]


# -- fencing and timeouts -----------------------------------------------------------------

def test_a_zombie_producer_is_fenced_and_its_transaction_aborted(txn_broker):
    address = txn_broker.address
    create_topic(address, "zombie", 1)
    zombie = transactional_producer(address, "txn-zombie")
    zombie.begin_transaction()
    zombie.produce("zombie", b"from-zombie", partition=0)
    zombie.flush(CLIENT_TIMEOUT_S)
    successor = transactional_producer(address, "txn-zombie")  # bumps the epoch
    with pytest.raises(KafkaException) as refused:
        zombie.commit_transaction(CLIENT_TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError._FENCED
    send_transaction(successor, "zombie", ["from-successor"], commit=True)
    assert read_confluent(address, "zombie", "read_committed", 1) == ["from-successor"]


def test_a_transaction_left_open_past_its_timeout_is_aborted_by_the_broker(txn_broker):
    address = txn_broker.address
    create_topic(address, "timeout", 1)
    producer = transactional_producer(address, "txn-timeout", **{"transaction.timeout.ms": 1000})
    producer.begin_transaction()
    producer.produce("timeout", b"abandoned", partition=0)
    producer.flush(CLIENT_TIMEOUT_S)
    send_plain(address, "timeout", ["later"])
    # Only the broker's abort moves the last stable offset past the abandoned write.
    assert read_confluent(address, "timeout", "read_committed", 1) == ["later"]
    with pytest.raises(KafkaException):
        producer.commit_transaction(CLIENT_TIMEOUT_S)


def test_kill_9_mid_transaction_never_shows_a_partial_transaction(gregor_factory):
    broker = gregor_factory(
        {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"})
    address = broker.address
    create_topic(address, "crash", 1)
    committed = transactional_producer(address, "txn-committed")
    send_transaction(committed, "crash", ["kept-1", "kept-2"], commit=True)
    open_producer = transactional_producer(address, "txn-crash",
                                           **{"transaction.timeout.ms": 2000})
    open_producer.begin_transaction()
    for index in range(50):
        open_producer.produce("crash", f"partial-{index}".encode(), partition=0)
    open_producer.flush(CLIENT_TIMEOUT_S)
    broker.kill()
    broker.restart()
    address = broker.address
    send_plain(address, "crash", ["after-restart"])
    # The reloaded coordinator aborts the open transaction when its timeout passes.
    assert read_confluent(address, "crash", "read_committed", 3) == [
        "kept-1", "kept-2", "after-restart"]
    uncommitted = read_confluent(address, "crash", "read_uncommitted", 53)
    assert uncommitted == (["kept-1", "kept-2"] + [f"partial-{i}" for i in range(50)]
                           + ["after-restart"])


def test_a_transaction_open_across_a_broker_restart_commits_after_it(gregor_factory):
    broker = gregor_factory()
    address = broker.address
    create_topic(address, "restart", 1)
    producer = transactional_producer(address, "txn-restart")
    producer.begin_transaction()
    producer.produce("restart", b"before-restart", partition=0)
    producer.flush(CLIENT_TIMEOUT_S)
    broker.restart()
    assert broker.address == address, "the broker came back on another port"
    # The coordinator reloaded the open transaction from __transaction_state and the
    # partition its producer state: the producer carries on and commits.
    producer.produce("restart", b"after-restart", partition=0)
    producer.commit_transaction(CLIENT_TIMEOUT_S)
    assert read_confluent(address, "restart", "read_committed", 2) == [
        "before-restart", "after-restart"]


# -- admin: DescribeTransactions, ListTransactions, DescribeProducers ----------------------

def test_admin_lists_and_describes_transactions_and_producers(txn_broker):
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KafkaTopicPartition
    from kafka.admin._transactions import (
        ProducerState,
        TransactionDescription,
        TransactionListing,
        TransactionState,
    )

    address = txn_broker.address
    create_topic(address, "admin-txn", 2)
    producer = transactional_producer(address, "txn-admin",
                                      **{"transaction.timeout.ms": 60000})
    producer.begin_transaction()
    producer.produce("admin-txn", b"p0-first", partition=0)
    producer.produce("admin-txn", b"p0-second", partition=0)
    producer.produce("admin-txn", b"p1", partition=1)
    producer.flush(CLIENT_TIMEOUT_S)
    admin = KafkaAdminClient(bootstrap_servers=address)
    try:
        ongoing = admin.describe_transactions(["txn-admin"])["txn-admin"]
        producer_id = ongoing.producer_id
        assert ongoing.transaction_start_time_ms > 0
        assert ongoing._replace(transaction_start_time_ms=0) == TransactionDescription(
            coordinator_id=txn_broker.node_id, state=TransactionState.ONGOING,
            producer_id=producer_id, producer_epoch=0, transaction_timeout_ms=60000,
            transaction_start_time_ms=0,
            topic_partitions={KafkaTopicPartition("admin-txn", 0),
                              KafkaTopicPartition("admin-txn", 1)})
        assert admin.list_transactions() == {txn_broker.node_id: [
            TransactionListing("txn-admin", producer_id, TransactionState.ONGOING)]}
        partition_0 = KafkaTopicPartition("admin-txn", 0)
        (open_state,) = admin.describe_producers([partition_0])[partition_0].active_producers
        assert open_state._replace(last_timestamp=0) == ProducerState(
            producer_id=producer_id, producer_epoch=0, last_sequence=1, last_timestamp=0,
            coordinator_epoch=-1, current_transaction_start_offset=0)

        producer.commit_transaction(CLIENT_TIMEOUT_S)
        committed = admin.describe_transactions(["txn-admin"])["txn-admin"]
        assert (committed.state, committed.producer_id, committed.topic_partitions) == (
            TransactionState.COMPLETE_COMMIT, producer_id, set())
        assert admin.list_transactions(state_filters=["Ongoing"]) == {txn_broker.node_id: []}
        # The commit marker ended the transaction on partition 0 and set the
        # coordinator epoch it was written with.
        (closed_state,) = admin.describe_producers([partition_0])[partition_0].active_producers
        assert closed_state._replace(last_timestamp=0) == ProducerState(
            producer_id=producer_id, producer_epoch=0, last_sequence=1, last_timestamp=0,
            coordinator_epoch=0, current_transaction_start_offset=-1)
    finally:
        admin.close()


# -- consume-transform-produce ------------------------------------------------------------

def test_consume_transform_produce_killed_midway_writes_each_message_once(txn_broker):
    address = txn_broker.address
    create_topic(address, "ctp-in", 3)
    create_topic(address, "ctp-out", 3)
    producer = plain_producer(address)
    for index in range(TRANSFORM_MESSAGES):
        producer.produce("ctp-in", str(index).encode(), partition=index % 3)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0

    command = [sys.executable, str(TRANSFORM_SCRIPT), address, "ctp-in", "ctp-out",
               str(TRANSFORM_MESSAGES)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        # Kill the loop once it has committed some transactions but not all.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = first.stdout.readline()
            assert line, "the transform loop ended before it was killed"
            if int(line.split()[1]) >= TRANSFORM_MESSAGES // 2:
                break
        first.kill()
    finally:
        first.kill()
        first.wait(10)
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr

    consumer = Consumer({"bootstrap.servers": address, "group.id": "ctp-check",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        consumer.assign([TopicPartition("ctp-out", p, OFFSET_BEGINNING) for p in range(3)])
        seen: list[int] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(seen) < TRANSFORM_MESSAGES and time.monotonic() < deadline:
            seen += [int(m.value().decode()[len("out-"):])
                     for m in consumer.consume(num_messages=5000, timeout=0.5)
                     if m.error() is None]
        seen += [int(m.value().decode()[len("out-"):])
                 for m in consumer.consume(num_messages=5000, timeout=1.0) if m.error() is None]
    finally:
        consumer.close()
    assert sorted(seen) == list(range(TRANSFORM_MESSAGES))
