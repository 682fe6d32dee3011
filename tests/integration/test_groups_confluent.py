"""Consumer groups on a real `gregor serve` process, driven by confluent-kafka (librdkafka,
classic protocol): members share partitions, leave, crash, resume from committed offsets,
survive a broker kill -9, rejoin as static members; the group admin APIs.

Members subscribe and poll on their own threads (tests/integration/group_members.py);
a member that must die without leaving runs in a child process killed by its PID."""
from __future__ import annotations

import time

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

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

CLIENT = "confluent"
PARTITIONS = 6
EXACTLY_ONCE_MESSAGES = 30_000
PHASE_MESSAGES = 3_000
JOIN_TIMEOUT_S = 30.0
CONSUME_TIMEOUT_S = 60.0
ADMIN_TIMEOUT_S = 15.0


# -- helpers ---------------------------------------------------------------------------

def admin_client(address: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": address})


def create_topic(address: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = admin_client(address)  # must outlive the future: its handle does the work
    futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=10)
    assert futures[topic].result(timeout=ADMIN_TIMEOUT_S) is None


def produce(address: str, topic: str, messages: list[tuple[bytes, bytes]]) -> list[Record]:
    """Sends keyed messages (librdkafka's default partitioner, acks=all, idempotent);
    returns them with the partition and offset of their delivery reports, in send order."""
    producer = Producer({"bootstrap.servers": address, "acks": "all", "linger.ms": 20,
                         "enable.idempotence": True, "message.timeout.ms": 30_000})
    reports: dict[int, tuple[int, int]] = {}
    errors = []

    def on_delivery(index: int, err, message) -> None:
        if err is not None:
            errors.append((index, err))
        else:
            reports[index] = (message.partition(), message.offset())

    for index, (key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, key=key, value=value,
                                 on_delivery=lambda err, msg, index=index: on_delivery(index, err, msg))
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still queued after 60 s"
    assert errors == []
    return [Record(*reports[index], key, value) for index, (key, value) in enumerate(messages)]


def committed_offsets(address: str, group_id: str) -> dict[int, tuple[int, str]]:
    """partition -> (committed offset, metadata), from OffsetFetch through the admin client;
    partitions without a committed offset are left out."""
    admin = admin_client(address)
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)])
    answer = futures[group_id].result(timeout=ADMIN_TIMEOUT_S)
    offsets = {}
    for tp in answer.topic_partitions:
        assert tp.error is None, tp.error
        if tp.offset >= 0:
            offsets[tp.partition] = (tp.offset, tp.metadata or "")
    return offsets


def committed_positions(address: str, group_id: str) -> dict[int, int]:
    return {partition: offset
            for partition, (offset, _) in committed_offsets(address, group_id).items()}


def describe_group(address: str, group_id: str):
    admin = admin_client(address)
    return admin.describe_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)


def described_assignments(description) -> dict[str, tuple[str | None, frozenset[int]]]:
    """member id -> (group instance id, assigned partitions) from a DescribeGroups answer."""
    return {member.member_id: (member.group_instance_id,
                               frozenset(tp.partition for tp in member.assignment.topic_partitions))
            for member in description.members}


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


