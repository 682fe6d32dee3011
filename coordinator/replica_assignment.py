"""The cluster's pure rules: replica placement, leader election, ISR changes and
reassignment plans, as Kafka's ZooKeeper-mode controller applies them. No I/O.

- Placement follows AdminUtils.assignReplicasToBrokers (rack-unaware and rack-aware);
  the manual assignment checks follow AdminZkClient / ZkAdminManager (CreateTopics,
  CreatePartitions) and KafkaController.validateReplicas (reassignments).
- Leader election follows PartitionLeaderElectionAlgorithms and Election.scala;
  ElectLeaders outcomes follow KafkaController.processReplicaLeaderElection.
- A dead replica leaves the ISR as ReplicaStateMachine.doRemoveReplicasFromIsr does.
- Reassignments follow KIP-455 (ReplicaAssignment.reassignTo, onPartitionReassignment,
  processApiPartitionReassignment).
- The automatic leader rebalance follows KafkaController.checkAndTriggerAutoLeaderRebalance.

Replica lists keep Kafka's order: the first replica is the preferred leader.
"""
from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from wire.errors import ErrorCode, KafkaError

NO_LEADER = -1  # LeaderAndIsr.NO_LEADER

# Kafka calls code 39 INVALID_REPLICA_ASSIGNMENT; wire.errors spells it out differently.
INVALID_REPLICA_ASSIGNMENT = ErrorCode(39)


@dataclass(frozen=True)
class BrokerPlacement:
    """What placement needs to know of a broker: its id and `broker.rack` (None: unset)."""

    id: int
    rack: str | None = None


# ---------------------------------------------------------------------------------------
# Placement


def check_topic_layout(partitions: int, replication_factor: int) -> None:
    """Kafka's first checks of a new topic's layout: INVALID_PARTITIONS when
    `partitions` <= 0, INVALID_REPLICATION_FACTOR when `replication_factor` <= 0."""
    if partitions <= 0:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS,
                         "Number of partitions must be larger than 0.")
    if replication_factor <= 0:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         "Replication factor must be larger than 0.")


def assign_replicas(
    brokers: Sequence[BrokerPlacement],
    partitions: int,
    replication_factor: int,
    *,
    start_index: int | None = None,
    next_replica_shift: int | None = None,
    first_partition: int = 0,
    rng: random.Random | None = None,
) -> dict[int, list[int]]:
    """Kafka's AdminUtils.assignReplicasToBrokers: partition id -> replicas.

    Partitions are numbered from `first_partition` (CreatePartitions passes the existing
    count; negative counts as 0, as in Kafka). Brokers are used in the order given
    (Kafka's controller passes them sorted by id). Rack-unaware when no broker has a rack,
    rack-aware otherwise.

    `start_index` picks the first replica of partition 0 and `next_replica_shift` the
    distance to the followers; each is random when None, as in Kafka, except that a given
    `start_index` is also the shift when no shift is given (Kafka's fixedStartIndex).

    Raises KafkaError: INVALID_PARTITIONS when `partitions` <= 0,
    INVALID_REPLICATION_FACTOR when `replication_factor` <= 0 or exceeds the brokers, and
    `MixedRackInformation` when some brokers have a rack and some do not.
    """
    check_topic_layout(partitions, replication_factor)
    if replication_factor > len(brokers):
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"Replication factor: {replication_factor} larger than available "
                         f"brokers: {len(brokers)}.")
    rng = rng or random.Random()
    if start_index is None:
        start_index = rng.randrange(len(brokers))
        if next_replica_shift is None:
            next_replica_shift = rng.randrange(len(brokers))
    elif next_replica_shift is None:
        next_replica_shift = start_index
    first_partition = max(0, first_partition)
    if all(broker.rack is None for broker in brokers):
        return _assign_rack_unaware([broker.id for broker in brokers], partitions,
                                    replication_factor, start_index, next_replica_shift,
                                    first_partition)
    return _assign_rack_aware(brokers, partitions, replication_factor, start_index,
                              next_replica_shift, first_partition)


