"""librdkafka (confluent-kafka) load generators, each run in its own process by the bench.

    python -m compat.bench.loads produce --bootstrap B --topic T --messages N --size BYTES
    python -m compat.bench.loads consume --bootstrap B --topic T --messages N
    python -m compat.bench.loads latency --bootstrap B --topic T --rate 1000 --seconds 20
    python -m compat.bench.loads connections --bootstrap B --connections 1000 --topic T

Each prints one JSON object on its last stdout line and exits 0, or exits 1 with the
reason on stderr. The broker under test is measured, not the bench: these run apart from
it and from each other, and time only their own work (after connecting).

`produce --wait-for-go` prints "ready" once connected and starts when a line arrives on
stdin: the bench starts many producers at once that way.
"""
from __future__ import annotations

import argparse
import json
import selectors
import socket
import struct
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

METADATA_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 300.0
QUEUE_FULL_BACKOFF_MS = 10  # the consumer's pause when its local queue is full; see consume()


class LoadFailed(Exception):
    """The broker did not do what the load needs; str() is the reason."""


def _topic_partitions(client, topic: str) -> list[int]:
    metadata = client.list_topics(topic, timeout=METADATA_TIMEOUT_S)
    description = metadata.topics[topic]
    if description.error is not None:
        raise LoadFailed(f"metadata for {topic}: {description.error}")
    return sorted(description.partitions)


# -- produce ----------------------------------------------------------------------------

def produce(bootstrap: str, topic: str, messages: int, size_bytes: int, acks: str,
            linger_ms: int, wait_for_go: bool) -> dict:
    """Produces `messages` values of `size_bytes` as fast as librdkafka takes them; the
    clock runs from the first produce() to the last delivery report. Only failed
    deliveries call back into Python, so the loop here costs little next to the broker."""
    failures: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks,
                         "linger.ms": linger_ms, "enable.idempotence": False,
                         "queue.buffering.max.messages": 1_000_000,
                         "delivery.report.only.error": True,
                         "on_delivery": lambda error, _message: failures.append(str(error))})
    _topic_partitions(producer, topic)  # connected and knows the leaders before the clock
    if wait_for_go:
        print("ready", flush=True)
        if not sys.stdin.readline():
            raise LoadFailed("stdin closed before the go line")
    payload = b"x" * size_bytes
    produce_one = producer.produce
    started_s = time.time()
    for number in range(messages):
        try:
            produce_one(topic, payload)
        except BufferError:  # local queue full: let deliveries drain it
            while True:
                producer.poll(0.01)
                try:
                    produce_one(topic, payload)
                    break
                except BufferError:
                    continue
        if number % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(FLUSH_TIMEOUT_S)
    finished_s = time.time()
    if remaining or failures:
        raise LoadFailed(f"{remaining} undelivered, {len(failures)} failed "
                         f"({failures[0] if failures else 'flush timed out'})")
    return {"messages": messages, "bytes": messages * size_bytes,
            "seconds": finished_s - started_s, "started_s": started_s,
            "finished_s": finished_s}


# -- consume ----------------------------------------------------------------------------

def consume(bootstrap: str, topic: str, messages: int, timeout_s: float) -> dict:
    """Reads `messages` from the earliest offset of every partition by assign() (no group
    join, no commits); the clock runs from assign() to the last message."""
    # librdkafka pauses fetching for fetch.queue.backoff.ms (1 s by default) whenever its
    # local queue is full (queued.max.messages.kbytes, 64 MiB); a fast broker fills it in
    # a fraction of a second, and the pause, not the broker, would set the figure.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-bench-assign",
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "fetch.queue.backoff.ms": QUEUE_FULL_BACKOFF_MS})
    try:
        partitions = _topic_partitions(consumer, topic)
        started_s = time.perf_counter()
        deadline_s = started_s + timeout_s
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        received = received_bytes = 0
        while received < messages:
            if time.perf_counter() > deadline_s:
                raise LoadFailed(f"read {received} of {messages} messages in {timeout_s:.0f} s")
            # Never ask for more than is left: consume() waits until it has them all.
            wanted = min(10_000, messages - received)
            for message in consumer.consume(num_messages=wanted, timeout=1.0):
                if message.error() is not None:
                    raise LoadFailed(f"consume: {message.error()}")
                received += 1
                received_bytes += len(message.value())
        elapsed_s = time.perf_counter() - started_s
    finally:
        consumer.close()
    return {"messages": received, "bytes": received_bytes, "seconds": elapsed_s}


