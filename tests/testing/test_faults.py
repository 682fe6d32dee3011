"""The pytest plugin's fault API, each fault observed through stock clients
(kafka-python and confluent-kafka) against the `gregor_broker` fixture."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import NotLeaderForPartitionError

from broker.testing import GregorBroker

TOPIC = "faults"


def create_topic(broker: GregorBroker, partitions: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(TOPIC, partitions, 1)])
    finally:
        admin.close()


def test_the_broker_is_reached_through_its_proxy(gregor_broker):
    create_topic(gregor_broker)
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap)
    producer.send(TOPIC, b"hello").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=gregor_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    assert [message.value for message in consumer] == [b"hello"]
    consumer.close()
    host, port = gregor_broker.bootstrap.split(":")
    assert (host, int(port)) == ("127.0.0.1", gregor_broker.proxy.port)
    assert int(port) != gregor_broker.process.port  # clients never see the broker's own port


def test_an_injected_not_leader_is_retried_by_kafka_python(gregor_broker):
    create_topic(gregor_broker)
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap, retries=5,
                             retry_backoff_ms=50)
    producer.send(TOPIC, b"warm-up").get(timeout=30)
    gregor_broker.fail_next("PRODUCE", "NOT_LEADER_OR_FOLLOWER", count=2)
    metadata = producer.send(TOPIC, b"after two refusals").get(timeout=30)
    assert (metadata.partition, metadata.offset) == (0, 1)
    assert gregor_broker.pending_failures("PRODUCE") == 0
    producer.close()


def test_an_injected_error_reaches_a_client_that_does_not_retry(gregor_broker):
    create_topic(gregor_broker)
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap, retries=0)
    producer.send(TOPIC, b"warm-up").get(timeout=30)
    gregor_broker.fail_next("PRODUCE", "NOT_LEADER_OR_FOLLOWER")
    with pytest.raises(NotLeaderForPartitionError):
        producer.send(TOPIC, b"refused").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=gregor_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    assert [message.value for message in consumer] == [b"warm-up"]  # the broker never saw it
    consumer.close()


def test_a_delayed_api_holds_its_responses(gregor_broker):
    create_topic(gregor_broker)
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap, "linger.ms": 0})
    producer.produce(TOPIC, b"warm-up")
    assert producer.flush(30) == 0
    gregor_broker.delay("PRODUCE", 1500)
    started = time.monotonic()
    producer.produce(TOPIC, b"slow")
    assert producer.flush(30) == 0
    delayed_s = time.monotonic() - started
    gregor_broker.delay("PRODUCE", 0)
    started = time.monotonic()
    producer.produce(TOPIC, b"fast")
    assert producer.flush(30) == 0
    assert delayed_s >= 1.5 and time.monotonic() - started < 1.5


def test_a_delay_beyond_the_request_timeout_makes_the_client_retry(gregor_broker):
    """What a client's retry logic does with a slow broker: confluent-kafka's request
    times out, it retries, and the idempotent producer writes the message once."""
    create_topic(gregor_broker)
    errors = []
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap,
                         "enable.idempotence": True, "request.timeout.ms": 1000,
                         "message.timeout.ms": 30000})
    producer.produce(TOPIC, b"warm-up")
    assert producer.flush(30) == 0
    gregor_broker.delay("PRODUCE", 2500)
    producer.produce(TOPIC, b"once", on_delivery=lambda error, _: errors.append(error))
    producer.poll(3.0)
    gregor_broker.delay("PRODUCE", 0)
    assert producer.flush(30) == 0
    assert errors == [None]
    consumer = Consumer({"bootstrap.servers": gregor_broker.bootstrap, "group.id": "check",
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    values = []
    deadline = time.monotonic() + 20
    while len(values) < 2 and time.monotonic() < deadline:
        for message in consumer.consume(10, timeout=0.5):
            if message.error() is None:
                values.append(message.value())
    consumer.close()
    assert values == [b"warm-up", b"once"]


def test_closed_connections_are_reopened_by_the_client(gregor_broker):
    create_topic(gregor_broker)
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap)
    producer.send(TOPIC, b"before").get(timeout=30)
    gregor_broker.close_connections()
    metadata = producer.send(TOPIC, b"after").get(timeout=30)
    assert metadata.offset == 1
    producer.close()


def test_pause_and_resume(gregor_broker):
    create_topic(gregor_broker)
    delivered = []
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap})
    gregor_broker.pause()
    producer.produce(TOPIC, b"while paused", on_delivery=lambda error, _: delivered.append(error))
    producer.poll(1.0)
    assert delivered == []  # nothing answers
    gregor_broker.resume()
    assert producer.flush(30) == 0
    assert delivered == [None]


def test_kill_and_restart_keep_the_bootstrap_and_the_data(gregor_broker):
    create_topic(gregor_broker)
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap, acks=1)
    producer.send(TOPIC, b"kept").get(timeout=30)
    producer.close()
    old_pid = gregor_broker.pid
    gregor_broker.kill()
    assert not gregor_broker.running
    gregor_broker.restart()
    assert gregor_broker.pid != old_pid
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=gregor_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    assert [message.value for message in consumer] == [b"kept"]
    consumer.close()


def test_injecting_into_an_api_without_an_error_code_is_refused(gregor_broker):
    with pytest.raises(ValueError, match="METADATA"):
        gregor_broker.fail_next("METADATA", "UNKNOWN_SERVER_ERROR")
    with pytest.raises(ValueError, match="unknown error code"):
        gregor_broker.fail_next("PRODUCE", "NO_SUCH_ERROR")


def test_an_injected_coordinator_error_is_retried_by_confluent_kafka(gregor_broker):
    create_topic(gregor_broker)
    gregor_broker.fail_next("FIND_COORDINATOR", "COORDINATOR_NOT_AVAILABLE", count=3)
    consumer = Consumer({"bootstrap.servers": gregor_broker.bootstrap, "group.id": "g",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([TOPIC])
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap})
    producer.produce(TOPIC, b"found")
    assert producer.flush(30) == 0
    values = []
    deadline = time.monotonic() + 30
    while not values and time.monotonic() < deadline:
        for message in consumer.consume(1, timeout=0.5):
            if message.error() is None:
                values.append(message.value())
            else:
                assert message.error().code() != KafkaError._ALL_BROKERS_DOWN
    consumer.close()
    assert values == [b"found"]
    assert gregor_broker.pending_failures("FIND_COORDINATOR") == 0