class MixedRackInformation(KafkaError):
    """Some brokers have `broker.rack` and some do not.

    Kafka raises AdminOperationException here, which no error code maps, so its
    CreateTopics and CreatePartitions answer UNKNOWN_SERVER_ERROR with this message."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.UNKNOWN_SERVER_ERROR,
                         "Not all brokers have rack information for replica rack aware "
                         "assignment.")


def _replica_index(first_replica_index: int, shift: int, replica_index: int,
                   broker_count: int) -> int:
    # The followers sit 1..n-1 places after the first replica, never on it.
    return (first_replica_index + 1 + (shift + replica_index) % (broker_count - 1)) % broker_count


def _assign_rack_unaware(broker_ids: list[int], partitions: int, replication_factor: int,
                         start_index: int, shift: int,
                         first_partition: int) -> dict[int, list[int]]:
    count = len(broker_ids)
    assignment: dict[int, list[int]] = {}
    for partition in range(first_partition, first_partition + partitions):
        # Each full round over the brokers shifts the followers by one more, so the same
        # leader does not always get the same followers.
        if partition > 0 and partition % count == 0:
            shift += 1
        first = (partition + start_index) % count
        assignment[partition] = [broker_ids[first]] + [
            broker_ids[_replica_index(first, shift, j, count)]
            for j in range(replication_factor - 1)
        ]
    return assignment


def _java_string_order(value: str) -> bytes:
    return value.encode("utf-16-be")  # Java compares strings by UTF-16 code unit


def rack_alternated_broker_list(rack_of: Mapping[int, str]) -> list[int]:
    """Kafka's getRackAlternatedBrokerList: one broker of each rack in turn (racks in
    name order, brokers of a rack in id order), e.g. racks a: 0,1,2 and b: 3,4 give
    0, 3, 1, 4, 2."""
    by_rack: dict[str, list[int]] = {}
    for broker_id, rack in rack_of.items():
        by_rack.setdefault(rack, []).append(broker_id)
    queues = [sorted(by_rack[rack], reverse=True)
              for rack in sorted(by_rack, key=_java_string_order)]
    result: list[int] = []
    while len(result) < len(rack_of):
        for queue in queues:
            if queue:
                result.append(queue.pop())
    return result


def _assign_rack_aware(brokers: Sequence[BrokerPlacement], partitions: int,
                       replication_factor: int, start_index: int, shift: int,
                       first_partition: int) -> dict[int, list[int]]:
    if any(broker.rack is None for broker in brokers):
        raise MixedRackInformation()
    rack_of = {broker.id: broker.rack for broker in brokers}
    rack_count = len(set(rack_of.values()))
    arranged = rack_alternated_broker_list(rack_of)  # type: ignore[arg-type]
    count = len(arranged)
    assignment: dict[int, list[int]] = {}
    for partition in range(first_partition, first_partition + partitions):
        if partition > 0 and partition % count == 0:
            shift += 1
        first = (partition + start_index) % count
        leader = arranged[first]
        replicas = [leader]
        racks_used = {rack_of[leader]}
        brokers_used = {leader}
        k = 0
        for _ in range(replication_factor - 1):
            while True:
                broker = arranged[_replica_index(first, shift * rack_count, k, count)]
                rack = rack_of[broker]
                k += 1
                # Prefer a rack without a replica while one remains, and a broker
                # without one while one remains.
                if ((rack not in racks_used or len(racks_used) == rack_count)
                        and (broker not in brokers_used or len(brokers_used) == count)):
                    replicas.append(broker)
                    racks_used.add(rack)
                    brokers_used.add(broker)
                    break
        assignment[partition] = replicas
    return assignment


def added_partitions_start_index(brokers: Sequence[BrokerPlacement],
                                 partition0_replicas: Sequence[int]) -> int:
    """The start index Kafka uses for partitions added by CreatePartitions: the position
    of the first broker whose id is >= partition 0's preferred leader (0 if none), in
    `brokers` sorted by id as Kafka's AdminZkClient passes them."""
    for index, broker in enumerate(brokers):
        if broker.id >= partition0_replicas[0]:
            return index
    return 0


