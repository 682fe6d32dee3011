"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics, this broker and
its loggers, with Kafka's names, defaults, sources and error codes."""
from __future__ import annotations

import logging
from enum import IntEnum

from broker.config import (ConfigError, ConfigSource, ConfigType, NotDynamicError,
                           describe_topic_configs)
from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError


class ResourceType(IntEnum):
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8


class AlterOperation(IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


# -- DescribeConfigs ----------------------------------------------------------------

@handles(ApiKey.DESCRIBE_CONFIGS, versions=range(0, 5))
async def describe_configs(ctx, request) -> dict:
    version = ctx.header.api_version
    include_synonyms = version >= 1 and request.include_synonyms
    include_documentation = version >= 3 and request.include_documentation
    results = []
    for resource in request.resources:
        result = {"resource_type": resource.resource_type, "resource_name": resource.resource_name,
                  "error_code": ErrorCode.NONE, "error_message": None, "configs": []}
        try:
            entries = _entries(ctx.broker, resource.resource_type, resource.resource_name)
            keys = resource.configuration_keys
            if keys is not None:
                wanted = set(keys)
                entries = [entry for entry in entries if entry.name in wanted]
            result["configs"] = [_describe_entry(entry, include_synonyms, include_documentation)
                                 for entry in entries]
        except KafkaError as exc:
            result.update(error_code=exc.code, error_message=exc.message or None)
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}


def _entries(broker, resource_type: int, name: str) -> list:
    if resource_type == ResourceType.TOPIC:
        topic = _topic(broker, name)
        return describe_topic_configs(topic.configs, broker.config)
    if resource_type == ResourceType.BROKER:
        if name == "":
            # The cluster-wide default resource lists only dynamic defaults; a single
            # broker keeps its dynamic configs per broker, so there are none.
            return []
        _check_broker_name(broker, name)
        return broker.config.describe()
    if resource_type == ResourceType.BROKER_LOGGER:
        _check_broker_name(broker, name)
        return [_LoggerEntry(logger_name, level) for logger_name, level in _loggers().items()]
    raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type {resource_type}")


def _describe_entry(entry, include_synonyms: bool, include_documentation: bool) -> dict:
    return {
        "name": entry.name,
        "value": None if entry.is_sensitive else entry.value,
        "read_only": entry.read_only,
        "is_default": entry.source == ConfigSource.DEFAULT_CONFIG,
        "config_source": entry.source,
        "is_sensitive": entry.is_sensitive,
        "synonyms": [{"name": name, "value": value, "source": source}
                     for name, value, source in entry.synonyms] if include_synonyms else [],
        "config_type": entry.config_type,
        "documentation": entry.documentation if include_documentation else None,
    }


def _topic(broker, name: str):
    topic = broker.metadata.topics.get(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist")
    return topic


def _check_broker_name(broker, name: str) -> None:
    if name != str(broker.node_id):
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"Unexpected broker id, expected {broker.node_id}, but received {name}")


# -- loggers (Kafka's BROKER_LOGGER resource, over Python's logging) -----------------

_LOG4J_TO_PYTHON = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
                    "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL,
                    "OFF": logging.CRITICAL + 10}
_PYTHON_TO_LOG4J = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
                    logging.ERROR: "ERROR", logging.CRITICAL: "FATAL", logging.CRITICAL + 10: "OFF"}
ROOT_LOGGER = "root"
_OUR_LOGGERS = ("wire", "storage", "coordinator", "broker", "gregor")


class _LoggerEntry:
    def __init__(self, name: str, level: str) -> None:
        self.name = name
        self.value = level
        self.source = ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG
        self.read_only = False
        self.is_sensitive = False
        self.synonyms: list = []
        self.config_type = ConfigType.STRING
        self.documentation = None


def _loggers() -> dict[str, str]:
    names = {ROOT_LOGGER, *_OUR_LOGGERS}
    names.update(name for name in logging.Logger.manager.loggerDict
                 if name.split(".")[0] in _OUR_LOGGERS)
    return {name: _PYTHON_TO_LOG4J.get(_logger(name).getEffectiveLevel(), "INFO")
            for name in sorted(names)}


def _logger(name: str) -> logging.Logger:
    return logging.getLogger() if name == ROOT_LOGGER else logging.getLogger(name)


def _alter_loggers(changes: list[tuple[str, int, str | None]], validate_only: bool) -> None:
    known = _loggers()
    updates = []
    for name, operation, value in changes:
        if name not in known:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Logger {name} does not exist!")
        if operation == AlterOperation.SET:
            if value not in _LOG4J_TO_PYTHON:
                raise KafkaError(ErrorCode.INVALID_CONFIG,
                                 f"Cannot set the log level of {name} to {value} as it is not a "
                                 f"supported log level. Valid log levels are "
                                 f"{', '.join(_LOG4J_TO_PYTHON)}")
            updates.append((name, _LOG4J_TO_PYTHON[value]))
        elif operation == AlterOperation.DELETE:
            if name == ROOT_LOGGER:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 f"Removing the log level of the {ROOT_LOGGER} logger is not allowed")
            updates.append((name, logging.NOTSET))
        else:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"{AlterOperation(operation).name} operation is not allowed for "
                             "the BROKER_LOGGER resource")
    if not validate_only:
        for name, level in updates:
            _logger(name).setLevel(level)


