"""KIP-848 consumer groups with committed offsets, the group admin APIs, classic groups
of the same id, and a restart that replays the records."""
from coordinator.consumer_group import ConsumerGroupState, MemberState
from coordinator.group_records import (
    ConsumerGroupMetadataKey, GroupMetadataKey, decode_key,
)
from tests.coordinator.consumer_group_testing import (
    GROUP, ORDERS, assigned, coordinator, heartbeat,
)
from tests.coordinator.test_consumer_group import two_member_group
from wire.errors import ErrorCode


def commit(groups, member_id: str, member_epoch: int, partition: int = 0, offset: int = 10, now_ms: int = 100):
    outcome = groups.offset_commit(GROUP, member_epoch, member_id, None, -1,
                                   [("orders", partition, offset, -1, "")], now_ms=now_ms)
    return outcome.response[0]["partitions"][0]["error_code"]


def fetched(groups, group_id: str = GROUP) -> dict[int, int]:
    response = groups.offset_fetch(group_id, None).response
    return {partition["partition_index"]: partition["committed_offset"]
            for topic in response["topics"] for partition in topic["partitions"]}


def test_offset_commit_takes_the_member_epoch():
    groups = two_member_group()
    assert commit(groups, "m1", 2, partition=0, offset=10) == ErrorCode.NONE
    assert commit(groups, "m1", 1) == ErrorCode.STALE_MEMBER_EPOCH
    assert commit(groups, "m1", 3) == ErrorCode.STALE_MEMBER_EPOCH
    assert commit(groups, "m9", 2) == ErrorCode.UNKNOWN_MEMBER_ID
    # Outside the group (admin, assign()) only while the group is Empty.
    assert commit(groups, "", -1) == ErrorCode.UNKNOWN_MEMBER_ID
    assert fetched(groups) == {0: 10}


def test_an_empty_consumer_group_takes_admin_commits_and_keeps_its_offsets():
    groups = two_member_group()
    commit(groups, "m2", 2, partition=3, offset=7)
    heartbeat(groups, "m1", -1, now_ms=10)
    heartbeat(groups, "m2", -1, now_ms=11)
    assert groups.consumer_group(GROUP).state is ConsumerGroupState.EMPTY
    assert commit(groups, "", -1, partition=4, offset=9) == ErrorCode.NONE
    assert fetched(groups) == {3: 7, 4: 9}
    assert groups.list_groups().response["groups"] == [
        {"group_id": GROUP, "protocol_type": "consumer", "group_state": "Empty", "group_type": "consumer"}]


def test_list_describe_and_delete_groups():
    groups = two_member_group()
    groups.offset_commit("simple", -1, "", None, -1, [("orders", 0, 1, -1, "")], now_ms=0)
    listed = groups.list_groups(types_filter=["Consumer"]).response["groups"]
    assert listed == [{"group_id": GROUP, "protocol_type": "consumer", "group_state": "Stable",
                       "group_type": "consumer"}]
    assert [group["group_id"] for group in groups.list_groups(states_filter=["stable"]).response["groups"]] == [GROUP]
    assert groups.list_groups(types_filter=["classic"]).response["groups"][0]["group_id"] == "simple"
    # DescribeGroups is for classic groups (Kafka 4): a consumer group is not found.
    assert groups.describe_groups([GROUP]).response == [{
        "error_code": ErrorCode.GROUP_ID_NOT_FOUND, "group_id": GROUP, "group_state": "Dead",
        "protocol_type": "", "protocol_data": "", "members": []}]
    assert groups.delete_groups([GROUP], now_ms=5).response == [
        {"group_id": GROUP, "error_code": ErrorCode.NON_EMPTY_GROUP}]

    commit(groups, "m1", 2)
    heartbeat(groups, "m1", -1, now_ms=10)
    heartbeat(groups, "m2", -1, now_ms=11)
    deleted = groups.delete_groups([GROUP], now_ms=12)
    assert deleted.response == [{"group_id": GROUP, "error_code": ErrorCode.NONE}]
    assert [type(decode_key(record.key)).__name__ for record in deleted.records] == [
        "OffsetCommitKey", "ConsumerGroupTargetAssignmentMetadataKey", "ConsumerGroupPartitionMetadataKey",
        "ConsumerGroupMetadataKey"]
    assert all(record.value is None for record in deleted.records)
    assert groups.consumer_group(GROUP) is None
    assert fetched(groups) == {}


def test_consumer_group_describe():
    groups = two_member_group()
    described = groups.consumer_group_describe([GROUP], 328).response
    assert described == [{
        "error_code": ErrorCode.NONE, "error_message": None, "group_id": GROUP, "group_state": "Stable",
        "group_epoch": 2, "assignment_epoch": 2, "assignor_name": "uniform", "authorized_operations": 328,
        "members": [{
            "member_id": member_id, "instance_id": None, "rack_id": None, "member_epoch": 2,
            "client_id": "client", "client_host": "/127.0.0.1", "subscribed_topic_names": ["orders"],
            "subscribed_topic_regex": None,
            "assignment": {"topic_partitions": [{"topic_id": ORDERS, "topic_name": "orders", "partitions": partitions}]},
            "target_assignment": {"topic_partitions": [
                {"topic_id": ORDERS, "topic_name": "orders", "partitions": partitions}]},
        } for member_id, partitions in (("m1", [0, 1, 2]), ("m2", [3, 4, 5]))],
    }]


