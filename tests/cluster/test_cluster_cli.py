"""`gregor cluster up/status/kill/stop/start/down` as a user runs it: real processes, a
real ZooKeeper, every process stopped by PID."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

COMMAND_TIMEOUT_S = 120


def gregor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "broker", "cluster", *args],
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_status_kill_start_stop_down(tmp_path):
    directory = tmp_path / "cluster"
    up = gregor("up", "--brokers", "2", "--dir", str(directory),
                "--set", "zookeeper.session.timeout.ms=6000")
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((directory / "cluster.json").read_text())
        ports = {int(node): broker["port"] for node, broker in state["brokers"].items()}
        pids = {int(node): broker["pid"] for node, broker in state["brokers"].items()}
        zookeeper_pid = int((directory / "zookeeper" / "zookeeper.pid").read_text().split()[0])
        assert alive(zookeeper_pid)
        assert up.stdout == f"bootstrap: 127.0.0.1:{ports[1]},127.0.0.1:{ports[2]}\n"
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{ports[1]}"}).list_topics(
            timeout=30)
        assert sorted(metadata.brokers) == [1, 2]

        status = gregor("status", "--dir", str(directory))
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0] == f"zookeeper: {state['zookeeper']}"
        assert lines[1] == f"bootstrap: 127.0.0.1:{ports[1]},127.0.0.1:{ports[2]}"
        for node, line in zip((1, 2), lines[2:]):
            assert re.fullmatch(rf"broker {node}: 127\.0\.0\.1:{ports[node]} pid {pids[node]} "
                                r"running, registered(, controller)?; leads -", line), line
        assert sum("controller" in line for line in lines[2:]) == 1

        assert gregor("kill", "2", "--dir", str(directory)).returncode == 0
        assert not alive(pids[2])
        assert "broker 2: " in gregor("status", "--dir", str(directory)).stdout
        assert " stopped" in gregor("status", "--dir", str(directory)).stdout.splitlines()[3]

        started = gregor("start", "2", "--dir", str(directory))
        assert started.returncode == 0, started.stderr
        restarted_pid = json.loads((directory / "cluster.json").read_text())["brokers"]["2"]["pid"]
        assert alive(restarted_pid) and restarted_pid != pids[2]
        again = gregor("start", "2", "--dir", str(directory))
        assert (again.returncode, again.stderr) == (
            1, f"gregor cluster start: broker 2 already runs (pid {restarted_pid})\n")

        assert gregor("stop", "1", "--dir", str(directory)).returncode == 0
        assert not alive(pids[1])
        unknown = gregor("kill", "7", "--dir", str(directory))
        assert (unknown.returncode, unknown.stderr) == (
            1, "gregor cluster kill: no broker 7 in this cluster (brokers: 1, 2)\n")
    finally:
        down = gregor("down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    final = json.loads((directory / "cluster.json").read_text())
    assert not any(alive(broker["pid"]) for broker in final["brokers"].values())
    assert not alive(zookeeper_pid)


def test_commands_without_a_cluster_say_so(tmp_path):
    result = gregor("status", "--dir", str(tmp_path / "nothing"))
    assert (result.returncode, result.stderr) == (
        1, f"gregor cluster status: no cluster in {tmp_path / 'nothing'} (no cluster.json); "
           "start one with `gregor cluster up`\n")


def test_add_needs_a_running_cluster(tmp_path):
    # `add` itself runs in tests/cluster/test_reassignment.py, under writes.
    added = gregor("add", "--dir", str(tmp_path))
    assert (added.returncode, added.stdout, added.stderr) == (
        1, "", f"gregor cluster add: no cluster in {tmp_path} (no cluster.json); start one "
               "with `gregor cluster up`\n")
