"""Start-up time: from spawning `python -m broker serve` to a Metadata answer.

The requirement is under 1 second. The machine is shared (2 cores, other test runs), so
the broker is started up to 3 times on fresh data dirs and the fastest start must
be under 1 s; every figure is printed."""
from __future__ import annotations

import socket
import time

from . import raw_kafka

REQUIRED_S = 1.0
ATTEMPTS = 3
POLL_INTERVAL_S = 0.005


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seconds_to_metadata_answer(gregor_factory, attempt: int) -> float:
    port = free_loopback_port()
    broker = gregor_factory(name=f"startup-{attempt}", port=port, wait_ready=False)
    deadline = broker.started_at_s + 10.0
    while time.monotonic() < deadline:
        assert broker.running, f"broker exited:\n{broker.current_log_text()}"
        try:
            with raw_kafka.connect("127.0.0.1", port, timeout_s=2.0) as sock:
                sock.sendall(raw_kafka.metadata_v1_request(7))
                response = raw_kafka.receive_frame(sock)
        except (ConnectionRefusedError, ConnectionResetError, ConnectionError, socket.timeout):
            time.sleep(POLL_INTERVAL_S)
            continue
        elapsed_s = time.monotonic() - broker.started_at_s
        correlation_id, brokers = raw_kafka.parse_metadata_v1_brokers(response)
        assert correlation_id == 7
        assert [(host, broker_port) for _, host, broker_port in brokers] == [("127.0.0.1", port)]
        broker.wait_until_ready()
        assert broker.stop() == 0
        return elapsed_s
    raise AssertionError(f"no Metadata answer within 10 s:\n{broker.current_log_text()}")


def test_metadata_answer_within_one_second_of_process_start(gregor_factory):
    figures_s = []
    for attempt in range(ATTEMPTS):
        figures_s.append(seconds_to_metadata_answer(gregor_factory, attempt))
        if figures_s[-1] < REQUIRED_S:
            break
    print(f"process start -> Metadata answer: {', '.join(f'{s:.3f} s' for s in figures_s)}")
    assert min(figures_s) < REQUIRED_S, f"fastest start took {min(figures_s):.3f} s"