def test_a_simple_classic_group_becomes_a_consumer_group_with_its_offsets():
    groups = coordinator()
    groups.offset_commit(GROUP, -1, "", None, -1, [("orders", 2, 42, -1, "")], now_ms=0)
    joined = heartbeat(groups, "", 0, now_ms=1)
    decoded = decode_key(joined.records[0].key)
    assert (decoded, joined.records[0].value) == (GroupMetadataKey(GROUP), None)
    assert joined.response["member_epoch"] == 1
    assert groups.group_state(GROUP) is None  # no classic group any more
    assert fetched(groups) == {2: 42}


def test_classic_join_to_a_consumer_group_is_refused_until_it_is_empty():
    groups = two_member_group()
    replies = groups.join_group("token", GROUP, "", None, "client", "/h", 10_000, 30_000, "consumer",
                                [("range", b"")], require_known_member_id=False, now_ms=5).replies
    assert replies[0][1]["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    heartbeat(groups, "m1", -1, now_ms=10)
    heartbeat(groups, "m2", -1, now_ms=11)
    joined = groups.join_group("token", GROUP, "", None, "client", "/h", 10_000, 30_000, "consumer",
                               [("range", b"")], require_known_member_id=False, now_ms=12)
    assert ConsumerGroupMetadataKey(GROUP) in [decode_key(record.key) for record in joined.records]
    assert groups.consumer_group(GROUP) is None
    assert groups.group_state(GROUP) is not None


def test_restart_replays_the_group_and_members_carry_on():
    groups = coordinator()
    log = []

    def keep(outcome):
        log.extend((record.partition, record.key, record.value) for record in outcome.records)
        return outcome

    keep(heartbeat(groups, "", 0, now_ms=0))
    keep(heartbeat(groups, "", 0, now_ms=1))
    keep(heartbeat(groups, "m1", 1, now_ms=2, owned={ORDERS: [0, 1, 2, 3, 4, 5]}))  # revoking 3-5
    keep(groups.offset_commit(GROUP, 1, "m1", None, -1, [("orders", 1, 5, -1, "")], now_ms=3))

    restarted = coordinator()
    partition = groups.partition_for(GROUP)
    restarted.load(partition, [(key, value) for record_partition, key, value in log
                               if record_partition == partition], now_ms=1_000)
    before, after = groups.consumer_group(GROUP), restarted.consumer_group(GROUP)
    assert (after.group_epoch, after.assignment_epoch, after.members, after.target_assignment,
            after.partition_epochs, after.subscription_metadata) == (
        before.group_epoch, before.assignment_epoch, before.members, before.target_assignment,
        before.partition_epochs, before.subscription_metadata)
    assert after.members["m1"].state is MemberState.UNREVOKED_PARTITIONS
    assert fetched(restarted) == {1: 5}

    # The members carry on where they were; loaded members get a fresh session timeout.
    revoked = heartbeat(restarted, "m1", 1, now_ms=1_001, owned={ORDERS: [0, 1, 2]}).response
    assert (revoked["error_code"], revoked["member_epoch"]) == (ErrorCode.NONE, 2)
    released = heartbeat(restarted, "m2", 2, now_ms=1_002, owned={}).response
    assert assigned(released) == {ORDERS: [3, 4, 5]}
    restarted.expire(1_000 + 44_999)
    assert sorted(restarted.consumer_group(GROUP).members) == ["m1", "m2"]


def test_offsets_of_an_empty_consumer_group_expire_then_the_group_goes():
    groups = coordinator(offsets_retention_minutes=1, offsets_retention_check_interval_ms=1_000)
    heartbeat(groups, "", 0, now_ms=0)
    commit(groups, "m1", 1, now_ms=0)
    heartbeat(groups, "m1", -1, now_ms=10)
    groups.expire(60_000)
    assert fetched(groups) == {}
    assert groups.consumer_group(GROUP) is None


def test_offset_fetch_by_a_member_checks_its_epoch():
    groups = two_member_group()
    commit(groups, "m1", 2, partition=1, offset=4)

    def fetch(member_id, member_epoch):
        response = groups.offset_fetch(GROUP, [("orders", 1)], False, member_id, member_epoch).response
        return response["error_code"], [p["committed_offset"] for t in response["topics"] for p in t["partitions"]]

    assert fetch("m1", 2) == (ErrorCode.NONE, [4])
    assert fetch(None, -1) == (ErrorCode.NONE, [4])
    assert fetch("m1", 1) == (ErrorCode.STALE_MEMBER_EPOCH, [])
    assert fetch("m7", 2) == (ErrorCode.UNKNOWN_MEMBER_ID, [])