def assign_added_partitions(brokers: Sequence[BrokerPlacement],
                            existing: Mapping[int, Sequence[int]], new_count: int, *,
                            next_replica_shift: int | None = None,
                            rng: random.Random | None = None) -> dict[int, list[int]]:
    """Replicas for the partitions CreatePartitions adds (ids `len(existing)` up to
    `new_count` - 1), with partition 0's replication factor, as Kafka's
    AdminZkClient.createNewPartitionsAssignment does. `brokers` sorted by id.

    Raises KafkaError INVALID_PARTITIONS unless `new_count` exceeds the existing count,
    and assign_replicas' errors."""
    check_partition_increase(len(existing), new_count)
    partition0 = _partition0_replicas(existing)
    # Kafka passes the fixed start index, which (unless a shift is given) is also the shift.
    return assign_replicas(
        brokers, new_count - len(existing), len(partition0),
        start_index=added_partitions_start_index(brokers, partition0),
        next_replica_shift=next_replica_shift, first_partition=len(existing), rng=rng)


def _partition0_replicas(existing: Mapping[int, Sequence[int]]) -> Sequence[int]:
    if 0 not in existing:  # Kafka's AdminOperationException: no error code maps it
        raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR,
                         f"Unexpected existing replica assignment, partition id 0 is "
                         f"missing. Assignment: {dict(existing)}")
    return existing[0]


def check_partition_increase(existing_count: int, new_count: int) -> None:
    """CreatePartitions may only add: KafkaError INVALID_PARTITIONS otherwise (ZkAdminManager)."""
    if new_count < existing_count:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS,
                         f"Topic currently has {existing_count} partitions, which is higher "
                         f"than the requested {new_count}.")
    if new_count == existing_count:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS,
                         f"Topic already has {existing_count} partitions.")


# ---------------------------------------------------------------------------------------
# Manual assignments


def validate_manual_assignment(assignment: Mapping[int, Sequence[int]],
                               live_brokers: Collection[int]) -> None:
    """CreateTopics with explicit replica assignments: Kafka's checks, in Kafka's order.

    ZooKeeper-mode Kafka (AdminZkClient.validateTopicCreate) refuses a partition set that
    is not 0..n-1, differing replica counts and a broker listed twice in one partition;
    Kafka 4 (ReplicationControlManager) also refuses an empty replica list and brokers
    that are not registered. Every refusal is KafkaError INVALID_REPLICA_ASSIGNMENT.
    """
    sizes = {len(replicas) for replicas in assignment.values()}
    if len(sizes) != 1:
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         "All partitions should have the same number of replicas")
    for replicas in assignment.values():
        if len(set(replicas)) != len(replicas):
            raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                             f"Duplicate replica assignment found: {_scala_map(assignment)}")
    if set(assignment) != set(range(len(assignment))):
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         "partitions should be a consecutive 0-based integer sequence")
    for partition in sorted(assignment):
        replicas = assignment[partition]
        if not replicas:
            raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                             "The manual partition assignment includes an empty replica list.")
        for broker_id in sorted(replicas):
            if broker_id not in live_brokers:
                raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                                 f"The manual partition assignment includes broker "
                                 f"{broker_id}, but no such broker is registered.")


def validate_added_partitions_assignment(
    assignments: Sequence[Sequence[int]],
    existing: Mapping[int, Sequence[int]],
    new_count: int,
    live_brokers: Collection[int],
) -> dict[int, list[int]]:
    """CreatePartitions with explicit assignments (one replica list per added partition,
    in order): Kafka's ZooKeeper-mode checks, in its order. Returns partition id ->
    replicas for the added partitions.

    Raises KafkaError INVALID_PARTITIONS unless the count grows; INVALID_REPLICA_ASSIGNMENT
    for unknown brokers, a wrong number of lists, an empty list, a broker listed twice or
    a replication factor other than partition 0's.
    """
    check_partition_increase(len(existing), new_count)
    increment = new_count - len(existing)
    unknown = {broker for replicas in assignments for broker in replicas} - set(live_brokers)
    if unknown:
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         f"Unknown broker(s) in replica assignment: "
                         f"{', '.join(map(str, sorted(unknown)))}.")
    if len(assignments) != increment:
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         f"Increasing the number of partitions by {increment} but "
                         f"{len(assignments)} assignments provided.")
    added = {len(existing) + index: list(replicas) for index, replicas in enumerate(assignments)}
    replication_factor = len(_partition0_replicas(existing))
    for partition, replicas in added.items():
        if not replicas:
            raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                             f"Cannot have replication factor of 0 for partition id "
                             f"{partition}.")
        if len(set(replicas)) != len(replicas):
            raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                             f"Duplicate brokers not allowed in replica assignment: "
                             f"{', '.join(map(str, replicas))} for partition id {partition}.")
    bad = sorted((p, len(r)) for p, r in added.items() if len(r) != replication_factor)
    if bad:
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         f"Inconsistent replication factor between partitions, partition 0 "
                         f"has {replication_factor} while partitions "
                         f"[{', '.join(str(p) for p, _ in bad)}] have replication factors "
                         f"[{', '.join(str(n) for _, n in bad)}], respectively.")
    return added


