"""The benchmark's arithmetic and reports: medians, ratios, issue 4's targets, the
ProducerPerformance summary line, the printed table and docs/performance.md. No I/O
besides what the caller passes in and gets back."""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

BROKERS = ("gregor", "kafka")


@dataclass(frozen=True)
class Target:
    """Issue 4's target for one metric. kind: "ratio_at_least" / "ratio_at_most" (Gregor /
    Kafka against `bound`) or "gregor_at_most" / "gregor_at_least" (Gregor's own value)."""

    kind: str
    bound: float

    def describe(self) -> str:
        if self.kind == "ratio_at_least":
            return f">= {self.bound:g}x"
        if self.kind == "ratio_at_most":
            return f"<= {self.bound:g}x"
        if self.kind == "gregor_at_most":
            return f"<= {self.bound:g}"
        return f">= {self.bound:g}"

    def met(self, gregor: float | None, kafka: float | None) -> bool | None:
        """True/False, or None when a needed median is missing."""
        if self.kind.startswith("ratio"):
            value = ratio(gregor, kafka)
        else:
            value = gregor
        if value is None:
            return None
        if self.kind.endswith("at_least"):
            return value >= self.bound
        return value <= self.bound


@dataclass(frozen=True)
class Metric:
    key: str
    workload: str
    label: str  # what is measured, with its unit
    unit: str  # picks the number format: msgs/s, MB/s, ms, s, MB, count, yes/no
    target: Target | None = None


def metrics_for(sizes_text: dict[str, str]) -> list[Metric]:
    """The reported metrics, in table order; `sizes_text` names the workloads' sizes
    (e.g. {"small": "1,000,000 x 100 B", ...}) so a --quick table says what it ran."""
    small, large = sizes_text["small"], sizes_text["large"]
    producers, connections = sizes_text["producers"], sizes_text["connections"]
    latency = sizes_text["latency"]
    return [
        Metric("produce_small_librdkafka_msgs_s", f"produce {small}, librdkafka", "msgs/s", "msgs/s",
               Target("ratio_at_least", 0.8)),
        Metric("produce_small_librdkafka_mb_s", f"produce {small}, librdkafka", "MB/s", "MB/s"),
        Metric("produce_small_java_msgs_s", f"produce {small}, ProducerPerformance", "msgs/s",
               "msgs/s"),
        Metric("produce_small_java_mb_s", f"produce {small}, ProducerPerformance", "MB/s", "MB/s"),
        Metric("produce_large_librdkafka_mb_s", f"produce {large}, librdkafka", "MB/s", "MB/s",
               Target("ratio_at_least", 0.8)),
        Metric("produce_large_java_mb_s", f"produce {large}, ProducerPerformance", "MB/s", "MB/s"),
        Metric("consume_small_msgs_s", f"consume {small} from earliest", "msgs/s", "msgs/s"),
        Metric("consume_small_mb_s", f"consume {small} from earliest", "MB/s", "MB/s",
               Target("ratio_at_least", 0.8)),
        Metric("consume_large_mb_s", f"consume {large} from earliest", "MB/s", "MB/s",
               Target("ratio_at_least", 0.8)),
        *_latency_metrics("default", f"latency {latency}, fetch.wait.max.ms=500 (default)"),
        *_latency_metrics("wait_100", f"latency {latency}, fetch.wait.max.ms=100"),
        Metric("concurrent_producers_msgs_s", f"{producers} at once into one topic",
               "aggregate msgs/s", "msgs/s", Target("ratio_at_least", 0.8)),
        Metric("startup_s", "start to first Metadata answer", "s", "s",
               Target("gregor_at_most", 0.3)),
        Metric("rss_idle_mb", "resident memory", "idle MB", "MB", Target("gregor_at_most", 60)),
        Metric("rss_peak_produce_mb", "resident memory", "peak under the produce load MB", "MB",
               Target("gregor_at_most", 250)),
        Metric("rss_peak_mb", "resident memory", "peak over every workload MB", "MB"),
        Metric("connections_answered", f"{connections} concurrent client connections",
               "answered", "count", Target("gregor_at_least", _leading_number(connections))),
        Metric("connections_s", f"{connections} concurrent client connections",
               "s to answer all", "s"),
        Metric("connections_normal_client_ok", f"{connections} concurrent client connections",
               "a normal client still served", "yes/no", Target("gregor_at_least", 1)),
    ]


def _latency_metrics(variant: str, workload: str) -> list[Metric]:
    return [Metric(f"latency_{variant}_p50_ms", workload, "p50 ms", "ms"),
            Metric(f"latency_{variant}_p99_ms", workload, "p99 ms", "ms",
                   Target("ratio_at_most", 1.5)),
            Metric(f"latency_{variant}_p99_9_ms", workload, "p99.9 ms", "ms")]


def _leading_number(text: str) -> int:
    return int(text.split()[0].replace(",", ""))


def median(values: list[float | None]) -> float | None:
    """The median of the values that were measured (None = that round failed)."""
    measured = [value for value in values if value is not None]
    return statistics.median(measured) if measured else None


