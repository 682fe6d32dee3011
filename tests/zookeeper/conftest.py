"""A real ZooKeeper server for the session (Debian's `zookeeper` package, started by
broker/zookeeper/server.py on a free loopback port, stopped by PID), and per test a
fresh chroot in it, so tests never see each other's znodes."""
from __future__ import annotations

import queue
import uuid
from typing import Any, Iterator

import pytest
from kazoo.client import KazooClient

from broker.zookeeper.server import ZooKeeperServer
from broker.zookeeper.store import ZkStore
from tests.inprocess import cluster_maker
from tests.zookeeper.inprocess import SETTINGS, ZkCluster

WAIT_S = 15.0


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory,
                     zookeeper_installed: None) -> Iterator[ZooKeeperServer]:
    server = ZooKeeperServer.start(tmp_path_factory.mktemp("zookeeper"), die_with_parent=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def connect_string(zookeeper_server: ZooKeeperServer) -> str:
    """The server with a chroot of this test's own."""
    return f"{zookeeper_server.connect_string}/test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def stores(connect_string: str) -> Iterator[Any]:
    """`stores()` opens a ZkStore on this test's chroot; all are closed afterwards."""
    opened: list[ZkStore] = []

    def open_store(**kwargs: Any) -> ZkStore:
        store = ZkStore(connect_string, **kwargs).connect()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(stores: Any) -> ZkStore:
    return stores(clock_ms=lambda: 1700000000123)


@pytest.fixture
def raw(connect_string: str, store: ZkStore) -> Iterator[KazooClient]:
    """A plain kazoo client on the same chroot, to read znodes as bytes."""
    client = KazooClient(hosts=connect_string, timeout=10.0)
    client.start(timeout=WAIT_S)
    try:
        yield client
    finally:
        client.stop()
        client.close()


class Events:
    """Collects watch callbacks (from kazoo's thread) for the test to wait on."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()

    def __call__(self, value: Any) -> None:
        self._queue.put(value)

    def next(self, timeout_s: float = WAIT_S) -> Any:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout_s} s") from None

    def wait_for(self, expected: Any, timeout_s: float = WAIT_S) -> None:
        """Skip events until one equals `expected`."""
        seen = []
        while True:
            try:
                value = self._queue.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(
                    f"no event {expected!r} within {timeout_s} s; saw {seen!r}") from None
            if value == expected:
                return
            seen.append(value)

    def empty(self) -> bool:
        return self._queue.empty()


@pytest.fixture
def events() -> type[Events]:
    return Events


@pytest.fixture
async def zk_cluster(tmp_path, connect_string, store):
    """`zk_cluster(**settings)`: a ZkCluster of in-process brokers on this test's chroot;
    every broker it started is stopped at the end."""
    async with cluster_maker(lambda nursery, settings: ZkCluster(
            nursery, tmp_path, connect_string, store, {**SETTINGS, **settings})) as make:
        yield make
