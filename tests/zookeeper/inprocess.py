"""Brokers in process, each joined to the test's real ZooKeeper (its own chroot) as
`gregor serve` with zookeeper.connect does, on loopback ports in the test's temp dir; and
the controller-request calls the tests make over our own wire client."""
from __future__ import annotations

from pathlib import Path

import trio

from broker.broker import Broker
from broker.cluster import join_cluster
from broker.config import load_broker_config
from broker.server import serve
from broker.zookeeper.store import ZkStore
from tests.broker.conftest import Client
from tests.inprocess import InProcessBrokers
from wire.api_keys import ApiKey

TIMEOUT_S = 30
SETTINGS = {"listeners": "PLAINTEXT://127.0.0.1:0", "replica.fetch.wait.max.ms": "100",
            "replica.fetch.backoff.ms": "50", "auto.create.topics.enable": "false",
            "zookeeper.session.timeout.ms": "6000", "auto.leader.rebalance.enable": "false",
            "controlled.shutdown.enable": "false"}


class ZkCluster(InProcessBrokers):
    """Brokers 1..N started and stopped by the test; `store` reads ZooKeeper directly."""

    def __init__(self, nursery: trio.Nursery, base: Path, connect_string: str,
                 store: ZkStore, settings: dict[str, str]) -> None:
        super().__init__(nursery, base, settings)
        self.connect_string = connect_string
        self.store = store

    def data_dir(self, node_id: int) -> Path:
        return self.base / f"broker-{node_id}"

    async def start(self, node_id: int) -> Broker:
        config = load_broker_config(None, {
            **self.settings, "node.id": str(node_id), "log.dirs": str(self.data_dir(node_id)),
            "zookeeper.connect": self.connect_string})
        broker = Broker.open(config)
        return await self._run(node_id, broker, _serve_in_cluster)

    def controller(self) -> int:
        return self.store.controller_id()

    async def wait_for_controller(self) -> int:
        """Until a running broker is the controller and every running broker sees all
        the others."""
        await wait_until(lambda: self.store.controller_id() in self.brokers
                         and self.brokers[self.store.controller_id()].cluster.is_controller
                         and all(set(broker.cluster.brokers) >= set(self.brokers)
                                 for broker in self.brokers.values()),
                         what="a controller")
        return self.controller()

    async def client(self, node_id: int) -> Client:
        return Client(await trio.open_tcp_stream(*self.addresses[node_id]))

    async def create_topic(self, name: str, assignment: dict[int, list[int]],
                           configs: dict[str, str] | None = None) -> None:
        """Through any broker, as CreateTopics does; returns once every partition whose
        replicas include a running broker has a leader in ZooKeeper."""
        broker = next(iter(self.brokers.values()))
        broker.cluster.create_topic(name, len(assignment), len(assignment[0]), configs or {},
                                    assignment)
        await wait_until(lambda: all(
            (state := self.store.partition_state(name, partition)) is not None
            and state.leader != -1
            for partition, replicas in assignment.items()
            if set(replicas) & set(self.brokers)), what=f"topic {name} online")

    def leader_and_isr(self, topic: str, partition: int) -> tuple[int, list[int]]:
        state = self.store.partition_state(topic, partition)
        return state.leader, list(state.isr)


async def wait_until(condition, timeout_s: float = TIMEOUT_S, what: str = "condition"):
    """Polls `condition` (it may read ZooKeeper: a short blocking call) until truthy."""
    with trio.move_on_after(timeout_s):
        while not (value := condition()):
            await trio.sleep(0.05)
        return value
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def partition_result(response, topic: str, partition: int) -> tuple[int, str | None]:
    """(error_code, error_message) of one partition in an ElectLeaders response."""
    for result in response.replica_election_results:
        if result.topic == topic:
            for entry in result.partition_result:
                if entry.partition_id == partition:
                    return entry.error_code, entry.error_message
    raise AssertionError(f"{topic}-{partition} not in {response}")


async def elect(client: Client, version: int, partitions: dict[str, list[int]] | None,
                election_type: int = 0, timeout_ms: int = 10_000):
    topics = None if partitions is None else [
        {"topic": topic, "partitions": indexes} for topic, indexes in partitions.items()]
    return await client.call(ApiKey.ELECT_LEADERS, version, {
        "election_type": election_type, "topic_partitions": topics, "timeout_ms": timeout_ms})


async def alter(client: Client, reassignments: dict[str, dict[int, list[int] | None]],
                timeout_ms: int = 10_000):
    return await client.call(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, {
        "timeout_ms": timeout_ms,
        "topics": [{"name": topic, "partitions": [
            {"partition_index": partition, "replicas": replicas}
            for partition, replicas in partitions.items()]}
            for topic, partitions in reassignments.items()]})


async def list_reassignments(client: Client, partitions: dict[str, list[int]] | None = None):
    topics = None if partitions is None else [
        {"name": topic, "partition_indexes": indexes} for topic, indexes in partitions.items()]
    return await client.call(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0,
                             {"timeout_ms": 10_000, "topics": topics})


def listed(response) -> dict[tuple[str, int], tuple[list[int], list[int], list[int]]]:
    """(topic, partition) -> (replicas, adding, removing) of a ListPartitionReassignments."""
    return {(topic.name, entry.partition_index): (list(entry.replicas),
                                                   list(entry.adding_replicas),
                                                   list(entry.removing_replicas))
            for topic in response.topics for entry in topic.partitions}


def altered(response) -> dict[tuple[str, int], tuple[int, str | None]]:
    return {(topic.name, entry.partition_index): (entry.error_code, entry.error_message)
            for topic in response.responses for entry in topic.partitions}


async def _serve_in_cluster(broker: Broker, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """`gregor serve` with zookeeper.connect: the listener, then the cluster runtime."""
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, broker)
        await nursery.start(join_cluster, broker)
        task_status.started(address)
