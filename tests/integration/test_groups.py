"""Consumer groups on a real `gregor serve` process, driven by kafka-python and by
confluent-kafka (librdkafka, classic protocol): members share partitions, leave, crash,
resume from committed offsets, survive a broker kill -9, rejoin as static members; the
group admin APIs.

A scenario both clients play alike takes the `client` fixture and runs once per client;
what only one client's API can show (kafka-python's offset delete and reset,
confluent-kafka's simple-group flag and coordinator) is a test of its own. Members
subscribe and poll on their own threads (tests/integration/group_members.py); a member
that must die without leaving runs in a child process killed by its PID."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Iterator

import kafka
import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition as ConfluentTopicPartition,
)
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic, OffsetSpec
from kafka.errors import (
    GroupSubscribedToTopicError,
    NoError,
    NonEmptyGroupError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from .group_members import (
    HEARTBEAT_INTERVAL_MS,
    SESSION_TIMEOUT_MS,
    ProcessMember,
    Record,
    ThreadMember,
    assert_exactly_once,
    assert_no_member_errors,
    close_all,
    consumed_by,
    end_offsets,
    group_messages,
    shares_partitions as members_share_partitions,
    wait_until,
)
from .test_confluent_kafka import create_topic as confluent_create_topic, produce_all

PARTITIONS = 6
EXACTLY_ONCE_MESSAGES = 30_000
PHASE_MESSAGES = 3_000
STATIC_SETTLE_S = 1.0  # how long the static group must keep its generation before the restart
ADMIN_MESSAGES = 600
JOIN_TIMEOUT_S = 30.0
CONSUME_TIMEOUT_S = 60.0
ADMIN_TIMEOUT_S = 15.0


# -- the two clients, seen alike -------------------------------------------------------

@dataclass(frozen=True)
class GroupDescription:
    state: str  # Kafka's name of the group state: "Stable", "Empty", "Dead", ...
    members: dict[str, tuple[str | None, frozenset[int]]]  # member id -> (instance id, partitions)


class GroupClient(ABC):
    """What the scenarios ask of a client; each subclass does it with its own client."""

    name: str  # also the client's name for ThreadMember and ProcessMember
    reports_generation_id: bool  # whether members can tell their generation id

    @abstractmethod
    def admin(self, address: str) -> AbstractContextManager:
        """The client's own admin client, for as long as the with block lasts."""

    @abstractmethod
    def create_topic(self, address: str, topic: str, partitions: int = PARTITIONS) -> None:
        """Creates the topic, replication factor 1; fails on any error."""

    @abstractmethod
    def produce(self, address: str, topic: str, messages: list[tuple[bytes, bytes]]) -> list[Record]:
        """Sends keyed messages with acks=all; returns them with their partition and offset."""

    @abstractmethod
    def committed_offsets(self, address: str, group_id: str) -> dict[int, tuple[int, str]]:
        """partition -> (committed offset, metadata), from OffsetFetch through the admin client."""

    @abstractmethod
    def describe_with(self, admin, group_id: str) -> GroupDescription:
        """The group as DescribeGroups tells it through `admin`."""

    @abstractmethod
    def commit_as_member(self, address: str, group_id: str, topic: str,
                         offsets: dict[int, tuple[int, str]]) -> None:
        """Commits partition -> (offset, metadata) as a consumer of the group (no member id)."""

    @abstractmethod
    def committed_as_member(self, address: str, group_id: str,
                            topic: str) -> dict[int, tuple[int, str]]:
        """partition -> (offset, metadata) of every partition, as a consumer of the group asks."""

    def committed_positions(self, address: str, group_id: str) -> dict[int, int]:
        return {partition: offset
                for partition, (offset, _) in self.committed_offsets(address, group_id).items()}

    def describe_group(self, address: str, group_id: str) -> GroupDescription:
        with self.admin(address) as admin:
            return self.describe_with(admin, group_id)


