"""Several brokers in process on loopback ports, replicating under a fixed assignment the
test applies itself; an in-memory stand-in for ZooKeeper's partition states (compare-and-
set of the ISR on a version), and a client speaking our own wire encoder."""
from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from broker.broker import Broker
from broker.config import load_broker_config
from broker.metadata import TopicInfo
from broker.replication import PartitionState, ReplicaManager
from broker.server import serve
from tests.broker.conftest import Client as WireClient
from tests.inprocess import InProcessBrokers, cluster_maker
from wire.api_keys import ApiKey
from wire.records import build_batch

TIMEOUT_S = 20
SETTINGS = {"listeners": "PLAINTEXT://127.0.0.1:0", "num.partitions": "1",
            "replica.fetch.wait.max.ms": "100", "replica.fetch.backoff.ms": "50",
            "replica.lag.time.max.ms": "10000", "auto.create.topics.enable": "false"}
PRODUCE_VERSION = 9
FETCH_VERSION = 12


class Client(WireClient):
    """The handler tests' client, with the calls the replication tests make."""

    async def produce(self, topic: str, values: list[bytes], *, acks: int = -1,
                      timeout_ms: int = 10_000, partition: int = 0):
        batch = build_batch([(None, value, [], 1_700_000_000_000) for value in values])
        response = await self.call(ApiKey.PRODUCE, PRODUCE_VERSION, {
            "transactional_id": None, "acks": acks, "timeout_ms": timeout_ms,
            "topic_data": [{"name": topic, "partition_data": [
                {"index": partition, "records": batch}]}]})
        return response.responses[0].partition_responses[0]

    async def fetch(self, topic: str, offset: int = 0, *, leader_epoch: int = -1,
                    partition: int = 0):
        response = await self.call(ApiKey.FETCH, FETCH_VERSION, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": topic, "partitions": [
                {"partition": partition, "current_leader_epoch": leader_epoch,
                 "fetch_offset": offset, "last_fetched_epoch": -1, "log_start_offset": -1,
                 "partition_max_bytes": 1 << 20}]}]})
        return response.responses[0].partitions[0]


class Controller:
    """The partition states as ZooKeeper would hold them; alter_isr is its compare-and-set."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, int], PartitionState] = {}
        self.isr_changes: list[list[int]] = []

    def set(self, state: PartitionState) -> PartitionState:
        key = (state.topic, state.partition)
        current = self.states.get(key)
        state = replace(state, version=0 if current is None else current.version + 1)
        self.states[key] = state
        return state

    async def alter_isr(self, state: PartitionState, new_isr: list[int]) -> PartitionState | None:
        await trio.sleep(0)
        key = (state.topic, state.partition)
        current = self.states[key]
        if current.version != state.version or current.leader_epoch != state.leader_epoch:
            return None
        self.isr_changes.append(list(new_isr))
        return self.set(replace(current, isr=list(new_isr)))


class LocalCluster(InProcessBrokers):
    """N brokers (node ids 1..N), each its own data dir, started and stopped by the test."""

    def __init__(self, nursery: trio.Nursery, base: Path, settings: dict[str, str]) -> None:
        super().__init__(nursery, base, settings)
        self.controller = Controller()
        self.topics: dict[str, TopicInfo] = {}

    def endpoint_of(self, node_id: int) -> tuple[str, int] | None:
        return self.addresses.get(node_id)

    async def start(self, node_id: int) -> Broker:
        config = load_broker_config(None, {**self.settings, "node.id": str(node_id),
                                           "log.dirs": str(self.base / f"broker-{node_id}")})
        broker = Broker.open(config)
        broker.use_replica_manager(ReplicaManager(broker, node_id, self.endpoint_of,
                                                  self.controller.alter_isr))
        for info in self.topics.values():
            self._add_topic(broker, info)
        return await self._run(node_id, broker, serve)

    def create_topic(self, name: str, configs: dict[str, str] | None = None) -> None:
        info = TopicInfo(name=name, topic_id=uuid.uuid4(), partition_count=1,
                         configs=dict(configs or {}))
        self.topics[name] = info
        for broker in self.brokers.values():
            self._add_topic(broker, info)

    @staticmethod
    def _add_topic(broker: Broker, info: TopicInfo) -> None:
        if info.name not in broker.metadata.topics:
            broker.metadata.add_topic(TopicInfo(info.name, info.topic_id, info.partition_count,
                                                dict(info.configs)))
        broker.ensure_local_partitions(broker.metadata.topics[info.name],
                                       range(info.partition_count))

    async def assign(self, topic: str, replicas: list[int], leader: int, leader_epoch: int,
                     isr: list[int], *, to: list[int] | None = None) -> PartitionState:
        """Sets the partition state and applies it on the brokers `to` (default: all running)."""
        state = self.controller.set(PartitionState(topic, 0, replicas, leader, leader_epoch,
                                                   isr, 0))
        await self.apply(state, to)
        return state

    async def apply(self, state: PartitionState, to: list[int] | None = None) -> None:
        for node_id in (to if to is not None else list(self.brokers)):
            await self.brokers[node_id].replicas.apply([state])

    def state(self, topic: str) -> PartitionState:
        return self.controller.states[(topic, 0)]

    async def client(self, node_id: int) -> Client:
        stream = await trio.open_tcp_stream(*self.addresses[node_id])
        return Client(stream)


@pytest.fixture
async def cluster_factory(tmp_path):
    async with cluster_maker(lambda nursery, settings: LocalCluster(
            nursery, tmp_path, {**SETTINGS, **settings})) as make:
        yield make


async def wait_until(condition, timeout_s: float = TIMEOUT_S, what: str = "condition") -> None:
    with trio.move_on_after(timeout_s):
        while not condition():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


def log_bytes(broker: Broker, topic: str) -> bytes:
    partition_log = broker.partition_log(topic, 0)
    return partition_log.read(partition_log.log_start_offset, 1 << 30).read() \
        if partition_log.log_end_offset > partition_log.log_start_offset else b""
