"""Kafka's ZooKeeper layout (`kafka/zk/ZkData.scala`) over kazoo.

`ZkStore` is synchronous: the broker calls it through `trio.to_thread.run_sync`. Every
znode holds what a Kafka broker in ZooKeeper mode writes there, byte for byte except the
order of JSON keys where Kafka's own order is a hash map's (docs/cluster.md gives ours).

Watches take plain callables. Each is called once right away with the current value (on
the calling thread) and then after every change (on kazoo's callback thread, one at a
time); the caller bridges to trio (e.g. `trio.lowlevel.TrioToken.run_sync_soon`). kazoo
re-arms them after every event and after a session expiry. A watch callback may call the
store; it must not wait on trio.

Writes that must not lose a race are compare-and-set on the znode version read earlier
(`StaleVersion` when someone wrote in between), as Kafka's controller and partition
leaders do.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NoNodeError,
    NodeExistsError,
    RolledBackError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import RetryFailedError

log = logging.getLogger(__name__)

# -- paths (ZkData.scala) ---------------------------------------------------------------

CLUSTER_ID_PATH = "/cluster/id"
CONTROLLER_PATH = "/controller"
CONTROLLER_EPOCH_PATH = "/controller_epoch"
BROKER_IDS_PATH = "/brokers/ids"
TOPICS_PATH = "/brokers/topics"
TOPIC_CONFIGS_PATH = "/config/topics"
DELETE_TOPICS_PATH = "/admin/delete_topics"
REASSIGN_PARTITIONS_PATH = "/admin/reassign_partitions"
PREFERRED_REPLICA_ELECTION_PATH = "/admin/preferred_replica_election"
PRODUCER_ID_BLOCK_PATH = "/latest_producer_id_block"

# ZkData.PersistentZkPaths: what a Kafka broker makes sure exists when it starts
# (KafkaZkClient.createTopLevelPaths), with no data.
PERSISTENT_PATHS = (
    "/consumers",
    BROKER_IDS_PATH,
    TOPICS_PATH,
    "/config/changes",
    DELETE_TOPICS_PATH,
    "/brokers/seqid",
    "/isr_change_notification",
    PRODUCER_ID_BLOCK_PATH,
    "/log_dir_event_notification",
    TOPIC_CONFIGS_PATH,
    "/config/clients",
    "/config/users",
    "/config/brokers",
    "/config/ips",
)

INITIAL_CONTROLLER_EPOCH = 0  # KafkaController.InitialControllerEpoch
PRODUCER_ID_BLOCK_SIZE = 1000  # ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
UNKNOWN_VERSION = -2  # ZkVersion.UnknownVersion: never read from a znode
LEADER_RECOVERY_STATE_RECOVERED = 0
DEFAULT_SESSION_TIMEOUT_MS = 18_000  # zookeeper.session.timeout.ms
MAX_INT64 = (1 << 63) - 1


def broker_path(broker_id: int) -> str:
    return f"{BROKER_IDS_PATH}/{broker_id}"


def topic_path(topic: str) -> str:
    return f"{TOPICS_PATH}/{topic}"


def partitions_path(topic: str) -> str:
    return f"{topic_path(topic)}/partitions"


def partition_state_path(topic: str, partition: int) -> str:
    return f"{partitions_path(topic)}/{partition}/state"


def topic_config_path(topic: str) -> str:
    return f"{TOPIC_CONFIGS_PATH}/{topic}"


def delete_topic_path(topic: str) -> str:
    return f"{DELETE_TOPICS_PATH}/{topic}"


# -- errors ------------------------------------------------------------------------------


class ZkError(Exception):
    """A ZooKeeper operation the store could not carry out."""


class ZkConnectionError(ZkError):
    """ZooKeeper could not be reached (or not again within the session timeout)."""


class StaleVersion(ZkError):
    """A compare-and-set lost: the znode changed since its version was read."""


class ControllerMoved(ZkError):
    """A controller write fenced by /controller_epoch found a newer controller."""


class NoSuchZnode(ZkError):
    """The znode to update does not exist."""


class BrokerIdInUse(ZkError):
    """/brokers/ids/<id> is held by another live ZooKeeper session."""


class TopicExists(ZkError):
    pass


class UnknownTopic(ZkError):
    pass


class TopicAlreadyMarkedForDeletion(ZkError):
    pass


class ReassignmentInProgress(ZkError):
    pass


class ElectionInProgress(ZkError):
    """/admin/preferred_replica_election exists: the controller has not finished the
    previous request."""


# -- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerRegistration:
    """A broker's /brokers/ids/<id>: one PLAINTEXT listener. `epoch` is the znode's
    creation zxid, Kafka's broker epoch (changes when a broker re-registers)."""

    id: int
    host: str
    port: int
    rack: str | None = None
    epoch: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class TopicAssignment:
    """/brokers/topics/<topic>: replicas per partition; `version` is the znode version
    read (the `expected_version` of a later `set_topic_assignment`)."""

    topic_id: uuid.UUID | None
    partitions: dict[int, list[int]]
    adding: dict[int, list[int]] = field(default_factory=dict)
    removing: dict[int, list[int]] = field(default_factory=dict)
    version: int = UNKNOWN_VERSION


