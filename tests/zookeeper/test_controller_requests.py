"""ElectLeaders, AlterPartitionReassignments and ListPartitionReassignments against brokers
in process on a real ZooKeeper: every advertised version, Kafka's per-partition errors,
NOT_CONTROLLER from the other brokers, the controller carrying a reassignment through
(KIP-455) and the requests tools write into ZooKeeper; and the same APIs on a broker alone."""
from __future__ import annotations

import pytest
import trio

from broker.zookeeper.store import BrokerRegistration
from tests.broker.conftest import broker, client  # noqa: F401  (the broker-alone fixtures)
from tests.zookeeper.inprocess import (
    ZkCluster,
    alter,
    altered,
    elect,
    list_reassignments,
    listed,
    partition_result,
    wait_until,
)
from wire.api_keys import ApiKey
from wire.errors import ErrorCode
from wire.records import build_batch

NONE = ErrorCode.NONE
NOT_NEEDED = (ErrorCode.ELECTION_NOT_NEEDED, "Leader election not needed for topic partition.")
UNKNOWN = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")
NOT_CONTROLLER_MESSAGE = "This is not the correct controller for this cluster."
NO_REASSIGNMENT = (ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
                   "No partition reassignment is in progress.")
INVALID_REPLICA_ASSIGNMENT = 39


async def three_brokers(zk_cluster, **settings: str) -> tuple[ZkCluster, int, int, int]:
    """Brokers 1, 2, 3: (cluster, controller, other, another)."""
    cluster = zk_cluster(**settings)
    for node_id in (1, 2, 3):
        await cluster.start(node_id)
    controller = await cluster.wait_for_controller()
    other, another = sorted({1, 2, 3} - {controller})
    return cluster, controller, other, another


async def produce(cluster: ZkCluster, topic: str, partition: int, values: list[bytes]) -> None:
    leader, _ = cluster.leader_and_isr(topic, partition)
    await wait_until(lambda: cluster.brokers[leader].replicas.leader_or_none(topic, partition),
                     what=f"broker {leader} leading {topic}-{partition}")
    client = await cluster.client(leader)
    batch = build_batch([(None, value, [], 1_700_000_000_000) for value in values])
    response = await client.call(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 10_000,
        "topic_data": [{"name": topic, "partition_data": [
            {"index": partition, "records": batch}]}]})
    assert response.responses[0].partition_responses[0].error_code == NONE


def move_leader(cluster: ZkCluster, topic: str, partition: int, leader: int) -> None:
    """What a failover leaves behind: another ISR member leads (a new leader epoch)."""
    state = cluster.store.partition_state(topic, partition)
    cluster.store.update_partition_state(topic, partition, type(state)(
        leader, state.leader_epoch + 1, state.isr, state.controller_epoch), state.version)


def log_bytes(cluster: ZkCluster, node_id: int, topic: str, partition: int) -> bytes:
    partition_log = cluster.brokers[node_id].partition_log(topic, partition)
    return partition_log.read(0, 1 << 30).read()


# -- ElectLeaders ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_preferred_election_at_the_controller(zk_cluster, version):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other, another, controller],
                                     1: [another, controller, other]})
    await wait_until(lambda: len(cluster.leader_and_isr("t", 0)[1]) == 3, what="full ISR")
    move_leader(cluster, "t", 0, another)
    await wait_until(lambda: cluster.brokers[controller].cluster.partition("t", 0).leader
                     == another, what="the moved leader in the controller's view")
    client = await cluster.client(controller)

    response = await elect(client, version, {"t": [0, 1, 7], "nope": [0]})
    if version >= 1:
        assert response.error_code == NONE
    assert partition_result(response, "t", 0) == (NONE, None)
    assert partition_result(response, "t", 1) == NOT_NEEDED
    assert partition_result(response, "t", 7) == UNKNOWN
    assert partition_result(response, "nope", 0) == UNKNOWN
    # Answered once the election is in ZooKeeper: the preferred replica leads.
    assert cluster.leader_and_isr("t", 0)[0] == other

    # Every other broker answers NOT_CONTROLLER for each partition, as Kafka's do.
    for node_id in (other, another):
        elsewhere = await elect(await cluster.client(node_id), version, {"t": [0, 1]})
        assert [partition_result(elsewhere, "t", p) for p in (0, 1)] == [
            (ErrorCode.NOT_CONTROLLER, None)] * 2