class KafkaPythonGroupClient(GroupClient):
    """Topics, producing, committed offsets and group descriptions through kafka-python."""

    name = "kafka-python"
    reports_generation_id = True

    @contextmanager
    def admin(self, address: str) -> Iterator[KafkaAdminClient]:
        admin = KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=15_000)
        try:
            yield admin
        finally:
            admin.close()

    def create_topic(self, address: str, topic: str, partitions: int = PARTITIONS) -> None:
        with self.admin(address) as admin:
            result = admin.create_topics([NewTopic(topic, partitions, 1)])
        assert [(t["name"], t["error_code"]) for t in result["topics"]] == [(topic, 0)]

    def produce(self, address: str, topic: str, messages: list[tuple[bytes, bytes]]) -> list[Record]:
        """Sends keyed messages (default partitioner, acks=all); returns them with the
        partition and offset the broker acknowledged."""
        producer = KafkaProducer(bootstrap_servers=address, acks="all", linger_ms=20,
                                 batch_size=256 * 1024, request_timeout_ms=15_000,
                                 max_block_ms=15_000)
        try:
            futures = [(key, value, producer.send(topic, key=key, value=value))
                       for key, value in messages]
            producer.flush(timeout=120)
            produced = []
            for key, value, future in futures:
                metadata = future.get(timeout=60)
                produced.append(Record(metadata.partition, metadata.offset, key, value))
            return produced
        finally:
            producer.close(timeout=10)

    def committed_offsets(self, address: str, group_id: str) -> dict[int, tuple[int, str]]:
        """partition -> (committed offset, metadata), from OffsetFetch through the admin client."""
        with self.admin(address) as admin:
            offsets = admin.list_group_offsets(group_id)[group_id]
        return {tp.partition: (answer.offset, answer.metadata) for tp, answer in offsets.items()}

    def describe_with(self, admin: KafkaAdminClient, group_id: str) -> GroupDescription:
        description = admin.describe_groups([group_id])[group_id]
        return GroupDescription(description["group_state"], described_assignments(description))

    def commit_as_member(self, address: str, group_id: str, topic: str,
                         offsets: dict[int, tuple[int, str]]) -> None:
        consumer = KafkaConsumer(bootstrap_servers=address, group_id=group_id,
                                 enable_auto_commit=False, request_timeout_ms=15_000)
        try:
            consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, metadata, -1)
                             for partition, (offset, metadata) in offsets.items()},
                            timeout_ms=15_000)
        finally:
            consumer.close(autocommit=False)

    def committed_as_member(self, address: str, group_id: str,
                            topic: str) -> dict[int, tuple[int, str]]:
        consumer = KafkaConsumer(bootstrap_servers=address, group_id=group_id,
                                 enable_auto_commit=False, request_timeout_ms=15_000)
        try:
            answers = {partition: consumer.committed(TopicPartition(topic, partition),
                                                     metadata=True, timeout_ms=15_000)
                       for partition in range(PARTITIONS)}
        finally:
            consumer.close(autocommit=False)
        # Committed with no leader epoch, so none comes back.
        assert {partition: answer.leader_epoch for partition, answer in answers.items()} == \
            {partition: -1 for partition in range(PARTITIONS)}
        return {partition: (answer.offset, answer.metadata) for partition, answer in answers.items()}


# librdkafka parses the state Kafka sends; these are the names Kafka sends.
KAFKA_STATE_NAMES = {
    ConsumerGroupState.UNKNOWN: "Unknown",
    ConsumerGroupState.PREPARING_REBALANCING: "PreparingRebalance",
    ConsumerGroupState.COMPLETING_REBALANCING: "CompletingRebalance",
    ConsumerGroupState.STABLE: "Stable",
    ConsumerGroupState.DEAD: "Dead",
    ConsumerGroupState.EMPTY: "Empty",
}


