"""compat runner for kcat (Debian's kcat 1.7, librdkafka 2.0), driven as a subprocess.

What kcat can and cannot say, and so how its scenarios differ from compat/SCENARIOS.md:
- It has no admin API: the matrix pre-creates the topics listed in ./topics (scenario,
  partitions); other topics are auto-created with one partition. topic_admin and
  delete_records are not applicable.
- Its producer sets the same headers (-H) on every message of a run and cannot set
  timestamps: what kcat produces carries the single header client=kcat and a CreateTime
  taken by librdkafka, asserted to lie within the run. cross_produce is therefore not
  applicable; its consumer prints everything, so cross_consume checks exact data.
- Metadata (-L) does not show the cluster id.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from compat.clients.common import (covers_once, expect_cross_consumed,  # noqa: E402
                                   expect_own_partitions)
from compat.pyrunner import (READ_TIMEOUT_S, Context, Message,  # noqa: E402
                             Record, ScenarioFailed, expect, expect_equal, expect_messages,
                             expect_partition_log, fail, large_value, run_main,
                             standard_messages, wait_until)

CLIENT = "kcat"
KCAT_TIMEOUT_S = 60.0
CODECS = ("gzip", "snappy", "lz4", "zstd")
KCAT_HEADERS = (("client", CLIENT.encode()),)
ASSIGNED = re.compile(r"rebalanced \(memberid [^)]*\): assigned: (.*)$")
REVOKED = re.compile(r"rebalanced \(memberid [^)]*\): revoked: ")
PARTITION = re.compile(r"\[(\d+)\]")


# -- helpers ---------------------------------------------------------------------------

def kcat_binary() -> str:
    path = shutil.which("kcat")
    if path is None:
        raise ScenarioFailed("kcat is not installed (compat/setup installs it)")
    return path


def kcat_version() -> str:
    """`kcat 1.7.1 (librdkafka 2.0.2)` from kcat -V."""
    output = subprocess.run([kcat_binary(), "-V"], capture_output=True, text=True,
                            timeout=KCAT_TIMEOUT_S).stdout
    match = re.search(r"Version (\S+) .*librdkafka (\S+?)[ )]", output)
    return f"kcat {match.group(1)} (librdkafka {match.group(2)})" if match else "kcat unknown"


def kcat(*args: str, stdin: bytes | None = None, check: bool = True
         ) -> subprocess.CompletedProcess:
    result = subprocess.run([kcat_binary(), *args], input=stdin, capture_output=True,
                            timeout=KCAT_TIMEOUT_S)
    if check and result.returncode != 0:
        last = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        fail(f"kcat {' '.join(args[:6])} exited {result.returncode}: {last[0]}")
    return result


def lines_of(messages: list[Message]) -> bytes:
    """kcat -K: input: `key:value` per line; a line without ':' has a null key, and with
    -Z an empty value is a null value."""
    lines = []
    for m in messages:
        value = b"" if m.value is None else m.value
        lines.append(value if m.key is None else m.key + b":" + value)
    return b"\n".join(lines) + b"\n"


def produce(ctx: Context, topic: str, messages: list[Message], partition: int | None = None,
            *extra: str) -> tuple[int, int]:
    """Produces key:value lines with header client=kcat; returns the (start_ms, end_ms)
    window that holds their CreateTime."""
    args = ["-P", "-b", ctx.bootstrap, "-t", topic, "-K:", "-Z", "-H", f"client={CLIENT}",
            *extra]
    if partition is not None:
        args += ["-p", str(partition)]
    start_ms = int(time.time() * 1000)
    kcat(*args, stdin=lines_of(messages))
    return start_ms, int(time.time() * 1000)


def parse_json_line(line: str) -> Record:
    entry = json.loads(line)
    headers = entry.get("headers") or []
    pairs = tuple((headers[i], headers[i + 1].encode()) for i in range(0, len(headers), 2))
    expect_equal(entry["tstype"], "create", "timestamp type")
    return Record(entry["partition"], entry["offset"],
                  Message(None if entry["key"] is None else entry["key"].encode(),
                          None if entry["payload"] is None else entry["payload"].encode(),
                          pairs, entry["ts"]))


def consume(ctx: Context, topic: str, partition: int | None = None, *extra: str
            ) -> list[Record]:
    """Every record from the log start to the end (-e) of one or all partitions."""
    args = ["-C", "-b", ctx.bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q", *extra]
    if partition is not None:
        args += ["-p", str(partition)]
    output = kcat(*args).stdout.decode("utf-8")
    return [parse_json_line(line) for line in output.splitlines() if line.strip()]


def with_window(messages: list[Message], records: list[Record],
                window: tuple[int, int]) -> list[Message]:
    """The expected messages as kcat produced them: header client=kcat, and the CreateTime
    each record carries, once it is checked to lie within the producing run."""
    expected = []
    for m, record in zip(messages, records):
        timestamp_ms = record.message.timestamp_ms
        expect(window[0] <= timestamp_ms <= window[1],
               f"CreateTime {timestamp_ms} outside the producing run {window}")
        expected.append(Message(m.key, m.value, KCAT_HEADERS, timestamp_ms))
    return expected


def expect_kcat_log(records: list[Record], partition: int, sent: list[Message],
                    window: tuple[int, int], what: str, first_offset: int = 0) -> None:
    mine = [r for r in records if r.partition == partition]
    expect_partition_log(records, partition, with_window(sent, mine, window), what,
                         first_offset=first_offset)


def query_offset(ctx: Context, topic: str, timestamp_ms: int) -> int:
    """kcat -Q: the offset for a timestamp (-2: earliest, -1: latest) of partition 0."""
    output = kcat("-Q", "-b", ctx.bootstrap, "-t", f"{topic}:0:{timestamp_ms}").stdout.decode()
    match = re.search(r"\[0\] offset (-?\d+)", output)
    expect(match is not None, f"kcat -Q printed {output!r}")
    return int(match.group(1))


# -- scenarios -------------------------------------------------------------------------

def metadata(ctx: Context) -> None:
    listed = json.loads(kcat("-L", "-J", "-b", ctx.bootstrap, "-t", ctx.topic).stdout)
    brokers = listed["brokers"]
    expect_equal([b["name"].rsplit(":", 1)[1] for b in brokers], [str(ctx.port)], "broker ports")
    broker_id = brokers[0]["id"]
    (topic,) = listed["topics"]
    expect_equal(topic.get("error"), None, "topic error")
    expect_equal(sorted((p["partition"], p["leader"]) for p in topic["partitions"]),
                 [(0, broker_id), (1, broker_id), (2, broker_id)], "partitions and leaders")


def produce_consume(ctx: Context) -> None:
    sent = standard_messages(CLIENT, 1000)
    window = produce(ctx, ctx.topic, sent)
    records = consume(ctx, ctx.topic)
    by_key = {r.message.key: r for r in records}
    expect_equal(len(records), len(sent), "records read")
    expect_equal(sorted(by_key), sorted(m.key for m in sent), "keys read")
    for partition in range(3):
        in_partition = [m for m in sent if by_key[m.key].partition == partition]
        expect_kcat_log(records, partition, in_partition, window, "keyed")
    partition0_end = sum(1 for r in records if r.partition == 0)
    nulls = [Message(b"key-1000", None, (), 0), Message(None, b"value-1001", (), 0)]
    window = produce(ctx, ctx.topic, nulls, 0)
    tail = [r for r in consume(ctx, ctx.topic, 0) if r.offset >= partition0_end]
    expect_equal([r.offset for r in tail], [partition0_end, partition0_end + 1],
                 "null key/value offsets")
    expect_messages([r.message for r in tail], with_window(nulls, tail, window),
                    "null value and null key")


def compression(ctx: Context) -> None:
    for codec in CODECS:
        topic = f"{ctx.topic}-{codec}"
        sent = standard_messages(CLIENT, 200)
        window = produce(ctx, topic, sent, 0, "-X", f"compression.codec={codec}")
        expect_kcat_log(consume(ctx, topic, 0), 0, sent, window, codec)


def acks(ctx: Context) -> None:
    windows = {}
    # acks=0 last: a broker that is not ready for a new topic answers acks=0 by closing
    # the connection (Kafka does), and the messages are silently gone.
    for partition, acks_setting in reversed(list(enumerate(("0", "1", "all")))):
        sent = standard_messages(CLIENT, 100, start=partition * 100)
        windows[partition] = produce(ctx, ctx.topic, sent, partition, "-X", f"acks={acks_setting}")
    records = consume(ctx, ctx.topic)
    for partition, acks_setting in enumerate(("0", "1", "all")):
        expect_kcat_log(records, partition, standard_messages(CLIENT, 100, start=partition * 100),
                        windows[partition], f"acks={acks_setting}")


def idempotent(ctx: Context) -> None:
    sent = standard_messages(CLIENT, 1000)
    window = produce(ctx, ctx.topic, sent, 0, "-X", "enable.idempotence=true")
    expect_kcat_log(consume(ctx, ctx.topic, 0), 0, sent, window, "idempotent")


def list_offsets(ctx: Context) -> None:
    # kcat cannot set timestamps: one run per message, so each gets its own later CreateTime,
    # and the lookups use the timestamps the log holds.
    sent = standard_messages(CLIENT, 10)
    for message in sent:
        produce(ctx, ctx.topic, [message], 0)
        time.sleep(0.005)
    records = consume(ctx, ctx.topic, 0)
    expect_equal([r.offset for r in records], list(range(10)), "offsets")
    timestamps = [r.message.timestamp_ms for r in records]
    expect(timestamps == sorted(set(timestamps)), f"CreateTimes not increasing: {timestamps}")
    answers = {name: query_offset(ctx, ctx.topic, timestamp_ms) for name, timestamp_ms in
               (("earliest", -2), ("latest", -1), ("ts[5]", timestamps[5]),
                ("ts[5]+1", timestamps[5] + 1), ("beyond", timestamps[9] + 100_000))}
    expect_equal(answers, {"earliest": 0, "latest": 10, "ts[5]": 5, "ts[5]+1": 6, "beyond": -1},
                 "kcat -Q offsets")


def large_messages(ctx: Context) -> None:
    with tempfile.TemporaryDirectory() as directory:
        large_path = Path(directory) / "large"
        large_path.write_bytes(large_value(900_000))
        too_large_path = Path(directory) / "too-large"
        too_large_path.write_bytes(large_value(2_000_000))
        # A file argument is one message. The client's limit is raised above 2,000,000
        # so the broker is the one refusing.
        produce_args = ["-P", "-b", ctx.bootstrap, "-t", ctx.topic, "-p", "0", "-k", "large",
                        "-X", "message.max.bytes=3000000"]
        kcat(*produce_args, str(large_path))
        refused = kcat(*produce_args, str(too_large_path), check=False)
        expect_equal((refused.returncode, refused.stderr.decode().strip().splitlines()[-1:]),
                     (1, ["% Delivery failed for message: Broker: Message size too large"]),
                     "producing 2,000,000 bytes")
        output = kcat("-C", "-b", ctx.bootstrap, "-t", ctx.topic, "-p", "0", "-o", "beginning",
                      "-e", "-q", "-X", "fetch.message.max.bytes=2000000",
                      "-f", "%o|%k|%S|%s").stdout
        expect_equal(output[:20], b"0|large|900000|" + large_path.read_bytes()[:5], "record head")
        expect(output == b"0|large|900000|" + large_path.read_bytes(),
               f"the 900,000-byte value came back as {len(output) - 15} other bytes")


def unknown_topic(ctx: Context) -> None:
    missing = f"{ctx.topic}-missing"
    listed = json.loads(kcat("-L", "-J", "-b", ctx.bootstrap, "-t", missing,
                             "-X", "allow.auto.create.topics=false").stdout)
    expect_equal([(t["topic"], t.get("error"), t["partitions"]) for t in listed["topics"]],
                 [(missing, "Broker: Unknown topic or partition", [])], "kcat -L of it")
    everything = json.loads(kcat("-L", "-J", "-b", ctx.bootstrap).stdout)
    expect(missing not in [t["topic"] for t in everything["topics"]],
           "describing the topic created it")
    refused = kcat("-P", "-b", ctx.bootstrap, "-t", "bad topic!", stdin=b"v\n", check=False)
    expect_equal((refused.returncode, refused.stderr.decode().strip().splitlines()[-1:]),
                 (1, ["% Delivery failed for message: Broker: Invalid topic"]),
                 "producing to 'bad topic!'")


@dataclass
class Member:
    """A `kcat -G` process whose stdout (JSON lines) and stderr (rebalances) go to files."""
    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path

    @classmethod
    def start(cls, ctx: Context, group: str, directory: Path, number: int) -> "Member":
        stdout_path = directory / f"member-{number}.out"
        stderr_path = directory / f"member-{number}.err"
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                [kcat_binary(), "-G", group, "-b", ctx.bootstrap, "-J", "-u",
                 "-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=500",
                 ctx.topic], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        return cls(process, stdout_path, stderr_path)

    @property
    def assignment(self) -> frozenset[int]:
        """The partitions of the last rebalance line (empty after a revoke)."""
        if self.process.poll() is not None:
            fail(f"kcat -G exited {self.process.returncode}: {self.stderr_path.read_text()[-200:]}")
        current: frozenset[int] = frozenset()
        for line in self.stderr_path.read_text().splitlines():
            if match := ASSIGNED.search(line):
                current = frozenset(int(p) for p in PARTITION.findall(match.group(1)))
            elif REVOKED.search(line):
                current = frozenset()
        return current

    @property
    def records(self) -> list[Record]:
        complete = self.stdout_path.read_text().split("\n")[:-1]  # the last may be partial
        return [parse_json_line(line) for line in complete if line.strip()]

    def stop(self) -> None:
        """SIGTERM: kcat commits what it consumed and leaves the group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                fail("kcat -G ignored SIGTERM for 30 s")


