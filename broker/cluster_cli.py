"""`gregor cluster`: a local cluster for development and resilience tests. `up` starts a
real ZooKeeper (unless one is given) and N brokers on loopback ports in DIR, waits until
every broker is registered, prints the bootstrap line and returns, leaving them running;
`add` starts one more broker; the other commands find them through DIR/cluster.json and
act on them by PID."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from broker.zookeeper.server import ZooKeeperServer, stop_recorded
from broker.zookeeper.store import ZkStore

STATE_FILE = "cluster.json"
READY_LINE = b" ready: listening on "
LIVE_BROKERS_LINE = re.compile(rb"live brokers: ([0-9, ]+)")  # broker/cluster.py logs it
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.05


class ClusterError(RuntimeError):
    pass


@dataclass
class BrokerProcess:
    node_id: int
    port: int
    pid: int
    start_ticks: int  # the process's start time: a reused PID is not ours
    argv: list[str]
    log_path: str
    log_offset: int  # where the log stood when this process started

    @property
    def running(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks


@dataclass
class ClusterState:
    zookeeper: str  # connect string
    zookeeper_dir: str | None  # set when `up` started ZooKeeper itself
    brokers: dict[int, BrokerProcess] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        data = {"zookeeper": self.zookeeper, "zookeeper_dir": self.zookeeper_dir,
                "brokers": {str(node): asdict(process) for node, process in self.brokers.items()}}
        temp = directory / (STATE_FILE + ".tmp")
        temp.write_text(json.dumps(data, indent=1))
        os.replace(temp, directory / STATE_FILE)

    @classmethod
    def load(cls, directory: Path) -> "ClusterState":
        path = directory / STATE_FILE
        if not path.exists():
            raise ClusterError(f"no cluster in {directory} (no {STATE_FILE}); "
                               "start one with `gregor cluster up`")
        data = json.loads(path.read_text())
        return cls(data["zookeeper"], data["zookeeper_dir"],
                   {int(node): BrokerProcess(**process)
                    for node, process in data["brokers"].items()})

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{process.port}"
                        for _, process in sorted(self.brokers.items()))


def cluster_defaults(brokers: int) -> dict[str, str]:
    """What a local cluster of `brokers` needs beyond Kafka's defaults: internal topics
    replicated as far as the cluster allows."""
    return {
        "offsets.topic.replication.factor": str(min(3, brokers)),
        "transaction.state.log.replication.factor": str(min(3, brokers)),
        "transaction.state.log.min.isr": str(min(2, brokers)),
        "group.initial.rebalance.delay.ms": "0",
    }


def up(directory: Path, brokers: int, zookeeper: str | None,
       overrides: dict[str, str]) -> ClusterState:
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / STATE_FILE).exists():
        existing = ClusterState.load(directory)
        if any(process.running for process in existing.brokers.values()):
            raise ClusterError(f"a cluster already runs from {directory}; "
                               "`gregor cluster down` first")
    zookeeper_dir = None
    if zookeeper is None:
        zookeeper_dir = directory / "zookeeper"
        server = ZooKeeperServer.start(zookeeper_dir)
        zookeeper = server.connect_string
    state = ClusterState(zookeeper, str(zookeeper_dir) if zookeeper_dir else None)
    settings = {**cluster_defaults(brokers), **overrides, "zookeeper.connect": zookeeper}
    try:
        for node_id in range(1, brokers + 1):
            state.brokers[node_id] = _spawn_broker(directory, node_id, _free_port(), settings)
            state.save(directory)
        for process in state.brokers.values():
            _wait_ready(process, process.log_offset)
        _wait_registered(zookeeper, set(state.brokers))
        for process in state.brokers.values():
            _wait_for_view(process, set(state.brokers))
    except Exception:
        down(directory, state)
        raise
    state.save(directory)
    return state


def add(directory: Path) -> BrokerProcess:
    """Starts one more broker in the running cluster: the next id, the settings of the
    others (those `up` was given), a free loopback port. Returns once it is ready and
    registered in ZooKeeper, recorded in cluster.json. It holds no partitions until a
    reassignment (or a new topic) puts some there."""
    state = ClusterState.load(directory)
    if not state.brokers:
        raise ClusterError(f"no broker in {directory}/{STATE_FILE} to take the settings from")
    node_id = max(state.brokers) + 1
    settings = _settings_of(state.brokers[min(state.brokers)].argv)
    process = _spawn_broker(directory, node_id, _free_port(), settings)
    state.brokers[node_id] = process
    state.save(directory)
    try:
        _wait_ready(process, process.log_offset)
        _wait_registered(state.zookeeper, {node_id})
        running = [broker for broker in state.brokers.values() if broker.running]
        for broker in running:
            _wait_for_view(broker, {each.node_id for each in running})
    except Exception:
        _terminate(process)
        del state.brokers[node_id]
        state.save(directory)
        raise
    return process


def _settings_of(argv: list[str]) -> dict[str, str]:
    """The `--set KEY=VALUE` settings a broker was started with."""
    return dict(value.split("=", 1) for flag, value in zip(argv, argv[1:]) if flag == "--set")


def _spawn_broker(directory: Path, node_id: int, port: int,
                  settings: dict[str, str]) -> BrokerProcess:
    broker_dir = directory / f"broker-{node_id}"
    broker_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "broker", "serve", "--node-id", str(node_id),
            "--listen", f"127.0.0.1:{port}", "--data-dir", str(broker_dir / "data")]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    log_path = broker_dir / "broker.log"
    pid, log_offset = _start(argv, log_path)
    return BrokerProcess(node_id, port, pid, _start_ticks(pid), argv, str(log_path),
                         log_offset)


def _start(argv: list[str], log_path: Path) -> tuple[int, int]:
    """Spawns a broker in its own session, appending to its log: (pid, log offset)."""
    with open(log_path, "ab") as log:
        offset = log.tell()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)
    return process.pid, offset


def _start_ticks(pid: int) -> int | None:
    """The start time of a running (not zombie) process, from /proc; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _wait_ready(process: BrokerProcess, log_offset: int) -> None:
    """Until the broker logs its ready line (after `log_offset` of its log): listening,
    registered, and knowing the controller."""
    _wait_for_log(process, log_offset, lambda text: READY_LINE in text, "ready")