# -- end-to-end latency -----------------------------------------------------------------

def latency(bootstrap: str, topic: str, rate_per_s: int, seconds: float, warmup_s: float,
            acks: str, fetch_wait_max_ms: int | None) -> dict:
    """Sends `rate_per_s` messages a second for `seconds` (acks as given, linger.ms=0) and
    reads them back by assign() in the same process; each payload carries its send time,
    so latency = time read - time sent on one clock. Messages sent during the first
    `warmup_s` are not counted. The consumer keeps librdkafka's defaults but for
    `fetch_wait_max_ms` when given. Returns the latencies' percentiles in ms."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0,
                         "enable.idempotence": False})
    consumer_config = {"bootstrap.servers": bootstrap, "group.id": f"{topic}-bench-latency",
                       "enable.auto.commit": False, "enable.auto.offset.store": False}
    if fetch_wait_max_ms is not None:
        consumer_config["fetch.wait.max.ms"] = fetch_wait_max_ms
    consumer = Consumer(consumer_config)
    try:
        partitions = _topic_partitions(producer, topic)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        total = int(rate_per_s * seconds)
        interval_s = 1.0 / rate_per_s
        started_s = time.perf_counter()
        warmup_end_s = started_s + warmup_s
        latencies_ms: list[float] = []
        received = sent = 0

        def receive(timeout_s: float) -> None:
            nonlocal received
            # consume() returns early only once it has num_messages: ask for what is due.
            wanted = max(1, min(1000, total - received))
            for message in consumer.consume(num_messages=wanted, timeout=max(timeout_s, 0.0)):
                now_s = time.perf_counter()
                if message.error() is not None:
                    raise LoadFailed(f"consume: {message.error()}")
                received += 1
                sent_s = struct.unpack_from(">d", message.value())[0]
                if sent_s >= warmup_end_s:
                    latencies_ms.append((now_s - sent_s) * 1000.0)

        padding = b"x" * 92  # 8-byte send time + 92 = 100-byte values
        # The clock starts once the consumer has read a first message: the time to find
        # the partition's leader and offsets is not end-to-end latency.
        producer.produce(topic, struct.pack(">d", 0.0) + padding)
        producer.flush(METADATA_TIMEOUT_S)
        probe_deadline_s = time.perf_counter() + METADATA_TIMEOUT_S
        while received == 0:
            if time.perf_counter() > probe_deadline_s:
                raise LoadFailed(f"the first message was not read in {METADATA_TIMEOUT_S:.0f} s")
            receive(0.1)
        received = 0
        started_s = time.perf_counter()
        warmup_end_s = started_s + warmup_s
        while sent < total:
            due_s = started_s + sent * interval_s
            now_s = time.perf_counter()
            if now_s < due_s:
                receive(due_s - now_s)
                continue
            producer.produce(topic, struct.pack(">d", time.perf_counter()) + padding)
            producer.poll(0)
            sent += 1
        deadline_s = time.perf_counter() + 30.0
        while received < total and time.perf_counter() < deadline_s:
            receive(0.1)  # before flush(): reading the last messages is not delayed by it
        if received != total:
            raise LoadFailed(f"read back {received} of {total} messages")
        if producer.flush(FLUSH_TIMEOUT_S):
            raise LoadFailed("messages still undelivered after flush")
    finally:
        consumer.close()
    latencies_ms.sort()
    return {"messages": total, "counted": len(latencies_ms),
            "p50_ms": percentile(latencies_ms, 50.0), "p99_ms": percentile(latencies_ms, 99.0),
            "p99_9_ms": percentile(latencies_ms, 99.9), "max_ms": latencies_ms[-1]}


def percentile(sorted_values: list[float], percent: float) -> float:
    """The nearest-rank percentile of ascending `sorted_values` (non-empty)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, -(-len(sorted_values) * percent // 100))  # ceil(n * p / 100)
    return sorted_values[int(rank) - 1]


# -- many connections -------------------------------------------------------------------

API_VERSIONS_V0_KEY = 18
METADATA_KEY = 3
METADATA_VERSION = 4  # the oldest Kafka 4.x still serves (KIP-896)


def request_frame(api_key: int, api_version: int, correlation_id: int, body: bytes) -> bytes:
    """A size-prefixed request with a v1 header (client id "bench")."""
    client_id = b"bench"
    message = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) \
        + client_id + body
    return struct.pack(">i", len(message)) + message