class ConfluentGroupClient(GroupClient):
    """Topics, producing, committed offsets and group descriptions through confluent-kafka."""

    name = "confluent-kafka"
    reports_generation_id = False  # librdkafka keeps its generation id to itself

    @contextmanager
    def admin(self, address: str) -> Iterator[AdminClient]:
        yield AdminClient({"bootstrap.servers": address})  # nothing to close

    def create_topic(self, address: str, topic: str, partitions: int = PARTITIONS) -> None:
        confluent_create_topic(address, topic, partitions)

    def produce(self, address: str, topic: str, messages: list[tuple[bytes, bytes]]) -> list[Record]:
        """Sends keyed messages (librdkafka's default partitioner, acks=all, idempotent);
        returns them with the partition and offset of their delivery reports, in send order."""
        delivered = produce_all(address, topic, [(key, value, None, 0) for key, value in messages])
        return [Record(partition, offset, key, value)
                for partition, offset, key, value, _, _ in delivered]

    def committed_offsets(self, address: str, group_id: str) -> dict[int, tuple[int, str]]:
        """partition -> (committed offset, metadata), from OffsetFetch through the admin client;
        partitions without a committed offset are left out."""
        with self.admin(address) as admin:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)])
            answer = futures[group_id].result(timeout=ADMIN_TIMEOUT_S)
        offsets = {}
        for tp in answer.topic_partitions:
            assert tp.error is None, tp.error
            if tp.offset >= 0:
                offsets[tp.partition] = (tp.offset, tp.metadata or "")
        return offsets

    def describe_with(self, admin: AdminClient, group_id: str) -> GroupDescription:
        description = confluent_description(admin, group_id)
        return GroupDescription(KAFKA_STATE_NAMES[description.state],
                                confluent_described_assignments(description))

    def commit_as_member(self, address: str, group_id: str, topic: str,
                         offsets: dict[int, tuple[int, str]]) -> None:
        consumer = Consumer({"bootstrap.servers": address, "group.id": group_id,
                             "enable.auto.commit": False})
        try:
            committed = consumer.commit(
                offsets=[ConfluentTopicPartition(topic, partition, offset, metadata)
                         for partition, (offset, metadata) in offsets.items()],
                asynchronous=False)
            assert sorted((tp.partition, tp.offset, tp.error) for tp in committed) == \
                [(partition, offset, None) for partition, (offset, _) in sorted(offsets.items())]
        finally:
            consumer.close()

    def committed_as_member(self, address: str, group_id: str,
                            topic: str) -> dict[int, tuple[int, str]]:
        consumer = Consumer({"bootstrap.servers": address, "group.id": group_id,
                             "enable.auto.commit": False})
        try:
            answer = consumer.committed([ConfluentTopicPartition(topic, p) for p in range(PARTITIONS)],
                                        timeout=ADMIN_TIMEOUT_S)
        finally:
            consumer.close()
        return {tp.partition: (tp.offset, tp.metadata) for tp in answer}


KAFKA_PYTHON = KafkaPythonGroupClient()
CONFLUENT = ConfluentGroupClient()


@pytest.fixture(params=[KAFKA_PYTHON, CONFLUENT], ids=lambda client: client.name)
def client(request) -> GroupClient:
    return request.param


# -- helpers ---------------------------------------------------------------------------

def described_assignments(description: dict) -> dict[str, tuple[str | None, frozenset[int]]]:
    """member id -> (group instance id, assigned partitions) from kafka-python's DescribeGroups."""
    assignments = {}
    for member in description["members"]:
        # Empty while the group rebalances: kafka-python then leaves it undecoded ("").
        assignment = member["member_assignment"] or {"assigned_partitions": []}
        partitions = frozenset(partition for topic in assignment["assigned_partitions"]
                               for partition in topic["partitions"])
        assignments[member["member_id"]] = (member["group_instance_id"], partitions)
    return assignments


def confluent_description(admin: AdminClient, group_id: str):
    return admin.describe_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)


def confluent_described_assignments(description) -> dict[str, tuple[str | None, frozenset[int]]]:
    """member id -> (group instance id, assigned partitions) from confluent-kafka's description."""
    return {member.member_id: (member.group_instance_id,
                               frozenset(tp.partition for tp in member.assignment.topic_partitions))
            for member in description.members}


def shares_partitions(members) -> bool:
    return members_share_partitions(members, PARTITIONS)


def start_members(client: GroupClient, address: str, topic: str, group_id: str, count: int,
                  **config) -> list[ThreadMember]:
    return [ThreadMember(client.name, address, topic, group_id, **config).start()
            for _ in range(count)]


def wait_consumed_and_committed(client: GroupClient, address: str, group_id: str, members,
                                produced: list[Record],
                                timeout_s: float = CONSUME_TIMEOUT_S) -> None:
    """Until the members consumed as many records as produced and the group's committed
    offsets are the end offsets of what was produced."""
    wait_until(lambda: len(consumed_by(members)) >= len(produced), timeout_s,
               f"{len(produced)} records consumed")
    wait_until(lambda: client.committed_positions(address, group_id) == end_offsets(produced),
               15.0, "committed offsets at the end offsets", interval_s=0.2)


def start_group_that_consumed(client: GroupClient, address: str, topic: str, group_id: str,
                              count: int, messages: list[tuple[bytes, bytes]], **config
                              ) -> tuple[list[ThreadMember], list[Record]]:
    """Creates the topic; `count` new members share its partitions, then consume and commit
    the messages produced to it. Returns the members (closed if that fails) and the records."""
    client.create_topic(address, topic)
    members = start_members(client, address, topic, group_id, count, **config)
    try:
        wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S,
                   f"{count} members share 6 partitions")
        produced = client.produce(address, topic, messages)
        wait_consumed_and_committed(client, address, group_id, members, produced)
    except BaseException:
        close_all(members)
        raise
    return members, produced