def _wait_for_view(process: BrokerProcess, nodes: set[int]) -> None:
    """Until the broker's view of the cluster (the last `live brokers:` line it logged
    since it started) has every broker of `nodes`: registered is not yet known to all,
    and a client's first request (CreateTopics with replication factor N) may go to any."""
    def sees_all(text: bytes) -> bool:
        views = LIVE_BROKERS_LINE.findall(text)
        return bool(views) and nodes <= {int(node) for node in views[-1].split(b",")}
    _wait_for_log(process, process.log_offset, sees_all,
                  f"seeing brokers {', '.join(map(str, sorted(nodes)))}")


def _wait_for_log(process: BrokerProcess, log_offset: int, done: Callable[[bytes], bool],
                  what: str) -> None:
    """Until what the broker logged after `log_offset` satisfies `done` (bounded)."""
    log_path = Path(process.log_path)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.running:
            raise ClusterError(f"broker {process.node_id} exited while starting; see "
                               f"{process.log_path}:\n{_tail(log_path)}")
        with open(log_path, "rb") as log:
            log.seek(log_offset)
            if done(log.read()):
                return
        time.sleep(POLL_S)
    raise ClusterError(f"broker {process.node_id} not {what} after {READY_TIMEOUT_S:.0f} s; "
                       f"see {process.log_path}")


def _wait_registered(zookeeper: str, nodes: set[int]) -> None:
    store = ZkStore(zookeeper)
    store.connect()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if nodes <= set(store.brokers()):
                return
            time.sleep(POLL_S)
        missing = sorted(nodes - set(store.brokers()))
        raise ClusterError(f"brokers {missing} not registered in ZooKeeper after "
                           f"{READY_TIMEOUT_S:.0f} s")
    finally:
        store.close()


def status(directory: Path) -> list[str]:
    state = ClusterState.load(directory)
    lines = [f"zookeeper: {state.zookeeper}", f"bootstrap: {state.bootstrap}"]
    store = ZkStore(state.zookeeper)
    store.connect()
    try:
        registered = store.brokers()
        controller = store.controller_id()
        leading: dict[int, list[str]] = {}
        for topic in store.topics():
            assignment = store.topic_assignment(topic)
            for partition in sorted(assignment.partitions if assignment else ()):
                partition_state = store.partition_state(topic, partition)
                if partition_state is not None:
                    leading.setdefault(partition_state.leader, []).append(f"{topic}-{partition}")
    finally:
        store.close()
    for node_id, process in sorted(state.brokers.items()):
        running = "running" if process.running else "stopped"
        registration = "registered" if node_id in registered else "not registered"
        role = ", controller" if controller == node_id else ""
        led = ", ".join(sorted(leading.get(node_id, []))) or "-"
        lines.append(f"broker {node_id}: 127.0.0.1:{process.port} pid {process.pid} "
                     f"{running}, {registration}{role}; leads {led}")
    return lines


def kill(directory: Path, node_id: int) -> None:
    process = _broker(ClusterState.load(directory), node_id)
    if process.running:
        os.kill(process.pid, signal.SIGKILL)
        _wait_exit(process, STOP_TIMEOUT_S)


def stop(directory: Path, node_id: int) -> None:
    """A controlled shutdown: SIGTERM, the broker hands its leaderships over first."""
    _terminate(_broker(ClusterState.load(directory), node_id))


def start(directory: Path, node_id: int) -> None:
    state = ClusterState.load(directory)
    process = _broker(state, node_id)
    if process.running:
        raise ClusterError(f"broker {node_id} already runs (pid {process.pid})")
    process.pid, process.log_offset = _start(process.argv, Path(process.log_path))
    process.start_ticks = _start_ticks(process.pid)
    state.save(directory)
    _wait_ready(process, process.log_offset)
    _wait_registered(state.zookeeper, {node_id})


def down(directory: Path, state: ClusterState | None = None) -> None:
    state = state or ClusterState.load(directory)
    for process in state.brokers.values():
        _terminate(process)
    if state.zookeeper_dir is not None:
        stop_recorded(Path(state.zookeeper_dir))


def _broker(state: ClusterState, node_id: int) -> BrokerProcess:
    if node_id not in state.brokers:
        raise ClusterError(f"no broker {node_id} in this cluster "
                           f"(brokers: {', '.join(map(str, sorted(state.brokers)))})")
    return state.brokers[node_id]


def _terminate(process: BrokerProcess) -> None:
    if not process.running:
        return
    os.kill(process.pid, signal.SIGTERM)
    if not _wait_exit(process, STOP_TIMEOUT_S):
        os.kill(process.pid, signal.SIGKILL)
        _wait_exit(process, STOP_TIMEOUT_S)


def _wait_exit(process: BrokerProcess, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.waitpid(process.pid, os.WNOHANG)  # reaps it when it is our child
        except ChildProcessError:
            pass
        if not process.running:
            return True
        time.sleep(POLL_S)
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