def _scala_map(assignment: Mapping[int, Sequence[int]]) -> str:
    body = ", ".join(f"{p} -> List({', '.join(map(str, r))})"
                     for p, r in sorted(assignment.items()))
    return f"Map({body})"


# ---------------------------------------------------------------------------------------
# Leader election: which replica leads (PartitionLeaderElectionAlgorithms)


def offline_partition_leader(assignment: Sequence[int], isr: Collection[int],
                             live: Collection[int], unclean_enabled: bool) -> int | None:
    """The first live replica, in assignment order, that is in the ISR; failing that and
    only with unclean election, the first live replica; else None."""
    for replica in assignment:
        if replica in live and replica in isr:
            return replica
    if unclean_enabled:
        for replica in assignment:
            if replica in live:
                return replica
    return None


def reassign_partition_leader(reassignment: Sequence[int], isr: Collection[int],
                              live: Collection[int]) -> int | None:
    """The first live replica of the target replicas that is in the ISR, else None."""
    return next((r for r in reassignment if r in live and r in isr), None)


def preferred_replica_leader(assignment: Sequence[int], isr: Collection[int],
                             live: Collection[int]) -> int | None:
    """The preferred (first) replica if it is live and in the ISR, else None: never
    another replica."""
    if assignment and assignment[0] in live and assignment[0] in isr:
        return assignment[0]
    return None


def controlled_shutdown_leader(assignment: Sequence[int], isr: Collection[int],
                               live: Collection[int],
                               shutting_down: Collection[int]) -> int | None:
    """The first live replica in the ISR that is not shutting down, else None."""
    return next((r for r in assignment
                 if r in live and r in isr and r not in shutting_down), None)


# ---------------------------------------------------------------------------------------
# Leader and ISR transitions


class LeaderRecoveryState(int, Enum):
    RECOVERED = 0
    RECOVERING = 1  # elected uncleanly; KIP-704


