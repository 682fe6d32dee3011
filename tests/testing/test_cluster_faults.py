"""The gregor_cluster fixture and its cluster faults: a broker cut off from ZooKeeper and
from the other brokers loses its leaderships, clients go on with the others, and once
healed it rejoins every ISR."""
from __future__ import annotations

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "cut"


@pytest.fixture(autouse=True)
def _zookeeper(zookeeper_installed: None) -> None:
    """Debian's zookeeper, installed when missing (tests/conftest.py)."""


def produce(producer: Producer, values: range) -> list:
    errors = []
    for value in values:
        producer.produce(TOPIC, str(value).encode(), partition=0,
                         on_delivery=lambda error, _: errors.append(error))
    assert producer.flush(60) == 0
    return errors


def test_an_isolated_leader_is_replaced_and_rejoins_when_healed(gregor_cluster):
    admin = AdminClient({"bootstrap.servers": gregor_cluster.bootstrap})
    admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})],
                        operation_timeout=30)[TOPIC].result(timeout=60)
    gregor_cluster.wait_for(lambda: len(gregor_cluster.isr(TOPIC, 0)) == 3,
                            what="a full ISR")
    producer = Producer({"bootstrap.servers": gregor_cluster.bootstrap, "acks": "all",
                         "enable.idempotence": True, "message.timeout.ms": 60000})
    assert produce(producer, range(0, 50)) == [None] * 50
    isolated = gregor_cluster.leader(TOPIC, 0)
    gregor_cluster.isolate(isolated)
    gregor_cluster.wait_for(lambda: gregor_cluster.leader(TOPIC, 0) not in (isolated, -1),
                            what="a new leader")
    assert isolated not in gregor_cluster.registered()  # its ZooKeeper session expired
    assert produce(producer, range(50, 100)) == [None] * 50
    gregor_cluster.heal(isolated)
    gregor_cluster.wait_for(lambda: isolated in gregor_cluster.isr(TOPIC, 0),
                            what=f"broker {isolated} back in the ISR")
    assert gregor_cluster.broker(isolated).running


@pytest.mark.gregor(brokers=2, settings={"num.partitions": "2"})
def test_a_cluster_of_the_marked_size_and_settings(gregor_cluster):
    assert sorted(gregor_cluster.brokers) == [1, 2]
    assert gregor_cluster.registered() == {1, 2}
    admin = AdminClient({"bootstrap.servers": gregor_cluster.bootstrap})
    admin.create_topics([NewTopic("defaults")], operation_timeout=30)["defaults"].result(
        timeout=60)
    metadata = admin.list_topics(timeout=30)
    assert len(metadata.topics["defaults"].partitions) == 2  # num.partitions from the marker
    assert sorted(metadata.brokers) == [1, 2]
    # Clients see the proxies' addresses, which the brokers advertise in ZooKeeper.
    assert {f"{b.host}:{b.port}" for b in metadata.brokers.values()} == {
        gregor_cluster.broker(1).bootstrap, gregor_cluster.broker(2).bootstrap}
