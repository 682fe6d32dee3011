"""`/metrics` (prometheus-client) on `metrics.listen`: requests and latency per API,
bytes in/out per topic, partitions and log end offsets."""
from __future__ import annotations

import socket
import struct
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from wire.api_keys import ApiKey
from wire.protocol import decode_response, encode_request
from wire.records import build_batch

TIMEOUT_S = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(sock: socket.socket, api_key: int, version: int, body: dict, correlation_id: int):
    sock.sendall(encode_request(api_key, version, correlation_id, "metrics-test", body))
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    received_id, response = decode_response(api_key, version, sock.recv(size, socket.MSG_WAITALL))
    assert received_id == correlation_id
    return response


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT_S) as answer:
        text = answer.read().decode("utf-8")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_count_requests_bytes_and_offsets(gregor_factory):
    metrics_port = free_port()
    gregor = gregor_factory({"metrics.listen": f"127.0.0.1:{metrics_port}"})
    batch = build_batch([(b"k", b"value", [], 1_700_000_000_000)])
    with socket.create_connection((gregor.host, gregor.port), timeout=TIMEOUT_S) as sock:
        created = call(sock, ApiKey.CREATE_TOPICS, 7, {
            "topics": [{"name": "metered", "num_partitions": 2, "replication_factor": 1}],
            "timeout_ms": 1000}, 1)
        assert created.topics[0].error_code == 0
        for correlation_id in (2, 3):
            produced = call(sock, ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 1000, "topic_data": [
                {"name": "metered", "partition_data": [{"index": 1, "records": batch}]}]},
                correlation_id)
            assert produced.responses[0].partition_responses[0].error_code == 0
        fetched = call(sock, ApiKey.FETCH, 12, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20,
            "session_id": 0, "session_epoch": -1, "topics": [{"topic": "metered", "partitions": [
                {"partition": 1, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]}, 4)
        assert len(fetched.responses[0].partitions[0].records) == 2 * len(batch)

    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in gregor.log_text()
    samples = scrape(metrics_port)
    assert samples[("gregor_requests_total", (("api", "PRODUCE"),))] == 2
    assert samples[("gregor_requests_total", (("api", "CREATE_TOPICS"),))] == 1
    assert samples[("gregor_request_latency_seconds_count", (("api", "FETCH"),))] == 1
    assert samples[("gregor_topic_bytes_in_total", (("topic", "metered"),))] == 2 * len(batch)
    assert samples[("gregor_topic_bytes_out_total", (("topic", "metered"),))] == 2 * len(batch)
    assert samples[("gregor_partitions", ())] == 2
    assert samples[("gregor_log_end_offset", (("partition", "0"), ("topic", "metered")))] == 0
    assert samples[("gregor_log_end_offset", (("partition", "1"), ("topic", "metered")))] == 2

