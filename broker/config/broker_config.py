"""Broker configuration: load and validate server.properties, resolve synonyms, describe."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import NamedTuple

from broker.config.definitions import (
    BROKER_CONFIGS,
    BROKER_SYNONYMS,
    PASS_THROUGH_PREFIXES,
    TOPIC_CONFIGS,
    BrokerConfigDef,
    ConfigError,
    NotDynamicError,
    ConfigType,
    Value,
    listener_override_base,
    render_value,
    synonym_group,
    unknown_key_error,
)


class ConfigSource(IntEnum):
    """DescribeConfigsResponse's ConfigSource (Kafka's DescribeConfigsResponse.ConfigSource)."""

    UNKNOWN = 0
    TOPIC_CONFIG = 1  # the admin client's DYNAMIC_TOPIC_CONFIG
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


@dataclass(frozen=True)
class ConfigEntry:
    """One DescribeConfigs result entry; values rendered as Kafka renders them."""

    name: str
    value: str | None
    source: ConfigSource
    read_only: bool
    is_sensitive: bool
    synonyms: list[tuple[str, str | None, ConfigSource]]
    config_type: ConfigType
    documentation: str


class Endpoint(NamedTuple):
    host: str  # "" means every interface (listeners) or the broker's own host name
    port: int


# Applied when Gregor runs without -c: Kafka's defaults, except what one local broker needs.
DEV_DEFAULTS: dict[str, str] = {
    "node.id": "0",
    "listeners": "PLAINTEXT://127.0.0.1:9092",
    "log.dirs": "./gregor-data",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "group.initial.rebalance.delay.ms": "0",
}

_THREAD_POOL_CONFIGS = ("num.io.threads", "num.replica.fetchers",
                        "num.recovery.threads.per.data.dir", "background.threads")
_LISTENER = re.compile(r"([A-Za-z0-9_]+)://(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]*):([0-9]+)")


def config_def_for(name: str) -> BrokerConfigDef | None:
    """The definition a broker key is checked against (listener overrides use their base)."""
    if name in BROKER_CONFIGS:
        return BROKER_CONFIGS[name]
    base = listener_override_base(name)
    return BROKER_CONFIGS[base] if base is not None else None


def _check_keys(properties: dict[str, str]) -> dict[str, Value]:
    """Parses every value; ConfigError for an unknown key or a bad value."""
    parsed: dict[str, Value] = {}
    for name, raw in properties.items():
        if name.startswith(PASS_THROUGH_PREFIXES):
            parsed[name] = raw
            continue
        definition = config_def_for(name)
        if definition is None:
            raise unknown_key_error(name, BROKER_CONFIGS, "broker")
        parsed[name] = definition.parse(raw)
    return parsed


def _populate_id_synonyms(properties: dict[str, str]) -> dict[str, str]:
    """Kafka's populateSynonyms: node.id and broker.id stand in for each other."""
    result = dict(properties)
    if "node.id" in result and "broker.id" not in result:
        result["broker.id"] = result["node.id"]
    elif "broker.id" in result and "node.id" not in result:
        result["node.id"] = result["broker.id"]
    return result


def load_broker_config(static: dict[str, str] | None, overrides: dict[str, str]) -> BrokerConfig:
    """Builds the broker config from a server.properties (None: no file, a dev broker with
    DEV_DEFAULTS) and command line overrides (which win). Every key and value is checked;
    ConfigError names the first bad one.
    """
    file_properties = _populate_id_synonyms(static or {})
    static_layer = {**file_properties, **_populate_id_synonyms(overrides)}
    dev_layer = _populate_id_synonyms(DEV_DEFAULTS) if static is None else {}
    config = BrokerConfig(static_layer, dev_layer, {}, {})
    config._validate()
    return config


