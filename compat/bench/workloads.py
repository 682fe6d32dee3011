"""One benchmark session: start a broker, run every workload against it, stop it.

Load generators run in their own processes (`compat.bench.loads` for librdkafka, Kafka's
ProducerPerformance for the Java client); every process started here is stopped by its
PID, also when a workload fails or the run is interrupted."""
from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from compat.bench.loads import METADATA_KEY, METADATA_VERSION, check_response, request_frame
from compat.bench.report import megabytes_per_s, parse_producer_performance
from compat.brokers import (BROKER_ENV, Broker, BrokerError, kafka_classpath, kafka_home,
                            start_broker)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PARTITIONS = 6
SETTLE_S = 3.0  # after start, before the idle memory sample: Kafka finishes starting up
MEMORY_SAMPLE_INTERVAL_S = 0.1
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
# The Java load generator runs with C2 (unlike the CLI tools' C1-only options in
# compat.brokers) because it is measured for throughput; 512 MB heap as in
# kafka-producer-perf-test.sh. English number formats so its summary line parses.
PRODUCER_PERFORMANCE_JVM_OPTIONS = ["-Xmx512m", "-Duser.language=en", "-Duser.country=US",
                                    "-Djava.awt.headless=true"]


@dataclass(frozen=True)
class Sizes:
    small_messages: int
    small_bytes: int
    large_messages: int
    large_bytes: int
    latency_rate_per_s: int
    latency_seconds: float
    latency_warmup_s: float
    producers: int
    messages_per_producer: int
    connections: int

    def describe(self) -> dict[str, str]:
        return {
            "small": f"{self.small_messages:,} x {self.small_bytes} B",
            "large": f"{self.large_messages:,} x {self.large_bytes // 1024} KB",
            "latency": f"{self.latency_rate_per_s:,} msg/s x {self.latency_seconds:g} s",
            "producers": f"{self.producers} producers x {self.messages_per_producer:,} x "
                         f"{self.small_bytes} B",
            "connections": f"{self.connections:,}",
        }


FULL_SIZES = Sizes(small_messages=1_000_000, small_bytes=100, large_messages=20_000,
                   large_bytes=10_240, latency_rate_per_s=1000, latency_seconds=20.0,
                   latency_warmup_s=2.0, producers=8, messages_per_producer=125_000,
                   connections=1000)
QUICK_SIZES = Sizes(small_messages=20_000, small_bytes=100, large_messages=1_000,
                    large_bytes=10_240, latency_rate_per_s=1000, latency_seconds=3.0,
                    latency_warmup_s=0.5, producers=8, messages_per_producer=2_000,
                    connections=200)


class WorkloadFailed(Exception):
    """A workload could not be measured; str() is the reason (one line)."""


class Processes:
    """Every process the bench starts, so each is stopped by its PID in the end."""

    def __init__(self) -> None:
        self._running: dict[int, subprocess.Popen] = {}

    def start(self, command: list[str], **options) -> subprocess.Popen:
        process = subprocess.Popen(command, **options)
        self._running[process.pid] = process
        return process

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; reaps it."""
        self._running.pop(process.pid, None)
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10.0)

    def stop_all(self) -> None:
        for process in list(self._running.values()):
            self.stop(process)


# -- memory -----------------------------------------------------------------------------

def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise WorkloadFailed(f"no {field} in /proc/{pid}/status")


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a broker that forks workers is measured whole)."""
    tree, index = [pid], 0
    while index < len(tree):
        current = tree[index]
        index += 1
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                tree += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return tree


def resident_mb(pid: int) -> float:
    """VmRSS of `pid` and its descendants, MB (10^6 bytes)."""
    total_kb = 0
    for member in _process_tree(pid):
        try:
            total_kb += _status_kb(member, "VmRSS")
        except OSError:
            continue  # exited between listing and reading
    return total_kb * 1024 / 1_000_000


