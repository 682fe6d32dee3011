"""KIP-848 consumer groups in the group coordinator, with integer time: joins, epochs,
reconciliation (revoke before assign), leave, fence, timeouts, static members, errors."""
import uuid

from coordinator.consumer_group import ConsumerGroupState, MemberState
from coordinator.group_records import decode_key
from tests.coordinator.consumer_group_testing import (
    GROUP, ORDERS, REBALANCE_TIMEOUT_MS, REFUNDS, assigned, coordinator, heartbeat,
)
from wire.errors import ErrorCode

ALL = [0, 1, 2, 3, 4, 5]


def record_types(outcome) -> list[str]:
    return [type(decode_key(record.key)).__name__ for record in outcome.records]


def two_member_group():
    """m1 and m2 reconciled at epoch 2: m1 owns orders 0-2, m2 orders 3-5."""
    groups = coordinator()
    heartbeat(groups, "", 0, now_ms=0)
    heartbeat(groups, "", 0, now_ms=1)
    heartbeat(groups, "m1", 1, now_ms=2, owned={ORDERS: ALL})
    heartbeat(groups, "m1", 1, now_ms=3, owned={ORDERS: [0, 1, 2]})
    heartbeat(groups, "m2", 2, now_ms=4, owned={})
    return groups


def test_first_member_gets_every_partition_and_epoch_1():
    groups = coordinator()
    outcome = heartbeat(groups, "", 0, now_ms=0)
    assert outcome.response == {
        "error_code": ErrorCode.NONE, "error_message": None, "member_id": "m1", "member_epoch": 1,
        "heartbeat_interval_ms": 5000,
        "assignment": {"topic_partitions": [{"topic_id": ORDERS, "partitions": ALL}]},
    }
    assert record_types(outcome) == [
        "ConsumerGroupMemberMetadataKey", "ConsumerGroupPartitionMetadataKey", "ConsumerGroupMetadataKey",
        "ConsumerGroupTargetAssignmentMemberKey", "ConsumerGroupTargetAssignmentMetadataKey",
        "ConsumerGroupCurrentMemberAssignmentKey"]
    group = groups.consumer_group(GROUP)
    assert (group.group_epoch, group.assignment_epoch, group.state) == (1, 1, ConsumerGroupState.STABLE)


def test_client_generated_member_id_is_kept():
    groups = coordinator()
    assert heartbeat(groups, "my-uuid", 0, now_ms=0).response["member_id"] == "my-uuid"


def test_a_new_member_gets_partitions_only_after_the_owner_revoked_them():
    groups = coordinator()
    heartbeat(groups, "", 0, now_ms=0)
    joined = heartbeat(groups, "", 0, now_ms=1).response
    # m2's target is orders 3-5, still owned by m1: it waits at the new epoch with nothing.
    assert (joined["member_id"], joined["member_epoch"], assigned(joined)) == ("m2", 2, {})
    assert groups.consumer_group(GROUP).members["m2"].state is MemberState.UNRELEASED_PARTITIONS
    assert groups.consumer_group(GROUP).state is ConsumerGroupState.RECONCILING

    # m1 must revoke 3-5 first: it stays in epoch 1 with 0-2.
    revoking = heartbeat(groups, "m1", 1, now_ms=2, owned={ORDERS: ALL}).response
    assert (revoking["member_epoch"], assigned(revoking)) == (1, {ORDERS: [0, 1, 2]})
    assert groups.consumer_group(GROUP).members["m1"].partitions_pending_revocation == {
        ORDERS: frozenset({3, 4, 5})}
    waiting = heartbeat(groups, "m2", 2, now_ms=3, owned={}).response
    assert (waiting["member_epoch"], waiting["assignment"]) == (2, None)

    # m1 reports them gone: it moves to epoch 2, and then m2 gets them.
    revoked = heartbeat(groups, "m1", 1, now_ms=4, owned={ORDERS: [0, 1, 2]}).response
    assert (revoked["member_epoch"], revoked["assignment"]) == (2, None)
    released = heartbeat(groups, "m2", 2, now_ms=5, owned={}).response
    assert (released["member_epoch"], assigned(released)) == (2, {ORDERS: [3, 4, 5]})
    assert groups.consumer_group(GROUP).state is ConsumerGroupState.STABLE


