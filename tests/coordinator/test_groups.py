"""The classic rebalance protocol: joins, syncs, heartbeats, leaves and timers, with
integer time and no sockets."""
from coordinator.group_records import GroupMetadataKey, GroupMetadataValue, MemberMetadata, encode_key, encode_value
from coordinator.groups import CoordinatorRecord, GroupConfig, GroupState
from wire.errors import ErrorCode

from tests.coordinator.group_testing import (
    CONSUMER, GROUP, RANGE, REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS, coordinator, expire_until_replies, join,
    join_error, joined, leader_member, replies, stable_group, subscription, sync, synced,
)


def test_member_id_required_round_trip_then_delayed_join_and_sync():
    groups = coordinator()
    partition = groups.partition_for(GROUP)

    first = join(groups, "join-1", now_ms=0, client_id="client-a", require_known_member_id=True)
    assert first.replies == [("join-1", join_error("client-a-u1", ErrorCode.MEMBER_ID_REQUIRED))]
    # A new group is committed with an empty GroupMetadata record.
    assert first.records == [CoordinatorRecord(partition, encode_key(GroupMetadataKey(GROUP)),
                                               encode_value(GroupMetadataValue("", 0, None, None, 0, ())))]
    assert groups.group_state(GROUP) is GroupState.EMPTY

    second = join(groups, "join-2", "client-a-u1", now_ms=100, client_id="client-a", require_known_member_id=True)
    assert (second.records, second.replies) == ([], [])
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE
    # group.initial.rebalance.delay.ms holds the first generation back.
    assert groups.next_deadline() == 3100
    assert groups.expire(3099) == []

    [completed] = groups.expire(3100)
    assert completed.records == []
    assert completed.replies == [("join-2", joined("client-a-u1", 1, "client-a-u1",
                                                   [leader_member("client-a-u1")]))]
    assert groups.group_state(GROUP) is GroupState.COMPLETING_REBALANCE

    synced_outcome = sync(groups, "sync-1", "client-a-u1", 1, now_ms=3200,
                          assignments=[("client-a-u1", b"partitions")])
    assert synced_outcome.replies == [("sync-1", synced(b"partitions"))]
    assert synced_outcome.records == [CoordinatorRecord(partition, encode_key(GroupMetadataKey(GROUP)), encode_value(
        GroupMetadataValue(CONSUMER, 1, "range", "client-a-u1", 3100, (MemberMetadata(
            "client-a-u1", None, "client-a", "/127.0.0.1", REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS,
            RANGE[0][1], b"partitions"),))))]
    assert groups.group_state(GROUP) is GroupState.STABLE
    assert groups.heartbeat(GROUP, 1, "client-a-u1", None, now_ms=3300).response is ErrorCode.NONE


def test_three_members_extend_the_initial_delay_up_to_the_rebalance_timeout():
    groups = coordinator(group_initial_rebalance_delay_ms=3000)
    join(groups, "join-a", now_ms=0, client_id="a", rebalance_timeout_ms=10_000)
    join(groups, "join-b", now_ms=1000, client_id="b", rebalance_timeout_ms=10_000)
    assert groups.next_deadline() == 3000
    assert groups.expire(3000) == []  # b joined during the delay: wait another 3000
    assert groups.next_deadline() == 6000
    join(groups, "join-c", now_ms=4000, client_id="c", rebalance_timeout_ms=10_000)
    assert groups.expire(6000) == []
    # 10000 ms of rebalance timeout: 3000 + 3000 + 3000 so far, then at most 1000 more
    # would be allowed; c's join extended it to 9000.
    assert groups.next_deadline() == 9000
    answers = replies(groups.expire(9000))
    everyone = [leader_member("a-u1"), leader_member("b-u2"), leader_member("c-u3")]
    assert answers == {
        "join-a": joined("a-u1", 1, "a-u1", everyone),
        "join-b": joined("b-u2", 1, "a-u1"),
        "join-c": joined("c-u3", 1, "a-u1"),
    }

    # Followers wait in SyncGroup until the leader brings the assignment.
    assert sync(groups, "sync-b", "b-u2", 1, now_ms=9100).replies == []
    assert sync(groups, "sync-c", "c-u3", 1, now_ms=9200).replies == []
    leader_sync = sync(groups, "sync-a", "a-u1", 1, now_ms=9300,
                       assignments=[("a-u1", b"p0"), ("b-u2", b"p1"), ("c-u3", b"p2")])
    assert replies(leader_sync) == {"sync-a": synced(b"p0"), "sync-b": synced(b"p1"), "sync-c": synced(b"p2")}
    assert groups.group_state(GROUP) is GroupState.STABLE


