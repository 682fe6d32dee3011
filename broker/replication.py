"""The replica manager: which partitions this broker leads or follows, the followers'
progress and the ISR of the partitions it leads, the high watermark, acks=all, and the
follower fetchers (after Kafka's ReplicaManager, Partition, AbstractFetcherThread and
DelayedProduce).

The cluster runtime tells it the partition states (`apply`); alone, a broker leads every
partition it hosts with itself as the whole ISR (`lead_all_locally`), and its produce
path costs one dict lookup more than a bare log append.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, Iterable

import trio

from broker.peer_client import PeerClient, PeerError
from storage.log import PartitionLog
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from broker.broker import Broker

log = logging.getLogger(__name__)

FETCH_VERSION = 12  # topic names, last_fetched_epoch and diverging_epoch (KIP-595/-320)
OFFSET_FOR_LEADER_EPOCH_VERSION = 4
UNKNOWN_OFFSET = -1
UNDEFINED_EPOCH = -1

AlterIsr = Callable[["PartitionState", list[int]], Awaitable["PartitionState | None"]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class PartitionState:
    """A partition as the cluster decided it (ZooKeeper's partition state znode and the
    topic's assignment). `version` is the znode version, opaque here: it goes back to
    alter_isr for the compare-and-set."""
    topic: str
    partition: int
    replicas: list[int]
    leader: int
    leader_epoch: int
    isr: list[int]
    version: int


@dataclass
class FollowerProgress:
    """What the leader knows of one follower (Kafka's ReplicaState)."""
    log_end_offset: int = UNKNOWN_OFFSET
    last_caught_up_ms: int = 0
    last_fetch_leader_log_end_offset: int = UNKNOWN_OFFSET
    last_fetch_ms: int = 0
    log_start_offset: int = UNKNOWN_OFFSET  # as its last fetch said (DeleteRecords waits)

    def is_caught_up(self, leader_end_offset: int, now_ms: int, max_lag_ms: int) -> bool:
        # Kafka's ReplicaState.isCaughtUp: at the leader's end, or there within max lag.
        return (leader_end_offset == self.log_end_offset
                or now_ms - self.last_caught_up_ms <= max_lag_ms)


class Partition:
    """One partition hosted here. Handlers read `log`, `leader_epoch` and `is_leader`;
    everything else changes through the ReplicaManager."""

    __slots__ = ("topic", "partition", "log", "state", "is_leader", "leader_epoch",
                 "isr", "followers", "epoch_start_offset", "isr_in_flight", "pending_isr")

    def __init__(self, topic: str, partition: int, log: PartitionLog) -> None:
        self.topic = topic
        self.partition = partition
        self.log = log
        self.state: PartitionState | None = None
        self.is_leader = False
        self.leader_epoch = UNDEFINED_EPOCH
        self.isr: list[int] = []
        self.followers: dict[int, FollowerProgress] = {}  # leader only: the other replicas
        self.epoch_start_offset = 0  # leader: log end offset when its epoch began
        self.isr_in_flight = False  # an alter_isr is outstanding
        self.pending_isr: list[int] = []  # ...for this ISR (Kafka's maximal ISR meanwhile)

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """KIP-320: a client's view of the leader epoch must match ours (-1: not checked)."""
        if current_leader_epoch == -1:
            return
        leader_epoch = self.leader_epoch
        if current_leader_epoch < leader_epoch:
            raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH,
                             f"{self.topic}-{self.partition}: leader epoch "
                             f"{current_leader_epoch} < {leader_epoch}")
        if current_leader_epoch > leader_epoch:
            raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH,
                             f"{self.topic}-{self.partition}: leader epoch "
                             f"{current_leader_epoch} > {leader_epoch}")

    def maximal_isr(self) -> list[int]:
        """The ISR, plus the replicas an outstanding expansion adds (KIP-497): the high
        watermark waits for them too, which is safe whichever way the change goes."""
        if self.isr_in_flight and len(self.pending_isr) > len(self.isr):
            return self.pending_isr
        return self.isr


@dataclass(eq=False)  # compared by identity: a new state for the same partition is another
class _FetchState:
    """A partition in a follower fetcher."""
    partition: Partition
    leader_epoch: int
    truncating: bool = True  # OffsetForLeaderEpoch before fetching (KIP-101/279)
    delayed_until: float = 0.0  # trio time: backing off after an error


