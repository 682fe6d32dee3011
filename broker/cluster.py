"""A broker in a ZooKeeper cluster (`zookeeper.connect` set): registers itself, keeps a
cache of the cluster's metadata fed by ZooKeeper watches, tells its replica manager the
state of every partition it replicates, and, when it holds `/controller`, does the
controller's work (docs/cluster.md)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import trio

from broker.metadata import TopicInfo
from broker.replication import PartitionState as ReplicaState
from broker.zookeeper.store import (
    REASSIGN_PARTITIONS_PATH,
    BrokerIdInUse,
    BrokerRegistration,
    ControllerMoved,
    PartitionState,
    StaleVersion,
    TopicAssignment,
    Watch,
    ZkConnectionError,
    ZkError,
    ZkStore,
)
from coordinator.replica_assignment import (
    NO_LEADER,
    BrokerPlacement,
    CompletionStep,
    ControlledShutdownElection,
    ElectionType,
    LeaderAndIsr,
    LeaderRecoveryState,
    OfflineElection,
    ReplicaAssignment,
    assign_added_partitions,
    assign_replicas,
    complete_reassignment,
    elect,
    elect_leaders,
    initial_leader_and_isr,
    isr_after_broker_failure,
    partitions_to_rebalance,
    plan_reassignment,
    update_reassignment,
    validate_added_partitions_assignment,
    validate_manual_assignment,
)
from wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from broker.broker import Broker, Endpoint

log = logging.getLogger(__name__)

REFRESH_DEBOUNCE_S = 0.01  # a burst of watch events becomes one refresh
ZOOKEEPER_RETRY_S = 1.0  # between refreshes while ZooKeeper is out of reach
CONTROLLER_WAIT_S = 30.0
CAS_ATTEMPTS = 10  # compare-and-set retries of one controller write before giving up
# KafkaController.onControllerFailover: the first leader balance check 5 s after it.
FIRST_REBALANCE_CHECK_S = 5.0

Key = tuple[str, int]  # (topic, partition)


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
    """One partition as the cluster sees it: its replicas (assignment order; during a
    reassignment the target replicas first, then the original ones) and state, and the
    replicas a running reassignment adds and removes (KIP-455)."""
    replicas: list[int]
    leader: int
    leader_epoch: int
    isr: list[int]
    version: int
    controller_epoch: int
    adding_replicas: list[int] = field(default_factory=list)
    removing_replicas: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    brokers: dict[int, BrokerRegistration]
    controller_id: int | None
    topics: dict[str, tuple[TopicAssignment, dict[str, str]]]  # assignment, configs
    states: dict[Key, PartitionState]
    deletions: list[str]
    reassignment_request: dict[Key, list[int]]  # /admin/reassign_partitions
    election_request: set[Key] | None  # /admin/preferred_replica_election (None: absent)


class NotController(KafkaError):
    """This broker is not (or no longer) the controller: Kafka's ZooKeeper-mode brokers
    answer controller requests with NOT_CONTROLLER, and clients retry at the controller
    the Metadata response names."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.NOT_CONTROLLER,
                         "This is not the correct controller for this cluster.")


