"""The KIP-848 consumer group protocol (`group.protocol=consumer`) on a real `gregor serve`
process, driven by confluent-kafka (librdkafka): server-side assignment through
ConsumerGroupHeartbeat, exactly-once sharing, a member leaving, resuming from committed
offsets, and the group seen through the admin APIs (ListGroups, ConsumerGroupDescribe)."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path


from confluent_kafka import Consumer, ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient

from .group_members import REPO_ROOT, Record, assert_exactly_once, end_offsets, group_messages, wait_until
from .test_groups import CONFLUENT

PARTITIONS = 6
PHASE_MESSAGES = 3_000
# Heartbeats every 500 ms so reconciliation (revoke, then assign) takes a second or two.
BROKER_SETTINGS = {"group.consumer.heartbeat.interval.ms": "500",
                   "group.consumer.min.heartbeat.interval.ms": "500"}
JOIN_TIMEOUT_S = 30.0
CONSUME_TIMEOUT_S = 60.0
ADMIN_TIMEOUT_S = 15.0


class ConsumerProtocolMember:
    """A confluent-kafka consumer with group.protocol=consumer on its own thread: it
    records what it is given and commits (synchronously) after each non-empty batch."""

    def __init__(self, address: str, topic: str, group_id: str) -> None:
        self.records: list[Record] = []
        self.assignment: frozenset[int] = frozenset()
        self.errors: list[BaseException] = []
        self._settings = {"bootstrap.servers": address, "group.id": group_id,
                          "group.protocol": "consumer", "auto.offset.reset": "earliest",
                          "enable.auto.commit": False}
        self._topic = topic
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        consumer = None
        try:
            consumer = Consumer(self._settings)
            consumer.subscribe([self._topic])
            while not self._stop.is_set():
                batch = []
                for message in consumer.consume(num_messages=1000, timeout=0.1):
                    if message.error() is not None:
                        raise KafkaException(message.error())
                    batch.append(Record(message.partition(), message.offset(), message.key(),
                                        message.value()))
                if batch:
                    with self._lock:
                        self.records.extend(batch)
                    consumer.commit(asynchronous=False)
                assignment = frozenset(tp.partition for tp in consumer.assignment())
                with self._lock:
                    self.assignment = assignment
        except BaseException as exc:  # the test asserts errors == []
            self.errors.append(exc)
        finally:
            if consumer is not None:
                try:
                    consumer.close()  # leaves the group: heartbeat with member epoch -1
                except BaseException as exc:
                    self.errors.append(exc)

    def consumed(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def close(self, timeout_s: float = 20.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"member did not close in {timeout_s} s"


def consumed_by(members) -> list[Record]:
    return [record for member in members for record in member.consumed()]


def shares_all_partitions(members) -> bool:
    assignments = [member.assignment for member in members]
    return (all(assignments) and sum(len(a) for a in assignments) == PARTITIONS
            and frozenset().union(*assignments) == frozenset(range(PARTITIONS)))


def wait_consumed_and_committed(address: str, group_id: str, members, produced: list[Record]) -> None:
    wait_until(lambda: len(consumed_by(members)) >= len(produced), CONSUME_TIMEOUT_S,
               f"{len(produced)} records consumed")
    wait_until(lambda: CONFLUENT.committed_positions(address, group_id) == end_offsets(produced), 15.0,
               "committed offsets at the end offsets", interval_s=0.2)


def test_three_members_share_leave_and_resume_from_commits(gregor_factory):
    broker = gregor_factory(BROKER_SETTINGS)
    topic, group_id = "kip848-orders", "kip848"
    CONFLUENT.create_topic(broker.address, topic, PARTITIONS)
    members = [ConsumerProtocolMember(broker.address, topic, group_id) for _ in range(3)]
    try:
        took_s = wait_until(lambda: shares_all_partitions(members), JOIN_TIMEOUT_S,
                            "3 members share 6 partitions")
        print(f"confluent (consumer protocol): 3 members share 6 partitions after {took_s:.2f} s")
        assert sorted(len(member.assignment) for member in members) == [2, 2, 2]
        first = CONFLUENT.produce(broker.address, topic, group_messages("first", PHASE_MESSAGES))
        wait_consumed_and_committed(broker.address, group_id, members, first)
        assert_exactly_once(consumed_by(members), first)

        admin = AdminClient({"bootstrap.servers": broker.address})
        listed = admin.list_consumer_groups().result(timeout=ADMIN_TIMEOUT_S)
        assert [(group.group_id, group.state) for group in listed.valid] == [(group_id, ConsumerGroupState.STABLE)]
        description = admin.describe_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == "uniform"
        assert {frozenset(tp.partition for tp in member.assignment.topic_partitions)
                for member in description.members} == {member.assignment for member in members}

        leaving, staying = members[0], members[1:]
        left_partitions = leaving.assignment
        leaving.close()
        took_s = wait_until(lambda: shares_all_partitions(staying), JOIN_TIMEOUT_S,
                            "the other 2 members take over all 6 partitions")
        print(f"confluent (consumer protocol): 2 members took over {sorted(left_partitions)} "
              f"{took_s:.2f} s after the third left")
        second = CONFLUENT.produce(broker.address, topic, group_messages("second", PHASE_MESSAGES))
        wait_consumed_and_committed(broker.address, group_id, members, first + second)
    finally:
        for member in members:
            member.close()
    assert [member.errors for member in members] == [[], [], []]
    assert_exactly_once(consumed_by(members), first + second)
    assert_exactly_once([r for r in consumed_by(members[1:]) if r.key.startswith(b"second")], second)

    # Everyone left; a new member resumes at the committed offsets.
    third = CONFLUENT.produce(broker.address, topic, group_messages("third", 600))
    resumed = ConsumerProtocolMember(broker.address, topic, group_id)
    try:
        wait_until(lambda: len(resumed.consumed()) >= len(third), CONSUME_TIMEOUT_S, "600 records consumed")
        time.sleep(1.0)  # anything read twice would arrive now
    finally:
        resumed.close()
    assert resumed.errors == []
    assert_exactly_once(resumed.consumed(), third)


# -- the Java client (kafka-clients 4.4, built by compat/setup) ------------------------------

JAVA_LIB = REPO_ROOT / "compat" / "clients" / "java" / "target" / "lib"
JAVA_CONSUMER = """
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/** args: bootstrap topic group expectedRecords stopAtEpochMs; prints what it read and the
 *  partitions it owned 2 s before stopping (while the other members still run). */
