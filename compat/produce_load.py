"""Produce N messages with librdkafka (confluent-kafka) and print messages/s.

    python compat/produce_load.py --bootstrap 127.0.0.1:9092 --topic load --messages 1000000

A load generator in its own process, so the broker under test is measured, not us."""
from __future__ import annotations

import argparse
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="load")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--acks", default="all")
    parser.add_argument("--linger-ms", type=int, default=5)
    args = parser.parse_args()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for future in admin.create_topics([NewTopic(args.topic, args.partitions, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": args.acks,
                         "linger.ms": args.linger_ms, "queue.buffering.max.messages": 1_000_000,
                         "enable.idempotence": False})
    payload = b"x" * args.size
    delivered = failed = 0

    def on_delivery(error, _message):
        nonlocal delivered, failed
        if error is None:
            delivered += 1
        else:
            failed += 1

    started = time.perf_counter()
    for _ in range(args.messages):
        while True:
            try:
                producer.produce(args.topic, payload, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    print(f"delivered={delivered} failed={failed} seconds={elapsed:.2f} "
          f"msgs_per_s={delivered / elapsed:.0f}")


if __name__ == "__main__":
    main()
