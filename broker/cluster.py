"""A broker in a ZooKeeper cluster (`zookeeper.connect` set): registers itself, keeps a
cache of the cluster's metadata fed by ZooKeeper watches, tells its replica manager the
state of every partition it replicates, and, when it holds `/controller`, does the
controller's work (docs/cluster.md)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from broker.metadata import TopicInfo
from broker.replication import PartitionState as ReplicaState
from broker.zookeeper.store import (
    BrokerIdInUse,
    BrokerRegistration,
    PartitionState,
    StaleVersion,
    Watch,
    ZkError,
    ZkStore,
)
from coordinator.replica_assignment import (
    NO_LEADER,
    BrokerPlacement,
    ControlledShutdownElection,
    LeaderAndIsr,
    LeaderRecoveryState,
    OfflineElection,
    assign_added_partitions,
    assign_replicas,
    elect,
    initial_leader_and_isr,
    isr_after_broker_failure,
    validate_added_partitions_assignment,
    validate_manual_assignment,
)
from wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from broker.broker import Broker, Endpoint

log = logging.getLogger(__name__)

REFRESH_DEBOUNCE_S = 0.01  # a burst of watch events becomes one refresh
CONTROLLER_WAIT_S = 30.0


async def join_cluster(broker: "Broker", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Connects to `zookeeper.connect`, registers the broker and runs its cluster runtime
    until cancelled. A ZooKeeper that cannot be reached stops the start with a message
    naming it."""
    from broker.broker import StartupError

    config = broker.config
    store = ZkStore(config.zookeeper_connect,
                    session_timeout_ms=config.value("zookeeper.session.timeout.ms"),
                    connection_timeout_ms=config.value("zookeeper.connection.timeout.ms"))
    try:
        await trio.to_thread.run_sync(store.connect)
    except ZkError as exc:
        raise StartupError(f"cannot connect to zookeeper.connect={config.zookeeper_connect}: "
                           f"{exc}") from exc
    runtime = ClusterRuntime(broker, store)
    broker.cluster = runtime
    broker.replicas.connect(runtime.endpoint_of, runtime.alter_isr)
    try:
        await runtime.run(broker.advertised, task_status=task_status)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close)


@dataclass(frozen=True)
class PartitionView:
    """One partition as the cluster sees it: its replicas (assignment order) and state."""
    replicas: list[int]
    leader: int
    leader_epoch: int
    isr: list[int]
    version: int
    controller_epoch: int


@dataclass(frozen=True)
class Snapshot:
    brokers: dict[int, BrokerRegistration]
    controller_id: int | None
    topics: dict[str, tuple[uuid.UUID, dict[int, list[int]], dict[str, str]]]
    states: dict[tuple[str, int], PartitionState]
    deletions: list[str]