@dataclass(frozen=True)
class LeaderAndIsr:
    """A partition's state znode: leader (NO_LEADER when none), leader_epoch, ISR."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    leader_recovery_state: LeaderRecoveryState = LeaderRecoveryState.RECOVERED

    def new_leader_and_isr(self, leader: int, isr: Iterable[int]) -> LeaderAndIsr:
        """Every change the controller makes bumps the leader epoch, fencing the old one."""
        return replace(self, leader=leader, leader_epoch=self.leader_epoch + 1,
                       isr=tuple(isr))


def initial_leader_and_isr(replicas: Sequence[int],
                           live: Collection[int]) -> LeaderAndIsr | None:
    """A new partition's state: leader = first live replica, ISR = the live replicas in
    assignment order, epoch 0; None when no replica is live (the partition stays new)."""
    live_replicas = [r for r in replicas if r in live]
    if not live_replicas:
        return None
    return LeaderAndIsr(live_replicas[0], 0, tuple(live_replicas))


@dataclass(frozen=True)
class OfflineElection:
    """The leader is gone (or there never was one): OfflinePartitionLeaderElectionStrategy."""

    unclean_enabled: bool = False
    leader_recovery_supported: bool = False  # mark unclean leaders RECOVERING (KIP-704)


@dataclass(frozen=True)
class ReassignElection:
    """The leader is not among (or not live in) the completed reassignment's replicas;
    `replicas` passed to `elect` are the target replicas."""


@dataclass(frozen=True)
class PreferredElection:
    """Move leadership back to the preferred replica."""


@dataclass(frozen=True)
class ControlledShutdownElection:
    shutting_down: frozenset[int] = field(default_factory=frozenset)


ElectionStrategy = OfflineElection | ReassignElection | PreferredElection | ControlledShutdownElection


def elect(state: LeaderAndIsr, strategy: ElectionStrategy, replicas: Sequence[int],
          live: Collection[int]) -> LeaderAndIsr | None:
    """The state after electing a leader with `strategy` (Kafka's Election.scala), or None
    when no replica is eligible (the state must not change). The leader epoch goes up by 1.

    ISR rules: an offline election keeps the live members of the old ISR, or just the new
    leader when it was not in the ISR (unclean); a controlled shutdown removes the
    shutting-down brokers; reassign and preferred elections keep the ISR.
    `live` are the brokers alive (for a controlled shutdown, including those shutting
    down: they are excluded by the strategy).
    """
    isr = state.isr
    if isinstance(strategy, OfflineElection):
        leader = offline_partition_leader(replicas, isr, live, strategy.unclean_enabled)
        if leader is None:
            return None
        if leader in isr:
            return state.new_leader_and_isr(leader, [r for r in isr if r in live])
        new_state = state.new_leader_and_isr(leader, [leader])
        if strategy.leader_recovery_supported:
            new_state = replace(new_state,
                                leader_recovery_state=LeaderRecoveryState.RECOVERING)
        return new_state
    if isinstance(strategy, ReassignElection):
        leader = reassign_partition_leader(replicas, isr, live)
        return None if leader is None else state.new_leader_and_isr(leader, isr)
    if isinstance(strategy, PreferredElection):
        leader = preferred_replica_leader(replicas, isr, live)
        return None if leader is None else state.new_leader_and_isr(leader, isr)
    if isinstance(strategy, ControlledShutdownElection):
        leader = controlled_shutdown_leader(replicas, isr, live, strategy.shutting_down)
        if leader is None:
            return None
        return state.new_leader_and_isr(
            leader, [r for r in isr if r not in strategy.shutting_down])
    raise TypeError(f"unknown election strategy {strategy!r}")


def isr_after_broker_failure(state: LeaderAndIsr, broker_id: int) -> LeaderAndIsr | None:
    """Take a replica that went offline out of the ISR, as Kafka's controller does
    (ReplicaStateMachine.doRemoveReplicasFromIsr) once leaders have been re-elected:
    None when it is not in the ISR (no change). Otherwise the leader stays, or becomes
    NO_LEADER when it was this broker; the ISR loses the broker unless it is the last
    member (kept so that a clean election can wait for it); the leader epoch goes up by 1.
    """
    if broker_id not in state.isr:
        return None
    leader = NO_LEADER if state.leader == broker_id else state.leader
    isr = state.isr if len(state.isr) == 1 else [r for r in state.isr if r != broker_id]
    return state.new_leader_and_isr(leader, isr)


# Kafka answers these with the error's own message (ApiError(error)).
ELECTION_NOT_NEEDED_MESSAGE = "Leader election not needed for topic partition."
NO_REASSIGNMENT_IN_PROGRESS_MESSAGE = "No partition reassignment is in progress."


class ElectionType(int, Enum):
    """ElectLeaders' election_type."""

    PREFERRED = 0
    UNCLEAN = 1


def elect_leaders(state: LeaderAndIsr, election_type: ElectionType,
                  replicas: Sequence[int], live: Collection[int]) -> LeaderAndIsr:
    """One partition of an ElectLeaders request (KafkaController.processReplicaLeaderElection).

    Raises KafkaError ELECTION_NOT_NEEDED when the preferred replica already leads
    (PREFERRED) or the leader is live (UNCLEAN); PREFERRED_LEADER_NOT_AVAILABLE or
    ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica can be elected.
    """
    if election_type is ElectionType.PREFERRED:
        if state.leader == replicas[0]:
            raise KafkaError(ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE)
        new_state = elect(state, PreferredElection(), replicas, live)
        if new_state is None:
            raise KafkaError(ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
                             "Failed to elect leader for partition under strategy "
                             "PreferredReplicaPartitionLeaderElectionStrategy")
        return new_state
    if state.leader != NO_LEADER and state.leader in live:
        raise KafkaError(ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE)
    # An admin-triggered unclean election allows unclean leaders whatever the topic says.
    new_state = elect(state, OfflineElection(unclean_enabled=True), replicas, live)
    if new_state is None:
        raise KafkaError(ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
                         "Failed to elect leader for partition under strategy "
                         "OfflinePartitionLeaderElectionStrategy(true)")
    return new_state


# ---------------------------------------------------------------------------------------
# Reassignment (KIP-455)


@dataclass(frozen=True)
class ReplicaAssignment:
    """A partition's full replica set as in `/brokers/topics/<topic>`: `replicas` (RS),
    with `adding_replicas` (AR) and `removing_replicas` (RR) while a reassignment runs."""

    replicas: tuple[int, ...]
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def origin_replicas(self) -> tuple[int, ...]:
        """ORS: the replicas before the reassignment."""
        return tuple(r for r in self.replicas if r not in self.adding_replicas)

    @property
    def target_replicas(self) -> tuple[int, ...]:
        """TRS: the replicas once the reassignment completes."""
        return tuple(r for r in self.replicas if r not in self.removing_replicas)

    @property
    def is_being_reassigned(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)

    def reassign_to(self, target: Sequence[int]) -> ReplicaAssignment:
        """Step U1: RS = TRS + ORS (target first, in its order, then the original
        replicas not in it), AR = RS - ORS, RR = RS - TRS. A reassignment already
        running is replaced: its origin stays the origin. Reassigning to the origin
        replicas cancels it."""
        origin = self.origin_replicas
        full = tuple(dict.fromkeys([*target, *origin]))
        return ReplicaAssignment(
            full,
            tuple(r for r in full if r not in origin),
            tuple(r for r in full if r not in target),
        )

    def cancelled(self) -> ReplicaAssignment:
        """AlterPartitionReassignments with null replicas: back to the origin replicas
        (their order cannot always be restored: the full set lists the target first)."""
        return self.reassign_to(self.origin_replicas)

    def is_complete(self, isr: Collection[int]) -> bool:
        """Phase B starts when every target replica is in the ISR."""
        return not self.is_being_reassigned or set(self.target_replicas) <= set(isr)

    def completed(self) -> ReplicaAssignment:
        """Step B2/B6: RS = TRS, AR = RR = []."""
        return ReplicaAssignment(self.target_replicas)


def validate_reassignment_target(current: ReplicaAssignment, target: Sequence[int],
                                 live_brokers: Collection[int]) -> None:
    """KafkaController.validateReplicas: KafkaError INVALID_REPLICA_ASSIGNMENT for an
    empty or duplicated list, a negative broker id, or an added replica not alive."""
    if not target:
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         "Empty replica list specified in partition reassignment.")
    if len(set(target)) != len(target):
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         f"Duplicate replica ids in partition reassignment replica list: "
                         f"{list(target)}")
    if any(r < 0 for r in target):
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         f"Invalid broker id in replica list: {list(target)}")
    adding = current.reassign_to(target).adding_replicas
    if not set(adding) <= set(live_brokers):
        raise KafkaError(INVALID_REPLICA_ASSIGNMENT,
                         f"Replica assignment has brokers that are not alive. Replica list: "
                         f"{list(adding)}, live broker list: {sorted(live_brokers)}")


