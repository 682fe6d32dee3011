"""Topic configs: validation, the storage LogConfig they make, and DescribeConfigs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker.config.broker_config import BrokerConfig, ConfigEntry, ConfigSource
from broker.config.definitions import (
    TOPIC_CONFIGS,
    ConfigError,
    TopicConfigDef,
    Value,
    render_value,
    unknown_key_error,
)

if TYPE_CHECKING:
    from storage.log import LogConfig

# storage.log.LogConfig field -> the topic config it comes from.
LOG_CONFIG_FIELDS = {
    "segment_bytes": "segment.bytes",
    "segment_ms": "segment.ms",
    "segment_jitter_ms": "segment.jitter.ms",
    "segment_index_bytes": "segment.index.bytes",
    "index_interval_bytes": "index.interval.bytes",
    "retention_ms": "retention.ms",
    "retention_bytes": "retention.bytes",
    "max_message_bytes": "max.message.bytes",
    "message_timestamp_type": "message.timestamp.type",
    "flush_messages": "flush.messages",
    "flush_ms": "flush.ms",
    "file_delete_delay_ms": "file.delete.delay.ms",
    "preallocate": "preallocate",
    "message_timestamp_before_max_ms": "message.timestamp.before.max.ms",
    "message_timestamp_after_max_ms": "message.timestamp.after.max.ms",
    "min_cleanable_dirty_ratio": "min.cleanable.dirty.ratio",
    "delete_retention_ms": "delete.retention.ms",
    "min_compaction_lag_ms": "min.compaction.lag.ms",
}


def _topic_def(name: str) -> TopicConfigDef:
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise unknown_key_error(name, TOPIC_CONFIGS, "topic")
    return definition


def validate_topic_configs(configs: dict[str, str | None]) -> dict[str, str]:
    """Checks topic config overrides (CreateTopics, AlterConfigs); returns them to store.
    ConfigError names an unknown key, a null value or a bad value."""
    parsed: dict[str, Value] = {}
    for name, raw in configs.items():
        definition = _topic_def(name)
        if raw is None:
            raise ConfigError(f"{name}: null value not supported for topic configs")
        parsed[name] = definition.parse(raw)
    minimum = parsed.get("min.compaction.lag.ms")
    maximum = parsed.get("max.compaction.lag.ms")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ConfigError(f"min.compaction.lag.ms: value {minimum} is greater than "
                          f"max.compaction.lag.ms {maximum}")
    return {name: raw for name, raw in configs.items()}


def topic_value(name: str, overrides: dict[str, str], broker: BrokerConfig) -> Value:
    """A topic config's effective value: the override, else its broker synonym, else
    Kafka's topic default."""
    definition = _topic_def(name)
    if name in overrides:
        return definition.parse(overrides[name])
    if definition.broker_synonyms:
        value = broker.value(definition.broker_synonyms[0])
        if value is not None:
            return value
    return definition.default


def topic_log_config_kwargs(overrides: dict[str, str], broker: BrokerConfig) -> dict[str, Any]:
    """The keyword arguments of storage.log.LogConfig for a topic."""
    kwargs = {field: topic_value(name, overrides, broker)
              for field, name in LOG_CONFIG_FIELDS.items()}
    cleanup_policy = topic_value("cleanup.policy", overrides, broker)
    kwargs["cleanup_policy_compact"] = "compact" in cleanup_policy
    if "delete" not in cleanup_policy:
        # cleanup.policy=compact alone: Kafka never deletes segments by time or size.
        kwargs["retention_ms"] = -1
        kwargs["retention_bytes"] = -1
    return kwargs


def topic_log_config(overrides: dict[str, str], broker: BrokerConfig) -> LogConfig:
    """The storage LogConfig of a topic with these overrides on this broker."""
    from storage.log import LogConfig  # imported here so a config error never waits on storage

    return LogConfig(**topic_log_config_kwargs(overrides, broker))


def describe_topic_configs(overrides: dict[str, str], broker: BrokerConfig) -> list[ConfigEntry]:
    """Every topic config, by name, as Kafka's DescribeConfigs shows it: the source is
    TOPIC_CONFIG for an override, else that of the broker synonym deciding the value;
    synonyms list the override, then the broker synonyms layer by layer."""
    entries = []
    for name in sorted(TOPIC_CONFIGS):
        definition = TOPIC_CONFIGS[name]
        if definition.legacy and name not in overrides:
            continue
        synonyms = broker.synonym_entries(definition.broker_synonyms, definition.sensitive)
        if name in overrides:
            synonyms.insert(0, (name, overrides[name], ConfigSource.TOPIC_CONFIG))
        value = render_value(definition.config_type, topic_value(name, overrides, broker))
        entries.append(ConfigEntry(
            name=name, value=None if definition.sensitive else value,
            source=synonyms[0][2] if synonyms else ConfigSource.DEFAULT_CONFIG,
            read_only=False, is_sensitive=definition.sensitive, synonyms=synonyms,
            config_type=definition.config_type, documentation=definition.doc))
    return entries
