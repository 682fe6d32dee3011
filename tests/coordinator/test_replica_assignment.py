"""The cluster's pure rules against Kafka's own cases (AdminRackAwareTest, RackAwareTest,
AddPartitionsTest, Election.scala, KafkaController's KIP-455 example)."""
import itertools
import random
from collections import Counter

import pytest

from coordinator.replica_assignment import (
    NO_LEADER,
    BrokerPlacement,
    ControlledShutdownElection,
    ElectionType,
    LeaderAndIsr,
    LeaderRecoveryState,
    MixedRackInformation,
    OfflineElection,
    PreferredElection,
    ReassignElection,
    ReplicaAssignment,
    added_partitions_start_index,
    assign_added_partitions,
    assign_replicas,
    complete_reassignment,
    controlled_shutdown_leader,
    elect,
    elect_leaders,
    initial_leader_and_isr,
    isr_after_broker_failure,
    offline_partition_leader,
    partitions_to_rebalance,
    plan_reassignment,
    preferred_replica_leader,
    rack_alternated_broker_list,
    reassign_partition_leader,
    update_reassignment,
    validate_added_partitions_assignment,
    validate_manual_assignment,
    validate_reassignment_target,
)
from wire.errors import ErrorCode, KafkaError

INVALID_REPLICA_ASSIGNMENT = ErrorCode(39)


def racked(rack_of: dict[int, str | None]) -> list[BrokerPlacement]:
    return [BrokerPlacement(broker_id, rack) for broker_id, rack in sorted(rack_of.items())]


def unracked(broker_ids) -> list[BrokerPlacement]:
    return [BrokerPlacement(broker_id) for broker_id in broker_ids]


# --- placement: Kafka's exact expectations ----------------------------------------------

def test_rack_unaware_assignment_is_kafkas_test_replica_assignment():
    assignment = assign_replicas(unracked(range(5)), 10, 3, start_index=0, first_partition=-1)
    assert assignment == {
        0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 4], 3: [3, 4, 0], 4: [4, 0, 1],
        5: [0, 2, 3], 6: [1, 3, 4], 7: [2, 4, 0], 8: [3, 0, 1], 9: [4, 1, 2],
    }


def test_rack_alternated_list_and_assignment_are_kafkas():
    rack_of = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert rack_alternated_broker_list(rack_of) == [0, 3, 1, 5, 4, 2]
    assert rack_alternated_broker_list({k: v for k, v in rack_of.items() if k != 5}) == [0, 3, 1, 4, 2]
    assert assign_replicas(racked(rack_of), 7, 3, start_index=0, first_partition=0) == {
        0: [0, 3, 1], 1: [3, 1, 5], 2: [1, 5, 4], 3: [5, 4, 2], 4: [4, 2, 0], 5: [2, 0, 3],
        6: [0, 4, 2],
    }


def test_rack_alternated_list_of_the_javadoc():
    rack_of = {0: "rack1", 1: "rack1", 2: "rack1", 3: "rack2", 4: "rack2", 5: "rack2",
               6: "rack3", 7: "rack3", 8: "rack3"}
    assert rack_alternated_broker_list(rack_of) == [0, 3, 6, 1, 4, 7, 2, 5, 8]


def test_a_start_index_without_a_shift_is_also_the_shift_as_kafkas_fixed_start_index():
    brokers = unracked(range(5))
    assert (assign_replicas(brokers, 10, 3, start_index=2)
            == assign_replicas(brokers, 10, 3, start_index=2, next_replica_shift=2))
    assert assign_replicas(brokers, 2, 3, start_index=0, next_replica_shift=1) == {
        0: [0, 2, 3], 1: [1, 3, 4]}


def test_random_start_comes_from_the_rng_only():
    brokers = unracked(range(5))
    first = assign_replicas(brokers, 10, 3, rng=random.Random(7))
    assert first == assign_replicas(brokers, 10, 3, rng=random.Random(7))
    rng = random.Random(7)
    start, shift = rng.randrange(5), rng.randrange(5)
    assert first == assign_replicas(brokers, 10, 3, start_index=start, next_replica_shift=shift)