class MemorySampler:
    """Samples the resident memory of a process tree every MEMORY_SAMPLE_INTERVAL_S in a
    thread; `peak_mb()` is the largest sample, or VmHWM of the main process if larger
    (it catches peaks between samples)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._peak_mb = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(MEMORY_SAMPLE_INTERVAL_S):
            try:
                self._peak_mb = max(self._peak_mb, resident_mb(self._pid))
            except (OSError, WorkloadFailed):
                return  # the broker exited: the session reports that

    def peak_mb(self) -> float:
        high_water_mb = _status_kb(self._pid, "VmHWM") * 1024 / 1_000_000
        return max(self._peak_mb, high_water_mb, resident_mb(self._pid))

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5.0)


# -- startup ----------------------------------------------------------------------------

def metadata_answered(port: int, timeout_s: float) -> bool:
    """True if 127.0.0.1:`port` answers a Metadata v4 request listing >= 1 broker."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
            connection.sendall(request_frame(METADATA_KEY, METADATA_VERSION, 7,
                                             struct.pack(">i?", 0, False)))
            size = struct.unpack(">i", _receive_exactly(connection, 4))[0]
            check_response("metadata", 7, _receive_exactly(connection, size))
        return True
    except (OSError, struct.error, ConnectionError):
        return False


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed mid-response")
        data += chunk
    return bytes(data)


def measure_startup(name: str, directory: Path, processes: Processes) -> float:
    """Seconds from spawning broker `name` to its first Metadata answer, polled by a raw
    socket every 5 ms. compat.brokers starts the broker once (Kafka needs its storage
    formatted first; that is not timed); its exact command line is then started again on
    the same port and data dir, and that second start is timed, for both brokers alike."""
    broker = start_broker(name, directory / "startup")
    try:
        argv = [part.decode() for part in
                Path(f"/proc/{broker.pid}/cmdline").read_bytes().split(b"\0")[:-1]]
        cwd = os.readlink(f"/proc/{broker.pid}/cwd")
    finally:
        broker.stop()
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    if name == "gregor":  # compat.brokers lets Gregor pick a free port: pin the one it had
        argv[argv.index("--listen") + 1] = f"127.0.0.1:{port}"
    with open(directory / "startup" / f"{name}-timed-start.log", "wb") as log:
        started_s = time.perf_counter()
        process = processes.start(argv, cwd=cwd, env=BROKER_ENV, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, start_new_session=True)
    try:
        while not metadata_answered(port, timeout_s=1.0):
            if process.poll() is not None:
                raise WorkloadFailed(f"{name} exited with {process.returncode} while starting")
            if time.perf_counter() - started_s > STARTUP_TIMEOUT_S:
                raise WorkloadFailed(f"no Metadata answer within {STARTUP_TIMEOUT_S:.0f} s")
            time.sleep(0.005)
        return time.perf_counter() - started_s
    finally:
        processes.stop(process)


# -- one session --------------------------------------------------------------------------

