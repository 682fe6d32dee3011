"""The stock-client matrix: every runner in compat/clients/*/run, every scenario, against
Gregor and/or Apache Kafka (compat/SCENARIOS.md is the contract).

    python -m compat.matrix --broker gregor|kafka|both [--clients a,b] [--scenarios x,y]
                            [--jobs N] [--write-docs]

Each (client, scenario) runs in its own process group with a hard timeout and a fresh
topic. Prints one table per broker, the failures with their reasons, and the closing line
`N passed, M failed`. Exits 1 if a (client, scenario) listed in compat/expected-pass.txt
fails against Gregor (the CI regression rule), else 0.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENTS_DIR = REPO_ROOT / "compat" / "clients"
EXPECTED_PASS_PATH = REPO_ROOT / "compat" / "expected-pass.txt"
DOCS_PATH = REPO_ROOT / "docs" / "compatibility.md"

SCENARIOS = ("metadata", "topic_admin", "produce_consume", "compression", "acks", "idempotent",
             "list_offsets", "delete_records", "large_messages", "unknown_topic",
             "consumer_group", "consumer_group_848", "commits_rebalance", "transactions")
CROSS_PRODUCE = "cross_produce"
CROSS_CONSUME = "cross_consume"
ALL_SCENARIOS = SCENARIOS + (CROSS_PRODUCE, CROSS_CONSUME)
# Scenarios waiting on an issue: run against Gregor too, where a failure shows as
# "NOT YET (#N): reason" and counts neither way (a pass shows PASS); against Kafka they
# count like every other. Remove an entry when its issue is resolved.
NOT_YET: dict[str, int] = {}

RUN_TIMEOUT_S = 120.0
LIST_TIMEOUT_S = 60.0
VERSION_TIMEOUT_S = 60.0
BROKER_NAMES = ("gregor", "kafka")
GREGOR_BROKERS = ("gregor", "gregor-cluster")  # what compat/expected-pass.txt holds to

PASS, FAIL, NOT_APPLICABLE, NOT_YET_STATUS, SKIPPED = "PASS", "FAIL", "n/a", "NOT YET", "skipped"


# -- runners ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Runner:
    """One client's `run` executable and the scenarios its `--list` names."""
    name: str
    path: Path
    scenarios: frozenset[str]
    list_error: str | None = None  # why --list failed, if it did
    topics: dict[str, int] = field(default_factory=dict)  # scenario -> partitions to pre-create

    def implements(self, scenario: str) -> bool:
        return scenario in self.scenarios


def discover_runners(clients_dir: Path = CLIENTS_DIR, only: list[str] | None = None
                     ) -> list[Runner]:
    """Every clients_dir/<client>/run that is executable, sorted by name, asked `--list`.
    `only` keeps those clients (an unknown name is an error)."""
    found = {path.parent.name: path for path in sorted(clients_dir.glob("*/run"))
             if os.access(path, os.X_OK)}
    if only is not None:
        unknown = sorted(set(only) - set(found))
        if unknown:
            raise SystemExit(f"no runner for {', '.join(unknown)} in {clients_dir} "
                             f"(have: {', '.join(found)})")
        found = {name: found[name] for name in only}
    return [_list_runner(name, path) for name, path in sorted(found.items())]


def _list_runner(name: str, path: Path) -> Runner:
    topics = _read_topics(path.parent / "topics")
    try:
        result = subprocess.run([str(path), "--list"], capture_output=True, text=True,
                                timeout=LIST_TIMEOUT_S, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    except subprocess.TimeoutExpired:
        return Runner(name, path, frozenset(), f"--list timed out after {LIST_TIMEOUT_S:.0f} s")
    if result.returncode != 0:
        return Runner(name, path, frozenset(),
                      f"--list exited {result.returncode}: {_last_line(result.stderr)}")
    listed = frozenset(line.strip() for line in result.stdout.splitlines() if line.strip())
    unknown = sorted(listed - set(ALL_SCENARIOS))
    if unknown:
        return Runner(name, path, frozenset(), f"--list names unknown scenarios {unknown}")
    return Runner(name, path, listed, None, topics)


def _read_topics(path: Path) -> dict[str, int]:
    """A runner's optional `topics` file: `scenario partitions` lines, # comments. The
    matrix creates the scenario's topic first (for clients without an admin API)."""
    if not path.exists():
        return {}
    topics = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            scenario, partitions = line.split()
            topics[scenario] = int(partitions)
    return topics


def _last_lines(text: str, count: int) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][-count:]


