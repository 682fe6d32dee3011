"""Checks that the Python client runners' scenarios share (compat/SCENARIOS.md).

compat/pyrunner.py holds the contract's primitives (standard messages, exact comparison,
the command line); this module holds the scenario-level steps that kafka-python,
confluent-kafka, aiokafka and kcat run alike. The runners import it as
`compat.clients.common`, with the repository root on sys.path as for compat.pyrunner.
"""
from __future__ import annotations

from dataclasses import replace

from compat.pyrunner import (Context, Message, Record, expect, expect_equal, expect_messages,
                             expect_partition_log, expect_placed, standard_message,
                             standard_messages)


def null_key_and_value(client: str) -> list[Message]:
    """produce_consume's last two messages: standard message 1000 with a null value, then
    standard message 1001 with a null key."""
    return [replace(standard_message(1000, client), value=None),
            replace(standard_message(1001, client), key=None)]


def expect_produce_consume(records: list[Record], placed: dict[int, tuple[int, int]],
                           sent: list[Message], nulls: list[Message],
                           null_places: dict[int, tuple[int, int]]) -> None:
    """The keyed messages were read back where their produce was acknowledged, and the two
    null messages, produced after them to partition 0, end that partition."""
    keyed = [r for r in records if (r.partition, r.offset) not in null_places.values()]
    expect_placed(keyed, placed, sent, "keyed")
    partition0_end = sum(1 for p, _ in placed.values() if p == 0)
    expect_equal(sorted(null_places.values()), [(0, partition0_end), (0, partition0_end + 1)],
                 "null key/value places")
    expect_messages([r.message for r in records if r.partition == 0][-2:], nulls,
                    "null value and null key")


def expect_acks_acknowledged(placed: dict[int, tuple[int, int]], partition: int,
                             acks_setting: object) -> None:
    """acks: the 100 messages sent to `partition` were acknowledged at offsets 0..99
    (acks=0 gets no offsets back: nothing to check)."""
    if str(acks_setting) != "0":
        expect_equal(sorted(placed.values()), [(partition, o) for o in range(100)],
                     f"acks={acks_setting} acknowledged offsets")


def expect_acks_logs(records: list[Record], client: str, acks_settings: tuple) -> None:
    """acks: partition p holds standard messages 100p..100p+99, sent with acks_settings[p]."""
    for partition, acks_setting in enumerate(acks_settings):
        expect_partition_log(records, partition,
                             standard_messages(client, 100, start=partition * 100),
                             f"acks={acks_setting}")


def covers_once(assignments: list[frozenset[int]], partitions: int) -> bool:
    """Every member holds a partition, and together they hold each of the topic's
    partitions exactly once."""
    return (all(assignments) and sum(map(len, assignments)) == partitions
            and frozenset().union(*assignments) == frozenset(range(partitions)))


def expect_own_partitions(per_member: list[list[Record]],
                          assignments: list[frozenset[int]]) -> None:
    """Each group member read something, and only from the partitions assigned to it."""
    for number, (records, assignment) in enumerate(zip(per_member, assignments)):
        expect(bool(records), f"member {number} read nothing")
        expect({r.partition for r in records} <= assignment,
               f"member {number} read another member's partition")


def expect_transaction_reads(read_committed: list[Record], read_uncommitted: list[Record],
                             committed: list[Message], aborted: list[Message]) -> None:
    """What the transactions scenario reads back from partition 0, which holds offsets
    0-9 committed, 10 the commit marker, 11-20 aborted, 21 the abort marker."""
    expect_partition_log(read_committed, 0, committed, "read_committed")
    expect_messages([r.message for r in read_uncommitted], committed + aborted,
                    "read_uncommitted")
    expect_equal([r.offset for r in read_uncommitted], list(range(10)) + list(range(11, 21)),
                 "read_uncommitted offsets")


def expect_cross_consumed(ctx: Context, records: list[Record]) -> None:
    """cross_consume: partition 0 holds exactly the 100 standard messages that the
    producing client's cross_produce wrote."""
    expect_partition_log(records, 0, standard_messages(ctx.producer_client, 100),
                         ctx.producer_client)