def error_code(future) -> int | None:
    """The KafkaError code a future failed with, None if it succeeded."""
    try:
        future.result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        return exc.args[0].code()
    return None


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
        print(f"confluent: 2 members took over {sorted(left_partitions)} {took_s:.2f} s "
              "after the third left")
        description = describe_group(gregor.address, group_id)
        assert description.state == ConsumerGroupState.STABLE
        assert set(described_assignments(description).values()) == \
            {(None, member.assignment) for member in staying}

        after = produce(gregor.address, topic, group_messages("after", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, members, before + after)
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert_exactly_once(consumed_by(members), before + after)
    assert_exactly_once([r for r in consumed_by(staying) if r.key.startswith(b"after")], after)
    taken_over = {r.partition for r in consumed_by(staying) if r.key.startswith(b"after")}
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
        print(f"confluent: survivors took over {sorted(victim_partitions)} {took_s:.2f} s "
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
    assert describe_group(gregor.address, group_id).state == ConsumerGroupState.EMPTY

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
    consumer = Consumer({"bootstrap.servers": gregor.address, "group.id": group_id,
                         "enable.auto.commit": False})
    try:
        committed = consumer.commit(
            offsets=[TopicPartition(topic, partition, offset, metadata)
                     for partition, (offset, metadata) in checkpoint.items()],
            asynchronous=False)
        assert sorted((tp.partition, tp.offset, tp.error) for tp in committed) == \
            [(partition, offset, None) for partition, (offset, _) in sorted(checkpoint.items())]
    finally:
        consumer.close()
    assert committed_offsets(gregor.address, group_id) == checkpoint

    gregor.kill()
    gregor.restart()
    print(f"confluent: broker ready {gregor.ready_after_s:.2f} s after kill -9 and restart")
    assert committed_offsets(gregor.address, group_id) == checkpoint
    consumer = Consumer({"bootstrap.servers": gregor.address, "group.id": group_id,
                         "enable.auto.commit": False})
    try:
        answer = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                    timeout=ADMIN_TIMEOUT_S)
        assert {tp.partition: (tp.offset, tp.metadata) for tp in answer} == checkpoint
    finally:
        consumer.close()

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

def test_static_member_restarted_within_session_timeout_keeps_its_partitions(gregor, tmp_path):
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
        wait_until(lambda: shares_partitions(everyone), JOIN_TIMEOUT_S,
                   "3 static members share 6 partitions")
        wait_until(lambda: len(describe_group(gregor.address, group_id).members) == 3 and
                   describe_group(gregor.address, group_id).state == ConsumerGroupState.STABLE,
                   JOIN_TIMEOUT_S, "the group Stable with 3 members", interval_s=0.1)
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
        new_member_id = restarted.identity[0]
        assert new_member_id not in ("", old_member_id)

        description = describe_group(gregor.address, group_id)
        assert description.state == ConsumerGroupState.STABLE
        expected = {member_id: answer for member_id, answer in before_members.items()
                    if member_id != old_member_id}
        expected[new_member_id] = ("instance-2", old_partitions)
        assert described_assignments(description) == expected

        # librdkafka does not show its generation; every member committing after the
        # restart shows that all three still share the generation they had before it.
        produced = produce(gregor.address, topic, group_messages("static", PHASE_MESSAGES))
        wait_consumed_and_committed(gregor.address, group_id, [*staying, restarted], produced)
        # No rebalance reached the members that stayed.
        assert [member.rebalance_events for member in staying] == staying_events
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
            description = admin.describe_consumer_groups([group_id])[group_id].result(
                timeout=ADMIN_TIMEOUT_S)
            return description.state == ConsumerGroupState.STABLE and len(description.members) == 3

        wait_until(lambda: shares_partitions(members) and stable_with_three(), 10.0,
                   "3 members assigned and the group Stable", interval_s=0.005)
        took_s = time.monotonic() - third.started_s
        print(f"confluent: 3rd member started -> group Stable, all assigned: {took_s * 1000:.0f} ms "
              f"(heartbeat.interval.ms {HEARTBEAT_INTERVAL_MS}, "
              "group.initial.rebalance.delay.ms 0)")
        assert took_s < 10.0
    finally:
        close_all(members)
    assert_no_member_errors(members)


# -- 8. the group admin APIs ------------------------------------------------------------

def listed_groups(admin: AdminClient, states=None) -> dict[str, tuple[bool, ConsumerGroupState]]:
    """group id -> (is a simple consumer group, state) from ListGroups."""
    kwargs = {} if states is None else {"states": states}
    result = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_S, **kwargs).result(
        timeout=ADMIN_TIMEOUT_S)
    assert result.errors == []
    return {g.group_id: (g.is_simple_consumer_group, g.state) for g in result.valid}


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

        # An admin commit with no member creates an Empty (simple) group.
        altered = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            idle, [TopicPartition(topic, p, p * 10, f"idle-{p}") for p in range(PARTITIONS)])])
        answer = altered[idle].result(timeout=ADMIN_TIMEOUT_S)
        assert sorted((tp.partition, tp.offset, tp.error) for tp in answer.topic_partitions) == \
            [(p, p * 10, None) for p in range(PARTITIONS)]

        listed = listed_groups(admin)
        assert listed[active] == (False, ConsumerGroupState.STABLE)
        assert listed[idle] == (True, ConsumerGroupState.EMPTY)
        assert list(listed_groups(admin, {ConsumerGroupState.STABLE})) == [active]
        assert list(listed_groups(admin, {ConsumerGroupState.EMPTY})) == [idle]

        description = describe_group(gregor.address, active)
        assert (description.group_id, description.is_simple_consumer_group, description.state,
                description.partition_assignor, description.coordinator.id) == \
            (active, False, ConsumerGroupState.STABLE, "range", gregor.node_id)
        assert set(described_assignments(description).values()) == \
            {(None, member.assignment) for member in members}
        assert {member.member_id for member in description.members} == \
            {member.identity[0] for member in members}
        assert {(member.client_id, member.host) for member in description.members} == \
            {("rdkafka", "/127.0.0.1")}

        # A group with members keeps its offsets and is not deleted.
        refused = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            active, [TopicPartition(topic, 0, 0)])])
        assert [(tp.partition, tp.error.code()) for tp in
                refused[active].result(timeout=ADMIN_TIMEOUT_S).topic_partitions] == \
            [(0, KafkaError.UNKNOWN_MEMBER_ID)]
        assert committed_positions(gregor.address, active) == ends
        assert error_code(admin.delete_consumer_groups([active])[active]) == \
            KafkaError.NON_EMPTY_GROUP
    finally:
        close_all(members)
    assert_no_member_errors(members)
    assert describe_group(gregor.address, active).state == ConsumerGroupState.EMPTY
    assert list(listed_groups(admin, {ConsumerGroupState.STABLE})) == []

    # An empty group's offsets can be altered.
    altered = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        active, [TopicPartition(topic, 1, 7, "moved")])])
    assert [(tp.partition, tp.offset, tp.error)
            for tp in altered[active].result(timeout=ADMIN_TIMEOUT_S).topic_partitions] == \
        [(1, 7, None)]
    assert committed_offsets(gregor.address, active) == \
        {**{p: (end, "") for p, end in ends.items()}, 1: (7, "moved")}
    assert committed_offsets(gregor.address, idle) == \
        {p: (p * 10, f"idle-{p}") for p in range(PARTITIONS)}

    deleted = admin.delete_consumer_groups([active, idle])
    assert [error_code(deleted[group_id]) for group_id in (active, idle)] == [None, None]
    assert set(listed_groups(admin)) & {active, idle} == set()
    assert committed_offsets(gregor.address, active) == {}
    assert describe_group(gregor.address, active).state == ConsumerGroupState.DEAD


def test_list_groups_state_filter_with_no_match_is_empty(gregor):
    topic, group_id = "group-filter", "filter"
    create_topic(gregor.address, topic)
    members = start_members(gregor.address, topic, group_id, 1)
    admin = admin_client(gregor.address)
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
