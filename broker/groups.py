"""Runs the group coordinator state machine for the broker: persists its records to
`__consumer_offsets` before answering, parks JoinGroup/SyncGroup requests until the
coordinator answers their token, and sleeps until its next deadline."""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable

import trio

from broker.coordinator_log import OFFSETS_TOPIC, CoordinatorLog
from coordinator.groups import GroupConfig, GroupCoordinator, Outcome

if TYPE_CHECKING:
    from broker.broker import Broker

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Parked:
    """A request waiting for the coordinator to answer its token."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.response: dict | None = None


class GroupRuntime:
    def __init__(self, broker: "Broker") -> None:
        self._broker = broker
        config = broker.config
        self.coordinator = GroupCoordinator(GroupConfig(
            group_min_session_timeout_ms=config.value("group.min.session.timeout.ms"),
            group_max_session_timeout_ms=config.value("group.max.session.timeout.ms"),
            group_initial_rebalance_delay_ms=config.value("group.initial.rebalance.delay.ms"),
            group_max_size=config.value("group.max.size"),
            offsets_retention_minutes=config.value("offsets.retention.minutes"),
            offsets_retention_check_interval_ms=config.value("offsets.retention.check.interval.ms"),
            offset_metadata_max_bytes=config.value("offset.metadata.max.bytes"),
            offsets_topic_num_partitions=CoordinatorLog(broker, OFFSETS_TOPIC).partition_count,
            group_consumer_session_timeout_ms=config.value("group.consumer.session.timeout.ms"),
            group_consumer_heartbeat_interval_ms=config.value("group.consumer.heartbeat.interval.ms"),
            group_consumer_max_size=config.value("group.consumer.max.size"),
            group_consumer_assignors=tuple(config.value("group.consumer.assignors")),
        ), topic_metadata=self._topic_metadata)
        self.log = CoordinatorLog(broker, OFFSETS_TOPIC)
        self._parked: dict[Any, _Parked] = {}
        self._deadline_changed = trio.Event()

    def _topic_metadata(self) -> dict:
        """The broker's topics for consumer group subscriptions: {name: (topic id, partitions)}."""
        return {name: (topic.topic_id, topic.partition_count)
                for name, topic in self._broker.metadata.topics.items()}

    def load(self) -> None:
        """Replays __consumer_offsets at start (sync: before the broker serves)."""
        if not self.log.exists():
            return
        started = time.perf_counter()
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for partition, key, value in self.log.read_all():
            by_partition[partition].append((key, value))
        now = _now_ms()
        for partition in range(self.log.partition_count):
            self._apply(self.coordinator.load(partition, by_partition.get(partition, ()), now))
        log.info("loaded %d group record(s) from %s in %.0f ms",
                 sum(len(records) for records in by_partition.values()), self.log.name,
                 (time.perf_counter() - started) * 1000)

    def ensure_loaded(self) -> None:
        """Creates __consumer_offsets on first use (as FindCoordinator does in Kafka) and
        makes this broker the coordinator of all its partitions."""
        if self.log.exists():
            return
        self.log.ensure_topic()
        now = _now_ms()
        for partition in range(self.log.partition_count):
            self._apply(self.coordinator.load(partition, (), now))

    def call(self, operation: Callable[..., Outcome], *args, timed: bool = True, **kwargs):
        """Runs an operation answered at once (`timed`: it takes now_ms); returns its response."""
        if timed:
            kwargs["now_ms"] = _now_ms()
        outcome = operation(*args, **kwargs)
        self._apply(outcome)
        return outcome.response

    async def call_parked(self, operation: Callable[..., Outcome], *args, **kwargs) -> dict:
        """Runs an operation answered through its token (JoinGroup, SyncGroup), waiting
        for the answer. A cancelled wait (the client went away) forgets the token."""
        token = object()
        parked = self._parked[token] = _Parked()
        try:
            self._apply(operation(token, *args, **kwargs, now_ms=_now_ms()))
            await parked.done.wait()
            return parked.response
        finally:
            self._parked.pop(token, None)

    def _apply(self, outcome: Outcome) -> None:
        """Appends the outcome's records, then answers its parked requests."""
        if outcome.records:
            now = _now_ms()
            by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
            for record in outcome.records:
                by_partition[record.partition].append((record.key, record.value))
            for partition, records in by_partition.items():
                self.log.append(partition, records, now)
        for token, response in outcome.replies:
            parked = self._parked.get(token)
            if parked is not None:
                parked.response = response
                parked.done.set()
        self._deadline_changed.set()

    async def run_timers(self) -> None:
        """Sleeps until the coordinator's next deadline (or a call moves it), then expires."""
        while True:
            deadline = self.coordinator.next_deadline()
            self._deadline_changed = trio.Event()
            if deadline is None:
                await self._deadline_changed.wait()
                continue
            delay_ms = deadline - _now_ms()
            if delay_ms > 0:
                with trio.move_on_after(delay_ms / 1000):
                    await self._deadline_changed.wait()
                continue
            try:
                for outcome in self.coordinator.expire(_now_ms()):
                    self._apply(outcome)
            except Exception:
                # A failed timer pass must not stop the broker; the deadline is retried.
                log.exception("group coordinator timers failed")
                await trio.sleep(1)
            if self.coordinator.next_deadline() == deadline:
                await trio.sleep(0.001)  # a deadline re-armed for now runs at the next pass
