"""Consumer groups on a real `gregor serve` process, driven by kafka-python: members share
partitions, leave, crash, resume from committed offsets, survive a broker kill -9, rejoin
as static members; the group admin APIs.

Members subscribe and poll on their own threads (tests/integration/group_members.py);
a member that must die without leaving runs in a child process killed by its PID."""
from __future__ import annotations

import time

import kafka
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

CLIENT = "kafka-python"
PARTITIONS = 6
EXACTLY_ONCE_MESSAGES = 30_000
PHASE_MESSAGES = 3_000
JOIN_TIMEOUT_S = 30.0
CONSUME_TIMEOUT_S = 60.0


# -- helpers ---------------------------------------------------------------------------

def admin_client(address: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=15_000)


def create_topic(address: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = admin_client(address)
    try:
        result = admin.create_topics([NewTopic(topic, partitions, 1)])
        assert [(t["name"], t["error_code"]) for t in result["topics"]] == [(topic, 0)]
    finally:
        admin.close()


def produce(address: str, topic: str, messages: list[tuple[bytes, bytes]]) -> list[Record]:
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


def committed_offsets(address: str, group_id: str) -> dict[int, tuple[int, str]]:
    """partition -> (committed offset, metadata), from OffsetFetch through the admin client."""
    admin = admin_client(address)
    try:
        offsets = admin.list_group_offsets(group_id)[group_id]
    finally:
        admin.close()
    return {tp.partition: (answer.offset, answer.metadata) for tp, answer in offsets.items()}


def committed_positions(address: str, group_id: str) -> dict[int, int]:
    return {partition: offset
            for partition, (offset, _) in committed_offsets(address, group_id).items()}


def describe_group(address: str, group_id: str) -> dict:
    admin = admin_client(address)
    try:
        return admin.describe_groups([group_id])[group_id]
    finally:
        admin.close()


def described_assignments(description: dict) -> dict[str, tuple[str | None, frozenset[int]]]:
    """member id -> (group instance id, assigned partitions) from a DescribeGroups answer."""
    assignments = {}
    for member in description["members"]:
        partitions = frozenset(partition
                               for topic in member["member_assignment"]["assigned_partitions"]
                               for partition in topic["partitions"])
        assignments[member["member_id"]] = (member["group_instance_id"], partitions)
    return assignments


def shares_partitions(members) -> bool:
    return members_share_partitions(members, PARTITIONS)


def start_members(address: str, topic: str, group_id: str, count: int,
                  **config) -> list[ThreadMember]:
    return [ThreadMember(CLIENT, address, topic, group_id, **config).start()
            for _ in range(count)]


def wait_consumed_and_committed(address: str, group_id: str, members, produced: list[Record],
                                timeout_s: float = CONSUME_TIMEOUT_S) -> None:
    """Until the members consumed as many records as produced and the group's committed
    offsets are the end offsets of what was produced."""
    wait_until(lambda: len(consumed_by(members)) >= len(produced), timeout_s,
               f"{len(produced)} records consumed")
    wait_until(lambda: committed_positions(address, group_id) == end_offsets(produced), 15.0,
               "committed offsets at the end offsets", interval_s=0.2)


# -- 1. exactly once between three members ---------------------------------------------

def test_three_members_consume_30000_keyed_messages_exactly_once(gregor):
    topic, group_id = "group-exactly-once", "exactly-once"
    create_topic(gregor.address, topic)
    members = start_members(gregor.address, topic, group_id, 3)
    try:
        wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S, "3 members share 6 partitions")
        produced = produce(gregor.address, topic, group_messages("once", EXACTLY_ONCE_MESSAGES))
        assert sorted(end_offsets(produced)) == list(range(PARTITIONS))
        wait_consumed_and_committed(gregor.address, group_id, members, produced)
        assignments = [member.assignment for member in members]
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert_exactly_once(consumed_by(members), produced)
    for member, assignment in zip(members, assignments):
        assert {record.partition for record in member.consumed()} == assignment


# -- 2. a member leaves ------------------------------------------------------------------

