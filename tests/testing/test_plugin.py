"""The plugin as a user's test suite meets it: installed with Gregor (entry point
pytest11), configured from the ini file, the command line and markers, scoped as asked;
and what 100 tests with a fresh broker each cost."""
from __future__ import annotations

import re
import time
from pathlib import Path

pytest_plugins = ["pytester"]

PARTITIONS_TEST = """
from kafka import KafkaProducer

def test_partitions(gregor_broker):
    producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap)
    try:
        for _ in range(100):  # auto-created on first use, with num.partitions
            partitions = producer.partitions_for("auto-created")
            if partitions:
                break
        print("PARTITIONS", len(partitions))
    finally:
        producer.close()
"""


def _partitions_seen(result) -> list[str]:
    return re.findall(r"PARTITIONS (\d+)", "\n".join(result.outlines))


def test_settings_come_from_the_ini_file_then_the_command_line_then_the_marker(pytester):
    pytester.makeini("[pytest]\ngregor_settings =\n    num.partitions=4\n")
    pytester.makepyfile(test_settings=PARTITIONS_TEST)
    from_ini = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    from_ini.assert_outcomes(passed=1)
    assert _partitions_seen(from_ini) == ["4"]
    from_command_line = pytester.runpytest_subprocess("-s", "--gregor-set", "num.partitions=5")
    from_command_line.assert_outcomes(passed=1)
    assert _partitions_seen(from_command_line) == ["5"]
    pytester.makepyfile(test_settings="import pytest\n" + PARTITIONS_TEST.replace(
        "def test_partitions", '@pytest.mark.gregor(settings={"num.partitions": "6"})\n'
                               "def test_partitions"))
    from_marker = pytester.runpytest_subprocess("-s", "--gregor-set", "num.partitions=5")
    from_marker.assert_outcomes(passed=1)
    assert _partitions_seen(from_marker) == ["6"]


def test_a_bad_setting_is_a_usage_error(pytester):
    pytester.makepyfile(test_nothing="def test_nothing(gregor_broker):\n    pass\n")
    result = pytester.runpytest_subprocess("--gregor-set", "no-equals-sign")
    assert result.ret == 4  # pytest's usage error
    result.stderr.fnmatch_lines(["*--gregor-set: expected KEY=VALUE, got 'no-equals-sign'*"])


def test_a_module_scoped_broker_is_shared_by_the_module(pytester):
    pytester.makeini("[pytest]\ngregor_broker_scope = module\n")
    pytester.makepyfile(test_scope="""
PIDS = []

def test_one(gregor_broker):
    PIDS.append(gregor_broker.pid)

def test_two(gregor_broker):
    PIDS.append(gregor_broker.pid)
    assert PIDS[0] == PIDS[1]
""")
    pytester.runpytest_subprocess().assert_outcomes(passed=2)


def test_a_hundred_tests_with_a_fresh_broker_each(pytester, report_figures):
    """The issue's figure: 100 function-scoped brokers, each started, used (a Metadata
    round trip) and stopped. Printed, not asserted: this machine is shared."""
    pytester.makepyfile(test_many="""
import pytest
from kafka import KafkaAdminClient

@pytest.mark.parametrize("number", range(100))
def test_fresh(gregor_broker, number):
    print("READY", gregor_broker.process.ready_after_s)
    admin = KafkaAdminClient(bootstrap_servers=gregor_broker.bootstrap)
    try:
        assert admin.list_topics() == []
    finally:
        admin.close()
""")
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    elapsed_s = time.monotonic() - started
    result.assert_outcomes(passed=100)
    ready_s = sorted(float(value) for value in
                     re.findall(r"READY ([0-9.]+)", "\n".join(result.outlines)))
    assert len(ready_s) == 100
    report_figures(f"100 tests with a fresh gregor_broker each: {elapsed_s:.1f} s in total "
                   f"({elapsed_s * 10:.0f} ms per test, pytest start-up included); broker "
                   f"ready after {ready_s[50]:.2f} s median, {ready_s[-1]:.2f} s max")


def test_docs_show_the_examples_that_run():
    """docs/testing.md shows each example file whole, as tests/testing/examples has it."""
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "testing.md").read_text()
    for example in sorted((root / "tests" / "testing" / "examples").glob("test_*.py")):
        assert f"```python\n{example.read_text()}```" in docs, example.name