def test_initial_delay_stops_extending_once_the_rebalance_timeout_is_spent():
    groups = coordinator(group_initial_rebalance_delay_ms=3000)
    join(groups, "join-a", now_ms=0, client_id="a", rebalance_timeout_ms=4000)
    join(groups, "join-b", now_ms=1000, client_id="b", rebalance_timeout_ms=4000)
    assert groups.expire(3000) == []
    assert groups.next_deadline() == 4000  # min(3000, 4000 - 3000)
    join(groups, "join-c", now_ms=3500, client_id="c", rebalance_timeout_ms=4000)
    answers = replies(groups.expire(4000))  # nothing remains to extend by
    assert sorted(answers) == ["join-a", "join-b", "join-c"]


def test_zero_initial_delay_completes_at_the_next_expire():
    groups = coordinator(group_initial_rebalance_delay_ms=0)
    join(groups, "join-a", now_ms=500, client_id="a")
    assert groups.next_deadline() == 500
    assert replies(groups.expire(500)) == {"join-a": joined("a-u1", 1, "a-u1", [leader_member("a-u1")])}


def test_a_member_that_leaves_triggers_a_rebalance_for_the_rest():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2)
    left = groups.leave_group(GROUP, [(follower, None, "shutting down")], now_ms=now + 100)
    assert left.response == {"error_code": ErrorCode.NONE, "members": [
        {"member_id": follower, "group_instance_id": None, "error_code": ErrorCode.NONE}]}
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE
    assert groups.heartbeat(GROUP, 1, leader, None, now_ms=now + 200).response is ErrorCode.REBALANCE_IN_PROGRESS
    assert groups.heartbeat(GROUP, 1, follower, None, now_ms=now + 200).response is ErrorCode.UNKNOWN_MEMBER_ID

    rejoined = join(groups, "rejoin", leader, now_ms=now + 300, client_id="client-a")
    # Every remaining member rejoined: the join phase ends at once.
    assert rejoined.replies == [("rejoin", joined(leader, 2, leader, [leader_member(leader)]))]
    assert groups.group_generation(GROUP) == 2


def test_last_member_leaving_empties_the_group_and_persists_it():
    groups = coordinator()
    [member], now = stable_group(groups, 1)
    left = groups.leave_group(GROUP, [(member, None, None)], now_ms=now + 10)
    assert groups.group_state(GROUP) is GroupState.EMPTY
    assert left.records == [CoordinatorRecord(groups.partition_for(GROUP), encode_key(GroupMetadataKey(GROUP)),
                                              encode_value(GroupMetadataValue(CONSUMER, 2, None, None, now + 10, ())))]
    assert groups.describe_groups([GROUP]).response == [{
        "error_code": ErrorCode.NONE, "group_id": GROUP, "group_state": "Empty",
        "protocol_type": CONSUMER, "protocol_data": "", "members": []}]