public class KipConsumer {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("group.id", args[2]);
        props.put("group.protocol", "consumer");
        props.put("auto.offset.reset", "earliest");
        props.put("enable.auto.commit", "false");
        int expected = Integer.parseInt(args[3]);
        long deadline = Long.parseLong(args[4]);
        List<String> read = new ArrayList<>();
        List<Integer> partitions = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer =
                 new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(args[1]));
            while (read.size() < expected && System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                for (ConsumerRecord<byte[], byte[]> record : batch) {
                    read.add(record.partition() + ":" + record.offset());
                }
                if (!batch.isEmpty()) consumer.commitSync();
                if (read.size() >= expected || deadline - System.currentTimeMillis() > 2000) {
                    partitions.clear();
                    for (TopicPartition tp : consumer.assignment()) partitions.add(tp.partition());
                    Collections.sort(partitions);
                }
            }
            System.out.println("partitions " + partitions.toString().replaceAll("[\\\\[\\\\] ]", ""));
            System.out.println("read " + String.join(",", read));
        }
    }
}
"""


def java_consumer_class(directory: Path) -> Path:
    # The Java client's jars come from compat/clients/java's Maven build; build it when
    # missing, and fail loudly (not skip) when there is no JDK or Maven to do it.
    missing = [tool for tool in ("javac", "mvn") if shutil.which(tool) is None]
    assert not missing, f"{', '.join(missing)} not found: install a JDK 17+ and Maven " \
                        "(apt-get install -y openjdk-17-jdk-headless maven)"
    if not JAVA_LIB.is_dir():
        subprocess.run(["mvn", "-q", "-B", "package"], cwd=JAVA_LIB.parent.parent, check=True,
                       timeout=600)
    (directory / "KipConsumer.java").write_text(JAVA_CONSUMER)
    subprocess.run(["javac", "-cp", f"{JAVA_LIB}/*", "KipConsumer.java"], cwd=directory, check=True,
                   timeout=120)
    return directory


def start_java_consumer(classes: Path, address: str, topic: str, group_id: str, expected: int,
                        stop_at_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
         "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{classes}:{JAVA_LIB}/*",
         "KipConsumer", address, topic, group_id, str(expected), str(int(stop_at_s * 1000))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def java_result(process: subprocess.Popen) -> tuple[frozenset[int], list[tuple[int, int]]]:
    """(partitions owned at the end, (partition, offset) of every record read)."""
    try:
        stdout, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in stdout.splitlines())
    partitions = frozenset(int(p) for p in lines["partitions"].split(",") if p)
    read = [tuple(int(x) for x in item.split(":")) for item in lines["read"].split(",") if item]
    return partitions, read


def test_java_consumers_share_a_topic_and_commit(gregor_factory, tmp_path):
    classes = java_consumer_class(tmp_path)
    broker = gregor_factory(BROKER_SETTINGS)
    topic, group_id = "kip848-java", "kip848-java"
    CONFLUENT.create_topic(broker.address, topic, PARTITIONS)
    first = CONFLUENT.produce(broker.address, topic, group_messages("first", 1_200))
    partitions, read = java_result(start_java_consumer(classes, broker.address, topic, group_id, 1_200,
                                                      time.time() + 30))
    assert partitions == frozenset(range(PARTITIONS))
    assert sorted(read) == sorted((record.partition, record.offset) for record in first)
    assert CONFLUENT.committed_positions(broker.address, group_id) == end_offsets(first)

    # Two members: each has half the partitions; together they read what is new once.
    second = CONFLUENT.produce(broker.address, topic, group_messages("second", 600))
    stop_at_s = time.time() + 10
    members = [start_java_consumer(classes, broker.address, topic, group_id, 1_000_000, stop_at_s)]
    time.sleep(1.0)
    members.append(start_java_consumer(classes, broker.address, topic, group_id, 1_000_000, stop_at_s))
    results = [java_result(member) for member in members]
    assert sorted(len(partitions) for partitions, _ in results) == [3, 3]
    assert results[0][0] | results[1][0] == frozenset(range(PARTITIONS))
    assert sorted(results[0][1] + results[1][1]) == sorted((r.partition, r.offset) for r in second)
    assert CONFLUENT.committed_positions(broker.address, group_id) == end_offsets(first + second)


def test_group_survives_a_broker_kill_and_members_carry_on(gregor_factory):
    broker = gregor_factory(BROKER_SETTINGS)
    topic, group_id = "kip848-restart", "kip848-restart"
    CONFLUENT.create_topic(broker.address, topic, PARTITIONS)
    members = [ConsumerProtocolMember(broker.address, topic, group_id) for _ in range(2)]
    try:
        wait_until(lambda: shares_all_partitions(members), JOIN_TIMEOUT_S, "2 members share 6 partitions")
        before = CONFLUENT.produce(broker.address, topic, group_messages("before", 1_200))
        wait_consumed_and_committed(broker.address, group_id, members, before)
        admin = AdminClient({"bootstrap.servers": broker.address})
        described = admin.describe_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)
        assignments = {member.assignment for member in members}

        broker.kill()
        broker.restart()  # same data dir and port: the members reconnect
        after = CONFLUENT.produce(broker.address, topic, group_messages("after", 1_200))
        wait_consumed_and_committed(broker.address, group_id, members, before + after)
        # The group came back from its records: same members, epochs and assignment.
        admin = AdminClient({"bootstrap.servers": broker.address})
        reloaded = admin.describe_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)
        assert sorted(member.member_id for member in reloaded.members) == \
            sorted(member.member_id for member in described.members)
        assert {member.assignment for member in members} == assignments
        # ... and nobody had to join again (a lost group answers UNKNOWN_MEMBER_ID, then
        # the members rejoin at epoch 0).
        assert broker.log_text().count(f"group {group_id}: member ") == 2
        assert "loaded" in broker.current_log_text()
    finally:
        for member in members:
            member.close()
    assert [member.errors for member in members] == [[], []]
    assert_exactly_once(consumed_by(members), before + after)
