"""Committed offsets, group deletion, retention, and state rebuilt from the records."""
from coordinator.group_records import OffsetCommitKey, OffsetCommitValue, encode_key, encode_value
from coordinator.groups import CoordinatorRecord, GroupConfig, GroupCoordinator, GroupState
from wire.errors import ErrorCode

from tests.coordinator.group_testing import (
    CONSUMER, GROUP, coordinator, join, stable_group, subscription, sync,
)


def fetched(partition: int, offset: int, leader_epoch: int = -1, metadata: str = "") -> dict:
    return {"partition_index": partition, "committed_offset": offset, "committed_leader_epoch": leader_epoch,
            "metadata": metadata, "error_code": ErrorCode.NONE}


def committed(topic: str, *partitions: int, error=ErrorCode.NONE) -> dict:
    return {"name": topic, "partitions": [{"partition_index": partition, "error_code": error}
                                          for partition in partitions]}


def test_simple_commit_then_fetch_with_metadata_and_leader_epoch():
    groups = coordinator()
    outcome = groups.offset_commit("simple", -1, "", None, -1,
                                   [("orders", 0, 42, 7, "checkpoint"), ("orders", 1, 10, -1, None),
                                    ("audit", 0, 3, 1, "")], now_ms=1000)
    assert outcome.response == [committed("orders", 0, 1), committed("audit", 0)]
    partition = groups.partition_for("simple")
    assert outcome.records == [
        CoordinatorRecord(partition, encode_key(OffsetCommitKey("simple", "orders", 0)),
                          encode_value(OffsetCommitValue(42, "checkpoint", 1000, leader_epoch=7))),
        CoordinatorRecord(partition, encode_key(OffsetCommitKey("simple", "orders", 1)),
                          encode_value(OffsetCommitValue(10, "", 1000))),
        CoordinatorRecord(partition, encode_key(OffsetCommitKey("simple", "audit", 0)),
                          encode_value(OffsetCommitValue(3, "", 1000, leader_epoch=1))),
    ]
    assert groups.offset_fetch("simple", [("orders", 0), ("orders", 5), ("audit", 0)]).response == {
        "group_id": "simple", "error_code": ErrorCode.NONE, "topics": [
            {"name": "orders", "partitions": [fetched(0, 42, 7, "checkpoint"), fetched(5, -1)]},
            {"name": "audit", "partitions": [fetched(0, 3, 1)]}]}
    assert groups.offset_fetch("simple", None).response == {
        "group_id": "simple", "error_code": ErrorCode.NONE, "topics": [
            {"name": "orders", "partitions": [fetched(0, 42, 7, "checkpoint"), fetched(1, 10)]},
            {"name": "audit", "partitions": [fetched(0, 3, 1)]}]}
    assert groups.offset_fetch("unknown", [("orders", 0)]).response == {
        "group_id": "unknown", "error_code": ErrorCode.NONE, "topics": [{"name": "orders", "partitions": [
            fetched(0, -1)]}]}
    assert groups.offset_fetch("unknown", None).response == {
        "group_id": "unknown", "error_code": ErrorCode.NONE, "topics": []}


def test_a_later_commit_replaces_the_earlier_one():
    groups = coordinator()
    groups.offset_commit("simple", -1, "", None, -1, [("orders", 0, 1, -1, "a")], now_ms=1)
    groups.offset_commit("simple", -1, "", None, -1, [("orders", 0, 2, 4, "b")], now_ms=2)
    assert groups.offset_fetch("simple", [("orders", 0)]).response["topics"] == [
        {"name": "orders", "partitions": [fetched(0, 2, 4, "b")]}]


