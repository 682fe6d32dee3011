"""The command line: rounds of sessions, Gregor and Kafka interleaved, then the report."""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compat.bench import profile, report
from compat.bench.workloads import FULL_SIZES, PARTITIONS, QUICK_SIZES, SETTLE_S, Processes, \
    Session, Sizes
from compat.brokers import KAFKA_JVM_OPTIONS, KAFKA_VERSION, BrokerError, kafka_classpath

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DOCS_PATH = REPO_ROOT / "docs" / "performance.md"


def _interrupted(signal_number, _frame):
    raise KeyboardInterrupt(f"signal {signal_number}")


def run_rounds(rounds: int, sizes: Sizes, work_dir: Path, processes: Processes,
               commands: dict[str, str]) -> tuple[dict, list[str]]:
    """`rounds` x (a Gregor session, then a Kafka session). Returns results[broker][metric]
    (one value per round, None where that round failed) and the failure lines."""
    metric_keys = [metric.key for metric in report.metrics_for(sizes.describe())]
    results = {broker: {key: [] for key in metric_keys} for broker in report.BROKERS}
    failures: list[str] = []
    for round_number in range(1, rounds + 1):
        for broker in report.BROKERS:
            print(f"round {round_number}/{rounds}: {broker}", flush=True)
            directory = work_dir / f"{broker}-{round_number}"
            session = Session(broker, directory, sizes, processes, commands,
                              log=lambda line: print(line, flush=True))
            started_s = time.monotonic()
            try:
                session.run()
            finally:
                shutil.rmtree(directory, ignore_errors=True)  # GBs of logs across rounds
            for key in metric_keys:
                results[broker][key].append(session.values.get(key))
            failures += [f"round {round_number}, {broker}: {line}" for line in session.failures]
            for line in session.failures:
                print(f"  FAILED {line}", flush=True)
            print(f"  {broker} session took {time.monotonic() - started_s:.0f} s", flush=True)
    return results, failures


def run_profile_session(sizes: Sizes, work_dir: Path, processes: Processes
                        ) -> tuple[dict[str, profile.ProfileSummary], list[str]]:
    """One more Gregor session, not counted in the tables, with py-spy recording every
    workload step. Returns the summaries by workload and the session's failure lines."""
    print("profile session: gregor (not measured)", flush=True)
    directory = work_dir / "gregor-profile"
    profiler = profile.StepProfiler(directory / "py-spy", processes)
    session = Session("gregor", directory, sizes, processes, commands={},
                      log=lambda line: print(line, flush=True), around_step=profiler.record)
    try:
        session.run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    for line in session.failures:
        print(f"  FAILED {line}", flush=True)
    return profiler.summaries, session.failures


def machine_description() -> list[tuple[str, str]]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text()
                         .splitlines() if line.startswith("MemTotal:")))
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60)
    java_version = (java.stderr.strip().splitlines() or ["unknown"])[0]
    import confluent_kafka
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=30).stdout.strip()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", cpu_model),
        ("memory", f"{memory_kb / 1024 / 1024:.1f} GiB"),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("Java", java_version),
        ("Apache Kafka", f"{KAFKA_VERSION} (KRaft combined broker+controller, "
                         f"JVM options {' '.join(KAFKA_JVM_OPTIONS)})"),
        ("Gregor", f"{importlib.metadata.version('gregor')} at commit {commit}"),
        ("librdkafka (confluent-kafka)",
         f"{confluent_kafka.libversion()[0]} (confluent-kafka {confluent_kafka.__version__})"),
        ("load average when the run started (1, 5, 15 min)", load),
    ]