@dataclass(frozen=True)
class CompletionStep:
    """What the controller does once a reassignment's targets are all in the ISR."""

    assignment: ReplicaAssignment  # B2/B6: RS = TRS
    leader_and_isr: LeaderAndIsr  # after B3 and B4
    leader_elected: bool  # False: B3 found no target replica to lead (leader kept)
    removed_replicas: tuple[int, ...]  # B4/B5: out of the ISR, then stopped and deleted


def complete_reassignment(assignment: ReplicaAssignment, state: LeaderAndIsr,
                          live: Collection[int]) -> CompletionStep:
    """Phase B of KafkaController.onPartitionReassignment for a complete reassignment.

    B3: a leader outside the target replicas, or dead, is replaced by ReassignElection
    (ISR kept); a live leader inside them stays, with the leader epoch bumped. B4: each
    removed replica in the ISR then leaves it as in isr_after_broker_failure (one epoch
    bump per replica, NO_LEADER if it still led because B3 failed)."""
    completed = assignment.completed()
    target = completed.replicas
    if state.leader in target and state.leader in live:
        elected: LeaderAndIsr | None = state.new_leader_and_isr(state.leader, state.isr)
    else:
        elected = elect(state, ReassignElection(), target, live)
    new_state = state if elected is None else elected
    for replica in assignment.removing_replicas:
        new_state = isr_after_broker_failure(new_state, replica) or new_state
    return CompletionStep(completed, new_state, elected is not None,
                          assignment.removing_replicas)