API_VERSIONS_REQUEST_BODY = b""
METADATA_ALL_TOPICS_BODY = struct.pack(">i?", -1, False)  # null topics = all; no auto-create


def check_response(kind: str, correlation_id: int, response: bytes) -> None:
    """Raises LoadFailed unless `response` (after the size) answers request
    `correlation_id`: ApiVersions v0 with error code 0, Metadata v4 with >= 1 broker."""
    (answered_id,) = struct.unpack_from(">i", response, 0)
    if answered_id != correlation_id:
        raise LoadFailed(f"{kind}: correlation id {answered_id}, expected {correlation_id}")
    if kind == "api_versions":
        (error_code,) = struct.unpack_from(">h", response, 4)
        if error_code != 0:
            raise LoadFailed(f"ApiVersions error code {error_code}")
    else:
        (broker_count,) = struct.unpack_from(">i", response, 8)  # after throttle_time_ms
        if broker_count < 1:
            raise LoadFailed(f"Metadata listed {broker_count} brokers")


class _Connection:
    """One raw client: ApiVersions, then Metadata, then it holds the socket open.
    Steps: connecting -> api_versions -> metadata -> done."""

    def __init__(self, number: int, sock: socket.socket) -> None:
        self.number = number
        self.sock = sock
        self.step = "connecting"
        self.outgoing = b""
        self.incoming = bytearray()
        self.error: str | None = None

    def correlation_id(self) -> int:
        return self.number * 2 + (1 if self.step == "metadata" else 0)

    def start(self, step: str) -> None:
        """Moves to `step` and queues its request."""
        self.step = step
        if step == "api_versions":
            self.outgoing = request_frame(API_VERSIONS_V0_KEY, 0, self.correlation_id(),
                                          API_VERSIONS_REQUEST_BODY)
        else:
            self.outgoing = request_frame(METADATA_KEY, METADATA_VERSION,
                                          self.correlation_id(), METADATA_ALL_TOPICS_BODY)

    def complete_response(self) -> bytes | None:
        if len(self.incoming) < 4:
            return None
        size = struct.unpack_from(">i", self.incoming, 0)[0]
        if len(self.incoming) < 4 + size:
            return None
        return bytes(self.incoming[4:4 + size])


def connections(bootstrap: str, count: int, topic: str, timeout_s: float) -> dict:
    """Opens `count` connections at once; each sends ApiVersions v0, then Metadata v4, and
    stays open. With all of them still open, a librdkafka producer must deliver one message
    to `topic`. Returns how many connections got both answers, the seconds from the first
    connect to the last answer, and whether the normal client was served."""
    host, port = bootstrap.rsplit(":", 1)
    selector = selectors.DefaultSelector()
    pending: list[_Connection] = []
    started_s = time.perf_counter()
    for number in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((host, int(port)))
        connection = _Connection(number, sock)
        pending.append(connection)
        selector.register(sock, selectors.EVENT_WRITE, connection)
    answered = 0
    failures: dict[str, int] = {}
    open_connections = len(pending)
    deadline_s = started_s + timeout_s
    finished_s = started_s
    while open_connections and time.perf_counter() < deadline_s:
        for key, events in selector.select(timeout=0.5):
            connection: _Connection = key.data
            try:
                _advance(connection, events, selector)
            except (OSError, LoadFailed, struct.error) as exc:
                connection.error = f"{type(exc).__name__}: {exc}"
            if connection.error is not None:
                failures[connection.error] = failures.get(connection.error, 0) + 1
                selector.unregister(connection.sock)
                open_connections -= 1
            elif connection.step == "done":
                selector.unregister(connection.sock)
                open_connections -= 1
                answered += 1
                finished_s = time.perf_counter()
    if open_connections:
        failures["no answer before the timeout"] = open_connections
    normal_client_ok, normal_client_error = _normal_client_produces(bootstrap, topic)
    for connection in pending:
        connection.sock.close()
    selector.close()
    return {"connections": count, "answered": answered,
            "seconds": finished_s - started_s, "failures": failures,
            "normal_client_ok": normal_client_ok, "normal_client_error": normal_client_error}


