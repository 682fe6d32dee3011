"""Debian's kcat (librdkafka 2.0) against a real `gregor serve` process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

INSTALL_COMMAND = "apt-get install -y kcat"
KCAT_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def kcat() -> str:
    """Path of kcat; installs Debian's package when missing and we are root, else fails
    saying what to run."""
    path = shutil.which("kcat")
    if path is None and os.geteuid() == 0:
        for command in (["apt-get", "install", "-y", "kcat"],
                        ["sh", "-c", "apt-get update && apt-get install -y kcat"]):
            subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=600,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            path = shutil.which("kcat")
            if path is not None:
                break
    if path is None:
        pytest.fail(f"kcat is not installed and could not be installed here; run: "
                    f"sudo {INSTALL_COMMAND}")
    return path


def run_kcat(kcat: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([kcat, *args], input=stdin, capture_output=True, text=True,
                            timeout=KCAT_TIMEOUT_S)
    assert result.returncode == 0, f"kcat {' '.join(args)} exited {result.returncode}:\n" \
                                   f"{result.stderr}"
    return result.stdout


def create_topic(address: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=15_000)
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
    finally:
        admin.close()


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_and_consume_keyed_messages_with_headers(gregor, kcat, codec):
    topic = f"kcat-{codec}"
    create_topic(gregor.address, topic, 2)
    lines = [f"key-{i}:value {i} {'z' * (i % 50)}" for i in range(500)]
    before_ms = int(time.time() * 1000)
    run_kcat(kcat, "-P", "-b", gregor.address, "-t", topic, "-p", "1", "-K:",
             "-H", "source=kcat", "-H", "trace=abc-123", "-X", f"compression.codec={codec}",
             stdin="\n".join(lines) + "\n")
    after_ms = int(time.time() * 1000)

    output = run_kcat(kcat, "-C", "-b", gregor.address, "-t", topic, "-p", "1", "-o", "beginning",
                      "-e", "-q", "-f", r"%p|%o|%k|%s|%h|%T\n")
    records = [line.split("|") for line in output.splitlines()]
    assert [fields[:5] for fields in records] == [
        ["1", str(i), f"key-{i}", line.split(":", 1)[1], "source=kcat,trace=abc-123"]
        for i, line in enumerate(lines)]
    assert all(before_ms - 1000 <= int(fields[5]) <= after_ms + 1000 for fields in records)

    # The same bytes as another client sees them.
    consumer = KafkaConsumer(bootstrap_servers=gregor.address, group_id=None,
                             enable_auto_commit=False)
    try:
        partition = TopicPartition(topic, 1)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < len(lines) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                seen += batch
    finally:
        consumer.close()
    assert [(r.key, r.value, list(r.headers)) for r in seen] == [
        (f"key-{i}".encode(), line.split(":", 1)[1].encode(),
         [("source", b"kcat"), ("trace", b"abc-123")]) for i, line in enumerate(lines)]


def test_consume_partition_0_is_empty_when_everything_went_to_partition_1(gregor, kcat):
    create_topic(gregor.address, "kcat-split", 2)
    run_kcat(kcat, "-P", "-b", gregor.address, "-t", "kcat-split", "-p", "1", stdin="only\n")
    assert run_kcat(kcat, "-C", "-b", gregor.address, "-t", "kcat-split", "-p", "0",
                    "-o", "beginning", "-e", "-q", "-f", r"%o:%s\n") == ""
    assert run_kcat(kcat, "-C", "-b", gregor.address, "-t", "kcat-split", "-p", "1",
                    "-o", "beginning", "-e", "-q", "-f", r"%o:%s\n") == "0:only\n"


def test_metadata_listing(gregor, kcat):
    create_topic(gregor.address, "kcat-listed", 3)
    listing = json.loads(run_kcat(kcat, "-L", "-J", "-b", gregor.address, "-t", "kcat-listed"))
    assert listing["brokers"] == [{"id": gregor.node_id, "name": f"{gregor.host}:{gregor.port}"}]
    (topic,) = listing["topics"]
    assert topic["topic"] == "kcat-listed"
    assert [(p["partition"], p["leader"], [r["id"] for r in p["replicas"]],
             [r["id"] for r in p["isrs"]]) for p in topic["partitions"]] == \
        [(p, gregor.node_id, [gregor.node_id], [gregor.node_id]) for p in range(3)]


def test_metadata_listing_of_all_topics(gregor, kcat):
    create_topic(gregor.address, "kcat-a", 1)
    create_topic(gregor.address, "kcat-b", 2)
    listing = json.loads(run_kcat(kcat, "-L", "-J", "-b", gregor.address))
    assert sorted((t["topic"], len(t["partitions"])) for t in listing["topics"]) == \
        [("kcat-a", 1), ("kcat-b", 2)]
