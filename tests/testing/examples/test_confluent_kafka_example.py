# docs/testing.md shows this file: confluent-kafka against the gregor_broker fixture.
from confluent_kafka import Consumer, Producer


def consume(consumer, count, timeout_s=10.0):
    values = []
    for _ in range(int(timeout_s / 0.5)):
        values += [m.value() for m in consumer.consume(count, timeout=0.5) if not m.error()]
        if len(values) >= count:
            break
    return values


def test_produce_and_consume(gregor_broker):
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap})
    producer.produce("payments", b"paid")
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": gregor_broker.bootstrap, "group.id": "audit",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["payments"])
    assert consume(consumer, 1) == [b"paid"]
    consumer.close()


def test_a_group_commits_and_resumes(gregor_broker):
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap})
    for value in (b"a", b"b", b"c"):
        producer.produce("payments", value)
    assert producer.flush(10) == 0
    config = {"bootstrap.servers": gregor_broker.bootstrap, "group.id": "audit",
              "auto.offset.reset": "earliest", "enable.auto.commit": False}
    first = Consumer(config)
    first.subscribe(["payments"])
    assert consume(first, 2)[:2] == [b"a", b"b"]
    first.close()  # nothing committed: the next member starts over
    second = Consumer(config)
    second.subscribe(["payments"])
    assert consume(second, 3) == [b"a", b"b", b"c"]
    second.commit(asynchronous=False)
    second.close()


def test_the_producer_survives_a_not_leader_error(gregor_broker):
    errors = []
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap})
    producer.produce("payments", b"first")
    assert producer.flush(10) == 0
    gregor_broker.fail_next("PRODUCE", "NOT_LEADER_OR_FOLLOWER", count=2)
    producer.produce("payments", b"second", on_delivery=lambda error, _: errors.append(error))
    assert producer.flush(30) == 0
    assert errors == [None]


def test_the_idempotent_producer_retries_a_slow_broker_once(gregor_broker):
    producer = Producer({"bootstrap.servers": gregor_broker.bootstrap,
                         "enable.idempotence": True, "request.timeout.ms": 1000})
    producer.produce("payments", b"first")
    assert producer.flush(10) == 0
    gregor_broker.delay("PRODUCE", 2000)
    producer.produce("payments", b"second")
    producer.poll(2.5)  # the request timed out, and was sent again
    gregor_broker.delay("PRODUCE", 0)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": gregor_broker.bootstrap, "group.id": "check",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["payments"])
    assert consume(consumer, 2) == [b"first", b"second"]  # written once
    consumer.close()