def test_member_that_leaves_hands_its_partitions_to_the_others(gregor):
    topic, group_id = "group-leave", "leave"
    create_topic(gregor.address, topic)
    members = start_members(gregor.address, topic, group_id, 3)
    try:
        wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S, "3 members share 6 partitions")
        before = produce(gregor.address, topic, group_messages("before", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, members, before)

        leaving, staying = members[0], members[1:]
        left_partitions = leaving.assignment
        leaving.close()  # LeaveGroup
        took_s = wait_until(lambda: shares_partitions(staying), SESSION_TIMEOUT_MS / 1000,
                            "the other 2 members take over all 6 partitions")
        print(f"kafka-python: 2 members took over {sorted(left_partitions)} {took_s:.2f} s "
              "after the third left")
        description = describe_group(gregor.address, group_id)
        assert description["group_state"] == "Stable"
        assert set(described_assignments(description).values()) == \
            {(None, member.assignment) for member in staying}

        after = produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, members, before + after)
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert_exactly_once(consumed_by(members), before + after)
    assert_exactly_once([r for r in consumed_by(staying) if r.key.startswith(b"after")], after)
    taken_over = {r.partition for m in staying for r in m.consumed() if r.key.startswith(b"after")}
    assert left_partitions <= taken_over


# -- 3. a member killed without leaving --------------------------------------------------

def test_killed_member_is_evicted_after_its_session_timeout(gregor, tmp_path):
    topic, group_id = "group-kill", "kill"
    create_topic(gregor.address, topic)
    victim = ProcessMember(CLIENT, gregor.address, topic, group_id, tmp_path / "victim.log")
    survivors = start_members(gregor.address, topic, group_id, 2)
    everyone = [victim, *survivors]
    try:
        wait_until(lambda: shares_partitions(everyone), JOIN_TIMEOUT_S,
                   f"3 members share 6 partitions; victim stderr: {victim.stderr_text()[-2000:]}")
        before = produce(gregor.address, topic, group_messages("before", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, everyone, before)
        victim_member_id = victim.identity[0]
        victim_partitions = victim.assignment

        victim.kill()  # kill -9: no LeaveGroup
        killed_s = time.monotonic()
        # Kafka keeps a silent member until its session times out, connection closed or not.
        still_there = described_assignments(describe_group(gregor.address, group_id))
        assert time.monotonic() - killed_s < SESSION_TIMEOUT_MS / 1000 - 2
        assert still_there[victim_member_id] == (None, victim_partitions)

        wait_until(lambda: shares_partitions(survivors), SESSION_TIMEOUT_MS / 1000 + 10,
                   "the 2 survivors take over all 6 partitions")
        took_s = time.monotonic() - killed_s
        print(f"kafka-python: survivors took over {sorted(victim_partitions)} {took_s:.2f} s "
              f"after kill -9 (session timeout {SESSION_TIMEOUT_MS} ms)")
        # The last heartbeat came at most one interval before the kill.
        assert took_s >= (SESSION_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS) / 1000 - 0.5
        assert victim_member_id not in described_assignments(
            describe_group(gregor.address, group_id))

        after = produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, everyone, before + after)
    finally:
        victim.kill()
        close_all(survivors)
    assert victim.errors == []
    assert_no_member_errors(survivors)
    assert_exactly_once(consumed_by(everyone), before + after)
    assert_exactly_once([r for r in consumed_by(survivors) if r.key.startswith(b"after")], after)


# -- 4. a restarted group resumes from its committed offsets --------------------------