def measurement_notes(sizes: Sizes) -> list[str]:
    described = sizes.describe()
    return [
        "Every session starts a fresh broker through `compat.brokers.start_broker` (free "
        "loopback port, empty data dir, the dev settings of compat/SCENARIOS.md) and stops "
        "it by PID after the last workload.",
        f"Topics are created up front with {PARTITIONS} partitions (the latency topic: 1).",
        f"produce {described['small']} and {described['large']}: acks=all, linger.ms=5, as "
        "fast as the client takes them. librdkafka: `compat.bench.loads produce` "
        "(idempotence off, the librdkafka default), the clock runs from the first produce() "
        "to the last delivery report. ProducerPerformance: Kafka's Java tool (the Java "
        "client's defaults, so idempotent), its final summary line; MB/s is computed as "
        "records/s x record size / 10^6.",
        "consume: a librdkafka consumer assigns every partition at the earliest offset and "
        "reads back what the librdkafka producer wrote; the clock runs from assign() to the "
        "last message; the bytes read are checked. assign() rather than a group measures "
        "fetch throughput without the time a group join takes (Kafka's ConsumerPerformance "
        "always subscribes with a group, so it is not used).",
        f"end-to-end latency: {described['latency']} (first {sizes.latency_warmup_s:g} s not "
        "counted), 100-byte values carrying their send time, acks=all, linger.ms=0, one "
        "partition; producer and assign() consumer in one process; nearest-rank "
        "percentiles of read time - send time. Twice: with librdkafka's consumer defaults "
        "(fetch.wait.max.ms=500, isolation.level=read_committed), and with "
        "fetch.wait.max.ms=100, which bounds what a long poll that is not woken by new "
        "data costs. The clock starts once the consumer has read a first message.",
        f"concurrent producers: {described['producers']}, one process each, all connected "
        "before a common go; aggregate = all messages / (last delivery - first produce).",
        "startup: compat.brokers starts the broker once (Kafka formats its storage first, "
        "which is not timed) and stops it; the same command line is started again on the "
        "same port and data dir, and the time from spawning it to the first answer to a "
        "Metadata v4 request (a raw socket polled every 5 ms) is reported.",
        f"memory: resident set (VmRSS) of the broker process and its children, MB = 10^6 "
        f"bytes; idle = {SETTLE_S:g} s after start, before any load; peaks = the largest "
        "of samples every 100 ms and the process's VmHWM, read after the produce workloads "
        "and after all workloads. For Kafka it is the JVM process.",
        f"connections: {described['connections']} sockets opened at once from one process, "
        "each sends ApiVersions v0 then Metadata v4 and stays open; reported: how many got "
        "both answers, the time from the first connect to the last answer, and whether a "
        "librdkafka producer still gets a message acknowledged (acks=all) while all of them "
        "are open.",
        "Load generators and the broker share the machine's CPUs (no pinning).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compat.bench",
        description="Benchmark Gregor against Apache Kafka, rounds interleaved; prints the "
                    "medians and the ratio Gregor / Kafka.")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of (Gregor, Kafka) sessions (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (default 1 round)")
    parser.add_argument("--profile", action="store_true",
                        help="after the rounds, one more Gregor session (not measured) with "
                             "py-spy recording each workload; the summary goes into the "
                             "report")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"write {DOCS_PATH.relative_to(REPO_ROOT)}")
    parser.add_argument("--docs-path", type=Path, default=None,
                        help="with --write-docs: write this file instead")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.docs_path is not None and not args.write_docs:
        parser.error("--docs-path needs --write-docs")
    docs_path = (args.docs_path or DOCS_PATH).resolve()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    command_line = "python -m compat.bench" + (" --quick" if args.quick else "") \
        + (f" --rounds {args.rounds}" if args.rounds is not None else "") \
        + (" --profile" if args.profile else "") \
        + (" --write-docs" if args.write_docs else "") \
        + (f" --docs-path {args.docs_path}" if args.docs_path is not None else "")

    signal.signal(signal.SIGTERM, _interrupted)
    try:
        kafka_classpath()  # fetch Kafka's jars once, before any clock runs
        if args.profile:
            profile.py_spy_path()  # fail now, not after the rounds
    except (BrokerError, profile.ProfileFailed) as exc:
        print(f"compat.bench: {exc}", file=sys.stderr)
        return 1
    machine = machine_description()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    processes = Processes()
    commands: dict[str, str] = {}
    work_dir = Path(tempfile.mkdtemp(prefix="gregor-bench-"))
    started_s = time.monotonic()
    try:
        results, failures = run_rounds(rounds, sizes, work_dir, processes, commands)
        elapsed_min = (time.monotonic() - started_s) / 60  # the measured rounds only
        profiles = (run_profile_session(sizes, work_dir, processes) if args.profile
                    else None)
    except KeyboardInterrupt:
        print("compat.bench: interrupted; stopped every process it started", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        shutil.rmtree(work_dir, ignore_errors=True)

    metrics = report.metrics_for(sizes.describe())
    summary = report.summary_rows(metrics, results)
    print()
    print(report.text_table(report.SUMMARY_HEADER, summary))
    print(report.text_table(report.ROUND_HEADER, report.round_rows(metrics, results)))
    for line in failures:
        print(f"FAILED {line}")
    profile_section = "" if profiles is None else profile.render_section(*profiles)
    if profile_section:
        print()
        print(profile_section)
    print(f"{rounds} round(s) in {elapsed_min:.1f} min")
    if args.write_docs:
        docs_path.write_text(report.render_document(
            summary=report.markdown_table(report.SUMMARY_HEADER, summary),
            rounds=report.markdown_table(report.ROUND_HEADER,
                                         report.round_rows(metrics, results)),
            machine=machine + [("the measured rounds took", f"{elapsed_min:.1f} min")],
            commands=[("whole benchmark", command_line)]
            + [(workload, command) for workload, command in commands.items()],
            notes=measurement_notes(sizes), failures=failures, command_line=command_line,
            date=date, rounds_count=rounds, profiles=profile_section))
        print(f"wrote {docs_path}")
    return 0
