# docs/testing.md shows this file: aiokafka against the gregor_broker fixture. Each test
# drives its own asyncio loop (this project's pytest runs trio, not asyncio, tests).
import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import RequestTimedOutError


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


async def produce(bootstrap, topic, value):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def test_produce_and_consume(gregor_broker):
    async def scenario():
        await produce(gregor_broker.bootstrap, "events", b"clicked")
        consumer = AIOKafkaConsumer("events", bootstrap_servers=gregor_broker.bootstrap,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            return (await consumer.getone()).value
        finally:
            await consumer.stop()
    assert run(scenario()) == b"clicked"


def test_a_group_member_commits(gregor_broker):
    async def scenario():
        await produce(gregor_broker.bootstrap, "events", b"one")
        consumer = AIOKafkaConsumer("events", bootstrap_servers=gregor_broker.bootstrap,
                                    group_id="stats", auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            message = await consumer.getone()
            await consumer.commit()
            partition = next(iter(consumer.assignment()))
            return message.value, await consumer.committed(partition)
        finally:
            await consumer.stop()
    assert run(scenario()) == (b"one", 1)


def test_the_producer_survives_a_not_leader_error(gregor_broker):
    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=gregor_broker.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("events", b"first")
            gregor_broker.fail_next("PRODUCE", "NOT_LEADER_OR_FOLLOWER")
            return (await producer.send_and_wait("events", b"second")).offset
        finally:
            await producer.stop()
    assert run(scenario()) == 1


def test_a_slow_broker_surfaces_as_a_timeout(gregor_broker):
    # aiokafka does not resend a produce that timed out: the application sees the error.
    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=gregor_broker.bootstrap,
                                    request_timeout_ms=1000)
        await producer.start()
        try:
            await producer.send_and_wait("events", b"first")
            gregor_broker.delay("PRODUCE", 1500)
            with pytest.raises(RequestTimedOutError):
                await producer.send_and_wait("events", b"second")
            gregor_broker.delay("PRODUCE", 0)
            return (await producer.send_and_wait("events", b"second again")).topic
        finally:
            await producer.stop()
    assert run(scenario()) == "events"