def _advance(connection: _Connection, events: int, selector: selectors.BaseSelector) -> None:
    if connection.step == "connecting":
        error = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, "connect failed")
        connection.start("api_versions")
    if events & selectors.EVENT_WRITE and connection.outgoing:
        written = connection.sock.send(connection.outgoing)
        connection.outgoing = connection.outgoing[written:]
        if not connection.outgoing:
            selector.modify(connection.sock, selectors.EVENT_READ, connection)
        return
    if events & selectors.EVENT_READ:
        data = connection.sock.recv(65536)
        if not data:
            raise LoadFailed(f"closed by the broker during {connection.step}")
        connection.incoming += data
        response = connection.complete_response()
        if response is None:
            return
        check_response(connection.step, connection.correlation_id(), response)
        connection.incoming.clear()
        if connection.step == "api_versions":
            connection.start("metadata")
            selector.modify(connection.sock, selectors.EVENT_WRITE, connection)
        else:
            connection.step = "done"


def _normal_client_produces(bootstrap: str, topic: str) -> tuple[bool, str | None]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.timeout.ms": 20_000})
    outcome: list[str | None] = []
    producer.produce(topic, b"still answering", on_delivery=lambda error, _m: outcome.append(
        None if error is None else str(error)))
    producer.flush(30.0)
    if not outcome:
        return False, "no delivery report in 30 s"
    return outcome[0] is None, outcome[0]


# -- command line -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench.loads", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    produce_parser = commands.add_parser("produce")
    produce_parser.add_argument("--messages", type=int, required=True)
    produce_parser.add_argument("--size", type=int, required=True, help="value bytes")
    produce_parser.add_argument("--acks", default="all")
    produce_parser.add_argument("--linger-ms", type=int, default=5)
    produce_parser.add_argument("--wait-for-go", action="store_true")
    consume_parser = commands.add_parser("consume")
    consume_parser.add_argument("--messages", type=int, required=True)
    consume_parser.add_argument("--timeout-s", type=float, default=300.0)
    latency_parser = commands.add_parser("latency")
    latency_parser.add_argument("--rate", type=int, default=1000, help="messages per second")
    latency_parser.add_argument("--seconds", type=float, default=20.0)
    latency_parser.add_argument("--warmup-s", type=float, default=2.0)
    latency_parser.add_argument("--acks", default="all")
    latency_parser.add_argument("--fetch-wait-max-ms", type=int, default=None,
                                help="the consumer's fetch.wait.max.ms (librdkafka: 500)")
    connections_parser = commands.add_parser("connections")
    connections_parser.add_argument("--connections", type=int, default=1000)
    connections_parser.add_argument("--timeout-s", type=float, default=60.0)
    for sub in (produce_parser, consume_parser, latency_parser, connections_parser):
        sub.add_argument("--bootstrap", required=True)
        sub.add_argument("--topic", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "produce":
            result = produce(args.bootstrap, args.topic, args.messages, args.size, args.acks,
                             args.linger_ms, args.wait_for_go)
        elif args.command == "consume":
            result = consume(args.bootstrap, args.topic, args.messages, args.timeout_s)
        elif args.command == "latency":
            result = latency(args.bootstrap, args.topic, args.rate, args.seconds,
                             args.warmup_s, args.acks, args.fetch_wait_max_ms)
        else:
            result = connections(args.bootstrap, args.connections, args.topic, args.timeout_s)
    except (LoadFailed, KafkaException) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