def test_session_timeout_evicts_a_silent_member():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2)
    # Both sessions restarted when the assignment was handed out at `now`.
    assert groups.heartbeat(GROUP, 1, leader, None, now_ms=now + 6000).response is ErrorCode.NONE
    assert groups.next_deadline() == now + SESSION_TIMEOUT_MS
    assert groups.expire(now + SESSION_TIMEOUT_MS - 1) == []
    groups.expire(now + SESSION_TIMEOUT_MS)
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE
    assert groups.heartbeat(GROUP, 1, follower, None, now_ms=now + 10_001).response is ErrorCode.UNKNOWN_MEMBER_ID
    answers = replies(join(groups, "rejoin", leader, now_ms=now + 10_002))
    assert answers == {"rejoin": joined(leader, 2, leader, [leader_member(leader)])}


def test_rebalance_timeout_removes_members_that_did_not_rejoin():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2)
    # The leader's JoinGroup in Stable starts a rebalance.
    assert join(groups, "rejoin-a", leader, now_ms=now + 1000, client_id="client-a").replies == []
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE
    outcomes = []
    for at in range(now + 2000, now + 1000 + REBALANCE_TIMEOUT_MS, 5000):
        # The follower keeps its session alive but never rejoins; the parked leader's
        # session expiry is ignored.
        assert groups.heartbeat(GROUP, 1, follower, None, now_ms=at).response is ErrorCode.REBALANCE_IN_PROGRESS
        outcomes += groups.expire(at)
    assert outcomes == []
    answers = replies(groups.expire(now + 1000 + REBALANCE_TIMEOUT_MS))
    assert answers == {"rejoin-a": joined(leader, 2, leader, [leader_member(leader)])}
    assert groups.heartbeat(GROUP, 2, follower, None, now_ms=now + 31_001).response is ErrorCode.UNKNOWN_MEMBER_ID


def test_sync_timeout_removes_members_that_never_synced():
    groups = coordinator()
    join(groups, "join-a", now_ms=0, client_id="a")
    join(groups, "join-b", now_ms=0, client_id="b")
    answers, now = expire_until_replies(groups)
    assert (sorted(answers), now) == (["join-a", "join-b"], 6000)  # b's join extended the delay once
    leader_sync = sync(groups, "sync-a", "a-u1", 1, now_ms=now + 100, assignments=[("a-u1", b"x"), ("b-u2", b"y")])
    assert replies(leader_sync) == {"sync-a": synced(b"x")}
    assert groups.group_state(GROUP) is GroupState.STABLE
    # b keeps its session alive but never sends SyncGroup.
    groups.heartbeat(GROUP, 1, "a-u1", None, now_ms=now + 9000)
    groups.heartbeat(GROUP, 1, "b-u2", None, now_ms=now + 9000)
    groups.heartbeat(GROUP, 1, "a-u1", None, now_ms=now + 18_000)
    groups.heartbeat(GROUP, 1, "b-u2", None, now_ms=now + 18_000)
    groups.heartbeat(GROUP, 1, "a-u1", None, now_ms=now + 27_000)
    groups.heartbeat(GROUP, 1, "b-u2", None, now_ms=now + 27_000)
    assert groups.next_deadline() == now + REBALANCE_TIMEOUT_MS
    groups.expire(now + REBALANCE_TIMEOUT_MS)
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE
    assert groups.describe_groups([GROUP]).response[0]["members"] == [{
        "member_id": "a-u1", "group_instance_id": None, "client_id": "a", "client_host": "/127.0.0.1",
        "member_metadata": b"", "member_assignment": b"x"}]


