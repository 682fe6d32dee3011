"""kafka-python's own integration suite (test/integration/ of its sdist) against Gregor
and/or Apache Kafka.

    python -m compat.kafka_python_suite --broker gregor|kafka [--work DIR]
    python -m compat.kafka_python_suite --both [--work DIR]

Downloads the sdist of the kafka-python installed here (`pip download --no-binary :all:`,
cached in ~/.cache/gregor-compat/kafka-python/), copies it to WORK/suite and drops in the
two modules its fixtures import but the sdist does not ship (test/__init__.py and
test/service.py: our own code, in compat/kafka_python_suite/dropin/). Then, per broker:
starts it with compat.brokers (fresh data dir, free loopback port, the broker settings
the suite's own fixtures give a broker), points the suite at it with KAFKA_URI and
KAFKA_VERSION, runs `pytest test/integration` with a per-test timeout and a JUnit report,
and stops the broker by its PID.

KAFKA_VERSION is the Kafka release whose protocol Gregor serves, inferred by kafka-python
itself from the versions Gregor advertises; both brokers run with the same value, so both
run the same tests.

Prints the passed/failed/error/skipped counts per broker and, with --both, the tests that
pass against Kafka but not against Gregor. Exits 1 if a test fails (or errors) against
Gregor that compat/kafka_python_suite/expected-failures.txt does not list, if --both finds
a test passing only against Kafka that the file does not list, or if the suite could not
run to its end; else 0.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from compat.brokers import (BROKER_NAMES, CACHE_ROOT, KAFKA_VERSION, BrokerError,
                            start_broker, stop_broker)

PACKAGE_DIR = Path(__file__).resolve().parent
DROPIN_DIR = PACKAGE_DIR / "dropin"
EXPECTED_FAILURES_PATH = PACKAGE_DIR / "expected-failures.txt"
SDIST_CACHE = CACHE_ROOT / "kafka-python"
DISTRIBUTION = "kafka-python"

SUITE_PATH = "test/integration"
# Test files that cannot be pointed at a running broker: left out, with the reason.
IGNORED = {
    "test/integration/test_ssl_integration.py":
        "starts its own SSL broker from a Kafka distribution (KafkaFixture without "
        "KAFKA_URI); it cannot run against a broker started elsewhere",
}
PER_TEST_TIMEOUT_S = 120
SUITE_TIMEOUT_S = 1800.0
PIP_TIMEOUT_S = 300.0

# The broker configuration kafka-python's fixtures give the Kafka they start
# (servers/resources/default/kafka.properties in its repository, not in the sdist), less
# what compat.brokers sets itself (roles, listeners, log dirs) and the settings that only
# tune a JVM broker's threads and sockets. The suite counts on them: its topics have 4
# partitions, test_group uses a 3 s session timeout (Kafka's minimum is 6 s by default),
# test_transactional_producer_offsets commits an offset for partition 1 of a topic that
# producing auto-creates, test_create_partitions assigns replicas to broker 0.
SUITE_BROKER_SETTINGS = {
    "node.id": "0",
    "num.partitions": "4",
    "default.replication.factor": "1",
    "replica.lag.time.max.ms": "1000",
    "log.cleaner.enable": "false",
    "offsets.commit.timeout.ms": "500",
    "offsets.topic.num.partitions": "2",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.min.session.timeout.ms": "1000",
    "group.initial.rebalance.delay.ms": "0",
}
# The suite's fixtures also enable Kafka's ACL authorizer (allowing everyone where no ACL
# is set) for its ACL tests. Gregor has no authorizer and serves no ACL APIs: that key is
# unknown to it, so only Kafka gets it.
KAFKA_ONLY_SETTINGS = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
}

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
OUTCOMES = (PASSED, FAILED, ERROR, SKIPPED)


class SuiteError(RuntimeError):
    """The suite could not be fetched, prepared or run; the message says why."""


# -- the sdist and the pieces it lacks ---------------------------------------------------

def installed_kafka_python() -> str:
    """The version of kafka-python installed in this Python."""
    return importlib.metadata.version(DISTRIBUTION)


def fetch_sdist(version: str, cache: Path = SDIST_CACHE) -> Path:
    """Downloads kafka-python `version`'s sdist with pip (once: later calls find it in
    `cache`), unpacks it there and returns the unpacked directory. SuiteError with pip's
    output if the download fails."""
    unpacked = cache / f"kafka_python-{version}"
    complete = cache / f"kafka_python-{version}.complete"
    if complete.exists() and unpacked.is_dir():
        return unpacked
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
               "--disable-pip-version-check", "--quiet",
               f"{DISTRIBUTION}=={version}", "--dest", str(downloads)]
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise SuiteError(f"pip download of {DISTRIBUTION}=={version} took over "
                         f"{PIP_TIMEOUT_S:.0f} s") from exc
    if result.returncode != 0:
        raise SuiteError(f"pip download of {DISTRIBUTION}=={version} failed:\n"
                         f"{result.stdout}{result.stderr}")
    archives = sorted(downloads.glob(f"kafka_python-{version}.tar.gz")) or \
        sorted(downloads.glob(f"kafka-python-{version}.tar.gz"))
    if not archives:
        raise SuiteError(f"pip download left no kafka_python-{version}.tar.gz in {downloads}")
    staging = cache / f"kafka_python-{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    with tarfile.open(archives[0]) as archive:
        _check_members(archive, archives[0].name)
        archive.extractall(staging)
    roots = [path for path in staging.iterdir() if path.is_dir()]
    if len(roots) != 1 or not (roots[0] / SUITE_PATH).is_dir():
        raise SuiteError(f"{archives[0].name} has no single top directory with {SUITE_PATH}/")
    shutil.rmtree(unpacked, ignore_errors=True)
    roots[0].rename(unpacked)
    shutil.rmtree(staging)
    complete.write_text(f"{archives[0].name}\n")
    return unpacked


def _check_members(archive: tarfile.TarFile, name: str) -> None:
    """Refuses an archive with links, devices or paths leaving the directory it is
    unpacked in (tarfile's "data" filter does this too, but only from Python 3.11.4)."""
    for member in archive.getmembers():
        path = Path(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise SuiteError(f"{name}: refusing to unpack {member.name!r}")


def prepare_suite(sdist: Path, destination: Path, dropin: Path = DROPIN_DIR) -> list[str]:
    """Copies the unpacked sdist to `destination` (replacing what was there) and adds each
    file of `dropin` the sdist lacks. Returns the paths added, relative to `destination`;
    a file the sdist already has is kept as it is."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(sdist, destination)
    added = []
    for source in sorted(dropin.rglob("*.py")):
        relative = source.relative_to(dropin)
        target = destination / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            added.append(relative.as_posix())
    return added


def gregor_protocol_level() -> str:
    """The Kafka release whose APIs Gregor serves, as kafka-python infers it from the
    versions Gregor advertises in ApiVersions (e.g. "4.0")."""
    from kafka.protocol.broker_version_data import infer_broker_version_from_api_versions

    from broker.handlers import supported_versions

    advertised = {api_key: (lowest, highest)
                  for api_key, lowest, highest in supported_versions()}
    return ".".join(map(str, infer_broker_version_from_api_versions(advertised)))


# -- one run -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseOutcome:
    outcome: str  # one of OUTCOMES
    message: str = ""
    seconds: float = 0.0


@dataclass
class SuiteRun:
    """The suite's outcome against one broker."""
    broker: str
    tests: dict[str, CaseOutcome] = field(default_factory=dict)  # pytest node id -> outcome
    seconds: float = 0.0
    problem: str | None = None  # why the suite did not run to its end, if it did not

    def count(self, outcome: str) -> int:
        return sum(1 for test in self.tests.values() if test.outcome == outcome)

    def passed(self) -> set[str]:
        return {node for node, test in self.tests.items() if test.outcome == PASSED}

    def broken(self) -> set[str]:
        """Tests that failed or errored (a skip is neither)."""
        return {node for node, test in self.tests.items() if test.outcome in (FAILED, ERROR)}

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(outcome)} {outcome}" for outcome in OUTCOMES)
        line = f"{self.broker}: {counts} ({len(self.tests)} tests) in {self.seconds:.0f} s"
        return line if self.problem is None else f"{line}; NOT COMPLETE: {self.problem}"


def broker_settings(broker: str) -> dict[str, str]:
    """What `broker` is started with. compat.brokers gives Kafka static `listeners` and
    `advertised.listeners` on a free port; Gregor gets the same here (the suite checks
    that DescribeConfigs reports advertised.listeners as a static broker config)."""
    if broker == "kafka":
        return {**SUITE_BROKER_SETTINGS, **KAFKA_ONLY_SETTINGS}
    listener = f"PLAINTEXT://127.0.0.1:{_free_port()}"
    return {**SUITE_BROKER_SETTINGS, "listeners": listener, "advertised.listeners": listener}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pytest_command(junit_path: Path) -> list[str]:
    """`pytest test/integration`, run from the suite's directory. Its own pyproject.toml
    sets --timeout-method=thread, which ends the whole run at the first timeout; the
    signal method fails only that test."""
    return [sys.executable, "-m", "pytest", SUITE_PATH,
            *(f"--ignore={path}" for path in IGNORED),
            "-p", "no:cacheprovider", f"--timeout={PER_TEST_TIMEOUT_S}",
            "--timeout-method=signal", "-o", "junit_family=xunit1",
            f"--junitxml={junit_path}", "-rfEs"]


def run_suite(broker: str, suite: Path, work: Path, kafka_version: str,
              timeout_s: float = SUITE_TIMEOUT_S, log=print) -> SuiteRun:
    """Starts `broker` under work/<broker>/broker, runs the suite in `suite` against it
    (output in work/<broker>/pytest.log, report in junit.xml), stops the broker by its PID
    and returns the outcome of every test."""
    broker_work = work / broker
    broker_work.mkdir(parents=True, exist_ok=True)
    junit_path = broker_work / "junit.xml"
    junit_path.unlink(missing_ok=True)
    log_path = broker_work / "pytest.log"
    # The fixtures check that a Kafka distribution directory exists even when KAFKA_URI
    # names a running broker; nothing in it is used then.
    no_distribution = broker_work / "no-kafka-distribution"
    no_distribution.mkdir(exist_ok=True)
    result = SuiteRun(broker)
    started = time.monotonic()
    try:
        running = start_broker(broker, broker_work / "broker", broker_settings(broker))
    except BrokerError as exc:
        result.problem = f"{broker} did not start: {exc}"
        return result
    try:
        log(f"{broker} runs at {running.bootstrap} (pid {running.pid}); "
            f"running {SUITE_PATH} with KAFKA_VERSION={kafka_version}, log {log_path}")
        env = {**os.environ, "KAFKA_URI": f"PLAINTEXT://{running.bootstrap}",
               "KAFKA_VERSION": kafka_version, "KAFKA_ROOT": str(no_distribution)}
        with open(log_path, "wb") as output:
            process = subprocess.Popen(pytest_command(junit_path), cwd=suite, env=env,
                                       stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                result.problem = f"the suite ran over {timeout_s:.0f} s and was killed"
                code = None
            finally:  # a timeout, or this program interrupted: pytest does not outlive it
                if process.poll() is None:
                    _kill_group(process)
        if code not in (None, 0, 1):  # pytest: 0 all passed, 1 some failed
            result.problem = f"pytest exited {code} (see {log_path})"
    finally:
        stop_broker(broker_work / "broker")
        result.seconds = time.monotonic() - started
    if junit_path.exists():
        result.tests = parse_junit(junit_path)
    elif result.problem is None:
        result.problem = f"pytest wrote no report (see {log_path})"
    if not result.tests and result.problem is None:
        result.problem = "no test ran"
    (broker_work / "outcomes.json").write_text(json.dumps(
        {node: [test.outcome, test.message] for node, test in sorted(result.tests.items())},
        indent=1))
    return result


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: pytest and its children
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def parse_junit(path: Path) -> dict[str, CaseOutcome]:
    """Every testcase of pytest's xunit1 JUnit report, by pytest node id
    (`test/integration/test_x.py::Class::test_y[param]`). A test whose setup or teardown
    failed is an error, as pytest reports it."""
    tests = {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        module_path = case.get("file", "")
        module = module_path.removesuffix(".py").replace("/", ".")
        classname = case.get("classname", "")
        classes = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
        node = "::".join(part for part in (module_path, classes.replace(".", "::"),
                                           case.get("name", "")) if part)
        outcome, message = PASSED, ""
        for tag in (ERROR, FAILED, SKIPPED):
            element = case.find("failure" if tag == FAILED else tag)
            if element is not None:
                outcome = tag
                message = _first_line(element.get("message") or element.text or "")
                break
        tests[node] = CaseOutcome(outcome, message, float(case.get("time") or 0.0))
    return tests


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


# -- expectations and comparison ---------------------------------------------------------

def read_expected_failures(path: Path = EXPECTED_FAILURES_PATH) -> dict[str, str]:
    """expected-failures.txt: `<pytest node id> <reason>` lines, # comments. Every test
    not listed there must not fail against Gregor. A line without a reason is an error."""
    expected = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        node, _, reason = line.partition(" ")
        if not reason.strip():
            raise SuiteError(f"{path}:{number}: {node} has no reason")
        expected[node] = reason.strip()
    return expected


def unexpected_failures(gregor: SuiteRun, expected: dict[str, str]) -> list[str]:
    """Tests that failed or errored against Gregor without a line in expected-failures."""
    return sorted(gregor.broken() - set(expected))


def kafka_only_passes(gregor: SuiteRun, kafka: SuiteRun) -> list[str]:
    """Tests that pass against Kafka but not against Gregor (failed, errored, skipped or
    absent there): the issue's criterion is that there are none, or the note says why."""
    return sorted(kafka.passed() - gregor.passed())


def report(runs: list[SuiteRun], expected: dict[str, str], version: str,
           kafka_version: str, added: list[str]) -> tuple[str, int]:
    """The summary to print and the exit status (see the module docstring)."""
    lines = [f"kafka-python {version}'s integration suite ({SUITE_PATH}, "
             f"KAFKA_VERSION={kafka_version}; drop-ins: {', '.join(added) or 'none'}; "
             f"left out: {', '.join(IGNORED)})"]
    status = 0
    for run in runs:
        lines.append(run.summary())
        if run.problem is not None:
            status = 1
    by_broker = {run.broker: run for run in runs}
    gregor, kafka = by_broker.get("gregor"), by_broker.get("kafka")
    if gregor is None:
        return "\n".join(lines), status
    for node in unexpected_failures(gregor, expected):
        test = gregor.tests[node]
        lines.append(f"FAILED against Gregor, not in expected-failures.txt: {node}: "
                     f"{test.outcome}: {test.message}")
        status = 1
    for node in sorted(set(expected) & gregor.passed()):
        lines.append(f"now passes against Gregor, remove it from expected-failures.txt: {node}")
    if kafka is None:
        known = sorted(set(expected) & gregor.broken())
        lines.append(f"{len(known)} failed as expected-failures.txt says"
                     + (":" if known else ""))
        lines += [f"  {node}: {gregor.tests[node].message}" for node in known]
        return "\n".join(lines), status
    only_kafka = kafka_only_passes(gregor, kafka)
    lines.append(f"{len(only_kafka)} pass against Kafka {KAFKA_VERSION} but not against Gregor"
                 + (":" if only_kafka else ""))
    for node in only_kafka:
        test = gregor.tests.get(node, CaseOutcome("absent"))
        why = expected.get(node)
        if why is None:
            status = 1
        lines.append(f"  {node}: {test.outcome} against Gregor"
                     + (f" ({test.message})" if test.message else "")
                     + (f"\n    why (expected-failures.txt): {why}" if why
                        else "\n    NOT in expected-failures.txt"))
    only_gregor = sorted(gregor.passed() - kafka.passed())
    if only_gregor:
        lines.append(f"{len(only_gregor)} pass against Gregor but not against Kafka "
                     f"{KAFKA_VERSION}:")
        lines += [f"  {node}: {kafka.tests[node].outcome if node in kafka.tests else 'absent'}"
                  f" against Kafka ({kafka.tests[node].message if node in kafka.tests else ''})"
                  for node in only_gregor]
    return "\n".join(lines), status


# -- command line ------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.kafka_python_suite",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--broker", choices=BROKER_NAMES)
    which.add_argument("--both", action="store_true",
                       help="Gregor, then Kafka; compare the two")
    parser.add_argument("--work", type=Path,
                        help="directory for the suite, the brokers and the logs, kept "
                             "(default: a new temporary one, removed unless the run fails)")
    parser.add_argument("--kafka-version",
                        help="KAFKA_VERSION for the suite (default: the release whose "
                             "protocol Gregor serves)")
    args = parser.parse_args(argv)
    brokers = BROKER_NAMES if args.both else (args.broker,)
    work = (args.work or Path(tempfile.mkdtemp(prefix="kafka-python-suite-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    status = _run(args, brokers, work)
    if args.work is None and status == 0:
        shutil.rmtree(work, ignore_errors=True)  # kept, with its logs, when something failed
    else:
        print(f"logs and reports: {work}")
    return status


def _run(args: argparse.Namespace, brokers: tuple[str, ...], work: Path) -> int:
    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        expected = read_expected_failures()
        version = installed_kafka_python()
        kafka_version = args.kafka_version or gregor_protocol_level()
        sdist = fetch_sdist(version)
        added = prepare_suite(sdist, work / "suite")
    except SuiteError as exc:
        print(f"compat.kafka_python_suite: {exc}", file=sys.stderr)
        return 1
    log(f"kafka-python {version}'s suite in {work / 'suite'} (added {', '.join(added)})")
    runs = [run_suite(broker, work / "suite", work, kafka_version, log=log)
            for broker in brokers]
    text, status = report(runs, expected, version, kafka_version, added)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
