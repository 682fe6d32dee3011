"""A consume-transform-produce loop, run as its own process by test_transactions so the
test can kill it midway: reads IN from its group's committed offsets, writes "out-VALUE"
to OUT and commits the input offsets in the same transaction, 100 messages at a time.
Prints "committed N" after each transaction; exits once it has read TOTAL messages."""
from __future__ import annotations

import sys

from confluent_kafka import Consumer, Producer

TRANSACTION_SIZE = 100
TIMEOUT_S = 20.0


def main(address: str, source: str, sink: str, total: int) -> int:
    # A short session: a killed predecessor leaves the group within seconds.
    consumer = Consumer({"bootstrap.servers": address, "group.id": "transform",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "session.timeout.ms": 6000})
    producer = Producer({"bootstrap.servers": address, "transactional.id": "transform-loop",
                         "linger.ms": 5})
    producer.init_transactions(TIMEOUT_S)
    consumer.subscribe([source])
    try:
        while _positions_total(consumer) < total:
            messages = [m for m in consumer.consume(num_messages=TRANSACTION_SIZE, timeout=1.0)
                        if m.error() is None]
            if not messages:
                continue
            producer.begin_transaction()
            for message in messages:
                producer.produce(sink, b"out-" + message.value(),
                                 partition=message.partition())
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(),
                TIMEOUT_S)
            producer.commit_transaction(TIMEOUT_S)
            print(f"committed {_positions_total(consumer)}", flush=True)
    finally:
        consumer.close()
    return 0


def _positions_total(consumer: Consumer) -> int:
    """Input messages done: per assigned partition its position, or before this process
    read from it, its committed offset (each partition starts at 0; the one consumer gets
    them all)."""
    assignment = consumer.assignment()
    if not assignment:
        return 0
    positions = consumer.position(assignment)
    unread = [tp for tp in positions if tp.offset < 0]
    done = sum(tp.offset for tp in positions if tp.offset >= 0)
    if unread:
        done += sum(max(tp.offset, 0) for tp in consumer.committed(unread, timeout=TIMEOUT_S))
    return done


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