def test_new_member_during_completing_rebalance_answers_waiting_syncs_with_rebalance_in_progress():
    groups = coordinator()
    join(groups, "join-a", now_ms=0, client_id="a")
    join(groups, "join-b", now_ms=0, client_id="b")
    expire_until_replies(groups)
    assert sync(groups, "sync-b", "b-u2", 1, now_ms=6100).replies == []
    arrival = join(groups, "join-c", now_ms=6200, client_id="c")
    assert arrival.replies == [("sync-b", {"error_code": ErrorCode.REBALANCE_IN_PROGRESS, "protocol_type": None,
                                           "protocol_name": None, "assignment": b""})]
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE
    late_sync = sync(groups, "sync-a", "a-u1", 1, now_ms=6300, assignments=[("a-u1", b"x")])
    assert late_sync.replies == [("sync-a", {"error_code": ErrorCode.REBALANCE_IN_PROGRESS, "protocol_type": None,
                                             "protocol_name": None, "assignment": b""})]
    join(groups, "rejoin-a", "a-u1", now_ms=6400, client_id="a")
    answers = replies(join(groups, "rejoin-b", "b-u2", now_ms=6500, client_id="b"))
    members = [leader_member("a-u1"), leader_member("b-u2"), leader_member("c-u3")]
    assert answers == {"rejoin-a": joined("a-u1", 2, "a-u1", members), "rejoin-b": joined("b-u2", 2, "a-u1"),
                       "join-c": joined("c-u3", 2, "a-u1")}


def test_static_member_rejoins_without_a_rebalance():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2, static=True)
    assert (leader, follower) == ("instance-a-u1", "instance-b-u2")
    # The follower restarts: same instance id, no member id, same subscription.
    rejoined = join(groups, "restart-b", now_ms=now + 500, client_id="client-b", group_instance_id="instance-b")
    assert rejoined.replies == [("restart-b", joined("instance-b-u3", 1, leader))]
    assert groups.group_state(GROUP) is GroupState.STABLE
    assert groups.group_generation(GROUP) == 1
    assert rejoined.records == [CoordinatorRecord(groups.partition_for(GROUP), encode_key(GroupMetadataKey(GROUP)),
                                                  encode_value(GroupMetadataValue(CONSUMER, 1, "range", leader, now, (
        MemberMetadata(leader, "instance-a", "client-a", "/127.0.0.1", REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS,
                       RANGE[0][1], b"assignment-" + leader.encode()),
        MemberMetadata("instance-b-u3", "instance-b", "client-b", "/127.0.0.1", REBALANCE_TIMEOUT_MS,
                       SESSION_TIMEOUT_MS, RANGE[0][1], b"assignment-" + follower.encode()),
    ))))]
    # It keeps its assignment; the old member id is fenced.
    assert replies(sync(groups, "sync", "instance-b-u3", 1, now_ms=now + 600, group_instance_id="instance-b")) == {
        "sync": synced(b"assignment-" + follower.encode())}
    assert groups.heartbeat(GROUP, 1, follower, "instance-b", now_ms=now + 700).response is ErrorCode.FENCED_INSTANCE_ID
    assert groups.heartbeat(GROUP, 1, "instance-b-u3", "instance-b", now_ms=now + 700).response is ErrorCode.NONE


def test_static_leader_rejoin_skips_assignment_from_v9_and_names_the_old_leader_before():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2, static=True)
    rejoined = join(groups, "restart-a", now_ms=now + 1, client_id="client-a", group_instance_id="instance-a")
    assert rejoined.replies == [("restart-a", joined(
        "instance-a-u3", 1, "instance-a-u3",
        [leader_member(follower, group_instance_id="instance-b"),
         leader_member("instance-a-u3", group_instance_id="instance-a")], skip_assignment=True))]

    again = join(groups, "restart-a-v8", now_ms=now + 2, client_id="client-a", group_instance_id="instance-a",
                 supports_skip_assignment=False)
    assert again.replies == [("restart-a-v8", joined("instance-a-u4", 1, "instance-a-u3"))]


