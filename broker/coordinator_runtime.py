"""What the group and transaction coordinators' runtimes share: appending an outcome's
records to the coordinator's internal topic, and the timer loop that sleeps until the
coordinator's next deadline."""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from typing import Callable, Iterable

import trio

from broker.coordinator_log import CoordinatorLog, LogEntry

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class CoordinatorRuntime(ABC):
    """Subclasses set `coordinator` (with next_deadline() and expire(now_ms)) and `log`."""

    coordinator: object
    log: CoordinatorLog

    def __init__(self) -> None:
        self._deadline_changed = trio.Event()

    def call(self, operation: Callable, *args, timed: bool = True, **kwargs):
        """Runs an operation answered at once (`timed`: it takes now_ms); returns its response."""
        if timed:
            kwargs["now_ms"] = now_ms()
        outcome = operation(*args, **kwargs)
        self._apply(outcome)
        return outcome.response

    def _append_records(self, records: Iterable, producer: tuple[int, int] | None = None
                        ) -> None:
        """Appends CoordinatorRecords, one batch per internal-topic partition."""
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append((record.key, record.value))
        now = now_ms()
        for partition, batch in by_partition.items():
            self.log.append(partition, batch, now, producer=producer)

    def load(self) -> None:
        """Replays the internal topic at start (sync: before the broker serves)."""
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
        """Creates the internal topic on first use (as FindCoordinator does in Kafka) and
        makes this broker the coordinator of all its partitions."""
        if self.log.exists():
            return
        self.log.ensure_topic()
        now = now_ms()
        for partition in range(self.log.partition_count):
            self._apply(self._load_partition(partition, [], now))

    @abstractmethod
    def _load_partition(self, partition: int, entries: list[LogEntry], now: int):
        """Hands one partition's replayed entries to the coordinator; its Outcome."""

    @abstractmethod
    def _apply(self, outcome) -> None:
        """Writes the outcome's records, then carries out the rest of it."""

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