def test_brokers_are_used_in_the_order_given():
    assert assign_replicas(unracked([3, 1, 2]), 3, 2, start_index=0) == {
        0: [3, 1], 1: [1, 2], 2: [2, 3]}


# Kafka's AddPartitionsTest (ZooKeeper mode): 4 brokers, leaders and replica sets.

def test_added_partitions_on_all_servers_are_kafkas():
    added = assign_added_partitions(unracked(range(4)), {0: [2, 3, 0, 1]}, 7)
    assert {p: (r[0], set(r)) for p, r in added.items()} == {
        1: (3, {0, 1, 2, 3}), 2: (0, {0, 1, 2, 3}), 3: (1, {0, 1, 2, 3}),
        4: (2, {0, 1, 2, 3}), 5: (3, {0, 1, 2, 3}), 6: (0, {0, 1, 2, 3})}
    assert added == {1: [3, 2, 0, 1], 2: [0, 3, 1, 2], 3: [1, 0, 2, 3], 4: [2, 3, 0, 1],
                     5: [3, 0, 1, 2], 6: [0, 1, 2, 3]}


def test_added_partitions_on_some_servers_are_kafkas():
    assert assign_added_partitions(unracked(range(4)), {0: [1, 2]}, 3) == {
        1: [2, 0], 2: [3, 1]}


def test_added_partitions_start_after_partition0_leader_or_at_0():
    brokers = unracked([1, 3, 5])
    assert added_partitions_start_index(brokers, [3, 1]) == 1
    assert added_partitions_start_index(brokers, [4, 1]) == 2
    assert added_partitions_start_index(brokers, [9, 1]) == 0
    assert added_partitions_start_index(brokers, [0, 1]) == 0


def test_added_partitions_must_grow_the_count():
    with pytest.raises(KafkaError) as same:
        assign_added_partitions(unracked(range(3)), {0: [0], 1: [1]}, 2)
    assert same.value.code == ErrorCode.INVALID_PARTITIONS
    assert same.value.message == "Topic already has 2 partitions."
    with pytest.raises(KafkaError) as fewer:
        assign_added_partitions(unracked(range(3)), {0: [0], 1: [1]}, 1)
    assert fewer.value.message == (
        "Topic currently has 2 partitions, which is higher than the requested 1.")


# --- placement: errors --------------------------------------------------------------------

@pytest.mark.parametrize("partitions, replication_factor, code", [
    (0, 0, ErrorCode.INVALID_PARTITIONS),
    (10, 0, ErrorCode.INVALID_REPLICATION_FACTOR),
    (10, 6, ErrorCode.INVALID_REPLICATION_FACTOR),
])
def test_invalid_counts_raise_kafkas_errors(partitions, replication_factor, code):
    with pytest.raises(KafkaError) as error:
        assign_replicas(unracked(range(5)), partitions, replication_factor)
    assert error.value.code == code


def test_replication_factor_above_the_brokers_has_kafkas_message():
    with pytest.raises(KafkaError) as error:
        assign_replicas(unracked(range(5)), 10, 6)
    assert error.value.message == "Replication factor: 6 larger than available brokers: 5."


def test_mixed_racks_are_refused_as_kafka_does():
    brokers = racked({0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: None})
    with pytest.raises(MixedRackInformation) as error:
        assign_replicas(brokers, 10, 5)
    assert error.value.code == ErrorCode.UNKNOWN_SERVER_ERROR
    assert error.value.message == (
        "Not all brokers have rack information for replica rack aware assignment.")
    # Kafka checks the counts first.
    with pytest.raises(KafkaError) as too_many:
        assign_replicas(brokers, 10, 6)
    assert too_many.value.code == ErrorCode.INVALID_REPLICATION_FACTOR


# --- placement: RackAwareTest's distribution checks, for every start and shift -----------

