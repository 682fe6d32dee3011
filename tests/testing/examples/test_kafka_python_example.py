# docs/testing.md shows this file: kafka-python against the gregor_broker fixture.
from kafka import KafkaConsumer, KafkaProducer


def test_produce_and_consume(gregor_broker):
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap)
    producer.send("orders", b"order-1").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer("orders", bootstrap_servers=gregor_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    assert [message.value for message in consumer] == [b"order-1"]
    consumer.close()


def test_a_group_member_resumes_where_the_group_committed(gregor_broker):
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap)
    for number in range(6):
        producer.send("orders", str(number).encode())
    producer.close()

    def member():
        return KafkaConsumer("orders", bootstrap_servers=gregor_broker.bootstrap,
                             group_id="billing", auto_offset_reset="earliest",
                             enable_auto_commit=False, max_poll_records=4,
                             consumer_timeout_ms=5000)
    first = member()
    batch = []
    for _ in range(50):
        batch += [record.value for records in first.poll(timeout_ms=200).values()
                  for record in records]
        if batch:
            break
    first.commit()  # what this member has read: the first 4
    first.close()
    second = member()
    assert batch + [message.value for message in second] == [
        str(number).encode() for number in range(6)]
    second.close()


def test_the_producer_survives_a_not_leader_error(gregor_broker):
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap, retries=5)
    producer.send("orders", b"first").get(timeout=10)
    gregor_broker.fail_next("PRODUCE", "NOT_LEADER_OR_FOLLOWER")
    assert producer.send("orders", b"second").get(timeout=10).offset == 1
    producer.close()


def test_the_producer_retries_a_slow_broker(gregor_broker):
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap, retries=3,
                             request_timeout_ms=1000, retry_backoff_ms=100)
    producer.send("orders", b"first").get(timeout=10)
    gregor_broker.delay("PRODUCE", 1500)  # every Produce answer comes after the timeout
    future = producer.send("orders", b"second")
    gregor_broker.delay("PRODUCE", 0)
    assert future.get(timeout=30).topic == "orders"
    producer.close()
