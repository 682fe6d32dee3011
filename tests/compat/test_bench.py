"""The benchmark's arithmetic and report code (compat/bench): no brokers, no timing."""
import struct

import pytest

from compat.bench import report
from compat.bench.loads import LoadFailed, check_response, percentile, request_frame
from compat.bench.workloads import FULL_SIZES, QUICK_SIZES

# What ProducerPerformance 4.4.0 printed against a broker: progress lines, then the summary.
PRODUCER_PERFORMANCE_OUTPUT = """\
761903 records sent, 148925.5 records/sec (14.20 MB/sec), 469.4 ms avg latency, 949.0 ms max latency.
1000000 records sent, 179340.028694 records/sec (17.10 MB/sec), 477.36 ms avg latency, 949.00 ms max latency, 494 ms 50th, 679 ms 95th, 768 ms 99th, 844 ms 99.9th.
"""


def test_median_skips_failed_rounds():
    assert report.median([3.0, None, 1.0]) == 2.0
    assert report.median([5.0, 1.0, 4.0]) == 4.0
    assert report.median([None, None]) is None
    assert report.median([]) is None


def test_ratio_is_gregor_over_kafka_and_missing_without_both():
    assert report.ratio(50.0, 200.0) == 0.25
    assert report.ratio(None, 200.0) is None
    assert report.ratio(50.0, None) is None
    assert report.ratio(50.0, 0.0) is None


def test_targets_of_each_kind():
    at_least = report.Target("ratio_at_least", 0.8)
    assert (at_least.met(80.0, 100.0), at_least.met(79.0, 100.0), at_least.met(None, 1.0)) \
        == (True, False, None)
    at_most = report.Target("ratio_at_most", 1.5)
    assert (at_most.met(15.0, 10.0), at_most.met(15.1, 10.0)) == (True, False)
    gregor_at_most = report.Target("gregor_at_most", 0.3)
    assert (gregor_at_most.met(0.3, None), gregor_at_most.met(0.31, 0.01)) == (True, False)
    gregor_at_least = report.Target("gregor_at_least", 1000)
    assert (gregor_at_least.met(1000, None), gregor_at_least.met(999, 1000)) == (True, False)
    assert [target.describe() for target in (at_least, at_most, gregor_at_most,
                                             gregor_at_least)] \
        == [">= 0.8x", "<= 1.5x", "<= 0.3", ">= 1000"]


def test_values_are_formatted_by_unit():
    assert report.format_value(1234567.4, "msgs/s") == "1,234,567"
    assert report.format_value(12.345, "MB/s") == "12.3"
    assert report.format_value(0.4567, "ms") == "0.5"
    assert report.format_value(0.3349, "s") == "0.33"
    assert report.format_value(349.6, "MB") == "350"
    assert report.format_value(1.0, "yes/no") == "yes"
    assert report.format_value(0.0, "yes/no") == "no"
    assert report.format_value(1000.0, "count") == "1,000"
    assert report.format_value(None, "MB/s") == "—"
    assert report.format_ratio(0.8349) == "0.83x"
    assert report.format_ratio(None) == "—"


def test_megabytes_are_ten_to_the_sixth_bytes():
    assert report.megabytes_per_s(100_000_000, 4.0) == 25.0


def test_summary_rows_hold_medians_ratio_and_target():
    metrics = [
        report.Metric("produce", "produce", "msgs/s", "msgs/s", report.Target("ratio_at_least", 0.8)),
        report.Metric("startup_s", "startup", "s", "s", report.Target("gregor_at_most", 0.3)),
        report.Metric("rss", "memory", "MB", "MB"),
    ]
    results = {
        "gregor": {"produce": [90_000.0, None, 70_000.0], "startup_s": [0.4, 0.5, 0.6],
                   "rss": [None, None, None]},
        "kafka": {"produce": [100_000.0, 100_000.0, 100_000.0], "startup_s": [4.0, 5.0, 6.0],
                  "rss": [300.0, 310.0, 320.0]},
    }
    assert report.summary_rows(metrics, results) == [
        ["produce", "msgs/s", "80,000", "100,000", "0.80x", ">= 0.8x", "yes"],
        ["startup", "s", "0.50", "5.00", "0.10x", "<= 0.3", "NO"],
        ["memory", "MB", "—", "310", "—", "", ""],
    ]
    assert report.round_rows(metrics, results) == [
        ["produce", "msgs/s", "90,000 / — / 70,000", "100,000 / 100,000 / 100,000"],
        ["startup", "s", "0.40 / 0.50 / 0.60", "4.00 / 5.00 / 6.00"],
        ["memory", "MB", "— / — / —", "300 / 310 / 320"],
    ]