class Session:
    """Every workload against one fresh broker. `values` maps metric keys to this
    session's measurements; `failures` has one line per workload that failed."""

    def __init__(self, name: str, directory: Path, sizes: Sizes, processes: Processes,
                 commands: dict[str, str], log=print, around_step=None) -> None:
        self.name = name
        self.directory = directory
        self.sizes = sizes
        self.processes = processes
        self.commands = commands  # workload -> command line, for the docs
        self.log = log
        # around_step(workload, broker pid) -> context manager that each workload runs
        # in (e.g. a profiler attached to the broker); None: nothing around it.
        self.around_step = around_step
        self.values: dict[str, float] = {}
        self.failures: list[str] = []
        self.broker: Broker | None = None

    def run(self) -> None:
        try:
            self.values["startup_s"] = measure_startup(self.name, self.directory,
                                                       self.processes)
        except (WorkloadFailed, BrokerError, OSError) as exc:
            self.failures.append(f"startup: {_one_line(exc)}")
        try:
            self.broker = start_broker(self.name, self.directory / "session")
        except BrokerError as exc:
            self.failures.append(f"start: {_one_line(exc)}")
            return
        sampler = MemorySampler(self.broker.pid)
        try:
            time.sleep(SETTLE_S)
            self.values["rss_idle_mb"] = resident_mb(self.broker.pid)
            self._create_topics()
            for step in (self._produce_small_librdkafka, self._produce_small_java,
                         self._produce_large_librdkafka, self._produce_large_java):
                self._attempt(step)
            self.values["rss_peak_produce_mb"] = sampler.peak_mb()
            for step in (self._consume_small, self._consume_large,
                         self._latency_consumer_defaults, self._latency_fetch_wait_100_ms,
                         self._concurrent_producers, self._connections):
                self._attempt(step)
            self.values["rss_peak_mb"] = sampler.peak_mb()
        except (WorkloadFailed, OSError) as exc:
            self.failures.append(f"session: {_one_line(exc)}")
        finally:
            sampler.stop()
            self.broker.stop()

    def _attempt(self, step) -> None:
        """Runs one workload (inside around_step, if given); a failure is recorded and the
        next workload still runs, unless the broker itself is gone."""
        workload = step.__name__.lstrip("_")
        self.log(f"  {self.name}: {workload}")
        around = (contextlib.nullcontext() if self.around_step is None
                  else self.around_step(workload, self.broker.pid))
        try:
            with around:
                step()
        except (WorkloadFailed, subprocess.TimeoutExpired, json.JSONDecodeError,
                ValueError) as exc:
            self.failures.append(f"{workload}: {_one_line(exc)}")
            if not Path(f"/proc/{self.broker.pid}").exists():
                raise WorkloadFailed(f"{self.name} exited during {workload}") from exc

    # -- topics

    def _topic(self, workload: str) -> str:
        return f"bench-{workload}"

    def _create_topics(self) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        topics = [NewTopic(self._topic(workload), PARTITIONS, 1)
                  for workload in ("small-librdkafka", "small-java", "large-librdkafka",
                                   "large-java", "concurrent", "connections")]
        topics += [NewTopic(self._topic(workload), 1, 1)
                   for workload in ("latency-default", "latency-wait-100")]
        for topic, future in admin.create_topics(topics, operation_timeout=30).items():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                raise WorkloadFailed(f"creating {topic}: {exc}") from exc

    # -- load generators

    def _run_load(self, workload: str, arguments: list[str], timeout_s: float) -> dict:
        command = [sys.executable, "-m", "compat.bench.loads", *arguments,
                   "--bootstrap", self.broker.bootstrap]
        self.commands.setdefault(workload, _display(command, self.broker.bootstrap))
        completed = self._run(command, timeout_s)
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def _run(self, command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        process = self.processes.start(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise WorkloadFailed(f"{Path(command[0]).name} still running after "
                                 f"{timeout_s:.0f} s") from exc
        finally:
            self.processes.stop(process)
        if process.returncode != 0:
            reason = (stderr.strip().splitlines() or ["no output"])[-1]
            raise WorkloadFailed(f"exit {process.returncode}: {reason}")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def _produce_librdkafka(self, workload: str, messages: int, size_bytes: int) -> dict:
        return self._run_load(workload, [
            "produce", "--topic", self._topic(workload), "--messages", str(messages),
            "--size", str(size_bytes), "--acks", "all", "--linger-ms", "5"],
            timeout_s=60 + messages * size_bytes / 1_000_000 * 2)

    def _produce_java(self, workload: str, messages: int, size_bytes: int):
        classpath = os.pathsep.join(str(jar) for jar in kafka_classpath(install=False))
        log4j = kafka_home() / "tools-log4j2.properties"
        command = ["java", *PRODUCER_PERFORMANCE_JVM_OPTIONS,
                   f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath,
                   "org.apache.kafka.tools.ProducerPerformance",
                   "--topic", self._topic(workload), "--num-records", str(messages),
                   "--record-size", str(size_bytes), "--throughput", "-1",
                   "--bootstrap-server", self.broker.bootstrap,
                   "--command-property", "acks=all", "linger.ms=5"]
        shown = [("<kafka_classpath()>" if part == classpath else part) for part in command]
        self.commands.setdefault(workload, _display(shown, self.broker.bootstrap))
        completed = self._run(command, timeout_s=90 + messages * size_bytes / 1_000_000 * 2)
        summary = parse_producer_performance(completed.stdout)
        if summary.records != messages:
            raise WorkloadFailed(f"ProducerPerformance sent {summary.records} of {messages}")
        return summary

    def _produce_small_librdkafka(self) -> None:
        sizes = self.sizes
        result = self._produce_librdkafka("small-librdkafka", sizes.small_messages,
                                          sizes.small_bytes)
        self.values["produce_small_librdkafka_msgs_s"] = result["messages"] / result["seconds"]
        self.values["produce_small_librdkafka_mb_s"] = megabytes_per_s(result["bytes"],
                                                                       result["seconds"])

    def _produce_small_java(self) -> None:
        sizes = self.sizes
        summary = self._produce_java("small-java", sizes.small_messages, sizes.small_bytes)
        self.values["produce_small_java_msgs_s"] = summary.records_per_s
        self.values["produce_small_java_mb_s"] = summary.records_per_s * sizes.small_bytes \
            / 1_000_000

    def _produce_large_librdkafka(self) -> None:
        sizes = self.sizes
        result = self._produce_librdkafka("large-librdkafka", sizes.large_messages,
                                          sizes.large_bytes)
        self.values["produce_large_librdkafka_mb_s"] = megabytes_per_s(result["bytes"],
                                                                       result["seconds"])

    def _produce_large_java(self) -> None:
        sizes = self.sizes
        summary = self._produce_java("large-java", sizes.large_messages, sizes.large_bytes)
        self.values["produce_large_java_mb_s"] = summary.records_per_s * sizes.large_bytes \
            / 1_000_000

    def _consume(self, workload: str, produced_by: str, messages: int, size_bytes: int
                 ) -> dict:
        result = self._run_load(workload, [
            "consume", "--topic", self._topic(produced_by), "--messages", str(messages),
            "--timeout-s", "240"], timeout_s=300)
        if result["bytes"] != messages * size_bytes:
            raise WorkloadFailed(f"read {result['bytes']} bytes, expected "
                                 f"{messages * size_bytes}")
        return result

    def _consume_small(self) -> None:
        if "produce_small_librdkafka_msgs_s" not in self.values:
            raise WorkloadFailed("nothing to read: its produce workload failed")
        sizes = self.sizes
        result = self._consume("consume-small", "small-librdkafka", sizes.small_messages,
                               sizes.small_bytes)
        self.values["consume_small_msgs_s"] = result["messages"] / result["seconds"]
        self.values["consume_small_mb_s"] = megabytes_per_s(result["bytes"], result["seconds"])

    def _consume_large(self) -> None:
        if "produce_large_librdkafka_mb_s" not in self.values:
            raise WorkloadFailed("nothing to read: its produce workload failed")
        sizes = self.sizes
        result = self._consume("consume-large", "large-librdkafka", sizes.large_messages,
                               sizes.large_bytes)
        self.values["consume_large_mb_s"] = megabytes_per_s(result["bytes"], result["seconds"])

    def _latency(self, variant: str, fetch_wait_max_ms: int | None) -> None:
        sizes = self.sizes
        workload = f"latency-{variant.replace('_', '-')}"
        arguments = ["latency", "--topic", self._topic(workload),
                     "--rate", str(sizes.latency_rate_per_s),
                     "--seconds", str(sizes.latency_seconds),
                     "--warmup-s", str(sizes.latency_warmup_s), "--acks", "all"]
        if fetch_wait_max_ms is not None:
            arguments += ["--fetch-wait-max-ms", str(fetch_wait_max_ms)]
        result = self._run_load(workload, arguments, timeout_s=sizes.latency_seconds + 120)
        for percentile in ("p50", "p99", "p99_9"):
            self.values[f"latency_{variant}_{percentile}_ms"] = result[f"{percentile}_ms"]

    def _latency_consumer_defaults(self) -> None:
        self._latency("default", None)

    def _latency_fetch_wait_100_ms(self) -> None:
        self._latency("wait_100", 100)

    def _concurrent_producers(self) -> None:
        """`producers` processes connect, say ready, and start together on one go line;
        aggregate = all messages / (last finish - first start)."""
        sizes = self.sizes
        command = [sys.executable, "-m", "compat.bench.loads", "produce",
                   "--topic", self._topic("concurrent"),
                   "--messages", str(sizes.messages_per_producer),
                   "--size", str(sizes.small_bytes), "--acks", "all", "--linger-ms", "5",
                   "--wait-for-go", "--bootstrap", self.broker.bootstrap]
        self.commands.setdefault(
            "concurrent", f"{sizes.producers} processes at once, each: "
                          f"{_display(command, self.broker.bootstrap)}")
        started = [self.processes.start(command, cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
                   for _ in range(sizes.producers)]
        try:
            _wait_for_lines(started, "ready", timeout_s=120)
            for process in started:  # communicate() closes stdin afterwards
                process.stdin.write("go\n")
                process.stdin.flush()
            deadline_s = time.monotonic() + 60 + sizes.producers * sizes.messages_per_producer \
                * sizes.small_bytes / 1_000_000 * 2
            results = []
            for process in started:
                try:
                    stdout, stderr = process.communicate(
                        timeout=max(deadline_s - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired as exc:
                    raise WorkloadFailed("producers still running at the deadline") from exc
                if process.returncode != 0:
                    raise WorkloadFailed(f"a producer exited {process.returncode}: "
                                         f"{(stderr.strip().splitlines() or [''])[-1]}")
                results.append(json.loads(stdout.strip().splitlines()[-1]))
        finally:
            for process in started:
                self.processes.stop(process)
        total = sum(result["messages"] for result in results)
        elapsed_s = max(r["finished_s"] for r in results) - min(r["started_s"] for r in results)
        self.values["concurrent_producers_msgs_s"] = total / elapsed_s

    def _connections(self) -> None:
        sizes = self.sizes
        result = self._run_load("connections", [
            "connections", "--topic", self._topic("connections"),
            "--connections", str(sizes.connections), "--timeout-s", "60"], timeout_s=150)
        self.values["connections_answered"] = result["answered"]
        self.values["connections_s"] = result["seconds"]
        self.values["connections_normal_client_ok"] = 1.0 if result["normal_client_ok"] else 0.0
        problems = [f"{count} x {reason}" for reason, count in result["failures"].items()]
        if not result["normal_client_ok"]:
            problems.append(f"normal client: {result['normal_client_error']}")
        if problems:
            self.failures.append(f"connections: {'; '.join(problems)}")


def _wait_for_lines(processes: list[subprocess.Popen], expected: str, timeout_s: float) -> None:
    """Reads one line from each process's stdout; raises WorkloadFailed unless every one
    says `expected` within `timeout_s`."""
    selector = selectors.DefaultSelector()
    for process in processes:
        selector.register(process.stdout, selectors.EVENT_READ, process)
    waiting = len(processes)
    deadline_s = time.monotonic() + timeout_s
    try:
        while waiting:
            remaining_s = deadline_s - time.monotonic()
            if remaining_s <= 0:
                raise WorkloadFailed(f"{waiting} producers not ready in {timeout_s:.0f} s")
            for key, _events in selector.select(timeout=remaining_s):
                line = key.fileobj.readline()
                if line.strip() != expected:
                    process = key.data
                    process.wait(10)
                    reason = (process.stderr.read().strip().splitlines() or [line.strip()])[-1]
                    raise WorkloadFailed(f"a producer did not start: {reason}")
                selector.unregister(key.fileobj)
                waiting -= 1
    finally:
        selector.close()


def _display(command: list[str], bootstrap: str) -> str:
    shown = ["python" if part == sys.executable else part for part in command]
    return shlex.join(shown).replace(bootstrap, "<bootstrap>")


def _one_line(exc: BaseException) -> str:
    lines = (str(exc).strip() or type(exc).__name__).splitlines()
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
