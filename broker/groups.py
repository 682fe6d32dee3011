"""Runs the group coordinator state machine for the broker: persists its records to
`__consumer_offsets` (replicated, in a cluster) before answering, parks JoinGroup/SyncGroup
requests until the coordinator answers their token, and sleeps until its next deadline."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import trio

from broker.coordinator_log import OFFSETS_TOPIC, CoordinatorLog, LogEntry
from broker.coordinator_runtime import CoordinatorRuntime, Writes, now_ms, with_error
from coordinator.groups import GroupConfig, GroupCoordinator, LoadedRecord, Outcome
from wire.errors import ErrorCode

if TYPE_CHECKING:
    from broker.broker import Broker

log = logging.getLogger(__name__)


class _Parked:
    """A request waiting for the coordinator to answer its token."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.response: dict | None = None


class GroupRuntime(CoordinatorRuntime):
    def __init__(self, broker: "Broker") -> None:
        super().__init__(broker)
        config = broker.config
        self.write_timeout_ms = config.value("offsets.commit.timeout.ms")
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

    def _topic_metadata(self) -> dict:
        """The broker's topics for consumer group subscriptions: {name: (topic id, partitions)}."""
        return {name: (topic.topic_id, topic.partition_count)
                for name, topic in self._broker.metadata.topics.items()}

    def _load_partition(self, partition: int, entries: list[LogEntry], now: int) -> Outcome:
        return self.coordinator.load(
            partition, [LoadedRecord(entry.key, entry.value, entry.producer_id, entry.commit)
                        for entry in entries], now)

    def _unload_partition(self, partition: int) -> None:
        self._apply(self.coordinator.unload(partition, now_ms()))

    def complete_transaction(self, producer_id: int, commit: bool, partition: int) -> None:
        """A transaction marker reached __consumer_offsets partition `partition`."""
        self._apply(self.coordinator.complete_transaction(producer_id, commit, partition,
                                                          now_ms=now_ms()))

    async def call_parked(self, operation: Callable[..., Outcome], *args, **kwargs) -> dict:
        """Runs an operation answered through its token (JoinGroup, SyncGroup), waiting
        for the answer. A cancelled wait (the client went away) forgets the token."""
        token = object()
        parked = self._parked[token] = _Parked()
        try:
            self._apply(operation(token, *args, **kwargs, now_ms=now_ms()))
            await parked.done.wait()
            return parked.response
        finally:
            self._parked.pop(token, None)

    def _apply(self, outcome: Outcome) -> Writes:
        """Appends the outcome's records (a transactional batch for TxnOffsetCommit),
        then answers its parked requests once the records are replicated."""
        writes = self._append_records(outcome.records, producer=outcome.transactional)
        if outcome.replies:
            self._when_replicated(writes, lambda error: self._answer(outcome.replies, error))
        self._deadline_changed.set()
        return writes

    def _answer(self, replies: list, error: ErrorCode | None) -> None:
        for token, response in replies:
            parked = self._parked.get(token)
            if parked is not None:
                parked.response = response if error is None else with_error(response, error)
                parked.done.set()
