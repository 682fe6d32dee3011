"""ZkStore against a real ZooKeeper: Kafka's znodes byte for byte (ZkData.scala),
compare-and-set conflicts, ephemerals, controller election, watches, chroot, sessions."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient

from broker.zookeeper.store import (
    PERSISTENT_PATHS,
    BrokerIdInUse,
    BrokerRegistration,
    ControllerMoved,
    ElectionInProgress,
    NoSuchZnode,
    PartitionState,
    ReassignmentInProgress,
    StaleVersion,
    TopicAlreadyMarkedForDeletion,
    TopicAssignment,
    TopicExists,
    UnknownTopic,
    ZkConnectionError,
    ZkStore,
    split_connect_string,
    topic_id_from_string,
    topic_id_to_string,
)

NOW_MS = 1700000000123  # the `store` fixture's clock
TOPIC_ID = uuid.UUID("a3c5e7f9-1b2d-4f60-8192-a3b4c5d6e7f8")


def data(raw: KazooClient, path: str) -> bytes | None:
    return raw.get(path)[0]


# -- connection, chroot, cluster id --------------------------------------------------------


def test_connect_creates_kafkas_top_level_paths_with_no_data(store, raw):
    for path in PERSISTENT_PATHS:
        value, stat = raw.get(path)
        assert value is None, path  # null, as Kafka's createRecursive leaves them
        assert stat.numChildren == 0


def test_chroot_holds_everything_under_it(zookeeper_server, connect_string, store):
    store.get_or_create_cluster_id("chrooted")
    chroot = split_connect_string(connect_string)[1]
    root = KazooClient(hosts=zookeeper_server.connect_string)
    root.start(timeout=10)
    try:
        assert root.get(f"{chroot}/cluster/id")[0] == b'{"version":"1","id":"chrooted"}'
        assert not root.exists("/cluster/id")
    finally:
        root.stop()
        root.close()


def test_split_connect_string_as_kafka_reads_zookeeper_connect():
    assert split_connect_string("h1:2181,h2:2181/kafka/prod") == ("h1:2181,h2:2181", "/kafka/prod")
    assert split_connect_string("h1:2181") == ("h1:2181", "")
    assert split_connect_string("h1:2181/") == ("h1:2181", "")
    with pytest.raises(ValueError):
        split_connect_string("/kafka")


def test_connect_to_nothing_is_a_clear_error():
    from broker.zookeeper.server import free_port

    with pytest.raises(ZkConnectionError, match=r"no ZooKeeper answered at 127\.0\.0\.1:\d+"):
        ZkStore(f"127.0.0.1:{free_port()}", session_timeout_ms=6000,
                connection_timeout_ms=1000).connect()


def test_cluster_id_is_created_once(store, stores, raw):
    assert store.get_or_create_cluster_id("Zc0DkNxkRxWXbmtn0bnmAQ") == "Zc0DkNxkRxWXbmtn0bnmAQ"
    assert data(raw, "/cluster/id") == b'{"version":"1","id":"Zc0DkNxkRxWXbmtn0bnmAQ"}'
    assert stores().get_or_create_cluster_id("other") == "Zc0DkNxkRxWXbmtn0bnmAQ"


# -- brokers -------------------------------------------------------------------------------


def test_broker_registration_is_kafkas_v5_json(store, raw):
    epoch = store.register_broker(BrokerRegistration(1, "127.0.0.1", 9092))
    value, stat = raw.get("/brokers/ids/1")
    assert value == (
        b'{"version":5,"host":"127.0.0.1","port":9092,"jmx_port":-1,"timestamp":"1700000000123",'
        b'"endpoints":["PLAINTEXT://127.0.0.1:9092"],'
        b'"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"features":{}}')
    assert stat.ephemeralOwner == store.session_id != 0
    assert epoch == stat.czxid
    store.register_broker(BrokerRegistration(2, "::1", 9093, rack="rack-b"))
    assert json.loads(data(raw, "/brokers/ids/2")) == {
        "version": 5, "host": "::1", "port": 9093, "jmx_port": -1, "timestamp": str(NOW_MS),
        "endpoints": ["PLAINTEXT://[::1]:9093"],
        "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"}, "rack": "rack-b",
        "features": {}}
    brokers = store.brokers()
    assert brokers == {1: BrokerRegistration(1, "127.0.0.1", 9092),
                       2: BrokerRegistration(2, "::1", 9093, "rack-b")}
    assert brokers[1].epoch == epoch


def test_registering_again_in_the_same_session_is_fine(store):
    store.register_broker(BrokerRegistration(1, "127.0.0.1", 9092))
    store.register_broker(BrokerRegistration(1, "127.0.0.1", 9093))
    assert store.brokers()[1].port == 9093


def test_broker_id_held_by_another_live_session_is_refused_until_it_closes(stores):
    first, second = stores(), stores()
    first.register_broker(BrokerRegistration(1, "127.0.0.1", 9092))
    with pytest.raises(BrokerIdInUse, match=r"/brokers/ids/1, node already exists and owner"):
        second.register_broker(BrokerRegistration(1, "127.0.0.1", 9093))
    first.close()  # the ephemeral goes with the session
    assert second.brokers() == {}
    second.register_broker(BrokerRegistration(1, "127.0.0.1", 9093))
    assert second.brokers() == {1: BrokerRegistration(1, "127.0.0.1", 9093)}


def test_watch_brokers_sees_registrations_come_and_go(store, stores, events):
    seen = events()
    store.watch_brokers(seen)
    assert seen.next() == {}
    other = stores()
    other.register_broker(BrokerRegistration(3, "localhost", 9094, "r1"))
    seen.wait_for({3: BrokerRegistration(3, "localhost", 9094, "r1")})
    other.close()
    seen.wait_for({})


# -- controller ----------------------------------------------------------------------------


def test_controller_election_one_wins_then_the_other_after_it_closes(stores, events,
                                                                   connect_string):
    first = stores(clock_ms=lambda: 1700000000001)
    second = stores()
    raw = KazooClient(hosts=connect_string)
    raw.start(timeout=10)
    try:
        assert first.controller_id() is None and first.controller_epoch() is None
        assert first.try_become_controller(1) == 1
        assert second.try_become_controller(2) is None
        assert raw.get("/controller")[0] == (
            b'{"version":2,"brokerid":1,"timestamp":"1700000000001","kraftControllerEpoch":-1}')
        assert raw.get("/controller")[1].ephemeralOwner == first.session_id
        epoch_data, epoch_stat = raw.get("/controller_epoch")
        assert (epoch_data, epoch_stat.version) == (b"1", 1)  # created as "0", then set
        assert first.controller_epoch_version == 1
        assert second.controller_id() == 1

        seen = events()
        second.watch_controller(seen)
        assert seen.next() == 1
        first.close()
        seen.wait_for(None)
        assert second.try_become_controller(2) == 2
        seen.wait_for(2)
        assert raw.get("/controller_epoch")[0] == b"2"
        assert second.controller_epoch() == 2
        assert second.controller_epoch_version == 2
    finally:
        raw.stop()
        raw.close()


def test_concurrent_election_has_exactly_one_winner(stores):
    contenders = [stores() for _ in range(4)]
    results: dict[int, int | None] = {}

    def run(broker_id: int) -> None:
        results[broker_id] = contenders[broker_id].try_become_controller(broker_id)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    winners = [i for i, epoch in results.items() if epoch is not None]
    assert len(results) == 4 and len(winners) == 1
    assert results[winners[0]] == 1
    assert contenders[0].controller_id() == winners[0]


# -- topics --------------------------------------------------------------------------------


def test_create_topic_writes_config_then_assignment_as_kafka(store, raw):
    store.create_topic("orders", TOPIC_ID, {1: [2, 3], 0: [1, 2]}, {"retention.ms": "1000"})
    topic_id = topic_id_to_string(TOPIC_ID)
    assert data(raw, "/brokers/topics/orders") == (
        b'{"version":3,"topic_id":"' + topic_id.encode() + b'","partitions":{"0":[1,2],"1":[2,3]},'
        b'"adding_replicas":{},"removing_replicas":{}}')
    assert data(raw, "/config/topics/orders") == b'{"version":1,"config":{"retention.ms":"1000"}}'
    assert store.topics() == ["orders"]
    assignment = store.topic_assignment("orders")
    assert assignment == TopicAssignment(TOPIC_ID, {0: [1, 2], 1: [2, 3]}, {}, {}, 0)
    assert store.topic_configs("orders") == {"retention.ms": "1000"}
    with pytest.raises(TopicExists, match="Topic 'orders' already exists."):
        store.create_topic("orders", TOPIC_ID, {0: [1]}, {})


def test_topic_without_configs_still_gets_its_config_znode(store, raw):
    store.create_topic("plain", None, {0: [1]}, {})
    assert data(raw, "/config/topics/plain") == b'{"version":1,"config":{}}'
    assert data(raw, "/brokers/topics/plain") == (
        b'{"version":3,"partitions":{"0":[1]},"adding_replicas":{},"removing_replicas":{}}')
    assert store.topic_assignment("plain").topic_id is None
    assert store.topic_assignment("missing") is None
    assert store.topic_configs("missing") == {}


def test_topic_id_is_kafkas_base64_form():
    assert topic_id_to_string(uuid.UUID(int=0)) == "AAAAAAAAAAAAAAAAAAAAAA"
    assert topic_id_to_string(uuid.UUID(int=(1 << 128) - 1)) == "_____________________w"
    assert topic_id_from_string(topic_id_to_string(TOPIC_ID)) == TOPIC_ID


def test_set_topic_assignment_is_compare_and_set(store, raw):
    store.create_topic("grow", TOPIC_ID, {0: [1, 2]}, {})
    read = store.topic_assignment("grow")
    grown = TopicAssignment(read.topic_id, {0: [1, 2], 1: [2, 3]}, adding={0: [3]},
                            removing={0: [1], 1: []})
    written = store.set_topic_assignment("grow", grown, read.version)
    assert written.version == 1 and written.partitions == {0: [1, 2], 1: [2, 3]}
    assert json.loads(data(raw, "/brokers/topics/grow")) == {
        "version": 3, "topic_id": topic_id_to_string(TOPIC_ID),
        "partitions": {"0": [1, 2], "1": [2, 3]}, "adding_replicas": {"0": [3]},
        "removing_replicas": {"0": [1]}}
    assert store.topic_assignment("grow") == TopicAssignment(
        TOPIC_ID, {0: [1, 2], 1: [2, 3]}, {0: [3]}, {0: [1]}, 1)
    with pytest.raises(StaleVersion):
        store.set_topic_assignment("grow", grown, read.version)
    with pytest.raises(UnknownTopic):
        store.set_topic_assignment("nope", grown, 0)
    with pytest.raises(ValueError):
        store.set_topic_assignment("grow", grown, -1)  # "any version" would skip the check


def test_set_topic_assignment_from_replicas_keeps_topic_id_and_reassignment(store, raw):
    store.create_topic("more", TOPIC_ID, {0: [1, 2]}, {})
    first = store.set_topic_assignment(
        "more", TopicAssignment(TOPIC_ID, {0: [1, 2, 3]}, adding={0: [3]}), 0)
    grown = store.set_topic_assignment("more", {0: [1, 2, 3], 1: [2, 3]}, first.version)
    assert grown == TopicAssignment(TOPIC_ID, {0: [1, 2, 3], 1: [2, 3]}, {0: [3]}, {}, 2)
    assert store.topic_assignment("more") == grown
    with pytest.raises(StaleVersion):
        store.set_topic_assignment("more", {0: [1]}, first.version)
    with pytest.raises(UnknownTopic):
        store.set_topic_assignment("absent", {0: [1]}, 0)


def test_set_topic_configs_replaces_them(store, raw):
    store.set_topic_configs("t", {"cleanup.policy": "compact"})
    store.set_topic_configs("t", {"segment.bytes": "1024", "retention.ms": "-1"})
    assert data(raw, "/config/topics/t") == (
        b'{"version":1,"config":{"segment.bytes":"1024","retention.ms":"-1"}}')
    assert store.topic_configs("t") == {"segment.bytes": "1024", "retention.ms": "-1"}


def test_topic_watches(store, stores, events):
    names, orders, configs = events(), events(), events()
    store.watch_topics(names)
    store.watch_topic("orders", orders)
    store.watch_topic_configs("orders", configs)
    assert (names.next(), orders.next(), configs.next()) == ([], None, {})
    other = stores()
    other.create_topic("orders", TOPIC_ID, {0: [1]}, {"a": "b"})
    names.wait_for(["orders"])
    orders.wait_for(TopicAssignment(TOPIC_ID, {0: [1]}, {}, {}, 0))
    configs.wait_for({"a": "b"})
    other.create_topic("billing", None, {0: [1]}, {})
    names.wait_for(["billing", "orders"])
    other.set_topic_assignment("orders", TopicAssignment(TOPIC_ID, {0: [1], 1: [1]}), 0)
    orders.wait_for(TopicAssignment(TOPIC_ID, {0: [1], 1: [1]}, {}, {}, 1))
    other.delete_topic_znodes("orders")
    orders.wait_for(None)
    names.wait_for(["billing"])


def test_a_failing_callback_does_not_end_its_watch(store, events):
    seen = events()

    def fragile(names: list[str]) -> None:
        seen(names)
        raise RuntimeError("callback bug")

    store.watch_topics(fragile)
    assert seen.next() == []
    store.create_topic("one", None, {0: [1]}, {})
    seen.wait_for(["one"])
    store.create_topic("two", None, {0: [1]}, {})
    seen.wait_for(["one", "two"])


def test_cancelled_watch_stops_calling(store, events):
    seen = events()
    watch = store.watch_topics(seen)
    assert seen.next() == []
    watch.cancel()
    store.create_topic("quiet", None, {0: [1]}, {})
    time.sleep(0.5)
    assert seen.empty()


# -- partition states ----------------------------------------------------------------------


def test_partition_state_is_kafkas_json_and_compare_and_set(store, raw):
    store.create_topic("p", TOPIC_ID, {0: [1, 2, 3]}, {})
    created = store.create_partition_state("p", 0, PartitionState(1, 0, [1, 2, 3], 1))
    assert created == PartitionState(1, 0, [1, 2, 3], 1, 0, 0)
    assert data(raw, "/brokers/topics/p/partitions/0/state") == (
        b'{"version":1,"leader":1,"leader_epoch":0,"isr":[1,2,3],"controller_epoch":1}')
    assert data(raw, "/brokers/topics/p/partitions") is None  # parents: null, as Kafka's
    assert data(raw, "/brokers/topics/p/partitions/0") is None
    assert store.partition_state("p", 0) == created
    assert store.partition_state("p", 1) is None

    shrunk = store.update_partition_state("p", 0, PartitionState(1, 0, [1, 2], 1), created.version)
    assert shrunk.version == 1 and store.partition_state("p", 0) == shrunk
    with pytest.raises(StaleVersion):  # the leader's view is old: it must re-read
        store.update_partition_state("p", 0, PartitionState(1, 0, [1], 1), created.version)
    recovering = store.update_partition_state(
        "p", 0, PartitionState(2, 1, [2], 1, leader_recovery_state=1), shrunk.version)
    assert data(raw, "/brokers/topics/p/partitions/0/state") == (
        b'{"version":1,"leader":2,"leader_epoch":1,"isr":[2],"controller_epoch":1,'
        b'"leader_recovery_state":1}')
    assert store.partition_state("p", 0) == recovering == PartitionState(2, 1, [2], 1, 1, 2)

    with pytest.raises(StaleVersion):
        store.create_partition_state("p", 0, PartitionState(1, 0, [1], 1))
    with pytest.raises(NoSuchZnode):
        store.update_partition_state("p", 7, PartitionState(1, 0, [1], 1), 0)
    with pytest.raises(UnknownTopic):
        store.create_partition_state("nope", 0, PartitionState(1, 0, [1], 1))


def test_controller_writes_are_fenced_by_the_controller_epoch(stores):
    old, new = stores(), stores()
    assert old.try_become_controller(1) == 1
    old.create_topic("f", None, {0: [1, 2]}, {})
    state = old.create_partition_state("f", 0, PartitionState(1, 0, [1, 2], 1),
                                       controller_epoch_version=old.controller_epoch_version)
    fenced_version = old.controller_epoch_version
    old.close()
    assert new.try_become_controller(2) == 2
    with pytest.raises(ControllerMoved):
        new.update_partition_state("f", 0, PartitionState(2, 1, [2], 1), state.version,
                                   controller_epoch_version=fenced_version)
    with pytest.raises(ControllerMoved):
        new.create_partition_state("f", 1, PartitionState(2, 0, [2], 1),
                                   controller_epoch_version=fenced_version)
    moved = new.update_partition_state("f", 0, PartitionState(2, 1, [2], 2), state.version,
                                       controller_epoch_version=new.controller_epoch_version)
    assert moved.version == 1


def test_watch_partition_state(store, stores, events):
    seen = events()
    store.create_topic("w", None, {0: [1, 2]}, {})
    store.watch_partition_state("w", 0, seen)
    assert seen.next() is None
    other = stores()
    created = other.create_partition_state("w", 0, PartitionState(1, 0, [1, 2], 1))
    seen.wait_for(created)
    updated = other.update_partition_state("w", 0, PartitionState(1, 0, [1], 1), 0)
    seen.wait_for(updated)
    assert updated.version == 1


# -- topic deletion ------------------------------------------------------------------------


def test_topic_deletion_request_and_completion(store, raw, events):
    pending = events()
    store.watch_deletions(pending)
    assert pending.next() == []
    with pytest.raises(UnknownTopic):
        store.request_topic_deletion("ghost")
    store.create_topic("old", TOPIC_ID, {0: [1]}, {"retention.ms": "1"})
    store.create_partition_state("old", 0, PartitionState(1, 0, [1], 1))
    store.request_topic_deletion("old")
    assert raw.get("/admin/delete_topics/old")[0] is None
    pending.wait_for(["old"])
    assert store.pending_deletions() == ["old"]
    with pytest.raises(TopicAlreadyMarkedForDeletion):
        store.request_topic_deletion("old")
    with pytest.raises(TopicExists, match="marked for deletion"):
        store.create_topic("old", TOPIC_ID, {0: [1]}, {})

    store.delete_topic_znodes("old")
    pending.wait_for([])
    assert not raw.exists("/brokers/topics/old")
    assert not raw.exists("/config/topics/old")
    assert store.topics() == [] and store.pending_deletions() == []
    store.delete_topic_znodes("old")  # again: nothing left, no error
    store.create_topic("old", None, {0: [1]}, {})


# -- partition reassignment ----------------------------------------------------------------


def test_partition_reassignment_znode(store, raw, events):
    seen = events()
    store.watch_partition_reassignment(seen)
    assert seen.next() is None
    assert store.partition_reassignment() == {}
    store.create_partition_reassignment({("b", 0): [3, 1], ("a", 1): [1, 2]})
    assert data(raw, "/admin/reassign_partitions") == (
        b'{"version":1,"partitions":[{"topic":"a","partition":1,"replicas":[1,2]},'
        b'{"topic":"b","partition":0,"replicas":[3,1]}]}')
    seen.wait_for({("a", 1): [1, 2], ("b", 0): [3, 1]})
    with pytest.raises(ReassignmentInProgress):
        store.create_partition_reassignment({("a", 0): [1]})
    store.set_partition_reassignment({("a", 1): [1, 2]})
    assert store.partition_reassignment() == {("a", 1): [1, 2]}
    seen.wait_for({("a", 1): [1, 2]})
    store.delete_partition_reassignment()
    seen.wait_for(None)
    store.set_partition_reassignment({("c", 0): [2]})  # creates it when absent
    assert store.partition_reassignment() == {("c", 0): [2]}
    seen.wait_for({("c", 0): [2]})
    # Not Kafka's JSON: ignored (KafkaZkClient.getPartitionReassignment), the watch fires.
    raw.set("/admin/reassign_partitions", b'{"version":1}')
    seen.wait_for({})
    assert store.partition_reassignment() == {}


def test_preferred_replica_election_znode(store, raw, events):
    seen = events()
    store.watch_preferred_replica_election(seen)
    assert seen.next() is None
    assert store.preferred_replica_election() is None
    store.create_preferred_replica_election([("b", 0), ("a", 1), ("b", 0)])
    assert data(raw, "/admin/preferred_replica_election") == (
        b'{"version":1,"partitions":[{"topic":"a","partition":1},{"topic":"b","partition":0}]}')
    seen.wait_for({("a", 1), ("b", 0)})
    with pytest.raises(ElectionInProgress):
        store.create_preferred_replica_election([("c", 0)])
    store.delete_preferred_replica_election()
    seen.wait_for(None)
    assert store.preferred_replica_election() is None
    store.create_preferred_replica_election([])
    assert store.preferred_replica_election() == set()
    seen.wait_for(set())
    # Not JSON: read as no partitions (Kafka's decode), and the watch still fires.
    raw.set("/admin/preferred_replica_election", b"not json")
    seen.wait_for(set())
    assert store.preferred_replica_election() == set()


# -- producer id blocks --------------------------------------------------------------------


def test_producer_id_blocks_are_kafkas_json_and_consecutive(store, raw):
    assert store.allocate_producer_id_block(1) == (0, 999)
    assert data(raw, "/latest_producer_id_block") == (
        b'{"version":1,"broker":1,"block_start":"0","block_end":"999"}')
    assert store.allocate_producer_id_block(2, block_size=10) == (1000, 1009)
    assert data(raw, "/latest_producer_id_block") == (
        b'{"version":1,"broker":2,"block_start":"1000","block_end":"1009"}')


def test_concurrent_producer_id_blocks_never_overlap(stores):
    contenders = [stores() for _ in range(3)]
    blocks: list[tuple[int, int]] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        for _ in range(5):
            block = contenders[index].allocate_producer_id_block(index, block_size=100)
            with lock:
                blocks.append(block)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(blocks) == [(100 * i, 100 * i + 99) for i in range(15)]


# -- session -------------------------------------------------------------------------------


def test_expired_session_is_reported_and_the_broker_registers_again(store, connect_string, events):
    states, brokers = events(), events()
    store.add_session_listener(states)
    store.register_broker(BrokerRegistration(5, "127.0.0.1", 9095))
    store.watch_brokers(brokers)
    old_epoch = brokers.next()[5].epoch
    old_session = store.session_id
    # The classic way to expire a session: a second client joins it, then closes it.
    session_id, password = store._client.client_id
    intruder = KazooClient(hosts=connect_string, client_id=(session_id, password))
    intruder.start(timeout=10)
    intruder.stop()
    intruder.close()
    states.wait_for("lost", timeout_s=30)
    states.wait_for("connected", timeout_s=30)
    deadline = time.monotonic() + 15
    while 5 not in store.brokers():
        assert time.monotonic() < deadline, "broker 5 was not registered again"
        time.sleep(0.1)
    assert store.session_id != old_session
    # The watch lived through the expiry and reports the new registration (a new epoch).
    new_epoch = store.brokers()[5].epoch
    assert new_epoch != old_epoch
    deadline = time.monotonic() + 15
    while True:
        latest = brokers.next()
        if 5 in latest and latest[5].epoch == new_epoch:
            break
        assert time.monotonic() < deadline, f"the watch never showed epoch {new_epoch}"
    assert store._client.get("/brokers/ids/5")[1].ephemeralOwner == store.session_id