async def test_election_for_all_partitions_lists_only_those_that_needed_one(zk_cluster):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other, controller], 1: [another, other],
                                     2: [controller, another]})
    await wait_until(lambda: all(len(cluster.leader_and_isr("t", p)[1]) == 2
                                 for p in range(3)), what="full ISRs")
    move_leader(cluster, "t", 1, other)
    await wait_until(lambda: cluster.brokers[controller].cluster.partition("t", 1).leader
                     == other, what="the moved leader in the controller's view")
    response = await elect(await cluster.client(controller), 2, None)
    assert [(r.topic, [(p.partition_id, p.error_code) for p in r.partition_result])
            for r in response.replica_election_results] == [("t", [(1, NONE)])]
    assert cluster.leader_and_isr("t", 1)[0] == another


async def test_preferred_leader_not_available_and_request_timed_out(zk_cluster):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [another, other], 1: [other, another]})
    await wait_until(lambda: all(len(cluster.leader_and_isr("t", p)[1]) == 2
                                 for p in range(2)), what="full ISRs")
    await cluster.stop(another)  # partition 0's preferred replica is gone
    await wait_until(lambda: cluster.leader_and_isr("t", 0) == (other, [other]),
                     what="the controller failing partition 0 over")
    client = await cluster.client(controller)
    response = await elect(client, 1, {"t": [0]})
    assert partition_result(response, "t", 0) == (
        ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
        "Failed to elect leader for partition under strategy "
        "PreferredReplicaPartitionLeaderElectionStrategy")

    await cluster.start(another)
    await wait_until(lambda: cluster.leader_and_isr("t", 0)[1] == [other, another],
                     what=f"broker {another} back in the ISR")
    # timeout_ms 0: the election is written, but not yet seen when the answer is due.
    timed_out = await elect(client, 1, {"t": [0]}, timeout_ms=0)
    assert partition_result(timed_out, "t", 0) == (ErrorCode.REQUEST_TIMED_OUT, None)
    await wait_until(lambda: cluster.leader_and_isr("t", 0)[0] == another,
                     what="the election written anyway")


async def test_unclean_election(zk_cluster):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other, another], 1: [controller, other]})
    await cluster.stop(another)  # the controller takes it out of the ISR
    await wait_until(lambda: cluster.leader_and_isr("t", 0) == (other, [other]),
                     what=f"broker {another} out of the ISR")
    client = await cluster.client(controller)
    response = await elect(client, 2, {"t": [0, 1]}, election_type=1)
    assert [partition_result(response, "t", p) for p in (0, 1)] == [NOT_NEEDED] * 2

    await cluster.stop(other)
    await wait_until(lambda: cluster.leader_and_isr("t", 0) == (-1, [other]),
                     what="partition 0 without a leader")
    response = await elect(client, 2, {"t": [0]}, election_type=1)
    assert partition_result(response, "t", 0) == (
        ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
        "Failed to elect leader for partition under strategy "
        "OfflinePartitionLeaderElectionStrategy(true)")

    await cluster.start(another)  # not in the ISR: a clean election cannot pick it
    await trio.sleep(1)
    assert cluster.leader_and_isr("t", 0) == (-1, [other])
    preferred = await elect(client, 2, {"t": [0]}, election_type=0)
    assert partition_result(preferred, "t", 0)[0] == ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    response = await elect(client, 2, {"t": [0]}, election_type=1)
    assert partition_result(response, "t", 0) == (NONE, None)
    assert cluster.leader_and_isr("t", 0) == (another, [another])


async def test_an_unknown_election_type_fails_the_request(zk_cluster):
    cluster, controller, other, _ = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other]})
    client = await cluster.client(controller)
    response = await elect(client, 2, {"t": [0]}, election_type=5)
    assert response.error_code == ErrorCode.UNKNOWN_SERVER_ERROR
    assert partition_result(response, "t", 0) == (ErrorCode.UNKNOWN_SERVER_ERROR, None)
    everything = await elect(client, 1, None, election_type=2)
    assert (everything.error_code, everything.replica_election_results) == (
        ErrorCode.UNKNOWN_SERVER_ERROR, [])


async def test_preferred_election_requested_through_zookeeper(zk_cluster, raw):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other, another]})
    await wait_until(lambda: len(cluster.leader_and_isr("t", 0)[1]) == 2, what="full ISR")
    move_leader(cluster, "t", 0, another)
    # AdminZkClient's way (kafka-preferred-replica-election.sh --zookeeper).
    cluster.store.create_preferred_replica_election([("t", 0), ("gone", 3)])
    await wait_until(lambda: cluster.store.preferred_replica_election() is None,
                     what="the controller taking the request")
    assert cluster.leader_and_isr("t", 0)[0] == other
    # A request that is not Kafka's JSON is dropped, and the brokers go on.
    raw.create("/admin/preferred_replica_election", b"not json")
    await wait_until(lambda: raw.exists("/admin/preferred_replica_election") is None,
                     what="the unreadable request deleted")
    move_leader(cluster, "t", 0, another)
    cluster.store.create_preferred_replica_election([("t", 0)])
    await wait_until(lambda: cluster.leader_and_isr("t", 0)[0] == other,
                     what="the next request carried out")