def test_member_commits_are_checked_against_the_generation():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2)
    assert groups.offset_commit(GROUP, 1, follower, None, -1, [("orders", 0, 5, 0, "")],
                                now_ms=now).response == [committed("orders", 0)]
    assert groups.offset_commit(GROUP, 0, follower, None, -1, [("orders", 0, 6, 0, "")],
                                now_ms=now).response == [committed("orders", 0, error=ErrorCode.ILLEGAL_GENERATION)]
    assert groups.offset_commit(GROUP, 1, "ghost", None, -1, [("orders", 0, 6, 0, "")],
                                now_ms=now).response == [committed("orders", 0, error=ErrorCode.UNKNOWN_MEMBER_ID)]
    # Without member id and generation, only an Empty group takes commits.
    assert groups.offset_commit(GROUP, -1, "", None, -1, [("orders", 0, 6, 0, "")],
                                now_ms=now).response == [committed("orders", 0, error=ErrorCode.UNKNOWN_MEMBER_ID)]
    assert groups.offset_commit("nope", 3, "m", None, -1, [("orders", 0, 6, 0, "")], now_ms=now).response == [
        committed("orders", 0, error=ErrorCode.GROUP_ID_NOT_FOUND)]
    assert groups.offset_commit("nope", 3, "m", None, -1, [("orders", 0, 6, 0, "")], report_group_id_not_found=False,
                                now_ms=now).response == [committed("orders", 0, error=ErrorCode.ILLEGAL_GENERATION)]
    assert groups.offset_fetch(GROUP, [("orders", 0)]).response["topics"] == [
        {"name": "orders", "partitions": [fetched(0, 5, 0)]}]

    # A new member starts a rebalance; once it completes, the old generation is fenced
    # and commits wait for the assignment.
    join(groups, "join-c", now_ms=now + 1, client_id="client-c")
    join(groups, "rejoin-a", leader, now_ms=now + 2, client_id="client-a")
    join(groups, "rejoin-b", follower, now_ms=now + 3, client_id="client-b")
    assert groups.group_state(GROUP) is GroupState.COMPLETING_REBALANCE
    assert groups.offset_commit(GROUP, 2, follower, None, -1, [("orders", 0, 7, 0, "")], now_ms=now + 4).response == [
        committed("orders", 0, error=ErrorCode.REBALANCE_IN_PROGRESS)]
    assert groups.offset_commit(GROUP, 1, follower, None, -1, [("orders", 0, 7, 0, "")], now_ms=now + 4).response == [
        committed("orders", 0, error=ErrorCode.ILLEGAL_GENERATION)]


def test_commit_keeps_a_members_session_alive():
    groups = coordinator()
    [member], now = stable_group(groups, 1)
    groups.offset_commit(GROUP, 1, member, None, -1, [("orders", 0, 1, 0, "")], now_ms=now + 9000)
    assert groups.next_deadline() == now + 9000 + 10_000


def test_metadata_over_the_limit_is_refused_per_partition():
    groups = coordinator(offset_metadata_max_bytes=5)
    outcome = groups.offset_commit("simple", -1, "", None, -1,
                                   [("orders", 0, 1, -1, "12345"), ("orders", 1, 1, -1, "123456")], now_ms=0)
    assert outcome.response == [{"name": "orders", "partitions": [
        {"partition_index": 0, "error_code": ErrorCode.NONE},
        {"partition_index": 1, "error_code": ErrorCode.OFFSET_METADATA_TOO_LARGE}]}]
    assert len(outcome.records) == 1