def test_restarted_group_resumes_from_committed_offsets(gregor):
    topic, group_id = "group-resume", "resume"
    create_topic(gregor.address, topic)
    first = start_members(gregor.address, topic, group_id, 3)
    try:
        wait_until(lambda: shares_partitions(first), JOIN_TIMEOUT_S, "3 members share 6 partitions")
        before = produce(gregor.address, topic, group_messages("before", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, first, before)
    finally:
        close_all(first)
    assert_no_member_errors(first)
    assert_exactly_once(consumed_by(first), before)
    assert describe_group(gregor.address, group_id)["group_state"] == "Empty"

    after = produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
    assert committed_positions(gregor.address, group_id) == end_offsets(before)
    second = start_members(gregor.address, topic, group_id, 3)
    try:
        wait_until(lambda: shares_partitions(second), JOIN_TIMEOUT_S, "3 new members share 6 partitions")
        wait_consumed_and_committed(gregor.address, group_id, second, after)
    finally:
        close_all(second)
    assert_no_member_errors(second)
    assert_exactly_once(consumed_by(second), after)
    assert committed_positions(gregor.address, group_id) == end_offsets(before + after)


# -- 5. committed offsets survive a broker kill -9 ---------------------------------------

def test_committed_offsets_survive_broker_kill_9(gregor):
    topic, group_id = "group-crash", "crash"
    create_topic(gregor.address, topic)
    before = produce(gregor.address, topic, group_messages("before", PHASE_MESSAGES))
    ends = end_offsets(before)
    # Commit half of every partition, with metadata, as a consumer of the group.
    checkpoint = {partition: (end // 2, f"checkpoint-{partition}") for partition, end in ends.items()}
    consumer = KafkaConsumer(bootstrap_servers=gregor.address, group_id=group_id,
                             enable_auto_commit=False, request_timeout_ms=15_000)
    try:
        consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, metadata, -1)
                         for partition, (offset, metadata) in checkpoint.items()},
                        timeout_ms=15_000)
    finally:
        consumer.close(autocommit=False)
    assert committed_offsets(gregor.address, group_id) == checkpoint

    gregor.kill()
    gregor.restart()
    print(f"kafka-python: broker ready {gregor.ready_after_s:.2f} s after kill -9 and restart")
    assert committed_offsets(gregor.address, group_id) == checkpoint
    consumer = KafkaConsumer(bootstrap_servers=gregor.address, group_id=group_id,
                             enable_auto_commit=False, request_timeout_ms=15_000)
    try:
        for partition, (offset, metadata) in checkpoint.items():
            assert consumer.committed(TopicPartition(topic, partition), metadata=True,
                                      timeout_ms=15_000) == \
                OffsetAndMetadata(offset, metadata, -1)
    finally:
        consumer.close(autocommit=False)

    after = produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
    rest = [r for r in before if r.offset >= checkpoint[r.partition][0]] + after
    members = start_members(gregor.address, topic, group_id, 2)
    try:
        wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S, "2 members share 6 partitions")
        wait_consumed_and_committed(gregor.address, group_id, members, rest)
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert_exactly_once(consumed_by(members), rest)


# -- 6. static members rejoin without a rebalance ----------------------------------------

