"""compat/matrix.py with fake client runners (bash scripts) and a fake broker process."""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from compat import matrix

GOOD = r"""#!/usr/bin/env bash
if [[ $1 == --list ]]; then printf 'metadata\nproduce_consume\ncross_produce\ncross_consume\n'; exit 0; fi
if [[ $1 == --version ]]; then echo "good 1.0"; exit 0; fi
scenario=$4; topic=$6
case $scenario in
  metadata) echo "noise"; exit 0;;
  produce_consume) echo "first line" >&2; echo "partition 0: got 3, expected 4" >&2; exit 1;;
  cross_produce) touch "$MARKERS/$topic"; exit 0;;
  cross_consume) [[ -e $MARKERS/$topic && $COMPAT_PRODUCER == good ]] && exit 0
                 echo "no data from $COMPAT_PRODUCER" >&2; exit 1;;
esac
exit 2
"""

ODD = r"""#!/usr/bin/env bash
if [[ $1 == --list ]]; then printf 'metadata\nconsumer_group\n'; exit 0; fi
case $4 in
  metadata) echo "segfault-ish" >&2; exit 3;;
  consumer_group) [[ $2 == *:91* ]] || exit 0  # fails against gregor (ports 91xx)
                  echo "no coordinator" >&2; exit 1;;
esac
exit 2
"""

SLOW = r"""#!/usr/bin/env bash
if [[ $1 == --list ]]; then echo metadata; exit 0; fi
sleep 300 &
echo $! > "$MARKERS/child.pid"
sleep 300
"""

KILLER = r"""#!/usr/bin/env bash
if [[ $1 == --list ]]; then printf 'metadata\nacks\n'; exit 0; fi
if [[ $4 == metadata ]]; then kill -9 "$(cat "$MARKERS/broker.pid")"; sleep 0.2; fi
exit 0
"""


def write_runner(clients_dir: Path, name: str, script: str) -> None:
    directory = clients_dir / name
    directory.mkdir(parents=True)
    (directory / "run").write_text(script)
    (directory / "run").chmod(0o755)