def balanced(members: list[Member], partitions: int) -> bool:
    return covers_once([m.assignment for m in members], partitions)


def consumer_group(ctx: Context) -> None:
    with tempfile.TemporaryDirectory() as directory:
        members = [Member.start(ctx, f"{ctx.topic}-group", Path(directory), n) for n in range(3)]
        try:
            wait_until(lambda: balanced(members, 6), READ_TIMEOUT_S,
                       "3 members never shared the 6 partitions")
            assignments = [m.assignment for m in members]
            sent = standard_messages(CLIENT, 3000)
            window = produce(ctx, ctx.topic, sent)
            wait_until(lambda: sum(len(m.records) for m in members) >= 3000, READ_TIMEOUT_S,
                       "the group did not read 3,000 messages")
            time.sleep(0.5)  # any duplicate would arrive now
            expect_equal([m.assignment for m in members], assignments, "assignments")
            per_member = [m.records for m in members]
        finally:
            for member in members:
                member.stop()
    expect_own_partitions(per_member, assignments)
    records = [r for member_records in per_member for r in member_records]
    by_key = {r.message.key: r for r in records}
    expect_equal(len(records), 3000, "records read by the group")
    expect_equal(sorted(by_key), sorted(m.key for m in sent), "keys read by the group")
    for partition in range(6):
        in_partition = [m for m in sent if by_key[m.key].partition == partition]
        mine = sorted((r for r in records if r.partition == partition), key=lambda r: r.offset)
        expect_partition_log(mine, partition, with_window(in_partition, mine, window), "group")


