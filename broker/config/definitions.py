"""Every Kafka broker and topic config name Gregor knows: type, default, validator, doc.

Names, types, defaults and validators follow Apache Kafka 4.0 (read from Kafka's
ServerConfigs, ServerLogConfigs, KRaftConfigs, ReplicationConfigs, GroupCoordinatorConfig,
TransactionLogConfig, SocketServerConfigs, QuotaConfig, LogConfig, CleanerConfig,
RemoteLogManagerConfig, BrokerSecurityConfigs and DynamicBrokerConfig; KIP-1030 for the
4.0 default changes). Names Kafka 4.0 removed (the ZooKeeper-era ones) are kept, marked
`legacy`, so an existing server.properties still starts. The docs are Gregor's own one-liners.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from decimal import Decimal
from typing import Iterable


class ConfigError(Exception):
    """A config key or value Gregor refuses; the message names the key."""


class NotDynamicError(ConfigError):
    """A key Kafka does not change while the broker runs (AlterConfigs answers
    INVALID_REQUEST for it, not INVALID_CONFIG)."""


class ConfigType(IntEnum):
    """DescribeConfigs' ConfigType (DescribeConfigsResponse.json, v3+)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


BOOLEAN = ConfigType.BOOLEAN
STRING = ConfigType.STRING
INT = ConfigType.INT
SHORT = ConfigType.SHORT
LONG = ConfigType.LONG
DOUBLE = ConfigType.DOUBLE
LIST = ConfigType.LIST
CLASS = ConfigType.CLASS
PASSWORD = ConfigType.PASSWORD

INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
DOUBLE_MAX = 1.7976931348623157e308
_TYPE_RANGES = {SHORT: (-(2**15), 2**15 - 1), INT: (-(2**31), INT_MAX), LONG: (-(2**63), LONG_MAX)}

Value = bool | int | float | str | list | None


# -- parsing and rendering, as Kafka's ConfigDef.parseType / convertToString -----------------

def parse_value(name: str, config_type: ConfigType, raw: str) -> Value:
    """Parses a string as Kafka does (trimmed first); ConfigError names the key and value."""
    text = raw.strip()
    if config_type is BOOLEAN:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ConfigError(f"{name}: invalid value {raw!r}: expected true or false")
    if config_type in _TYPE_RANGES:
        low, high = _TYPE_RANGES[config_type]
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ConfigError(f"{name}: invalid value {raw!r}: not a number of type "
                              f"{config_type.name}")
        number = int(text)
        if not low <= number <= high:
            raise ConfigError(f"{name}: invalid value {raw!r}: out of range for type "
                              f"{config_type.name} ({low}..{high})")
        return number
    if config_type is DOUBLE:
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?", text):
            raise ConfigError(f"{name}: invalid value {raw!r}: not a number of type DOUBLE")
        return float(text.rstrip("dDfF"))
    if config_type is LIST:
        return [] if text == "" else re.split(r"\s*,\s*", text)
    return text  # STRING, CLASS, PASSWORD


def render_value(config_type: ConfigType, value: Value) -> str | None:
    """The string Kafka shows for a parsed value (null stays None)."""
    if value is None:
        return None
    if config_type is BOOLEAN:
        return "true" if value else "false"
    if config_type is LIST:
        return ",".join(value)
    if config_type is DOUBLE:
        return java_double_string(value)
    return str(value)


