"""Admin requests that a cluster carries out over several brokers answer once it is done,
as Kafka's do: DeleteRecords once every live replica has moved its log start,
DeleteTopics once the controller has deleted the topic."""
from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from broker import cluster_cli
from tests.cluster.test_coordinators import kill_and_wait_for_new_leader

TOPIC = "trimmed"
NEW_LEADER_ERRORS = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                     KafkaError.UNKNOWN_TOPIC_OR_PART)


def create(admin: AdminClient, name: str) -> None:
    admin.create_topics([NewTopic(name, 1, 3)], operation_timeout=30)[name].result(timeout=60)


def fill(bootstrap: str, name: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for number in range(count):
        producer.produce(name, str(number).encode(), partition=0)
    assert producer.flush(60) == 0


def offset(admin: AdminClient, name: str, spec: OffsetSpec) -> int:
    """ListOffsets, retried while the answer is retriable: a leader that ZooKeeper names
    may not have taken its partition up yet (NOT_LEADER_OR_FOLLOWER), as with Kafka."""
    partition = TopicPartition(name, 0)
    deadline = time.monotonic() + 30
    while True:
        try:
            return admin.list_offsets({partition: spec})[partition].result(timeout=30).offset
        except KafkaException as exc:
            # librdkafka's admin results do not mark these retriable; a client retries them.
            if exc.args[0].code() not in NEW_LEADER_ERRORS or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def earliest(admin: AdminClient, name: str) -> int:
    return offset(admin, name, OffsetSpec.earliest())


def test_delete_records_answers_once_every_replica_moved(tmp_path):
    directory = tmp_path / "cluster"
    state = cluster_cli.up(directory, 3, None, {"zookeeper.session.timeout.ms": "6000"})
    try:
        admin = AdminClient({"bootstrap.servers": state.bootstrap})
        create(admin, TOPIC)
        fill(state.bootstrap, TOPIC, 100)
        deleted = admin.delete_records([TopicPartition(TOPIC, 0, 40)])
        result = deleted[TopicPartition(TOPIC, 0)].result(timeout=30)
        assert result.low_watermark == 40
        # Every replica has moved: whichever follower leads next starts at 40 as well.
        kill_and_wait_for_new_leader(directory, state.zookeeper, TOPIC, 0)
        # A new client: librdkafka's admin client keeps waiting for the dead broker.
        fresh = AdminClient({"bootstrap.servers": state.bootstrap})
        assert earliest(fresh, TOPIC) == 40
    finally:
        cluster_cli.down(directory)


def test_delete_topics_answers_once_the_topic_is_gone(tmp_path):
    directory = tmp_path / "cluster"
    state = cluster_cli.up(directory, 3, None, {})
    try:
        admin = AdminClient({"bootstrap.servers": state.bootstrap})
        create(admin, "short-lived")
        fill(state.bootstrap, "short-lived", 10)
        admin.delete_topics(["short-lived"], operation_timeout=30)["short-lived"].result(
            timeout=60)
        # Gone when answered: the name can be created again at once, empty.
        create(admin, "short-lived")
        assert (earliest(admin, "short-lived"),
                offset(admin, "short-lived", OffsetSpec.latest())) == (0, 0)
    finally:
        cluster_cli.down(directory)
