"""Brokers run inside the test's trio nursery on loopback ports, each until the test
stops it: what the in-process cluster harnesses (tests/replication, tests/zookeeper)
share."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import trio

from broker.broker import Broker

STOP_TIMEOUT_S = 30

# serving(broker, task_status=...): runs the broker's tasks, reporting its (host, port).
Serving = Callable[..., Awaitable[None]]


class InProcessBrokers:
    def __init__(self, nursery: trio.Nursery, base: Path, settings: dict[str, str]) -> None:
        self.nursery = nursery
        self.base = base
        self.settings = settings
        self.brokers: dict[int, Broker] = {}
        self.addresses: dict[int, tuple[str, int]] = {}
        self._scopes: dict[int, trio.CancelScope] = {}
        self._stopped: dict[int, trio.Event] = {}

    async def _run(self, node_id: int, broker: Broker, serving: Serving) -> Broker:
        """Serves `broker` until stop(node_id); closes its logs after."""
        scope = trio.CancelScope()
        stopped = trio.Event()

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            try:
                with scope:
                    await serving(broker, task_status=task_status)
            finally:
                broker.close()
                stopped.set()

        self.addresses[node_id] = await self.nursery.start(run)
        self.brokers[node_id] = broker
        self._scopes[node_id] = scope
        self._stopped[node_id] = stopped
        return broker

    async def stop(self, node_id: int) -> None:
        self._scopes.pop(node_id).cancel()
        with trio.fail_after(STOP_TIMEOUT_S):
            await self._stopped.pop(node_id).wait()
        del self.brokers[node_id]
        del self.addresses[node_id]

    async def stop_all(self) -> None:
        for node_id in list(self.brokers):
            await self.stop(node_id)


@asynccontextmanager
async def cluster_maker(new_cluster: Callable[[trio.Nursery, dict[str, str]], InProcessBrokers]
                        ) -> AsyncIterator[Callable[..., InProcessBrokers]]:
    """make(**settings) -> a new cluster of the test (new_cluster(nursery, settings));
    every broker of every cluster made is stopped at the end."""
    made: list[InProcessBrokers] = []
    async with trio.open_nursery() as nursery:
        def make(**settings: str) -> InProcessBrokers:
            cluster = new_cluster(nursery, settings)
            made.append(cluster)
            return cluster
        yield make
        for cluster in made:
            await cluster.stop_all()
        nursery.cancel_scope.cancel()