def test_load_rebuilds_groups_and_offsets_from_the_records():
    groups = coordinator()
    log = []

    def keep(outcome):
        log.extend(outcome.records)
        return outcome

    for token, name in (("join-a", "a"), ("join-b", "b")):
        keep(join(groups, token, now_ms=0, client_id=f"client-{name}", group_instance_id=f"instance-{name}"))
    now = 0
    while groups.group_state(GROUP) is not GroupState.COMPLETING_REBALANCE:
        now = groups.next_deadline()
        for outcome in groups.expire(now):
            keep(outcome)
    keep(sync(groups, "sync-b", "instance-b-u2", 1, now_ms=now, group_instance_id="instance-b"))
    keep(sync(groups, "sync-a", "instance-a-u1", 1, now_ms=now, group_instance_id="instance-a",
              assignments=[("instance-a-u1", b"p0"), ("instance-b-u2", b"p1")]))
    keep(groups.offset_commit(GROUP, 1, "instance-a-u1", "instance-a", -1, [("orders", 0, 100, 3, "meta")],
                              now_ms=now + 1))
    keep(groups.offset_commit("simple", -1, "", None, -1, [("audit", 2, 9, -1, "")], now_ms=now + 2))
    keep(groups.offset_commit("gone", -1, "", None, -1, [("audit", 0, 1, -1, "")], now_ms=now + 3))
    keep(groups.delete_groups(["gone"], now_ms=now + 4))

    restarted = GroupCoordinator(GroupConfig())
    for partition in range(50):
        restarted.load(partition, [(record.key, record.value) for record in log if record.partition == partition],
                       now_ms=now + 100)
    assert restarted.describe_groups([GROUP, "simple", "gone"]).response == groups.describe_groups(
        [GROUP, "simple", "gone"]).response
    assert restarted.describe_groups([GROUP]).response[0]["group_state"] == "Stable"
    for group_id in (GROUP, "simple", "gone"):
        assert restarted.offset_fetch(group_id, None).response == groups.offset_fetch(group_id, None).response
    assert restarted.offset_fetch(GROUP, None).response["topics"] == [
        {"name": "orders", "partitions": [fetched(0, 100, 3, "meta")]}]
    assert restarted.list_groups().response == groups.list_groups().response
    assert restarted.group_generation(GROUP) == 1
    # The members carry on in generation 1; their sessions restarted at load time.
    assert restarted.heartbeat(GROUP, 1, "instance-b-u2", "instance-b", now_ms=now + 200).response is ErrorCode.NONE
    assert restarted.next_deadline() == now + 100 + 10_000
    assert sync(restarted, "again", "instance-b-u2", 1, now_ms=now + 300,
                group_instance_id="instance-b").replies == [("again", {
                    "error_code": ErrorCode.NONE, "protocol_type": CONSUMER, "protocol_name": "range",
                    "assignment": b"p1"})]


def test_replay_skips_record_types_it_does_not_keep():
    groups = coordinator()
    share_group_record_key = (10).to_bytes(2, "big") + (1).to_bytes(2, "big") + b"g"
    groups.replay(share_group_record_key, b"\x00\x00anything")
    assert groups.list_groups().response["groups"] == []


def test_delete_groups():
    groups = coordinator()
    stable_group(groups, 1)
    groups.offset_commit("done", -1, "", None, -1, [("orders", 0, 5, -1, ""), ("orders", 1, 6, -1, "")], now_ms=1)
    outcome = groups.delete_groups([GROUP, "done", "never"], now_ms=10)
    assert outcome.response == [
        {"group_id": GROUP, "error_code": ErrorCode.NON_EMPTY_GROUP},
        {"group_id": "done", "error_code": ErrorCode.NONE},
        {"group_id": "never", "error_code": ErrorCode.GROUP_ID_NOT_FOUND},
    ]
    partition = groups.partition_for("done")
    assert outcome.records == [
        CoordinatorRecord(partition, encode_key(OffsetCommitKey("done", "orders", 0)), None),
        CoordinatorRecord(partition, encode_key(OffsetCommitKey("done", "orders", 1)), None),
        CoordinatorRecord(partition, b"\x00\x02\x00\x04done", None),
    ]
    assert groups.offset_fetch("done", None).response["topics"] == []
    assert [group["group_id"] for group in groups.list_groups().response["groups"]] == [GROUP]
    assert groups.describe_groups(["done"]).response[0]["group_state"] == "Dead"


