"""What the group and transaction coordinators' runtimes share: appending an outcome's
records to the coordinator's internal topic and waiting until they are replicated
(acks=all), following the leadership of that topic's partitions in a cluster, finding
the coordinator of a key, and the timer loop that sleeps until the coordinator's next
deadline."""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import trio

from broker.coordinator_log import CoordinatorLog, LogEntry, Written
from wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from broker.broker import Broker

log = logging.getLogger(__name__)

# What a coordinator answers when its write fails (Kafka's GroupMetadataManager and
# TransactionStateManager): clients look the coordinator up again and retry.
WRITE_ERRORS = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER: ErrorCode.NOT_COORDINATOR,
    ErrorCode.KAFKA_STORAGE_ERROR: ErrorCode.NOT_COORDINATOR,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.REQUEST_TIMED_OUT: ErrorCode.COORDINATOR_NOT_AVAILABLE,
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Writes:
    """The appends of one outcome: each counts once its partition's high watermark
    reaches it. `error`: an append was refused (this broker no longer leads)."""
    appended: list[Written] = field(default_factory=list)
    error: ErrorCode | None = None

    def settled(self) -> bool:
        """Nothing to wait for: no append, or all of them already replicated."""
        return self.error is None and all(
            written.partition.log.high_watermark >= written.end_offset
            for written in self.appended)


def with_error(response: Any, error: ErrorCode) -> Any:
    """The response with every error code that said NONE saying `error`: the write the
    answer depends on failed, so each result in it failed (Kafka answers every
    partition of an OffsetCommit, every group of a DeleteGroups, so)."""
    if isinstance(response, dict):
        return {key: (error if key == "error_code" and value == ErrorCode.NONE
                      else with_error(value, error))
                for key, value in response.items()}
    if isinstance(response, list):
        return [with_error(item, error) for item in response]
    if isinstance(response, ErrorCode) and response == ErrorCode.NONE:
        return error  # an operation answering with a bare error code
    return response


