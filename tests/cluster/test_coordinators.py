"""The group and transaction coordinators in a real 3-broker cluster: each lives on the
leader of its key's internal-topic partition, its writes are replicated, and when that
broker is killed with kill -9 another one takes the partition over with the state intact."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from broker import cluster_cli
from broker.zookeeper.store import ZkStore
from coordinator.group_records import partition_for
from tests.cluster.test_failover import FAILOVER_TIMEOUT_S, wait_until

TOPIC = "events"
PARTITIONS = 3
# Few internal partitions: the test creates them at first use, like a fresh cluster.
INTERNAL_PARTITIONS = 5
SETTINGS = {"zookeeper.session.timeout.ms": "6000",
            "offsets.topic.num.partitions": str(INTERNAL_PARTITIONS),
            "transaction.state.log.num.partitions": str(INTERNAL_PARTITIONS)}


@pytest.fixture
def cluster(tmp_path):
    """A 3-broker cluster (`gregor cluster up`): its directory and state."""
    directory = tmp_path / "cluster"
    state = cluster_cli.up(directory, 3, None, SETTINGS)
    try:
        yield directory, state
    finally:
        cluster_cli.down(directory)


def leader_of(zookeeper: str, topic: str, partition: int) -> int:
    with ZkStore(zookeeper).connect() as store:
        state = store.partition_state(topic, partition)
        return -1 if state is None else state.leader


def create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})],
                        operation_timeout=30)[TOPIC].result(timeout=60)


def produce(bootstrap: str, values: list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True})
    for value in values:
        producer.produce(TOPIC, value.encode(), partition=int(value) % PARTITIONS)
    assert producer.flush(60) == 0


def consume(consumer: Consumer, count: int, timeout_s: float = 60) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < count and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=count - len(seen), timeout=0.5):
            if message.error() is None:
                seen.append(message.value().decode())
    return seen


def kill_and_wait_for_new_leader(directory, zookeeper: str, topic: str, partition: int) -> int:
    leader = leader_of(zookeeper, topic, partition)
    cluster_cli.kill(directory, leader)
    wait_until(lambda: leader_of(zookeeper, topic, partition) not in (leader, -1),
               FAILOVER_TIMEOUT_S, f"a new leader for {topic}-{partition}")
    return leader


def test_a_consumer_group_survives_the_loss_of_its_coordinator(cluster):
    directory, state = cluster
    bootstrap = state.bootstrap
    create_topic(bootstrap)
    produce(bootstrap, [str(number) for number in range(300)])
    group = "survivors"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([TOPIC])
    first = consume(consumer, 150)
    consumer.commit(asynchronous=False)
    offsets_partition = partition_for(group, INTERNAL_PARTITIONS)
    coordinator = leader_of(state.zookeeper, "__consumer_offsets", offsets_partition)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # referenced while it works
    described = admin.describe_consumer_groups([group])[group].result(timeout=30)
    assert described.coordinator.id == coordinator  # FindCoordinator: the leader
    killed = kill_and_wait_for_new_leader(directory, state.zookeeper,
                                          "__consumer_offsets", offsets_partition)
    assert killed == coordinator
    rest = consume(consumer, 150, timeout_s=90)
    consumer.commit(asynchronous=False)
    consumer.close()
    assert sorted(first + rest, key=int) == [str(number) for number in range(300)]
    # The new coordinator loaded the group's offsets from its replica.
    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committed = checker.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)],
                                  timeout=30)
    checker.close()
    assert [(entry.partition, entry.offset) for entry in committed] == [
        (p, 100) for p in range(PARTITIONS)]


def read_committed(bootstrap: str, expected: int) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                         "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([TOPIC])
    try:
        seen = consume(consumer, expected, timeout_s=60)
        seen += consume(consumer, 1, timeout_s=2)  # nothing more may come
        return sorted(seen, key=int)
    finally:
        consumer.close()


def transactional_producer(bootstrap: str, transactional_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 30000})
    producer.init_transactions(60)
    return producer


def run_transaction(producer: Producer, values: range, *, commit: bool) -> None:
    producer.begin_transaction()
    for value in values:
        producer.produce(TOPIC, str(value).encode(), partition=value % PARTITIONS)
    if commit:
        producer.commit_transaction(60)
    else:
        producer.abort_transaction(60)


def test_transactions_span_brokers_and_survive_the_loss_of_their_coordinator(cluster):
    directory, state = cluster
    bootstrap = state.bootstrap
    create_topic(bootstrap)
    leaders = {leader_of(state.zookeeper, TOPIC, p) for p in range(PARTITIONS)}
    assert len(leaders) > 1  # the markers must reach other brokers than the coordinator
    transactional_id = "mover"
    producer = transactional_producer(bootstrap, transactional_id)
    run_transaction(producer, range(0, 30), commit=True)
    run_transaction(producer, range(30, 60), commit=False)
    # Offsets committed inside a transaction go to the group coordinator, and its
    # marker to that broker's __consumer_offsets partition.
    producer.begin_transaction()
    for value in range(60, 90):
        producer.produce(TOPIC, str(value).encode(), partition=value % PARTITIONS)
    group = "transformer"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    group_metadata = consumer.consumer_group_metadata()
    producer.send_offsets_to_transaction([TopicPartition(TOPIC, 0, 7)], group_metadata, 60)
    producer.commit_transaction(60)
    assert read_committed(bootstrap, 60) == [str(v) for v in [*range(30), *range(60, 90)]]
    committed = consumer.committed([TopicPartition(TOPIC, 0)], timeout=30)
    assert committed[0].offset == 7
    consumer.close()

    coordinator_partition = partition_for(transactional_id, INTERNAL_PARTITIONS)
    killed = kill_and_wait_for_new_leader(directory, state.zookeeper,
                                          "__transaction_state", coordinator_partition)
    # The new coordinator fences the old producer and serves the same id.
    successor = None
    deadline = time.monotonic() + FAILOVER_TIMEOUT_S
    while successor is None:
        try:
            successor = transactional_producer(bootstrap, transactional_id)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
    run_transaction(successor, range(90, 120), commit=True)
    cluster_cli.start(directory, killed)
    assert read_committed(bootstrap, 90) == [
        str(v) for v in [*range(30), *range(60, 120)]]