class ClusterRuntime:
    def __init__(self, broker: "Broker", store: ZkStore) -> None:
        self._broker = broker
        self._store = store
        self._changed = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._watched_states: dict[tuple[str, int], Watch] = {}
        self._watched_topics: dict[str, list[Watch]] = {}  # assignment and configs
        # What the last refresh read; a refresh re-reads only what watches marked stale
        # since (everything when `_all_stale`), so its cost follows the changes, not the
        # number of topics.
        self._snapshot: Snapshot | None = None
        self._stale_topics: set[str] = set()
        self._stale_states: set[Key] = set()
        self._all_stale = True
        self.brokers: dict[int, BrokerRegistration] = {}
        self.controller_id: int | None = None
        self.partitions: dict[tuple[str, int], PartitionView] = {}
        self._controller_epoch: int | None = None  # set while this broker is controller
        self._refreshed = trio.Event()
        self._producer_ids = iter(())  # the current block of producer ids
        # The controller's work runs one piece at a time, as Kafka's controller event
        # thread: a refresh's pass, an API request, the leader balance check.
        self._controller_lock = trio.Lock()

    # -- what the handlers read ---------------------------------------------------------

    def endpoint_of(self, node_id: int) -> tuple[str, int] | None:
        registration = self.brokers.get(node_id)
        return None if registration is None else (registration.host, registration.port)

    def live_brokers(self) -> list[BrokerRegistration]:
        return [self.brokers[node] for node in sorted(self.brokers)]

    def partition(self, topic: str, partition: int) -> PartitionView | None:
        return self.partitions.get((topic, partition))

    @property
    def is_controller(self) -> bool:
        return self._controller_epoch is not None

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
        async with trio.open_nursery() as nursery:
            if self._broker.config.value("auto.leader.rebalance.enable"):
                nursery.start_soon(self._rebalance_leaders_periodically)
            while True:
                await self._changed.wait()
                await trio.sleep(REFRESH_DEBOUNCE_S)
                try:
                    await self._refresh()
                except ZkConnectionError as exc:
                    # ZooKeeper out of reach (its session may expire meanwhile): the view
                    # stays as it was; once reconnected, everything is read again.
                    log.warning("refreshing the cluster view failed: %s; retrying", exc)
                    self._all_stale = True
                    await trio.sleep(ZOOKEEPER_RETRY_S)
                    self._poke()

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
        changed = self._from_zookeeper()
        store.watch_brokers(changed)
        store.watch_topics(changed)
        store.watch_controller(changed)
        store.watch_deletions(changed)
        store.watch_partition_reassignment(changed)
        store.watch_preferred_replica_election(changed)
        # Reconnected (perhaps in a new session), anything may have changed unseen: read
        # it all again.
        store.add_session_listener(lambda state: state == "connected"
                                   and self._mark_stale_from_thread(all_stale=True))

    def _from_zookeeper(self, topic: str | None = None,
                        key: Key | None = None) -> Callable[..., None]:
        """A watch callback (run on kazoo's thread): marks the topic's or partition's
        cached znodes stale, and refreshes on the trio thread."""
        return lambda *_data: self._mark_stale_from_thread(topic, key)

    def _mark_stale_from_thread(self, topic: str | None = None, key: Key | None = None,
                                all_stale: bool = False) -> None:
        token = self._token
        if token is None:
            return
        try:
            # Without waiting: kazoo calls session listeners on its connection thread,
            # which the trio thread's own ZooKeeper calls may be waiting for.
            token.run_sync_soon(self._mark_stale, topic, key, all_stale)
        except trio.RunFinishedError:
            pass

    def _mark_stale(self, topic: str | None = None, key: Key | None = None,
                    all_stale: bool = False) -> None:
        if topic is not None:
            self._stale_topics.add(topic)
        if key is not None:
            self._stale_states.add(key)
        self._all_stale = self._all_stale or all_stale
        self._poke()

    def _poke(self) -> None:
        self._changed.set()

    async def _refresh(self) -> None:
        self._changed = trio.Event()
        previous = None if self._all_stale else self._snapshot
        stale_topics, stale_states = self._stale_topics, self._stale_states
        self._stale_topics, self._stale_states, self._all_stale = set(), set(), False
        snapshot = await trio.to_thread.run_sync(self._read_snapshot, previous, stale_topics,
                                                 stale_states)
        self._snapshot = snapshot
        await trio.to_thread.run_sync(self._watch_new, snapshot)
        if snapshot.brokers.keys() != self.brokers.keys():
            # `gregor cluster up` and `add` wait for this line: the view in effect.
            log.info("live brokers: %s", ", ".join(map(str, sorted(snapshot.brokers))))
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
        elif snapshot.controller_id != self._broker.node_id and self.is_controller:
            async with self._controller_lock:  # not while controller work is under way
                self._controller_epoch = None
        if self._controller_epoch is not None:
            async with self._controller_lock:
                try:
                    await trio.to_thread.run_sync(self._controller_pass, snapshot)
                except ControllerMoved:
                    self._resign()
        await self._broker.replicas.apply(self._local_states())
        refreshed, self._refreshed = self._refreshed, trio.Event()
        refreshed.set()

    def _read_snapshot(self, previous: Snapshot | None, stale_topics: set[str],
                       stale_states: set[Key]) -> Snapshot:
        """The cluster as ZooKeeper has it: the topics and partition states of `previous`
        that no watch has marked stale since are taken from it, the rest read."""
        store = self._store
        topics = {}
        states = {}
        for name in store.topics():
            known = None if previous is None or name in stale_topics else previous.topics.get(name)
            if known is None:
                assignment = store.topic_assignment(name)
                if assignment is None:
                    continue
                known = (assignment, store.topic_configs(name))
            topics[name] = known
            for partition in known[0].partitions:
                key = (name, partition)
                if previous is None or key in stale_states or name in stale_topics:
                    state = store.partition_state(name, partition)
                else:
                    state = previous.states.get(key)
                if state is not None:
                    states[key] = state
        return Snapshot(store.brokers(), store.controller_id(), topics, states,
                        store.pending_deletions(), store.partition_reassignment(),
                        store.preferred_replica_election())

    def _watch_new(self, snapshot: Snapshot) -> None:
        """Watches each assigned partition's state, also before the controller creates it
        (its creation is what tells the replicas to start), and each topic; drops the
        watches of what is gone."""
        assigned = {(name, partition) for name, (assignment, _configs)
                    in snapshot.topics.items() for partition in assignment.partitions}
        store = self._store
        for key in assigned - self._watched_states.keys():
            self._watched_states[key] = store.watch_partition_state(
                *key, self._from_zookeeper(key=key))
        for key in self._watched_states.keys() - assigned:
            self._watched_states.pop(key).cancel()
        for name in snapshot.topics.keys() - self._watched_topics.keys():
            changed = self._from_zookeeper(topic=name)
            self._watched_topics[name] = [store.watch_topic(name, changed),
                                          store.watch_topic_configs(name, changed)]
        for name in self._watched_topics.keys() - snapshot.topics.keys():
            for watch in self._watched_topics.pop(name):
                watch.cancel()

    def _apply_topics(self, snapshot: Snapshot) -> None:
        """Mirrors the topics into the broker's metadata and logs: creates the local
        logs of partitions assigned here, deletes those of partitions no longer assigned
        here (a reassignment moved them away) and of topics gone."""
        broker = self._broker
        partitions = {}
        for name, (topic_assignment, configs) in snapshot.topics.items():
            topic_id, assignment = topic_assignment.topic_id, topic_assignment.partitions
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
            for partition in sorted(set(assignment) - set(local)):
                if broker.partition_log(name, partition) is not None:
                    log.info("%s-%d: not a replica here; deleting its local log", name,
                             partition)
                    broker.drop_local_partition(name, partition)
            for partition, replicas in assignment.items():
                state = snapshot.states.get((name, partition))
                adding = list(topic_assignment.adding.get(partition, []))
                removing = list(topic_assignment.removing.get(partition, []))
                if state is None:
                    partitions[(name, partition)] = PartitionView(
                        list(replicas), NO_LEADER, -1, [], -1, -1, adding, removing)
                else:
                    partitions[(name, partition)] = PartitionView(
                        list(replicas), state.leader, state.leader_epoch, list(state.isr),
                        state.version, state.controller_epoch, adding, removing)
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

    # -- the controller: requests from clients ---------------------------------------------

    async def elect_leaders(self, election_type: ElectionType, partitions: list[Key],
                            timeout_s: float) -> dict[Key, KafkaError | None]:
        """ElectLeaders at the controller (KafkaController.processReplicaLeaderElection),
        by (topic, partition) in the order asked: None once the new leader shows in this
        broker's view of ZooKeeper, REQUEST_TIMED_OUT when it does not within `timeout_s`
        (Kafka's DelayedElectLeader), or the partition's refusal. Every partition gets
        NOT_CONTROLLER on a broker that is not the controller, as in Kafka."""
        async with self._controller_lock:
            if not self.is_controller:
                return {key: KafkaError(ErrorCode.NOT_CONTROLLER) for key in partitions}
            try:
                outcomes = await trio.to_thread.run_sync(self._elect, election_type,
                                                         partitions)
            except ControllerMoved:
                self._resign()
                return {key: KafkaError(ErrorCode.NOT_CONTROLLER) for key in partitions}
        expected = {key: leader for key, leader in outcomes.items() if isinstance(leader, int)}
        await self._wait_for_leaders(expected, timeout_s)
        results: dict[Key, KafkaError | None] = {}
        for key, outcome in outcomes.items():
            if isinstance(outcome, KafkaError):
                results[key] = outcome
            elif self._leads(key, outcome):
                results[key] = None
            else:
                results[key] = KafkaError(ErrorCode.REQUEST_TIMED_OUT)
        return results

    async def alter_partition_reassignments(self, requests: dict[Key, list[int] | None],
                                            timeout_s: float) -> dict[Key, KafkaError | None]:
        """AlterPartitionReassignments at the controller (KafkaController
        .processApiPartitionReassignment): starts each reassignment (target replicas) or
        cancels it (None); by (topic, partition) None when started, else the refusal.
        Answered once this broker's view has the new assignments (bounded by `timeout_s`);
        the moves themselves go on after. Raises NotController."""
        async with self._controller_lock:
            if not self.is_controller:
                raise NotController()
            try:
                results = await trio.to_thread.run_sync(self._reassign, requests, True)
            except ControllerMoved:
                self._resign()
                raise NotController() from None
        await self.wait_for_refresh(timeout_s)
        return results

    async def list_partition_reassignments(
            self, partitions: list[Key] | None) -> dict[Key, ReplicaAssignment]:
        """ListPartitionReassignments at the controller: the running reassignments among
        `partitions` (None: all), as ZooKeeper holds them now; partitions that do not
        exist or are not being reassigned are left out, as in Kafka. Raises NotController."""
        if not self.is_controller:
            raise NotController()
        return await trio.to_thread.run_sync(self._running_reassignments, partitions)

    def _leads(self, key: Key, leader: int) -> bool:
        view = self.partitions.get(key)
        return view is not None and view.leader == leader

    async def _wait_for_leaders(self, expected: dict[Key, int], timeout_s: float) -> None:
        deadline = trio.current_time() + timeout_s
        while not all(self._leads(key, leader) for key, leader in expected.items()):
            remaining_s = deadline - trio.current_time()
            if remaining_s <= 0:
                return
            await self.wait_for_refresh(remaining_s)

    # -- the controller: leader balance (auto.leader.rebalance.enable) ----------------------

    async def _rebalance_leaders_periodically(self) -> None:
        """While this broker is the controller: a leader balance check 5 s after it took
        over, then every `leader.imbalance.check.interval.seconds` (Kafka's
        scheduleAutoLeaderRebalanceTask)."""
        interval_s = self._broker.config.value("leader.imbalance.check.interval.seconds")
        epoch = None
        due = None
        while True:
            if self._controller_epoch is None:
                due = None
            elif self._controller_epoch != epoch:
                due = trio.current_time() + FIRST_REBALANCE_CHECK_S
            epoch = self._controller_epoch
            if due is not None and trio.current_time() >= due:
                await self._rebalance_leaders()
                due = trio.current_time() + interval_s
            await trio.sleep(1.0 if due is None else min(1.0, max(due - trio.current_time(), 0)))

    async def _rebalance_leaders(self) -> None:
        async with self._controller_lock:
            if not self.is_controller:
                return
            try:
                await trio.to_thread.run_sync(self._check_leader_balance)
            except ControllerMoved:
                self._resign()
            except ZkError as exc:
                log.warning("controller: leader balance check failed: %s", exc)

    def _check_leader_balance(self) -> None:
        """Kafka's checkAndTriggerAutoLeaderRebalance over this broker's view; each chosen
        partition's state is read again before its election."""
        deleting = set(self._store.pending_deletions())
        live = set(self._store.brokers())
        partitions = {
            key: (view.replicas, None if view.version < 0
                  else LeaderAndIsr(view.leader, view.leader_epoch, tuple(view.isr)))
            for key, view in self.partitions.items() if key[0] not in deleting}
        chosen = partitions_to_rebalance(
            partitions, live, self._broker.config.value("leader.imbalance.per.broker.percentage"))
        if chosen:
            log.info("controller: leader imbalance; preferred replica elections for %s",
                     ", ".join(f"{topic}-{partition}" for topic, partition in chosen))
            self._log_elections(self._elect(ElectionType.PREFERRED, chosen))

    # -- the controller: passes over the cluster's state -------------------------------------

    def _resign(self) -> None:
        log.info("broker %d is no longer the controller: another broker took over",
                 self._broker.node_id)
        self._controller_epoch = None
        self._poke()

    def _controller_pass(self, snapshot: Snapshot) -> None:
        """On a worker thread: finishes topic deletions, creates missing partition states,
        elects leaders for partitions whose leader is gone, drops dead replicas from ISRs,
        completes reassignments whose target replicas are all in the ISR, and takes up the
        requests in /admin/reassign_partitions and /admin/preferred_replica_election.
        A compare-and-set that loses re-runs at the next refresh."""
        store = self._store
        live = set(snapshot.brokers)
        unclean_default = self._broker.config.value("unclean.leader.election.enable")
        for name in snapshot.deletions:
            assignment = snapshot.topics.get(name)
            if assignment is not None and (assignment[0].adding or assignment[0].removing):
                continue  # as in Kafka, a topic is not deleted while it is being reassigned
            store.delete_topic_znodes(name)
            log.info("controller: deleted topic %s", name)
        for name, (assignment, configs) in snapshot.topics.items():
            if name in snapshot.deletions:
                continue
            unclean = configs.get("unclean.leader.election.enable",
                                  str(unclean_default).lower()) == "true"
            for partition, replicas in assignment.partitions.items():
                state = snapshot.states.get((name, partition))
                try:
                    if state is None:
                        self._create_state(name, partition, replicas, live)
                    else:
                        self._repair_state(name, partition, replicas, state, live, unclean)
                except StaleVersion:
                    self._mark_stale_from_thread(key=(name, partition))
        self._advance_reassignments(snapshot, live)
        if snapshot.reassignment_request:
            self._reassign_from_zookeeper(snapshot)
        if snapshot.election_request is not None:
            self._elect_from_zookeeper(snapshot.election_request)

    def _create_state(self, topic: str, partition: int, replicas: list[int],
                      live: set[int]) -> None:
        initial = initial_leader_and_isr(replicas, live)
        if initial is None:
            return  # no replica alive: the partition stays new until one registers
        self._store.create_partition_state(topic, partition,
                                           _to_znode(initial, self._controller_epoch, 0),
                                           self._store.controller_epoch_version)
        log.info("controller: %s-%d online, leader %d, ISR %s", topic, partition,
                 initial.leader, list(initial.isr))

    def _repair_state(self, topic: str, partition: int, replicas: list[int],
                      state: PartitionState, live: set[int], unclean: bool) -> None:
        """Kafka's controller on a broker failure: re-elect the leader of a partition whose
        leader is gone (from the live ISR; unclean only when allowed), then take dead
        replicas out of the ISR, each change a new leader epoch."""
        current = _leader_and_isr(state)
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
        if changed != current:
            self._write_state(topic, partition, state, changed)

    def _write_state(self, topic: str, partition: int, state: PartitionState,
                     changed: LeaderAndIsr) -> PartitionState:
        """Compare-and-set of the state znode read as `state`, fenced by the controller
        epoch: StaleVersion or ControllerMoved when it cannot be written."""
        written = self._store.update_partition_state(
            topic, partition, _to_znode(changed, self._controller_epoch, state.version),
            state.version, self._store.controller_epoch_version)
        log.info("controller: %s-%d leader %d -> %d (epoch %d), ISR %s -> %s", topic,
                 partition, state.leader, changed.leader, changed.leader_epoch, state.isr,
                 list(changed.isr))
        return written

    # -- the controller: leader elections ----------------------------------------------------

    def _elect(self, election_type: ElectionType,
               partitions: list[Key]) -> dict[Key, int | KafkaError]:
        """Elects a leader for each partition (its state read again first): the new
        leader, or why not (Kafka's processReplicaLeaderElection outcomes)."""
        store = self._store
        live = set(store.brokers())
        deleting = set(store.pending_deletions())
        assignments: dict[str, TopicAssignment | None] = {}
        outcomes: dict[Key, int | KafkaError] = {}
        for key in partitions:
            topic, partition = key
            if topic not in assignments:
                assignments[topic] = store.topic_assignment(topic)
            assignment = assignments[topic]
            replicas = None if assignment is None else assignment.partitions.get(partition)
            if replicas is None:
                outcomes[key] = KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                           "The partition does not exist.")
            elif topic in deleting:
                outcomes[key] = KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION,
                                           "The topic is being deleted")
            else:
                try:
                    outcomes[key] = self._elect_one(topic, partition, replicas, election_type,
                                                    live)
                except KafkaError as exc:
                    outcomes[key] = exc
        return outcomes

    def _elect_one(self, topic: str, partition: int, replicas: list[int],
                   election_type: ElectionType, live: set[int]) -> int:
        for _ in range(CAS_ATTEMPTS):
            state = self._store.partition_state(topic, partition)
            if state is None:  # no replica has been live since it was created
                code = ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE \
                    if election_type is ElectionType.PREFERRED \
                    else ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE
                raise KafkaError(code, f"{topic}-{partition} has never had a leader")
            elected = elect_leaders(_leader_and_isr(state), election_type, replicas, live)
            try:
                self._write_state(topic, partition, state, elected)
            except StaleVersion:
                continue  # its leader changed the ISR meanwhile: read it again
            return elected.leader
        raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR,
                         f"{topic}-{partition} changed {CAS_ATTEMPTS} times during the election")

    def _elect_from_zookeeper(self, partitions: set[Key]) -> None:
        """/admin/preferred_replica_election (written by tools through AdminZkClient):
        preferred elections, then the request is deleted (Kafka's ZkTriggered election)."""
        self._log_elections(self._elect(ElectionType.PREFERRED, sorted(partitions)))
        self._store.delete_preferred_replica_election()

    @staticmethod
    def _log_elections(outcomes: dict[Key, int | KafkaError]) -> None:
        for (topic, partition), outcome in outcomes.items():
            if isinstance(outcome, KafkaError):
                log.info("controller: no preferred replica election for %s-%d: %s", topic,
                         partition, outcome)
            else:
                log.info("controller: %s-%d completed preferred replica leader election; "
                         "new leader %d", topic, partition, outcome)

    # -- the controller: reassignments (KIP-455) ---------------------------------------------

    def _reassign(self, requests: dict[Key, list[int] | None],
                  from_api: bool) -> dict[Key, KafkaError | None]:
        """Starts (or cancels) reassignments: step U1 writes each topic's new full
        assignment (RS = TRS + ORS, AR, RR; compare-and-set), then each partition's state
        moves on (update_reassignment: A1, or phase B at once). None by partition when
        started, else the refusal (plan_reassignment)."""
        store = self._store
        live = set(store.brokers())
        deleting = set(store.pending_deletions())
        by_topic: dict[str, dict[int, list[int] | None]] = {}
        for (topic, partition), target in requests.items():
            by_topic.setdefault(topic, {})[partition] = target
        results: dict[Key, KafkaError | None] = {}
        started: list[tuple[str, int, ReplicaAssignment, ReplicaAssignment]] = []
        for topic, wanted in sorted(by_topic.items()):
            for _ in range(CAS_ATTEMPTS):
                current = store.topic_assignment(topic)
                planned: dict[int, tuple[ReplicaAssignment, ReplicaAssignment]] = {}
                for partition, target in sorted(wanted.items()):
                    previous = None if current is None else _replica_assignment(current,
                                                                                 partition)
                    try:
                        new = plan_reassignment(previous, target, live)
                        if topic in deleting:
                            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                             "The partition does not exist.")
                    except KafkaError as exc:
                        results[(topic, partition)] = exc
                        continue
                    results[(topic, partition)] = None
                    planned[partition] = (previous, new)
                if not planned:
                    break
                updated = current
                for partition, (_previous, new) in planned.items():
                    updated = _with_partition(updated, partition, new)
                if updated != current:
                    try:
                        store.set_topic_assignment(topic, updated, current.version,
                                                   store.controller_epoch_version)
                    except StaleVersion:
                        continue  # CreatePartitions or a leader moved it: plan again
                started += [(topic, partition, previous, new)
                            for partition, (previous, new) in planned.items()]
                break
            else:
                for partition in wanted:
                    results[(topic, partition)] = KafkaError(
                        ErrorCode.UNKNOWN_SERVER_ERROR,
                        f"the assignment of topic {topic} changed {CAS_ATTEMPTS} times")
        if from_api:
            # The latest reassignment, through the API or ZooKeeper, takes precedence.
            replaced = {(topic, partition) for topic, partition, _, _ in started}
            self._remove_from_reassignment_request(lambda key, _replicas: key in replaced)
        for topic, partition, previous, new in started:
            log.info("controller: reassigning %s-%d: replicas %s, adding %s, removing %s",
                     topic, partition, list(new.replicas), list(new.adding_replicas),
                     list(new.removing_replicas))
            self._start_reassignment(topic, partition, previous, new, live)
        return results

    def _start_reassignment(self, topic: str, partition: int, previous: ReplicaAssignment,
                            assignment: ReplicaAssignment, live: set[int]) -> None:
        for _ in range(CAS_ATTEMPTS):
            state = self._store.partition_state(topic, partition)
            if state is None:
                return  # never led: its first state will come from the new replicas
            update = update_reassignment(previous, assignment, _leader_and_isr(state), live)
            try:
                self._write_state(topic, partition, state, update.leader_and_isr)
            except StaleVersion:
                continue
            if update.completion is not None:
                self._finish_reassignment(topic, partition, assignment, update.completion)
            return
        log.warning("controller: %s-%d kept changing; its reassignment goes on from the "
                    "next pass", topic, partition)

    def _advance_reassignments(self, snapshot: Snapshot, live: set[int]) -> None:
        """Phase B for each running reassignment whose target replicas are all in the ISR
        now (Kafka's PartitionReassignmentIsrChange)."""
        for name, (assignment, _configs) in sorted(snapshot.topics.items()):
            for partition in sorted(assignment.adding.keys() | assignment.removing.keys()):
                full = _replica_assignment(assignment, partition)
                state = snapshot.states.get((name, partition))
                if full is None or state is None or not full.is_complete(state.isr):
                    continue
                try:
                    self._complete_reassignment(name, partition, live)
                except StaleVersion:
                    self._mark_stale_from_thread(name, (name, partition))

    def _complete_reassignment(self, topic: str, partition: int, live: set[int]) -> None:
        store = self._store
        assignment = store.topic_assignment(topic)
        full = None if assignment is None else _replica_assignment(assignment, partition)
        state = store.partition_state(topic, partition)
        if (full is None or state is None or not full.is_being_reassigned
                or not full.is_complete(state.isr)):
            return  # read again: it moved meanwhile
        log.info("controller: target replicas %s of %s-%d are all in the ISR %s",
                 list(full.target_replicas), topic, partition, state.isr)
        completion = complete_reassignment(full, _leader_and_isr(state), live)
        self._write_state(topic, partition, state, completion.leader_and_isr)
        self._finish_reassignment(topic, partition, full, completion)

    def _finish_reassignment(self, topic: str, partition: int, in_progress: ReplicaAssignment,
                             completion: CompletionStep) -> None:
        """Step B6: the topic's assignment becomes the target replicas (compare-and-set,
        again when another partition of the topic changed meanwhile), which tells the
        removed replicas' brokers to delete their logs; B7: the partition leaves
        /admin/reassign_partitions."""
        store = self._store
        for _ in range(CAS_ATTEMPTS):
            assignment = store.topic_assignment(topic)
            if assignment is None or _replica_assignment(assignment, partition) != in_progress:
                return  # deleted, or another reassignment replaced this one
            updated = _with_partition(assignment, partition, completion.assignment)
            if updated != assignment:
                try:
                    store.set_topic_assignment(topic, updated, assignment.version,
                                               store.controller_epoch_version)
                except StaleVersion:
                    continue
            break
        else:
            log.warning("controller: %s-%d: the topic kept changing; completing its "
                        "reassignment again at the next pass", topic, partition)
            return
        replicas = list(completion.assignment.replicas)
        log.info("controller: reassignment of %s-%d complete: replicas %s, leader %d, "
                 "removed %s", topic, partition, replicas, completion.leader_and_isr.leader,
                 list(completion.removed_replicas))
        self._remove_from_reassignment_request(
            lambda key, target: key == (topic, partition) and list(target) == replicas)

    def _reassign_from_zookeeper(self, snapshot: Snapshot) -> None:
        """/admin/reassign_partitions (written by tools, Kafka's ZkPartitionReassignment):
        starts the requested reassignments not started yet; a refused one leaves the
        request, a started one leaves it when complete. Unlike Kafka, the targets are
        checked as for the API: an empty or unknown replica list would strand the
        partition."""
        todo: dict[Key, list[int]] = {}
        for (topic, partition), target in snapshot.reassignment_request.items():
            topic_assignment = snapshot.topics.get(topic)
            current = None if topic_assignment is None \
                else _replica_assignment(topic_assignment[0], partition)
            if (current is not None and current.is_being_reassigned
                    and current.reassign_to(target) == current):
                continue  # started already: it completes when its targets are in the ISR
            todo[(topic, partition)] = target
        if not todo:
            return
        results = self._reassign(todo, False)
        failed = {key: error for key, error in results.items() if error is not None}
        if failed:
            log.warning("controller: refused reassignments from %s: %s",
                        REASSIGN_PARTITIONS_PATH,
                        ", ".join(f"{t}-{p}: {error}" for (t, p), error in sorted(failed.items())))
            self._remove_from_reassignment_request(lambda key, _replicas: key in failed)

    def _remove_from_reassignment_request(
            self, should_remove: Callable[[Key, list[int]], bool]) -> None:
        """Kafka's maybeRemoveFromZkReassignment: the znode loses the partitions chosen,
        and goes when none is left."""
        store = self._store
        request = store.partition_reassignment()
        kept = {key: replicas for key, replicas in request.items()
                if not should_remove(key, replicas)}
        if len(kept) == len(request):
            return
        if kept:
            store.set_partition_reassignment(kept)
        else:
            store.delete_partition_reassignment()

    def _running_reassignments(self, partitions: list[Key] | None) -> dict[Key, ReplicaAssignment]:
        store = self._store
        topics = store.topics() if partitions is None else sorted({t for t, _ in partitions})
        wanted = None if partitions is None else set(partitions)
        running: dict[Key, ReplicaAssignment] = {}
        for topic in topics:
            assignment = store.topic_assignment(topic)
            if assignment is None:
                continue
            for partition in sorted(assignment.partitions):
                full = _replica_assignment(assignment, partition)
                if full.is_being_reassigned and (wanted is None or (topic, partition) in wanted):
                    running[(topic, partition)] = full
        return running


