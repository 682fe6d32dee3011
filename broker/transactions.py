"""Runs the transaction coordinator for the broker: persists its records to
`__transaction_state` (replicated, in a cluster) before answering, writes the transaction
markers to the partitions of each ended transaction (itself where it leads them, through
WriteTxnMarkers to their leaders otherwise), verifies transactional produces for partition
leaders (KIP-890), and aborts transactions that outlive their timeout."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

import trio

from broker.coordinator_log import (OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, CoordinatorLog,
                                    LogEntry, Written)
from broker.coordinator_runtime import CoordinatorRuntime, Writes, now_ms
from broker.peer_client import PeerClient, PeerError
from coordinator.transactions import MarkerRequest, TransactionConfig, TransactionCoordinator
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from broker.broker import Broker
    from coordinator.groups import Outcome

log = logging.getLogger(__name__)

WRITE_TXN_MARKERS_VERSION = 1
VERIFY_VERSION = 4  # AddPartitionsToTxn's first version with verify_only
MARKER_RETRY_BACKOFF_S = 0.1
# Kafka's TransactionMarkerRequestCompletionHandler: a partition answering these has
# been decided by a newer producer or coordinator; its marker is dropped.
_MARKER_DROPPED = {ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.TRANSACTION_COORDINATOR_FENCED}


def write_marker(broker: "Broker", topic: str, partition: int, producer_id: int,
                 producer_epoch: int, commit: bool, coordinator_epoch: int) -> Written:
    """Appends a transaction marker on this broker, the partition's leader (WriteTxnMarkers
    and the coordinator alike); a marker on __consumer_offsets completes the group
    coordinator's transactional offsets. NOT_LEADER_OR_FOLLOWER and the log's refusals
    as KafkaError."""
    leader = broker.replicas.leader_partition(topic, partition)
    info = leader.log.append_marker(producer_id, producer_epoch, commit=commit,
                                    coordinator_epoch=coordinator_epoch,
                                    leader_epoch=leader.leader_epoch, now_ms=now_ms())
    broker.replicas.appended(leader)
    broker.notify_append(topic, partition)
    if topic == OFFSETS_TOPIC.name:
        broker.groups.complete_transaction(producer_id, commit, partition)
    return Written(leader, info.last_offset + 1)


class TransactionRuntime(CoordinatorRuntime):
    def __init__(self, broker: "Broker") -> None:
        super().__init__(broker)
        config = broker.config
        self.write_timeout_ms = config.value("request.timeout.ms")
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
        self._peers: dict[int, PeerClient] = {}

    def _coordinator_epoch(self, partition: int) -> int:
        return self._broker.partition_leader_epoch(TRANSACTION_STATE_TOPIC.name, partition)

    def _load_partition(self, partition: int, entries: list[LogEntry], now: int) -> "Outcome":
        return self.coordinator.load(
            partition, [(entry.key, entry.value) for entry in entries if entry.key is not None],
            now, self._coordinator_epoch(partition))

    def _unload_partition(self, partition: int) -> None:
        self.coordinator.unload(partition)

    def _apply(self, outcome: "Outcome") -> Writes:
        writes = self._append_records(outcome.records)
        for marker in outcome.markers:
            self._write_markers(marker, writes)
        self._deadline_changed.set()
        return writes

    # -- markers -------------------------------------------------------------------------

    def _write_markers(self, marker: MarkerRequest, prepared: Writes) -> None:
        """Once the PrepareCommit/PrepareAbort record is replicated: writes the marker to
        every partition of the transaction, then lets the coordinator complete it. A lone
        broker does it at once; in a cluster a task waits and reaches the leaders."""
        if self._broker.cluster is None and prepared.settled():
            for topic, partition in marker.partitions:
                self._write_local_marker(marker, topic, partition)
            self._markers_done(marker)
            return
        self._broker.spawn(self._send_markers, marker, prepared)

    def _write_local_marker(self, marker: MarkerRequest, topic: str,
                            partition: int) -> Written | None:
        """None when the partition refuses the marker (or is gone): nothing to wait for."""
        try:
            return write_marker(self._broker, topic, partition, marker.producer_id,
                                marker.producer_epoch, marker.commit, marker.coordinator_epoch)
        except KafkaError as exc:
            # Kafka's marker writer drops a marker the partition refuses (a fenced
            # coordinator or producer epoch): a newer one has decided that partition. A
            # partition deleted meanwhile has nothing to mark.
            log.warning("transaction marker for producer %d refused by %s-%d: %s",
                        marker.producer_id, topic, partition, exc)
            return None

    def _markers_done(self, marker: MarkerRequest) -> None:
        self._apply(self.coordinator.markers_written(
            marker.transactional_id, marker.producer_id, marker.producer_epoch,
            now_ms=now_ms()))

    async def _send_markers(self, marker: MarkerRequest, prepared: Writes) -> None:
        """Kafka's TransactionMarkerChannelManager for one transaction: waits until the
        prepare record is replicated (while this broker still coordinates), then writes
        the marker to each partition, itself or through WriteTxnMarkers to its leader,
        retrying retriable failures, until every partition has it."""
        while (error := await self._replicated(prepared)) is not None:
            if not self.coordinates(marker.transactional_id):
                return  # the next coordinator resends the markers from the log
            log.info("transaction %r: prepare record not replicated (%s); waiting",
                     marker.transactional_id, error.name)
            await trio.sleep(MARKER_RETRY_BACKOFF_S)
            prepared = Writes(prepared.appended)
        pending = set(marker.partitions)
        while pending:
            if not self.coordinates(marker.transactional_id):
                return
            by_leader: dict[int, list[tuple[str, int]]] = defaultdict(list)
            local: list[tuple[tuple[str, int], Written]] = []
            for topic, partition in sorted(pending):
                if self._broker.replicas.leader_or_none(topic, partition) is not None:
                    written = self._write_local_marker(marker, topic, partition)
                    if written is None:
                        pending.discard((topic, partition))
                    else:
                        local.append(((topic, partition), written))
                    continue
                leader = self._leader_of(topic, partition)
                if leader is None:
                    if self._broker.cluster.partition(topic, partition) is None:
                        pending.discard((topic, partition))  # deleted: nothing to mark
                    continue  # no leader yet: retried
                by_leader[leader].append((topic, partition))
            for key, written in local:
                if await self._replicated(Writes([written])) is None:
                    pending.discard(key)
            for leader, partitions in by_leader.items():
                pending -= await self._send_to(leader, marker, partitions)
            if pending:
                await trio.sleep(MARKER_RETRY_BACKOFF_S)
        if self.coordinates(marker.transactional_id):
            self._markers_done(marker)

    def _leader_of(self, topic: str, partition: int) -> int | None:
        cluster = self._broker.cluster
        view = cluster.partition(topic, partition)
        if view is None or cluster.endpoint_of(view.leader) is None:
            return None
        return view.leader

    def _peer(self, node_id: int) -> PeerClient:
        peer = self._peers.get(node_id)
        if peer is None:
            cluster = self._broker.cluster
            peer = PeerClient(node_id, cluster.endpoint_of,
                              client_id=f"broker-{self._broker.node_id}-txn-coordinator",
                              connect_timeout_s=self.write_timeout_ms / 1000)
            self._peers[node_id] = peer
        return peer

    async def _send_to(self, leader: int, marker: MarkerRequest,
                       partitions: list[tuple[str, int]]) -> set[tuple[str, int]]:
        """WriteTxnMarkers to one leader; the partitions that are done (marked, or
        dropped as Kafka drops them)."""
        topics: dict[str, list[int]] = defaultdict(list)
        for topic, partition in partitions:
            topics[topic].append(partition)
        request = {"markers": [{
            "producer_id": marker.producer_id, "producer_epoch": marker.producer_epoch,
            "transaction_result": marker.commit, "coordinator_epoch": marker.coordinator_epoch,
            "topics": [{"name": topic, "partition_indexes": indexes}
                       for topic, indexes in topics.items()]}]}
        try:
            response = await self._peer(leader).request(
                ApiKey.WRITE_TXN_MARKERS, WRITE_TXN_MARKERS_VERSION, request,
                timeout_s=self.write_timeout_ms / 1000)
        except PeerError as exc:
            log.info("transaction markers to broker %d: %s; retrying", leader, exc)
            return set()
        done = set()
        for answer in response.markers:
            for topic in answer.topics:
                for result in topic.partitions:
                    code = result.error_code
                    if code == ErrorCode.NONE or code in _MARKER_DROPPED:
                        done.add((topic.name, result.partition_index))
                    else:
                        log.info("transaction marker for producer %d on %s-%d: %s; retrying",
                                 marker.producer_id, topic.name, result.partition_index,
                                 ErrorCode(code).name)
        return done

    # -- verification of transactional produces (KIP-890) ----------------------------------

    async def verify_partition(self, transactional_id: str, producer_id: int,
                               producer_epoch: int, topic: str, partition: int) -> ErrorCode:
        """Whether the transaction has added the partition: asked of the local coordinator,
        or of the transactional id's coordinator with AddPartitionsToTxn verify_only (as
        Kafka's AddPartitionsToTxnManager does)."""
        if self.coordinates(transactional_id):
            errors = self.query(
                self.coordinator.add_partitions, transactional_id, producer_id,
                producer_epoch, [(topic, partition)], api_version=VERIFY_VERSION,
                verify_only=True)
            return errors[(topic, partition)]
        try:
            node, _, _ = self.coordinator_node(transactional_id)
        except KafkaError as exc:
            return exc.code
        request = {"transactions": [{
            "transactional_id": transactional_id, "producer_id": producer_id,
            "producer_epoch": producer_epoch, "verify_only": True,
            "topics": [{"name": topic, "partitions": [partition]}]}]}
        try:
            response = await self._peer(node).request(
                ApiKey.ADD_PARTITIONS_TO_TXN, VERIFY_VERSION, request,
                timeout_s=self.write_timeout_ms / 1000)
        except PeerError as exc:
            log.info("verifying %r with broker %d: %s", transactional_id, node, exc)
            return ErrorCode.NETWORK_EXCEPTION
        if response.error_code != ErrorCode.NONE:
            return ErrorCode(response.error_code)
        for result in response.results_by_transaction:
            for topic_result in result.topic_results:
                for partition_result in topic_result.results_by_partition:
                    return ErrorCode(partition_result.partition_error_code)
        return ErrorCode.UNKNOWN_SERVER_ERROR
