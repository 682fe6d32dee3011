"""Capture the first request frames real clients send, for tests/wire/golden.py.

    .venv/bin/python tests/wire/capture_golden.py > /tmp/golden.txt

Runs a throwaway broker stand-in on 127.0.0.1 that answers ApiVersions, Metadata,
InitProducerId and Produce with our own encoder, drives kafka-python (KafkaAdminClient,
KafkaProducer) and confluent-kafka (Producer) against it, and prints every frame each
client sent as hex. Not a test: its output is pasted into golden.py once.
"""
from __future__ import annotations

import socket
import threading
import uuid

from wire.messages import API_VERSIONS
from wire.protocol import FrameReader, decode_request, encode_response

TOPIC = "golden-topic"
TOPIC_ID = uuid.UUID("6b1c5e1e-3f0a-4c39-9a57-0d5d2c3f7a11")
# Telemetry (KIP-714) would make librdkafka push metrics; leave it out.
ADVERTISED = {key: versions for key, versions in API_VERSIONS.items() if key not in (71, 72)}


class StandIn:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames: list[tuple[int, int, bytes]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def take(self) -> list[tuple[int, int, bytes]]:
        with self.lock:
            frames, self.frames = self.frames, []
        return frames

    def _accept(self) -> None:
        while True:
            connection, _ = self.listener.accept()
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        frames = FrameReader(1 << 24)
        with connection:
            while data := connection.recv(65536):
                frames.feed(data)
                while (frame := frames.next_frame()) is not None:
                    header, body = decode_request(frame)
                    with self.lock:
                        self.frames.append((header.api_key, header.api_version, frame))
                    response = self._answer(header, body)
                    if response is not None:
                        connection.sendall(response)

    def _answer(self, header, body) -> bytes | None:
        key = header.api_key
        if key == 18:
            return encode_response(header, {"api_keys": [
                {"api_key": k, "min_version": low, "max_version": high}
                for k, (low, high) in ADVERTISED.items()]})
        if key == 3:
            partitions = [{"partition_index": 0, "leader_id": 0, "leader_epoch": 0,
                           "replica_nodes": [0], "isr_nodes": [0]}]
            return encode_response(header, {
                "brokers": [{"node_id": 0, "host": "127.0.0.1", "port": self.port}],
                "cluster_id": "golden-cluster", "controller_id": 0,
                "topics": [{"name": TOPIC, "topic_id": TOPIC_ID, "partitions": partitions}]})
        if key == 22:
            return encode_response(header, {"producer_id": 1000, "producer_epoch": 0})
        if key == 0:
            if body.acks == 0:
                return None
            return encode_response(header, {"responses": [
                {"name": topic.name, "partition_responses": [
                    {"index": p.index, "base_offset": 0} for p in topic.partition_data]}
                for topic in body.topic_data]})
        return encode_response(header, {"error_code": 35})


def main() -> None:
    import confluent_kafka
    import kafka
    from kafka.admin import KafkaAdminClient

    stand_in = StandIn()
    bootstrap = f"127.0.0.1:{stand_in.port}"

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="golden-admin")
    admin.list_topics()
    admin.close()
    report(f"kafka-python {kafka.__version__} KafkaAdminClient(client_id='golden-admin').list_topics()",
           stand_in.take())

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-producer",
                                   acks=1, linger_ms=0, enable_idempotence=False)
    producer.send(TOPIC, key=b"k1", value=b"v1", partition=0, timestamp_ms=1700000000000).get(timeout=10)
    producer.close()
    report(f"kafka-python {kafka.__version__} KafkaProducer(client_id='golden-producer', acks=1)"
           ".send(key=b'k1', value=b'v1', timestamp_ms=1700000000000)", stand_in.take())

    # A pinned old broker version: no ApiVersions, non-flexible Metadata and Produce.
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-pinned",
                                   api_version=(2, 0, 0), acks=1, linger_ms=0, enable_idempotence=False)
    producer.send(TOPIC, key=b"k1", value=b"v1", partition=0, timestamp_ms=1700000000000).get(timeout=10)
    producer.close()
    report(f"kafka-python {kafka.__version__} KafkaProducer(client_id='golden-pinned', api_version=(2, 0, 0),"
           " acks=1).send(key=b'k1', value=b'v1', timestamp_ms=1700000000000)", stand_in.take())

    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "client.id": "golden-rdkafka",
                                         "acks": 1, "linger.ms": 0, "enable.idempotence": False})
    producer.produce(TOPIC, key=b"k1", value=b"v1", partition=0, timestamp=1700000000000)
    assert producer.flush(10) == 0
    report(f"confluent-kafka {confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})"
           " Producer(client.id='golden-rdkafka', acks=1).produce(key=b'k1', value=b'v1')", stand_in.take())


def report(title: str, frames: list[tuple[int, int, bytes]]) -> None:
    print(f"# {title}")
    for api_key, api_version, frame in frames:
        print(f"({api_key}, {api_version}): {frame.hex()!r}")
    print()


if __name__ == "__main__":
    main()
