"""A real `gregor serve` process on a loopback port, for tests: started and stopped by its
PID (never by name), every wait bounded, its stderr kept in a log file. Used by the pytest
plugin (broker/testing/plugin.py) and by Gregor's own tests."""
from __future__ import annotations

import ctypes
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
READY_LINE = re.compile(r"Gregor \S+ ready: listening on (\[[^\]]+\]|[^\s:]+):(\d+) \(node (-?\d+)")


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
                self.command(port), stdin=subprocess.DEVNULL,
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