def new_members_consume_exactly(client: GroupClient, address: str, topic: str, group_id: str,
                                count: int, records: list[Record]) -> None:
    """`count` new members share the topic's partitions, consume and commit exactly
    `records` (where the group's committed offsets send them), and close."""
    members = start_members(client, address, topic, group_id, count)
    try:
        wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S,
                   f"{count} new members share 6 partitions")
        wait_consumed_and_committed(client, address, group_id, members, records)
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert_exactly_once(consumed_by(members), records)


# -- 1. exactly once between three members ---------------------------------------------

def test_three_members_consume_30000_keyed_messages_exactly_once(gregor, client):
    # Three members in one process share the GIL while they consume 30,000 records: on a
    # loaded machine a heartbeat can slip past 6 s, and the rebalance it causes would move
    # partitions mid-test. A longer session keeps the assignment fixed for the check below.
    members, produced = start_group_that_consumed(
        client, gregor.address, "group-exactly-once", "exactly-once", 3,
        group_messages("once", EXACTLY_ONCE_MESSAGES), session_timeout_ms=30_000)
    assignments = [member.assignment for member in members]
    close_all(members)
    assert_no_member_errors(members)
    assert sorted(end_offsets(produced)) == list(range(PARTITIONS))
    assert_exactly_once(consumed_by(members), produced)
    for member, assignment in zip(members, assignments):
        assert {record.partition for record in member.consumed()} == assignment


# -- 2. a member leaves ------------------------------------------------------------------

def test_member_that_leaves_hands_its_partitions_to_the_others(gregor, client):
    topic, group_id = "group-leave", "leave"
    members, before = start_group_that_consumed(client, gregor.address, topic, group_id, 3,
                                                group_messages("before", PHASE_MESSAGES))
    try:
        leaving, staying = members[0], members[1:]
        left_partitions = leaving.assignment
        leaving.close()  # LeaveGroup
        took_s = wait_until(lambda: shares_partitions(staying), SESSION_TIMEOUT_MS / 1000,
                            "the other 2 members take over all 6 partitions")
        print(f"{client.name}: 2 members took over {sorted(left_partitions)} {took_s:.2f} s "
              "after the third left")
        description = client.describe_group(gregor.address, group_id)
        assert description.state == "Stable"
        assert set(description.members.values()) == {(None, member.assignment) for member in staying}

        after = client.produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
        wait_consumed_and_committed(client, gregor.address, group_id, members, before + after)
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert_exactly_once(consumed_by(members), before + after)
    assert_exactly_once([r for r in consumed_by(staying) if r.key.startswith(b"after")], after)
    taken_over = {r.partition for r in consumed_by(staying) if r.key.startswith(b"after")}
    assert left_partitions <= taken_over


# -- 3. a member killed without leaving --------------------------------------------------

def test_killed_member_is_evicted_after_its_session_timeout(gregor, tmp_path, client):
    topic, group_id = "group-kill", "kill"
    client.create_topic(gregor.address, topic)
    victim = ProcessMember(client.name, gregor.address, topic, group_id, tmp_path / "victim.log")
    survivors = start_members(client, gregor.address, topic, group_id, 2)
    everyone = [victim, *survivors]
    try:
        wait_until(lambda: shares_partitions(everyone), JOIN_TIMEOUT_S,
                   f"3 members share 6 partitions; victim stderr: {victim.stderr_text()[-2000:]}")
        before = client.produce(gregor.address, topic, group_messages("before", PHASE_MESSAGES))
        wait_consumed_and_committed(client, gregor.address, group_id, everyone, before)
        victim_member_id = victim.identity[0]
        victim_partitions = victim.assignment

        victim.kill()  # kill -9: no LeaveGroup
        killed_s = time.monotonic()
        # Kafka keeps a silent member until its session times out, connection closed or not.
        still_there = client.describe_group(gregor.address, group_id).members
        assert time.monotonic() - killed_s < SESSION_TIMEOUT_MS / 1000 - 2
        assert still_there[victim_member_id] == (None, victim_partitions)

        wait_until(lambda: shares_partitions(survivors), SESSION_TIMEOUT_MS / 1000 + 10,
                   "the 2 survivors take over all 6 partitions")
        took_s = time.monotonic() - killed_s
        print(f"{client.name}: survivors took over {sorted(victim_partitions)} {took_s:.2f} s "
              f"after kill -9 (session timeout {SESSION_TIMEOUT_MS} ms)")
        # The last heartbeat came at most one interval before the kill.
        assert took_s >= (SESSION_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS) / 1000 - 0.5
        assert victim_member_id not in client.describe_group(gregor.address, group_id).members

        after = client.produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
        wait_consumed_and_committed(client, gregor.address, group_id, everyone, before + after)
    finally:
        victim.kill()
        close_all(survivors)
    assert victim.errors == []
    assert_no_member_errors(survivors)
    assert_exactly_once(consumed_by(everyone), before + after)
    assert_exactly_once([r for r in consumed_by(survivors) if r.key.startswith(b"after")], after)