@dataclass
class FakeBroker:
    """A stand-in broker: a real `sleep` process, so liveness checks and stop() by PID work."""
    name: str
    bootstrap: str
    process: subprocess.Popen
    directory: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def fake_brokers(tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("MARKERS", str(markers))
    started: list[FakeBroker] = []

    def start(name: str, directory: Path) -> FakeBroker:
        process = subprocess.Popen(["sleep", "600"])
        (markers / "broker.pid").write_text(str(process.pid))
        base_port = 9100 if name == "gregor" else 9000
        directory.mkdir(parents=True)
        broker = FakeBroker(name, f"127.0.0.1:{base_port + len(started)}", process, directory)
        started.append(broker)
        return broker

    yield start, started
    for broker in started:
        broker.stop()


def test_discover_lists_each_runner(tmp_path):
    write_runner(tmp_path, "good", GOOD)
    write_runner(tmp_path, "odd", ODD)
    (tmp_path / "odd" / "topics").write_text("# comment\nmetadata 3\n")
    (tmp_path / "not-a-runner").mkdir()
    runners = matrix.discover_runners(tmp_path)
    assert [(r.name, sorted(r.scenarios), r.list_error, r.topics) for r in runners] == [
        ("good", ["cross_consume", "cross_produce", "metadata", "produce_consume"], None, {}),
        ("odd", ["consumer_group", "metadata"], None, {"metadata": 3})]
    with pytest.raises(SystemExit, match="no runner for nope"):
        matrix.discover_runners(tmp_path, only=["good", "nope"])


def test_a_runner_whose_list_fails_fails_every_cell(tmp_path, fake_brokers):
    start, _ = fake_brokers
    write_runner(tmp_path, "broken", "#!/usr/bin/env bash\necho 'cannot load' >&2\nexit 1\n")
    (runner,) = matrix.discover_runners(tmp_path)
    assert runner.list_error == "--list exited 1: cannot load"
    result = matrix.run_broker("gregor", [runner], ["metadata"], tmp_path / "work", start)
    assert result.cells == {("metadata", "broken"): matrix.Outcome("FAIL",
                                                                   "--list exited 1: cannot load")}


def test_timeout_kills_the_whole_process_group(tmp_path, fake_brokers):
    write_runner(tmp_path, "slow", SLOW)
    (runner,) = matrix.discover_runners(tmp_path)
    started_s = time.monotonic()
    outcome = matrix.run_scenario(runner, "127.0.0.1:1", "metadata", "t", tmp_path / "log",
                                  timeout_s=1.0)
    assert (outcome.status, outcome.reason) == ("FAIL", "timeout after 1 s")
    assert time.monotonic() - started_s < 10
    child_pid = int((Path(os.environ["MARKERS"]) / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while matrix._alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not matrix._alive(child_pid), "the runner's child outlived the timeout"


def test_a_broker_that_dies_is_restarted_and_the_run_fails(tmp_path, fake_brokers):
    start, started = fake_brokers
    write_runner(tmp_path, "killer", KILLER)
    runners = matrix.discover_runners(tmp_path)
    result = matrix.run_broker("gregor", runners, ["metadata", "acks"], tmp_path / "work", start)
    assert [(key, outcome.status, outcome.reason) for key, outcome in result.cells.items()] == [
        (("metadata", "killer"), "FAIL", "gregor died during the run"),
        (("acks", "killer"), "PASS", "")]
    assert len(started) == 2
    assert all(broker.process.poll() is not None for broker in started), "left running"
    assert result.notes[-1] == "gregor was restarted 1 time(s)"
    assert result.notes[0].startswith("gregor died during killer metadata; restarted")


def test_a_broker_that_will_not_start_is_tried_once(tmp_path):
    attempts = []

    def start(name: str, directory: Path):
        attempts.append(name)
        raise RuntimeError("kafka answered no Metadata within 90 s\nlast log line: bind failed")

    write_runner(tmp_path, "good", GOOD)
    result = matrix.run_broker("kafka", matrix.discover_runners(tmp_path),
                               ["metadata", "produce_consume"], tmp_path / "work", start)
    assert attempts == ["kafka"]
    assert {key: (o.status, o.reason) for key, o in result.cells.items()} == {
        ("metadata", "good"): ("FAIL", "kafka did not start: last log line: bind failed"),
        ("produce_consume", "good"): ("FAIL", "kafka did not start: last log line: bind failed")}


def test_precreated_topics_come_from_the_topics_file(tmp_path, fake_brokers):
    start, _ = fake_brokers
    write_runner(tmp_path, "odd", ODD)
    (tmp_path / "odd" / "topics").write_text("consumer_group 6\n")
    created = []
    result = matrix.run_broker("kafka", matrix.discover_runners(tmp_path),
                               ["metadata", "consumer_group"], tmp_path / "work", start,
                               precreate=lambda *args: created.append(args))
    assert created == [("127.0.0.1:9000", "consumer-group-odd-kafka", 6)]
    assert result.cells[("consumer_group", "odd")].status == "PASS"


def test_main_prints_the_matrices_and_fails_on_a_regression(tmp_path, fake_brokers, capsys,
                                                            monkeypatch):
    start, _ = fake_brokers
    monkeypatch.setattr(matrix, "NOT_YET", {"consumer_group": 5})  # a scenario waiting on #5
    clients = tmp_path / "clients"
    write_runner(clients, "good", GOOD)
    write_runner(clients, "odd", ODD)
    expected = tmp_path / "expected-pass.txt"
    expected.write_text("# client scenario\ngood metadata\ngood cross_consume:good\n")
    assert matrix.main(["--broker", "both"], start=start, clients_dir=clients,
                       expected_pass_path=expected) == 0
    output = capsys.readouterr().out
    gregor, kafka = output.split("== kafka ==")
    assert gregor.split("\n\n")[1].splitlines() == [
        "scenario                 good  odd",
        "metadata                 PASS  FAIL",
        "topic_admin              n/a   n/a",
        "produce_consume          FAIL  n/a",
        "compression              n/a   n/a",
        "acks                     n/a   n/a",
        "idempotent               n/a   n/a",
        "list_offsets             n/a   n/a",
        "delete_records           n/a   n/a",
        "large_messages           n/a   n/a",
        "unknown_topic            n/a   n/a",
        "consumer_group           n/a   NOT YET (#5)",
        "consumer_group_848       n/a   n/a",
        "commits_rebalance        n/a   n/a",
        "transactions             n/a   n/a",
        "cross_produce            PASS  n/a",
        "cross_consume from good  PASS  n/a",
    ]
    assert "  good produce_consume: partition 0: got 3, expected 4" in gregor
    assert "  odd metadata: exit 3: segfault-ish" in gregor
    assert "consumer_group           n/a   PASS" in kafka
    # gregor: 3 PASS, 2 FAIL; kafka: 4 PASS, 2 FAIL. NOT YET and n/a count neither way.
    assert output.splitlines()[-1] == "7 passed, 4 failed"

    expected.write_text("good produce_consume\n")

    def start_logging(name: str, directory: Path) -> FakeBroker:
        """A broker whose log names the topic; a partition's segment (*.log) is no log."""
        broker = start(name, directory)
        (directory / "data").mkdir()
        (directory / "data" / "00000000000000000000.log").write_text("produce-consume-good\n")
        (directory / "gregor.log").write_text(
            "10:00 INFO broker.replication: produce-consume-good-gregor-retry-0: leader\n"
            "10:01 INFO broker.server: unrelated\n10:02 WARNING broker.cluster: slow\n")
        return broker

    assert matrix.main(["--broker", "gregor", "--scenarios", "produce_consume"],
                       start=start_logging, clients_dir=clients,
                       expected_pass_path=expected) == 1
    output = capsys.readouterr().out
    regression = output[output.index("REGRESSION"):].splitlines()
    assert regression == [
        "REGRESSION: good produce_consume passed before (compat/expected-pass.txt), now: "
        "partition 0: got 3, expected 4",
        # A failed cell runs once more: the evidence is the retry's.
        "-- good-produce_consume-produce-consume-good-gregor-retry.log (last 20 lines)",
        "first line", "partition 0: got 3, expected 4",
        "-- gregor.log (lines naming produce-consume-good-gregor-retry or warning, last 20)",
        "10:00 INFO broker.replication: produce-consume-good-gregor-retry-0: leader",
        "10:02 WARNING broker.cluster: slow",
        "0 passed, 1 failed"]
    assert output.splitlines()[-1] == "0 passed, 1 failed"


def test_write_docs_has_the_tables_versions_and_command(tmp_path, fake_brokers, capsys):
    start, _ = fake_brokers
    clients = tmp_path / "clients"
    write_runner(clients, "good", GOOD)
    docs = tmp_path / "compatibility.md"
    assert matrix.main(["--broker", "gregor", "--scenarios", "metadata,produce_consume",
                        "--logs", str(tmp_path / "logs"), "--write-docs"], start=start,
                       clients_dir=clients, expected_pass_path=tmp_path / "none",
                       docs_path=docs) == 0
    text = docs.read_text()
    assert "Generated by `python -m compat.matrix --broker gregor --scenarios " \
           "metadata,produce_consume --write-docs` on " in text
    assert "- good: good 1.0\n" in text
    assert "| scenario | good |\n|---|---|\n| metadata | PASS |\n| produce_consume | FAIL |\n" \
        in text
    assert "- good produce_consume: partition 0: got 3, expected 4\n" in text
    assert text.endswith("\n1 passed, 1 failed\n")
    assert (tmp_path / "logs" / "gregor-logs").is_dir()


def test_cross_consume_is_skipped_when_the_producer_failed(tmp_path, fake_brokers):
    start, _ = fake_brokers
    write_runner(tmp_path, "good", GOOD.replace('touch "$MARKERS/$topic"; exit 0',
                                                 'echo "refused" >&2; exit 1'))
    result = matrix.run_broker("gregor", matrix.discover_runners(tmp_path),
                               ["cross_produce", "cross_consume"], tmp_path / "work", start)
    produced = result.cells[("cross_produce", "good")]
    assert result.cells == {("cross_produce", "good"): matrix.Outcome(
        "FAIL", "refused", seconds=produced.seconds,
        detail="-- good-cross_produce-cross-good-gregor.log (last 20 lines)\nrefused")}
    assert result.cross == {("good", "good"): matrix.Outcome("skipped")}
    assert matrix.count([result]) == (0, 1)


def test_runners_use_their_own_python(tmp_path):
    # The contract's exit code for an unknown scenario is 2 (n/a), for every Python runner.
    for client in ("kafka-python", "confluent-kafka", "aiokafka", "kcat"):
        run = matrix.CLIENTS_DIR / client / "run"
        answer = subprocess.run([str(run), "--bootstrap", "127.0.0.1:1", "--scenario",
                                 "delete_records" if client == "kcat" else "no_such",
                                 "--topic", "t"], capture_output=True, text=True, timeout=60)
        assert answer.returncode == 2, (client, answer.stderr)


FLAKY = r"""#!/usr/bin/env bash
if [[ $1 == --list ]]; then echo metadata; exit 0; fi
if [[ ! -e $MARKERS/flaked ]]; then touch "$MARKERS/flaked"; echo "stalled once" >&2; exit 1; fi
exit 0
"""


def test_a_cell_that_fails_once_passes_on_its_retry_with_a_note(tmp_path, fake_brokers):
    start, started = fake_brokers
    write_runner(tmp_path, "flaky", FLAKY)
    result = matrix.run_broker("gregor", matrix.discover_runners(tmp_path), ["metadata"],
                               tmp_path / "work", start)
    assert result.cells[("metadata", "flaky")].status == "PASS"
    assert result.notes == ["flaky metadata failed, then passed on its retry; the failure: "
                            "stalled once"]
    assert len(started) == 1  # the broker kept running: no restart for a retry