def _last_line(text: str) -> str:
    lines = _last_lines(text, 1)
    return lines[0].strip() if lines else "(nothing on stderr)"


# -- one run ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    status: str  # PASS, FAIL, n/a, NOT YET, skipped
    reason: str = ""
    issue: int | None = None
    seconds: float = 0.0
    detail: str = ""  # a failure's evidence: the run's last lines, the broker's on its topic

    @property
    def cell(self) -> str:
        if self.status == NOT_YET_STATUS:
            return f"NOT YET (#{self.issue})"
        return self.status


def run_scenario(runner: Runner, bootstrap: str, scenario: str, topic: str, log_path: Path,
                 timeout_s: float = RUN_TIMEOUT_S, env: dict[str, str] | None = None
                 ) -> Outcome:
    """Runs one scenario in its own process group; kills the group (by the leader's PID)
    after timeout_s. Exit 0 PASS, 1 FAIL with the last stderr line, 2 n/a, else FAIL."""
    command = [str(runner.path), "--bootstrap", bootstrap, "--scenario", scenario,
               "--topic", topic]
    started_s = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, env={**os.environ, **(env or {})})
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return Outcome(FAIL, f"timeout after {timeout_s:.0f} s",
                           seconds=time.monotonic() - started_s)
        finally:
            _kill_group(process)  # nothing the runner started may outlive it
    seconds = time.monotonic() - started_s
    last = _last_line(log_path.read_text("utf-8", errors="replace"))
    if code == 0:
        return Outcome(PASS, seconds=seconds)
    if code == 2:
        return Outcome(NOT_APPLICABLE, last, seconds=seconds)
    if code == 1:
        return Outcome(FAIL, last, seconds=seconds)
    return Outcome(FAIL, f"exit {code}: {last}", seconds=seconds)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group is the runner's own session
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)


# -- one broker ------------------------------------------------------------------------

@dataclass
class BrokerResult:
    broker: str
    cells: dict[tuple[str, str], Outcome] = field(default_factory=dict)  # (scenario, client)
    cross: dict[tuple[str, str], Outcome] = field(default_factory=dict)  # (producer, consumer)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