def ratio(gregor: float | None, kafka: float | None) -> float | None:
    if gregor is None or kafka is None or kafka == 0:
        return None
    return gregor / kafka


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "msgs/s":
        return f"{value:,.0f}"
    if unit in ("MB/s", "ms"):
        return f"{value:,.1f}"
    if unit == "s":
        return f"{value:.2f}"
    if unit == "MB":
        return f"{value:,.0f}"
    if unit == "yes/no":
        return "yes" if value >= 1 else "no"
    return f"{value:,.0f}"


def format_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def summary_rows(metrics: list[Metric], results: dict[str, dict[str, list[float | None]]]
                 ) -> list[list[str]]:
    """One row per metric: workload, measure, Gregor median, Kafka median, ratio, issue 4's
    target, met. `results[broker][metric key]` holds one value per round."""
    rows = []
    for metric in metrics:
        gregor = median(results["gregor"].get(metric.key, []))
        kafka = median(results["kafka"].get(metric.key, []))
        if metric.target is None:
            target_text = met_text = ""
        else:
            target_text = metric.target.describe()
            met = metric.target.met(gregor, kafka)
            met_text = {True: "yes", False: "NO", None: "—"}[met]
        rows.append([metric.workload, metric.label, format_value(gregor, metric.unit),
                     format_value(kafka, metric.unit), format_ratio(ratio(gregor, kafka)),
                     target_text, met_text])
    return rows


SUMMARY_HEADER = ["workload", "measure", "Gregor", "Kafka", "Gregor / Kafka",
                  "issue 4 target", "met"]


def round_rows(metrics: list[Metric], results: dict[str, dict[str, list[float | None]]]
               ) -> list[list[str]]:
    """Every round's value, so the spread behind each median is visible."""
    rows = []
    for metric in metrics:
        row = [metric.workload, metric.label]
        for broker in BROKERS:
            values = results[broker].get(metric.key, [])
            row.append(" / ".join(format_value(value, metric.unit) for value in values) or "—")
        rows.append(row)
    return rows


ROUND_HEADER = ["workload", "measure", "Gregor, each round", "Kafka, each round"]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """The same table aligned in columns for a terminal."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
             for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


# -- Kafka's ProducerPerformance --------------------------------------------------------

@dataclass(frozen=True)
class ProducerPerformanceSummary:
    records: int
    records_per_s: float
    reported_mib_per_s: float  # the tool's "MB/sec" is 2^20 bytes
    average_latency_ms: float
    max_latency_ms: float
    p50_ms: int
    p95_ms: int
    p99_ms: int
    p99_9_ms: int


_SUMMARY_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def parse_producer_performance(output: str) -> ProducerPerformanceSummary:
    """The final summary line of ProducerPerformance's stdout (the one with percentiles;
    the periodic progress lines have none). Raises ValueError if there is none."""
    matches = _SUMMARY_LINE.findall(output)
    if not matches:
        raise ValueError("no ProducerPerformance summary line in its output")
    fields = matches[-1]
    return ProducerPerformanceSummary(
        records=int(fields[0]), records_per_s=float(fields[1]),
        reported_mib_per_s=float(fields[2]), average_latency_ms=float(fields[3]),
        max_latency_ms=float(fields[4]), p50_ms=int(fields[5]), p95_ms=int(fields[6]),
        p99_ms=int(fields[7]), p99_9_ms=int(fields[8]))


def megabytes_per_s(byte_count: float, seconds: float) -> float:
    """MB/s with MB = 10^6 bytes, the unit of every MB/s in the report."""
    return byte_count / seconds / 1_000_000


# -- docs/performance.md ----------------------------------------------------------------

def render_document(*, summary: str, rounds: str, machine: list[tuple[str, str]],
                    commands: list[tuple[str, str]], notes: list[str], failures: list[str],
                    command_line: str, date: str, rounds_count: int,
                    profiles: str = "") -> str:
    """docs/performance.md; `profiles`, a markdown section, goes after the summary table
    (none if empty)."""
    machine_lines = "\n".join(f"- {name}: {value}" for name, value in machine)
    command_lines = "\n\n".join(f"{what}:\n\n    {command}" for what, command in commands)
    note_lines = "\n".join(f"- {note}" for note in notes)
    failure_lines = ("\n".join(f"- {failure}" for failure in failures)
                     if failures else "- none")
    profile_lines = f"{profiles}\n" if profiles else ""
    return f"""# Performance: Gregor against Apache Kafka

Generated by `{command_line}` on {date}; do not edit by hand, run it again.

Each workload ran against Gregor and against Apache Kafka in the same run, rounds
interleaved (Gregor, Kafka, Gregor, Kafka, ...), {rounds_count} round(s); the table shows
the medians and the ratio Gregor / Kafka. For throughput a ratio above 1 means Gregor is
faster; for latency, time and memory a ratio below 1 means Gregor is faster or smaller.
MB = 10^6 bytes. The targets are those of issue 4.

{summary}
{profile_lines}## Every round

{rounds}
## Failures

{failure_lines}

## Machine

{machine_lines}

## How each workload is measured

{note_lines}

## Commands

{command_lines}
"""
