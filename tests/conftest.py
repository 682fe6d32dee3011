"""Shared fixtures: a real `gregor serve` process on a free loopback port.

The broker runs as a subprocess (`python -m broker serve`) in a temporary data dir. Every
process is started, signalled and killed by its PID (never by name), every wait has a
timeout, and a failing test shows the broker's stderr.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
READY_LINE = re.compile(r"Gregor \S+ ready: listening on (\[[^\]]+\]|[^\s:]+):(\d+) \(node (-?\d+)")

_PROCESSES = pytest.StashKey[list]()


def _die_with_parent() -> None:
    # A broker must not outlive a test run that was itself killed: ask Linux to send it
    # SIGKILL when pytest goes away (PR_SET_PDEATHSIG = 1).
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class BrokerStartError(RuntimeError):
    pass


class GregorProcess:
    """One `gregor serve` subprocess bound to 127.0.0.1; restartable on the same data dir.

    `settings` are passed as `--set KEY=VALUE`. Its stderr goes to `log_path` (appended
    to across restarts)."""

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, str] | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.settings = dict(settings or {})
        self.extra_args = list(extra_args or [])
        self.host = "127.0.0.1"
        self.port = 0
        self.node_id = -1  # from the ready line
        self.started_at_s = 0.0  # time.monotonic() when the last start began
        self.ready_after_s = 0.0  # seconds from spawn to the ready line, last start
        self._popen: subprocess.Popen | None = None
        self._log_offset = 0

    # -- what tests use ------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError("broker not started")
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def command(self, port: int) -> list[str]:
        command = [sys.executable, "-m", "broker", "serve",
                   "--listen", f"127.0.0.1:{port}", "--data-dir", str(self.data_dir)]
        for key, value in self.settings.items():
            command += ["--set", f"{key}={value}"]
        return command + self.extra_args

    def start(self, port: int = 0, wait_ready: bool = True) -> "GregorProcess":
        """Spawns the broker and waits (READY_TIMEOUT_S) for its ready line.
        Raises BrokerStartError, with the broker's stderr, if it exits or stays silent.
        With wait_ready=False it returns right after spawning (then pass a port, and
        call wait_until_ready() before using .address)."""
        if self.running:
            raise RuntimeError(f"broker pid {self.pid} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log_file:
            self.started_at_s = time.monotonic()
            self._popen = subprocess.Popen(
                self.command(port), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=log_file, preexec_fn=_die_with_parent)
        self.port = port
        if wait_ready:
            self.wait_until_ready()
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM by PID, wait up to timeout_s, then SIGKILL. Returns the exit code
        (negative: killed by that signal); the code of an already exited process too."""
        if self._popen is None:
            raise RuntimeError("broker not started")
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                return self._popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(timeout=timeout_s)
                raise AssertionError(f"broker pid {self.pid} ignored SIGTERM for {timeout_s} s; "
                                     "killed it") from None
        return self._popen.returncode

    def kill(self) -> None:
        """SIGKILL by PID (kill -9): no flush, no checkpoints."""
        if self._popen is None:
            raise RuntimeError("broker not started")
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait(timeout=STOP_TIMEOUT_S)

    def restart(self) -> "GregorProcess":
        """Stops (SIGTERM) if still running, then starts on the same data dir, on the
        same port if it is free again, else on a new one."""
        if self.running:
            self.stop()
        previous_port = self.port
        try:
            return self.start(previous_port)
        except BrokerStartError:
            if self.running or previous_port == 0:
                raise
            return self.start(0)

    def log_text(self) -> str:
        """Everything the broker wrote to stderr, over all starts."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text("utf-8", errors="replace")

    def current_log_text(self) -> str:
        """What the broker wrote to stderr since its last start."""
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self._log_offset)
            return log_file.read().decode("utf-8", errors="replace")

    def wait_until_ready(self) -> None:
        """Waits for the ready line of the current start (READY_TIMEOUT_S from spawn)."""
        deadline = self.started_at_s + READY_TIMEOUT_S
        while True:
            match = READY_LINE.search(self.current_log_text())
            if match:
                self.ready_after_s = time.monotonic() - self.started_at_s
                self.host = match.group(1).strip("[]")
                self.port = int(match.group(2))
                self.node_id = int(match.group(3))
                return
            exit_code = self._popen.poll()
            if exit_code is not None:
                raise BrokerStartError(f"broker exited with {exit_code} before it was ready:\n"
                                       f"{self.current_log_text()}")
            if time.monotonic() > deadline:
                self._popen.kill()
                self._popen.wait(timeout=STOP_TIMEOUT_S)
                raise BrokerStartError(f"no ready line within {READY_TIMEOUT_S} s; killed pid "
                                       f"{self._popen.pid}; stderr:\n{self.current_log_text()}")
            time.sleep(0.01)


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