class BrokerSession:
    """The broker under test: started in a temp dir, restarted if it dies, stopped by PID.
    `start(name, directory)` returns an object with .bootstrap, .pid and .stop()."""

    def __init__(self, name: str, workdir: Path, start: Callable) -> None:
        self.name = name
        self._workdir = workdir
        self._start = start
        self._starts = 0
        self.broker = None
        self.start_error: str | None = None
        self._lock = threading.Lock()  # parallel runs share one broker

    def ensure_running(self) -> str | None:
        """The bootstrap address, starting (or restarting) the broker as needed; None if it
        cannot start (start_error says why)."""
        with self._lock:
            return self._ensure_running()

    def _ensure_running(self) -> str | None:
        if self.broker is not None and _alive(self.broker.pid):
            return self.broker.bootstrap
        if self.start_error is not None:  # a broker that would not start is not retried
            return None
        if self.broker is not None:
            self.broker.stop()
        self._starts += 1
        try:
            self.broker = self._start(self.name, self._workdir / f"{self.name}-{self._starts}")
        except Exception as exc:  # the broker's own error, shown in every cell it costs
            self.broker = None
            self.start_error = f"{self.name} did not start: {_last_line(str(exc))}"
            return None
        return self.broker.bootstrap

    @property
    def restarts(self) -> int:
        return max(0, self._starts - 1)

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def _alive(pid: int) -> bool:
    """True while the process runs (a zombie, dead but not yet reaped, is not alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def topic_name(scenario: str, client: str, broker: str) -> str:
    # '-' only: Kafka refuses a topic whose name collides with another's once '.' and '_'
    # are treated alike.
    return re.sub(r"[^A-Za-z0-9-]", "-", f"{scenario}-{client}-{broker}")


def precreate_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Creates a topic for a client without an admin API (through kafka-python)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def run_broker(broker: str, runners: list[Runner], scenarios: list[str], workdir: Path,
               start: Callable, jobs: int = 1, timeout_s: float = RUN_TIMEOUT_S,
               precreate: Callable[[str, str, int], None] = precreate_topic,
               log: Callable[[str], None] = lambda line: None) -> BrokerResult:
    """Every (client, scenario) against one broker, then the cross-client step."""
    result = BrokerResult(broker)
    started_s = time.monotonic()
    session = BrokerSession(broker, workdir, start)
    logs = workdir / f"{broker}-logs"
    logs.mkdir(parents=True, exist_ok=True)

    def attempt(runner: Runner, scenario: str, topic: str, env: dict | None = None) -> Outcome:
        if runner.list_error is not None:
            return Outcome(FAIL, runner.list_error)
        if not runner.implements(scenario):
            return Outcome(NOT_APPLICABLE)
        bootstrap = session.ensure_running()
        if bootstrap is None:
            return Outcome(FAIL, session.start_error or "broker did not start")
        if scenario in runner.topics:
            try:
                precreate(bootstrap, topic, runner.topics[scenario])
            except Exception as exc:  # the creation error is this cell's reason
                return Outcome(FAIL, f"pre-creating {topic}: {type(exc).__name__}: {exc}")
        log_name = f"{runner.name}-{scenario}-{topic}.log"
        outcome = run_scenario(runner, bootstrap, scenario, topic, logs / log_name, timeout_s,
                               env)
        if session.broker is not None and not _alive(session.broker.pid):
            result.notes.append(f"{broker} died during {runner.name} {scenario}; restarted "
                                f"(log: {logs / log_name})")
            if outcome.status == PASS:
                outcome = Outcome(FAIL, f"{broker} died during the run", seconds=outcome.seconds)
        if outcome.status == FAIL and session.broker is not None:
            outcome = replace(outcome, detail=failure_detail(logs / log_name,
                                                             session.broker.directory, topic))
        if broker == "gregor" and scenario in NOT_YET and outcome.status == FAIL:
            outcome = Outcome(NOT_YET_STATUS, outcome.reason, issue=NOT_YET[scenario],
                              seconds=outcome.seconds)
        log(f"{broker:6} {runner.name:16} {scenario:18} {outcome.cell:12} "
            f"{outcome.seconds:6.1f} s {outcome.reason[:100]}")
        return outcome

    def attempt_twice(runner: Runner, scenario: str, topic: str) -> Outcome:
        """A cell that fails runs once more (a fresh topic) unless the broker died or never
        started: on this shared machine a stock client's own race can fail a run now and
        then (compat/README.md). A pass on the retry is noted with the first failure."""
        outcome = attempt(runner, scenario, topic)
        if (outcome.status != FAIL or runner.list_error is not None or session.broker is None
                or not _alive(session.broker.pid)):
            return outcome
        retried = attempt(runner, scenario, f"{topic}-retry")
        if retried.status == PASS:
            result.notes.append(f"{runner.name} {scenario} failed, then passed on its retry; "
                                f"the failure: {outcome.reason}")
            log(f"{runner.name} {scenario}: the failure before the retry passed:\n"
                f"{outcome.detail}")
        return retried

    try:
        tasks = [(runner, scenario) for scenario in scenarios if scenario in SCENARIOS
                 for runner in runners]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {(scenario, runner.name): pool.submit(
                attempt_twice, runner, scenario, topic_name(scenario, runner.name, broker))
                for runner, scenario in tasks}
            for key, future in futures.items():
                result.cells[key] = future.result()
        if CROSS_PRODUCE in scenarios or CROSS_CONSUME in scenarios:
            _run_cross(broker, runners, attempt, result, jobs)
    finally:
        session.stop()
    if session.restarts:
        result.notes.append(f"{broker} was restarted {session.restarts} time(s)")
    result.seconds = time.monotonic() - started_s
    return result


BROKER_LOG_NAMES = ("gregor.log", "kafka.log", "broker.log")  # not the partitions' *.log
DETAIL_LINES = 20


def failure_detail(run_log: Path, broker_directory: Path, topic: str) -> str:
    """What CI prints under a regression (its directories are gone after the run): the
    run's last lines, and each broker log's last lines that name the topic or warn."""
    parts = [f"-- {run_log.name} (last {DETAIL_LINES} lines)",
             *_last_lines(run_log.read_text("utf-8", errors="replace"), DETAIL_LINES)]
    for path in sorted(broker_directory.rglob("*.log")):
        if path.name not in BROKER_LOG_NAMES:
            continue
        relevant = [line for line in path.read_text("utf-8", errors="replace").splitlines()
                    if topic in line or " WARN" in line or " ERROR" in line]
        if relevant:
            parts += [f"-- {path.relative_to(broker_directory)} (lines naming {topic} or "
                      f"warning, last {DETAIL_LINES})", *relevant[-DETAIL_LINES:]]
    return "\n".join(parts)


def _run_cross(broker: str, runners: list[Runner], attempt: Callable, result: BrokerResult,
               jobs: int) -> None:
    """Each client's cross_produce, then every client's cross_consume of that topic."""
    for producer in runners:
        topic = topic_name("cross", producer.name, broker)
        produced = attempt(producer, CROSS_PRODUCE, topic)
        result.cells[(CROSS_PRODUCE, producer.name)] = produced
        if produced.status == NOT_APPLICABLE:  # the client cannot produce the standard set
            continue
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {}
            for consumer in runners:
                if produced.status != PASS:
                    result.cross[(producer.name, consumer.name)] = Outcome(SKIPPED)
                    continue
                futures[consumer.name] = pool.submit(
                    attempt, consumer, CROSS_CONSUME, topic,
                    {"COMPAT_PRODUCER": producer.name})
            for consumer_name, future in futures.items():
                result.cross[(producer.name, consumer_name)] = future.result()


# -- reporting -------------------------------------------------------------------------

def outcomes(result: BrokerResult) -> list[tuple[str, str, Outcome]]:
    """(client, scenario label, outcome) of every cell; cross cells are labelled
    `cross_consume:<producer>`."""
    cells = [(client, scenario, outcome) for (scenario, client), outcome in result.cells.items()]
    cells += [(consumer, f"{CROSS_CONSUME}:{producer}", outcome)
              for (producer, consumer), outcome in result.cross.items()]
    return cells


def count(results: list[BrokerResult]) -> tuple[int, int]:
    cells = [outcome for result in results for _, _, outcome in outcomes(result)]
    return (sum(1 for o in cells if o.status == PASS), sum(1 for o in cells if o.status == FAIL))


def read_expected_pass(path: Path = EXPECTED_PASS_PATH) -> set[tuple[str, str]]:
    """(client, scenario label) pairs that must keep passing against Gregor."""
    if not path.exists():
        return set()
    pairs = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            client, scenario = line.split()
            pairs.add((client, scenario))
    return pairs


def regressions(results: list[BrokerResult], expected: set[tuple[str, str]]
                ) -> list[tuple[str, str, Outcome]]:
    return sorted((client, scenario, outcome) for result in results
                  if result.broker in GREGOR_BROKERS
                  for client, scenario, outcome in outcomes(result)
                  if outcome.status == FAIL and (client, scenario) in expected)


def table(result: BrokerResult, clients: list[str], markdown: bool = False) -> str:
    scenario_rows = [s for s in ALL_SCENARIOS if s != CROSS_CONSUME
                     and any((s, c) in result.cells for c in clients)]
    rows = [(s, [result.cells[(s, c)].cell if (s, c) in result.cells else "" for c in clients])
            for s in scenario_rows]
    producers = [p for p in clients if any((p, c) in result.cross for c in clients)]
    rows += [(f"{CROSS_CONSUME} from {p}",
              [result.cross[(p, c)].cell if (p, c) in result.cross else "" for c in clients])
             for p in producers]
    header = ["scenario"] + clients
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join([name] + cells) + " |" for name, cells in rows]
        return "\n".join(lines)
    widths = [max(len(str(row[i])) for row in [header] + [[n] + c for n, c in rows])
              for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip([name] + cells, widths)).rstrip()
              for name, cells in rows]
    return "\n".join(lines)


def failures(result: BrokerResult) -> list[str]:
    return [f"{client} {scenario}: {outcome.reason}"
            for client, scenario, outcome in sorted(outcomes(result), key=lambda c: c[:2])
            if outcome.status == FAIL]


def report(results: list[BrokerResult], clients: list[str], markdown: bool = False) -> str:
    parts = []
    for result in results:
        title = (f"## {result.broker}" if markdown else f"== {result.broker} ==")
        parts += [title, "", table(result, clients, markdown), ""]
        failed = failures(result)
        if failed:
            parts += ["FAIL reasons:" if not markdown else "Failures:", ""]
            parts += [("- " if markdown else "  ") + line.replace("|", "\\|" if markdown else "|")
                      for line in failed] + [""]
        parts += [("- " if markdown else "  ") + note for note in result.notes]
        parts += [f"{result.broker}: {result.seconds:.0f} s", ""]
    return "\n".join(parts)


def client_versions(runners: list[Runner]) -> dict[str, str]:
    """What `run --version` prints (its first line), or "unknown" if it can't say."""
    versions = {}
    for runner in runners:
        try:
            answer = subprocess.run([str(runner.path), "--version"], capture_output=True,
                                    text=True, timeout=VERSION_TIMEOUT_S,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            first = answer.stdout.strip().splitlines()[:1]
            versions[runner.name] = first[0] if answer.returncode == 0 and first else "unknown"
        except subprocess.TimeoutExpired:
            versions[runner.name] = "unknown"
    return versions


def write_docs(results: list[BrokerResult], runners: list[Runner], command: str,
               path: Path = DOCS_PATH) -> None:
    passed, failed = count(results)
    versions = client_versions(runners)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Compatibility: stock Kafka clients against Gregor and Apache Kafka",
        "",
        f"Generated by `{command}` on {now}; do not edit by hand. Scenarios are described "
        "in `compat/SCENARIOS.md`. PASS / FAIL / NOT YET (#issue: waits on that issue, not "
        "run against Gregor) / n/a (the client has no API for it).",
        "",
        f"Brokers: Gregor at commit {_gregor_commit()}; Apache Kafka {_kafka_version()} "
        "(KRaft, single node).",
        "",
        "Clients:",
        "",
    ]
    lines += [f"- {name}: {version}" for name, version in versions.items()]
    lines += ["", report(results, [r.name for r in runners], markdown=True),
              f"{passed} passed, {failed} failed", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def _gregor_commit() -> str:
    try:
        answer = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return answer.stdout.strip() if answer.returncode == 0 else "unknown"


def _kafka_version() -> str:
    from compat.brokers import KAFKA_VERSION
    return KAFKA_VERSION


# -- command line ----------------------------------------------------------------------

def main(argv: list[str] | None = None, start: Callable | None = None,
         clients_dir: Path = CLIENTS_DIR, expected_pass_path: Path = EXPECTED_PASS_PATH,
         docs_path: Path = DOCS_PATH, timeout_s: float = RUN_TIMEOUT_S) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.matrix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=(*BROKER_NAMES, "both", "gregor-cluster"),
                        default="both")
    parser.add_argument("--clients", help="comma-separated client names (default: all)")
    parser.add_argument("--scenarios", help="comma-separated scenarios (default: all)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time against one broker (default 1)")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS_PATH}")
    parser.add_argument("--logs", type=Path,
                        help="keep every run's output and the brokers' logs in this directory")
    args = parser.parse_args(argv)
    scenarios = list(ALL_SCENARIOS)
    if args.scenarios:
        scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        unknown = sorted(set(scenarios) - set(ALL_SCENARIOS))
        if unknown:
            parser.error(f"unknown scenarios {unknown}; known: {', '.join(ALL_SCENARIOS)}")
    only = [c.strip() for c in args.clients.split(",")] if args.clients else None
    runners = discover_runners(clients_dir, only)
    if not runners:
        parser.error(f"no runners in {clients_dir}")
    if start is None:
        from compat.brokers import start_broker
        start = start_broker
    brokers = BROKER_NAMES if args.broker == "both" else (args.broker,)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="compat-matrix-") as temporary:
        workdir = args.logs.resolve() if args.logs else Path(temporary)
        for broker in brokers:
            results.append(run_broker(broker, runners, scenarios, workdir, start,
                                      jobs=args.jobs, timeout_s=timeout_s, log=log))
    clients = [r.name for r in runners]
    print(report(results, clients))
    if args.write_docs:
        shown = list(sys.argv[1:] if argv is None else argv)
        if "--logs" in shown:  # a local path: not part of the command to reproduce
            del shown[shown.index("--logs"):shown.index("--logs") + 2]
        write_docs(results, runners, " ".join(["python -m compat.matrix", *shown]), docs_path)
        print(f"wrote {docs_path}")
    regressed = regressions(results, read_expected_pass(expected_pass_path))
    for client, scenario, outcome in regressed:
        print(f"REGRESSION: {client} {scenario} passed before (compat/expected-pass.txt), "
              f"now: {outcome.reason}")
        if outcome.detail:
            print(outcome.detail)
    passed, failed = count(results)
    print(f"{passed} passed, {failed} failed")
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main())
