"""compat/kafka_python_suite: the JUnit reading, the expectations, the summary and exit
status, the drop-in modules; no download and no broker (the recipe itself runs in CI)."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from compat import kafka_python_suite as suite
from compat.kafka_python_suite import (ERROR, FAILED, PASSED, SKIPPED, SuiteError, SuiteRun,
                                       CaseOutcome)

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="test.integration.test_admin_integration" name="test_ok"
          file="test/integration/test_admin_integration.py" line="10" time="0.5"/>
<testcase classname="test.integration.test_admin_integration" name="test_bad[gzip]"
          file="test/integration/test_admin_integration.py" line="20" time="1.25">
  <failure message="AssertionError: assert 1 == 2&#10;second line">traceback</failure></testcase>
<testcase classname="test.integration.test_sasl_integration" name="test_admin[PLAIN]"
          file="test/integration/test_sasl_integration.py" line="37" time="0">
  <skipped type="pytest.skip" message="Testing on external Kafka Broker">skip</skipped></testcase>
<testcase classname="test.integration.test_ssl_integration.TestSSLConnection"
          name="test_ssl_handshake" file="test/integration/test_ssl_integration.py" line="26"
          time="0.1">
  <error message="failed on setup with &quot;FileNotFoundError: /kafka&quot;">tb</error></testcase>
</testsuite></testsuites>
"""

EXPECTED = """# comment
test/integration/test_admin_integration.py::test_bad[gzip] Gregor has no such API yet

"""


def test_junit_report_becomes_outcomes_by_node_id(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT)
    assert suite.parse_junit(report) == {
        "test/integration/test_admin_integration.py::test_ok": CaseOutcome(PASSED, "", 0.5),
        "test/integration/test_admin_integration.py::test_bad[gzip]":
            CaseOutcome(FAILED, "AssertionError: assert 1 == 2", 1.25),
        "test/integration/test_sasl_integration.py::test_admin[PLAIN]":
            CaseOutcome(SKIPPED, "Testing on external Kafka Broker", 0.0),
        "test/integration/test_ssl_integration.py::TestSSLConnection::test_ssl_handshake":
            CaseOutcome(ERROR, 'failed on setup with "FileNotFoundError: /kafka"', 0.1),
    }


def test_expected_failures_need_a_reason(tmp_path):
    path = tmp_path / "expected-failures.txt"
    path.write_text(EXPECTED)
    assert suite.read_expected_failures(path) == {
        "test/integration/test_admin_integration.py::test_bad[gzip]": "Gregor has no such API yet"}
    path.write_text("test/integration/test_x.py::test_y\n")
    with pytest.raises(SuiteError, match="test_y has no reason"):
        suite.read_expected_failures(path)


def test_the_committed_expectations_parse_and_name_integration_tests():
    expected = suite.read_expected_failures()
    assert all(node.startswith("test/integration/test_") and "::" in node for node in expected)


def _run(broker: str, **outcomes: str) -> SuiteRun:
    return SuiteRun(broker, {f"t.py::{name}": CaseOutcome(outcome, f"{name} {outcome}")
                             for name, outcome in outcomes.items()}, seconds=3.0)


def test_gregor_alone_fails_only_on_an_unlisted_failure():
    expected = {"t.py::known": "no such API"}
    clean = _run("gregor", a=PASSED, known=FAILED, s=SKIPPED)
    text, status = suite.report([clean], expected, "3.0.12", "4.0", [])
    assert status == 0
    assert "gregor: 1 passed, 1 failed, 0 error, 1 skipped (3 tests) in 3 s" in text
    assert "1 failed as expected-failures.txt says:\n  t.py::known: known failed" in text

    broken = _run("gregor", a=ERROR, known=PASSED)
    text, status = suite.report([broken], expected, "3.0.12", "4.0", [])
    assert status == 1
    assert "FAILED against Gregor, not in expected-failures.txt: t.py::a: error: a error" in text
    assert "now passes against Gregor, remove it from expected-failures.txt: t.py::known" in text


def test_both_lists_what_passes_on_kafka_only_and_fails_if_unexplained():
    gregor = _run("gregor", a=PASSED, known=FAILED, skipped_here=SKIPPED, infer=PASSED)
    kafka = _run("kafka", a=PASSED, known=PASSED, skipped_here=PASSED, infer=FAILED)
    text, status = suite.report([gregor, kafka], {"t.py::known": "no such API"}, "3.0.12",
                                "4.0", [])
    assert status == 1  # skipped_here passes on Kafka, is skipped on Gregor, is not listed
    assert suite.kafka_only_passes(gregor, kafka) == ["t.py::known", "t.py::skipped_here"]
    assert "2 pass against Kafka 4.4.0 but not against Gregor:" in text
    assert "why (expected-failures.txt): no such API" in text
    assert "t.py::skipped_here: skipped against Gregor (skipped_here skipped)\n" \
           "    NOT in expected-failures.txt" in text
    assert "1 pass against Gregor but not against Kafka 4.4.0:\n" \
           "  t.py::infer: failed against Kafka (infer failed)" in text
    explained = {"t.py::known": "no such API", "t.py::skipped_here": "needs ACLs"}
    assert suite.report([gregor, kafka], explained, "3.0.12", "4.0", [])[1] == 0


def test_a_run_that_did_not_finish_fails():
    run = _run("kafka", a=PASSED)
    run.problem = "the suite ran over 1800 s and was killed"
    text, status = suite.report([run], {}, "3.0.12", "4.0", [])
    assert status == 1
    assert text.endswith("in 3 s; NOT COMPLETE: the suite ran over 1800 s and was killed")