@dataclass
class _Fetcher:
    leader_id: int
    client: PeerClient
    partitions: dict[tuple[str, int], _FetchState] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)
    cancel_scope: trio.CancelScope | None = None


class ReplicaManager:
    def __init__(self, broker: "Broker", node_id: int,
                 endpoint_of: Callable[[int], tuple[str, int] | None],
                 alter_isr: AlterIsr | None) -> None:
        self._broker = broker
        self.node_id = node_id
        self._endpoint_of = endpoint_of
        self._alter_isr = alter_isr
        self._partitions: dict[tuple[str, int], Partition] = {}
        self._fetchers: dict[int, _Fetcher] = {}
        self._nursery: trio.Nursery | None = None
        self.standalone = False
        config = broker.config
        self.replica_lag_time_max_ms = config.value("replica.lag.time.max.ms")
        self.fetch_wait_max_ms = config.value("replica.fetch.wait.max.ms")
        self.fetch_min_bytes = config.value("replica.fetch.min.bytes")
        self.fetch_response_max_bytes = config.value("replica.fetch.response.max.bytes")
        self.fetch_max_bytes = config.value("replica.fetch.max.bytes")
        self.fetch_backoff_ms = config.value("replica.fetch.backoff.ms")
        self.socket_timeout_ms = config.value("replica.socket.timeout.ms")

    def connect(self, endpoint_of: Callable[[int], tuple[str, int] | None],
                alter_isr: AlterIsr) -> None:
        """Gives a clustered broker's manager (created without them at start-up) the
        peers' addresses and the ISR compare-and-set."""
        self._endpoint_of = endpoint_of
        self._alter_isr = alter_isr

    def _endpoint(self, node_id: int) -> tuple[str, int] | None:
        return self._endpoint_of(node_id)

    @classmethod
    def standalone_for(cls, broker: "Broker") -> "ReplicaManager":
        """A broker alone: leader of every partition it hosts, ISR = [itself]."""
        manager = cls(broker, broker.node_id, lambda _node: None, None)
        manager.standalone = True
        return manager

    # -- lookups (the request path) ----------------------------------------------------

    def get(self, topic: str, partition: int) -> Partition | None:
        return self._partitions.get((topic, partition))

    def leader_partition(self, topic: str, partition: int) -> Partition:
        """The partition if this broker leads it; UNKNOWN_TOPIC_OR_PARTITION when it is
        not hosted here, NOT_LEADER_OR_FOLLOWER when another broker leads it."""
        found = self._partitions.get((topic, partition))
        if found is not None and found.is_leader:
            return found
        if found is None and self._broker.partition_log(topic, partition) is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"This server does not host this topic-partition: {topic}-{partition}")
        raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                         f"This server is not the leader for {topic}-{partition}")

    def leader_or_none(self, topic: str, partition: int) -> Partition | None:
        found = self._partitions.get((topic, partition))
        return found if found is not None and found.is_leader else None

    def leader_epoch(self, topic: str, partition: int) -> int:
        """The partition's current leader epoch as this broker knows it; -1 if unknown."""
        found = self._partitions.get((topic, partition))
        return found.leader_epoch if found is not None else UNDEFINED_EPOCH

    def partitions(self) -> list[Partition]:
        return list(self._partitions.values())

    # -- the leader's high watermark -----------------------------------------------------

    def appended(self, partition: Partition) -> None:
        """After an append on the leader: alone in the ISR, the high watermark follows the
        log end at once; otherwise it moves when the followers have the records."""
        if not partition.followers:
            partition.log.update_high_watermark(partition.log.log_end_offset)
        else:
            self._maybe_increment_high_watermark(partition, _now_ms())

    def _maybe_increment_high_watermark(self, partition: Partition, now_ms: int) -> bool:
        """Kafka's maybeIncrementLeaderHW: the smallest log end offset among the (maximal)
        ISR and the replicas caught up enough to be waited for; never moves back."""
        partition_log = partition.log
        leader_end_offset = partition_log.log_end_offset
        new_high_watermark = leader_end_offset
        isr = partition.maximal_isr()
        max_lag_ms = self.replica_lag_time_max_ms
        for replica_id, progress in partition.followers.items():
            if progress.log_end_offset < new_high_watermark and (
                    replica_id in isr
                    or progress.is_caught_up(leader_end_offset, now_ms, max_lag_ms)):
                new_high_watermark = progress.log_end_offset
        if new_high_watermark > partition_log.high_watermark:
            partition_log.update_high_watermark(new_high_watermark)
            return True
        return False

    # -- followers fetching from this leader -------------------------------------------

    def follower_fetched(self, topic: str, partition: int, replica_id: int, fetch_offset: int,
                         now_ms: int, log_start_offset: int = UNKNOWN_OFFSET) -> None:
        """A follower asked for records from `fetch_offset`: that is its log end offset.
        Updates its progress, maybe expands the ISR and advances the high watermark
        (waking acks=all produces and consumer fetches) and the low watermark (waking
        DeleteRecords)."""
        found = self._partitions.get((topic, partition))
        if found is None or not found.is_leader:
            return
        progress = found.followers.get(replica_id)
        if progress is None:
            return
        leader_end_offset = found.log.log_end_offset
        # Kafka's Replica.updateFetchStateOrThrow: caught up now if at the leader's end; caught
        # up as of the previous fetch if it reached the end the leader had then.
        if fetch_offset >= leader_end_offset:
            progress.last_caught_up_ms = max(progress.last_caught_up_ms, now_ms)
        elif fetch_offset >= progress.last_fetch_leader_log_end_offset:
            progress.last_caught_up_ms = max(progress.last_caught_up_ms, progress.last_fetch_ms)
        progress.log_end_offset = fetch_offset
        progress.last_fetch_leader_log_end_offset = max(
            leader_end_offset, progress.last_fetch_leader_log_end_offset)
        progress.last_fetch_ms = now_ms
        moved_start = log_start_offset != progress.log_start_offset
        progress.log_start_offset = log_start_offset
        self._maybe_expand_isr(found, replica_id, progress)
        if self._maybe_increment_high_watermark(found, now_ms) or moved_start:
            self._broker.notify_append(topic, partition)

    def low_watermark(self, partition: Partition) -> int:
        """Kafka's lowWatermarkIfLeader: the smallest log start offset among this leader
        and the followers on live brokers (as they last reported it)."""
        low = partition.log.log_start_offset
        for replica_id, progress in partition.followers.items():
            if self._endpoint_of(replica_id) is not None:
                low = min(low, progress.log_start_offset)
        return low

    def _maybe_expand_isr(self, partition: Partition, replica_id: int,
                          progress: FollowerProgress) -> None:
        # Kafka's isFollowerInSync: at the high watermark and past the start of this
        # leader's epoch (so it has every record this leader may have acknowledged).
        if (partition.isr_in_flight or replica_id in partition.isr
                or progress.log_end_offset < partition.log.high_watermark
                or progress.log_end_offset < partition.epoch_start_offset):
            return
        self._submit_isr(partition, partition.isr + [replica_id])

    def _submit_isr(self, partition: Partition, new_isr: list[int]) -> None:
        if self._alter_isr is None or self._nursery is None or partition.state is None:
            return
        partition.isr_in_flight = True
        partition.pending_isr = new_isr
        self._nursery.start_soon(self._alter_isr_task, partition, partition.state, new_isr)

    async def _alter_isr_task(self, partition: Partition, state: PartitionState,
                              new_isr: list[int]) -> None:
        try:
            result = await self._alter_isr(state, new_isr)
        except Exception:
            log.exception("%s-%d: changing the ISR to %s failed", state.topic, state.partition,
                          new_isr)
            result = None
        if partition.pending_isr is new_isr:  # still the change in flight: it is over
            partition.isr_in_flight = False
            partition.pending_isr = []
        if result is None or not partition.is_leader or partition.state is not state:
            # The state moved meanwhile: the one the cluster runtime applies rules.
            return
        self._apply_leader_state(partition, result)

    async def _shrink_isr_loop(self) -> None:
        # Kafka checks every replica.lag.time.max.ms / 2 (isr-expiration).
        interval_s = max(self.replica_lag_time_max_ms / 2, 10) / 1000
        while True:
            await trio.sleep(interval_s)
            try:
                self.shrink_isrs(_now_ms())
            except Exception:
                log.exception("ISR shrink check failed")

    def shrink_isrs(self, now_ms: int) -> None:
        """Removes from the ISR of each partition led here the followers not caught up for
        replica.lag.time.max.ms (Kafka's getOutOfSyncReplicas and isFollowerOutOfSync)."""
        max_lag_ms = self.replica_lag_time_max_ms
        for partition in list(self._partitions.values()):
            if not partition.is_leader or not partition.followers or partition.isr_in_flight:
                continue
            leader_end_offset = partition.log.log_end_offset
            out_of_sync = [
                replica_id for replica_id in partition.isr
                if replica_id != self.node_id and (
                    (progress := partition.followers.get(replica_id)) is None
                    or not progress.is_caught_up(leader_end_offset, now_ms, max_lag_ms))]
            if out_of_sync:
                log.info("%s-%d: followers %s out of sync for %d ms; shrinking the ISR",
                         partition.topic, partition.partition, out_of_sync, max_lag_ms)
                self._submit_isr(partition, [replica_id for replica_id in partition.isr
                                             if replica_id not in out_of_sync])

    # -- acks=all ----------------------------------------------------------------------

    async def wait_for_acks(self, waits: list[tuple[Partition, int, dict]],
                            timeout_ms: int) -> None:
        """Kafka's DelayedProduce: waits (at most `timeout_ms`) until each partition's high
        watermark passes its required offset (the batch's last offset + 1), then sets
        each result's error_code: NONE; NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR
        shrank below min.insync.replicas meanwhile; NOT_LEADER_OR_FOLLOWER when the
        leadership moved; REQUEST_TIMED_OUT when the time ran out."""
        broker = self._broker
        deadline = trio.current_time() + max(timeout_ms, 0) / 1000
        outstanding = waits
        while True:
            still = []
            for partition, required_offset, result in outstanding:
                if (not partition.is_leader
                        or self._partitions.get((partition.topic, partition.partition)) is not partition):
                    result["error_code"] = ErrorCode.NOT_LEADER_OR_FOLLOWER
                elif partition.log.high_watermark >= required_offset:
                    min_insync = broker.topic_policy(partition.topic).min_insync_replicas
                    if len(partition.maximal_isr()) < min_insync:
                        result["error_code"] = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
                else:
                    still.append((partition, required_offset, result))
            outstanding = still
            if not outstanding:
                return
            remaining_s = deadline - trio.current_time()
            if remaining_s <= 0:
                for _, _, result in outstanding:
                    result["error_code"] = ErrorCode.REQUEST_TIMED_OUT
                return
            await broker.waiters.wait_for_append(
                [(partition.topic, partition.partition) for partition, _, _ in outstanding],
                remaining_s)

    # -- partition states --------------------------------------------------------------

    def lead_locally(self, topic: str, partition: int, partition_log: PartitionLog,
                     leader_epoch: int) -> None:
        """Alone: lead this partition with ISR = [this broker]; what the log holds is what
        was acknowledged, so the high watermark is its end."""
        entry = Partition(topic, partition, partition_log)
        entry.is_leader = True
        entry.leader_epoch = leader_epoch
        entry.isr = [self.node_id]
        entry.epoch_start_offset = partition_log.log_end_offset
        partition_log.update_high_watermark(partition_log.log_end_offset)
        self._partitions[(topic, partition)] = entry

    def local_log_created(self, topic: str, partition: int, partition_log: PartitionLog,
                          leader_epoch: int) -> None:
        """A log was created here. Alone, this broker leads it at once; in a cluster it
        waits for the partition state (`apply`)."""
        if self.standalone:
            self.lead_locally(topic, partition, partition_log, leader_epoch)

    def replace_log(self, topic: str, partition: int, partition_log: PartitionLog) -> None:
        """The partition's replica moved to another log dir: its log there from now on."""
        found = self._partitions.get((topic, partition))
        if found is not None:
            found.log = partition_log

    def remove(self, topic: str, partition: int) -> None:
        """The partition is no longer hosted here (deleted): stop leading or following it."""
        found = self._partitions.pop((topic, partition), None)
        if found is not None:
            was_leader = found.is_leader
            found.is_leader = False
            self._stop_fetching(found)
            self._broker.notify_append(topic, partition)
            if was_leader and not self.standalone:
                self._broker.leadership_changed(topic, partition, False)

    async def apply(self, states: Iterable[PartitionState]) -> None:
        """Makes this broker leader, follower or neither of each partition as its state
        says. Idempotent: an unchanged state changes nothing."""
        for state in states:
            try:
                self._apply_one(state)
            except Exception:
                # One partition's failure (a log that cannot open) must not stop the others.
                log.exception("%s-%d: applying %s failed", state.topic, state.partition, state)

    def _apply_one(self, state: PartitionState) -> None:
        key = (state.topic, state.partition)
        found = self._partitions.get(key)
        if found is not None and found.state == state:
            return
        if self.node_id not in state.replicas:
            if found is not None:
                log.info("%s-%d: no longer a replica here", state.topic, state.partition)
                self._become_none(found, state)
            return
        if found is None:
            partition_log = self._local_log(state.topic, state.partition)
            if partition_log is None:
                log.warning("%s-%d: assigned here but the topic is unknown; waiting",
                            state.topic, state.partition)
                return
            found = Partition(state.topic, state.partition, partition_log)
            self._partitions[key] = found
        if state.leader == self.node_id:
            if found.is_leader and found.leader_epoch == state.leader_epoch:
                self._apply_leader_state(found, state)
            else:
                self._become_leader(found, state)
        else:
            self._become_follower(found, state)

    def _local_log(self, topic: str, partition: int) -> PartitionLog | None:
        broker = self._broker
        partition_log = broker.partition_log(topic, partition)
        if partition_log is None:
            info = broker.metadata.topics.get(topic)
            if info is None:
                return None
            broker.ensure_local_partitions(info, [partition])
            partition_log = broker.partition_log(topic, partition)
        return partition_log

    def _become_leader(self, partition: Partition, state: PartitionState) -> None:
        """Kafka's makeLeader: a new leader epoch starts at our log end; the followers'
        progress starts over (ISR members counted caught up now, others not)."""
        self._stop_fetching(partition)
        now_ms = _now_ms()
        partition_log = partition.log
        partition.is_leader = True
        partition.leader_epoch = state.leader_epoch
        partition.epoch_start_offset = partition_log.log_end_offset
        partition.isr_in_flight = False
        partition.pending_isr = []
        partition.followers = {
            replica_id: FollowerProgress(last_caught_up_ms=now_ms if replica_id in state.isr else 0)
            for replica_id in state.replicas if replica_id != self.node_id}
        log.info("%s-%d: leader in epoch %d (ISR %s, log end %d, high watermark %d)",
                 state.topic, state.partition, state.leader_epoch, state.isr,
                 partition_log.log_end_offset, partition_log.high_watermark)
        self._apply_leader_state(partition, state)
        self._broker.leadership_changed(partition.topic, partition.partition, True)

    def _apply_leader_state(self, partition: Partition, state: PartitionState) -> None:
        """Same leader epoch: take the replicas and ISR (after our own alter_isr, or the
        controller's), then recompute the high watermark."""
        partition.state = state
        partition.isr = list(state.isr)
        now_ms = _now_ms()
        for replica_id in state.replicas:
            if replica_id != self.node_id and replica_id not in partition.followers:
                partition.followers[replica_id] = FollowerProgress()
        for replica_id in list(partition.followers):
            if replica_id not in state.replicas:
                del partition.followers[replica_id]
        if not partition.followers:
            partition.log.update_high_watermark(partition.log.log_end_offset)
        else:
            self._maybe_increment_high_watermark(partition, now_ms)
        # acks=all waiters re-check: the high watermark or the ISR size may have changed.
        self._broker.notify_append(partition.topic, partition.partition)

    def _become_follower(self, partition: Partition, state: PartitionState) -> None:
        """Kafka's makeFollower: stop serving clients; (re)start fetching from the leader,
        truncating first when the leader or its epoch changed."""
        was_leader = partition.is_leader
        same = (not was_leader and partition.state is not None
                and partition.state.leader == state.leader
                and partition.leader_epoch == state.leader_epoch)
        partition.state = state
        partition.isr = list(state.isr)
        if same:
            return
        partition.is_leader = False
        partition.leader_epoch = state.leader_epoch
        partition.followers = {}
        partition.isr_in_flight = False
        partition.pending_isr = []
        log.info("%s-%d: following broker %d in epoch %d (log end %d)", state.topic,
                 state.partition, state.leader, state.leader_epoch,
                 partition.log.log_end_offset)
        self._stop_fetching(partition)
        self._start_fetching(partition, state.leader, state.leader_epoch)
        if was_leader:
            self._broker.notify_append(partition.topic, partition.partition)
            self._broker.leadership_changed(partition.topic, partition.partition, False)

    def _become_none(self, partition: Partition, state: PartitionState) -> None:
        was_leader = partition.is_leader
        partition.state = state
        partition.is_leader = False
        partition.leader_epoch = state.leader_epoch
        partition.followers = {}
        self._stop_fetching(partition)
        self._broker.notify_append(partition.topic, partition.partition)
        if was_leader:
            self._broker.leadership_changed(partition.topic, partition.partition, False)

    # -- follower fetchers -------------------------------------------------------------

    def _start_fetching(self, partition: Partition, leader_id: int, leader_epoch: int) -> None:
        fetcher = self._fetchers.get(leader_id)
        if fetcher is None:
            client = PeerClient(leader_id, self._endpoint,
                                client_id=f"broker-{self.node_id}-fetcher-{leader_id}",
                                connect_timeout_s=self.socket_timeout_ms / 1000)
            fetcher = _Fetcher(leader_id, client)
            self._fetchers[leader_id] = fetcher
            if self._nursery is not None:
                self._nursery.start_soon(self._run_fetcher, fetcher)
        fetcher.partitions[(partition.topic, partition.partition)] = _FetchState(
            partition, leader_epoch)
        fetcher.changed.set()

    def _stop_fetching(self, partition: Partition) -> None:
        key = (partition.topic, partition.partition)
        for fetcher in self._fetchers.values():
            if fetcher.partitions.pop(key, None) is not None:
                fetcher.changed.set()

    async def run(self) -> None:
        """The manager's tasks: a fetcher per leader followed and the ISR shrink check.
        Runs until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for fetcher in list(self._fetchers.values()):
                    nursery.start_soon(self._run_fetcher, fetcher)
                if not self.standalone:
                    nursery.start_soon(self._shrink_isr_loop)
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def _run_fetcher(self, fetcher: _Fetcher) -> None:
        """One task per leader broker: truncates, then fetches every partition this
        broker follows from it in one Fetch request at a time."""
        with trio.CancelScope() as scope:
            fetcher.cancel_scope = scope
            try:
                while True:
                    fetcher.changed = trio.Event()
                    now = trio.current_time()
                    ready = [s for s in fetcher.partitions.values() if s.delayed_until <= now]
                    if not ready:
                        delays = [s.delayed_until - now for s in fetcher.partitions.values()]
                        with trio.move_on_after(min(delays) if delays else 60):
                            await fetcher.changed.wait()
                        continue
                    try:
                        truncating = [s for s in ready if s.truncating]
                        if truncating:
                            await self._truncate(fetcher, truncating)
                        fetching = [s for s in ready if not s.truncating
                                    and fetcher.partitions.get(
                                        (s.partition.topic, s.partition.partition)) is s]
                        if fetching:
                            await self._fetch(fetcher, fetching)
                    except PeerError as exc:
                        log.info("fetcher from broker %d: %s; retrying in %d ms",
                                 fetcher.leader_id, exc, self.fetch_backoff_ms)
                        await trio.sleep(self.fetch_backoff_ms / 1000)
                    except Exception:
                        # Our bug: keep the broker (and the other partitions) going.
                        log.exception("fetcher from broker %d failed; retrying in %d ms",
                                      fetcher.leader_id, self.fetch_backoff_ms)
                        await fetcher.client.aclose()
                        await trio.sleep(self.fetch_backoff_ms / 1000)
            finally:
                await fetcher.client.aclose()

    def _delay(self, fetch_state: _FetchState, *, truncate: bool) -> None:
        fetch_state.delayed_until = trio.current_time() + self.fetch_backoff_ms / 1000
        if truncate:
            fetch_state.truncating = True

    async def _truncate(self, fetcher: _Fetcher, states: list[_FetchState]) -> None:
        """KIP-101/279: ask the leader where our latest leader epoch ends there, and cut our
        log back to it; repeat (next round) while the leader names an epoch we lack."""
        asking = []
        for fetch_state in states:
            entries = fetch_state.partition.log.leader_epoch_entries()
            if not entries:
                # Nothing to compare by: keep what the high watermark covers (Kafka).
                self._truncate_to(fetch_state, fetch_state.partition.log.high_watermark)
                fetch_state.truncating = False
            else:
                asking.append((fetch_state, entries[-1][0]))
        if not asking:
            return
        topics: dict[str, list[dict]] = {}
        for fetch_state, latest_epoch in asking:
            topics.setdefault(fetch_state.partition.topic, []).append({
                "partition": fetch_state.partition.partition,
                "current_leader_epoch": fetch_state.leader_epoch,
                "leader_epoch": latest_epoch})
        response = await fetcher.client.request(
            ApiKey.OFFSET_FOR_LEADER_EPOCH, OFFSET_FOR_LEADER_EPOCH_VERSION,
            {"replica_id": self.node_id,
             "topics": [{"topic": topic, "partitions": partitions}
                        for topic, partitions in topics.items()]},
            timeout_s=self.socket_timeout_ms / 1000)
        answers = {(topic.topic, answer.partition): answer
                   for topic in response.topics for answer in topic.partitions}
        for fetch_state, _ in asking:
            partition = fetch_state.partition
            key = (partition.topic, partition.partition)
            if fetcher.partitions.get(key) is not fetch_state:
                continue  # apply() moved it meanwhile
            answer = answers.get(key)
            if answer is None or answer.error_code != ErrorCode.NONE:
                code = "missing" if answer is None else ErrorCode(answer.error_code).name
                log.info("%s-%d: OffsetForLeaderEpoch from broker %d: %s; retrying",
                         partition.topic, partition.partition, fetcher.leader_id, code)
                self._delay(fetch_state, truncate=True)
                continue
            self._truncate_by_epoch(fetch_state, answer.leader_epoch, answer.end_offset)

    def _truncate_by_epoch(self, fetch_state: _FetchState, leader_epoch: int,
                           end_offset: int) -> None:
        """Kafka's getOffsetTruncationState on the leader's (epoch, end offset)."""
        partition_log = fetch_state.partition.log
        log_end_offset = partition_log.log_end_offset
        if end_offset == UNKNOWN_OFFSET:
            # The leader knows no epoch this old: keep what the high watermark covers.
            self._truncate_to(fetch_state, min(partition_log.high_watermark, log_end_offset))
            fetch_state.truncating = False
            return
        if leader_epoch == UNDEFINED_EPOCH:
            self._truncate_to(fetch_state, min(end_offset, log_end_offset))
            fetch_state.truncating = False
            return
        own_epoch, own_end_offset = partition_log.end_offset_for_epoch(leader_epoch)
        if own_end_offset == UNKNOWN_OFFSET:
            # Every epoch we know is newer than the leader's answer: its offset rules.
            self._truncate_to(fetch_state, min(end_offset, log_end_offset))
            fetch_state.truncating = False
        elif own_epoch != leader_epoch:
            # The leader named an epoch we never had: cut to where our older epoch ends and
            # ask again with it.
            self._truncate_to(fetch_state, min(own_end_offset, log_end_offset))
            fetch_state.truncating = True
        else:
            self._truncate_to(fetch_state, min(own_end_offset, end_offset, log_end_offset))
            fetch_state.truncating = False

    def _truncate_to(self, fetch_state: _FetchState, offset: int) -> None:
        partition = fetch_state.partition
        if partition.log.truncate_to(offset, now_ms=_now_ms()):
            log.info("%s-%d: truncated to offset %d (leader epoch %d)", partition.topic,
                     partition.partition, offset, fetch_state.leader_epoch)

    async def _fetch(self, fetcher: _Fetcher, states: list[_FetchState]) -> None:
        topics: dict[str, list[dict]] = {}
        for fetch_state in states:
            partition_log = fetch_state.partition.log
            entries = partition_log.leader_epoch_entries()
            topics.setdefault(fetch_state.partition.topic, []).append({
                "partition": fetch_state.partition.partition,
                "current_leader_epoch": fetch_state.leader_epoch,
                "fetch_offset": partition_log.log_end_offset,
                "last_fetched_epoch": entries[-1][0] if entries else UNDEFINED_EPOCH,
                "log_start_offset": partition_log.log_start_offset,
                "partition_max_bytes": self.fetch_max_bytes})
        request = {
            "replica_id": self.node_id,
            "max_wait_ms": self.fetch_wait_max_ms,
            "min_bytes": self.fetch_min_bytes,
            "max_bytes": self.fetch_response_max_bytes,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,  # no fetch session: full fetches (KIP-227)
            "topics": [{"topic": topic, "partitions": partitions}
                       for topic, partitions in topics.items()],
        }
        response = await fetcher.client.request(
            ApiKey.FETCH, FETCH_VERSION, request,
            timeout_s=(self.fetch_wait_max_ms + self.socket_timeout_ms) / 1000)
        if response.error_code != ErrorCode.NONE:
            log.info("fetch from broker %d: %s", fetcher.leader_id,
                     ErrorCode(response.error_code).name)
            for fetch_state in states:
                self._delay(fetch_state, truncate=False)
            return
        now_ms = _now_ms()
        asked = {(s.partition.topic, s.partition.partition): s for s in states}
        for topic in response.responses:
            for data in topic.partitions:
                key = (topic.topic, data.partition_index)
                fetch_state = asked.pop(key, None)
                if fetch_state is None or fetcher.partitions.get(key) is not fetch_state:
                    continue  # apply() moved it while the fetch was in flight
                self._process_fetched(fetcher, fetch_state, data, now_ms)
        for fetch_state in asked.values():  # the leader left it out: do not spin on it
            self._delay(fetch_state, truncate=False)

    def _process_fetched(self, fetcher: _Fetcher, fetch_state: _FetchState, data,
                         now_ms: int) -> None:
        partition = fetch_state.partition
        partition_log = partition.log
        error = data.error_code
        if error == ErrorCode.NONE:
            diverging = data.diverging_epoch
            if diverging is not None and diverging.end_offset >= 0:
                # KIP-595: our log diverged from the leader's past this epoch's end.
                self._truncate_by_epoch(fetch_state, diverging.epoch, diverging.end_offset)
                return
            records = data.records
            if records:
                try:
                    partition_log.append_as_follower(records, now_ms=now_ms)
                except KafkaError as exc:
                    log.warning("%s-%d: appending fetched records failed: %s; truncating again",
                                partition.topic, partition.partition, exc)
                    self._delay(fetch_state, truncate=True)
                    return
            # A follower's high watermark: the leader's, as far as this log reaches.
            partition_log.update_high_watermark(
                min(data.high_watermark, partition_log.log_end_offset))
            if data.log_start_offset > partition_log.log_start_offset:
                try:
                    partition_log.delete_records_before(
                        min(data.log_start_offset, partition_log.high_watermark), now_ms=now_ms)
                except KafkaError:
                    pass  # beyond our high watermark yet: taken on a later fetch
            return
        name = ErrorCode(error).name
        if error == ErrorCode.OFFSET_OUT_OF_RANGE and (
                partition_log.log_end_offset < data.log_start_offset):
            # The leader deleted what we would fetch next: start over at its log start.
            log.info("%s-%d: behind the leader's log start %d; starting there",
                     partition.topic, partition.partition, data.log_start_offset)
            partition_log.truncate_fully_and_start_at(data.log_start_offset, now_ms=now_ms)
            return
        log.info("%s-%d: fetch from broker %d: %s; backing off", partition.topic,
                 partition.partition, fetcher.leader_id, name)
        self._delay(fetch_state, truncate=error in (
            ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.NOT_LEADER_OR_FOLLOWER,
            ErrorCode.OFFSET_OUT_OF_RANGE, ErrorCode.UNKNOWN_LEADER_EPOCH))
