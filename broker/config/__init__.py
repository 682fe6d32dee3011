"""Broker and topic configuration with Kafka's names, types, defaults and validation."""

from broker.config.broker_config import (
    DEV_DEFAULTS,
    BrokerConfig,
    ConfigEntry,
    ConfigSource,
    Endpoint,
    load_broker_config,
)
from broker.config.definitions import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    BrokerConfigDef,
    ConfigError,
    NotDynamicError,
    ConfigType,
    TopicConfigDef,
)
from broker.config.properties import parse_properties
from broker.config.topic import (
    describe_topic_configs,
    topic_log_config,
    topic_log_config_kwargs,
    validate_topic_configs,
)

__all__ = [
    "BROKER_CONFIGS",
    "DEV_DEFAULTS",
    "TOPIC_CONFIGS",
    "BrokerConfig",
    "BrokerConfigDef",
    "ConfigEntry",
    "ConfigError",
    "NotDynamicError",
    "ConfigSource",
    "ConfigType",
    "Endpoint",
    "TopicConfigDef",
    "describe_topic_configs",
    "load_broker_config",
    "parse_properties",
    "topic_log_config",
    "topic_log_config_kwargs",
    "validate_topic_configs",
]
