"""Shared fixtures: a real `gregor serve` process on a free loopback port.

The broker runs as a subprocess (`python -m broker serve`) in a temporary data dir. Every
process is started, signalled and killed by its PID (never by name), every wait has a
timeout, and a failing test shows the broker's stderr.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from broker.testing.process import BrokerStartError, GregorProcess  # noqa: F401 (tests use both)

REPO_ROOT = Path(__file__).resolve().parent.parent

_PROCESSES = pytest.StashKey[list]()


def run_gregor_command(args: list[str], timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    """Runs `python -m broker ARGS` to completion (bounded) and returns its result."""
    return subprocess.run([sys.executable, "-m", "broker", *args], cwd=REPO_ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout_s)


@pytest.fixture
def gregor_command() -> Callable[..., subprocess.CompletedProcess]:
    """`run(args, timeout_s=20)`: runs `python -m broker ARGS` to completion."""
    return run_gregor_command


@pytest.fixture
def gregor_factory(tmp_path: Path, request: pytest.FixtureRequest
                   ) -> Iterator[Callable[..., GregorProcess]]:
    """`start(settings=None, name="broker", port=0, wait_ready=True)` starts another
    broker in tmp_path/name; every broker started is stopped by PID at teardown."""
    started: list[GregorProcess] = []
    request.node.stash[_PROCESSES] = started

    def start(settings: dict[str, str] | None = None, name: str = "broker", port: int = 0,
              wait_ready: bool = True) -> GregorProcess:
        process = GregorProcess(tmp_path / name / "data", tmp_path / name / "stderr.log",
                                settings)
        process.data_dir.parent.mkdir(parents=True, exist_ok=True)
        started.append(process)
        return process.start(port, wait_ready=wait_ready)

    yield start
    refused_to_stop = []
    for process in started:
        if process.running:
            try:
                process.stop()
            except AssertionError as exc:  # stop() has SIGKILLed it; still a broker bug
                refused_to_stop.append(str(exc))
    assert not refused_to_stop, "; ".join(refused_to_stop)


@pytest.fixture
def gregor(gregor_factory) -> GregorProcess:
    """A fresh broker with the dev defaults, listening on 127.0.0.1:<free port>."""
    return gregor_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for process in item.stash.get(_PROCESSES, []):
            report.sections.append((f"gregor stderr ({process.log_path})",
                                    process.log_text()[-20_000:]))


@pytest.fixture(scope="session")
def zookeeper_installed() -> None:
    """Debian's zookeeper package, which ZooKeeper-backed tests run a real server from:
    installed with apt-get when missing and running as root, else a loud failure with the
    command to run (never a skip)."""
    from broker.zookeeper.server import DEBIAN_PACKAGE, ZooKeeperError, find_zookeeper

    try:
        find_zookeeper()
        return
    except ZooKeeperError as exc:
        missing = exc
    if os.geteuid() != 0:
        pytest.fail(f"{missing}\nRun as root: apt-get update && apt-get install -y "
                    f"{DEBIAN_PACKAGE}", pytrace=False)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", DEBIAN_PACKAGE]
    if subprocess.run(install, env=environment).returncode != 0:
        subprocess.run(["apt-get", "update"], env=environment, check=True)
        subprocess.run(install, env=environment, check=True)
    find_zookeeper()  # now it must be there


_FIGURES = pytest.StashKey[list]()


@pytest.fixture
def report_figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """report_figures(line): a measurement the run prints at its end (the cluster tests'
    writes acknowledged, lost, duplicates and failover times), passed or not."""
    figures = request.config.stash.setdefault(_FIGURES, [])

    def report(line: str) -> None:
        figures.append(f"{request.node.nodeid}: {line}")
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    figures = config.stash.get(_FIGURES, [])
    if figures:
        terminalreporter.section("figures")
        for line in figures:
            terminalreporter.write_line(line)