def transactions(ctx: Context) -> None:
    committed = standard_messages(CLIENT, 10)
    aborted = standard_messages(CLIENT, 10, start=10)
    # kcat holds back the last lines of its input until stdin closes, so filler follows
    # the aborted messages to push them out while the transaction is still open.
    filler = [Message(f"filler-{i}".encode(), b"f" * 100, (), 0) for i in range(200)]
    transactional = ["-X", f"transactional.id={ctx.topic}-tx"]
    # Closing stdin commits kcat's transaction...
    committed_window = produce(ctx, ctx.topic, committed, 0, *transactional)
    # ...but kcat 1.7.1 does not abort on SIGINT as its help says: it exits leaving the
    # transaction open, and the coordinator aborts it after transaction.timeout.ms. That
    # abort (with its marker) is what this scenario checks, once the aborted 10 are in
    # the log (read_uncommitted sees them).
    start_ms = int(time.time() * 1000)
    process = subprocess.Popen(
        [kcat_binary(), "-P", "-b", ctx.bootstrap, "-t", ctx.topic, "-p", "0", "-K:", "-Z",
         "-H", f"client={CLIENT}", *transactional, "-X", "transaction.timeout.ms=5000"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uncommitted = ["-X", "isolation.level=read_uncommitted"]
    try:
        process.stdin.write(lines_of(aborted + filler))
        process.stdin.flush()
        wait_until(lambda: len(consume(ctx, ctx.topic, 0, *uncommitted)) >= 20, READ_TIMEOUT_S,
                   "the second transaction's messages never reached the log")
        process.send_signal(signal.SIGINT)
        process.stdin.close()  # kcat notices the interrupt once its read of stdin returns
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    # The last stable offset (kcat -Q answers read_committed) passes the open transaction
    # once the coordinator has aborted it.
    wait_until(lambda: query_offset(ctx, ctx.topic, -1) > 11, READ_TIMEOUT_S,
               "the abandoned transaction was not aborted after transaction.timeout.ms")
    aborted_window = (start_ms, int(time.time() * 1000))
    # Offsets: 0-9 committed, 10 commit marker, 11-20 aborted, then aborted filler, and
    # the abort marker last.
    read = consume(ctx, ctx.topic, 0, "-X", "isolation.level=read_committed")
    expect_kcat_log(read, 0, committed, committed_window, "read_committed")
    read = consume(ctx, ctx.topic, 0, *uncommitted)
    expect_equal([r.offset for r in read], list(range(10)) + list(range(11, 11 + len(read) - 10)),
                 "read_uncommitted offsets")
    expect_messages([r.message for r in read[:20]],
                    with_window(committed, read[:10], committed_window)
                    + with_window(aborted, read[10:20], aborted_window), "read_uncommitted")
    expect_equal([r.message.key for r in read[20:]], [m.key for m in filler[:len(read) - 20]],
                 "aborted filler")
    expect_equal(query_offset(ctx, ctx.topic, -1), 11 + len(read) - 10 + 1,
                 "end offset after the abort marker")


def cross_consume(ctx: Context) -> None:
    expect_cross_consumed(ctx, consume(ctx, ctx.topic, 0))


SCENARIOS = {
    "metadata": metadata, "produce_consume": produce_consume, "compression": compression,
    "acks": acks, "idempotent": idempotent, "list_offsets": list_offsets,
    "large_messages": large_messages, "unknown_topic": unknown_topic,
    "consumer_group": consumer_group, "transactions": transactions,
    "cross_consume": cross_consume,
}

if __name__ == "__main__":
    os.environ.pop("KCAT_CONFIG", None)  # a user's kcat.conf must not change the scenarios
    run_main(CLIENT, SCENARIOS, kcat_version)