def test_offset_delete_refuses_topics_the_consumer_group_subscribes_to():
    groups = coordinator()
    [member], now = stable_group(groups, 1)
    groups.offset_commit(GROUP, 1, member, None, -1, [("orders", 0, 5, -1, ""), ("old", 0, 9, -1, "")], now_ms=now)
    outcome = groups.offset_delete(GROUP, [("orders", 0), ("old", 0), ("old", 1)], now_ms=now)
    assert outcome.response == {"error_code": ErrorCode.NONE, "topics": [
        committed("orders", 0, error=ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC), committed("old", 0, 1)]}
    assert outcome.records == [CoordinatorRecord(groups.partition_for(GROUP),
                                                 encode_key(OffsetCommitKey(GROUP, "old", 0)), None)]
    assert groups.offset_fetch(GROUP, None).response["topics"] == [
        {"name": "orders", "partitions": [fetched(0, 5)]}]
    assert groups.offset_delete("never", [("old", 0)], now_ms=now).response == {
        "error_code": ErrorCode.GROUP_ID_NOT_FOUND, "topics": []}


def test_offset_delete_of_a_non_consumer_group_with_members_is_refused():
    groups = coordinator()
    groups.join_group("t", "connect-cluster", "", None, "worker", "/h", 10_000, 30_000, "connect",
                      [("sessioned", b"")], require_known_member_id=False, now_ms=0)
    assert groups.offset_delete("connect-cluster", [("x", 0)], now_ms=1).response == {
        "error_code": ErrorCode.NON_EMPTY_GROUP, "topics": []}


def test_retention_expires_offsets_of_an_empty_group_then_deletes_it():
    config = GroupConfig(offsets_retention_minutes=1, offsets_retention_check_interval_ms=10_000,
                         group_initial_rebalance_delay_ms=0)
    groups = coordinator(config)
    join(groups, "join", now_ms=0, client_id="a", protocols=[("range", subscription("orders"))])
    groups.expire(0)
    sync(groups, "sync", "a-u1", 1, now_ms=0, assignments=[("a-u1", b"x")])
    groups.offset_commit(GROUP, 1, "a-u1", None, -1, [("orders", 0, 5, -1, "")], now_ms=1000)
    groups.leave_group(GROUP, [("a-u1", None, None)], now_ms=5000)  # Empty since 5000
    groups.offset_commit("simple", -1, "", None, -1, [("audit", 0, 1, -1, "")], now_ms=2000)

    outcomes = []
    for check_ms in range(10_000, 60_001, 10_000):
        assert groups.next_deadline() == check_ms
        outcomes += groups.expire(check_ms)
    assert outcomes == []
    assert groups.next_deadline() == 70_000
    [expired] = groups.expire(70_000)
    assert set(expired.records) == {
        CoordinatorRecord(groups.partition_for("simple"), encode_key(OffsetCommitKey("simple", "audit", 0)), None),
        CoordinatorRecord(groups.partition_for("simple"), b"\x00\x02\x00\x06simple", None),
        CoordinatorRecord(groups.partition_for(GROUP), encode_key(OffsetCommitKey(GROUP, "orders", 0)), None),
        CoordinatorRecord(groups.partition_for(GROUP), b"\x00\x02\x00\x0a" + GROUP.encode(), None),
    }
    assert groups.list_groups().response["groups"] == []
    assert groups.offset_fetch(GROUP, None).response["topics"] == []


def test_retention_keeps_offsets_of_a_group_with_members():
    config = GroupConfig(offsets_retention_minutes=1, offsets_retention_check_interval_ms=10_000)
    groups = coordinator(config)
    [member], now = stable_group(groups, 1)
    groups.offset_commit(GROUP, 1, member, None, -1, [("orders", 0, 5, -1, "")], now_ms=now)
    for check_ms in range(10_000, 200_001, 10_000):
        groups.heartbeat(GROUP, 1, member, None, now_ms=check_ms - 1)
        assert groups.expire(check_ms) == []
    assert groups.offset_fetch(GROUP, [("orders", 0)]).response["topics"][0]["partitions"] == [fetched(0, 5)]


def test_explicit_retention_time_writes_an_expire_timestamp():
    groups = coordinator()
    outcome = groups.offset_commit("simple", -1, "", None, 60_000, [("orders", 0, 5, -1, "")], now_ms=1000)
    assert outcome.records[0].value == encode_value(OffsetCommitValue(5, "", 1000, expire_timestamp_ms=61_000))
    assert outcome.records[0].value[:2] == b"\x00\x01"  # OffsetCommitValue v1 carries it
