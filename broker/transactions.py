"""Runs the transaction coordinator for the broker: persists its records to
`__transaction_state` before answering, writes the transaction markers to the partitions
of each ended transaction (this broker leads them all), and aborts transactions that
outlive their timeout."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from broker.coordinator_log import (OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, CoordinatorLog,
                                    LogEntry)
from broker.coordinator_runtime import CoordinatorRuntime, now_ms
from coordinator.transactions import MarkerRequest, TransactionConfig, TransactionCoordinator
from wire.errors import KafkaError

if TYPE_CHECKING:
    from broker.broker import Broker
    from coordinator.groups import Outcome

log = logging.getLogger(__name__)


class TransactionRuntime(CoordinatorRuntime):
    def __init__(self, broker: "Broker") -> None:
        super().__init__()
        self._broker = broker
        config = broker.config
        self.log = CoordinatorLog(broker, TRANSACTION_STATE_TOPIC)
        groups = broker.groups
        self.coordinator = TransactionCoordinator(
            TransactionConfig(
                transaction_max_timeout_ms=config.value("transaction.max.timeout.ms"),
                transactional_id_expiration_ms=config.value("transactional.id.expiration.ms"),
                transaction_state_log_num_partitions=self.log.partition_count,
                abort_timed_out_transaction_cleanup_interval_ms=config.value(
                    "transaction.abort.timed.out.transaction.cleanup.interval.ms"),
                remove_expired_transaction_cleanup_interval_ms=config.value(
                    "transaction.remove.expired.transaction.cleanup.interval.ms"),
            ),
            allocate_producer_id=broker.allocate_producer_id,
            group_partition_for=groups.coordinator.partition_for)

    def _coordinator_epoch(self, partition: int) -> int:
        return self._broker.partition_leader_epoch(TRANSACTION_STATE_TOPIC.name, partition)

    def _load_partition(self, partition: int, entries: list[LogEntry], now: int) -> "Outcome":
        return self.coordinator.load(
            partition, [(entry.key, entry.value) for entry in entries if entry.key is not None],
            now, self._coordinator_epoch(partition))

    def _apply(self, outcome: "Outcome") -> None:
        self._append_records(outcome.records)
        for marker in outcome.markers:
            self._write_markers(marker)
        self._deadline_changed.set()

    def _write_markers(self, marker: MarkerRequest) -> None:
        """Writes the marker to every partition of the transaction, then lets the
        coordinator complete it. A partition deleted meanwhile has nothing to mark."""
        broker = self._broker
        now = now_ms()
        for topic, partition in marker.partitions:
            leader = broker.replicas.leader_or_none(topic, partition)
            if leader is None:
                continue
            try:
                leader.log.append_marker(
                    marker.producer_id, marker.producer_epoch, commit=marker.commit,
                    coordinator_epoch=marker.coordinator_epoch,
                    leader_epoch=leader.leader_epoch, now_ms=now)
            except KafkaError as exc:
                # Kafka's marker writer drops a marker the partition refuses (a fenced
                # coordinator or producer epoch): a newer one has decided that partition.
                log.warning("transaction marker for producer %d refused by %s-%d: %s",
                            marker.producer_id, topic, partition, exc)
                continue
            broker.replicas.appended(leader)
            broker.notify_append(topic, partition)
            if topic == OFFSETS_TOPIC.name:
                broker.groups.complete_transaction(marker.producer_id, marker.commit, partition)
        self._apply(self.coordinator.markers_written(
            marker.transactional_id, marker.producer_id, marker.producer_epoch, now_ms=now))

    def partition_in_transaction(self, transactional_id: str, producer_id: int,
                                 producer_epoch: int, topic: str, partition: int) -> bool:
        return self.coordinator.partition_in_transaction(
            transactional_id, producer_id, producer_epoch, topic, partition)