def test_drop_ins_are_added_only_where_the_sdist_has_none(tmp_path):
    sdist = tmp_path / "kafka_python-9.9"
    (sdist / "test" / "integration").mkdir(parents=True)
    (sdist / "test" / "testutil.py").write_text("# the sdist's\n")
    (sdist / "test" / "service.py").write_text("# the sdist's own service\n")
    destination = tmp_path / "suite"
    (destination / "stale").mkdir(parents=True)
    assert suite.prepare_suite(sdist, destination) == ["test/__init__.py"]
    assert (destination / "test" / "__init__.py").read_text() == \
        (suite.DROPIN_DIR / "test" / "__init__.py").read_text()
    assert (destination / "test" / "service.py").read_text() == "# the sdist's own service\n"
    assert not (destination / "stale").exists()
    assert not (sdist / "test" / "__init__.py").exists()


def test_gregor_protocol_level_is_a_release_kafka_python_knows():
    from kafka.protocol.broker_version_data import BROKER_API_VERSIONS
    level = suite.gregor_protocol_level()
    assert tuple(map(int, level.split("."))) in BROKER_API_VERSIONS


def test_each_broker_gets_the_suites_settings():
    gregor, kafka = suite.broker_settings("gregor"), suite.broker_settings("kafka")
    for settings in (gregor, kafka):
        assert settings["num.partitions"] == "4"
        assert settings["group.min.session.timeout.ms"] == "1000"
        assert settings["node.id"] == "0"
    assert gregor["listeners"] == gregor["advertised.listeners"]
    assert gregor["listeners"].startswith("PLAINTEXT://127.0.0.1:")
    assert "authorizer.class.name" in kafka and "authorizer.class.name" not in gregor


# -- the drop-in test/service.py ---------------------------------------------------------

@pytest.fixture
def service_module():
    spec = importlib.util.spec_from_file_location(
        "dropin_service", suite.DROPIN_DIR / "test" / "service.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spawned_service_waits_for_a_line_and_stops_by_pid(service_module):
    script = ("import sys, time\n"
              "print('starting', flush=True)\n"
              "print('[KafkaRaftServer nodeId=0] Kafka Server started', flush=True)\n"
              "time.sleep(60)\n")
    service = service_module.SpawnedService([sys.executable, "-c", script], env=None)
    service.start()
    process = service.process
    try:
        assert service.wait_for(r"\[KafkaRaftServer nodeId=0\] Kafka Server started", timeout=10)
        assert not service.wait_for(r"never printed", timeout=0.2)
    finally:
        service.stop()
    assert process.returncode is not None
    assert service.process is None


def test_spawned_service_gives_up_when_the_process_exits(service_module):
    service = service_module.SpawnedService([sys.executable, "-c", "print('bye')"])
    service.start()
    try:
        assert not service.wait_for(r"binding to port", timeout=10)  # returns at exit
        assert service.wait_for(r"^bye$", timeout=1)
    finally:
        service.stop()


def test_external_service_keeps_its_address(service_module):
    service = service_module.ExternalService("127.0.0.1", 9092)
    assert (service.host, service.port) == ("127.0.0.1", 9092)
    service.dump_logs()


def test_the_dropins_are_our_own_modules():
    names = sorted(path.relative_to(suite.DROPIN_DIR).as_posix()
                   for path in suite.DROPIN_DIR.rglob("*.py"))
    assert names == ["test/__init__.py", "test/service.py"]
    assert all(isinstance(reason, str) and reason for reason in suite.IGNORED.values())
    assert Path(suite.EXPECTED_FAILURES_PATH).exists()


# -- a run against a real Gregor, with a stand-in suite ----------------------------------

FAKE_SUITE = '''
import os
import time

import pytest


def test_points_at_the_broker():
    assert os.environ["KAFKA_URI"].startswith("PLAINTEXT://127.0.0.1:")
    assert os.environ["KAFKA_VERSION"] == "4.0"
    assert os.path.isdir(os.environ["KAFKA_ROOT"])


def test_fails():
    assert 1 == 2


@pytest.mark.skip(reason="not here")
def test_skipped():
    pass


def test_hangs_when_asked():
    if os.path.exists(os.path.join(os.path.dirname(__file__), "hang")):
        time.sleep(60)
'''


def _fake_suite(tmp_path: Path) -> Path:
    integration = tmp_path / "suite" / "test" / "integration"
    integration.mkdir(parents=True)
    (integration / "test_fake.py").write_text(FAKE_SUITE)
    return tmp_path / "suite"


def test_a_run_reports_every_test_and_stops_the_broker(tmp_path):
    run = suite.run_suite("gregor", _fake_suite(tmp_path), tmp_path / "work", "4.0",
                          log=lambda line: None)
    assert run.problem is None
    assert {node.rsplit("::", 1)[1]: test.outcome for node, test in run.tests.items()} == {
        "test_points_at_the_broker": PASSED, "test_fails": FAILED, "test_skipped": SKIPPED,
        "test_hangs_when_asked": PASSED}
    assert not (tmp_path / "work" / "gregor" / "broker" / "broker.json").exists()
    assert (tmp_path / "work" / "gregor" / "outcomes.json").exists()


def test_a_run_over_its_time_is_killed_and_fails(tmp_path):
    suite_dir = _fake_suite(tmp_path)
    (suite_dir / "test" / "integration" / "hang").write_text("")
    started = time.monotonic()
    run = suite.run_suite("gregor", suite_dir, tmp_path / "work", "4.0", timeout_s=5,
                          log=lambda line: None)
    assert time.monotonic() - started < 40
    assert run.problem == "the suite ran over 5 s and was killed"
    assert not (tmp_path / "work" / "gregor" / "broker" / "broker.json").exists()
    assert suite.report([run], {}, "3.0.12", "4.0", [])[1] == 1