def check_replica_distribution(assignment, rack_of, partitions, replication_factor, *,
                               rack_aware=True, leaders_even=True, replicas_even=True):
    for replicas in assignment.values():
        assert len(set(replicas)) == len(replicas)
    if rack_aware:
        assert [len({rack_of[b] for b in r}) for r in assignment.values()] == (
            [replication_factor] * partitions)
    if leaders_even:
        leaders = Counter(r[0] for r in assignment.values())
        assert sorted(leaders) == sorted(rack_of)
        assert set(leaders.values()) == {partitions // len(rack_of)}
    if replicas_even:
        replicas = Counter(b for r in assignment.values() for b in r)
        assert sorted(replicas) == sorted(rack_of)
        assert set(replicas.values()) == {partitions * replication_factor // len(rack_of)}


SIX_BROKERS_THREE_RACKS = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack1"}


def every_start(broker_count):
    return itertools.product(range(broker_count), range(broker_count))


@pytest.mark.parametrize("rack_of, partitions, replication_factor, first_partition, options", [
    (SIX_BROKERS_THREE_RACKS, 6, 3, 0, {}),  # testAssignmentWithRackAware(WithRandomStartIndex)
    (SIX_BROKERS_THREE_RACKS, 13, 3, 0, {"leaders_even": False, "replicas_even": False}),
    ({0: "rack1", 1: "rack1", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack1"}, 12, 3, 0,
     {"replicas_even": False}),  # uneven racks
    (SIX_BROKERS_THREE_RACKS, 12, 2, 0, {}),
    ({6: "rack1", 7: "rack2", 8: "rack2", 9: "rack3", 10: "rack3", 11: "rack1"}, 12, 2, 12, {}),
    (SIX_BROKERS_THREE_RACKS, 6, 2, 0, {}),
    ({0: "rack1", 1: "rack2", 4: "rack3"}, 3, 2, 0, {}),
    ({0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack1", 6: "rack1",
      7: "rack2", 8: "rack2", 9: "rack3", 10: "rack1", 11: "rack3"}, 96, 3, 0, {}),
])
def test_rack_aware_distribution(rack_of, partitions, replication_factor, first_partition,
                                 options):
    for start_index, shift in every_start(len(rack_of)):
        assignment = assign_replicas(racked(rack_of), partitions, replication_factor,
                                     start_index=start_index, next_replica_shift=shift,
                                     first_partition=first_partition)
        assert sorted(assignment) == list(range(first_partition, first_partition + partitions))
        check_replica_distribution(assignment, rack_of, partitions, replication_factor,
                                   **options)


def test_more_replicas_than_racks_reach_every_rack():
    rack_of = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack2"}
    for start_index, shift in every_start(6):
        assignment = assign_replicas(racked(rack_of), 6, 5, start_index=start_index,
                                     next_replica_shift=shift)
        assert all(len(r) == 5 == len(set(r)) for r in assignment.values())
        assert all({rack_of[b] for b in r} == {"rack1", "rack2", "rack3"}
                   for r in assignment.values())


def test_fewer_replicas_than_racks_use_distinct_racks():
    rack_of = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack2"}
    for start_index, shift in every_start(6):
        assignment = assign_replicas(racked(rack_of), 6, 2, start_index=start_index,
                                     next_replica_shift=shift)
        assert all(len({rack_of[b] for b in r}) == 2 for r in assignment.values())


def test_single_rack_spreads_leaders_one_per_broker():
    rack_of = dict.fromkeys(range(6), "rack1")
    for start_index, shift in every_start(6):
        assignment = assign_replicas(racked(rack_of), 6, 3, start_index=start_index,
                                     next_replica_shift=shift)
        assert all(len(set(r)) == 3 for r in assignment.values())
        assert Counter(r[0] for r in assignment.values()) == Counter(range(6))


def test_skip_broker_with_replica_already_assigned():
    rack_of = {0: "a", 1: "b", 2: "c", 3: "a", 4: "a"}
    assignment = assign_replicas(racked(rack_of), 6, 4, start_index=2, first_partition=-1)
    assert sorted(assignment) == list(range(6))
    check_replica_distribution(assignment, rack_of, 6, 4, rack_aware=False,
                               leaders_even=False, replicas_even=False)
    assert all(len(r) == 4 and {rack_of[b] for b in r} == {"a", "b", "c"}
               for r in assignment.values())


def test_rack_aware_added_partitions_continue_the_rotation():
    brokers = racked(SIX_BROKERS_THREE_RACKS)
    whole = assign_replicas(brokers, 12, 3, start_index=1, next_replica_shift=4)
    tail = assign_replicas(brokers, 6, 3, start_index=1, next_replica_shift=4, first_partition=6)
    assert tail == {p: r for p, r in whole.items() if p >= 6}


# --- manual assignments ------------------------------------------------------------------

def refused(function, *args):
    with pytest.raises(KafkaError) as error:
        function(*args)
    return error.value.code, error.value.message


def test_a_good_manual_assignment_passes():
    validate_manual_assignment({0: [1, 2], 1: [2, 3], 2: [3, 1]}, {1, 2, 3})


@pytest.mark.parametrize("assignment, message", [
    ({}, "All partitions should have the same number of replicas"),
    ({0: [1, 2], 1: [1]}, "All partitions should have the same number of replicas"),
    ({0: [1, 1]}, "Duplicate replica assignment found: Map(0 -> List(1, 1))"),
    ({0: [1], 2: [2]}, "partitions should be a consecutive 0-based integer sequence"),
    ({1: [1]}, "partitions should be a consecutive 0-based integer sequence"),
    ({0: []}, "The manual partition assignment includes an empty replica list."),
    ({0: [1, 2], 1: [7, 4]},
     "The manual partition assignment includes broker 4, but no such broker is registered."),
])
def test_manual_assignment_refusals(assignment, message):
    assert refused(validate_manual_assignment, assignment, {1, 2, 3}) == (
        INVALID_REPLICA_ASSIGNMENT, message)


def test_added_partitions_manual_assignment():
    existing = {0: [1, 2]}
    assert validate_added_partitions_assignment([[2, 3], [3, 1]], existing, 3, {1, 2, 3}) == {
        1: [2, 3], 2: [3, 1]}
    assert refused(validate_added_partitions_assignment, [[2, 9], [8, 1]], existing, 3,
                   {1, 2, 3}) == (INVALID_REPLICA_ASSIGNMENT,
                                  "Unknown broker(s) in replica assignment: 8, 9.")
    assert refused(validate_added_partitions_assignment, [[2, 3]], existing, 3, {1, 2, 3}) == (
        INVALID_REPLICA_ASSIGNMENT,
        "Increasing the number of partitions by 2 but 1 assignments provided.")
    assert refused(validate_added_partitions_assignment, [[3, 3]], existing, 2, {1, 2, 3}) == (
        INVALID_REPLICA_ASSIGNMENT,
        "Duplicate brokers not allowed in replica assignment: 3, 3 for partition id 1.")
    assert refused(validate_added_partitions_assignment, [[]], existing, 2, {1, 2, 3}) == (
        INVALID_REPLICA_ASSIGNMENT, "Cannot have replication factor of 0 for partition id 1.")
    assert refused(validate_added_partitions_assignment, [[1, 2], [1, 2, 3], [1]], existing,
                   4, {1, 2, 3}) == (
        INVALID_REPLICA_ASSIGNMENT,
        "Inconsistent replication factor between partitions, partition 0 has 2 while "
        "partitions [2, 3] have replication factors [3, 1], respectively.")
    assert refused(validate_added_partitions_assignment, [], existing, 1, {1, 2, 3})[0] == (
        ErrorCode.INVALID_PARTITIONS)


# --- which replica leads -----------------------------------------------------------------

def test_offline_leader_is_the_first_live_isr_member_in_assignment_order():
    assert offline_partition_leader([1, 2, 3], isr=[3, 2], live={2, 3}, unclean_enabled=False) == 2
    assert offline_partition_leader([1, 2, 3], isr=[1, 3], live={2, 3}, unclean_enabled=False) == 3


def test_offline_leader_without_a_live_isr_member_needs_unclean_election():
    assert offline_partition_leader([1, 2, 3], isr=[1], live={2, 3}, unclean_enabled=False) is None
    assert offline_partition_leader([1, 2, 3], isr=[1], live={3, 2}, unclean_enabled=True) == 2
    assert offline_partition_leader([1, 2, 3], isr=[1], live=set(), unclean_enabled=True) is None


def test_reassign_leader_comes_from_the_target_replicas_in_the_isr():
    assert reassign_partition_leader([4, 5, 6], isr=[1, 2, 3, 5, 6], live={1, 4, 5, 6}) == 5
    assert reassign_partition_leader([4, 5], isr=[1, 2], live={1, 2, 4, 5}) is None


def test_preferred_leader_is_only_ever_the_first_replica():
    assert preferred_replica_leader([1, 2, 3], isr=[2, 1], live={1, 2}) == 1
    assert preferred_replica_leader([1, 2, 3], isr=[2, 3], live={1, 2, 3}) is None  # not in ISR
    assert preferred_replica_leader([1, 2, 3], isr=[1, 2], live={2, 3}) is None  # dead


def test_controlled_shutdown_leader_skips_the_brokers_shutting_down():
    assert controlled_shutdown_leader([1, 2, 3], [1, 2, 3], {1, 2, 3}, shutting_down={1}) == 2
    assert controlled_shutdown_leader([1, 2, 3], [1, 2], {1, 2, 3}, shutting_down={1, 2}) is None
    assert controlled_shutdown_leader([1, 2, 3], [1], {1, 2, 3}, shutting_down={1}) is None


# --- leader and ISR transitions ----------------------------------------------------------

def test_a_new_partition_is_led_by_its_first_live_replica():
    assert initial_leader_and_isr([3, 1, 2], live={1, 2}) == LeaderAndIsr(1, 0, (1, 2))
    assert initial_leader_and_isr([3, 1], live={2}) is None


def test_offline_election_keeps_the_live_isr():
    state = LeaderAndIsr(leader=1, leader_epoch=4, isr=(1, 2, 3))
    assert elect(state, OfflineElection(), [1, 2, 3], live={2, 3}) == LeaderAndIsr(2, 5, (2, 3))


def test_offline_election_without_live_isr_member():
    state = LeaderAndIsr(leader=1, leader_epoch=4, isr=(1,))
    assert elect(state, OfflineElection(unclean_enabled=False), [1, 2, 3], live={2, 3}) is None
    assert elect(state, OfflineElection(unclean_enabled=True), [1, 2, 3], live={3, 2}) == (
        LeaderAndIsr(2, 5, (2,)))
    recovering = elect(state, OfflineElection(unclean_enabled=True, leader_recovery_supported=True),
                       [1, 2, 3], live={3})
    assert recovering == LeaderAndIsr(3, 5, (3,), LeaderRecoveryState.RECOVERING)


def test_offline_election_of_a_partition_whose_last_isr_member_returns():
    # The controller kept the dead leader as the last ISR member (NO_LEADER): clean
    # election waits for it and it leads again when it comes back.
    state = LeaderAndIsr(leader=NO_LEADER, leader_epoch=6, isr=(1,))
    assert elect(state, OfflineElection(), [1, 2], live={2}) is None
    assert elect(state, OfflineElection(), [1, 2], live={1, 2}) == LeaderAndIsr(1, 7, (1,))


def test_reassign_and_preferred_elections_keep_the_isr():
    state = LeaderAndIsr(leader=2, leader_epoch=1, isr=(2, 1, 3))
    assert elect(state, PreferredElection(), [1, 2, 3], live={1, 2, 3}) == LeaderAndIsr(1, 2, (2, 1, 3))
    assert elect(state, PreferredElection(), [1, 2, 3], live={2, 3}) is None
    assert elect(state, ReassignElection(), [3, 1], live={1, 2, 3}) == LeaderAndIsr(3, 2, (2, 1, 3))
    assert elect(state, ReassignElection(), [4], live={1, 2, 3, 4}) is None


def test_controlled_shutdown_moves_the_leader_and_shrinks_the_isr():
    state = LeaderAndIsr(leader=1, leader_epoch=3, isr=(1, 2, 3))
    strategy = ControlledShutdownElection(frozenset({1}))
    assert elect(state, strategy, [1, 2, 3], live={1, 2, 3}) == LeaderAndIsr(2, 4, (2, 3))
    alone = LeaderAndIsr(leader=1, leader_epoch=3, isr=(1,))
    assert elect(alone, strategy, [1, 2, 3], live={1, 2, 3}) is None


def test_a_dead_follower_leaves_the_isr_and_the_leader_stays():
    state = LeaderAndIsr(leader=1, leader_epoch=3, isr=(1, 2, 3))
    assert isr_after_broker_failure(state, 2) == LeaderAndIsr(1, 4, (1, 3))
    assert isr_after_broker_failure(LeaderAndIsr(1, 3, (1, 3)), 2) is None  # not in the ISR


def test_a_dead_last_isr_member_stays_in_the_isr_without_a_leader():
    assert isr_after_broker_failure(LeaderAndIsr(1, 3, (1,)), 1) == LeaderAndIsr(NO_LEADER, 4, (1,))
    assert isr_after_broker_failure(LeaderAndIsr(1, 3, (1, 2)), 1) == LeaderAndIsr(NO_LEADER, 4, (2,))


def test_elect_leaders_preferred():
    replicas = [1, 2, 3]
    assert elect_leaders(LeaderAndIsr(2, 5, (1, 2)), ElectionType.PREFERRED, replicas,
                         {1, 2, 3}) == LeaderAndIsr(1, 6, (1, 2))
    for state, live, code in [
        (LeaderAndIsr(1, 5, (1, 2)), {1, 2, 3}, ErrorCode.ELECTION_NOT_NEEDED),
        (LeaderAndIsr(2, 5, (2, 3)), {1, 2, 3}, ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE),
        (LeaderAndIsr(2, 5, (1, 2)), {2, 3}, ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE),
    ]:
        assert refused(elect_leaders, state, ElectionType.PREFERRED, replicas, live)[0] == code


def test_elect_leaders_unclean():
    replicas = [1, 2, 3]
    assert elect_leaders(LeaderAndIsr(NO_LEADER, 5, (1,)), ElectionType.UNCLEAN, replicas,
                         {2, 3}) == LeaderAndIsr(2, 6, (2,))
    assert refused(elect_leaders, LeaderAndIsr(2, 5, (2,)), ElectionType.UNCLEAN, replicas,
                   {2, 3})[0] == ErrorCode.ELECTION_NOT_NEEDED
    assert refused(elect_leaders, LeaderAndIsr(NO_LEADER, 5, (1,)), ElectionType.UNCLEAN,
                   replicas, set())[0] == ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE


# --- reassignment ------------------------------------------------------------------------

def test_kafkas_reassignment_example_step_by_step():
    # KafkaController.onPartitionReassignment: ORS {1,2,3} -> TRS {4,5,6}.
    current = ReplicaAssignment((1, 2, 3))
    plan = current.reassign_to([4, 5, 6])
    assert plan == ReplicaAssignment((4, 5, 6, 1, 2, 3), (4, 5, 6), (1, 2, 3))
    assert (plan.origin_replicas, plan.target_replicas) == ((1, 2, 3), (4, 5, 6))
    assert plan.is_being_reassigned
    assert not plan.is_complete(isr=[1, 2, 3])
    assert not plan.is_complete(isr=[1, 2, 3, 4, 5])
    assert plan.is_complete(isr=[1, 2, 3, 4, 5, 6])
    step = complete_reassignment(plan, LeaderAndIsr(1, 7, (1, 2, 3, 4, 5, 6)),
                                 live={1, 2, 3, 4, 5, 6})
    assert step.assignment == ReplicaAssignment((4, 5, 6))
    assert step.removed_replicas == (1, 2, 3)
    assert step.leader_elected
    # B3 elects 4 (epoch 8), B4 removes 1, 2, 3 one at a time (epochs 9, 10, 11).
    assert step.leader_and_isr == LeaderAndIsr(4, 11, (4, 5, 6))


def test_overlapping_reassignment_lists_the_target_first():
    plan = ReplicaAssignment((1, 2, 3)).reassign_to([3, 4, 2])
    assert plan == ReplicaAssignment((3, 4, 2, 1), (4,), (1,))
    # Cancelling cannot restore the original order (Kafka's note on updateCurrentReassignment).
    assert plan.origin_replicas == (3, 2, 1)
    assert plan.cancelled() == ReplicaAssignment((3, 2, 1))
    assert plan.reassign_to([3, 4, 2]) == plan


def test_a_new_reassignment_replaces_a_running_one_and_keeps_the_origin():
    running = ReplicaAssignment((1, 2, 3)).reassign_to([4, 5, 6])
    assert running.reassign_to([1, 2, 7]) == ReplicaAssignment((1, 2, 7, 3), (7,), (3,))
    assert running.cancelled() == ReplicaAssignment((1, 2, 3), (), ())
    assert not running.cancelled().is_being_reassigned


def test_completion_keeps_a_live_leader_in_the_target():
    plan = ReplicaAssignment((1, 2, 3)).reassign_to([1, 2, 4])
    step = complete_reassignment(plan, LeaderAndIsr(1, 2, (1, 2, 3, 4)), live={1, 2, 3, 4})
    assert step.leader_and_isr == LeaderAndIsr(1, 4, (1, 2, 4))  # epoch +1 (B3), +1 (B4)


def test_completion_with_a_dead_leader_elects_from_the_target():
    plan = ReplicaAssignment((1, 2)).reassign_to([2, 3])
    step = complete_reassignment(plan, LeaderAndIsr(2, 2, (1, 2, 3)), live={1, 3})
    assert step.leader_and_isr == LeaderAndIsr(3, 4, (2, 3))


def test_reassignment_targets_are_validated_as_kafka_does():
    current = ReplicaAssignment((1, 2, 3))
    validate_reassignment_target(current, [3, 4], live_brokers={1, 2, 3, 4})
    assert refused(validate_reassignment_target, current, [], {1}) == (
        INVALID_REPLICA_ASSIGNMENT, "Empty replica list specified in partition reassignment.")
    assert refused(validate_reassignment_target, current, [1, 1], {1}) == (
        INVALID_REPLICA_ASSIGNMENT,
        "Duplicate replica ids in partition reassignment replica list: [1, 1]")
    assert refused(validate_reassignment_target, current, [1, -2], {1}) == (
        INVALID_REPLICA_ASSIGNMENT, "Invalid broker id in replica list: [1, -2]")
    # Only added replicas must be alive; a dead current replica may stay.
    validate_reassignment_target(current, [1, 2], live_brokers={1})
    assert refused(validate_reassignment_target, current, [1, 5], {1, 2, 3})[0] == (
        INVALID_REPLICA_ASSIGNMENT)


def test_reassignment_requests_are_checked_in_kafkas_order():
    current = ReplicaAssignment((1, 2))
    assert plan_reassignment(current, [2, 3], {1, 2, 3}) == ReplicaAssignment(
        (2, 3, 1), (3,), (1,))
    assert plan_reassignment(current, [2, 1], {1, 2}) == ReplicaAssignment((2, 1))
    assert refused(plan_reassignment, current, None, {1, 2}) == (
        ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, "No partition reassignment is in progress.")
    running = current.reassign_to([2, 3])
    assert plan_reassignment(running, None, {1, 2, 3}) == ReplicaAssignment((2, 1))
    # A partition that does not exist: bad replicas first, then "nothing to cancel", then
    # unknown (KafkaController.processApiPartitionReassignment).
    assert refused(plan_reassignment, None, [4], {1, 2})[0] == INVALID_REPLICA_ASSIGNMENT
    assert refused(plan_reassignment, None, None, {1, 2})[0] == (
        ErrorCode.NO_REASSIGNMENT_IN_PROGRESS)
    assert refused(plan_reassignment, None, [1], {1, 2}) == (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")


def test_a_started_reassignment_bumps_the_leader_epoch():
    plan = ReplicaAssignment((1, 2)).reassign_to([2, 3])
    update = update_reassignment(ReplicaAssignment((1, 2)), plan, LeaderAndIsr(1, 4, (1, 2)),
                                 live={1, 2, 3})
    assert (update.leader_and_isr, update.completion) == (LeaderAndIsr(1, 5, (1, 2)), None)


def test_a_reassignment_complete_at_once_goes_through_phase_b():
    # Shrinking [1, 2, 3] to [1, 2]: the targets are in the ISR already.
    plan = ReplicaAssignment((1, 2, 3)).reassign_to([1, 2])
    update = update_reassignment(ReplicaAssignment((1, 2, 3)), plan,
                                 LeaderAndIsr(3, 4, (1, 2, 3)), live={1, 2, 3})
    assert update.completion.assignment == ReplicaAssignment((1, 2))
    assert update.completion.removed_replicas == (3,)
    assert update.leader_and_isr == LeaderAndIsr(1, 6, (1, 2))  # B3 elects 1, B4 drops 3


def test_a_cancelled_reassignments_added_replicas_leave_the_isr():
    running = ReplicaAssignment((1, 2)).reassign_to([3, 4])
    update = update_reassignment(running, running.cancelled(),
                                 LeaderAndIsr(1, 4, (1, 2, 3)), live={1, 2, 3, 4})
    assert update.completion.assignment == ReplicaAssignment((1, 2))
    # 3 leaves the ISR (epoch 5), the leader stays in a new epoch (6).
    assert update.leader_and_isr == LeaderAndIsr(1, 6, (1, 2))


def test_leader_rebalance_above_the_imbalance_percentage():
    def state(leader, *isr):
        return LeaderAndIsr(leader, 0, isr)

    partitions = {
        ("t", 0): ([1, 2], state(2, 1, 2)),  # broker 1 leads 1 of its 4 preferred
        ("t", 1): ([1, 2], state(1, 1, 2)),
        ("t", 2): ([1, 3], state(1, 1, 3)),
        ("t", 3): ([1, 3], state(1, 1, 3)),
        ("u", 0): ([2, 1], state(1, 1)),  # broker 2: 1 of 2, but 2 is not in the ISR
        ("u", 1): ([2, 1], state(2, 2, 1)),
        ("v", 0): ([3, 1], None),  # no state yet: counted, never elected
    }
    assert partitions_to_rebalance(partitions, {1, 2, 3}, 10) == [("t", 0)]
    assert partitions_to_rebalance(partitions, {1, 2, 3}, 25) == []  # 25 % is not above
    assert partitions_to_rebalance(partitions, {2, 3}, 10) == []  # preferred 1 is dead


def test_added_partitions_need_partition_0():
    existing = {1: [0, 1]}  # Kafka's AddPartitionsTest topic5
    assert refused(assign_added_partitions, unracked(range(3)), existing, 3)[0] == (
        ErrorCode.UNKNOWN_SERVER_ERROR)
    assert refused(validate_added_partitions_assignment, [[0, 1], [0, 1, 2]], existing, 3,
                   {0, 1, 2}) == (
        ErrorCode.UNKNOWN_SERVER_ERROR,
        "Unexpected existing replica assignment, partition id 0 is missing. "
        "Assignment: {1: [0, 1]}")
