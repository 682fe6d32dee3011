"""Consumer group members for the group tests, for kafka-python and confluent-kafka.

A `ThreadMember` is a real consumer polled on its own thread: it records every record it
is given, commits after each non-empty batch, and notes its assignment and rebalance
callbacks. A `ProcessMember` is the same consumer in a child process (this module run as
`python -m tests.integration.group_members`), so a test can kill it with kill -9 by its
PID; the child reports on stdout as JSON lines.

Every wait is bounded; a member's own failures are kept in `errors` for the test to check."""
from __future__ import annotations

import argparse
import ctypes
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms, as Kafka's
HEARTBEAT_INTERVAL_MS = 500
POLL_TIMEOUT_S = 0.1
PROCESS_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, order=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def group_messages(prefix: str, count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs, every key unique so that each message can be told apart."""
    return [(f"{prefix}-key-{i:05d}".encode(), f"{prefix}-value-{i:05d}".encode())
            for i in range(count)]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str,
               interval_s: float = 0.02) -> float:
    """Polls predicate until true; returns the seconds it took. AssertionError after timeout_s."""
    started_s = time.monotonic()
    while not predicate():
        if time.monotonic() - started_s > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)
    return time.monotonic() - started_s


def assert_exactly_once(consumed: list[Record], produced: list[Record]) -> None:
    """Every produced record consumed once, with its key and value, and nothing else."""
    counts = Counter((record.partition, record.offset) for record in consumed)
    twice = sorted(position for position, count in counts.items() if count > 1)
    assert not twice, f"{len(twice)} record(s) consumed more than once, first {twice[:5]}"
    expected = {(record.partition, record.offset): record for record in produced}
    got = {(record.partition, record.offset): record for record in consumed}
    missing = sorted(expected.keys() - got.keys())
    extra = sorted(got.keys() - expected.keys())
    assert not missing and not extra, (f"{len(missing)} missing (first {missing[:5]}), "
                                       f"{len(extra)} unexpected (first {extra[:5]})")
    differing = [position for position in sorted(expected) if expected[position] != got[position]]
    assert not differing, (f"{len(differing)} record(s) with other key/value, first: "
                           f"{expected[differing[0]]} vs {got[differing[0]]}" if differing else "")


def end_offsets(produced: list[Record]) -> dict[int, int]:
    """Per partition, the offset after the last produced record."""
    ends: dict[int, int] = {}
    for record in produced:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


def shares_partitions(members, partitions: int) -> bool:
    """Every member has partitions, none twice, all `partitions` covered."""
    assignments = [member.assignment for member in members]
    return (all(assignments) and sum(len(a) for a in assignments) == partitions
            and frozenset().union(*assignments) == frozenset(range(partitions)))


def consumed_by(members) -> list[Record]:
    return [record for member in members for record in member.consumed()]


def close_all(members) -> None:
    """Stops every member's polling first, so none rebalances on another's leave."""
    for member in members:
        member.stop()
    for member in members:
        member.close()


def assert_no_member_errors(members) -> None:
    assert [member.errors for member in members] == [[] for _ in members]


# -- the two clients ---------------------------------------------------------------------

class KafkaPythonConsumer:
    """A kafka-python KafkaConsumer subscribed to one topic, manual commits."""

    def __init__(self, address: str, topic: str, group_id: str, instance_id: str | None,
                 session_timeout_ms: int, on_rebalance: Callable[[str, frozenset[int]], None],
                 **config) -> None:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                on_rebalance("revoked", frozenset(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned):
                on_rebalance("assigned", frozenset(tp.partition for tp in assigned))

        self._consumer = KafkaConsumer(
            bootstrap_servers=address, group_id=group_id, group_instance_id=instance_id,
            session_timeout_ms=session_timeout_ms, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            auto_offset_reset="earliest", enable_auto_commit=False, request_timeout_ms=15_000,
            **config)
        # kafka-python 3.0.12 can hang for good when a leader, having assigned without the
        # topic's metadata, rejoins as soon as the metadata arrives (seen on Apache Kafka
        # 4.4.0 as well): the members learn the topic's partitions before they join.
        partitions = self._consumer.partitions_for_topic(topic)
        assert partitions, f"no metadata for topic {topic}"
        self._consumer.subscribe([topic], listener=Listener())

    def poll(self) -> list[Record]:
        batches = self._consumer.poll(timeout_ms=int(POLL_TIMEOUT_S * 1000))
        return [Record(r.partition, r.offset, r.key, r.value)
                for batch in batches.values() for r in batch]

    def commit(self) -> None:
        self._consumer.commit(timeout_ms=15_000)

    def assignment(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self._consumer.assignment())

    def identity(self) -> tuple[str, int]:
        """(member id, generation id) of the last join."""
        metadata = self._consumer.group_metadata()
        return metadata.member_id, metadata.generation_id

    def close(self) -> None:
        self._consumer.close(autocommit=False, timeout_ms=10_000)


class ConfluentConsumer:
    """A confluent-kafka (librdkafka) Consumer subscribed to one topic, manual commits."""

    def __init__(self, address: str, topic: str, group_id: str, instance_id: str | None,
                 session_timeout_ms: int, on_rebalance: Callable[[str, frozenset[int]], None],
                 **config) -> None:
        from confluent_kafka import Consumer

        settings = {"bootstrap.servers": address, "group.id": group_id,
                    "session.timeout.ms": session_timeout_ms,
                    "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
                    "auto.offset.reset": "earliest", "enable.auto.commit": False}
        if instance_id is not None:
            settings["group.instance.id"] = instance_id
        settings.update(config)
        self._consumer = Consumer(settings)
        self._consumer.subscribe(
            [topic],
            on_assign=lambda consumer, partitions: on_rebalance(
                "assigned", frozenset(tp.partition for tp in partitions)),
            on_revoke=lambda consumer, partitions: on_rebalance(
                "revoked", frozenset(tp.partition for tp in partitions)))

    def poll(self) -> list[Record]:
        from confluent_kafka import KafkaException

        records = []
        for message in self._consumer.consume(num_messages=1000, timeout=POLL_TIMEOUT_S):
            if message.error() is not None:
                raise KafkaException(message.error())
            records.append(Record(message.partition(), message.offset(), message.key(),
                                  message.value()))
        return records

    def commit(self) -> None:
        self._consumer.commit(asynchronous=False)

    def assignment(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self._consumer.assignment())

    def identity(self) -> tuple[str, int]:
        # librdkafka does not expose the generation id; -1 says "unknown".
        return self._consumer.memberid() or "", -1

    def close(self) -> None:
        self._consumer.close()


CLIENTS = {"kafka-python": KafkaPythonConsumer, "confluent-kafka": ConfluentConsumer}


# -- a member on a thread --------------------------------------------------------------

class ThreadMember:
    """One consumer of the group, created and polled on its own thread."""

    def __init__(self, client: str, address: str, topic: str, group_id: str,
                 instance_id: str | None = None, session_timeout_ms: int = SESSION_TIMEOUT_MS,
                 **config) -> None:
        self.client = client
        self.instance_id = instance_id
        self.records: list[Record] = []
        self.assignment: frozenset[int] = frozenset()
        self.rebalance_events: list[tuple[str, frozenset[int]]] = []
        self.identity: tuple[str, int] = ("", -1)
        self.errors: list[BaseException] = []
        self.started_s = 0.0  # time.monotonic() when its consumer was being created
        self._arguments = (address, topic, group_id, instance_id, session_timeout_ms)
        self._config = config
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"member-{instance_id}",
                                        daemon=True)

    def start(self) -> "ThreadMember":
        self._thread.start()
        return self

    def _on_rebalance(self, kind: str, partitions: frozenset[int]) -> None:
        with self._lock:
            self.rebalance_events.append((kind, partitions))

    def _run(self) -> None:
        consumer = None
        try:
            self.started_s = time.monotonic()
            consumer = CLIENTS[self.client](*self._arguments, on_rebalance=self._on_rebalance,
                                            **self._config)
            while not self._stop.is_set():
                batch = consumer.poll()
                if batch:
                    with self._lock:
                        self.records.extend(batch)
                    consumer.commit()
                assignment = consumer.assignment()
                identity = consumer.identity()
                with self._lock:
                    self.assignment = assignment
                    self.identity = identity
        except BaseException as exc:  # the test asserts errors == []
            self.errors.append(exc)
        finally:
            if consumer is not None:
                try:
                    consumer.close()
                except BaseException as exc:
                    self.errors.append(exc)

    def consumed(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def stop(self) -> None:
        """Asks the thread to stop polling, close the consumer and end (see close())."""
        self._stop.set()

    def close(self, timeout_s: float = 20.0) -> None:
        """Stops polling and closes the consumer (a dynamic member leaves the group)."""
        self._stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"member {self.instance_id} did not close in {timeout_s} s"


# -- a member in a child process ---------------------------------------------------------

def _die_with_parent() -> None:
    # The child must not outlive a test run that was itself killed (PR_SET_PDEATHSIG = 1).
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class ProcessMember:
    """A group member in a child process; reads its JSON-line reports on a thread."""

    def __init__(self, client: str, address: str, topic: str, group_id: str, log_path: Path,
                 instance_id: str | None = None,
                 session_timeout_ms: int = SESSION_TIMEOUT_MS) -> None:
        command = [sys.executable, "-m", "tests.integration.group_members", client, address,
                   topic, group_id, "--session-timeout-ms", str(session_timeout_ms)]
        if instance_id is not None:
            command += ["--instance-id", instance_id]
        self.instance_id = instance_id
        self.records: list[Record] = []
        self.assignment: frozenset[int] = frozenset()
        self.rebalance_events: list[tuple[str, frozenset[int]]] = []
        self.identity: tuple[str, int] = ("", -1)
        self.errors: list[str] = []
        self.log_path = log_path
        self._lock = threading.Lock()
        with open(log_path, "ab") as log_file:
            self._popen = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=log_file,
                                           preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    def _read(self) -> None:
        for line in self._popen.stdout:
            report = json.loads(line)
            with self._lock:
                if "records" in report:
                    self.records.extend(Record(p, o, bytes.fromhex(k), bytes.fromhex(v))
                                        for p, o, k, v in report["records"])
                if "assignment" in report:
                    self.assignment = frozenset(report["assignment"])
                    self.identity = (report["member_id"], report["generation_id"])
                if "rebalance" in report:
                    self.rebalance_events.append((report["rebalance"],
                                                  frozenset(report["partitions"])))
                if "error" in report:
                    self.errors.append(report["error"])

    def consumed(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def kill(self) -> None:
        """kill -9 by PID: no LeaveGroup, no commit, no goodbye."""
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait(timeout=PROCESS_STOP_TIMEOUT_S)
        self._reader.join(PROCESS_STOP_TIMEOUT_S)

    def stderr_text(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""


def _child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="one consumer group member, reports on stdout")
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group_id")
    parser.add_argument("--instance-id")
    parser.add_argument("--session-timeout-ms", type=int, default=SESSION_TIMEOUT_MS)
    args = parser.parse_args(argv)

    def report(**fields) -> None:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    consumer = CLIENTS[args.client](
        args.address, args.topic, args.group_id, args.instance_id, args.session_timeout_ms,
        on_rebalance=lambda kind, partitions: report(rebalance=kind, partitions=sorted(partitions)))
    reported = None
    while True:  # until killed
        try:
            batch = consumer.poll()
            if batch:
                report(records=[(r.partition, r.offset, (r.key or b"").hex(), (r.value or b"").hex())
                                for r in batch])
                consumer.commit()
            current = (consumer.assignment(), consumer.identity())
            if current != reported:
                reported = current
                report(assignment=sorted(current[0]), member_id=current[1][0],
                       generation_id=current[1][1])
        except Exception as exc:  # reported, and the member goes on as a real app would
            report(error=repr(exc))
            time.sleep(POLL_TIMEOUT_S)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