# -- 4. a restarted group resumes from its committed offsets --------------------------

def test_restarted_group_resumes_from_committed_offsets(gregor, client):
    topic, group_id = "group-resume", "resume"
    first, before = start_group_that_consumed(client, gregor.address, topic, group_id, 3,
                                              group_messages("before", PHASE_MESSAGES))
    close_all(first)
    assert_no_member_errors(first)
    assert_exactly_once(consumed_by(first), before)
    assert client.describe_group(gregor.address, group_id).state == "Empty"

    after = client.produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
    assert client.committed_positions(gregor.address, group_id) == end_offsets(before)
    new_members_consume_exactly(client, gregor.address, topic, group_id, 3, after)
    assert client.committed_positions(gregor.address, group_id) == end_offsets(before + after)


# -- 5. committed offsets survive a broker kill -9 ---------------------------------------

def test_committed_offsets_survive_broker_kill_9(gregor, client):
    topic, group_id = "group-crash", "crash"
    client.create_topic(gregor.address, topic)
    before = client.produce(gregor.address, topic, group_messages("before", PHASE_MESSAGES))
    ends = end_offsets(before)
    assert sorted(ends) == list(range(PARTITIONS))
    # Commit half of every partition, with metadata, as a consumer of the group.
    checkpoint = {partition: (end // 2, f"checkpoint-{partition}") for partition, end in ends.items()}
    client.commit_as_member(gregor.address, group_id, topic, checkpoint)
    assert client.committed_offsets(gregor.address, group_id) == checkpoint

    gregor.kill()
    gregor.restart()
    print(f"{client.name}: broker ready {gregor.ready_after_s:.2f} s after kill -9 and restart")
    assert client.committed_offsets(gregor.address, group_id) == checkpoint
    assert client.committed_as_member(gregor.address, group_id, topic) == checkpoint

    after = client.produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
    rest = [r for r in before if r.offset >= checkpoint[r.partition][0]] + after
    new_members_consume_exactly(client, gregor.address, topic, group_id, 2, rest)


# -- 6. static members rejoin without a rebalance ----------------------------------------

def test_static_member_restarted_within_session_timeout_keeps_generation_and_partitions(
        gregor, tmp_path, client):
    topic, group_id = "group-static", "static"
    session_timeout_ms = 15_000  # room for a Python process to start again
    client.create_topic(gregor.address, topic)
    staying = [ThreadMember(client.name, gregor.address, topic, group_id,
                            instance_id=f"instance-{i}",
                            session_timeout_ms=session_timeout_ms).start() for i in range(2)]
    wait_until(lambda: shares_partitions(staying), JOIN_TIMEOUT_S, "2 static members share 6")
    restarting = ProcessMember(client.name, gregor.address, topic, group_id,
                               tmp_path / "first.log", instance_id="instance-2",
                               session_timeout_ms=session_timeout_ms)
    restarted = None
    try:
        everyone = [*staying, restarting]

        def settled_generation() -> int | None:
            """The members' one generation while the group is Stable with all three
            (librdkafka's members all report -1: for it the group's state tells)."""
            generations = {m.identity[1] for m in everyone}
            if len(generations) != 1 or not shares_partitions(everyone):
                return None
            description = client.describe_group(gregor.address, group_id)
            if (description.state == "Stable" and len(description.members) == 3
                    and {m.identity[1] for m in everyone} == generations):
                return generations.pop()
            return None

        def stays_settled() -> bool:
            # kafka-python's leader may rejoin once right after an assignment: the
            # generation the restart must keep is the one that lasts.
            first = settled_generation()
            if first is None:
                return False
            time.sleep(STATIC_SETTLE_S)
            return settled_generation() == first

        wait_until(stays_settled, JOIN_TIMEOUT_S,
                   "3 static members share 6 partitions, Stable in one generation")
        generation_id = restarting.identity[1]
        before_members = client.describe_group(gregor.address, group_id).members
        staying_events = [list(member.rebalance_events) for member in staying]
        old_member_id, old_partitions = restarting.identity[0], restarting.assignment

        restarting.kill()  # a crashed process: a static member sends no LeaveGroup anyway
        restarted = ProcessMember(client.name, gregor.address, topic, group_id,
                                  tmp_path / "second.log", instance_id="instance-2",
                                  session_timeout_ms=session_timeout_ms)
        wait_until(lambda: restarted.assignment, JOIN_TIMEOUT_S,
                   f"the restarted instance-2 is assigned; stderr {restarted.stderr_text()[-2000:]}")
        assert restarted.assignment == old_partitions
        new_member_id, new_generation_id = restarted.identity
        assert new_member_id not in ("", old_member_id)
        if client.reports_generation_id:
            assert new_generation_id == generation_id

        description = client.describe_group(gregor.address, group_id)
        assert description.state == "Stable"
        expected = {member_id: answer for member_id, answer in before_members.items()
                    if member_id != old_member_id}
        expected[new_member_id] = ("instance-2", old_partitions)
        assert description.members == expected

        # Every member committing after the restart shows that all three still share the
        # generation they had before it (the only evidence librdkafka gives).
        produced = client.produce(gregor.address, topic, group_messages("static", PHASE_MESSAGES))
        wait_consumed_and_committed(client, gregor.address, group_id, [*staying, restarted],
                                    produced)
        # No rebalance reached the members that stayed, and their generation is the same.
        assert [member.rebalance_events for member in staying] == staying_events
        if client.reports_generation_id:
            assert [member.identity[1] for member in staying] == [generation_id, generation_id]
    finally:
        restarting.kill()
        if restarted is not None:
            restarted.kill()
        close_all(staying)
    assert_no_member_errors(staying)
    assert restarted.errors == []
    assert_exactly_once(consumed_by([*staying, restarted]), produced)


# -- 7. time to Stable after the last member joins ----------------------------------------

def test_group_of_three_is_stable_soon_after_the_last_member_joins(gregor, client):
    topic, group_id = "group-stable-time", "stable-time"
    client.create_topic(gregor.address, topic)
    members = start_members(client, gregor.address, topic, group_id, 2)
    with client.admin(gregor.address) as admin:  # one admin: the polling must be quick
        try:
            wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S, "2 members share 6")
            third = ThreadMember(client.name, gregor.address, topic, group_id).start()
            members.append(third)
            wait_until(lambda: third.started_s > 0, 10.0, "the third member started")

            def stable_with_three() -> bool:
                description = client.describe_with(admin, group_id)
                return description.state == "Stable" and len(description.members) == 3

            wait_until(lambda: shares_partitions(members) and stable_with_three(), 10.0,
                       "3 members assigned and the group Stable", interval_s=0.005)
            took_s = time.monotonic() - third.started_s
            print(f"{client.name}: 3rd member started -> group Stable, all assigned: "
                  f"{took_s * 1000:.0f} ms (heartbeat.interval.ms {HEARTBEAT_INTERVAL_MS}, "
                  "group.initial.rebalance.delay.ms 0)")
            assert took_s < 10.0
        finally:
            close_all(members)
    assert_no_member_errors(members)


# -- 8. the group admin APIs, as each client has them ------------------------------------

def test_kafka_python_group_admin_list_describe_delete_and_offsets(gregor):
    topic, active, idle = "group-admin", "admin-active", "admin-idle"
    members, produced = start_group_that_consumed(KAFKA_PYTHON, gregor.address, topic, active, 2,
                                                  group_messages("admin", ADMIN_MESSAGES))
    ends = end_offsets(produced)
    admin = KafkaAdminClient(bootstrap_servers=gregor.address, request_timeout_ms=15_000)
    try:
        # An admin commit with no member creates an Empty group.
        assert admin.alter_group_offsets(idle, {TopicPartition(topic, p): OffsetAndMetadata(
            p * 10, f"idle-{p}", -1) for p in range(PARTITIONS)}) == \
            {TopicPartition(topic, p): NoError for p in range(PARTITIONS)}

        # What this test checks is the admin answers for a Stable group: on a loaded
        # machine a kafka-python member can miss a heartbeat and rejoin once, so wait
        # for the group to be Stable again first (bounded).
        wait_until(lambda: admin.describe_groups([active])[active]["group_state"] == "Stable",
                   JOIN_TIMEOUT_S, f"{active} Stable")
        listed = {(g["group_id"], g["protocol_type"], g["group_state"])
                  for g in admin.list_groups()}
        assert {(active, "consumer", "Stable"), (idle, "", "Empty")} <= listed
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Stable"])] == [active]
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Empty"])] == [idle]

        description = admin.describe_groups([active])[active]
        assert (description["group_state"], description["protocol_type"],
                description["protocol_data"], description["error"]) == \
            ("Stable", "consumer", "range", None)
        assert set(described_assignments(description).values()) == \
            {(None, member.assignment) for member in members}
        assert {member["member_id"] for member in description["members"]} == \
            {member.identity[0] for member in members}
        for member in description["members"]:
            assert (member["client_id"], member["client_host"], member["member_metadata"]["topics"]) \
                == (f"kafka-python-{kafka.__version__}", "/127.0.0.1", [topic])

        # Offsets of a group with members subscribed to the topic stay put.
        assert admin.delete_group_offsets(active, [TopicPartition(topic, 0)]) == \
            {TopicPartition(topic, 0): GroupSubscribedToTopicError}
        assert admin.alter_group_offsets(active, {TopicPartition(topic, 0): OffsetAndMetadata(
            0, "", -1)}) == {TopicPartition(topic, 0): UnknownMemberIdError}
        assert KAFKA_PYTHON.committed_positions(gregor.address, active) == ends
        assert admin.delete_groups([active]) == {active: NonEmptyGroupError.__name__}
    finally:
        close_all(members)
    try:
        assert_no_member_errors(members)
        assert admin.describe_groups([active])[active]["group_state"] == "Empty"
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Stable"])] == []

        # An empty group's offsets can be deleted, altered and reset.
        assert admin.delete_group_offsets(active, [TopicPartition(topic, 0)]) == \
            {TopicPartition(topic, 0): NoError}
        assert KAFKA_PYTHON.committed_positions(gregor.address, active) == \
            {p: end for p, end in ends.items() if p != 0}
        assert admin.alter_group_offsets(active, {TopicPartition(topic, 1): OffsetAndMetadata(
            7, "moved", -1)}) == {TopicPartition(topic, 1): NoError}
        assert KAFKA_PYTHON.committed_offsets(gregor.address, active)[1] == (7, "moved")
        reset = admin.reset_group_offsets(active, {TopicPartition(topic, 2): OffsetSpec.EARLIEST,
                                                   TopicPartition(topic, 3): 5})
        assert reset == {TopicPartition(topic, 2): {"error": NoError, "offset": 0},
                         TopicPartition(topic, 3): {"error": NoError, "offset": 5}}
        assert KAFKA_PYTHON.committed_positions(gregor.address, active) == \
            {1: 7, 2: 0, 3: 5, 4: ends[4], 5: ends[5]}
        assert KAFKA_PYTHON.committed_offsets(gregor.address, idle) == \
            {p: (p * 10, f"idle-{p}") for p in range(PARTITIONS)}

        assert admin.delete_groups([active, idle]) == {active: "OK", idle: "OK"}
        assert {g["group_id"] for g in admin.list_groups()} & {active, idle} == set()
        assert KAFKA_PYTHON.committed_offsets(gregor.address, active) == {}
        assert admin.describe_groups([active])[active]["group_state"] == "Dead"
    finally:
        admin.close()


def listed_groups(admin: AdminClient, states=None) -> dict[str, tuple[bool, ConsumerGroupState]]:
    """group id -> (is a simple consumer group, state) from ListGroups through confluent-kafka."""
    kwargs = {} if states is None else {"states": states}
    result = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_S, **kwargs).result(
        timeout=ADMIN_TIMEOUT_S)
    assert result.errors == []
    return {g.group_id: (g.is_simple_consumer_group, g.state) for g in result.valid}