class BrokerConfig:
    """An immutable view of the broker's config layers, highest precedence first:
    per-broker dynamic, cluster-wide dynamic default, static (file and command line),
    defaults (Gregor's dev defaults without a file, then Kafka's)."""

    def __init__(self, static: dict[str, str], dev_defaults: dict[str, str],
                 dynamic_broker: dict[str, str], dynamic_default: dict[str, str]) -> None:
        self._static = static
        self._dev_defaults = dev_defaults
        self._dynamic_broker = dynamic_broker
        self._dynamic_default = dynamic_default
        self._layers = ((dynamic_broker, ConfigSource.DYNAMIC_BROKER_CONFIG),
                        (dynamic_default, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
                        (static, ConfigSource.STATIC_BROKER_CONFIG),
                        (dev_defaults, ConfigSource.DEFAULT_CONFIG))
        self._parsed = {name: value
                        for layer, _ in reversed(self._layers)
                        for name, value in _check_keys(layer).items()}

    # -- lookups ------------------------------------------------------------------------------

    def _definition(self, name: str) -> BrokerConfigDef:
        definition = config_def_for(name)
        if definition is None:
            raise unknown_key_error(name, BROKER_CONFIGS, "broker")
        return definition

    def _is_set(self, name: str) -> bool:
        return any(name in layer for layer, _ in self._layers)

    def _own_value(self, name: str) -> Value:
        """The value of exactly this name: the highest layer setting it, else the default."""
        if self._is_set(name):
            return self._parsed[name]
        return self._definition(name).default

    def value(self, name: str) -> Value:
        """The typed value (int, bool, str, list, float or None) with synonyms resolved:
        log.retention.ms > log.retention.minutes > log.retention.hours (in ms, negative
        meaning -1), log.roll.ms > log.roll.hours, log.roll.jitter.ms > log.roll.jitter.hours,
        log.flush.interval.ms > log.flush.scheduler.interval.ms, log.dirs > log.dir,
        node.id = broker.id. ConfigError for an unknown name."""
        self._definition(name)
        if name in BROKER_SYNONYMS:
            for member, to_head_unit in BROKER_SYNONYMS[name]:
                if self._is_set(member) or member == BROKER_SYNONYMS[name][-1][0]:
                    raw = self._own_value(member)
                    resolved = None if raw is None else raw * to_head_unit
                    if name == "log.retention.ms" and resolved is not None and resolved < 0:
                        return -1  # Kafka: any negative retention means unlimited
                    return resolved
        if name == "log.dirs" and not self._is_set("log.dirs"):
            return self._own_value("log.dir")
        return self._own_value(name)

    def source(self, name: str) -> ConfigSource:
        """Where value(name) came from (for a synonym group, the member that decided it)."""
        self._definition(name)
        candidates: tuple[str, ...] = (name,)
        if name in BROKER_SYNONYMS:
            candidates = tuple(member for member, _ in BROKER_SYNONYMS[name])
        elif name == "log.dirs":
            candidates = ("log.dirs", "log.dir")
        for candidate in candidates:
            for layer, source in self._layers:
                if candidate in layer:
                    return source
        return ConfigSource.DEFAULT_CONFIG

    # -- dynamic changes --------------------------------------------------------------------

    def with_dynamic(self, changes: dict[str, str | None], *,
                     cluster_default: bool = False) -> BrokerConfig:
        """A new config with per-broker (or, with cluster_default, cluster-wide default)
        dynamic overrides set (a string) or removed (None). ConfigError for an unknown key,
        a key Kafka cannot change dynamically, or a bad value."""
        current = dict(self._dynamic_default if cluster_default else self._dynamic_broker)
        for name, raw in changes.items():
            definition = None if name.startswith(PASS_THROUGH_PREFIXES) else config_def_for(name)
            if definition is None:
                raise unknown_key_error(name, BROKER_CONFIGS, "broker")
            if not definition.dynamic:
                # Kafka's DynamicBrokerConfig wording, which clients show.
                raise NotDynamicError(f"Cannot update these configs dynamically: [{name}]")
            if raw is None:
                current.pop(name, None)
                continue
            value = definition.parse(raw)
            if name in _THREAD_POOL_CONFIGS:
                self._check_thread_pool_change(name, value)
            current[name] = raw
        if cluster_default:
            updated = BrokerConfig(self._static, self._dev_defaults, self._dynamic_broker, current)
        else:
            updated = BrokerConfig(self._static, self._dev_defaults, current, self._dynamic_default)
        updated._validate()
        return updated

    def _check_thread_pool_change(self, name: str, new_count: int) -> None:
        # Kafka's DynamicThreadPool: resize by at most half down or double up at a time.
        old_count = self.value(name)
        if new_count < old_count / 2:
            raise ConfigError(f"{name}: invalid value '{new_count}': must be at least half "
                              f"the current value {old_count}")
        if new_count > old_count * 2:
            raise ConfigError(f"{name}: invalid value '{new_count}': must not be greater than "
                              f"double the current value {old_count}")

    def dynamic(self) -> dict[str, str]:
        """The per-broker dynamic overrides, to persist."""
        return dict(self._dynamic_broker)

    def dynamic_defaults(self) -> dict[str, str]:
        """The cluster-wide dynamic default overrides, to persist."""
        return dict(self._dynamic_default)

    # -- cross-config checks --------------------------------------------------------------------

    def _validate(self) -> None:
        node_id = self._own_value("node.id")
        broker_id = self._own_value("broker.id")
        if node_id != broker_id:
            raise ConfigError(f"node.id: value {node_id} differs from broker.id {broker_id}; "
                              "they are synonyms and must be equal")
        if node_id < 0:
            raise ConfigError("node.id: not set; give this broker an id with node.id "
                              "(or broker.id) >= 0")
        if self.value("log.retention.ms") == 0:
            raise ConfigError("log.retention.ms: invalid value 0: retention must be -1 "
                              "(unlimited) or at least 1 ms")
        if not self.log_dirs:
            raise ConfigError("log.dirs: no log directory given")
        self._listener_endpoints("listeners", required=True)
        advertised_names = {name for name, _ in self._listener_endpoints("advertised.listeners")}
        listener_names = {name for name, _ in self._listener_endpoints("listeners")}
        for name in sorted(advertised_names - listener_names):
            raise ConfigError(f"advertised.listeners: listener {name} is not in listeners")
        for _, endpoint in self._listener_endpoints("advertised.listeners"):
            if endpoint.host in ("0.0.0.0", "[::]"):
                raise ConfigError("advertised.listeners: cannot advertise the non-routable "
                                  f"address {endpoint.host}")
        self.metrics_listen  # parses it
        for topic_name, topic_def in TOPIC_CONFIGS.items():
            # Topic defaults derive from broker configs: each must be valid for the topic too.
            synonyms = topic_def.broker_synonyms
            if not synonyms or topic_def.validator is None:
                continue
            value = self.value(synonyms[0])
            if value is not None and (reason := topic_def.validator.check(value)):
                raise ConfigError(f"{synonyms[0]}: invalid value {value!r} as default of topic "
                                  f"config {topic_name}: {reason}")

    def _listener_endpoints(self, name: str, required: bool = False
                            ) -> list[tuple[str, Endpoint]]:
        """(listener name, endpoint) pairs Gregor serves: controller listeners skipped,
        each PLAINTEXT by listener.security.protocol.map."""
        text = self._own_value(name)
        if text is None or text.strip() == "":
            if required:
                raise ConfigError(f"{name}: no listener given")
            return []
        protocol_map = {}
        for pair in self.value("listener.security.protocol.map").split(","):
            if pair.strip():
                listener, protocol = pair.strip().split(":")
                protocol_map[listener.upper()] = protocol.upper()
        controller_names = {item.strip().upper()
                            for item in (self.value("controller.listener.names") or "").split(",")
                            if item.strip()}
        result: list[tuple[str, Endpoint]] = []
        seen: set[str] = set()
        for item in re.split(r"\s*,\s*", text.strip()):
            match = _LISTENER.fullmatch(item)
            if match is None:
                raise ConfigError(f"{name}: invalid listener {item!r}: expected NAME://HOST:PORT")
            listener, host, port = match.group(1).upper(), match.group(2), int(match.group(3))
            if listener in seen:
                raise ConfigError(f"{name}: listener {listener} appears more than once")
            seen.add(listener)
            if port > 65535:
                raise ConfigError(f"{name}: invalid port {port} in {item!r}")
            if listener in controller_names:
                continue  # a KRaft controller listener; Gregor has no controller
            protocol = protocol_map.get(listener)
            if protocol is None:
                raise ConfigError(f"{name}: listener {listener} has no security protocol in "
                                  "listener.security.protocol.map")
            if protocol != "PLAINTEXT":
                raise ConfigError(f"{name}: listener {listener} uses {protocol}; Gregor serves "
                                  "PLAINTEXT only")
            result.append((listener, Endpoint(host.strip("[]"), port)))
        if required and not result:
            raise ConfigError(f"{name}: no PLAINTEXT broker listener (only controller ones)")
        return result

    # -- convenience ---------------------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self.value("node.id")

    @property
    def listeners(self) -> list[Endpoint]:
        """Where to listen, in order; host "" means every interface, port 0 any free port."""
        return [endpoint for _, endpoint in self._listener_endpoints("listeners")]

    @property
    def advertised_listeners(self) -> list[Endpoint]:
        """advertised.listeners, or [] when unset (advertise the bound listener)."""
        return [endpoint for _, endpoint in self._listener_endpoints("advertised.listeners")]

    @property
    def log_dirs(self) -> list[Path]:
        text = self.value("log.dirs") or ""
        return [Path(item) for item in re.split(r"\s*,\s*", text.strip()) if item]

    @property
    def metrics_listen(self) -> tuple[str, int] | None:
        text = self.value("metrics.listen").strip()
        if not text:
            return None
        host, _, port = text.rpartition(":")
        if not 0 <= int(port) <= 65535:
            raise ConfigError(f"metrics.listen: invalid port {port} in {text!r}")
        return host.strip("[]"), int(port)

    @property
    def num_partitions(self) -> int:
        return self.value("num.partitions")

    @property
    def default_replication_factor(self) -> int:
        return self.value("default.replication.factor")

    @property
    def auto_create_topics_enable(self) -> bool:
        return self.value("auto.create.topics.enable")

    @property
    def delete_topic_enable(self) -> bool:
        return self.value("delete.topic.enable")

    @property
    def socket_request_max_bytes(self) -> int:
        return self.value("socket.request.max.bytes")

    @property
    def message_max_bytes(self) -> int:
        return self.value("message.max.bytes")

    @property
    def max_connections(self) -> int:
        return self.value("max.connections")

    @property
    def log_retention_check_interval_ms(self) -> int:
        return self.value("log.retention.check.interval.ms")

    @property
    def log_flush_offset_checkpoint_interval_ms(self) -> int:
        return self.value("log.flush.offset.checkpoint.interval.ms")

    @property
    def offsets_topic_replication_factor(self) -> int:
        return self.value("offsets.topic.replication.factor")

    @property
    def offsets_topic_num_partitions(self) -> int:
        return self.value("offsets.topic.num.partitions")

    @property
    def transaction_state_log_replication_factor(self) -> int:
        return self.value("transaction.state.log.replication.factor")

    @property
    def group_initial_rebalance_delay_ms(self) -> int:
        return self.value("group.initial.rebalance.delay.ms")

    @property
    def min_insync_replicas(self) -> int:
        return self.value("min.insync.replicas")

    @property
    def producer_id_expiration_ms(self) -> int:
        return self.value("producer.id.expiration.ms")

    @property
    def zookeeper_connect(self) -> str | None:
        return self.value("zookeeper.connect")

    @property
    def broker_rack(self) -> str | None:
        return self.value("broker.rack")

    @property
    def cluster_id(self) -> str | None:
        return self.value("cluster.id")

    # -- DescribeConfigs ----------------------------------------------------------------------------

    def synonym_entries(self, names: tuple[str, ...], sensitive: bool
                        ) -> list[tuple[str, str | None, ConfigSource]]:
        """Kafka's ConfigHelper.configSynonyms: every layer in precedence order, and in each
        layer every name of the group that it sets (defaults only where not null)."""
        entries: list[tuple[str, str | None, ConfigSource]] = []
        for layer, source in self._layers:
            for name in names:
                if name in layer:
                    entries.append((name, None if sensitive else layer[name], source))
        for name in names:
            if name in self._dev_defaults:
                continue  # already listed as the dev default
            definition = config_def_for(name)
            if definition is not None and definition.default is not None:
                rendered = render_value(definition.config_type, definition.default)
                entries.append((name, None if sensitive else rendered,
                                ConfigSource.DEFAULT_CONFIG))
        return entries

    def describe_entry(self, name: str) -> ConfigEntry:
        definition = self._definition(name)
        sensitive = definition.sensitive
        group = synonym_group(name)
        synonyms = self.synonym_entries(group, sensitive)
        while synonyms and synonyms[0][0] != name:  # Kafka drops higher-precedence synonyms
            synonyms.pop(0)
        value = None if sensitive else render_value(definition.config_type,
                                                    self._own_value(name))
        return ConfigEntry(
            name=name, value=value,
            source=synonyms[0][2] if synonyms else ConfigSource.DEFAULT_CONFIG,
            read_only=not definition.dynamic, is_sensitive=sensitive, synonyms=synonyms,
            config_type=definition.config_type, documentation=definition.doc)

    def describe(self) -> list[ConfigEntry]:
        """Every current broker config (Kafka 4.0's, and any other key that is set), by name."""
        names = {name for name, definition in BROKER_CONFIGS.items()
                 if not definition.legacy and not definition.internal}
        names.update(name for layer, _ in self._layers for name in layer
                     if not name.startswith(PASS_THROUGH_PREFIXES))
        return [self.describe_entry(name) for name in sorted(names)]