def plan_reassignment(current: ReplicaAssignment | None, target: Sequence[int] | None,
                      live_brokers: Collection[int]) -> ReplicaAssignment:
    """One partition of an AlterPartitionReassignments request, checked in the order of
    KafkaController.processApiPartitionReassignment: the new full assignment.

    `current` is None for a partition that does not exist; `target` None cancels.
    Raises KafkaError INVALID_REPLICA_ASSIGNMENT (validate_reassignment_target, checked
    first, so also for a partition that does not exist), NO_REASSIGNMENT_IN_PROGRESS for a
    cancellation with none running (a partition that does not exist has none), and
    UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist.
    """
    known = current if current is not None else ReplicaAssignment(())
    if target is not None:
        validate_reassignment_target(known, target, live_brokers)
    elif not known.is_being_reassigned:
        raise KafkaError(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
                         NO_REASSIGNMENT_IN_PROGRESS_MESSAGE)
    if current is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")
    return current.reassign_to(target) if target is not None else current.cancelled()


@dataclass(frozen=True)
class ReassignmentUpdate:
    """What the controller writes to a partition's state once a (new) reassignment is in
    the topic's assignment (step U1)."""

    leader_and_isr: LeaderAndIsr
    completion: CompletionStep | None  # not None: complete at once (phase B follows)


def update_reassignment(previous: ReplicaAssignment, assignment: ReplicaAssignment,
                        state: LeaderAndIsr, live: Collection[int]) -> ReassignmentUpdate:
    """KafkaController.onPartitionReassignment after U1 moved the partition from
    `previous` to `assignment`: replicas no longer in it (a replaced or cancelled
    reassignment's additions) leave the ISR as offline replicas do; then either phase B
    when the target replicas are all in the ISR already, or step A1: the leader epoch goes
    up, so the leader and the new replicas start from the new replica set."""
    for replica in previous.replicas:
        if replica not in assignment.replicas:
            state = isr_after_broker_failure(state, replica) or state
    if assignment.is_complete(state.isr):
        completion = complete_reassignment(assignment, state, live)
        return ReassignmentUpdate(completion.leader_and_isr, completion)
    return ReassignmentUpdate(state.new_leader_and_isr(state.leader, state.isr), None)


# ---------------------------------------------------------------------------------------
# Automatic leader rebalance (auto.leader.rebalance.enable)


def partitions_to_rebalance(
    partitions: Mapping[tuple[str, int], tuple[Sequence[int], LeaderAndIsr | None]],
    live: Collection[int], imbalance_percentage: int,
) -> list[tuple[str, int]]:
    """KafkaController.checkAndTriggerAutoLeaderRebalance: for each broker, the share of
    the partitions it is the preferred replica of (first in `replicas`) that another
    broker leads; above `leader.imbalance.per.broker.percentage`, those of them whose
    preferred replica can lead now (live and in the ISR) get a preferred election.
    `partitions` maps (topic, partition) to (replicas, state; None when it has none yet).
    """
    by_preferred: dict[int, list[tuple[str, int]]] = {}
    for key, (replicas, _state) in partitions.items():
        if replicas:
            by_preferred.setdefault(replicas[0], []).append(key)
    chosen: list[tuple[str, int]] = []
    for preferred, keys in sorted(by_preferred.items()):
        elsewhere = [key for key in keys if (state := partitions[key][1]) is not None
                     and state.leader != preferred]
        if len(elsewhere) / len(keys) <= imbalance_percentage / 100:
            continue
        for key in elsewhere:
            replicas, state = partitions[key]
            if preferred_replica_leader(replicas, state.isr, live) is not None:
                chosen.append(key)
    return sorted(chosen)