class ClusterRuntime:
    def __init__(self, broker: "Broker", store: ZkStore) -> None:
        self._broker = broker
        self._store = store
        self._changed = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._watched_states: dict[tuple[str, int], Watch] = {}
        self._watched_topics: dict[str, Watch] = {}
        self.brokers: dict[int, BrokerRegistration] = {}
        self.controller_id: int | None = None
        self.partitions: dict[tuple[str, int], PartitionView] = {}
        self._controller_epoch: int | None = None  # set while this broker is controller
        self._refreshed = trio.Event()
        self._producer_ids = iter(())  # the current block of producer ids

    # -- what the handlers read ---------------------------------------------------------

    def endpoint_of(self, node_id: int) -> tuple[str, int] | None:
        registration = self.brokers.get(node_id)
        return None if registration is None else (registration.host, registration.port)

    def live_brokers(self) -> list[BrokerRegistration]:
        return [self.brokers[node] for node in sorted(self.brokers)]

    def partition(self, topic: str, partition: int) -> PartitionView | None:
        return self.partitions.get((topic, partition))

    async def wait_for_refresh(self, timeout_s: float) -> None:
        """Until the cache has been refreshed after now (bounded)."""
        self._poke()
        refreshed = self._refreshed
        with trio.move_on_after(timeout_s):
            await refreshed.wait()

    # -- running -----------------------------------------------------------------------

    async def run(self, endpoint: "Endpoint", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        broker = self._broker
        self._token = trio.lowlevel.current_trio_token()
        store = self._store
        cluster_id = await trio.to_thread.run_sync(store.get_or_create_cluster_id,
                                                   broker.metadata.cluster_id)
        if cluster_id != broker.metadata.cluster_id:
            if broker.metadata.topics:
                raise KafkaError(ErrorCode.INCONSISTENT_CLUSTER_ID,
                                 f"ZooKeeper holds cluster id {cluster_id}, the log dirs "
                                 f"{broker.metadata.cluster_id}")
            broker.metadata.cluster_id = cluster_id
        registration = BrokerRegistration(broker.node_id, endpoint.host, endpoint.port,
                                          broker.config.value("broker.rack"))
        await self._register(registration)
        # Registered off the trio thread: a watch's first callback runs where it is set.
        await trio.to_thread.run_sync(self._watch_cluster)
        log.info("registered broker %d at %s:%d in ZooKeeper", broker.node_id, endpoint.host,
                 endpoint.port)
        await self._refresh()
        # Ready once a controller is known: a client's first Metadata answer names it
        # (admin requests go to it), as soon as one broker has won the election.
        with trio.move_on_after(CONTROLLER_WAIT_S):
            while self.controller_id is None:
                await self._changed.wait()
                await self._refresh()
        task_status.started()
        while True:
            await self._changed.wait()
            await trio.sleep(REFRESH_DEBOUNCE_S)
            await self._refresh()

    async def _register(self, registration: BrokerRegistration) -> None:
        """Registers /brokers/ids/<id>. After a kill -9 the dead process's ephemeral node
        stays until its session expires: wait for that (bounded by the session timeout)
        instead of failing the start."""
        timeout_ms = self._broker.config.value("zookeeper.session.timeout.ms")
        deadline = trio.current_time() + 2 * timeout_ms / 1000
        while True:
            try:
                await trio.to_thread.run_sync(self._store.register_broker, registration)
                return
            except BrokerIdInUse:
                if trio.current_time() > deadline:
                    raise
                log.info("broker id %d is still registered by an earlier session; waiting "
                         "for it to expire", registration.id)
                await trio.sleep(0.5)

    def _watch_cluster(self) -> None:
        store = self._store
        store.watch_brokers(self._from_zookeeper)
        store.watch_topics(self._from_zookeeper)
        store.watch_controller(self._from_zookeeper)
        store.watch_deletions(self._from_zookeeper)

    def _from_zookeeper(self, *_ignored) -> None:
        """A watch fired (on kazoo's thread): refresh on the trio thread."""
        token = self._token
        if token is None:
            return
        try:
            trio.from_thread.run_sync(self._poke, trio_token=token)
        except trio.RunFinishedError:
            pass

    def _poke(self) -> None:
        self._changed.set()

    async def _refresh(self) -> None:
        self._changed = trio.Event()
        snapshot = await trio.to_thread.run_sync(self._read_snapshot)
        await trio.to_thread.run_sync(self._watch_new, snapshot)
        self.brokers = snapshot.brokers
        self.controller_id = snapshot.controller_id
        self._apply_topics(snapshot)
        if snapshot.controller_id is None:
            epoch = await trio.to_thread.run_sync(self._store.try_become_controller,
                                                  self._broker.node_id)
            if epoch is not None:
                self._controller_epoch = epoch
                self.controller_id = self._broker.node_id
                log.info("broker %d is the controller (epoch %d)", self._broker.node_id, epoch)
        elif snapshot.controller_id != self._broker.node_id:
            self._controller_epoch = None
        if self._controller_epoch is not None:
            await trio.to_thread.run_sync(self._controller_pass, snapshot)
        await self._broker.replicas.apply(self._local_states())
        refreshed, self._refreshed = self._refreshed, trio.Event()
        refreshed.set()

    def _read_snapshot(self) -> Snapshot:
        store = self._store
        topics = {}
        states = {}
        for name in store.topics():
            assignment = store.topic_assignment(name)
            if assignment is None:
                continue
            topics[name] = (assignment.topic_id, assignment.partitions, store.topic_configs(name))
            for partition in assignment.partitions:
                state = store.partition_state(name, partition)
                if state is not None:
                    states[(name, partition)] = state
        return Snapshot(store.brokers(), store.controller_id(), topics, states,
                        store.pending_deletions())

    def _watch_new(self, snapshot: Snapshot) -> None:
        """Watches each assigned partition's state, also before the controller creates it
        (its creation is what tells the replicas to start), and each topic; drops the
        watches of what is gone."""
        assigned = {(name, partition) for name, (_id, assignment, _configs)
                    in snapshot.topics.items() for partition in assignment}
        for key in assigned - self._watched_states.keys():
            self._watched_states[key] = self._store.watch_partition_state(
                *key, self._from_zookeeper)
        for key in self._watched_states.keys() - assigned:
            self._watched_states.pop(key).cancel()
        for name in snapshot.topics.keys() - self._watched_topics.keys():
            self._watched_topics[name] = self._store.watch_topic(name, self._from_zookeeper)
        for name in self._watched_topics.keys() - snapshot.topics.keys():
            self._watched_topics.pop(name).cancel()

    def _apply_topics(self, snapshot: Snapshot) -> None:
        """Mirrors the topics into the broker's metadata and logs: creates the local
        logs of partitions assigned here, deletes those of topics gone."""
        broker = self._broker
        partitions = {}
        for name, (topic_id, assignment, configs) in snapshot.topics.items():
            info = broker.metadata.topics.get(name)
            if info is None or info.topic_id != topic_id:
                if info is not None:
                    broker.drop_local_topic(name)
                info = TopicInfo(name=name, topic_id=topic_id, partition_count=len(assignment),
                                 configs=dict(configs))
                broker.metadata.add_topic(info)
            elif info.configs != configs or info.partition_count != len(assignment):
                info.configs = dict(configs)
                info.partition_count = len(assignment)
                broker.topic_changed(name)
            local = [p for p, replicas in assignment.items() if broker.node_id in replicas]
            broker.ensure_local_partitions(info, local)
            for partition, replicas in assignment.items():
                state = snapshot.states.get((name, partition))
                if state is None:
                    partitions[(name, partition)] = PartitionView(list(replicas), NO_LEADER, -1,
                                                                  [], -1, -1)
                else:
                    partitions[(name, partition)] = PartitionView(
                        list(replicas), state.leader, state.leader_epoch, list(state.isr),
                        state.version, state.controller_epoch)
        for name in list(broker.metadata.topics):
            if name not in snapshot.topics:
                broker.drop_local_topic(name)
        self.partitions = partitions

    def _local_states(self) -> list[ReplicaState]:
        node = self._broker.node_id
        return [ReplicaState(topic, partition, view.replicas, view.leader, view.leader_epoch,
                             view.isr, view.version)
                for (topic, partition), view in sorted(self.partitions.items())
                if node in view.replicas and view.leader != NO_LEADER]

    # -- controlled shutdown -------------------------------------------------------------

    async def controlled_shutdown(self) -> None:
        """Before a clean stop (controlled.shutdown.enable): hands every partition this
        broker leads to another live member of its ISR (Kafka's ControlledShutdown
        election, the stopping broker out of the ISR), so clients move over at once
        instead of after the ZooKeeper session expires. A partition with no other ISR
        member keeps its leader, as in Kafka."""
        node = self._broker.node_id
        live = set(self.brokers)
        moved = 0
        for (topic, partition), view in sorted(self.partitions.items()):
            if view.leader != node:
                continue
            current = LeaderAndIsr(view.leader, view.leader_epoch, tuple(view.isr))
            handed = elect(current, ControlledShutdownElection(frozenset({node})),
                           view.replicas, live)
            if handed is None:
                continue
            try:
                await trio.to_thread.run_sync(
                    self._store.update_partition_state, topic, partition,
                    _to_znode(handed, view.controller_epoch, view.version), view.version)
            except StaleVersion:
                continue  # the controller moved it meanwhile
            moved += 1
        log.info("controlled shutdown: handed over %d leadership(s)", moved)

    # -- the ISR, written by partition leaders --------------------------------------------

    async def alter_isr(self, state: ReplicaState, new_isr: list[int]) -> ReplicaState | None:
        """Compare-and-set of the partition's ISR (leader and epoch unchanged); None when
        the state moved meanwhile (the next refresh brings it)."""
        view = self.partitions.get((state.topic, state.partition))
        controller_epoch = view.controller_epoch if view is not None else 0
        wanted = PartitionState(state.leader, state.leader_epoch, list(new_isr),
                                controller_epoch, 0, state.version)
        try:
            written = await trio.to_thread.run_sync(
                self._store.update_partition_state, state.topic, state.partition, wanted,
                state.version)
        except StaleVersion:
            self._poke()
            return None
        log.info("%s-%d: ISR %s -> %s", state.topic, state.partition, state.isr, new_isr)
        self._poke()
        return ReplicaState(state.topic, state.partition, state.replicas, state.leader,
                            state.leader_epoch, list(written.isr), written.version)

    # -- topics, written by any broker ----------------------------------------------------

    def placements(self) -> list[BrokerPlacement]:
        return [BrokerPlacement(node, registration.rack)
                for node, registration in sorted(self.brokers.items())]

    def create_topic(self, name: str, partition_count: int, replication_factor: int,
                     configs: dict[str, str],
                     assignment: dict[int, list[int]] | None = None) -> uuid.UUID:
        """Writes the topic's assignment (Kafka's AdminZkClient); the controller creates
        its partition states. Short ZooKeeper writes, called on the trio thread."""
        if assignment is None:
            assignment = assign_replicas(self.placements(), partition_count, replication_factor)
        else:
            validate_manual_assignment(assignment, set(self.brokers))
        topic_id = uuid.uuid4()
        self._store.create_topic(name, topic_id, assignment, configs)
        log.info("created topic %s in ZooKeeper: %d partition(s), replicas %s (id %s)", name,
                 partition_count, assignment, topic_id)
        self._poke()
        return topic_id

    def request_deletion(self, name: str) -> None:
        self._store.request_topic_deletion(name)
        self._poke()

    def add_partitions(self, name: str, new_count: int,
                       assignments: list[list[int]] | None = None) -> None:
        """CreatePartitions: Kafka's AdminZkClient placement (or the given replicas),
        written with a compare-and-set of the topic's assignment."""
        current = self._store.topic_assignment(name)
        if assignments is None:
            added = assign_added_partitions(self.placements(), current.partitions, new_count)
        else:
            added = validate_added_partitions_assignment(assignments, current.partitions,
                                                         new_count, set(self.brokers))
        self._store.set_topic_assignment(name, {**current.partitions, **added},
                                         current.version)
        self._poke()

    def allocate_producer_id(self) -> int:
        """The next id of this broker's block; a new block from /latest_producer_id_block
        (compare-and-set, short) when it is used up, so ids are unique in the cluster."""
        for producer_id in self._producer_ids:
            return producer_id
        first, last = self._store.allocate_producer_id_block(self._broker.node_id)
        self._producer_ids = iter(range(first + 1, last + 1))
        return first

    async def wait_for_topic(self, name: str, partitions: int, timeout_s: float) -> None:
        """Until every partition of the topic has a leader here (bounded): what a client
        creating a topic expects to be able to use next."""
        with trio.move_on_after(timeout_s):
            while not all((view := self.partitions.get((name, p))) is not None
                          and view.leader in self.brokers for p in range(partitions)):
                await self.wait_for_refresh(timeout_s)

    def set_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        self._store.set_topic_configs(name, configs)
        self._poke()

    # -- the controller -------------------------------------------------------------------

    def _controller_pass(self, snapshot: Snapshot) -> None:
        """On kazoo-safe worker thread: creates missing partition states, elects leaders
        for partitions whose leader is gone, drops dead replicas from ISRs, and finishes
        topic deletions. A compare-and-set that loses re-runs at the next refresh."""
        store = self._store
        epoch = self._controller_epoch
        live = set(snapshot.brokers)
        unclean_default = self._broker.config.value("unclean.leader.election.enable")
        for name in snapshot.deletions:
            store.delete_topic_znodes(name)
            log.info("controller: deleted topic %s", name)
        for name, (_topic_id, assignment, configs) in snapshot.topics.items():
            if name in snapshot.deletions:
                continue
            unclean = configs.get("unclean.leader.election.enable",
                                  str(unclean_default).lower()) == "true"
            for partition, replicas in assignment.items():
                state = snapshot.states.get((name, partition))
                try:
                    if state is None:
                        self._create_state(name, partition, replicas, live, epoch)
                    else:
                        self._repair_state(name, partition, replicas, state, live, epoch,
                                           unclean)
                except StaleVersion:
                    self._from_zookeeper()

    def _create_state(self, topic: str, partition: int, replicas: list[int], live: set[int],
                      epoch: int) -> None:
        initial = initial_leader_and_isr(replicas, live)
        if initial is None:
            return  # no replica alive: the partition stays new until one registers
        self._store.create_partition_state(topic, partition, _to_znode(initial, epoch, 0))
        log.info("controller: %s-%d online, leader %d, ISR %s", topic, partition,
                 initial.leader, list(initial.isr))

    def _repair_state(self, topic: str, partition: int, replicas: list[int],
                      state: PartitionState, live: set[int], epoch: int,
                      unclean: bool) -> None:
        """Kafka's controller on a broker failure: re-elect the leader of a partition whose
        leader is gone (from the live ISR; unclean only when allowed), then take dead
        replicas out of the ISR, each change a new leader epoch."""
        current = LeaderAndIsr(state.leader, state.leader_epoch, tuple(state.isr),
                               LeaderRecoveryState(state.leader_recovery_state))
        changed = current
        if changed.leader not in live:
            elected = elect(changed, OfflineElection(unclean), replicas, live)
            if elected is not None:
                changed = elected
        for node in changed.isr:
            if node not in live and len(changed.isr) > 1:
                changed = isr_after_broker_failure(changed, node) or changed
        if changed.leader not in live and changed.leader != NO_LEADER:
            changed = changed.new_leader_and_isr(NO_LEADER, changed.isr)
        if changed == current:
            return
        self._store.update_partition_state(topic, partition,
                                           _to_znode(changed, epoch, state.version),
                                           state.version)
        log.info("controller: %s-%d leader %d -> %d (epoch %d), ISR %s -> %s", topic,
                 partition, state.leader, changed.leader, changed.leader_epoch, state.isr,
                 list(changed.isr))


def _to_znode(state: LeaderAndIsr, controller_epoch: int, version: int) -> PartitionState:
    return PartitionState(state.leader, state.leader_epoch, list(state.isr), controller_epoch,
                          int(state.leader_recovery_state), version)
