"""A real 3-broker cluster (ZooKeeper and broker processes started by `gregor cluster`):
acks=all writes go on while the leader of each partition is killed with kill -9 in turn
and restarted; every acknowledged message is there exactly once afterwards, and a consumer
group reading all along keeps going (its coordinator moves with the leaderships too)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from broker import cluster_cli
from broker.zookeeper.store import ZkStore

TOPIC = "replicated"
PARTITIONS = 3
CLIENT_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 60.0


def create_replicated_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3,
                                            config={"min.insync.replicas": "2"})],
                                  operation_timeout=30)
    futures[TOPIC].result(timeout=60)


def leaders(zookeeper: str) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader, ISR), read from ZooKeeper."""
    store = ZkStore(zookeeper)
    store.connect()
    try:
        found = {}
        for partition in range(PARTITIONS):
            state = store.partition_state(TOPIC, partition)
            found[partition] = (state.leader, list(state.isr))
        return found
    finally:
        store.close()


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


class Writer:
    """Writes numbered messages with an idempotent acks=all producer until stopped;
    keeps the numbers the broker acknowledged."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                  "acks": "all", "linger.ms": 5,
                                  "message.timeout.ms": 120000})
        self.acknowledged: list[int] = []
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, error, message) -> None:
        if error is None:
            self.acknowledged.append(int(message.value()))
        else:
            self.failed.append(str(error))

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            self.producer.produce(TOPIC, str(number).encode(), partition=number % PARTITIONS,
                                  on_delivery=self._delivered)
            number += 1
            self.producer.poll(0)
            time.sleep(0.002)
        self.producer.flush(120)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(150)


class GroupReader:
    """A consumer in a group, committing as it goes, reading until stopped; keeps what it
    read."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "keeps-going",
                                  "auto.offset.reset": "earliest",
                                  "auto.commit.interval.ms": 500})
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.consumer.subscribe([TOPIC])
        while not self._stop.is_set():
            for message in self.consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is None:
                    self.seen.add(int(message.value()))

    def start(self) -> None:
        self._thread.start()

    def read_until(self, wanted: set[int], timeout_s: float) -> None:
        wait_until(lambda: wanted <= self.seen, timeout_s,
                   f"the group reading {len(wanted - self.seen)} more message(s)")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.consumer.close()


def read_everything(bootstrap: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover-check",
                         "enable.auto.commit": False})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p),
                                                  timeout=CLIENT_TIMEOUT_S)[1]
                for p in range(PARTITIONS)}
        consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        seen: list[int] = []
        positions = {p: 0 for p in range(PARTITIONS)}
        deadline = time.monotonic() + 120
        while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10000, timeout=1.0):
                if message.error() is None:
                    seen.append(int(message.value()))
                    positions[message.partition()] = message.offset() + 1
        return seen
    finally:
        consumer.close()


def test_kill_9_of_each_leader_in_turn_loses_nothing(tmp_path, report_figures):
    # A 6 s ZooKeeper session: a killed broker is noticed (and replaced) within seconds.
    state = cluster_cli.up(tmp_path / "cluster", 3, None, {"zookeeper.session.timeout.ms": "6000"})
    try:
        bootstrap = state.bootstrap
        create_replicated_topic(bootstrap)
        wait_until(lambda: all(len(isr) == 3 for _, isr in leaders(state.zookeeper).values()),
                   FAILOVER_TIMEOUT_S, "every partition with a full ISR")
        writer = Writer(bootstrap)
        writer.start()
        reader = GroupReader(bootstrap)
        reader.start()
        failover_s = []
        group_progress = []
        try:
            time.sleep(2)
            for partition in range(PARTITIONS):
                leader, _ = leaders(state.zookeeper)[partition]
                killed_at = time.monotonic()
                cluster_cli.kill(tmp_path / "cluster", leader)
                wait_until(lambda: leaders(state.zookeeper)[partition][0] not in (leader, -1),
                           FAILOVER_TIMEOUT_S, f"a new leader for partition {partition}")
                failover_s.append(time.monotonic() - killed_at)
                # The group keeps going: it reads what is acknowledged after the failover.
                count_at_failover = len(writer.acknowledged)
                wait_until(lambda: len(writer.acknowledged) >= count_at_failover + 500,
                           FAILOVER_TIMEOUT_S, "500 writes acknowledged after the failover")
                written_after = set(writer.acknowledged[count_at_failover:])
                reader.read_until(written_after, FAILOVER_TIMEOUT_S)
                group_progress.append(len(written_after))
                cluster_cli.start(tmp_path / "cluster", leader)
                wait_until(lambda: all(len(isr) == 3
                                       for _, isr in leaders(state.zookeeper).values()),
                           FAILOVER_TIMEOUT_S, f"broker {leader} back in every ISR")
            time.sleep(2)
        finally:
            writer.stop()
        acknowledged = set(writer.acknowledged)
        try:
            reader.read_until(acknowledged, FAILOVER_TIMEOUT_S)
        finally:
            reader.stop()
        seen = read_everything(bootstrap)
        lost = acknowledged - set(seen)
        duplicates = len(seen) - len(set(seen))
        report_figures(f"acknowledged {len(acknowledged)}, lost {len(lost)}, duplicates "
                       f"{duplicates}, failover s {[round(s, 2) for s in failover_s]}, "
                       f"delivery errors {len(writer.failed)}, group read {len(reader.seen)} "
                       f"(of them written after each failover: {group_progress})")
        assert len(acknowledged) > 1000
        assert (sorted(lost), duplicates) == ([], 0)
    finally:
        cluster_cli.down(tmp_path / "cluster")


def test_a_stopped_broker_hands_its_leaderships_over_first(tmp_path):
    """`gregor cluster stop` (SIGTERM): the broker moves each partition it leads to
    another ISR member before it goes, out of their ISRs itself."""
    directory = tmp_path / "cluster"
    state = cluster_cli.up(directory, 3, None, {})
    try:
        create_replicated_topic(state.bootstrap)
        wait_until(lambda: all(len(isr) == 3 for _, isr in leaders(state.zookeeper).values()),
                   FAILOVER_TIMEOUT_S, "every partition with a full ISR")
        stopping, _ = leaders(state.zookeeper)[0]
        led = sorted(p for p, (leader, _) in leaders(state.zookeeper).items()
                     if leader == stopping)
        cluster_cli.stop(directory, stopping)
        log_text = Path(state.brokers[stopping].log_path).read_text()
        assert f"controlled shutdown: handed over {len(led)} leadership(s)" in log_text
        after = leaders(state.zookeeper)
        assert all(after[p][0] not in (stopping, -1) and stopping not in after[p][1]
                   for p in led), after
    finally:
        cluster_cli.down(directory)