def test_static_member_with_new_protocols_triggers_a_rebalance():
    groups = coordinator()
    [member], now = stable_group(groups, 1, static=True)
    # The group would now pick roundrobin: the assignment must be redone.
    roundrobin_first = [("roundrobin", subscription("orders")), ("range", subscription("orders"))]
    rejoined = join(groups, "restart", now_ms=now + 1, client_id="client-a", group_instance_id="instance-a",
                    protocols=roundrobin_first)
    # It is the only member and it has rejoined: the new generation starts at once.
    assert replies(rejoined) == {"restart": joined(
        "instance-a-u2", 2, "instance-a-u2", [leader_member("instance-a-u2", subscription("orders"), "instance-a")],
        protocol_name="roundrobin")}
    assert groups.group_state(GROUP) is GroupState.COMPLETING_REBALANCE


def test_static_member_keeping_the_selected_protocol_needs_no_rebalance():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2, static=True)
    # range stays the only common protocol, so the selection cannot change.
    roundrobin_first = [("roundrobin", subscription("orders")), ("range", subscription("orders"))]
    rejoined = join(groups, "restart-b", now_ms=now + 1, client_id="client-b", group_instance_id="instance-b",
                    protocols=roundrobin_first)
    assert rejoined.replies == [("restart-b", joined("instance-b-u3", 1, leader))]
    assert groups.group_state(GROUP) is GroupState.STABLE


def test_static_member_stays_through_a_rebalance_it_misses():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2, static=True)
    join(groups, "rejoin-a", leader, now_ms=now + 1, client_id="client-a", group_instance_id="instance-a")
    outcomes = []
    for at in range(now + 5000, now + REBALANCE_TIMEOUT_MS, 5000):
        groups.heartbeat(GROUP, 1, follower, "instance-b", now_ms=at)
        outcomes += groups.expire(at)
    assert outcomes == []
    # At the rebalance timeout a static member that did not rejoin is kept.
    answers = replies(groups.expire(now + 1 + REBALANCE_TIMEOUT_MS))
    members = [leader_member(leader, group_instance_id="instance-a"),
               leader_member(follower, group_instance_id="instance-b")]
    assert answers == {"rejoin-a": joined(leader, 2, leader, members)}


def test_fenced_instance_id_and_unknown_member_on_join():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2, static=True)
    assert join(groups, "bad", "someone-else", now_ms=now, group_instance_id="instance-b").replies == [
        ("bad", join_error("someone-else", ErrorCode.FENCED_INSTANCE_ID, protocol_name=None))]
    assert join(groups, "ghost", "ghost-1", now_ms=now).replies == [
        ("ghost", join_error("ghost-1", ErrorCode.UNKNOWN_MEMBER_ID, protocol_name=None))]
    assert join(groups, "nogroup", "ghost-1", now_ms=now, group_id="other").replies == [
        ("nogroup", join_error("ghost-1", ErrorCode.UNKNOWN_MEMBER_ID))]


def test_join_validation_errors():
    groups = coordinator()
    assert join(groups, "t1", now_ms=0, session_timeout_ms=5999).replies == [
        ("t1", join_error("", ErrorCode.INVALID_SESSION_TIMEOUT))]
    assert join(groups, "t2", now_ms=0, session_timeout_ms=1_800_001).replies == [
        ("t2", join_error("", ErrorCode.INVALID_SESSION_TIMEOUT))]
    assert join(groups, "t3", now_ms=0, group_id="").replies == [("t3", join_error("", ErrorCode.INVALID_GROUP_ID))]
    assert join(groups, "t4", now_ms=0, protocols=[]).replies == [
        ("t4", join_error("", ErrorCode.INCONSISTENT_GROUP_PROTOCOL))]


def test_inconsistent_group_protocol_for_a_member_sharing_no_protocol():
    groups = coordinator()
    stable_group(groups, 1)
    outcome = join(groups, "rr", now_ms=5000, protocols=[("roundrobin", b"")])
    assert outcome.replies == [("rr", join_error("", ErrorCode.INCONSISTENT_GROUP_PROTOCOL))]