def test_member_leaving_hands_its_partitions_to_the_others():
    groups = two_member_group()
    left = heartbeat(groups, "m2", -1, now_ms=10)
    assert left.response == {"error_code": ErrorCode.NONE, "error_message": None, "member_id": "m2",
                             "member_epoch": -1, "heartbeat_interval_ms": 0, "assignment": None}
    assert record_types(left) == ["ConsumerGroupCurrentMemberAssignmentKey", "ConsumerGroupTargetAssignmentMemberKey",
                                  "ConsumerGroupMemberMetadataKey", "ConsumerGroupMetadataKey"]
    assert all(record.value is None for record in left.records[:3])
    group = groups.consumer_group(GROUP)
    assert (list(group.members), group.group_epoch, group.state) == (["m1"], 3, ConsumerGroupState.ASSIGNING)
    takeover = heartbeat(groups, "m1", 2, now_ms=11, owned={ORDERS: [0, 1, 2]}).response
    assert (takeover["member_epoch"], assigned(takeover)) == (3, {ORDERS: ALL})


def test_epochs_are_fenced_except_the_previous_one_with_a_subset():
    groups = two_member_group()
    ahead = heartbeat(groups, "m1", 3, now_ms=10, owned={ORDERS: [0, 1, 2]}).response
    assert (ahead["error_code"], ahead["member_id"], ahead["member_epoch"]) == (ErrorCode.FENCED_MEMBER_EPOCH, None, 0)
    # The answer that moved m1 to epoch 2 may have been lost: epoch 1 with a subset is fine.
    lost = heartbeat(groups, "m1", 1, now_ms=11, owned={ORDERS: [0, 1]}).response
    assert (lost["error_code"], lost["member_epoch"]) == (ErrorCode.NONE, 2)
    # ... but not with partitions beyond its assignment, nor an older epoch.
    assert heartbeat(groups, "m1", 1, now_ms=12, owned={ORDERS: [0, 3]}).response["error_code"] \
        == ErrorCode.FENCED_MEMBER_EPOCH
    assert heartbeat(groups, "m1", 1, now_ms=13).response["error_code"] == ErrorCode.FENCED_MEMBER_EPOCH
    assert heartbeat(groups, "m9", 2, now_ms=14).response["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    assert heartbeat(groups, "m9", -1, now_ms=15).response["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    missing = heartbeat(groups, "m1", 2, now_ms=16, group_id="nobody").response
    assert (missing["error_code"], missing["error_message"]) == (
        ErrorCode.GROUP_ID_NOT_FOUND, "Consumer group nobody not found.")


def test_a_refused_heartbeat_writes_nothing():
    groups = two_member_group()
    outcome = heartbeat(groups, "m1", 7, now_ms=10)
    assert outcome.records == []


def test_session_timeout_fences_a_silent_member():
    groups = two_member_group()
    heartbeat(groups, "m1", 2, now_ms=40_000)
    assert groups.next_deadline() == 4 + 45_000  # m2's last heartbeat at 4
    outcomes = groups.expire(45_004)
    assert [record_types(outcome) for outcome in outcomes] == [[
        "ConsumerGroupCurrentMemberAssignmentKey", "ConsumerGroupTargetAssignmentMemberKey",
        "ConsumerGroupMemberMetadataKey", "ConsumerGroupMetadataKey"]]
    assert list(groups.consumer_group(GROUP).members) == ["m1"]
    assert heartbeat(groups, "m2", 2, now_ms=45_005).response["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    assert assigned(heartbeat(groups, "m1", 2, now_ms=45_006, owned={ORDERS: [0, 1, 2]}).response) == {ORDERS: ALL}


def test_rebalance_timeout_fences_a_member_that_does_not_revoke():
    groups = coordinator()
    heartbeat(groups, "", 0, now_ms=0)
    heartbeat(groups, "", 0, now_ms=1)
    heartbeat(groups, "m1", 1, now_ms=2, owned={ORDERS: ALL})  # m1 must revoke 3-5
    heartbeat(groups, "m2", 2, now_ms=20_000, owned={})
    heartbeat(groups, "m1", 1, now_ms=20_001, owned={ORDERS: ALL})  # still owns them
    assert groups.expire(2 + REBALANCE_TIMEOUT_MS - 1) == []
    assert len(groups.expire(2 + REBALANCE_TIMEOUT_MS)) == 1
    assert list(groups.consumer_group(GROUP).members) == ["m2"]
    outcome = heartbeat(groups, "m2", 2, now_ms=30_003, owned={})
    assert (outcome.response["member_epoch"], assigned(outcome.response)) == (3, {ORDERS: ALL})


def test_static_member_leaves_temporarily_and_rejoins_without_a_rebalance():
    groups = coordinator()
    heartbeat(groups, "a1", 0, now_ms=0, instance_id="instance-a")
    heartbeat(groups, "b1", 0, now_ms=1, instance_id="instance-b")
    heartbeat(groups, "a1", 1, now_ms=2, owned={ORDERS: ALL}, instance_id="instance-a")
    heartbeat(groups, "a1", 1, now_ms=3, owned={ORDERS: [0, 1, 2]}, instance_id="instance-a")
    heartbeat(groups, "b1", 2, now_ms=4, owned={}, instance_id="instance-b")

    left = heartbeat(groups, "b1", -2, now_ms=10, instance_id="instance-b").response
    assert (left["error_code"], left["member_id"], left["member_epoch"]) == (ErrorCode.NONE, "b1", -2)
    assert groups.consumer_group(GROUP).group_epoch == 2

    # Another process with the instance id of a live member is refused.
    taken = heartbeat(groups, "a2", 0, now_ms=11, instance_id="instance-a").response
    assert taken["error_code"] == ErrorCode.UNRELEASED_INSTANCE_ID

    back = heartbeat(groups, "b2", 0, now_ms=12, instance_id="instance-b").response
    assert (back["member_id"], back["member_epoch"], assigned(back)) == ("b2", 2, {ORDERS: [3, 4, 5]})
    group = groups.consumer_group(GROUP)
    assert (sorted(group.members), group.group_epoch, group.static_members) == (
        ["a1", "b2"], 2, {"instance-a": "a1", "instance-b": "b2"})
    assert group.target_assignment == {"a1": {ORDERS: frozenset({0, 1, 2})}, "b2": {ORDERS: frozenset({3, 4, 5})}}
    fenced = heartbeat(groups, "b1", 2, now_ms=13, instance_id="instance-b").response
    assert fenced["error_code"] == ErrorCode.FENCED_INSTANCE_ID


def test_static_member_gone_for_good_after_its_session_timeout():
    groups = coordinator()
    heartbeat(groups, "a1", 0, now_ms=0, instance_id="instance-a")
    heartbeat(groups, "a1", -2, now_ms=5, instance_id="instance-a")
    groups.expire(45_000)
    group = groups.consumer_group(GROUP)
    assert (group.members, group.state) == ({}, ConsumerGroupState.EMPTY)


def test_invalid_requests():
    groups = coordinator()

    def error(**fields):
        member_id = fields.pop("member_id", "")
        epoch = fields.pop("epoch", 0)
        response = groups.consumer_group_heartbeat(
            fields.pop("group_id", GROUP), member_id, epoch, fields.pop("instance_id", None),
            fields.pop("rack_id", None), fields.pop("rebalance_timeout_ms", 30_000),
            fields.pop("topics", ["orders"]), fields.pop("regex", None), fields.pop("assignor", None),
            fields.pop("owned", []), now_ms=0).response
        return response["error_code"], response["error_message"]

    assert error(group_id="") == (ErrorCode.INVALID_REQUEST, "GroupId can't be empty.")
    assert error(instance_id="") == (ErrorCode.INVALID_REQUEST, "InstanceId can't be empty.")
    assert error(rack_id="") == (ErrorCode.INVALID_REQUEST, "RackId can't be empty.")
    assert error(epoch=3) == (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    assert error(rebalance_timeout_ms=-1) == (ErrorCode.INVALID_REQUEST,
                                              "RebalanceTimeoutMs must be provided in first request.")
    assert error(owned=None) == (ErrorCode.INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.")
    assert error(owned=[(ORDERS, [0])]) == (ErrorCode.INVALID_REQUEST,
                                            "TopicPartitions must be empty when (re-)joining.")
    assert error(topics=None) == (ErrorCode.INVALID_REQUEST,
                                  "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
    assert error(member_id="m", epoch=-2) == (ErrorCode.INVALID_REQUEST, "InstanceId can't be null.")
    assert error(member_id="m", epoch=-3) == (ErrorCode.INVALID_REQUEST, "MemberEpoch is invalid.")
    assert error(topics=None, regex="orders(")[0] == ErrorCode.INVALID_REQUEST
    assert error(assignor="sticky") == (
        ErrorCode.UNSUPPORTED_ASSIGNOR, "ServerAssignor sticky is not supported. Supported assignors: uniform, range.")
    assert groups.consumer_group(GROUP) is None


def test_group_max_size():
    groups = coordinator(group_consumer_max_size=1)
    heartbeat(groups, "", 0, now_ms=0)
    full = heartbeat(groups, "", 0, now_ms=1).response
    assert (full["error_code"], full["error_message"]) == (
        ErrorCode.GROUP_MAX_SIZE_REACHED, "The consumer group has reached its maximum capacity of 1 members.")
    assert heartbeat(groups, "m1", 1, now_ms=2).response["error_code"] == ErrorCode.NONE


def test_regex_subscription_follows_new_topics():
    topics = {"orders": (ORDERS, 2)}
    groups = coordinator(topics)
    joined = heartbeat(groups, "", 0, now_ms=0, regex="orders|refunds").response
    assert assigned(joined) == {ORDERS: [0, 1]}
    topics["refunds"] = (REFUNDS, 1)
    topics["refunds-archive"] = (uuid.UUID(int=3), 1)  # a full match is needed
    grown = heartbeat(groups, "m1", 1, now_ms=1).response
    assert (grown["member_epoch"], assigned(grown)) == (2, {ORDERS: [0, 1], REFUNDS: [0]})
    assert sorted(groups.consumer_group(GROUP).subscription_metadata) == ["orders", "refunds"]


def test_more_partitions_bump_the_group_epoch():
    topics = {"orders": (ORDERS, 2)}
    groups = coordinator(topics)
    heartbeat(groups, "", 0, now_ms=0)
    topics["orders"] = (ORDERS, 3)
    grown = heartbeat(groups, "m1", 1, now_ms=1).response
    assert (grown["member_epoch"], assigned(grown)) == (2, {ORDERS: [0, 1, 2]})


def test_server_assignor_picked_by_the_members():
    groups = coordinator({"orders": (ORDERS, 4), "refunds": (REFUNDS, 2)})
    heartbeat(groups, "", 0, now_ms=0, topics=["orders", "refunds"], assignor="range")
    heartbeat(groups, "", 0, now_ms=1, topics=["orders", "refunds"], assignor="range")
    group = groups.consumer_group(GROUP)
    # Range: per topic, consecutive partitions in member id order.
    assert group.target_assignment == {"m1": {ORDERS: frozenset({0, 1}), REFUNDS: frozenset({0})},
                                       "m2": {ORDERS: frozenset({2, 3}), REFUNDS: frozenset({1})}}
    described = groups.consumer_group_describe([GROUP], 0).response[0]
    assert described["assignor_name"] == "range"


def test_describe_unknown_and_classic_groups():
    groups = coordinator()
    groups.offset_commit("simple", -1, "", None, -1, [("orders", 0, 1, -1, "")], now_ms=0)
    described = groups.consumer_group_describe(["nobody", "simple"], -2147483648).response
    assert [(group["group_id"], group["error_code"], group["error_message"], group["group_state"])
            for group in described] == [
        ("nobody", ErrorCode.GROUP_ID_NOT_FOUND, None, ""),
        ("simple", ErrorCode.GROUP_ID_NOT_FOUND, None, "")]


def test_static_member_rejoining_under_the_same_member_id():
    groups = coordinator()
    heartbeat(groups, "a1", 0, now_ms=0, instance_id="instance-a")
    again = heartbeat(groups, "a1", 0, now_ms=1, instance_id="instance-a").response
    assert again["error_code"] == ErrorCode.UNRELEASED_INSTANCE_ID  # it never said it left
    heartbeat(groups, "a1", -2, now_ms=2, instance_id="instance-a")
    back = heartbeat(groups, "a1", 0, now_ms=3, instance_id="instance-a").response
    assert (back["error_code"], back["member_epoch"], assigned(back)) == (ErrorCode.NONE, 1, {ORDERS: ALL})
    assert groups.consumer_group(GROUP).group_epoch == 1