def test_every_metric_key_is_unique_and_targets_follow_issue_4():
    metrics = report.metrics_for(FULL_SIZES.describe())
    keys = [metric.key for metric in metrics]
    assert len(keys) == len(set(keys))
    targets = {metric.key: metric.target for metric in metrics if metric.target is not None}
    assert targets == {
        "produce_small_librdkafka_msgs_s": report.Target("ratio_at_least", 0.8),
        "produce_large_librdkafka_mb_s": report.Target("ratio_at_least", 0.8),
        "consume_small_mb_s": report.Target("ratio_at_least", 0.8),
        "consume_large_mb_s": report.Target("ratio_at_least", 0.8),
        "latency_default_p99_ms": report.Target("ratio_at_most", 1.5),
        "latency_wait_100_p99_ms": report.Target("ratio_at_most", 1.5),
        "concurrent_producers_msgs_s": report.Target("ratio_at_least", 0.8),
        "startup_s": report.Target("gregor_at_most", 0.3),
        "rss_idle_mb": report.Target("gregor_at_most", 60),
        "rss_peak_produce_mb": report.Target("gregor_at_most", 250),
        "connections_answered": report.Target("gregor_at_least", 1000),
        "connections_normal_client_ok": report.Target("gregor_at_least", 1),
    }
    quick = {metric.key: metric for metric in report.metrics_for(QUICK_SIZES.describe())}
    assert quick["connections_answered"].target == report.Target("gregor_at_least", 200)
    assert quick["produce_small_librdkafka_msgs_s"].workload \
        == "produce 20,000 x 100 B, librdkafka"


def test_sizes_are_described_as_the_tables_show_them():
    assert FULL_SIZES.describe() == {
        "small": "1,000,000 x 100 B",
        "large": "20,000 x 10 KB",
        "latency": "1,000 msg/s x 20 s",
        "producers": "8 producers x 125,000 x 100 B",
        "connections": "1,000",
    }


def test_markdown_and_text_tables():
    header = ["workload", "Gregor"]
    rows = [["produce", "80,000"], ["startup time", "0.50"]]
    assert report.markdown_table(header, rows) == (
        "| workload | Gregor |\n"
        "|---|---|\n"
        "| produce | 80,000 |\n"
        "| startup time | 0.50 |\n")
    assert report.text_table(header, rows) == (
        "workload      Gregor\n"
        "------------  ------\n"
        "produce       80,000\n"
        "startup time  0.50\n")


def test_producer_performance_summary_is_the_line_with_percentiles():
    summary = report.parse_producer_performance(PRODUCER_PERFORMANCE_OUTPUT)
    assert summary == report.ProducerPerformanceSummary(
        records=1_000_000, records_per_s=179340.028694, reported_mib_per_s=17.10,
        average_latency_ms=477.36, max_latency_ms=949.0, p50_ms=494, p95_ms=679, p99_ms=768,
        p99_9_ms=844)


def test_producer_performance_without_summary_is_an_error():
    progress_only = PRODUCER_PERFORMANCE_OUTPUT.splitlines()[0]
    with pytest.raises(ValueError, match="no ProducerPerformance summary line"):
        report.parse_producer_performance(progress_only)


def test_nearest_rank_percentiles():
    values = [float(number) for number in range(1, 101)]
    assert (percentile(values, 50.0), percentile(values, 99.0), percentile(values, 99.9)) \
        == (50.0, 99.0, 100.0)
    assert percentile([7.5], 99.9) == 7.5
    thousand = [float(number) for number in range(1, 1001)]
    assert percentile(thousand, 99.9) == 999.0
    with pytest.raises(ValueError):
        percentile([], 50.0)


def test_request_frame_is_size_then_v1_header_then_body():
    assert request_frame(3, 4, 7, b"\xff\xff\xff\xff\x00") == (
        b"\x00\x00\x00\x14"  # 20 bytes follow
        b"\x00\x03\x00\x04\x00\x00\x00\x07"  # Metadata v4, correlation id 7
        b"\x00\x05bench"  # client id
        b"\xff\xff\xff\xff\x00")  # null topics, no auto-creation


def test_responses_are_checked():
    check_response("api_versions", 4, struct.pack(">ih", 4, 0) + b"rest")
    check_response("metadata", 5, struct.pack(">iii", 5, 0, 1) + b"broker")
    with pytest.raises(LoadFailed, match="correlation id 6, expected 4"):
        check_response("api_versions", 4, struct.pack(">ih", 6, 0))
    with pytest.raises(LoadFailed, match="ApiVersions error code 35"):
        check_response("api_versions", 4, struct.pack(">ih", 4, 35))
    with pytest.raises(LoadFailed, match="Metadata listed 0 brokers"):
        check_response("metadata", 5, struct.pack(">iii", 5, 0, 0))


def test_document_has_every_section():
    document = report.render_document(
        summary="| t |\n", rounds="| r |\n", machine=[("CPUs (nproc)", "2")],
        commands=[("whole benchmark", "python -m compat.bench")], notes=["one note"],
        failures=[], command_line="python -m compat.bench --write-docs",
        date="2026-01-01 00:00 UTC", rounds_count=3)
    assert document.startswith("# Performance: Gregor against Apache Kafka\n\nGenerated by "
                               "`python -m compat.bench --write-docs` on 2026-01-01 00:00 UTC")
    for part in ("3 round(s)", "\n| t |\n", "## Every round\n\n| r |\n",
                 "## Failures\n\n- none\n", "## Machine\n\n- CPUs (nproc): 2\n",
                 "## How each workload is measured\n\n- one note\n",
                 "## Commands\n\nwhole benchmark:\n\n    python -m compat.bench\n"):
        assert part in document