def _to_znode(state: LeaderAndIsr, controller_epoch: int, version: int) -> PartitionState:
    return PartitionState(state.leader, state.leader_epoch, list(state.isr), controller_epoch,
                          int(state.leader_recovery_state), version)


def _leader_and_isr(state: PartitionState) -> LeaderAndIsr:
    return LeaderAndIsr(state.leader, state.leader_epoch, tuple(state.isr),
                        LeaderRecoveryState(state.leader_recovery_state))


def _replica_assignment(assignment: TopicAssignment, partition: int) -> ReplicaAssignment | None:
    """A partition's full assignment (RS, AR, RR) in the topic's znode; None if it has none."""
    replicas = assignment.partitions.get(partition)
    if replicas is None:
        return None
    return ReplicaAssignment(tuple(replicas), tuple(assignment.adding.get(partition, ())),
                             tuple(assignment.removing.get(partition, ())))


def _with_partition(assignment: TopicAssignment, partition: int,
                    full: ReplicaAssignment) -> TopicAssignment:
    """The topic's assignment with one partition's RS, AR and RR replaced."""
    adding = {p: r for p, r in assignment.adding.items() if p != partition}
    removing = {p: r for p, r in assignment.removing.items() if p != partition}
    if full.adding_replicas:
        adding[partition] = list(full.adding_replicas)
    if full.removing_replicas:
        removing[partition] = list(full.removing_replicas)
    return TopicAssignment(assignment.topic_id,
                           {**assignment.partitions, partition: list(full.replicas)},
                           dict(sorted(adding.items())), dict(sorted(removing.items())),
                           assignment.version)