def test_static_member_restarted_within_session_timeout_keeps_generation_and_partitions(
        gregor, tmp_path):
    topic, group_id = "group-static", "static"
    session_timeout_ms = 15_000  # room for a Python process to start again
    create_topic(gregor.address, topic)
    staying = [ThreadMember(CLIENT, gregor.address, topic, group_id, instance_id=f"instance-{i}",
                            session_timeout_ms=session_timeout_ms).start() for i in range(2)]
    wait_until(lambda: shares_partitions(staying), JOIN_TIMEOUT_S, "2 static members share 6")
    restarting = ProcessMember(CLIENT, gregor.address, topic, group_id, tmp_path / "first.log",
                               instance_id="instance-2", session_timeout_ms=session_timeout_ms)
    restarted = None
    try:
        everyone = [*staying, restarting]
        wait_until(lambda: shares_partitions(everyone) and
                   len({m.identity[1] for m in everyone}) == 1, JOIN_TIMEOUT_S,
                   "3 static members share 6 partitions in one generation")
        generation_id = restarting.identity[1]
        before_members = described_assignments(describe_group(gregor.address, group_id))
        staying_events = [list(member.rebalance_events) for member in staying]
        old_member_id, old_partitions = restarting.identity[0], restarting.assignment

        restarting.kill()  # a crashed process: a static member sends no LeaveGroup anyway
        restarted = ProcessMember(CLIENT, gregor.address, topic, group_id,
                                  tmp_path / "second.log", instance_id="instance-2",
                                  session_timeout_ms=session_timeout_ms)
        wait_until(lambda: restarted.assignment, JOIN_TIMEOUT_S,
                   f"the restarted instance-2 is assigned; stderr {restarted.stderr_text()[-2000:]}")
        assert restarted.assignment == old_partitions
        new_member_id, new_generation_id = restarted.identity
        assert new_generation_id == generation_id
        assert new_member_id != old_member_id

        description = describe_group(gregor.address, group_id)
        assert description["group_state"] == "Stable"
        expected = {member_id: answer for member_id, answer in before_members.items()
                    if member_id != old_member_id}
        expected[new_member_id] = ("instance-2", old_partitions)
        assert described_assignments(description) == expected

        produced = produce(gregor.address, topic, group_messages("static", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, [*staying, restarted], produced)
        # No rebalance reached the members that stayed, and their generation is the same.
        assert [member.rebalance_events for member in staying] == staying_events
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

def test_group_of_three_is_stable_soon_after_the_last_member_joins(gregor):
    topic, group_id = "group-stable-time", "stable-time"
    create_topic(gregor.address, topic)
    members = start_members(gregor.address, topic, group_id, 2)
    admin = admin_client(gregor.address)
    try:
        wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S, "2 members share 6")
        third = ThreadMember(CLIENT, gregor.address, topic, group_id).start()
        members.append(third)
        wait_until(lambda: third.started_s > 0, 10.0, "the third member started")

        def stable_with_three() -> bool:
            description = admin.describe_groups([group_id])[group_id]
            return description["group_state"] == "Stable" and len(description["members"]) == 3

        wait_until(lambda: shares_partitions(members) and stable_with_three(), 10.0,
                   "3 members assigned and the group Stable", interval_s=0.005)
        took_s = time.monotonic() - third.started_s
        print(f"kafka-python: 3rd member started -> group Stable, all assigned: {took_s * 1000:.0f} ms "
              f"(heartbeat.interval.ms {HEARTBEAT_INTERVAL_MS}, "
              "group.initial.rebalance.delay.ms 0)")
        assert took_s < 10.0
    finally:
        admin.close()
        close_all(members)
    assert_no_member_errors(members)


# -- 8. the group admin APIs ------------------------------------------------------------

def test_group_admin_list_describe_delete_and_offsets(gregor):
    topic, active, idle = "group-admin", "admin-active", "admin-idle"
    create_topic(gregor.address, topic)
    produced = produce(gregor.address, topic, group_messages("admin", 600))
    ends = end_offsets(produced)
    admin = admin_client(gregor.address)
    members = start_members(gregor.address, topic, active, 2)
    try:
        wait_until(lambda: shares_partitions(members), JOIN_TIMEOUT_S, "2 members share 6")
        wait_consumed_and_committed(gregor.address, active, members, produced)

        # An admin commit with no member creates an Empty group.
        assert admin.alter_group_offsets(idle, {TopicPartition(topic, p): OffsetAndMetadata(
            p * 10, f"idle-{p}", -1) for p in range(PARTITIONS)}) == \
            {TopicPartition(topic, p): NoError for p in range(PARTITIONS)}

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
        assert committed_positions(gregor.address, active) == ends
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
        assert committed_positions(gregor.address, active) == \
            {p: end for p, end in ends.items() if p != 0}
        assert admin.alter_group_offsets(active, {TopicPartition(topic, 1): OffsetAndMetadata(
            7, "moved", -1)}) == {TopicPartition(topic, 1): NoError}
        assert committed_offsets(gregor.address, active)[1] == (7, "moved")
        reset = admin.reset_group_offsets(active, {TopicPartition(topic, 2): OffsetSpec.EARLIEST,
                                                   TopicPartition(topic, 3): 5})
        assert reset == {TopicPartition(topic, 2): {"error": NoError, "offset": 0},
                         TopicPartition(topic, 3): {"error": NoError, "offset": 5}}
        assert committed_positions(gregor.address, active) == \
            {1: 7, 2: 0, 3: 5, 4: ends[4], 5: ends[5]}
        assert committed_offsets(gregor.address, idle) == \
            {p: (p * 10, f"idle-{p}") for p in range(PARTITIONS)}

        assert admin.delete_groups([active, idle]) == {active: "OK", idle: "OK"}
        assert {g["group_id"] for g in admin.list_groups()} & {active, idle} == set()
        assert committed_offsets(gregor.address, active) == {}
        assert admin.describe_groups([active])[active]["group_state"] == "Dead"
    finally:
        admin.close()