class CoordinatorRuntime(ABC):
    """Subclasses set `coordinator` (with partition_for(key), next_deadline() and
    expire(now_ms)) and `log`, and `write_timeout_ms`."""

    coordinator: Any
    log: CoordinatorLog
    write_timeout_ms: int

    def __init__(self, broker: "Broker") -> None:
        self._broker = broker
        self._deadline_changed = trio.Event()
        # In a cluster: the internal topic's partitions this broker leads, so coordinates.
        self._led: set[int] = set()

    def _outcome(self, operation: Callable, args: tuple, kwargs: dict, timed: bool):
        if timed:
            kwargs["now_ms"] = now_ms()
        return operation(*args, **kwargs)

    async def call(self, operation: Callable, *args, timed: bool = True, **kwargs):
        """Runs an operation (`timed`: it takes now_ms) and returns its response once what
        it wrote is replicated; when that write fails the response says so."""
        outcome = self._outcome(operation, args, kwargs, timed)
        error = await self._replicated(self._apply(outcome))
        return outcome.response if error is None else with_error(outcome.response, error)

    def query(self, operation: Callable, *args, timed: bool = True, **kwargs):
        """Runs an operation that writes nothing (a read, a verification); its response."""
        outcome = self._outcome(operation, args, kwargs, timed)
        self._apply(outcome)
        return outcome.response

    def _append_records(self, records: Iterable, producer: tuple[int, int] | None = None
                        ) -> Writes:
        """Appends CoordinatorRecords, one batch per internal-topic partition."""
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append((record.key, record.value))
        writes = Writes()
        now = now_ms()
        for partition, batch in by_partition.items():
            try:
                writes.appended.append(self.log.append(partition, batch, now, producer=producer))
            except KafkaError as exc:
                log.warning("%s-%d: coordinator write refused: %s", self.log.name, partition,
                            exc)
                writes.error = exc.code
        return writes

    async def _replicated(self, writes: Writes) -> ErrorCode | None:
        """Waits (at most write_timeout_ms) until every append is replicated to the ISR;
        None when it is, else the error the coordinator answers with."""
        if writes.error is not None:
            return WRITE_ERRORS.get(writes.error, ErrorCode.UNKNOWN_SERVER_ERROR)
        waits = [(written.partition, written.end_offset, {"error_code": ErrorCode.NONE})
                 for written in writes.appended
                 if written.partition.log.high_watermark < written.end_offset]
        if not waits:
            return None
        await self._broker.replicas.wait_for_acks(waits, self.write_timeout_ms)
        for _, _, result in waits:
            if result["error_code"] != ErrorCode.NONE:
                return WRITE_ERRORS.get(result["error_code"], ErrorCode.UNKNOWN_SERVER_ERROR)
        return None

    def _when_replicated(self, writes: Writes, then: Callable[[ErrorCode | None], None]) -> None:
        """Calls then(error) once the writes are replicated (at once when nothing waits:
        a lone broker), for answers that are not the caller's own (parked requests)."""
        if writes.settled():
            then(None)
            return

        async def wait_then() -> None:
            then(await self._replicated(writes))

        self._broker.spawn(wait_then)

    # -- where the coordinator of a key is ------------------------------------------------

    def coordinator_node(self, key: str) -> tuple[int, str, int]:
        """(node id, host, port) of the broker coordinating `key` (FindCoordinator): this
        broker alone; in a cluster the leader of the key's internal-topic partition.
        COORDINATOR_NOT_AVAILABLE while that partition has no live leader."""
        broker = self._broker
        if broker.cluster is None:
            self.ensure_loaded()
            return broker.node_id, broker.advertised.host, broker.advertised.port
        self.log.ensure_topic()
        partition = self.coordinator.partition_for(key)
        view = broker.cluster.partition(self.log.name, partition)
        endpoint = None if view is None else broker.cluster.endpoint_of(view.leader)
        if endpoint is None:
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE,
                             f"{self.log.name}-{partition} has no live leader")
        return view.leader, endpoint[0], endpoint[1]

    def coordinates(self, key: str) -> bool:
        """Whether this broker coordinates `key` now."""
        return (self._broker.cluster is None
                or self.coordinator.partition_for(key) in self._led)

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """A lone broker: replays the internal topic at start (sync: before it serves)."""
        if not self.log.exists():
            return
        started = time.perf_counter()
        by_partition: dict[int, list[LogEntry]] = defaultdict(list)
        for entry in self.log.read_all():
            by_partition[entry.partition].append(entry)
        now = now_ms()
        for partition in range(self.log.partition_count):
            self._apply(self._load_partition(partition, by_partition.get(partition, []), now))
        log.info("loaded %d record(s) from %s in %.0f ms",
                 sum(len(entries) for entries in by_partition.values()), self.log.name,
                 (time.perf_counter() - started) * 1000)

    def ensure_loaded(self) -> None:
        """Creates the internal topic on first use (as FindCoordinator does in Kafka); a
        lone broker becomes the coordinator of all its partitions, a clustered one those
        it comes to lead."""
        if self.log.exists():
            return
        self.log.ensure_topic()
        if self._broker.cluster is not None:
            return
        now = now_ms()
        for partition in range(self.log.partition_count):
            self._apply(self._load_partition(partition, [], now))

    def lead(self, partition: int) -> None:
        """A clustered broker became leader of one of the internal topic's partitions:
        loads it from the local log (to its end, as Kafka does) and coordinates its keys.
        A new leader epoch of a partition led already changes nothing."""
        if partition in self._led:
            return
        started = time.perf_counter()
        entries = list(self.log.read_partition(partition))
        self._led.add(partition)
        self._apply(self._load_partition(partition, entries, now_ms()))
        log.info("coordinator of %s-%d: loaded %d record(s) in %.0f ms", self.log.name,
                 partition, len(entries), (time.perf_counter() - started) * 1000)

    def resign(self, partition: int) -> None:
        """Another broker leads the partition now: drop its keys (their requests get
        NOT_COORDINATOR here)."""
        if partition not in self._led:
            return
        self._led.discard(partition)
        self._unload_partition(partition)
        log.info("no longer coordinator of %s-%d", self.log.name, partition)

    @abstractmethod
    def _load_partition(self, partition: int, entries: list[LogEntry], now: int):
        """Hands one partition's replayed entries to the coordinator; its Outcome."""

    @abstractmethod
    def _unload_partition(self, partition: int) -> None:
        """Drops one partition's state from the coordinator."""

    @abstractmethod
    def _apply(self, outcome) -> Writes:
        """Writes the outcome's records, then carries out the rest of it; the writes."""

    async def run_timers(self) -> None:
        """Sleeps until the coordinator's next deadline (or a call moves it), then expires."""
        while True:
            deadline = self.coordinator.next_deadline()
            self._deadline_changed = trio.Event()
            if deadline is None:
                await self._deadline_changed.wait()
                continue
            delay_ms = deadline - now_ms()
            if delay_ms > 0:
                with trio.move_on_after(delay_ms / 1000):
                    await self._deadline_changed.wait()
                continue
            try:
                for outcome in self.coordinator.expire(now_ms()):
                    self._apply(outcome)
            except Exception:
                # A failed timer pass must not stop the broker; the deadline is retried.
                log.exception("%s timers failed", type(self.coordinator).__name__)
                await trio.sleep(1)
            if self.coordinator.next_deadline() == deadline:
                await trio.sleep(0.001)  # a deadline re-armed for now runs at the next pass