@dataclass(frozen=True)
class PartitionState:
    """/brokers/topics/<topic>/partitions/<p>/state; `version` is the znode version read
    (Kafka's partition epoch), the `expected_version` of the next update."""

    leader: int
    leader_epoch: int
    isr: list[int]
    controller_epoch: int
    leader_recovery_state: int = LEADER_RECOVERY_STATE_RECOVERED
    version: int = UNKNOWN_VERSION


class Watch:
    """A registered watch; `cancel()` stops its callbacks (kazoo drops it at the next event)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        return f"Watch({self.path!r}{', cancelled' if self.cancelled else ''})"


# -- JSON codecs (ZkData.scala) ----------------------------------------------------------


def _json(value: Any) -> bytes:
    # Kafka's Json.encodeAsBytes (Jackson): compact, UTF-8, non-ASCII not escaped.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _parse(data: bytes | None, path: str) -> Any:
    if data is None:
        raise ZkError(f"{path} holds no data")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ZkError(f"{path} holds no JSON: {data[:200]!r}") from exc


def topic_id_to_string(topic_id: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes, no padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode("ascii")


def topic_id_from_string(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _format_address(host: str, port: int) -> str:
    # Kafka's Utils.formatAddress: IPv6 literals in brackets.
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def encode_broker(registration: BrokerRegistration, timestamp_ms: int) -> bytes:
    """BrokerIdZNode.encode, version 5 (Kafka 2.7+). The rack key is there only when a
    rack is set, as in Kafka."""
    value: dict[str, Any] = {
        "version": 5,
        "host": registration.host,
        "port": registration.port,
        "jmx_port": -1,
        "timestamp": str(timestamp_ms),
        "endpoints": [f"PLAINTEXT://{_format_address(registration.host, registration.port)}"],
        "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"},
    }
    if registration.rack is not None:
        value["rack"] = registration.rack
    value["features"] = {}
    return _json(value)


def decode_broker(broker_id: int, data: bytes | None, epoch: int = -1) -> BrokerRegistration:
    path = broker_path(broker_id)
    value = _parse(data, path)
    try:
        host, port = value.get("host"), value.get("port")
        if host is None or port in (None, -1):
            # Only non-PLAINTEXT listeners at the top level: take the first endpoint.
            endpoint = value["endpoints"][0].split("://", 1)[1]
            host, _, port = endpoint.rpartition(":")
            host = host.strip("[]")
        return BrokerRegistration(broker_id, str(host), int(port), value.get("rack"), epoch)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ZkError(f"{path}: not a broker registration: {data[:200]!r}") from exc


def encode_controller(broker_id: int, timestamp_ms: int) -> bytes:
    """ControllerZNode.encode; kraftControllerEpoch -1 says a ZooKeeper-mode controller."""
    return _json({"version": 2, "brokerid": broker_id, "timestamp": str(timestamp_ms),
                  "kraftControllerEpoch": -1})


def decode_controller(data: bytes | None) -> int:
    value = _parse(data, CONTROLLER_PATH)
    try:
        return int(value["brokerid"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ZkError(f"{CONTROLLER_PATH}: no brokerid in {data[:200]!r}") from exc


def encode_topic_assignment(assignment: TopicAssignment) -> bytes:
    """TopicZNode.encode, version 3; adding/removing list only partitions that have some."""
    value: dict[str, Any] = {"version": 3}
    if assignment.topic_id is not None:
        value["topic_id"] = topic_id_to_string(assignment.topic_id)
    value["partitions"] = {str(p): list(r) for p, r in sorted(assignment.partitions.items())}
    value["adding_replicas"] = {str(p): list(r) for p, r in sorted(assignment.adding.items()) if r}
    value["removing_replicas"] = {
        str(p): list(r) for p, r in sorted(assignment.removing.items()) if r}
    return _json(value)


def decode_topic_assignment(topic: str, data: bytes | None, version: int) -> TopicAssignment:
    path = topic_path(topic)
    if data is None:  # TopicZNode.decode: no data is no partitions
        return TopicAssignment(None, {}, version=version)
    value = _parse(data, path)
    try:
        topic_id = value.get("topic_id")

        def replicas(key: str) -> dict[int, list[int]]:
            return {int(p): [int(b) for b in r] for p, r in (value.get(key) or {}).items()}

        return TopicAssignment(
            None if topic_id is None else topic_id_from_string(topic_id),
            dict(sorted(replicas("partitions").items())),
            replicas("adding_replicas"), replicas("removing_replicas"), version)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ZkError(f"{path}: not a topic assignment: {data[:200]!r}") from exc


def encode_partition_state(state: PartitionState) -> bytes:
    """TopicPartitionStateZNode.encode: leader_recovery_state only when not RECOVERED."""
    value: dict[str, Any] = {
        "version": 1,
        "leader": state.leader,
        "leader_epoch": state.leader_epoch,
        "isr": list(state.isr),
        "controller_epoch": state.controller_epoch,
    }
    if state.leader_recovery_state != LEADER_RECOVERY_STATE_RECOVERED:
        value["leader_recovery_state"] = state.leader_recovery_state
    return _json(value)


def decode_partition_state(path: str, data: bytes | None, version: int) -> PartitionState:
    value = _parse(data, path)
    try:
        return PartitionState(
            int(value["leader"]), int(value["leader_epoch"]), [int(b) for b in value["isr"]],
            int(value["controller_epoch"]),
            int(value.get("leader_recovery_state", LEADER_RECOVERY_STATE_RECOVERED)), version)
    except (KeyError, TypeError, ValueError) as exc:
        raise ZkError(f"{path}: not a partition state: {data[:200]!r}") from exc


def encode_config(configs: dict[str, str]) -> bytes:
    """ConfigEntityZNode.encode."""
    return _json({"version": 1, "config": {str(k): str(v) for k, v in configs.items()}})


def decode_config(data: bytes | None) -> dict[str, str]:
    if data is None:
        return {}
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return {}  # ConfigEntityZNode.decode yields no properties for bad JSON
    config = value.get("config") if isinstance(value, dict) else None
    return {str(k): str(v) for k, v in config.items()} if isinstance(config, dict) else {}


def encode_cluster_id(cluster_id: str) -> bytes:
    return _json({"version": "1", "id": cluster_id})  # "1" a string, as in ClusterIdZNode


def encode_reassignment(reassignment: dict[tuple[str, int], list[int]]) -> bytes:
    """ReassignPartitionsZNode.encode."""
    return _json({"version": 1, "partitions": [
        {"topic": topic, "partition": partition, "replicas": list(replicas)}
        for (topic, partition), replicas in sorted(reassignment.items())]})


def decode_reassignment(data: bytes | None) -> dict[tuple[str, int], list[int]]:
    value = _parse(data, REASSIGN_PARTITIONS_PATH)
    try:
        return {(str(entry["topic"]), int(entry["partition"])): [int(b) for b in entry["replicas"]]
                for entry in value["partitions"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise ZkError(f"{REASSIGN_PARTITIONS_PATH}: not a reassignment: {data[:200]!r}") from exc


def encode_preferred_replica_election(partitions: Iterable[tuple[str, int]]) -> bytes:
    """PreferredReplicaElectionZNode.encode."""
    return _json({"version": 1, "partitions": [
        {"topic": topic, "partition": partition} for topic, partition in sorted(set(partitions))]})


def decode_preferred_replica_election(data: bytes | None) -> set[tuple[str, int]]:
    value = _parse(data, PREFERRED_REPLICA_ELECTION_PATH)
    try:
        return {(str(entry["topic"]), int(entry["partition"])) for entry in value["partitions"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise ZkError(f"{PREFERRED_REPLICA_ELECTION_PATH}: not a preferred replica election: "
                      f"{data[:200]!r}") from exc


def encode_producer_id_block(broker_id: int, block_start: int, block_end: int) -> bytes:
    """ProducerIdBlockZNode.generateProducerIdBlockJson; the ids are strings."""
    return _json({"version": 1, "broker": broker_id, "block_start": str(block_start),
                  "block_end": str(block_end)})


def decode_producer_id_block(data: bytes) -> tuple[int, int, int]:
    """(broker, block_start, block_end)."""
    value = _parse(data, PRODUCER_ID_BLOCK_PATH)
    try:
        return int(value["broker"]), int(value["block_start"]), int(value["block_end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ZkError(f"{PRODUCER_ID_BLOCK_PATH}: not a producer id block: {data[:200]!r}") from exc


# -- the store ---------------------------------------------------------------------------


_STATES = {KazooState.CONNECTED: "connected", KazooState.SUSPENDED: "suspended",
           KazooState.LOST: "lost"}


def split_connect_string(connect_string: str) -> tuple[str, str]:
    """Hosts and chroot of a `zookeeper.connect` value, as Kafka reads it:
    "h1:2181,h2:2181/kafka" -> ("h1:2181,h2:2181", "/kafka"); chroot "" when none."""
    hosts, slash, chroot = connect_string.partition("/")
    chroot = ("/" + chroot).rstrip("/") if slash else ""
    if not hosts:
        raise ValueError(f"zookeeper.connect {connect_string!r} names no host")
    return hosts, chroot


class ZkStore:
    """One ZooKeeper session holding Kafka's layout. Thread-safe; all methods block.

    `ZkStore(connect_string).connect()` (or `ZkStore.open(connect_string)`); `close()`."""

    def __init__(self, connect_string: str,
                 session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
                 connection_timeout_ms: int | None = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.connect_string = connect_string  # "host:port[,host:port...][/chroot]"
        self.session_timeout_ms = session_timeout_ms
        # Kafka's zookeeper.connection.timeout.ms defaults to the session timeout.
        self.connection_timeout_ms = connection_timeout_ms or session_timeout_ms
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._kazoo: KazooClient | None = None
        self._registration: BrokerRegistration | None = None
        self._registration_session_id = 0
        self._session_listeners: list[Callable[[str], None]] = []
        self._refreshers: list[tuple[Watch, Callable[[], None]]] = []
        self._last_state = "connected"
        self.controller_epoch_version = UNKNOWN_VERSION  # of /controller_epoch, once elected

    # -- session ---------------------------------------------------------------------

    @classmethod
    def open(cls, connect_string: str, **options: Any) -> ZkStore:
        """`ZkStore(connect_string, **options).connect()`."""
        return cls(connect_string, **options).connect()

    def connect(self) -> ZkStore:
        """Open the session and make sure Kafka's top-level paths exist (creating a
        missing chroot first, with no data, as Kafka does). Returns self. Raises
        ZkConnectionError when no server answers within the connection timeout."""
        if self._kazoo is not None:
            raise ZkError(f"already connected to {self.connect_string}")
        hosts, chroot = split_connect_string(self.connect_string)
        if chroot:
            with ZkStore(hosts, self.session_timeout_ms, self.connection_timeout_ms) as root:
                root._kazoo = self._start_client(hosts)
                root._create_recursive(chroot, None, exist_ok=True)
        self._kazoo = self._start_client(hosts + chroot)
        try:
            self._kazoo.add_listener(self._on_state)
            for path in PERSISTENT_PATHS:
                self._create_recursive(path, None, exist_ok=True)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def _client(self) -> KazooClient:
        if self._kazoo is None:
            raise ZkError("ZkStore is not connected: call connect() first")
        return self._kazoo

    def _start_client(self, hosts: str) -> KazooClient:
        session_timeout_s = self.session_timeout_ms / 1000
        connection_timeout_s = self.connection_timeout_ms / 1000
        retry = {"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0}
        client = KazooClient(
            hosts=hosts, timeout=session_timeout_s, connection_retry=retry,
            # An operation retries through connection loss for one session timeout.
            command_retry={**retry, "deadline": session_timeout_s})
        try:
            client.start(timeout=connection_timeout_s)
        except KazooTimeoutError as exc:
            client.stop()
            client.close()
            raise ZkConnectionError(
                f"no ZooKeeper answered at {hosts} within {connection_timeout_s:g} s") from exc
        return client

    def close(self) -> None:
        """End the session: ZooKeeper deletes its ephemeral znodes (registration,
        /controller) at once."""
        self._registration = None
        client, self._kazoo = self._kazoo, None
        if client is not None:
            client.stop()
            client.close()

    def __enter__(self) -> ZkStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def session_id(self) -> int:
        return self._client.client_id[0] if self._client.client_id else 0

    def add_session_listener(self, callback: Callable[[str], None]) -> None:
        """`callback(state)` with "connected", "suspended" (connection lost; the session
        may come back) or "lost" (session expired: ephemerals are gone). Runs on kazoo's
        connection thread: it must return quickly and not call the store. After "lost"
        then "connected", the store registers the broker again by itself; the controller
        must be elected again by the caller. `close()` ends with "lost" too."""
        self._session_listeners.append(callback)

    def _on_state(self, state: str) -> None:
        name = _STATES.get(state, str(state).lower())
        previous, self._last_state = self._last_state, name
        if name == "connected" and previous != "connected" and self._kazoo is not None:
            # Not on this thread: it must not block.
            self._kazoo.handler.spawn(self._after_reconnect, previous == "lost")
        for callback in list(self._session_listeners):
            try:
                callback(name)
            except Exception:
                log.exception("ZooKeeper session listener %r failed", callback)

    def _after_reconnect(self, session_expired: bool) -> None:
        registration = self._registration
        if session_expired and registration is not None:
            # A new session: put back /brokers/ids/<id>, as Kafka's broker does.
            try:
                self.register_broker(registration)
                log.info("registered broker %d again after the ZooKeeper session expired",
                         registration.id)
            except (ZkError, KazooException) as exc:
                log.error("could not register broker %d again: %s", registration.id, exc)
        # kazoo re-arms watches after a reconnect but stays silent when the children or
        # the znode version look as before, which hides a broker that re-registered (or a
        # topic re-created) meanwhile: deliver every watch's value once more.
        for watch, refresh in list(self._refreshers):
            if not watch.cancelled:
                try:
                    refresh()
                except (ZkError, KazooException):
                    log.exception("refreshing the watch on %s after a reconnect failed",
                                  watch.path)

    # -- primitives ------------------------------------------------------------------

    def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return self._client.retry(function, *args, **kwargs)
        except RetryFailedError as exc:
            raise ZkConnectionError(
                f"ZooKeeper at {self.connect_string} unreachable: {exc}") from exc

    def _get(self, path: str) -> tuple[bytes | None, Any] | None:
        """(data, stat), or None when the znode does not exist."""
        try:
            return self._call(self._client.get, path)
        except NoNodeError:
            return None

    def _exists(self, path: str) -> bool:
        return self._call(self._client.exists, path) is not None

    def _children(self, path: str) -> list[str]:
        try:
            return sorted(self._call(self._client.get_children, path))
        except NoNodeError:
            return []

    def _create_recursive(self, path: str, data: bytes | None, exist_ok: bool = False) -> None:
        """KafkaZkClient.createRecursive: missing parents are created with no data (null,
        as Kafka's), not kazoo's empty bytes. NodeExistsError unless `exist_ok`."""
        try:
            self._call(self._client.create, path, data)
            return
        except NodeExistsError:
            if exist_ok:
                return
            raise
        except NoNodeError:
            pass
        parent = path.rsplit("/", 1)[0]
        if parent:
            self._create_recursive(parent, None, exist_ok=True)
        try:
            self._call(self._client.create, path, data)
        except NodeExistsError:
            if not exist_ok:
                raise

    def _delete(self, path: str, recursive: bool = False) -> bool:
        try:
            self._call(self._client.delete, path, recursive=recursive)
            return True
        except NoNodeError:
            return False

    def _commit(self, build: Callable[[Any], None]) -> list[Any]:
        """Run a multi-op transaction, built afresh on each retry (a kazoo transaction
        commits once). Returns kazoo's results: per op a value or an exception."""
        def attempt() -> list[Any]:
            transaction = self._client.transaction()
            build(transaction)
            return transaction.commit()
        return self._call(attempt)

    @staticmethod
    def _failure(results: list[Any]) -> KazooException | None:
        failures = [r for r in results
                    if isinstance(r, Exception) and not isinstance(r, RolledBackError)]
        return failures[0] if failures else None

    def _fenced_write(self, build: Callable[[Any], None],
                      controller_epoch_version: int | None) -> Any:
        """One write, in a transaction behind a check of /controller_epoch's version when
        `controller_epoch_version` is given (Kafka's controller fencing). Returns the
        write's result; raises ControllerMoved, or the write's own failure."""
        if controller_epoch_version is None:
            results = self._commit(build)
        else:
            def fenced(transaction: Any) -> None:
                transaction.check(CONTROLLER_EPOCH_PATH, controller_epoch_version)
                build(transaction)
            results = self._commit(fenced)
            if isinstance(results[0], (BadVersionError, NoNodeError)):
                raise ControllerMoved(
                    f"{CONTROLLER_EPOCH_PATH} is no longer at version {controller_epoch_version}:"
                    " another broker became controller")
        failure = self._failure(results)
        if failure is not None:
            raise failure
        return results[-1]

    # -- cluster id ------------------------------------------------------------------

    def get_or_create_cluster_id(self, new_id: str) -> str:
        """The cluster id in /cluster/id, written as `new_id` if there is none yet."""
        try:
            self._create_recursive(CLUSTER_ID_PATH, encode_cluster_id(new_id))
            return new_id
        except NodeExistsError:
            found = self._get(CLUSTER_ID_PATH)
            if found is None:
                raise ZkError(f"{CLUSTER_ID_PATH} was deleted while being read") from None
            value = _parse(found[0], CLUSTER_ID_PATH)
            if not isinstance(value, dict) or not isinstance(value.get("id"), str):
                raise ZkError(f"{CLUSTER_ID_PATH}: no id in {found[0]!r}") from None
            return value["id"]

    # -- brokers ---------------------------------------------------------------------

    def register_broker(self, registration: BrokerRegistration) -> int:
        """Create the ephemeral /brokers/ids/<id>; returns the broker epoch (the znode's
        creation zxid). Raises BrokerIdInUse when another live session holds it."""
        path = broker_path(registration.id)
        data = encode_broker(registration, self._clock_ms())
        try:
            _, stat = self._call(self._client.create, path, data, ephemeral=True,
                                 include_data=True)
        except NodeExistsError:
            found = self._get(path)
            if found is None:  # it went away in between (its session just ended)
                return self.register_broker(registration)
            stat = found[1]
            if stat.ephemeralOwner == self._registration_session_id != self.session_id:
                # Our own from an expired session that ZooKeeper has not removed yet
                # (ZOOKEEPER-2985; Kafka's CheckedEphemeral deletes and creates it again).
                self._delete(path)
                return self.register_broker(registration)
            if stat.ephemeralOwner != self.session_id:
                raise BrokerIdInUse(
                    f"Error while creating ephemeral at {path}, node already exists and owner "
                    f"'0x{stat.ephemeralOwner:x}' does not match current session "
                    f"'0x{self.session_id:x}': broker id {registration.id} is registered by "
                    "another running broker") from None
            # Ours already (a retried create that had gone through): bring its data up to date.
            stat = self._call(self._client.set, path, data)
        self._registration = registration
        self._registration_session_id = self.session_id
        return stat.czxid

    def brokers(self) -> dict[int, BrokerRegistration]:
        """Live brokers by id."""
        brokers = {}
        for child in self._children(BROKER_IDS_PATH):
            found = self._get(f"{BROKER_IDS_PATH}/{child}")
            if found is not None and child.isdigit():
                brokers[int(child)] = decode_broker(int(child), found[0], found[1].czxid)
        return dict(sorted(brokers.items()))

    def watch_brokers(self, callback: Callable[[dict[int, BrokerRegistration]], None]) -> Watch:
        """`callback(brokers)` now and whenever a broker registers or goes away."""
        return self._watch_children(BROKER_IDS_PATH, lambda _children: callback(self.brokers()))

    # -- controller ------------------------------------------------------------------

    def try_become_controller(self, broker_id: int) -> int | None:
        """Create the ephemeral /controller and increment /controller_epoch in one
        transaction (KafkaZkClient.registerControllerAndIncrementControllerEpoch).
        Returns the new controller epoch, or None when another broker is controller.
        On success `controller_epoch_version` holds the /controller_epoch znode version
        that fences this controller's writes."""
        epoch, epoch_version = self._controller_epoch_or_create()
        new_epoch = epoch + 1

        def build(transaction: Any) -> None:
            transaction.create(CONTROLLER_PATH, encode_controller(broker_id, self._clock_ms()),
                               ephemeral=True)
            transaction.set_data(CONTROLLER_EPOCH_PATH, str(new_epoch).encode(), epoch_version)

        results = self._commit(build)
        failure = self._failure(results)
        if failure is None:
            self.controller_epoch_version = results[1].version
            return new_epoch
        if not isinstance(failure, (NodeExistsError, BadVersionError)):
            raise failure
        # Our own attempt may have gone through before a connection loss made it retry.
        if self.controller_id() == broker_id:
            found = self._get(CONTROLLER_EPOCH_PATH)
            if found is not None and int(found[0]) == new_epoch:
                self.controller_epoch_version = found[1].version
                return new_epoch
        return None

    def _controller_epoch_or_create(self) -> tuple[int, int]:
        found = self._get(CONTROLLER_EPOCH_PATH)
        if found is None:
            try:
                self._call(self._client.create, CONTROLLER_EPOCH_PATH,
                           str(INITIAL_CONTROLLER_EPOCH).encode())
                return INITIAL_CONTROLLER_EPOCH, 0
            except NodeExistsError:
                found = self._get(CONTROLLER_EPOCH_PATH)
                if found is None:
                    raise ZkError(f"{CONTROLLER_EPOCH_PATH} went away while being read") from None
        return int(found[0]), found[1].version

    def controller_id(self) -> int | None:
        found = self._get(CONTROLLER_PATH)
        return None if found is None else decode_controller(found[0])

    def controller_epoch(self) -> int | None:
        found = self._get(CONTROLLER_EPOCH_PATH)
        return None if found is None else int(found[0])

    def watch_controller(self, callback: Callable[[int | None], None]) -> Watch:
        """`callback(controller id or None)` now and whenever /controller changes."""
        return self._watch_data(CONTROLLER_PATH, lambda data, stat: callback(
            None if stat is None else decode_controller(data)))

    # -- topics ----------------------------------------------------------------------

    def create_topic(self, name: str, topic_id: uuid.UUID | None,
                     assignment: dict[int, list[int]], configs: dict[str, str]) -> None:
        """Write /config/topics/<name>, then /brokers/topics/<name> (AdminZkClient
        .createTopicWithAssignment). Raises TopicExists, also while it is marked for
        deletion. Validating the assignment is the caller's job."""
        if self._exists(delete_topic_path(name)):
            raise TopicExists(f"Topic '{name}' is marked for deletion.")
        if self._exists(topic_path(name)):
            raise TopicExists(f"Topic '{name}' already exists.")
        self.set_topic_configs(name, configs)
        try:
            self._create_recursive(topic_path(name), encode_topic_assignment(
                TopicAssignment(topic_id, dict(assignment))))
        except NodeExistsError:
            raise TopicExists(f"Topic '{name}' already exists.") from None

    def topics(self) -> list[str]:
        return self._children(TOPICS_PATH)

    def topic_assignment(self, name: str) -> TopicAssignment | None:
        """The topic's assignment with its znode version, or None when there is no topic."""
        found = self._get(topic_path(name))
        return None if found is None else decode_topic_assignment(name, found[0], found[1].version)

    def set_topic_assignment(self, name: str,
                             assignment: TopicAssignment | dict[int, list[int]],
                             expected_version: int,
                             controller_epoch_version: int | None = None) -> TopicAssignment:
        """Compare-and-set /brokers/topics/<name> (new partitions, reassignments); returns
        it with its new version. Given only replicas by partition, the topic id and the
        adding/removing replicas of the partitions kept stay as they are. StaleVersion
        on a version mismatch, UnknownTopic when it does not exist, ControllerMoved
        when fenced."""
        _check_version(expected_version)
        if not isinstance(assignment, TopicAssignment):
            current = self.topic_assignment(name)
            if current is None:
                raise UnknownTopic(f"Topic '{name}' does not exist")
            assignment = TopicAssignment(
                current.topic_id, dict(assignment),
                {p: r for p, r in current.adding.items() if p in assignment},
                {p: r for p, r in current.removing.items() if p in assignment})
        stat = self._set_versioned(topic_path(name), encode_topic_assignment(assignment),
                                   expected_version, controller_epoch_version,
                                   UnknownTopic(f"Topic '{name}' does not exist"))
        return TopicAssignment(assignment.topic_id, dict(assignment.partitions),
                               dict(assignment.adding), dict(assignment.removing), stat.version)

    def topic_configs(self, name: str) -> dict[str, str]:
        """The topic's config overrides ({} when none)."""
        found = self._get(topic_config_path(name))
        return {} if found is None else decode_config(found[0])

    def set_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        """Replace the topic's overrides (KafkaZkClient.setOrCreateEntityConfigs)."""
        path = topic_config_path(name)
        data = encode_config(configs)
        try:
            self._call(self._client.set, path, data)
        except NoNodeError:
            try:
                self._create_recursive(path, data)
            except NodeExistsError:
                self._call(self._client.set, path, data)

    def watch_topics(self, callback: Callable[[list[str]], None]) -> Watch:
        """`callback(sorted topic names)` now and whenever a topic is created or deleted."""
        return self._watch_children(TOPICS_PATH, lambda children: callback(sorted(children)))

    def watch_topic(self, name: str,
                    callback: Callable[[TopicAssignment | None], None]) -> Watch:
        """`callback(assignment or None)` now and whenever /brokers/topics/<name> changes."""
        return self._watch_data(topic_path(name), lambda data, stat: callback(
            None if stat is None else decode_topic_assignment(name, data, stat.version)))

    def watch_topic_configs(self, name: str, callback: Callable[[dict[str, str]], None]) -> Watch:
        """`callback(overrides)` now and whenever /config/topics/<name> changes."""
        return self._watch_data(topic_config_path(name),
                                lambda data, stat: callback(decode_config(data)))

    # -- partition states ------------------------------------------------------------

    def create_partition_state(self, topic: str, partition: int, state: PartitionState,
                               controller_epoch_version: int | None = None) -> PartitionState:
        """Create .../partitions/<p>/state (and its parents, with no data, as Kafka);
        returns it at version 0. StaleVersion when it exists already, UnknownTopic
        without /brokers/topics/<topic>, ControllerMoved when fenced."""
        if not self._exists(topic_path(topic)):
            raise UnknownTopic(f"Topic '{topic}' does not exist")
        self._create_recursive(f"{partitions_path(topic)}/{partition}", None, exist_ok=True)
        path = partition_state_path(topic, partition)
        data = encode_partition_state(state)
        try:
            self._fenced_write(lambda t: t.create(path, data), controller_epoch_version)
        except NodeExistsError:
            raise StaleVersion(f"{path} exists already") from None
        except NoNodeError:
            raise UnknownTopic(f"Topic '{topic}' was deleted meanwhile") from None
        return _with_version(state, 0)

    def partition_state(self, topic: str, partition: int) -> PartitionState | None:
        path = partition_state_path(topic, partition)
        found = self._get(path)
        return None if found is None else decode_partition_state(path, found[0], found[1].version)

    def update_partition_state(self, topic: str, partition: int, state: PartitionState,
                               expected_version: int,
                               controller_epoch_version: int | None = None) -> PartitionState:
        """Compare-and-set the state znode; returns `state` with its new version.
        StaleVersion when it changed since `expected_version` was read, NoSuchZnode when
        there is none, ControllerMoved when fenced."""
        _check_version(expected_version)
        path = partition_state_path(topic, partition)
        stat = self._set_versioned(path, encode_partition_state(state), expected_version,
                                   controller_epoch_version,
                                   NoSuchZnode(f"{path} does not exist"))
        return _with_version(state, stat.version)

    def _set_versioned(self, path: str, data: bytes, expected_version: int,
                       controller_epoch_version: int | None, missing: ZkError) -> Any:
        """A compare-and-set of `path` (fenced by the controller epoch when given): its
        new stat; StaleVersion on a version mismatch, `missing` when there is no znode."""
        try:
            return self._fenced_write(
                lambda t: t.set_data(path, data, expected_version), controller_epoch_version)
        except BadVersionError:
            raise StaleVersion(f"{path} is no longer at version {expected_version}") from None
        except NoNodeError:
            raise missing from None

    def watch_partition_state(self, topic: str, partition: int,
                              callback: Callable[[PartitionState | None], None]) -> Watch:
        """`callback(state or None)` now and whenever the state znode changes."""
        path = partition_state_path(topic, partition)
        return self._watch_data(path, lambda data, stat: callback(
            None if stat is None else decode_partition_state(path, data, stat.version)))

    # -- topic deletion --------------------------------------------------------------

    def request_topic_deletion(self, name: str) -> None:
        """Create /admin/delete_topics/<name> for the controller (AdminZkClient
        .deleteTopic). UnknownTopic, or TopicAlreadyMarkedForDeletion."""
        if not self._exists(topic_path(name)):
            raise UnknownTopic(f"Topic '{name}' does not exist")
        try:
            self._create_recursive(delete_topic_path(name), None)
        except NodeExistsError:
            raise TopicAlreadyMarkedForDeletion(
                f"topic {name} is already marked for deletion") from None

    def pending_deletions(self) -> list[str]:
        return self._children(DELETE_TOPICS_PATH)

    def delete_topic_znodes(self, name: str) -> None:
        """What the controller does when a deletion completes (TopicDeletionManager):
        /brokers/topics/<name> recursively, /config/topics/<name>, then the request in
        /admin/delete_topics. Missing znodes are fine."""
        self._delete(topic_path(name), recursive=True)
        self._delete(topic_config_path(name))
        self._delete(delete_topic_path(name))

    def watch_deletions(self, callback: Callable[[list[str]], None]) -> Watch:
        """`callback(topics marked for deletion)` now and whenever that changes."""
        return self._watch_children(DELETE_TOPICS_PATH, lambda children: callback(sorted(children)))

    # -- partition reassignment (/admin/reassign_partitions) -------------------------

    def partition_reassignment(self) -> dict[tuple[str, int], list[int]]:
        """The requested reassignment: target replicas by (topic, partition); {} if none
        (or unreadable: KafkaZkClient.getPartitionReassignment ignores it with a warning)."""
        found = self._get(REASSIGN_PARTITIONS_PATH)
        return {} if found is None else _readable_request(decode_reassignment, found[0], {})

    def create_partition_reassignment(self, reassignment: dict[tuple[str, int], list[int]]) -> None:
        """ReassignmentInProgress when one is there already."""
        try:
            self._create_recursive(REASSIGN_PARTITIONS_PATH, encode_reassignment(reassignment))
        except NodeExistsError:
            raise ReassignmentInProgress("a partition reassignment is in progress") from None

    def set_partition_reassignment(self, reassignment: dict[tuple[str, int], list[int]]) -> None:
        """Replace or create it (KafkaZkClient.setOrCreatePartitionReassignment)."""
        data = encode_reassignment(reassignment)
        try:
            self._call(self._client.set, REASSIGN_PARTITIONS_PATH, data)
        except NoNodeError:
            self._create_recursive(REASSIGN_PARTITIONS_PATH, data, exist_ok=False)

    def delete_partition_reassignment(self) -> None:
        self._delete(REASSIGN_PARTITIONS_PATH)

    def watch_partition_reassignment(
            self, callback: Callable[[dict[tuple[str, int], list[int]] | None], None]) -> Watch:
        """`callback(reassignment or None)` now and whenever the znode changes."""
        return self._watch_data(REASSIGN_PARTITIONS_PATH, lambda data, stat: callback(
            None if stat is None else _readable_request(decode_reassignment, data, {})))

    # -- preferred replica election (/admin/preferred_replica_election) ---------------

    def preferred_replica_election(self) -> set[tuple[str, int]] | None:
        """The partitions a pending request wants led by their preferred replica (none
        when unreadable, as Kafka decodes it); None when there is no request."""
        found = self._get(PREFERRED_REPLICA_ELECTION_PATH)
        return None if found is None else _readable_request(
            decode_preferred_replica_election, found[0], set())

    def create_preferred_replica_election(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Ask the controller for preferred replica elections (AdminZkClient); the
        controller deletes the znode when done. ElectionInProgress while one is pending."""
        try:
            self._create_recursive(PREFERRED_REPLICA_ELECTION_PATH,
                                   encode_preferred_replica_election(partitions))
        except NodeExistsError:
            raise ElectionInProgress("a preferred replica leader election is in progress") \
                from None

    def delete_preferred_replica_election(self) -> None:
        self._delete(PREFERRED_REPLICA_ELECTION_PATH)

    def watch_preferred_replica_election(
            self, callback: Callable[[set[tuple[str, int]] | None], None]) -> Watch:
        """`callback(partitions or None)` now and whenever the znode changes."""
        return self._watch_data(PREFERRED_REPLICA_ELECTION_PATH, lambda data, stat: callback(
            None if stat is None else _readable_request(
                decode_preferred_replica_election, data, set())))

    # -- producer ids ----------------------------------------------------------------

    def allocate_producer_id_block(self, broker_id: int,
                                   block_size: int = PRODUCER_ID_BLOCK_SIZE) -> tuple[int, int]:
        """Claim the next block of producer ids: (first, last), both inclusive
        (ZkProducerIdManager.getNewProducerIdBlock: compare-and-set, retried)."""
        while True:
            found = self._get(PRODUCER_ID_BLOCK_PATH)
            if found is None:
                self._create_recursive(PRODUCER_ID_BLOCK_PATH, None, exist_ok=True)
                continue
            data, stat = found
            if data:
                _, _, last = decode_producer_id_block(data)
                if last > MAX_INT64 - block_size:
                    raise ZkError("Have exhausted all producerIds.")
                first = last + 1
            else:
                first = 0
            end = first + block_size - 1
            try:
                self._call(self._client.set, PRODUCER_ID_BLOCK_PATH,
                           encode_producer_id_block(broker_id, first, end), stat.version)
                return first, end
            except BadVersionError:
                continue  # another broker took a block meanwhile: read again

    # -- watches ---------------------------------------------------------------------

    def _watch_data(self, path: str, deliver: Callable[[bytes | None, Any], None]) -> Watch:
        watch = Watch(path)
        lock = threading.Lock()  # one delivery at a time, kazoo's or a refresh

        def on_data(data: bytes | None, stat: Any, event: Any = None) -> bool | None:
            if watch.cancelled:
                return False  # kazoo stops this DataWatch
            with lock:
                _deliver_safely(path, deliver, data, stat)
            return None

        def refresh() -> None:
            with lock:
                found = self._get(path)
                _deliver_safely(path, deliver, *(found or (None, None)))

        self._client.DataWatch(path, on_data)
        self._refreshers.append((watch, refresh))
        return watch

    def _watch_children(self, path: str, deliver: Callable[[list[str]], None]) -> Watch:
        watch = Watch(path)
        lock = threading.Lock()

        def on_children(children: list[str]) -> bool | None:
            if watch.cancelled:
                return False
            with lock:
                _deliver_safely(path, deliver, children)
            return None

        def refresh() -> None:
            with lock:
                _deliver_safely(path, deliver, self._children(path))

        # The parent exists (PERSISTENT_PATHS): kazoo's ChildrenWatch ends if it does not.
        self._create_recursive(path, None, exist_ok=True)
        self._client.ChildrenWatch(path, on_children)
        self._refreshers.append((watch, refresh))
        return watch


def _deliver_safely(path: str, deliver: Callable[..., None], *args: Any) -> None:
    try:
        deliver(*args)
    except Exception:
        # A bad znode or a failing callback must not end the watch.
        log.exception("watch on %s failed", path)


def _readable_request(decode: Callable[[bytes | None], Any], data: bytes | None,
                      unreadable: Any) -> Any:
    """An /admin request a tool wrote, decoded; `unreadable` (with a warning) when it is
    not Kafka's JSON, so that a bad request neither stops the controller nor hides the
    watch event that lets it remove the request."""
    try:
        return decode(data)
    except ZkError as exc:
        log.warning("ignoring an unreadable request: %s", exc)
        return unreadable


def _check_version(expected_version: int) -> None:
    # ZooKeeper reads -1 as "any version": that would silently skip the compare.
    if expected_version < 0:
        raise ValueError(f"expected_version must be a znode version read, not {expected_version}")


def _with_version(state: PartitionState, version: int) -> PartitionState:
    return PartitionState(state.leader, state.leader_epoch, list(state.isr),
                          state.controller_epoch, state.leader_recovery_state, version)
