"""Real Gregor brokers for a test suite, with fault injection (the `gregor_broker` and
`gregor_cluster` pytest fixtures are built on these; docs/testing.md).

A broker runs as its own `gregor serve` process on a free loopback port; clients reach
it through a fault proxy (broker/testing/proxy.py) that the broker advertises, so a test
can delay or fail an API's responses, close connections, pause the process or kill it,
while its clients run. In a cluster each broker also reaches ZooKeeper through a proxy
of its own, so it can be cut off from the other brokers and from ZooKeeper.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from broker.testing.error_responses import can_inject
from broker.testing.process import GregorProcess
from broker.testing.proxy import FaultProxy
from wire.api_keys import API_VERSIONS, ApiKey
from wire.errors import ErrorCode

# What tests want from a broker that Kafka's defaults do not give: no 3 s wait for more
# members before a group's first rebalance.
TEST_DEFAULTS = {"group.initial.rebalance.delay.ms": "0"}
CLUSTER_DEFAULTS = {"zookeeper.session.timeout.ms": "6000"}  # a killed broker noticed in 6 s
CLUSTER_READY_TIMEOUT_S = 60.0

__all__ = ["GregorBroker", "GregorCluster", "TEST_DEFAULTS", "ApiKey", "ErrorCode"]


def api_key_of(api: ApiKey | int | str) -> ApiKey:
    if isinstance(api, str):
        try:
            return ApiKey[api.upper()]
        except KeyError:
            raise ValueError(f"unknown API {api!r}; names are ApiKey's: "
                             f"{', '.join(key.name for key in ApiKey)}") from None
    return ApiKey(api)


def error_code_of(error: ErrorCode | int | str) -> ErrorCode:
    if isinstance(error, str):
        try:
            return ErrorCode[error.upper()]
        except KeyError:
            raise ValueError(f"unknown error code {error!r}") from None
    return ErrorCode(error)


class GregorBroker:
    """One broker process behind its fault proxy. `bootstrap` is what clients connect to."""

    def __init__(self, directory: Path, settings: dict[str, str] | None = None, *,
                 node_id: int | None = None) -> None:
        self.directory = Path(directory)
        self.proxy = FaultProxy(name=f"proxy-{self.directory.name}")
        self._settings = {**TEST_DEFAULTS, **(settings or {})}
        self._node_id = node_id
        self.process: GregorProcess | None = None

    @property
    def bootstrap(self) -> str:
        return self.proxy.address

    @property
    def node_id(self) -> int:
        return self.process.node_id

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def start(self) -> "GregorBroker":
        """Starts the proxy, then the broker advertising the proxy; returns when the
        broker is ready."""
        if self.proxy.port == 0:
            self.proxy.start()
        settings = {**self._settings,
                    "advertised.listeners": f"PLAINTEXT://{self.proxy.address}"}
        extra = [] if self._node_id is None else ["--node-id", str(self._node_id)]
        self.process = GregorProcess(self.directory / "data", self.directory / "broker.log",
                                     settings, extra)
        self.process.start()
        self.proxy.target = (self.process.host, self.process.port)
        return self

    def close(self) -> None:
        """Stops the broker (SIGTERM, then SIGKILL) and the proxy."""
        try:
            if self.process is not None:
                if self.process.running:
                    self._continue()
                self.process.stop()
        finally:
            self.proxy.stop()

    def log_text(self) -> str:
        return "" if self.process is None else self.process.log_text()

    # -- process faults ----------------------------------------------------------------

    def kill(self) -> None:
        """kill -9: no flush, no checkpoint, no controlled shutdown."""
        self.process.kill()

    def stop(self) -> None:
        """A clean stop (SIGTERM): in a cluster, leaderships are handed over first."""
        self._continue()
        self.process.stop()

    def restart(self) -> "GregorBroker":
        """Starts the broker again on its data (after kill or stop; stops it first if it
        runs); clients keep the same bootstrap address."""
        if self.process.running:
            self.stop()
        self.process.start()
        self.proxy.target = (self.process.host, self.process.port)
        return self

    def pause(self) -> None:
        """SIGSTOP: the broker holds its connections but answers nothing."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        os.kill(self.process.pid, signal.SIGCONT)

    def _continue(self) -> None:
        if self.process is not None and self.process.running:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused broker cannot stop

    # -- network faults ----------------------------------------------------------------

    def delay(self, api: ApiKey | int | str, delay_ms: int) -> None:
        """Holds every response to `api` for delay_ms (0 ends it)."""
        self.proxy.delay(api_key_of(api), delay_ms)

    def fail_next(self, api: ApiKey | int | str, error: ErrorCode | int | str,
                  count: int = 1) -> None:
        """Answers the next `count` requests of `api` with `error`; the broker never
        sees them."""
        api_key = api_key_of(api)
        low, high = API_VERSIONS[api_key]
        if not can_inject(api_key, range(low, high + 1)):
            raise ValueError(f"{api_key.name} answers carry no error code to inject")
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        self.proxy.fail_next(api_key, error_code_of(error), count)

    def pending_failures(self, api: ApiKey | int | str) -> int:
        """How many injected errors of `api` are still to be answered."""
        return self.proxy.pending_errors(api_key_of(api))

    def close_connections(self) -> None:
        """Closes every client connection (clients reconnect)."""
        self.proxy.close_connections()

    def clear_faults(self) -> None:
        """Ends every delay, drops pending errors, heals a cut-off; resumes a pause."""
        self.proxy.clear()
        self._continue()


