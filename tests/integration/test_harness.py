"""The GregorProcess harness itself: the other integration tests rely on it."""
from __future__ import annotations

import os

import pytest

from . import raw_kafka


def answers_api_versions(host: str, port: int) -> bool:
    with raw_kafka.connect(host, port) as sock:
        sock.sendall(raw_kafka.api_versions_v0_request(1))
        return raw_kafka.parse_api_versions_v0(raw_kafka.receive_frame(sock))[1] == 0


def test_address_pid_and_data_dir(gregor, tmp_path):
    assert gregor.address == f"127.0.0.1:{gregor.port}" and gregor.port > 0
    assert gregor.host == "127.0.0.1"
    assert gregor.data_dir == tmp_path / "broker" / "data"
    assert gregor.running and os.path.exists(f"/proc/{gregor.pid}")
    assert answers_api_versions(gregor.host, gregor.port)


def test_restart_reuses_the_port_and_data_dir(gregor):
    first_pid, first_port = gregor.pid, gregor.port
    gregor.restart()
    assert (gregor.port, gregor.running) == (first_port, True)
    assert gregor.pid != first_pid
    assert answers_api_versions(gregor.host, gregor.port)
    assert gregor.log_text().count(" ready: listening on ") == 2
    assert gregor.current_log_text().count(" ready: listening on ") == 1


def test_kill_then_restart(gregor):
    killed_pid = gregor.pid
    gregor.kill()
    assert not gregor.running
    assert not os.path.exists(f"/proc/{killed_pid}/exe")
    gregor.restart()
    assert answers_api_versions(gregor.host, gregor.port)


def test_start_failure_shows_stderr(gregor_factory):
    with pytest.raises(Exception) as failure:
        gregor_factory({"num.partitions": "abc"})
    assert type(failure.value).__name__ == "BrokerStartError"
    assert "exited with 2 before it was ready" in str(failure.value)
    assert "gregor: configuration error:" in str(failure.value)
    assert "num.partitions" in str(failure.value)