def test_protocol_selection_takes_the_most_preferred_common_protocol():
    groups = coordinator()
    sub = subscription("orders")
    join(groups, "a", now_ms=0, client_id="a", protocols=[("range", sub), ("roundrobin", sub)])
    join(groups, "b", now_ms=0, client_id="b", protocols=[("range", sub), ("roundrobin", sub), ("sticky", sub)])
    join(groups, "c", now_ms=0, client_id="c", protocols=[("roundrobin", sub), ("range", sub)])
    answers, _ = expire_until_replies(groups)
    assert {answer["protocol_name"] for answer in answers.values()} == {"range"}

    other = coordinator()
    join(other, "a", now_ms=0, client_id="a", protocols=[("range", sub), ("roundrobin", sub)])
    join(other, "b", now_ms=0, client_id="b", protocols=[("range", sub), ("roundrobin", sub)])
    join(other, "c", now_ms=0, client_id="c", protocols=[("roundrobin", sub)])  # range is not common
    answers, _ = expire_until_replies(other)
    assert {answer["protocol_name"] for answer in answers.values()} == {"roundrobin"}


def test_group_max_size_turns_away_extra_members():
    groups = coordinator(group_max_size=2)
    join(groups, "a", now_ms=0, client_id="a")
    join(groups, "b", now_ms=0, client_id="b")
    assert join(groups, "c", now_ms=0, client_id="c").replies == [
        ("c", join_error("", ErrorCode.GROUP_MAX_SIZE_REACHED))]
    answers, now = expire_until_replies(groups)
    assert sorted(answers) == ["a", "b"]
    assert join(groups, "d", now_ms=now, client_id="d").replies == [
        ("d", join_error("", ErrorCode.GROUP_MAX_SIZE_REACHED))]


def test_pending_member_that_never_returns_expires_after_its_session_timeout():
    groups = coordinator()
    join(groups, "first", now_ms=0, client_id="a", require_known_member_id=True)
    assert groups.next_deadline() == SESSION_TIMEOUT_MS
    groups.expire(SESSION_TIMEOUT_MS)
    assert join(groups, "late", "a-u1", now_ms=SESSION_TIMEOUT_MS + 1, require_known_member_id=True).replies == [
        ("late", join_error("a-u1", ErrorCode.UNKNOWN_MEMBER_ID, protocol_name=None))]


def test_a_member_that_neither_rejoins_nor_heartbeats_is_dropped_and_the_newcomer_leads():
    groups = coordinator()
    (leader,), now = stable_group(groups, 1)
    join(groups, "newcomer", now_ms=now, client_id="n")  # a rebalance the leader never rejoins
    groups.heartbeat(GROUP, 1, leader, None, now_ms=now + 5000)
    answers = replies(groups.expire(now + 5000 + SESSION_TIMEOUT_MS))
    assert answers == {"newcomer": joined("n-u2", 2, "n-u2", [leader_member("n-u2")])}


def test_new_member_parked_in_join_expires_after_the_new_member_join_timeout():
    groups = coordinator()
    join(groups, "join-a", now_ms=0, client_id="a", rebalance_timeout_ms=600_000)
    groups.expire(3000)
    sync(groups, "sync-a", "a-u1", 1, now_ms=3000, assignments=[("a-u1", b"x")])
    join(groups, "join-b", now_ms=4000, client_id="b", rebalance_timeout_ms=600_000)
    outcomes = []
    for at in range(5000, 310_001, 5000):  # a keeps heartbeating, never rejoins
        assert groups.heartbeat(GROUP, 1, "a-u1", None, now_ms=at).response is ErrorCode.REBALANCE_IN_PROGRESS
        outcomes += groups.expire(at)
    assert replies(outcomes) == {"join-b": join_error("", ErrorCode.UNKNOWN_MEMBER_ID)}
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE


def test_sync_and_heartbeat_errors():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2)
    assert replies(sync(groups, "s1", follower, 0, now_ms=now)) == {
        "s1": {"error_code": ErrorCode.ILLEGAL_GENERATION, "protocol_type": None, "protocol_name": None,
               "assignment": b""}}
    assert replies(sync(groups, "s2", "ghost", 1, now_ms=now))["s2"]["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    assert replies(sync(groups, "s3", "ghost", 1, now_ms=now, group_id="nope"))["s3"]["error_code"] == \
        ErrorCode.UNKNOWN_MEMBER_ID
    assert replies(groups.sync_group("s4", GROUP, 1, follower, None, "connect", None, [], now_ms=now))["s4"][
        "error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    # Stable: a repeated SyncGroup gets the member's assignment again.
    assert replies(sync(groups, "s5", follower, 1, now_ms=now)) == {"s5": synced(b"assignment-" + follower.encode())}
    assert groups.heartbeat(GROUP, 7, follower, None, now_ms=now).response is ErrorCode.ILLEGAL_GENERATION
    assert groups.heartbeat("", 1, follower, None, now_ms=now).response is ErrorCode.INVALID_GROUP_ID
    assert groups.heartbeat("nope", 1, follower, None, now_ms=now).response is ErrorCode.UNKNOWN_MEMBER_ID
    join(groups, "rejoin", leader, now_ms=now + 1)
    assert replies(sync(groups, "s6", follower, 1, now_ms=now + 2))["s6"]["error_code"] == \
        ErrorCode.REBALANCE_IN_PROGRESS


def test_leave_group_batch_with_per_member_errors_and_static_removal_by_instance_id():
    groups = coordinator()
    (leader, follower), now = stable_group(groups, 2, static=True)
    outcome = groups.leave_group(GROUP, [("", "instance-b", "admin"), ("ghost", None, None),
                                         ("", "instance-z", None), ("wrong-id", "instance-a", None)], now_ms=now + 1)
    assert outcome.response == {"error_code": ErrorCode.NONE, "members": [
        {"member_id": "", "group_instance_id": "instance-b", "error_code": ErrorCode.NONE},
        {"member_id": "ghost", "group_instance_id": None, "error_code": ErrorCode.UNKNOWN_MEMBER_ID},
        {"member_id": "", "group_instance_id": "instance-z", "error_code": ErrorCode.UNKNOWN_MEMBER_ID},
        {"member_id": "wrong-id", "group_instance_id": "instance-a", "error_code": ErrorCode.FENCED_INSTANCE_ID},
    ]}
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE
    unknown_group = groups.leave_group("nope", [("m", None, None)], now_ms=now + 2)
    assert unknown_group.response == {"error_code": ErrorCode.NONE, "members": [
        {"member_id": "m", "group_instance_id": None, "error_code": ErrorCode.UNKNOWN_MEMBER_ID}]}


def test_leave_answers_the_leaving_members_parked_join():
    groups = coordinator()
    (leader, second, third), now = stable_group(groups, 3)
    join(groups, "rejoin-a", leader, now_ms=now + 1, client_id="client-a")  # the leader starts a rebalance
    assert join(groups, "rejoin-b", second, now_ms=now + 2, client_id="client-b").replies == []
    left = groups.leave_group(GROUP, [(second, None, None)], now_ms=now + 3)
    assert left.replies == [("rejoin-b", join_error("", ErrorCode.UNKNOWN_MEMBER_ID))]
    assert groups.group_state(GROUP) is GroupState.PREPARING_REBALANCE  # the third has not rejoined


def test_loading_and_ownership_errors():
    groups = loading_coordinator()
    partition = groups.partition_for(GROUP)
    assert join(groups, "j", now_ms=0).replies == [("j", join_error("", ErrorCode.COORDINATOR_LOAD_IN_PROGRESS))]
    assert groups.heartbeat(GROUP, 1, "m", None, now_ms=0).response is ErrorCode.NONE  # Kafka answers blindly
    assert groups.offset_fetch(GROUP, None).response == {
        "group_id": GROUP, "error_code": ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "topics": []}
    assert groups.list_groups().response == {"error_code": ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "groups": []}
    groups.finish_loading(partition, now_ms=0)
    assert groups.list_groups().response == {"error_code": ErrorCode.NONE, "groups": []}
    other = next(group for group in (f"g{index}" for index in range(100)) if groups.partition_for(group) != partition)
    assert join(groups, "j", now_ms=0, group_id=other).replies == [
        ("j", join_error("", ErrorCode.NOT_COORDINATOR))]
    assert groups.heartbeat(other, 1, "m", None, now_ms=0).response is ErrorCode.NOT_COORDINATOR


def loading_coordinator():
    from coordinator.groups import GroupCoordinator
    groups = GroupCoordinator(GroupConfig())
    groups.begin_loading(groups.partition_for(GROUP))
    return groups


def test_unload_answers_parked_requests_with_not_coordinator():
    groups = coordinator()
    join(groups, "join-a", now_ms=0, client_id="a")
    outcome = groups.unload(groups.partition_for(GROUP), now_ms=10)
    assert outcome.replies == [("join-a", join_error("a-u1", ErrorCode.NOT_COORDINATOR))]
    assert groups.group_state(GROUP) is None
    assert groups.next_deadline() == 600_000  # only the retention check is left
    assert join(groups, "again", now_ms=20).replies == [("again", join_error("", ErrorCode.NOT_COORDINATOR))]


def test_list_and_describe_show_kafkas_state_names():
    groups = coordinator()
    stable_group(groups, 1)
    join(groups, "c", now_ms=3000, client_id="c", group_id="completing")
    join(groups, "p", now_ms=3000, client_id="p", group_id="preparing")
    groups.expire(6000)
    join(groups, "p2", now_ms=6000, client_id="p2", group_id="preparing")  # rebalances again
    groups.offset_commit("simple", -1, "", None, -1, [("orders", 0, 5, -1, None)], now_ms=6000)
    listed = {group["group_id"]: group for group in groups.list_groups().response["groups"]}
    assert listed == {
        "preparing": {"group_id": "preparing", "protocol_type": CONSUMER, "group_state": "PreparingRebalance",
                      "group_type": "classic"},
        "completing": {"group_id": "completing", "protocol_type": CONSUMER, "group_state": "CompletingRebalance",
                       "group_type": "classic"},
        GROUP: {"group_id": GROUP, "protocol_type": CONSUMER, "group_state": "Stable", "group_type": "classic"},
        "simple": {"group_id": "simple", "protocol_type": "", "group_state": "Empty", "group_type": "classic"},
    }
    assert [group["group_id"] for group in groups.list_groups(["STABLE", " empty"]).response["groups"]] == [
        GROUP, "simple"]
    assert groups.list_groups([], ["consumer"]).response["groups"] == []
    assert len(groups.list_groups([], ["Classic"]).response["groups"]) == 4

    [stable, unknown] = groups.describe_groups([GROUP, "never-seen"]).response
    assert stable == {"error_code": ErrorCode.NONE, "group_id": GROUP, "group_state": "Stable",
                      "protocol_type": CONSUMER, "protocol_data": "range", "members": [{
                          "member_id": "client-a-u1", "group_instance_id": None, "client_id": "client-a",
                          "client_host": "/127.0.0.1", "member_metadata": RANGE[0][1],
                          "member_assignment": b"assignment-client-a-u1"}]}
    assert unknown == {"error_code": ErrorCode.NONE, "group_id": "never-seen", "group_state": "Dead",
                       "protocol_type": "", "protocol_data": "", "members": []}


def test_preparing_rebalance_is_listed_as_such():
    groups = coordinator()
    join(groups, "a", now_ms=0)
    assert groups.list_groups(["PreparingRebalance"]).response["groups"] == [
        {"group_id": GROUP, "protocol_type": CONSUMER, "group_state": "PreparingRebalance", "group_type": "classic"}]
