"""What the Python client runners (kafka-python, confluent-kafka, aiokafka, kcat) share.

The standard message set of compat/SCENARIOS.md, exact comparison of what was read back
with what was sent, and `run_main`, which turns a runner's scenario functions into the
command line of the contract:

    run --list
    run --bootstrap HOST:PORT --scenario NAME --topic TOPIC

    run --version                    (not in the contract: the matrix shows it in the docs)

Exit 0: PASS; 1: FAIL, the last line of stderr is the reason; 2: not applicable.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

T0_MS = 1_700_000_000_000
VALUE_BYTES = 100
READ_TIMEOUT_S = 60.0  # a scenario waiting for data gives up after this (the matrix allows 120 s)
DELETE_WAIT_S = 30.0  # Kafka deletes topics asynchronously


class ScenarioFailed(Exception):
    """The broker did something the scenario does not accept; str() is the reason."""


class NotApplicable(Exception):
    """The client has no API for this scenario (exit 2)."""


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(frozen=True)
class Record:
    """A message as a consumer saw it, with where it was stored."""
    partition: int
    offset: int
    message: Message


def standard_value(index: int) -> bytes:
    """`value-{i}-` padded with `x` to VALUE_BYTES bytes."""
    prefix = f"value-{index}-".encode("ascii")
    return prefix + b"x" * (VALUE_BYTES - len(prefix))


def standard_message(index: int, client: str, timestamp_ms: int | None = None) -> Message:
    return Message(key=f"key-{index}".encode("ascii"), value=standard_value(index),
                   headers=(("index", str(index).encode("ascii")),
                            ("client", client.encode("ascii"))),
                   timestamp_ms=T0_MS + index if timestamp_ms is None else timestamp_ms)


def standard_messages(client: str, count: int, start: int = 0) -> list[Message]:
    return [standard_message(index, client) for index in range(start, start + count)]


def fail(reason: str) -> None:
    raise ScenarioFailed(reason)


def expect(condition: bool, reason: str) -> None:
    if not condition:
        raise ScenarioFailed(reason)


def expect_equal(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise ScenarioFailed(f"{what}: got {_short(actual)}, expected {_short(expected)}")


def _short(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def expect_messages(actual: list[Message], expected: list[Message], what: str) -> None:
    """Exact equality of two message lists; the reason names the first difference."""
    for position, (got, wanted) in enumerate(zip(actual, expected)):
        if got != wanted:
            for field in ("key", "value", "headers", "timestamp_ms"):
                if getattr(got, field) != getattr(wanted, field):
                    fail(f"{what}: message #{position} {field} is {_short(getattr(got, field))}, "
                         f"expected {_short(getattr(wanted, field))}")
    expect_equal(len(actual), len(expected), f"{what}: number of messages")


def expect_partition_log(records: list[Record], partition: int, expected: list[Message],
                         what: str, first_offset: int = 0) -> None:
    """The records read from one partition are exactly `expected`, in order, at contiguous
    offsets from first_offset."""
    mine = [record for record in records if record.partition == partition]
    expect_messages([record.message for record in mine], expected, f"{what} partition {partition}")
    expect_equal([record.offset for record in mine],
                 list(range(first_offset, first_offset + len(expected))),
                 f"{what} partition {partition} offsets")


def expect_placed(records: list[Record], placed: dict[int, tuple[int, int]],
                  sent: list[Message], what: str) -> None:
    """Every sent message (by index in `sent`) was read back at the (partition, offset) its
    produce acknowledged, once, and each partition's offsets run contiguously from 0 in
    send order (keyed: the partitioner chose the partition)."""
    by_place = {(record.partition, record.offset): record.message for record in records}
    expect_equal(len(by_place), len(records), f"{what}: records read twice")
    for index, place in placed.items():
        expect(place in by_place, f"{what}: message {index} acknowledged at {place} "
                                  "was not read back")
        got = by_place[place]
        if got != sent[index]:
            expect_messages([got], [sent[index]], f"{what}: at {place}")
    expect_equal(sorted(by_place), sorted(placed.values()), f"{what}: places read")
    for partition in sorted({partition for partition, _ in placed.values()}):
        in_send_order = [offset for index, (p, offset) in sorted(placed.items()) if p == partition]
        expect_equal(in_send_order, list(range(len(in_send_order))),
                     f"{what}: partition {partition} offsets in send order")


def wait_until(condition: Callable[[], bool], timeout_s: float, reason: str,
               interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            fail(reason)
        time.sleep(interval_s)


def large_value(size_bytes: int) -> bytes:
    """Deterministic, incompressible-looking bytes (a byte counter mod 251)."""
    pattern = bytes(range(251))
    return (pattern * (size_bytes // 251 + 1))[:size_bytes]


@dataclass(frozen=True)
class Context:
    bootstrap: str
    topic: str
    client: str

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    @property
    def producer_client(self) -> str:
        """The client whose cross_produce output a cross_consume reads (COMPAT_PRODUCER)."""
        name = os.environ.get("COMPAT_PRODUCER")
        if not name:
            raise ScenarioFailed("COMPAT_PRODUCER is not set (the matrix sets it)")
        return name


Scenario = Callable[[Context], None]


def run_main(client: str, scenarios: dict[str, Scenario], version: Callable[[], str],
             argv: Iterable[str] | None = None) -> None:
    """The runner command line; never returns. `--version` prints version()."""
    parser = argparse.ArgumentParser(description=f"compat runner for {client}")
    parser.add_argument("--list", action="store_true", help="print the implemented scenarios")
    parser.add_argument("--version", action="store_true", help="print the client's version")
    parser.add_argument("--bootstrap")
    parser.add_argument("--scenario")
    parser.add_argument("--topic")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.list:
        print("\n".join(scenarios))
        _exit(0)
    if args.version:
        print(version())
        _exit(0)
    if not (args.bootstrap and args.scenario and args.topic):
        parser.error("--bootstrap, --scenario and --topic are required (or --list)")
    scenario = scenarios.get(args.scenario)
    if scenario is None:
        print(f"{client} has no scenario {args.scenario}", file=sys.stderr)
        _exit(2)
    context = Context(bootstrap=args.bootstrap, topic=args.topic, client=client)
    started_s = time.monotonic()
    try:
        scenario(context)
    except NotApplicable as exc:
        print(f"n/a: {exc}", file=sys.stderr)
        _exit(2)
    except ScenarioFailed as exc:
        _exit_with_reason(str(exc))
    except Exception as exc:  # a client error the scenario did not expect: FAIL with its name
        traceback.print_exc()
        _exit_with_reason(f"{type(exc).__name__}: {exc}")
    print(f"PASS {client} {args.scenario} in {time.monotonic() - started_s:.1f} s",
          file=sys.stderr)
    _exit(0)


def _exit_with_reason(reason: str) -> None:
    print(" ".join(reason.split()) or "failed without a reason", file=sys.stderr)
    _exit(1)


def _exit(code: int) -> None:
    # os._exit: client libraries' background threads and destructors must not write to
    # stderr after the reason line, nor hang the exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