# -- AlterConfigs ----------------------------------------------------------------

@handles(ApiKey.ALTER_CONFIGS, versions=range(0, 3))
async def alter_configs(ctx, request) -> dict:
    responses = []
    for resource in request.resources:
        configs = {config.name: config.value for config in resource.configs}
        try:
            if len(configs) != len(resource.configs):
                raise KafkaError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
            _replace(ctx.broker, resource.resource_type, resource.resource_name, configs,
                     request.validate_only)
            responses.append(_alter_response(resource, ErrorCode.NONE, None))
        except KafkaError as exc:
            responses.append(_alter_response(resource, exc.code, exc.message))
    return {"throttle_time_ms": 0, "responses": responses}


def _replace(broker, resource_type: int, name: str, configs: dict[str, str | None],
             validate_only: bool) -> None:
    """AlterConfigs replaces the whole set of overrides of a resource."""
    null_keys = [key for key, value in configs.items() if value is None]
    if null_keys:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"Null value not supported for : {null_keys[0]}")
    if resource_type == ResourceType.TOPIC:
        _topic(broker, name)
        validated = broker.check_topic_configs(configs)
        if not validate_only:
            broker.alter_topic_configs(name, validated)
    elif resource_type == ResourceType.BROKER:
        _set_broker_configs(broker, name, configs, validate_only)
    elif resource_type == ResourceType.BROKER_LOGGER:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         "AlterConfigs is not supported for BROKER_LOGGER; use "
                         "IncrementalAlterConfigs")
    else:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type {resource_type}")


def _set_broker_configs(broker, name: str, dynamic: dict[str, str], validate_only: bool) -> None:
    if name != "":
        _check_broker_name(broker, name)
    changes: dict[str, str | None] = {key: None for key in broker.config.dynamic()}
    changes.update(dynamic)
    try:
        broker.config.with_dynamic(changes)
    except NotDynamicError as exc:
        raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
    except ConfigError as exc:
        raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from exc
    if not validate_only:
        broker.alter_broker_configs(dynamic)


def _alter_response(resource, error_code: ErrorCode, message: str | None) -> dict:
    return {"error_code": error_code, "error_message": message or None,
            "resource_type": resource.resource_type, "resource_name": resource.resource_name}


# -- IncrementalAlterConfigs ------------------------------------------------------

@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS, versions=range(0, 2))
async def incremental_alter_configs(ctx, request) -> dict:
    broker = ctx.broker
    responses = []
    for resource in request.resources:
        try:
            names = [config.name for config in resource.configs]
            if len(set(names)) != len(names):
                raise KafkaError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
            changes = [(config.name, config.config_operation, config.value)
                       for config in resource.configs]
            _apply_incremental(broker, resource.resource_type, resource.resource_name, changes,
                               request.validate_only)
            responses.append(_alter_response(resource, ErrorCode.NONE, None))
        except KafkaError as exc:
            responses.append(_alter_response(resource, exc.code, exc.message))
    return {"throttle_time_ms": 0, "responses": responses}


def _apply_incremental(broker, resource_type: int, name: str,
                       changes: list[tuple[str, int, str | None]], validate_only: bool) -> None:
    if resource_type == ResourceType.BROKER_LOGGER:
        _check_broker_name(broker, name)
        _alter_loggers(changes, validate_only)
        return
    if resource_type == ResourceType.TOPIC:
        current = dict(_topic(broker, name).configs)
        entries = {entry.name: entry for entry in describe_topic_configs(current, broker.config)}
    elif resource_type == ResourceType.BROKER:
        if name != "":
            _check_broker_name(broker, name)
        current = dict(broker.config.dynamic())
        entries = {entry.name: entry for entry in broker.config.describe()}
    else:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type {resource_type}")
    updated = _incremental(current, entries, changes)
    if resource_type == ResourceType.TOPIC:
        validated = broker.check_topic_configs(updated)
        if not validate_only:
            broker.alter_topic_configs(name, validated)
    else:
        _set_broker_configs(broker, name, updated, validate_only)


def _incremental(current: dict[str, str], entries: dict, changes) -> dict[str, str]:
    updated = dict(current)
    for key, operation, value in changes:
        entry = entries.get(key)
        if operation == AlterOperation.SET:
            if value is None:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 f"Null value not supported for : {key}")
            updated[key] = value
        elif operation == AlterOperation.DELETE:
            updated.pop(key, None)
        elif operation in (AlterOperation.APPEND, AlterOperation.SUBTRACT):
            if entry is None or entry.config_type != ConfigType.LIST:
                raise KafkaError(ErrorCode.INVALID_CONFIG,
                                 f"Config value append is not allowed for config key: {key}")
            base = updated.get(key, entry.value or "")
            items = [item for item in base.split(",") if item]
            given = [item for item in (value or "").split(",") if item]
            if operation == AlterOperation.APPEND:
                items += [item for item in given if item not in items]
            else:
                items = [item for item in items if item not in given]
            updated[key] = ",".join(items)
        else:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown alter operation {operation}")
    return updated
