"""Each broker's view of the cluster follows ZooKeeper through watches: a topic's config
change made at one broker reaches every broker, and a refresh reads again only the
znodes whose watches fired."""
from __future__ import annotations

from tests.zookeeper.inprocess import ZkCluster, wait_until

PARTITIONS = 8


async def two_brokers(zk_cluster) -> ZkCluster:
    cluster = zk_cluster()
    for node_id in (1, 2):
        await cluster.start(node_id)
    await cluster.wait_for_controller()
    return cluster


async def test_a_topic_config_change_reaches_every_broker(zk_cluster):
    cluster = await two_brokers(zk_cluster)
    await cluster.create_topic("t", {0: [2], 1: [1]})
    await wait_until(lambda: all(
        (view := broker.cluster.partition("t", p)) is not None and view.leader == 2 - p
        for broker in cluster.brokers.values() for p in (0, 1)), what="t led everywhere")
    # Set at broker 1 (as AlterConfigs does), the leader of t-0 on broker 2 applies it.
    assert cluster.brokers[2].topic_policy("t").min_insync_replicas == 1
    cluster.brokers[1].cluster.set_topic_configs("t", {"min.insync.replicas": "2"})
    await wait_until(lambda: cluster.brokers[2].topic_policy("t").min_insync_replicas == 2,
                     what="broker 2 applying min.insync.replicas=2")
    assert cluster.brokers[2].metadata.topics["t"].configs == {"min.insync.replicas": "2"}


async def test_a_refresh_reads_only_the_partition_whose_state_changed(zk_cluster):
    cluster = await two_brokers(zk_cluster)
    await cluster.create_topic("t", {p: [1 + p % 2] for p in range(PARTITIONS)})
    observer = cluster.brokers[2].cluster
    await wait_until(lambda: all((view := observer.partition("t", p)) is not None
                                 and view.leader == 1 + p % 2 for p in range(PARTITIONS)),
                     what="every partition led in broker 2's view")
    store = observer._store
    reads: list[tuple[str, object]] = []
    partition_state, topic_assignment = store.partition_state, store.topic_assignment
    store.partition_state = lambda *key: reads.append(("state", key)) or partition_state(*key)
    store.topic_assignment = lambda name: (reads.append(("topic", name))
                                           or topic_assignment(name))

    state = cluster.store.partition_state("t", 5)
    cluster.store.update_partition_state("t", 5, type(state)(
        state.leader, state.leader_epoch + 1, state.isr, state.controller_epoch), state.version)
    await wait_until(lambda: observer.partition("t", 5).leader_epoch == state.leader_epoch + 1,
                     what="the new leader epoch in broker 2's view")
    assert reads == [("state", ("t", 5))]
    assert [observer.partition("t", p).leader_epoch for p in range(PARTITIONS)] == [
        state.leader_epoch + (p == 5) for p in range(PARTITIONS)]