async def test_automatic_leader_rebalance(zk_cluster):
    cluster, controller, other, another = await three_brokers(
        zk_cluster, **{"auto.leader.rebalance.enable": "true",
                       "leader.imbalance.check.interval.seconds": "1"})
    await cluster.create_topic("t", {0: [other, another], 1: [other, controller]})
    await wait_until(lambda: all(len(cluster.leader_and_isr("t", p)[1]) == 2
                                 for p in range(2)), what="full ISRs")
    move_leader(cluster, "t", 0, another)  # broker `other` now leads 1 of its 2: 50 % > 10 %
    # The first check comes 5 s after the controller took over, then every second.
    await wait_until(lambda: cluster.leader_and_isr("t", 0)[0] == other, timeout_s=20,
                     what="the controller moving leadership back")


# -- AlterPartitionReassignments and ListPartitionReassignments ---------------------------


async def test_reassignment_errors_and_not_controller(zk_cluster):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other, another]})
    client = await cluster.client(controller)
    response = await alter(client, {"t": {0: [other, other]}})
    assert (response.error_code, response.error_message) == (NONE, None)
    results = altered(response)
    assert results[("t", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                 f"Duplicate replica ids in partition reassignment replica "
                                 f"list: {[other, other]}")
    results = altered(await alter(client, {"t": {0: []}}))
    assert results[("t", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                 "Empty replica list specified in partition reassignment.")
    results = altered(await alter(client, {"t": {0: [other, 9]}}))
    assert results[("t", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                 f"Replica assignment has brokers that are not alive. Replica "
                                 f"list: [9], live broker list: {[1, 2, 3]}")
    results = altered(await alter(client, {"t": {0: [-1]}}))
    assert results[("t", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                 "Invalid broker id in replica list: [-1]")
    results = altered(await alter(client, {"t": {0: None, 5: [other], 6: None},
                                           "nope": {0: [other], 1: [9]}}))
    assert results == {("t", 0): NO_REASSIGNMENT, ("t", 5): UNKNOWN,
                       ("t", 6): NO_REASSIGNMENT, ("nope", 0): UNKNOWN,
                       ("nope", 1): results[("nope", 1)]}
    assert results[("nope", 1)][0] == INVALID_REPLICA_ASSIGNMENT  # checked before existence
    assert cluster.store.topic_assignment("t").partitions == {0: [other, another]}

    for node_id in (other, another):
        elsewhere = await cluster.client(node_id)
        refused = await alter(elsewhere, {"t": {0: [another, other]}})
        assert (refused.error_code, refused.error_message, refused.responses) == (
            ErrorCode.NOT_CONTROLLER, NOT_CONTROLLER_MESSAGE, [])
        listing = await list_reassignments(elsewhere)
        assert (listing.error_code, listing.error_message, listing.topics) == (
            ErrorCode.NOT_CONTROLLER, NOT_CONTROLLER_MESSAGE, [])
    assert cluster.store.topic_assignment("t").partitions == {0: [other, another]}


async def test_a_reassignment_that_cannot_finish_is_listed_and_cancelled(zk_cluster, stores):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    # Broker 9 is registered but never fetches: the reassignment to it stays in progress.
    stores().register_broker(BrokerRegistration(9, "127.0.0.1", 9))
    await wait_until(lambda: 9 in cluster.brokers[controller].cluster.brokers,
                     what="broker 9 in the controller's view")
    await cluster.create_topic("t", {0: [other, another], 1: [another, other]})
    await wait_until(lambda: len(cluster.leader_and_isr("t", 0)[1]) == 2, what="full ISR")
    before = cluster.store.partition_state("t", 0)
    client = await cluster.client(controller)

    assert altered(await alter(client, {"t": {0: [9, another]}})) == {("t", 0): (NONE, None)}
    assignment = cluster.store.topic_assignment("t")
    assert (assignment.partitions[0], assignment.adding, assignment.removing) == (
        [9, another, other], {0: [9]}, {0: [other]})
    # Step A1: the same leader and ISR in a new leader epoch.
    after = cluster.store.partition_state("t", 0)
    assert (after.leader, after.leader_epoch, after.isr) == (
        before.leader, before.leader_epoch + 1, before.isr)
    everything = await list_reassignments(client)
    assert (everything.error_code, everything.error_message) == (NONE, None)
    assert listed(everything) == {("t", 0): ([9, another, other], [9], [other])}
    some = await list_reassignments(client, {"t": [0, 1, 4], "nope": [0]})
    assert listed(some) == {("t", 0): ([9, another, other], [9], [other])}
    assert listed(await list_reassignments(client, {"t": [1]})) == {}
    await trio.sleep(1)  # broker 9 never catches up: still running
    assert listed(await list_reassignments(client)) == {("t", 0): ([9, another, other], [9],
                                                                   [other])}

    # Cancelling reverts to the original replicas (Kafka keeps RS's order: [another, other]).
    assert altered(await alter(client, {"t": {0: None}})) == {("t", 0): (NONE, None)}
    assignment = cluster.store.topic_assignment("t")
    assert (assignment.partitions[0], assignment.adding, assignment.removing) == (
        [another, other], {}, {})
    assert listed(await list_reassignments(client)) == {}
    assert altered(await alter(client, {"t": {0: None}})) == {("t", 0): NO_REASSIGNMENT}


async def test_a_reassignment_moves_the_partition_and_its_data(zk_cluster):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other, another]})
    await wait_until(lambda: len(cluster.leader_and_isr("t", 0)[1]) == 2, what="full ISR")
    values = [f"value-{n}".encode() for n in range(50)]
    await produce(cluster, "t", 0, values)
    old_epoch = cluster.store.partition_state("t", 0).leader_epoch
    client = await cluster.client(controller)

    # `other` leads and leaves: the leader moves to the first target replica in the ISR.
    assert altered(await alter(client, {"t": {0: [controller, another]}})) == {
        ("t", 0): (NONE, None)}
    with trio.fail_after(30):
        while listed(await list_reassignments(client)):
            await trio.sleep(0.1)
    assignment = cluster.store.topic_assignment("t")
    assert (assignment.partitions, assignment.adding, assignment.removing) == (
        {0: [controller, another]}, {}, {})
    state = cluster.store.partition_state("t", 0)
    assert state.leader in (controller, another) and sorted(state.isr) == sorted(
        [controller, another])
    assert state.leader_epoch > old_epoch
    await wait_until(lambda: cluster.brokers[other].partition_log("t", 0) is None,
                     what=f"broker {other} deleting its log")
    assert not (cluster.data_dir(other) / "t-0").exists()
    assert log_bytes(cluster, controller, "t", 0) == log_bytes(cluster, another, "t", 0)
    assert log_bytes(cluster, controller, "t", 0) != b""

    # A reordered replica list completes at once; a preferred election then moves the
    # leadership to the new first replica.
    assert altered(await alter(client, {"t": {0: [another, controller]}})) == {
        ("t", 0): (NONE, None)}
    assert cluster.store.topic_assignment("t").partitions == {0: [another, controller]}
    elected = await elect(client, 2, {"t": [0]})
    assert partition_result(elected, "t", 0) in ((NONE, None), NOT_NEEDED)
    assert cluster.leader_and_isr("t", 0)[0] == another


async def test_a_reassignment_requested_through_zookeeper(zk_cluster):
    cluster, controller, other, another = await three_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [other], 1: [another]})
    # kafka-reassign-partitions.sh --zookeeper writes /admin/reassign_partitions.
    cluster.store.create_partition_reassignment({("t", 0): [controller], ("t", 1): [],
                                                 ("gone", 0): [other]})
    await wait_until(lambda: cluster.store.partition_reassignment() == {},
                     what="the controller finishing the request")
    assert cluster.store.topic_assignment("t").partitions == {0: [controller], 1: [another]}
    assert cluster.leader_and_isr("t", 0) == (controller, [controller])
    await wait_until(lambda: cluster.brokers[other].partition_log("t", 0) is None,
                     what=f"broker {other} deleting its log")


# -- a broker alone --------------------------------------------------------------------------


async def test_a_broker_alone_is_its_own_controller(broker, client):  # noqa: F811
    broker.create_topic("t", 2, {})
    node = broker.node_id
    for version in (0, 1, 2):
        response = await elect(client, version, {"t": [0, 1, 2]})
        assert [partition_result(response, "t", p) for p in (0, 1, 2)] == [
            NOT_NEEDED, NOT_NEEDED, UNKNOWN]
        everything = await elect(client, version, None)
        assert everything.replica_election_results == []
    unclean = await elect(client, 1, {"t": [0]}, election_type=1)
    assert partition_result(unclean, "t", 0) == NOT_NEEDED
    results = altered(await alter(client, {"t": {0: [node], 1: None, 2: [node]},
                                           "u": {0: [node + 1]}}))
    assert results == {("t", 0): (NONE, None), ("t", 1): NO_REASSIGNMENT, ("t", 2): UNKNOWN,
                       ("u", 0): results[("u", 0)]}
    assert results[("u", 0)][0] == INVALID_REPLICA_ASSIGNMENT
    listing = await list_reassignments(client)
    assert (listing.error_code, listing.topics) == (NONE, [])
