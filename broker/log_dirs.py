"""Moving a replica between this broker's log dirs (AlterReplicaLogDirs), as Kafka's
ReplicaAlterLogDirsManager does: a future log in the destination dir copies the replica's
batches while it keeps serving, and takes its place once it has caught up.

The copy runs on a worker thread a chunk at a time; the switch runs on the trio thread
without awaiting, so no append can come between the last check and the switch. A copy
starts over if the replica's log was truncated meanwhile (a leader change), and follows
its log start offset (retention, DeleteRecords). A stop during a move leaves the replica
where it was; the partial copy is removed at the next start."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from storage.log import PartitionLog
from storage.manager import LogManager
from wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from broker.broker import Broker

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20
CAUGHT_UP_WAIT_S = 0.05  # between copy rounds once the future log has caught up

Key = tuple[str, int]


@dataclass
class Move:
    source: PartitionLog
    destination: LogManager
    future: PartitionLog
    cancel_scope: trio.CancelScope

    @property
    def offset_lag(self) -> int:
        return max(self.source.log_end_offset - self.future.log_end_offset, 0)


class ReplicaMover:
    def __init__(self, broker: "Broker") -> None:
        self._broker = broker
        self._moves: dict[Key, Move] = {}
        # Where a replica not hosted yet goes when it is created (Kafka's preferred log dir).
        self.preferred: dict[Key, LogManager] = {}

    def futures(self) -> dict[Key, Move]:
        return dict(self._moves)

    def alter(self, topic: str, partition: int, destination: LogManager | None) -> ErrorCode:
        """One partition of an AlterReplicaLogDirs request (`destination` None: the path
        names no log dir of this broker): Kafka's checks and codes."""
        broker = self._broker
        if destination is None:
            return ErrorCode.LOG_DIR_NOT_FOUND
        key = (topic, partition)
        move = self._moves.get(key)
        if move is not None and move.destination is not destination:
            self._call_off(key)
        self.preferred[key] = destination
        source = broker.partition_log(topic, partition)
        if source is None:
            return (ErrorCode.REPLICA_NOT_AVAILABLE if broker.partition_exists(topic, partition)
                    else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if destination.get(topic, partition) is source or key in self._moves:
            return ErrorCode.NONE  # there already, or on its way
        future = destination.create_future(topic, partition, source.config, source.topic_id,
                                           start_offset=source.log_start_offset,
                                           now_ms=_now_ms())
        move = Move(source, destination, future, trio.CancelScope())
        self._moves[key] = move
        log.info("%s-%d: moving from %s to %s", topic, partition, source.directory.parent,
                 destination.log_dir)
        broker.spawn(self._copy, key, move)
        return ErrorCode.NONE

    def close(self) -> None:
        """The broker stops: moves under way end; their replicas stay where they are."""
        for key in list(self._moves):
            self._call_off(key)

    def _call_off(self, key: Key) -> None:
        move = self._moves.pop(key)
        move.cancel_scope.cancel()
        LogManager.discard_future(move.future)
        log.info("%s-%d: move to %s called off", *key, move.destination.log_dir)

    async def _copy(self, key: Key, move: Move) -> None:
        with move.cancel_scope:
            try:
                await self._copy_until_switched(key, move)
            except (KafkaError, OSError) as exc:
                # A batch the copy cannot take, a full disk: the replica stays where it is.
                if self._moves.get(key) is move:
                    log.warning("%s-%d: move to %s failed: %s", *key, move.destination.log_dir,
                                exc)
                    self._call_off(key)

    async def _copy_until_switched(self, key: Key, move: Move) -> None:
        source, future = move.source, move.future
        truncations = source.truncations
        while True:
            if self._broker.partition_log(*key) is not source:
                # Deleted, or no longer a replica here: nothing to move any more.
                self._call_off(key)
                return
            if source.truncations != truncations or source.log_start_offset > future.log_end_offset:
                truncations = source.truncations
                future.truncate_fully_and_start_at(source.log_start_offset, now_ms=_now_ms())
            copied = await trio.to_thread.run_sync(_copy_chunk, source, future)
            if (self._broker.partition_log(*key) is source and source.truncations == truncations
                    and future.log_end_offset == source.log_end_offset):
                self._switch(key, move)  # no await since the check: nothing came between
                return
            if not copied:
                await trio.sleep(CAUGHT_UP_WAIT_S)

    def _switch(self, key: Key, move: Move) -> None:
        source, future = move.source, move.future
        future.update_high_watermark(source.high_watermark)
        if future.log_start_offset < source.log_start_offset:
            future.delete_records_before(min(source.log_start_offset, future.high_watermark),
                                         now_ms=_now_ms())
        del self._moves[key]
        origin = self._broker.hosting_manager(*key)  # the source's: the copy is not in yet
        moved = move.destination.adopt_future(
            future, high_watermark=source.high_watermark,
            cleaner_checkpoint=source.cleaner_checkpoint, now_ms=_now_ms())
        self._broker.replicas.replace_log(*key, moved)
        origin.delete(*key)
        self.preferred.pop(key, None)
        log.info("%s-%d: moved from %s to %s", *key, origin.log_dir, move.destination.log_dir)


def _copy_chunk(source: PartitionLog, future: PartitionLog) -> int:
    """Appends the source's next batches to the future log; how many bytes. Caught up, it
    flushes the copy here, so that the switch on the trio thread has little to flush."""
    data = source.read(future.log_end_offset, COPY_CHUNK_BYTES,
                       max_offset=source.log_end_offset, min_one_batch=True).read()
    if data:
        future.append_as_follower(data, now_ms=_now_ms())
    if future.log_end_offset >= source.log_end_offset:
        future.flush()
    return len(data)


def _now_ms() -> int:
    return int(time.time() * 1000)
