"""The servers kafka-python's integration fixtures run against, to the names
test/integration/fixtures.py imports from `test.service` (the sdist does not ship this
module; Gregor's compat recipe, compat/kafka_python_suite, drops it in; it is our code).

- ExternalService(host, port): a broker that already runs elsewhere. The fixtures use it
  when KAFKA_URI names a broker, which is how the recipe points the suite at Gregor or at
  Apache Kafka; they never start or stop it.
- SpawnedService(args, env): a server the fixtures start themselves from a Kafka
  distribution (only without KAFKA_URI, or for the SSL tests): `start()` runs the command
  in its own session, `wait_for(pattern, timeout)` waits for a line of its output,
  `stop()` ends it by its PID, `dump_logs()` logs what it printed.
"""
from __future__ import annotations

import logging
import re
import subprocess
import threading
import time

__all__ = ["ExternalService", "SpawnedService"]

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class ExternalService:
    """A server that runs outside the test session, at host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        log.info("using the running server at %s:%d", host, port)

    def dump_logs(self) -> None:
        log.info("no logs for %s:%d: it runs outside this test session", self.host, self.port)


class SpawnedService:
    """A child process (`args`, environment `env`) whose merged stdout and stderr are kept
    in memory, line by line, for `wait_for` and `dump_logs`."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        if not args:
            raise TypeError("SpawnedService needs the command to run")
        self.args = [str(arg) for arg in args]
        self.env = env
        self.process: subprocess.Popen | None = None
        self._lines: list[str] = []
        self._output_changed = threading.Condition()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Starts the command in its own session (a signal to the test run's process
        group does not reach it); its output is read by a daemon thread."""
        if self.process is not None and self.process.poll() is None:
            return
        log.info("starting %s", " ".join(self.args))
        self.process = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._reader = threading.Thread(target=self._read_output, args=(self.process,),
                                        name=f"output of pid {self.process.pid}", daemon=True)
        self._reader.start()

    def _read_output(self, process: subprocess.Popen) -> None:
        for raw_line in process.stdout:
            with self._output_changed:
                self._lines.append(raw_line.decode("utf-8", errors="replace").rstrip("\n"))
                self._output_changed.notify_all()
        with self._output_changed:  # end of output: the process has closed it or exited
            self._output_changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30) -> bool:
        """True once a line of output matches the regular expression `pattern`; False
        after `timeout` seconds, or as soon as the process has exited without one."""
        matcher = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = 0
        with self._output_changed:
            while True:
                for line in self._lines[checked:]:
                    if matcher.search(line):
                        return True
                checked = len(self._lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process is None:
                    return False
                if self.process.poll() is not None and not self._reader.is_alive():
                    return False
                self._output_changed.wait(min(remaining, 0.5))

    def stop(self) -> None:
        """SIGTERM to its PID, SIGKILL after STOP_TIMEOUT_S; returns once it has exited."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT_S)
        log.info("pid %d exited with %s", process.pid, process.returncode)

    def dump_logs(self) -> None:
        with self._output_changed:
            lines = list(self._lines)
        log.info("output of %s (%d lines):\n%s", " ".join(self.args), len(lines),
                 "\n".join(lines))