def error_code(future) -> int | None:
    """The KafkaError code a confluent-kafka future failed with, None if it succeeded."""
    try:
        future.result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        return exc.args[0].code()
    return None


def test_confluent_group_admin_list_describe_delete_and_offsets(gregor):
    topic, active, idle = "group-admin", "admin-active", "admin-idle"
    members, produced = start_group_that_consumed(CONFLUENT, gregor.address, topic, active, 2,
                                                  group_messages("admin", ADMIN_MESSAGES))
    ends = end_offsets(produced)
    admin = AdminClient({"bootstrap.servers": gregor.address})
    try:
        # An admin commit with no member creates an Empty (simple) group.
        altered = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            idle, [ConfluentTopicPartition(topic, p, p * 10, f"idle-{p}") for p in range(PARTITIONS)])])
        answer = altered[idle].result(timeout=ADMIN_TIMEOUT_S)
        assert sorted((tp.partition, tp.offset, tp.error) for tp in answer.topic_partitions) == \
            [(p, p * 10, None) for p in range(PARTITIONS)]

        listed = listed_groups(admin)
        assert listed[active] == (False, ConsumerGroupState.STABLE)
        assert listed[idle] == (True, ConsumerGroupState.EMPTY)
        assert list(listed_groups(admin, {ConsumerGroupState.STABLE})) == [active]
        assert list(listed_groups(admin, {ConsumerGroupState.EMPTY})) == [idle]

        description = confluent_description(admin, active)
        assert (description.group_id, description.is_simple_consumer_group, description.state,
                description.partition_assignor, description.coordinator.id) == \
            (active, False, ConsumerGroupState.STABLE, "range", gregor.node_id)
        assert set(confluent_described_assignments(description).values()) == \
            {(None, member.assignment) for member in members}
        assert {member.member_id for member in description.members} == \
            {member.identity[0] for member in members}
        assert {(member.client_id, member.host) for member in description.members} == \
            {("rdkafka", "/127.0.0.1")}

        # A group with members keeps its offsets and is not deleted.
        refused = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            active, [ConfluentTopicPartition(topic, 0, 0)])])
        assert [(tp.partition, tp.error.code()) for tp in
                refused[active].result(timeout=ADMIN_TIMEOUT_S).topic_partitions] == \
            [(0, KafkaError.UNKNOWN_MEMBER_ID)]
        assert CONFLUENT.committed_positions(gregor.address, active) == ends
        assert error_code(admin.delete_consumer_groups([active])[active]) == \
            KafkaError.NON_EMPTY_GROUP
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert confluent_description(admin, active).state == ConsumerGroupState.EMPTY
    assert list(listed_groups(admin, {ConsumerGroupState.STABLE})) == []

    # An empty group's offsets can be altered.
    altered = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        active, [ConfluentTopicPartition(topic, 1, 7, "moved")])])
    assert [(tp.partition, tp.offset, tp.error)
            for tp in altered[active].result(timeout=ADMIN_TIMEOUT_S).topic_partitions] == \
        [(1, 7, None)]
    assert CONFLUENT.committed_offsets(gregor.address, active) == \
        {**{p: (end, "") for p, end in ends.items()}, 1: (7, "moved")}
    assert CONFLUENT.committed_offsets(gregor.address, idle) == \
        {p: (p * 10, f"idle-{p}") for p in range(PARTITIONS)}

    deleted = admin.delete_consumer_groups([active, idle])
    assert [error_code(deleted[group_id]) for group_id in (active, idle)] == [None, None]
    assert set(listed_groups(admin)) & {active, idle} == set()
    assert CONFLUENT.committed_offsets(gregor.address, active) == {}
    assert confluent_description(admin, active).state == ConsumerGroupState.DEAD


def test_confluent_list_groups_state_filter_with_no_match_is_empty(gregor):
    topic, group_id = "group-filter", "filter"
    CONFLUENT.create_topic(gregor.address, topic)
    members = start_members(CONFLUENT, gregor.address, topic, group_id, 1)
    admin = AdminClient({"bootstrap.servers": gregor.address})
    try:
        wait_until(lambda: members[0].assignment == frozenset(range(PARTITIONS)), JOIN_TIMEOUT_S,
                   "the member has all 6 partitions")
        assert listed_groups(admin, {ConsumerGroupState.COMPLETING_REBALANCING,
                                     ConsumerGroupState.EMPTY}) == {}
        assert listed_groups(admin, {ConsumerGroupState.STABLE}) == \
            {group_id: (False, ConsumerGroupState.STABLE)}
    finally:
        close_all(members)
    assert_no_member_errors(members)
