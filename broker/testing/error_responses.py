"""The answer a broker gives when it refuses a whole request with one error code, built
from the request, for the fault proxy's injected errors (like librdkafka's mock cluster):
every partition, group or topic the request names gets the code; an API whose answer has
one top-level error code gets it there."""
from __future__ import annotations

from typing import Any, Callable

from wire.api_keys import ApiKey
from wire.messages import RESPONSES


def _produce(request: Any, version: int, code: int) -> dict:
    return {"responses": [
        {"name": topic.name, "partition_responses": [
            {"index": partition.index, "error_code": code, "base_offset": -1,
             "log_append_time_ms": -1, "log_start_offset": -1}
            for partition in topic.partition_data]}
        for topic in request.topic_data]}


def _fetch(request: Any, version: int, code: int) -> dict:
    return {"session_id": 0, "responses": [
        {"topic": topic.topic, "topic_id": topic.topic_id, "partitions": [
            {"partition_index": partition.partition, "error_code": code,
             "high_watermark": -1, "last_stable_offset": -1, "log_start_offset": -1,
             "preferred_read_replica": -1, "records": None}
            for partition in topic.partitions]}
        for topic in request.topics]}


def _list_offsets(request: Any, version: int, code: int) -> dict:
    return {"topics": [
        {"name": topic.name, "partitions": [
            {"partition_index": partition.partition_index, "error_code": code,
             "timestamp": -1, "offset": -1, "leader_epoch": -1}
            for partition in topic.partitions]}
        for topic in request.topics]}


def _offset_commit(request: Any, version: int, code: int) -> dict:
    return {"topics": [
        {"name": topic.name, "partitions": [
            {"partition_index": partition.partition_index, "error_code": code}
            for partition in topic.partitions]}
        for topic in request.topics]}


def _offset_fetch(request: Any, version: int, code: int) -> dict:
    if version >= 8:
        return {"groups": [{"group_id": group.group_id, "topics": [], "error_code": code}
                           for group in request.groups]}
    topics = [{"name": topic.name, "partitions": [
        {"partition_index": index, "committed_offset": -1, "metadata": "", "error_code": code}
        for index in topic.partition_indexes]} for topic in request.topics or []]
    return {"topics": topics, "error_code": code}


def _find_coordinator(request: Any, version: int, code: int) -> dict:
    if version < 4:
        return {"error_code": code, "node_id": -1, "host": "", "port": -1}
    return {"coordinators": [{"key": key, "node_id": -1, "host": "", "port": -1,
                              "error_code": code} for key in request.coordinator_keys]}


def _create_topics(request: Any, version: int, code: int) -> dict:
    return {"topics": [{"name": topic.name, "error_code": code, "num_partitions": -1,
                        "replication_factor": -1, "configs": None}
                       for topic in request.topics]}


def _delete_topics(request: Any, version: int, code: int) -> dict:
    names = ([topic.name for topic in request.topics] if version >= 6
             else list(request.topic_names))
    return {"responses": [{"name": name, "error_code": code} for name in names]}


def _describe_groups(request: Any, version: int, code: int) -> dict:
    return {"groups": [{"group_id": group, "error_code": code, "group_state": "",
                        "protocol_type": "", "protocol_data": "", "members": []}
                       for group in request.groups]}


_BUILDERS: dict[int, Callable[[Any, int, int], dict]] = {
    ApiKey.PRODUCE: _produce,
    ApiKey.FETCH: _fetch,
    ApiKey.LIST_OFFSETS: _list_offsets,
    ApiKey.OFFSET_COMMIT: _offset_commit,
    ApiKey.TXN_OFFSET_COMMIT: _offset_commit,
    ApiKey.OFFSET_FETCH: _offset_fetch,
    ApiKey.FIND_COORDINATOR: _find_coordinator,
    ApiKey.CREATE_TOPICS: _create_topics,
    ApiKey.DELETE_TOPICS: _delete_topics,
    ApiKey.DESCRIBE_GROUPS: _describe_groups,
}


def has_top_level_error(api_key: int, version: int) -> bool:
    response = RESPONSES[api_key, version]
    return any(field.name == "error_code" for field in response.fields)


def can_inject(api_key: int, versions: range) -> bool:
    """Whether an error can be injected into every given version's answer."""
    return api_key in _BUILDERS or all(has_top_level_error(api_key, version)
                                       for version in versions)


def error_response(api_key: int, version: int, request: Any, code: int) -> dict:
    """The response body refusing `request` with `code`. ValueError for an API whose
    answer has no place for one code (Metadata: its errors are per topic, and a
    Metadata answer without brokers would make a client forget the cluster)."""
    builder = _BUILDERS.get(api_key)
    if builder is not None:
        body = builder(request, version, code)
    elif has_top_level_error(api_key, version):
        body = {"error_code": code}
    else:
        raise ValueError(f"{ApiKey(api_key).name} v{version} has no error code to inject")
    return {"throttle_time_ms": 0, **body}