class GregorCluster:
    """N brokers on a real ZooKeeper (Debian's `zookeeper` package), each behind a fault
    proxy and reaching ZooKeeper through a proxy of its own."""

    def __init__(self, directory: Path, brokers: int = 3,
                 settings: dict[str, str] | None = None) -> None:
        from broker.cluster_cli import cluster_defaults

        self.directory = Path(directory)
        self.size = brokers
        self._settings = {**cluster_defaults(brokers), **CLUSTER_DEFAULTS, **(settings or {})}
        self.zookeeper_server = None
        self.zookeeper_proxies: dict[int, FaultProxy] = {}
        self.brokers: dict[int, GregorBroker] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(member.bootstrap for member in self.brokers.values())

    @property
    def zookeeper(self) -> str:
        """ZooKeeper's own address (not through any broker's proxy)."""
        return self.zookeeper_server.connect_string

    def start(self) -> "GregorCluster":
        from broker.zookeeper.server import ZooKeeperServer

        self.zookeeper_server = ZooKeeperServer.start(self.directory / "zookeeper")
        host, port = self.zookeeper_server.connect_string.rsplit(":", 1)
        for node_id in range(1, self.size + 1):
            zookeeper_proxy = FaultProxy((host, int(port)), raw=True,
                                         name=f"zookeeper-proxy-{node_id}").start()
            self.zookeeper_proxies[node_id] = zookeeper_proxy
            self.brokers[node_id] = GregorBroker(
                self.directory / f"broker-{node_id}",
                {**self._settings, "zookeeper.connect": zookeeper_proxy.address},
                node_id=node_id)
        for member in self.brokers.values():
            member.start()
        self._wait_registered(set(self.brokers))
        return self

    def broker(self, node_id: int) -> GregorBroker:
        return self.brokers[node_id]

    def close(self) -> None:
        try:
            for member in self.brokers.values():
                member.close()
        finally:
            for proxy in self.zookeeper_proxies.values():
                proxy.stop()
            if self.zookeeper_server is not None:
                self.zookeeper_server.stop()

    # -- what tests read -----------------------------------------------------------------

    def _store(self):
        from broker.zookeeper.store import ZkStore
        return ZkStore(self.zookeeper).connect()

    def leader(self, topic: str, partition: int) -> int:
        """The partition's leader as ZooKeeper has it (-1: none)."""
        with self._store() as store:
            state = store.partition_state(topic, partition)
            return -1 if state is None else state.leader

    def isr(self, topic: str, partition: int) -> list[int]:
        with self._store() as store:
            state = store.partition_state(topic, partition)
            return [] if state is None else list(state.isr)

    def registered(self) -> set[int]:
        with self._store() as store:
            return set(store.brokers())

    def wait_for(self, condition, timeout_s: float = CLUSTER_READY_TIMEOUT_S,
                 what: str = "the cluster") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
            time.sleep(0.1)

    def _wait_registered(self, nodes: set[int]) -> None:
        self.wait_for(lambda: nodes <= self.registered(), what=f"brokers {sorted(nodes)} registered")

    # -- cluster faults --------------------------------------------------------------------

    def isolate(self, node_id: int) -> None:
        """Cuts broker `node_id` off from ZooKeeper (its session expires), from the other
        brokers (both ways) and from clients; it keeps running."""
        self.zookeeper_proxies[node_id].isolate()
        self.brokers[node_id].proxy.isolate()
        for other, member in self.brokers.items():
            if other != node_id:
                member.proxy.refuse_peer(node_id)

    def heal(self, node_id: int) -> None:
        """Undoes isolate(node_id)."""
        self.zookeeper_proxies[node_id].heal()
        for member in self.brokers.values():
            member.proxy.heal()
