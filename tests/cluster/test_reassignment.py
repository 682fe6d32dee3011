"""A real 3-broker cluster (`gregor cluster`) grows by one broker while an idempotent
acks=all producer writes: `gregor cluster add` starts broker 4, stock admin clients move
replicas onto it (AlterPartitionReassignments, kafka-python) and make it lead a partition
(ElectLeaders, confluent-kafka); every acknowledged message is there exactly once after,
broker 4 holds the moved partitions and the removed replicas' logs are gone."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import ElectionType
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, TopicPartition

from broker import cluster_cli
from broker.zookeeper.store import ZkStore
from tests.cluster.test_failover import (
    FAILOVER_TIMEOUT_S,
    PARTITIONS,
    TOPIC,
    Writer,
    create_replicated_topic,
    leaders,
    read_everything,
    wait_until,
)

REASSIGNMENT_TIMEOUT_S = 120.0


def assignment(zookeeper: str) -> dict[int, list[int]]:
    with ZkStore(zookeeper) as store:
        store.connect()
        return store.topic_assignment(TOPIC).partitions


def partition_dir(directory: Path, node_id: int, partition: int) -> Path:
    return directory / f"broker-{node_id}" / "data" / f"{TOPIC}-{partition}"


def test_add_a_broker_and_move_partitions_onto_it_under_acks_all_writes(tmp_path,
                                                                          report_figures):
    directory = tmp_path / "cluster"
    # No automatic leader balance: the preferred election below is the test's own (the
    # controller's first balance check would otherwise make it, 5 s after it took over).
    state = cluster_cli.up(directory, 3, None, {"zookeeper.session.timeout.ms": "6000",
                                                "auto.leader.rebalance.enable": "false"})
    try:
        bootstrap = state.bootstrap
        create_replicated_topic(bootstrap)  # 3 partitions, replication factor 3, min ISR 2
        wait_until(lambda: all(len(isr) == 3 for _, isr in leaders(state.zookeeper).values()),
                   FAILOVER_TIMEOUT_S, "every partition with a full ISR")
        before = assignment(state.zookeeper)
        writer = Writer(bootstrap)
        writer.start()
        try:
            time.sleep(2)
            started = time.monotonic()
            added = subprocess.run([sys.executable, "-m", "broker", "cluster", "add", "--dir",
                                    str(directory)], capture_output=True, text=True,
                                   timeout=120)
            assert added.returncode == 0, added.stderr
            port = cluster_cli.ClusterState.load(directory).brokers[4].port
            assert added.stdout == f"broker 4: 127.0.0.1:{port}\n"

            # Partition 0 swaps its preferred replica (its leader) for broker 4 at the end:
            # the leadership moves within the target replicas. Partition 1 swaps its last
            # replica for broker 4 in front: its leader stays until the preferred election.
            targets = {0: before[0][1:] + [4], 1: [4] + before[1][:2]}
            removed = {0: before[0][0], 1: before[1][2]}
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
            try:
                results = admin.alter_partition_reassignments(
                    {TopicPartition(TOPIC, p): replicas for p, replicas in targets.items()})
                assert results == {TopicPartition(TOPIC, 0): None,
                                   TopicPartition(TOPIC, 1): None}
                wait_until(lambda: admin.list_partition_reassignments() == {},
                           REASSIGNMENT_TIMEOUT_S, "the reassignments complete")
            finally:
                admin.close()
            moved_s = time.monotonic() - started
            assert assignment(state.zookeeper) == {**before, **targets}
            wait_until(lambda: all(sorted(leaders(state.zookeeper)[p][1]) == sorted(replicas)
                                   for p, replicas in targets.items()),
                       FAILOVER_TIMEOUT_S, "the target replicas as the ISRs")
            assert leaders(state.zookeeper)[0][0] == targets[0][0]

            confluent_admin = AdminClient({"bootstrap.servers": bootstrap})
            elected = confluent_admin.elect_leaders(
                ElectionType.PREFERRED, [ConfluentPartition(TOPIC, 1)]).result(timeout=60)
            assert elected == {ConfluentPartition(TOPIC, 1): None}
            assert leaders(state.zookeeper)[1][0] == 4
            time.sleep(2)  # broker 4 takes writes as leader of partition 1
        finally:
            writer.stop()
        seen = read_everything(bootstrap)
        acknowledged = set(writer.acknowledged)
        lost = acknowledged - set(seen)
        duplicates = len(seen) - len(set(seen))
        report_figures(f"acknowledged {len(acknowledged)}, lost {len(lost)}, duplicates "
                       f"{duplicates}, delivery errors {len(writer.failed)}, broker added and "
                       f"partitions moved in {moved_s:.1f} s")
        assert len(acknowledged) > 1000
        assert (sorted(lost), duplicates, writer.failed) == ([], 0, [])
        for partition in range(PARTITIONS):
            assert partition_dir(directory, 4, partition).is_dir() == (partition in targets)
        wait_until(lambda: not any(partition_dir(directory, node, p).exists()
                                   for p, node in removed.items()),
                   FAILOVER_TIMEOUT_S, "the removed replicas' logs deleted")
        for partition, replicas in {**before, **targets}.items():
            for node in replicas:
                assert partition_dir(directory, node, partition).is_dir()
    finally:
        cluster_cli.down(directory)