def java_double_string(number: float) -> str:
    """Java's Double.toString: plain between 1e-3 and 1e7, else d.dddE<n>."""
    if number == 0:
        return "0.0"
    if 1e-3 <= abs(number) < 1e7:
        return repr(float(number))
    sign, digits, exponent = Decimal(repr(float(number))).normalize().as_tuple()
    text = "".join(map(str, digits))
    mantissa = text[0] + "." + (text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{len(digits) - 1 + exponent}"


# -- validators ------------------------------------------------------------------------------

class Validator(ABC):
    """Checks a parsed value; returns a reason it is bad, or None."""

    @abstractmethod
    def check(self, value: Value) -> str | None:
        """The reason `value` is refused, or None."""

    @abstractmethod
    def describe(self) -> str:
        """The valid values, as docs/configuration.md shows them."""


@dataclass(frozen=True)
class AtLeast(Validator):
    minimum: float

    def check(self, value):
        if value is not None and value < self.minimum:
            return f"must be at least {_number(self.minimum)}"
        return None

    def describe(self):
        return f"[{_number(self.minimum)},...]"


@dataclass(frozen=True)
class Between(Validator):
    minimum: float
    maximum: float

    def check(self, value):
        if value is not None and not self.minimum <= value <= self.maximum:
            return f"must be between {_number(self.minimum)} and {_number(self.maximum)}"
        return None

    def describe(self):
        return f"[{_number(self.minimum)},...,{_number(self.maximum)}]"


@dataclass(frozen=True)
class BetweenOr(Validator):
    """Kafka's gzip level: a range, or one special value."""

    minimum: int
    maximum: int
    special: int

    def check(self, value):
        if value is not None and value != self.special and not (
                self.minimum <= value <= self.maximum):
            return (f"must be between {self.minimum} and {self.maximum} "
                    f"or equal to {self.special}")
        return None

    def describe(self):
        return f"[{self.minimum},...,{self.maximum}] or {self.special}"


@dataclass(frozen=True)
class OneOf(Validator):
    choices: tuple[str, ...]
    case_insensitive: bool = False

    def check(self, value):
        if value is None:
            return None
        candidates = ([choice.lower() for choice in self.choices] if self.case_insensitive
                      else self.choices)
        if (value.lower() if self.case_insensitive else value) not in candidates:
            return f"must be one of: {', '.join(self.choices)}"
        return None

    def describe(self):
        return "[" + ", ".join(self.choices) + "]"


@dataclass(frozen=True)
class ListOf(Validator):
    choices: tuple[str, ...]

    def check(self, value):
        for item in value or ():
            if item not in self.choices:
                return f"each item must be one of: {', '.join(self.choices)} (got {item!r})"
        return None

    def describe(self):
        return "[" + ", ".join(self.choices) + "]"


@dataclass(frozen=True)
class NonEmpty(Validator):
    def check(self, value):
        if value is not None and value.strip() == "":
            return "must not be empty"
        return None

    def describe(self):
        return "non-empty string"


@dataclass(frozen=True)
class EmptyOnly(Validator):
    """A Kafka feature Gregor does not have: only its off value (empty) is accepted, so a
    file that turns it on fails to start rather than runs without it."""

    missing: str

    def check(self, value):
        if value not in (None, ""):
            return f"Gregor has no {self.missing}; leave it empty"
        return None

    def describe(self):
        return f"empty (Gregor has no {self.missing})"


@dataclass(frozen=True)
class Matches(Validator):
    """Each list item (or the string) matches a pattern; `what` names the expected form."""

    pattern: str
    what: str

    def check(self, value):
        items = value if isinstance(value, list) else ([] if value is None else [value])
        for item in items:
            if not re.fullmatch(self.pattern, item):
                return f"expected {self.what} (got {item!r})"
        return None

    def describe(self):
        return self.what


def _number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


_HOST_PORT = r"(\[[0-9a-fA-F:.]+\]|[^\s:@,\[\]]*):[0-9]+"
_LISTENER = rf"[A-Za-z0-9_]+://{_HOST_PORT}"
LISTENER_LIST = Matches(rf"|{_LISTENER}(\s*,\s*{_LISTENER})*",
                        "a comma-separated list of NAME://HOST:PORT")
PROTOCOL_MAP = Matches(r"|[A-Za-z0-9_]+:[A-Za-z0-9_]+(\s*,\s*[A-Za-z0-9_]+:[A-Za-z0-9_]+)*",
                       "a comma-separated list of LISTENER_NAME:SECURITY_PROTOCOL")
VOTERS = Matches(rf"[0-9]+@{_HOST_PORT}", "ID@HOST:PORT entries")
HOST_PORTS = Matches(_HOST_PORT, "HOST:PORT entries")
THROTTLED_REPLICAS = Matches(r"\*|[0-9]+:[0-9]+", "'*' or PARTITION:BROKER_ID entries")
METADATA_VERSION = Matches(r"[0-9]+\.[0-9]+(\.[0-9]+)?(-IV[0-9]+)?",
                           "a Kafka version such as 3.0 or 3.0-IV1")
HOST_PORT_OR_EMPTY = Matches(rf"|{_HOST_PORT}", "HOST:PORT, or empty to turn it off")
COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
GZIP_LEVEL = BetweenOr(1, 9, -1)
LZ4_LEVEL = Between(1, 17)
ZSTD_LEVEL = Between(-131072, 22)
TIMESTAMP_TYPES = OneOf(("CreateTime", "LogAppendTime"))
CLEANUP_POLICIES = ListOf(("compact", "delete"))
SECURITY_PROTOCOLS = OneOf(("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))


# -- the tables ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BrokerConfigDef:
    name: str
    config_type: ConfigType
    default: Value
    validator: Validator | None
    doc: str
    honoured: bool = False   # Gregor acts on it; else accepted with no effect
    dynamic: bool = False    # alterable per broker at runtime (Kafka's DynamicBrokerConfig)
    legacy: bool = False     # removed by Kafka 4.0 (ZooKeeper era); still accepted
    internal: bool = False   # Kafka's defineInternal: accepted, not listed by DescribeConfigs

    @property
    def sensitive(self) -> bool:
        return self.config_type is PASSWORD

    def parse(self, raw: str) -> Value:
        value = parse_value(self.name, self.config_type, raw)
        if self.validator is not None and (reason := self.validator.check(value)):
            raise ConfigError(f"{self.name}: invalid value {raw!r}: {reason}")
        return value


@dataclass(frozen=True)
class TopicConfigDef:
    name: str
    config_type: ConfigType
    default: Value
    validator: Validator | None
    doc: str
    broker_synonyms: tuple[str, ...]  # broker configs it defaults from, in precedence order
    honoured: bool = False
    legacy: bool = False

    @property
    def sensitive(self) -> bool:
        return self.config_type is PASSWORD

    def parse(self, raw: str) -> Value:
        value = parse_value(self.name, self.config_type, raw)
        if self.validator is not None and (reason := self.validator.check(value)):
            raise ConfigError(f"{self.name}: invalid value {raw!r}: {reason}")
        return value


def _b(name, config_type, default, validator=None, doc="", **flags) -> BrokerConfigDef:
    return BrokerConfigDef(name, config_type, default, validator, doc, **flags)


H = {"honoured": True}
D = {"dynamic": True}
HD = {"honoured": True, "dynamic": True}
L = {"legacy": True}
I = {"internal": True}

_BROKER_DEFS = [
    # Gregor-specific
    _b("metrics.listen", STRING, "", HOST_PORT_OR_EMPTY,
       "Gregor: HOST:PORT of the Prometheus /metrics endpoint; empty turns it off.", **H),

    # identity and cluster
    _b("node.id", INT, -1, None,
       "This broker's id; broker.id is its synonym. Gregor needs one of them set.", **H),
    _b("broker.id", INT, -1, None, "Old name of node.id; the two must agree if both are set.",
       **H),
    _b("broker.id.generation.enable", BOOLEAN, True, None,
       "ZooKeeper mode: let ZooKeeper generate the broker id.", **L),
    _b("reserved.broker.max.id", INT, 1000, AtLeast(0),
       "ZooKeeper mode: highest id usable as a configured broker.id.", **L),
    _b("broker.rack", STRING, None, None,
       "Rack of this broker, reported in Metadata responses.", **H),
    _b("cluster.id", STRING, None, NonEmpty(),
       "Gregor: expected cluster id; checked against meta.properties (set there on first "
       "start when given).", **H),
    _b("process.roles", LIST, [], ListOf(("broker", "controller")),
       "KRaft roles of this process; Gregor is always a broker.", ),
    _b("zookeeper.connect", STRING, None, None,
       "ZooKeeper connection string (host:port[,host:port...][/chroot]); set, Gregor keeps "
       "cluster metadata in ZooKeeper.", **H),
    _b("zookeeper.session.timeout.ms", INT, 18000, None, "ZooKeeper session timeout.", **L, **H),
    _b("zookeeper.connection.timeout.ms", INT, None, None,
       "Time to wait for a ZooKeeper connection; defaults to the session timeout.", **L, **H),
    _b("zookeeper.set.acl", BOOLEAN, False, None, "Use secure ZooKeeper ACLs.", **L),
    _b("zookeeper.max.in.flight.requests", INT, 10, AtLeast(1),
       "Most unacknowledged ZooKeeper requests before blocking.", **L),
    _b("zookeeper.ssl.client.enable", BOOLEAN, False, None, "Use TLS to ZooKeeper.", **L),
    _b("zookeeper.clientCnxnSocket", STRING, None, None,
       "ZooKeeper client socket class (for TLS).", **L),
    _b("zookeeper.ssl.keystore.location", STRING, None, None,
       "Keystore file for TLS to ZooKeeper.", **L),
    _b("zookeeper.ssl.keystore.password", PASSWORD, None, None,
       "Keystore password for TLS to ZooKeeper.", **L),
    _b("zookeeper.ssl.keystore.type", STRING, None, None,
       "Keystore type for TLS to ZooKeeper.", **L),
    _b("zookeeper.ssl.truststore.location", STRING, None, None,
       "Truststore file for TLS to ZooKeeper.", **L),
    _b("zookeeper.ssl.truststore.password", PASSWORD, None, None,
       "Truststore password for TLS to ZooKeeper.", **L),
    _b("zookeeper.ssl.truststore.type", STRING, None, None,
       "Truststore type for TLS to ZooKeeper.", **L),
    _b("zookeeper.ssl.protocol", STRING, "TLSv1.2", None, "TLS protocol to ZooKeeper.", **L),
    _b("zookeeper.ssl.enabled.protocols", LIST, None, None,
       "TLS protocols enabled to ZooKeeper.", **L),
    _b("zookeeper.ssl.cipher.suites", LIST, None, None,
       "TLS cipher suites enabled to ZooKeeper.", **L),
    _b("zookeeper.ssl.endpoint.identification.algorithm", STRING, "HTTPS", None,
       "Host name verification for TLS to ZooKeeper.", **L),
    _b("zookeeper.ssl.crl.enable", BOOLEAN, False, None,
       "Check certificate revocation lists for ZooKeeper TLS.", **L),
    _b("zookeeper.ssl.ocsp.enable", BOOLEAN, False, None,
       "Use OCSP for ZooKeeper TLS.", **L),
    _b("zookeeper.metadata.migration.enable", BOOLEAN, False, None,
       "Kafka 3.x ZooKeeper-to-KRaft migration switch.", **L),
    _b("zookeeper.metadata.migration.min.batch.size", INT, 200, AtLeast(1),
       "Batch size of the ZooKeeper-to-KRaft migration.", **L, **I),
    _b("control.plane.listener.name", STRING, None, None,
       "ZooKeeper mode: listener for controller-to-broker traffic.", **L),
    _b("inter.broker.protocol.version", STRING, "3.9-IV0", METADATA_VERSION,
       "ZooKeeper mode: inter-broker protocol version.", **L),
    _b("controlled.shutdown.max.retries", INT, 3, None,
       "ZooKeeper mode: controlled shutdown retries.", **L),
    _b("controlled.shutdown.retry.backoff.ms", LONG, 5000, None,
       "ZooKeeper mode: wait between controlled shutdown retries.", **L),
    _b("controlled.shutdown.enable", BOOLEAN, True, None,
       "Move leadership away before this broker shuts down.", **H),
    _b("controller.socket.timeout.ms", INT, 30000, None,
       "Socket timeout of controller-to-broker channels."),
    _b("host.name", STRING, "", None, "Kafka 2.x listener host; use listeners.", **L),
    _b("port", INT, 9092, None, "Kafka 2.x listener port; use listeners.", **L),
    _b("advertised.host.name", STRING, None, None,
       "Kafka 2.x advertised host; use advertised.listeners.", **L),
    _b("advertised.port", INT, None, None,
       "Kafka 2.x advertised port; use advertised.listeners.", **L),
    _b("offsets.commit.required.acks", SHORT, -1, None,
       "Kafka 3.x acks for offset commits.", **L),
    _b("quota.producer.default", LONG, LONG_MAX, AtLeast(1),
       "Kafka 2.x default producer quota (bytes/s).", **L),
    _b("quota.consumer.default", LONG, LONG_MAX, AtLeast(1),
       "Kafka 2.x default consumer quota (bytes/s).", **L),
    _b("delegation.token.master.key", PASSWORD, None, None,
       "Old name of delegation.token.secret.key.", **L),
    _b("password.encoder.secret", PASSWORD, None, None,
       "Secret that encodes dynamically set passwords.", **L),
    _b("password.encoder.old.secret", PASSWORD, None, None,
       "Previous password encoder secret, for rotation.", **L),
    _b("password.encoder.keyfactory.algorithm", STRING, None, None,
       "Key factory algorithm of the password encoder.", **L),
    _b("password.encoder.cipher.algorithm", STRING, "AES/CBC/PKCS5Padding", None,
       "Cipher of the password encoder.", **L),
    _b("password.encoder.key.length", INT, 128, AtLeast(8),
       "Key length of the password encoder.", **L),
    _b("password.encoder.iterations", INT, 4096, AtLeast(1024),
       "Iterations of the password encoder.", **L),

    # KRaft (accepted so KRaft server.properties start; Gregor has no controller quorum)
    _b("controller.listener.names", STRING, None, None,
       "Listener names used by the KRaft controller; Gregor does not listen on them."),
    _b("controller.quorum.voters", LIST, [], VOTERS, "KRaft controller voters (id@host:port)."),
    _b("controller.quorum.bootstrap.servers", LIST, [], HOST_PORTS,
       "KRaft controllers to bootstrap from."),
    _b("controller.quorum.election.timeout.ms", INT, 1000, None, "KRaft election timeout."),
    _b("controller.quorum.fetch.timeout.ms", INT, 2000, None, "KRaft fetch timeout."),
    _b("controller.quorum.election.backoff.max.ms", INT, 1000, None,
       "KRaft election backoff ceiling."),
    _b("controller.quorum.append.linger.ms", INT, 25, None, "KRaft append linger."),
    _b("controller.quorum.request.timeout.ms", INT, 2000, None, "KRaft request timeout."),
    _b("controller.quorum.retry.backoff.ms", INT, 20, None, "KRaft retry backoff."),
    _b("initial.broker.registration.timeout.ms", INT, 60000, None,
       "KRaft: time to register with the controllers before giving up."),
    _b("broker.heartbeat.interval.ms", INT, 2000, None, "KRaft broker heartbeat interval."),
    _b("broker.session.timeout.ms", INT, 9000, None, "KRaft broker lease length."),
    _b("sasl.mechanism.controller.protocol", STRING, "GSSAPI", None,
       "SASL mechanism towards the controllers."),
    _b("metadata.log.dir", STRING, None, None, "Directory of the KRaft metadata log."),
    _b("metadata.log.segment.bytes", INT, 1073741824, AtLeast(12),
       "Segment size of the KRaft metadata log."),
    _b("metadata.log.segment.min.bytes", INT, 8388608, AtLeast(12),
       "Smallest metadata log segment size.", **I),
    _b("metadata.log.segment.ms", LONG, 604800000, None, "Roll time of metadata log segments."),
    _b("metadata.max.retention.bytes", LONG, 104857600, None,
       "Size kept of the metadata log and snapshots."),
    _b("metadata.max.retention.ms", LONG, 604800000, None,
       "Time kept of metadata log files and snapshots."),
    _b("metadata.max.idle.interval.ms", INT, 500, AtLeast(0),
       "How often the active controller writes no-op records."),
    _b("metadata.log.max.record.bytes.between.snapshots", LONG, 20971520, AtLeast(1),
       "Metadata bytes between snapshots."),
    _b("metadata.log.max.snapshot.interval.ms", LONG, 3600000, AtLeast(0),
       "Longest time between metadata snapshots."),
    _b("server.max.startup.time.ms", LONG, LONG_MAX, AtLeast(0),
       "Longest time to wait for the broker to start.", **I),
    _b("eligible.leader.replicas.enable", BOOLEAN, False, None,
       "Enable eligible leader replicas (KIP-966)."),

    # listeners and sockets
    _b("listeners", STRING, "PLAINTEXT://:9092", LISTENER_LIST,
       "Where Gregor listens: NAME://HOST:PORT,...; empty host = all interfaces, port 0 = any "
       "free port. PLAINTEXT only; controller listeners are skipped.", **H, **D),
    _b("advertised.listeners", STRING, None, LISTENER_LIST,
       "Addresses given to clients in Metadata, if not the listeners.", **H),
    _b("listener.security.protocol.map", STRING,
       "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
       PROTOCOL_MAP, "Security protocol of each listener name.", **H, **D),
    _b("inter.broker.listener.name", STRING, None, None,
       "Listener brokers use between themselves."),
    _b("security.inter.broker.protocol", STRING, "PLAINTEXT", SECURITY_PROTOCOLS,
       "Security protocol between brokers."),
    _b("early.start.listeners", STRING, None, None,
       "Listeners started before the authorizer is ready."),
    _b("socket.send.buffer.bytes", INT, 102400, None, "SO_SNDBUF of server sockets (-1: OS)."),
    _b("socket.receive.buffer.bytes", INT, 102400, None,
       "SO_RCVBUF of server sockets (-1: OS)."),
    _b("socket.request.max.bytes", INT, 104857600, AtLeast(1),
       "Largest request frame accepted; a bigger one closes the connection.", **H),
    _b("socket.listen.backlog.size", INT, 50, AtLeast(1), "Pending connection backlog."),
    _b("max.connections.per.ip", INT, INT_MAX, AtLeast(0),
       "Most connections from one IP address.", **D),
    _b("max.connections.per.ip.overrides", STRING, "", None,
       "Per-IP or per-host overrides of max.connections.per.ip.", **D),
    _b("max.connections", INT, INT_MAX, AtLeast(0),
       "Most client connections at once; new ones beyond it are closed.", **H, **D),
    _b("max.connection.creation.rate", INT, INT_MAX, AtLeast(0),
       "Most new connections per second.", **D),
    _b("connections.max.idle.ms", LONG, 600000, None, "Close connections idle this long."),
    _b("connection.failed.authentication.delay.ms", INT, 100, AtLeast(0),
       "Delay before closing a connection that failed authentication."),
    _b("queued.max.requests", INT, 500, AtLeast(1), "Requests queued before blocking."),
    _b("queued.max.request.bytes", LONG, -1, None, "Bytes queued before blocking (-1: no limit)."),
    _b("num.network.threads", INT, 3, AtLeast(1), "Network threads.", **D),
    _b("num.io.threads", INT, 8, AtLeast(1), "Request handler threads.", **D),
    _b("background.threads", INT, 10, AtLeast(1), "Background task threads.", **D),
    _b("num.replica.alter.log.dirs.threads", INT, None, None,
       "Threads moving replicas between log dirs."),
    _b("request.timeout.ms", INT, 30000, None, "Timeout of requests the broker sends.", **H),
    _b("socket.connection.setup.timeout.ms", LONG, 10000, None,
       "Timeout to set up an outgoing connection."),
    _b("socket.connection.setup.timeout.max.ms", LONG, 30000, None,
       "Ceiling of the outgoing connection setup timeout."),
    _b("max.incremental.fetch.session.cache.slots", INT, 1000, AtLeast(0),
       "Incremental fetch sessions kept."),
    _b("fetch.max.bytes", INT, 57671680, AtLeast(1024), "Most bytes returned by one fetch."),
    _b("max.request.partition.size.limit", INT, 2000, AtLeast(1),
       "Most partitions served in one request.", **H),
    _b("unstable.api.versions.enable", BOOLEAN, False, None,
       "Advertise unstable API versions.", **I),
    _b("unstable.feature.versions.enable", BOOLEAN, False, None,
       "Allow unstable feature versions.", **I),
    _b("authorizer.class.name", STRING, "", EmptyOnly("authorizer"),
       "Authorizer class; empty for none: the ACL APIs answer SECURITY_DISABLED, as Kafka's.",
       **H),
    _b("super.users", STRING, None, None, "Principals the authorizer always allows."),
    _b("allow.everyone.if.no.acl.found", BOOLEAN, False, None,
       "Authorizer: allow access to resources without ACLs."),
    _b("create.topic.policy.class.name", CLASS, None, None,
       "Policy class validating topic creation."),
    _b("alter.config.policy.class.name", CLASS, None, None,
       "Policy class validating config changes."),
    _b("delete.topic.enable", BOOLEAN, True, None,
       "Allow DeleteTopics; false answers TOPIC_DELETION_DISABLED.", **H),

    # logs
    _b("log.dirs", STRING, None, None,
       "Comma-separated data directories; overrides log.dir.", **H),
    _b("log.dir", STRING, "/tmp/kafka-logs", None, "Data directory when log.dirs is unset.", **H),
    _b("num.partitions", INT, 1, AtLeast(1),
       "Partitions of auto-created topics and of CreateTopics asking for -1.", **H),
    _b("default.replication.factor", INT, 1, None,
       "Replication factor of auto-created topics and of CreateTopics asking for -1.", **H),
    _b("auto.create.topics.enable", BOOLEAN, True, None,
       "Create a topic when a client asks Metadata for one that does not exist.", **H),
    _b("min.insync.replicas", INT, 1, AtLeast(1),
       "Replicas that must have a write for acks=all to succeed (topic default).", **HD),
    _b("message.max.bytes", INT, 1048588, AtLeast(0),
       "Largest record batch accepted (topic default max.message.bytes).", **HD),
    _b("log.segment.bytes", INT, 1073741824, AtLeast(1048576),
       "Segment file size before a new one is rolled (topic default segment.bytes).", **HD),
    _b("log.roll.ms", LONG, None, None,
       "Roll a segment this old (topic default segment.ms); over log.roll.hours.", **HD),
    _b("log.roll.hours", INT, 168, AtLeast(1), "Segment age limit in hours, if log.roll.ms unset.",
       **H),
    _b("log.roll.jitter.ms", LONG, None, None,
       "Random jitter subtracted from segment roll time (topic default segment.jitter.ms).", **D),
    _b("log.roll.jitter.hours", INT, 0, AtLeast(0), "Roll jitter in hours, if the ms one unset."),
    _b("log.retention.ms", LONG, None, None,
       "Delete segments older than this (-1: forever; topic default retention.ms); "
       "over minutes and hours.", **HD),
    _b("log.retention.minutes", INT, None, None,
       "Retention in minutes, if log.retention.ms unset.", **H),
    _b("log.retention.hours", INT, 168, None,
       "Retention in hours, if log.retention.ms and minutes unset.", **H),
    _b("log.retention.bytes", LONG, -1, None,
       "Delete old segments past this partition size (-1: no limit; topic default "
       "retention.bytes).", **HD),
    _b("log.retention.check.interval.ms", LONG, 300000, AtLeast(1),
       "How often retention is enforced.", **H),
    _b("log.cleanup.policy", LIST, ["delete"], CLEANUP_POLICIES,
       "delete and/or compact (topic default cleanup.policy).", **D),
    _b("log.index.size.max.bytes", INT, 10485760, AtLeast(4),
       "Offset index size limit (topic default segment.index.bytes).", **HD),
    _b("log.index.interval.bytes", INT, 4096, AtLeast(0),
       "Bytes between offset index entries (topic default index.interval.bytes).", **HD),
    _b("log.flush.interval.messages", LONG, LONG_MAX, AtLeast(1),
       "fsync after this many messages (topic default flush.messages).", **HD),
    _b("log.flush.interval.ms", LONG, None, None,
       "fsync data older than this (topic default flush.ms); falls back to "
       "log.flush.scheduler.interval.ms.", **HD),
    _b("log.flush.scheduler.interval.ms", LONG, LONG_MAX, None,
       "Fallback of log.flush.interval.ms.", **H),
    _b("log.flush.offset.checkpoint.interval.ms", INT, 60000, AtLeast(0),
       "How often the recovery point checkpoint is written.", **H),
    _b("log.flush.start.offset.checkpoint.interval.ms", INT, 60000, AtLeast(0),
       "How often the log start offset checkpoint is written."),
    _b("log.segment.delete.delay.ms", LONG, 60000, AtLeast(0),
       "Wait before deleting a removed segment's files (topic default file.delete.delay.ms).",
       **HD),
    _b("log.preallocate", BOOLEAN, False, None,
       "Preallocate segment files (topic default preallocate).", **HD),
    _b("log.message.timestamp.type", STRING, "CreateTime", TIMESTAMP_TYPES,
       "CreateTime or LogAppendTime (topic default message.timestamp.type).", **HD),
    _b("log.message.timestamp.before.max.ms", LONG, LONG_MAX, AtLeast(0),
       "Reject batches with timestamps this far in the past (topic default).", **HD),
    _b("log.message.timestamp.after.max.ms", LONG, 3600000, AtLeast(0),
       "Reject batches with timestamps this far in the future (topic default).", **HD),
    _b("log.message.timestamp.difference.max.ms", LONG, LONG_MAX, AtLeast(0),
       "Kafka 3.x timestamp limit; use the before/after configs.", **L, **D),
    _b("log.message.format.version", STRING, "3.0-IV1", METADATA_VERSION,
       "Kafka 3.x message format version; v2 is the only format.", **L),
    _b("log.message.downconversion.enable", BOOLEAN, True, None,
       "Kafka 3.x down-conversion for old consumers.", **L, **D),
    _b("log.local.retention.ms", LONG, -2, AtLeast(-2),
       "Tiered storage: local retention time (-2: retention.ms).", **D),
    _b("log.local.retention.bytes", LONG, -2, AtLeast(-2),
       "Tiered storage: local retention size (-2: retention.bytes).", **D),
    _b("log.dir.failure.timeout.ms", LONG, 30000, AtLeast(1),
       "Shut down if a failed log dir cannot be reported for this long."),
    _b("log.initial.task.delay.ms", LONG, 30000, AtLeast(0),
       "Delay of the first log maintenance tasks.", **I),
    _b("num.recovery.threads.per.data.dir", INT, 2, AtLeast(1),
       "Threads per log dir for recovery and shutdown.", **D),
    _b("compression.type", STRING, "producer", OneOf(COMPRESSION_TYPES),
       "Final compression of stored batches (producer keeps the producer's); topic default.",
       **HD),
    _b("compression.gzip.level", INT, -1, GZIP_LEVEL, "gzip level when compressing.", **D),
    _b("compression.lz4.level", INT, 9, LZ4_LEVEL, "lz4 level when compressing.", **D),
    _b("compression.zstd.level", INT, 3, ZSTD_LEVEL, "zstd level when compressing.", **D),
    _b("unclean.leader.election.enable", BOOLEAN, False, None,
       "Let an out-of-sync replica become leader as a last resort.", **HD),
    _b("unclean.leader.election.interval.ms", LONG, 300000, AtLeast(1),
       "How often to try unclean elections.", **I),

    # log cleaner
    _b("log.cleaner.enable", BOOLEAN, True, None, "Run the log cleaner for compacted topics."),
    _b("log.cleaner.threads", INT, 1, AtLeast(0), "Log cleaner threads.", **D),
    _b("log.cleaner.io.max.bytes.per.second", DOUBLE, DOUBLE_MAX, None,
       "Log cleaner I/O throttle.", **D),
    _b("log.cleaner.dedupe.buffer.size", LONG, 134217728, None,
       "Memory for the cleaner's dedupe buffer.", **D),
    _b("log.cleaner.io.buffer.size", INT, 524288, AtLeast(0), "Cleaner I/O buffer memory.", **D),
    _b("log.cleaner.io.buffer.load.factor", DOUBLE, 0.9, None,
       "Load factor of the dedupe buffer.", **D),
    _b("log.cleaner.backoff.ms", LONG, 15000, AtLeast(0),
       "Cleaner sleep when nothing is cleanable.", **HD),
    _b("log.cleaner.min.cleanable.ratio", DOUBLE, 0.5, Between(0, 1),
       "Dirty ratio that triggers cleaning (topic default min.cleanable.dirty.ratio).", **D),
    _b("log.cleaner.delete.retention.ms", LONG, 86400000, AtLeast(0),
       "How long tombstones are kept (topic default delete.retention.ms).", **D),
    _b("log.cleaner.min.compaction.lag.ms", LONG, 0, AtLeast(0),
       "Minimum age before compaction (topic default min.compaction.lag.ms).", **D),
    _b("log.cleaner.max.compaction.lag.ms", LONG, LONG_MAX, AtLeast(1),
       "Maximum age before compaction (topic default max.compaction.lag.ms).", **D),

    # replication
    _b("replica.lag.time.max.ms", LONG, 30000, None,
       "A follower this far behind leaves the ISR.", **H),
    _b("replica.socket.timeout.ms", INT, 30000, None, "Follower fetch socket timeout.", **H),
    _b("replica.socket.receive.buffer.bytes", INT, 65536, None,
       "Follower fetch socket receive buffer."),
    _b("replica.fetch.max.bytes", INT, 1048576, AtLeast(0),
       "Bytes a follower fetches per partition.", **H),
    _b("replica.fetch.wait.max.ms", INT, 500, None, "Follower fetch max wait.", **H),
    _b("replica.fetch.backoff.ms", INT, 1000, AtLeast(0), "Follower sleep after a fetch error.",
       **H),
    _b("replica.fetch.min.bytes", INT, 1, None, "Follower fetch min bytes.", **H),
    _b("replica.fetch.response.max.bytes", INT, 10485760, AtLeast(0),
       "Bytes a follower fetch response may carry.", **H),
    _b("num.replica.fetchers", INT, 1, None, "Follower fetcher threads per source broker.", **D),
    _b("replica.high.watermark.checkpoint.interval.ms", LONG, 5000, None,
       "How often the high watermark checkpoint is written."),
    _b("fetch.purgatory.purge.interval.requests", INT, 1000, None,
       "Fetch purgatory purge interval (requests)."),
    _b("producer.purgatory.purge.interval.requests", INT, 1000, None,
       "Produce purgatory purge interval (requests)."),
    _b("delete.records.purgatory.purge.interval.requests", INT, 1, None,
       "DeleteRecords purgatory purge interval (requests)."),
    _b("auto.leader.rebalance.enable", BOOLEAN, True, None,
       "Move leadership back to preferred replicas.", **H),
    _b("leader.imbalance.per.broker.percentage", INT, 10, None,
       "Leader imbalance that triggers a rebalance.", **H),
    _b("leader.imbalance.check.interval.seconds", LONG, 300, AtLeast(1),
       "How often leader imbalance is checked.", **H),
    _b("replica.selector.class", STRING, None, None,
       "Class choosing the replica consumers fetch from."),
    _b("leader.replication.throttled.rate", LONG, LONG_MAX, AtLeast(0),
       "Leader-side replication throttle (bytes/s).", **D),
    _b("follower.replication.throttled.rate", LONG, LONG_MAX, AtLeast(0),
       "Follower-side replication throttle (bytes/s).", **D),
    _b("replica.alter.log.dirs.io.max.bytes.per.second", LONG, LONG_MAX, AtLeast(0),
       "Throttle of replica moves between log dirs (bytes/s).", **D),

    # group coordinator
    _b("group.initial.rebalance.delay.ms", INT, 3000, None,
       "Wait for more members before the first rebalance of an empty group.", **H),
    _b("group.min.session.timeout.ms", INT, 6000, None, "Smallest session timeout allowed.", **H),
    _b("group.max.session.timeout.ms", INT, 1800000, None, "Largest session timeout allowed.", **H),
    _b("group.max.size", INT, INT_MAX, AtLeast(1), "Most members of a classic group.", **H),
    _b("group.coordinator.rebalance.protocols", LIST, ["classic", "consumer"],
       ListOf(("consumer", "classic", "share")), "Rebalance protocols enabled."),
    _b("group.coordinator.threads", INT, 1, AtLeast(1), "Group coordinator threads."),
    _b("group.coordinator.append.linger.ms", INT, 10, AtLeast(0),
       "Group coordinator write linger."),
    _b("group.coordinator.new.enable", BOOLEAN, True, None, "Use the new group coordinator.",
       **I),
    _b("offset.metadata.max.bytes", INT, 4096, None, "Largest offset commit metadata.", **H),
    _b("offsets.load.buffer.size", INT, 5242880, AtLeast(1),
       "Read batch size when loading offsets."),
    _b("offsets.topic.replication.factor", SHORT, 3, AtLeast(1),
       "Replication factor of __consumer_offsets.", **H),
    _b("offsets.topic.num.partitions", INT, 50, AtLeast(1),
       "Partitions of __consumer_offsets (do not change after first start).", **H),
    _b("offsets.topic.segment.bytes", INT, 104857600, AtLeast(1),
       "Segment size of __consumer_offsets."),
    _b("offsets.topic.compression.codec", INT, 0, None, "Compression of __consumer_offsets."),
    _b("offsets.retention.minutes", INT, 10080, AtLeast(1),
       "Keep committed offsets of empty groups this long.", **H),
    _b("offsets.retention.check.interval.ms", LONG, 600000, AtLeast(1),
       "How often stale offsets are removed.", **H),
    _b("offsets.commit.timeout.ms", INT, 5000, AtLeast(1), "Offset commit write timeout.", **H),
    _b("group.consumer.session.timeout.ms", INT, 45000, AtLeast(1),
       "Consumer protocol session timeout.", **H),
    _b("group.consumer.min.session.timeout.ms", INT, 45000, AtLeast(1),
       "Consumer protocol smallest session timeout."),
    _b("group.consumer.max.session.timeout.ms", INT, 60000, AtLeast(1),
       "Consumer protocol largest session timeout."),
    _b("group.consumer.heartbeat.interval.ms", INT, 5000, AtLeast(1),
       "Consumer protocol heartbeat interval.", **H),
    _b("group.consumer.min.heartbeat.interval.ms", INT, 5000, AtLeast(1),
       "Consumer protocol smallest heartbeat interval."),
    _b("group.consumer.max.heartbeat.interval.ms", INT, 15000, AtLeast(1),
       "Consumer protocol largest heartbeat interval."),
    _b("group.consumer.max.size", INT, INT_MAX, AtLeast(1),
       "Most members of a consumer protocol group.", **H),
    _b("group.consumer.assignors", LIST,
       ["org.apache.kafka.coordinator.group.assignor.UniformAssignor",
        "org.apache.kafka.coordinator.group.assignor.RangeAssignor"], None,
       "Server-side assignors of the consumer protocol.", **H),
    _b("group.consumer.migration.policy", STRING, "bidirectional",
       OneOf(("disabled", "downgrade", "upgrade", "bidirectional"), case_insensitive=True),
       "Which classic/consumer group conversions are allowed.", **I),
    _b("group.share.enable", BOOLEAN, False, None, "Enable share groups.", **I),
    _b("group.share.session.timeout.ms", INT, 45000, AtLeast(1), "Share group session timeout."),
    _b("group.share.min.session.timeout.ms", INT, 45000, AtLeast(1),
       "Share group smallest session timeout."),
    _b("group.share.max.session.timeout.ms", INT, 60000, AtLeast(1),
       "Share group largest session timeout."),
    _b("group.share.heartbeat.interval.ms", INT, 5000, AtLeast(1),
       "Share group heartbeat interval."),
    _b("group.share.min.heartbeat.interval.ms", INT, 5000, AtLeast(1),
       "Share group smallest heartbeat interval."),
    _b("group.share.max.heartbeat.interval.ms", INT, 15000, AtLeast(1),
       "Share group largest heartbeat interval."),
    _b("group.share.max.size", INT, 200, Between(10, 1000), "Most members of a share group."),
    _b("group.share.delivery.count.limit", INT, 5, Between(2, 10),
       "Delivery attempts of a record to a share group."),
    _b("group.share.record.lock.duration.ms", INT, 30000, Between(1000, 3600000),
       "Share group record lock duration."),
    _b("group.share.min.record.lock.duration.ms", INT, 15000, Between(1000, 30000),
       "Share group smallest record lock duration."),
    _b("group.share.max.record.lock.duration.ms", INT, 60000, Between(30000, 3600000),
       "Share group largest record lock duration."),
    _b("group.share.max.groups", SHORT, 10, Between(1, 100), "Most share groups."),
    _b("group.share.partition.max.record.locks", INT, 200, Between(100, 10000),
       "Record locks per share partition."),
    _b("share.fetch.max.fetch.records", INT, INT_MAX, None,
       "Most records in one share fetch.", **I),
    _b("share.fetch.purgatory.purge.interval.requests", INT, 1000, None,
       "Share fetch purgatory purge interval (requests)."),
    _b("share.coordinator.state.topic.num.partitions", INT, 50, AtLeast(1),
       "Partitions of the share-group state topic."),
    _b("share.coordinator.state.topic.replication.factor", SHORT, 3, AtLeast(1),
       "Replication factor of the share-group state topic."),
    _b("share.coordinator.state.topic.min.isr", SHORT, 2, AtLeast(1),
       "min.insync.replicas of the share-group state topic."),
    _b("share.coordinator.state.topic.segment.bytes", INT, 104857600, AtLeast(1),
       "Segment size of the share-group state topic."),
    _b("share.coordinator.threads", INT, 1, AtLeast(1), "Share coordinator threads."),
    _b("share.coordinator.snapshot.update.records.per.snapshot", INT, 500, AtLeast(0),
       "Share state updates between snapshots."),
    _b("share.coordinator.load.buffer.size", INT, 5242880, AtLeast(1),
       "Read batch size when loading share state."),
    _b("share.coordinator.state.topic.compression.codec", INT, 0, None,
       "Compression of the share-group state topic."),
    _b("share.coordinator.append.linger.ms", INT, 10, AtLeast(0),
       "Share coordinator write linger."),
    _b("share.coordinator.write.timeout.ms", INT, 5000, AtLeast(1),
       "Share coordinator write timeout."),

    # transactions and producer ids
    _b("transaction.state.log.replication.factor", SHORT, 3, AtLeast(1),
       "Replication factor of __transaction_state.", **H),
    _b("transaction.state.log.num.partitions", INT, 50, AtLeast(1),
       "Partitions of __transaction_state."),
    _b("transaction.state.log.min.isr", INT, 2, AtLeast(1),
       "min.insync.replicas of __transaction_state."),
    _b("transaction.state.log.segment.bytes", INT, 104857600, AtLeast(1),
       "Segment size of __transaction_state."),
    _b("transaction.state.log.load.buffer.size", INT, 5242880, AtLeast(1),
       "Read batch size when loading transactions."),
    _b("transaction.partition.verification.enable", BOOLEAN, True, None,
       "Check a partition joined the transaction before transactional writes.", **HD),
    _b("producer.id.expiration.ms", INT, 86400000, AtLeast(1),
       "Forget an idle producer id's state after this long.", **HD),
    _b("producer.id.expiration.check.interval.ms", INT, 600000, AtLeast(1),
       "How often expired producer ids are removed.", **I),
    _b("transactional.id.expiration.ms", INT, 604800000, AtLeast(1),
       "Expire a transactional id idle this long.", **H),
    _b("transaction.max.timeout.ms", INT, 900000, AtLeast(1),
       "Largest transaction timeout a producer may ask for.", **H),
    _b("transaction.abort.timed.out.transaction.cleanup.interval.ms", INT, 10000, AtLeast(1),
       "How often timed-out transactions are aborted.", **H),
    _b("transaction.remove.expired.transaction.cleanup.interval.ms", INT, 3600000, AtLeast(1),
       "How often expired transactional ids are removed.", **H),

    # tiered storage
    _b("remote.log.storage.system.enable", BOOLEAN, False, None, "Enable tiered storage."),
    _b("remote.log.storage.manager.impl.prefix", STRING, "rsm.config.", NonEmpty(),
       "Prefix of configs passed to the remote storage manager."),
    _b("remote.log.metadata.manager.impl.prefix", STRING, "rlmm.config.", NonEmpty(),
       "Prefix of configs passed to the remote log metadata manager."),
    _b("remote.log.storage.manager.class.name", STRING, None, NonEmpty(),
       "Remote storage manager class."),
    _b("remote.log.storage.manager.class.path", STRING, None, None,
       "Class path of the remote storage manager."),
    _b("remote.log.metadata.manager.class.name", STRING,
       "org.apache.kafka.server.log.remote.metadata.storage.TopicBasedRemoteLogMetadataManager",
       NonEmpty(), "Remote log metadata manager class."),
    _b("remote.log.metadata.manager.class.path", STRING, None, None,
       "Class path of the remote log metadata manager."),
    _b("remote.log.metadata.manager.listener.name", STRING, None, NonEmpty(),
       "Listener the remote log metadata manager connects to."),
    _b("remote.log.metadata.custom.metadata.max.bytes", INT, 128, AtLeast(0),
       "Largest custom metadata from a remote storage plugin."),
    _b("remote.log.index.file.cache.total.size.bytes", LONG, 1073741824, AtLeast(1),
       "Local space for cached remote index files.", **D),
    _b("remote.log.manager.thread.pool.size", INT, 2, AtLeast(1),
       "Remote log manager follower thread pool."),
    _b("remote.log.manager.copier.thread.pool.size", INT, 10, AtLeast(1),
       "Threads copying segments to remote storage."),
    _b("remote.log.manager.expiration.thread.pool.size", INT, 10, AtLeast(1),
       "Threads deleting expired remote segments."),
    _b("remote.log.manager.task.interval.ms", LONG, 30000, AtLeast(1),
       "Remote log manager task interval."),
    _b("remote.log.manager.task.retry.backoff.ms", LONG, 500, AtLeast(1),
       "Remote log manager retry backoff.", **I),
    _b("remote.log.manager.task.retry.backoff.max.ms", LONG, 30000, AtLeast(1),
       "Remote log manager retry backoff ceiling.", **I),
    _b("remote.log.manager.task.retry.jitter", DOUBLE, 0.2, Between(0, 0.5),
       "Remote log manager retry jitter.", **I),
    _b("remote.log.reader.threads", INT, 10, AtLeast(1), "Remote read threads."),
    _b("remote.log.reader.max.pending.tasks", INT, 100, AtLeast(1),
       "Queued remote reads."),
    _b("remote.log.manager.copy.max.bytes.per.second", LONG, LONG_MAX, AtLeast(1),
       "Remote copy throttle.", **D),
    _b("remote.log.manager.copy.quota.window.num", INT, 11, AtLeast(1),
       "Remote copy quota samples."),
    _b("remote.log.manager.copy.quota.window.size.seconds", INT, 1, AtLeast(1),
       "Remote copy quota sample span."),
    _b("remote.log.manager.fetch.max.bytes.per.second", LONG, LONG_MAX, AtLeast(1),
       "Remote fetch throttle.", **D),
    _b("remote.log.manager.fetch.quota.window.num", INT, 11, AtLeast(1),
       "Remote fetch quota samples."),
    _b("remote.log.manager.fetch.quota.window.size.seconds", INT, 1, AtLeast(1),
       "Remote fetch quota sample span."),
    _b("remote.fetch.max.wait.ms", INT, 500, AtLeast(1), "Remote fetch max wait.", **D),
    _b("remote.list.offsets.request.timeout.ms", LONG, 30000, AtLeast(1),
       "Remote ListOffsets timeout.", **D),

    # metrics and quotas
    _b("metrics.num.samples", INT, 2, AtLeast(1), "Samples per Kafka metric."),
    _b("metrics.sample.window.ms", LONG, 30000, AtLeast(1), "Kafka metric sample window."),
    _b("metric.reporters", LIST, ["org.apache.kafka.common.metrics.JmxReporter"], None,
       "Kafka metrics reporter classes (Gregor: see metrics.listen).", **D),
    _b("metrics.recording.level", STRING, "INFO", None, "Kafka metrics recording level."),
    _b("kafka.metrics.reporters", LIST, [], None, "Yammer metrics reporter classes."),
    _b("kafka.metrics.polling.interval.secs", INT, 10, AtLeast(1),
       "Yammer metrics reporter polling interval."),
    _b("telemetry.max.bytes", INT, 1048576, AtLeast(1), "Largest client telemetry push."),
    _b("quota.window.num", INT, 11, AtLeast(1), "Client quota samples."),
    _b("quota.window.size.seconds", INT, 1, AtLeast(1), "Client quota sample span."),
    _b("replication.quota.window.num", INT, 11, AtLeast(1), "Replication quota samples."),
    _b("replication.quota.window.size.seconds", INT, 1, AtLeast(1),
       "Replication quota sample span."),
    _b("alter.log.dirs.replication.quota.window.num", INT, 11, AtLeast(1),
       "Log dir move quota samples."),
    _b("alter.log.dirs.replication.quota.window.size.seconds", INT, 1, AtLeast(1),
       "Log dir move quota sample span."),
    _b("controller.quota.window.num", INT, 11, AtLeast(1), "Controller mutation quota samples."),
    _b("controller.quota.window.size.seconds", INT, 1, AtLeast(1),
       "Controller mutation quota sample span."),
    _b("client.quota.callback.class", CLASS, None, None, "Custom client quota callback."),

    # security
    _b("connections.max.reauth.ms", LONG, 0, None, "SASL session lifetime (0: unlimited)."),
    _b("sasl.server.max.receive.size", INT, 524288, None,
       "Largest frame before SASL authentication completes."),
    _b("security.providers", STRING, None, None, "Security provider creator classes."),
    _b("principal.builder.class", CLASS,
       "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder", None,
       "Principal builder class.", **D),
    _b("ssl.client.auth", STRING, "none", OneOf(("required", "requested", "none")),
       "TLS client authentication.", **D),
    _b("ssl.principal.mapping.rules", STRING, "DEFAULT", None,
       "Rules mapping certificate names to principals."),
    _b("ssl.allow.dn.changes", BOOLEAN, False, None,
       "Allow a keystore update to change the DN."),
    _b("ssl.allow.san.changes", BOOLEAN, False, None,
       "Allow a keystore update to change the SANs."),
    _b("ssl.protocol", STRING, "TLSv1.3", None, "TLS protocol.", **D),
    _b("ssl.provider", STRING, None, None, "Security provider for TLS.", **D),
    _b("ssl.enabled.protocols", LIST, ["TLSv1.2", "TLSv1.3"], None,
       "TLS protocols enabled.", **D),
    _b("ssl.keystore.type", STRING, "JKS", None, "Keystore format.", **D),
    _b("ssl.keystore.location", STRING, None, None, "Keystore file.", **D),
    _b("ssl.keystore.password", PASSWORD, None, None, "Keystore password.", **D),
    _b("ssl.key.password", PASSWORD, None, None, "Private key password.", **D),
    _b("ssl.keystore.key", PASSWORD, None, None, "Private key in PEM.", **D),
    _b("ssl.keystore.certificate.chain", PASSWORD, None, None,
       "Certificate chain in PEM.", **D),
    _b("ssl.truststore.type", STRING, "JKS", None, "Truststore format.", **D),
    _b("ssl.truststore.location", STRING, None, None, "Truststore file.", **D),
    _b("ssl.truststore.password", PASSWORD, None, None, "Truststore password.", **D),
    _b("ssl.truststore.certificates", PASSWORD, None, None,
       "Trusted certificates in PEM.", **D),
    _b("ssl.keymanager.algorithm", STRING, "SunX509", None, "Key manager algorithm.", **D),
    _b("ssl.trustmanager.algorithm", STRING, "PKIX", None, "Trust manager algorithm.", **D),
    _b("ssl.endpoint.identification.algorithm", STRING, "https", None,
       "Server host name verification.", **D),
    _b("ssl.secure.random.implementation", STRING, None, None,
       "SecureRandom implementation.", **D),
    _b("ssl.cipher.suites", LIST, [], None, "TLS cipher suites.", **D),
    _b("ssl.engine.factory.class", CLASS, None, None, "Custom SSLEngine factory.", **D),
    _b("sasl.mechanism.inter.broker.protocol", STRING, "GSSAPI", None,
       "SASL mechanism between brokers.", **D),
    _b("sasl.enabled.mechanisms", LIST, ["GSSAPI"], None, "SASL mechanisms enabled.", **D),
    _b("sasl.server.callback.handler.class", CLASS, None, None,
       "SASL server callback handler."),
    _b("sasl.kerberos.principal.to.local.rules", LIST, ["DEFAULT"], None,
       "Kerberos principal to short name rules.", **D),
    _b("sasl.jaas.config", PASSWORD, None, None, "JAAS login context.", **D),
    _b("sasl.client.callback.handler.class", CLASS, None, None,
       "SASL client callback handler."),
    _b("sasl.login.class", CLASS, None, None, "SASL login class."),
    _b("sasl.login.callback.handler.class", CLASS, None, None, "SASL login callback handler."),
    _b("sasl.kerberos.service.name", STRING, None, None, "Kerberos service name.", **D),
    _b("sasl.kerberos.kinit.cmd", STRING, "/usr/bin/kinit", None, "kinit command.", **D),
    _b("sasl.kerberos.ticket.renew.window.factor", DOUBLE, 0.8, None,
       "Kerberos ticket renewal point.", **D),
    _b("sasl.kerberos.ticket.renew.jitter", DOUBLE, 0.05, None,
       "Kerberos renewal jitter.", **D),
    _b("sasl.kerberos.min.time.before.relogin", LONG, 60000, None,
       "Kerberos relogin sleep.", **D),
    _b("sasl.login.refresh.window.factor", DOUBLE, 0.8, None,
       "Login refresh point.", **D),
    _b("sasl.login.refresh.window.jitter", DOUBLE, 0.05, None, "Login refresh jitter.", **D),
    _b("sasl.login.refresh.min.period.seconds", SHORT, 60, None,
       "Least time between login refreshes.", **D),
    _b("sasl.login.refresh.buffer.seconds", SHORT, 300, None,
       "Login refresh buffer before expiry.", **D),
    _b("sasl.login.connect.timeout.ms", INT, None, None, "OAuth login connect timeout."),
    _b("sasl.login.read.timeout.ms", INT, None, None, "OAuth login read timeout."),
    _b("sasl.login.retry.backoff.max.ms", LONG, 10000, None, "OAuth login retry ceiling."),
    _b("sasl.login.retry.backoff.ms", LONG, 100, None, "OAuth login retry backoff."),
    _b("sasl.oauthbearer.scope.claim.name", STRING, "scope", None, "OAuth scope claim."),
    _b("sasl.oauthbearer.sub.claim.name", STRING, "sub", None, "OAuth subject claim."),
    _b("sasl.oauthbearer.token.endpoint.url", STRING, None, None, "OAuth token endpoint."),
    _b("sasl.oauthbearer.jwks.endpoint.url", STRING, None, None, "OAuth JWKS endpoint."),
    _b("sasl.oauthbearer.jwks.endpoint.refresh.ms", LONG, 3600000, None,
       "OAuth JWKS refresh interval."),
    _b("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", LONG, 100, None,
       "OAuth JWKS retry backoff."),
    _b("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", LONG, 10000, None,
       "OAuth JWKS retry ceiling."),
    _b("sasl.oauthbearer.clock.skew.seconds", INT, 30, None, "OAuth clock skew allowed."),
    _b("sasl.oauthbearer.expected.audience", LIST, None, None, "OAuth audiences accepted."),
    _b("sasl.oauthbearer.expected.issuer", STRING, None, None, "OAuth issuer accepted."),
    _b("delegation.token.secret.key", PASSWORD, None, None,
       "Secret signing delegation tokens."),
    _b("delegation.token.max.lifetime.ms", LONG, 604800000, AtLeast(1),
       "Longest delegation token lifetime."),
    _b("delegation.token.expiry.time.ms", LONG, 86400000, AtLeast(1),
       "Delegation token renewal interval."),
    _b("delegation.token.expiry.check.interval.ms", LONG, 3600000, AtLeast(1),
       "How often expired delegation tokens are removed."),
]

BROKER_CONFIGS: dict[str, BrokerConfigDef] = {d.name: d for d in _BROKER_DEFS}


def _t(name, config_type, default, validator, synonyms, doc, **flags) -> TopicConfigDef:
    return TopicConfigDef(name, config_type, default, validator, doc, tuple(synonyms), **flags)


# Kafka's ServerTopicConfigSynonyms: the broker configs a topic config defaults from.
_TOPIC_DEFS = [
    _t("cleanup.policy", LIST, ["delete"], CLEANUP_POLICIES, ["log.cleanup.policy"],
       "delete (by time or size) and/or compact (keep the latest value per key)."),
    _t("compression.type", STRING, "producer", OneOf(COMPRESSION_TYPES), ["compression.type"],
       "Final compression of stored batches; producer keeps the producer's codec.",
       honoured=True),
    _t("compression.gzip.level", INT, -1, GZIP_LEVEL, ["compression.gzip.level"],
       "gzip level when compression.type is gzip."),
    _t("compression.lz4.level", INT, 9, LZ4_LEVEL, ["compression.lz4.level"],
       "lz4 level when compression.type is lz4."),
    _t("compression.zstd.level", INT, 3, ZSTD_LEVEL, ["compression.zstd.level"],
       "zstd level when compression.type is zstd."),
    _t("delete.retention.ms", LONG, 86400000, AtLeast(0), ["log.cleaner.delete.retention.ms"],
       "How long tombstones stay in a compacted topic."),
    _t("file.delete.delay.ms", LONG, 60000, AtLeast(0), ["log.segment.delete.delay.ms"],
       "Wait before deleting a removed segment's files.", honoured=True),
    _t("flush.messages", LONG, LONG_MAX, AtLeast(1), ["log.flush.interval.messages"],
       "fsync after this many messages.", honoured=True),
    _t("flush.ms", LONG, LONG_MAX, AtLeast(0),
       ["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
       "fsync data older than this.", honoured=True),
    _t("follower.replication.throttled.replicas", LIST, [], THROTTLED_REPLICAS, [],
       "Replicas throttled on the follower side."),
    _t("index.interval.bytes", INT, 4096, AtLeast(0), ["log.index.interval.bytes"],
       "Bytes between offset index entries.", honoured=True),
    _t("leader.replication.throttled.replicas", LIST, [], THROTTLED_REPLICAS, [],
       "Replicas throttled on the leader side."),
    _t("local.retention.bytes", LONG, -2, AtLeast(-2), ["log.local.retention.bytes"],
       "Tiered storage: local size kept (-2: retention.bytes)."),
    _t("local.retention.ms", LONG, -2, AtLeast(-2), ["log.local.retention.ms"],
       "Tiered storage: local time kept (-2: retention.ms)."),
    _t("max.compaction.lag.ms", LONG, LONG_MAX, AtLeast(1), ["log.cleaner.max.compaction.lag.ms"],
       "Longest a record stays uncompacted."),
    _t("max.message.bytes", INT, 1048588, AtLeast(0), ["message.max.bytes"],
       "Largest record batch accepted (after compression).", honoured=True),
    _t("message.timestamp.after.max.ms", LONG, 3600000, AtLeast(0),
       ["log.message.timestamp.after.max.ms"],
       "Reject batches with a timestamp this far in the future (CreateTime).", honoured=True),
    _t("message.timestamp.before.max.ms", LONG, LONG_MAX, AtLeast(0),
       ["log.message.timestamp.before.max.ms"],
       "Reject batches with a timestamp this far in the past (CreateTime).", honoured=True),
    _t("message.timestamp.type", STRING, "CreateTime", TIMESTAMP_TYPES,
       ["log.message.timestamp.type"],
       "CreateTime keeps the producer's timestamp; LogAppendTime stamps the broker's.",
       honoured=True),
    _t("min.cleanable.dirty.ratio", DOUBLE, 0.5, Between(0, 1),
       ["log.cleaner.min.cleanable.ratio"], "Dirty ratio that makes a log cleanable."),
    _t("min.compaction.lag.ms", LONG, 0, AtLeast(0), ["log.cleaner.min.compaction.lag.ms"],
       "Shortest time a record stays uncompacted."),
    _t("min.insync.replicas", INT, 1, AtLeast(1), ["min.insync.replicas"],
       "Replicas that must have a write for acks=all to succeed.", honoured=True),
    _t("preallocate", BOOLEAN, False, None, ["log.preallocate"],
       "Preallocate segment files.", honoured=True),
    _t("remote.log.copy.disable", BOOLEAN, False, None, [],
       "Tiered storage: stop copying to remote storage."),
    _t("remote.log.delete.on.disable", BOOLEAN, False, None, [],
       "Tiered storage: delete remote data when tiering is disabled."),
    _t("remote.storage.enable", BOOLEAN, False, None, [], "Tiered storage for this topic."),
    _t("retention.bytes", LONG, -1, None, ["log.retention.bytes"],
       "Delete old segments past this partition size (-1: no limit).", honoured=True),
    _t("retention.ms", LONG, 604800000, AtLeast(-1),
       ["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
       "Delete segments older than this (-1: keep forever).", honoured=True),
    _t("segment.bytes", INT, 1073741824, AtLeast(1048576), ["log.segment.bytes"],
       "Segment file size before a new one is rolled.", honoured=True),
    _t("segment.index.bytes", INT, 10485760, AtLeast(4), ["log.index.size.max.bytes"],
       "Offset and time index size limit.", honoured=True),
    _t("segment.jitter.ms", LONG, 0, AtLeast(0), ["log.roll.jitter.ms", "log.roll.jitter.hours"],
       "Random jitter subtracted from segment.ms.", honoured=True),
    _t("segment.ms", LONG, 604800000, AtLeast(1), ["log.roll.ms", "log.roll.hours"],
       "Roll a segment this old even if not full.", honoured=True),
    _t("unclean.leader.election.enable", BOOLEAN, False, None, ["unclean.leader.election.enable"],
       "Let an out-of-sync replica become leader as a last resort.", honoured=True),
    # removed by Kafka 4.0; accepted so old topic configs still apply
    _t("message.downconversion.enable", BOOLEAN, True, None,
       ["log.message.downconversion.enable"], "Kafka 3.x down-conversion for old consumers.",
       legacy=True),
    _t("message.format.version", STRING, "3.0-IV1", METADATA_VERSION,
       ["log.message.format.version"], "Kafka 3.x message format version.", legacy=True),
    _t("message.timestamp.difference.max.ms", LONG, LONG_MAX, AtLeast(0),
       ["log.message.timestamp.difference.max.ms"],
       "Kafka 3.x timestamp limit; use the before/after configs.", legacy=True),
]

TOPIC_CONFIGS: dict[str, TopicConfigDef] = {d.name: d for d in _TOPIC_DEFS}

# Broker configs set in more than one unit: first set wins, converted to the first's unit.
BROKER_SYNONYMS: dict[str, tuple[tuple[str, int], ...]] = {
    "log.retention.ms": (("log.retention.ms", 1), ("log.retention.minutes", 60_000),
                         ("log.retention.hours", 3_600_000)),
    "log.roll.ms": (("log.roll.ms", 1), ("log.roll.hours", 3_600_000)),
    "log.roll.jitter.ms": (("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3_600_000)),
    "log.flush.interval.ms": (("log.flush.interval.ms", 1),
                              ("log.flush.scheduler.interval.ms", 1)),
}


def synonym_group(name: str) -> tuple[str, ...]:
    """Kafka's DynamicBrokerConfig.brokerConfigSynonyms: the names sharing one setting."""
    for head, members in BROKER_SYNONYMS.items():
        names = tuple(member for member, _ in members)
        if name in names and not (head == "log.flush.interval.ms"
                                  and name == "log.flush.scheduler.interval.ms"):
            return names
    return (name,)


# Prefixes Kafka passes through to plugins: keys under them are accepted as they are.
PASS_THROUGH_PREFIXES = ("rsm.config.", "rlmm.config.")
_LISTENER_OVERRIDE = re.compile(r"listener\.name\.([^.]+)\.(.+)")


def listener_override_base(name: str) -> str | None:
    """For listener.name.<listener>.[<mechanism>.]<config>, the base config name if known."""
    match = _LISTENER_OVERRIDE.fullmatch(name)
    if match is None:
        return None
    rest = match.group(2)
    if rest in BROKER_CONFIGS:
        return rest
    mechanism_and_config = rest.split(".", 1)  # e.g. scram-sha-256.sasl.jaas.config
    if len(mechanism_and_config) == 2 and mechanism_and_config[1] in BROKER_CONFIGS:
        return mechanism_and_config[1]
    return None


def unknown_key_error(name: str, known: Iterable[str], kind: str) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{name}: unknown {kind} config{hint}")

