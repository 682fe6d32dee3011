"""The broker in-process over a loopback socket, driven with our own wire encoder so
each request version and field is exact."""
from __future__ import annotations

import struct
import uuid

import crc32c
import pytest
import trio

from broker.handlers import supported_versions
from tests.broker.conftest import TIMEOUT_S, Client
from wire.api_keys import ApiKey
from wire.compression import Compression
from wire.errors import ErrorCode
from wire.protocol import encode_request
from wire.records import build_batch, decode_records, read_batch_header


async def create_topic(client, name: str, partitions: int = 1, configs: dict | None = None):
    response = await client.call(ApiKey.CREATE_TOPICS, 7, {
        "topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                    "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
        "timeout_ms": 1000})
    assert response.topics[0].error_code == ErrorCode.NONE, response
    return response.topics[0]


def records(*values: bytes, timestamp_ms: int = 1_700_000_000_000, **kwargs) -> bytes:
    return build_batch([(b"k", value, [("h", b"v")], timestamp_ms + i)
                        for i, value in enumerate(values)], **kwargs)


async def produce(client, topic: str, partition: int, batch: bytes, version: int = 9, acks=-1):
    response = await client.call(ApiKey.PRODUCE, version, {
        "acks": acks, "timeout_ms": 1000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    return response.responses[0].partition_responses[0]


async def fetch(client, topic: str, partition: int, offset: int, *, version: int = 12,
                max_wait_ms: int = 0, min_bytes: int = 0, max_bytes: int = 1 << 20,
                partition_max_bytes: int = 1 << 20, **extra):
    topic_id = extra.pop("topic_id", None)
    body = {"replica_id": -1, "max_wait_ms": max_wait_ms, "min_bytes": min_bytes,
            "max_bytes": max_bytes, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": topic, "topic_id": topic_id,
                        "partitions": [{"partition": partition, "fetch_offset": offset,
                                        "partition_max_bytes": partition_max_bytes}]}]}
    body.update(extra)
    return await client.call(ApiKey.FETCH, version, body)


async def test_api_versions_lists_exactly_the_registered_handlers(client):
    response = await client.call(ApiKey.API_VERSIONS, 3, {"client_software_name": "t",
                                                          "client_software_version": "1"})
    assert response.error_code == ErrorCode.NONE
    assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == \
        supported_versions()


async def test_api_versions_newer_than_ours_gets_a_v0_answer_with_our_versions(client):
    # KIP-511: the header of an unknown ApiVersions version is read as flexible (v2).
    frame = encode_request(ApiKey.API_VERSIONS, 3, 77, "future", {})
    frame = frame[:6] + struct.pack(">h", 9) + frame[8:]
    await client.stream.send_all(frame)
    correlation_id, response = await client.receive(ApiKey.API_VERSIONS, 0)
    assert correlation_id == 77
    assert response.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == \
        supported_versions()


async def test_metadata_lists_topics_and_auto_creates_with_num_partitions(client, broker):
    await create_topic(client, "existing", 3)
    everything = await client.call(ApiKey.METADATA, 1, {"topics": None})
    assert [(t.name, len(t.partitions)) for t in everything.topics] == [("existing", 3)]
    assert everything.controller_id == broker.node_id
    assert [(b.node_id, b.host, b.port) for b in everything.brokers] == \
        [(broker.node_id, "127.0.0.1", broker.test_address[1])]

    refused = await client.call(ApiKey.METADATA, 12, {
        "topics": [{"name": "fresh", "topic_id": uuid.UUID(int=0)}],
        "allow_auto_topic_creation": False})
    assert refused.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    created = await client.call(ApiKey.METADATA, 12, {
        "topics": [{"name": "fresh", "topic_id": uuid.UUID(int=0)}],
        "allow_auto_topic_creation": True})
    topic = created.topics[0]
    assert (topic.error_code, topic.name, len(topic.partitions)) == (ErrorCode.NONE, "fresh", 2)
    assert topic.topic_id == broker.metadata.topics["fresh"].topic_id
    assert [(p.partition_index, p.leader_id, p.leader_epoch, list(p.replica_nodes),
             list(p.isr_nodes)) for p in topic.partitions] == \
        [(0, broker.node_id, 0, [broker.node_id], [broker.node_id]),
         (1, broker.node_id, 0, [broker.node_id], [broker.node_id])]
    invalid = await client.call(ApiKey.METADATA, 12, {
        "topics": [{"name": "bad name!", "topic_id": uuid.UUID(int=0)}],
        "allow_auto_topic_creation": True})
    assert invalid.topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION


async def test_produce_then_fetch_returns_the_stored_batch_with_offsets_assigned(client):
    await create_topic(client, "orders")
    first = await produce(client, "orders", 0, records(b"a", b"b"))
    second = await produce(client, "orders", 0, records(b"c"))
    assert (first.error_code, first.base_offset, first.log_start_offset) == (0, 0, 0)
    assert (second.error_code, second.base_offset) == (0, 2)

    response = await fetch(client, "orders", 0, 0)
    partition = response.responses[0].partitions[0]
    assert (partition.error_code, partition.high_watermark, partition.last_stable_offset,
            partition.log_start_offset) == (0, 3, 3, 0)
    data = partition.records
    expected_first = bytearray(records(b"a", b"b"))
    struct.pack_into(">i", expected_first, 12, 0)  # partition leader epoch 0 stamped on append
    assert data[:len(expected_first)] == bytes(expected_first)
    second_header = read_batch_header(data, len(expected_first))
    assert (second_header.base_offset, second_header.records_count) == (2, 1)
    assert response.session_id == 0


async def test_fetch_by_topic_id_from_v13(client):
    created = await create_topic(client, "by-id")
    await produce(client, "by-id", 0, records(b"x"))
    response = await fetch(client, "", 0, 0, version=13, topic_id=created.topic_id)
    topic = response.responses[0]
    assert (topic.topic_id, topic.partitions[0].high_watermark) == (created.topic_id, 1)
    unknown = await fetch(client, "", 0, 0, version=13, topic_id=uuid.uuid4())
    assert unknown.responses[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_ID


async def test_long_poll_is_woken_by_a_produce(client, broker):
    await create_topic(client, "wake")
    other = Client(await trio.open_tcp_stream(*broker.test_address))
    await client.send(ApiKey.FETCH, 12, {
        "replica_id": -1, "max_wait_ms": 600_000, "min_bytes": 1, "max_bytes": 1 << 20,
        "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": "wake", "partitions": [
            {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    await trio.sleep(0.2)
    await produce(other, "wake", 0, records(b"now"))
    # The fetch may wait 10 minutes; only the produce's wake-up answers it within the bound.
    _, response = await client.receive(ApiKey.FETCH, 12)
    partition = response.responses[0].partitions[0]
    assert (partition.high_watermark, read_batch_header(partition.records).records_count) == (1, 1)
    await other.stream.aclose()


async def test_fetch_max_bytes_still_returns_one_whole_batch(client):
    await create_topic(client, "big")
    await produce(client, "big", 0, records(b"x" * 5000))
    await produce(client, "big", 0, records(b"y" * 5000))
    response = await fetch(client, "big", 0, 0, max_bytes=100, partition_max_bytes=100)
    data = response.responses[0].partitions[0].records
    header = read_batch_header(data)
    assert (len(data), header.base_offset) == (header.size, 0)  # KIP-74: first batch whole


async def test_fetch_out_of_range_and_unknown_partition(client):
    await create_topic(client, "range")
    await produce(client, "range", 0, records(b"a"))
    out = (await fetch(client, "range", 0, 5)).responses[0].partitions[0]
    assert (out.error_code, out.high_watermark, out.log_start_offset) == \
        (ErrorCode.OFFSET_OUT_OF_RANGE, 1, 0)
    unknown = (await fetch(client, "range", 7, 0)).responses[0].partitions[0]
    assert unknown.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_fetch_sessions_are_declined_and_unknown_sessions_refused(client):
    await create_topic(client, "sessions")
    declined = await fetch(client, "sessions", 0, 0, session_id=0, session_epoch=0)
    assert (declined.error_code, declined.session_id) == (ErrorCode.NONE, 0)
    unknown = await fetch(client, "sessions", 0, 0, session_id=1234, session_epoch=3)
    assert (unknown.error_code, list(unknown.responses)) == \
        (ErrorCode.FETCH_SESSION_ID_NOT_FOUND, [])


async def test_leader_epoch_checks_on_fetch(client):
    await create_topic(client, "epochs")
    fenced = await fetch(client, "epochs", 0, 0, version=12)
    assert fenced.responses[0].partitions[0].error_code == ErrorCode.NONE
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1000,
            "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": "epochs", "partitions": [
                {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1000,
                 "current_leader_epoch": 5}]}]}
    response = await client.call(ApiKey.FETCH, 12, body)
    assert response.responses[0].partitions[0].error_code == ErrorCode.UNKNOWN_LEADER_EPOCH


async def test_list_offsets_special_and_by_timestamp(client):
    await create_topic(client, "times")
    await produce(client, "times", 0, records(b"a", b"b", timestamp_ms=1000))  # ts 1000, 1001
    await produce(client, "times", 0, records(b"c", timestamp_ms=5000))        # ts 5000

    async def lookup(timestamp: int):
        response = await client.call(ApiKey.LIST_OFFSETS, 8, {
            "replica_id": -1, "isolation_level": 0,
            "topics": [{"name": "times", "partitions": [
                {"partition_index": 0, "timestamp": timestamp}]}]})
        p = response.topics[0].partitions[0]
        return p.error_code, p.offset, p.timestamp, p.leader_epoch

    assert await lookup(-2) == (0, 0, -1, 0)
    assert await lookup(-1) == (0, 3, -1, 0)
    assert await lookup(-3) == (0, 2, 5000, 0)
    assert await lookup(1001) == (0, 1, 1001, 0)
    assert await lookup(1002) == (0, 2, 5000, 0)
    assert await lookup(6000) == (0, -1, -1, -1)


async def test_delete_records_moves_the_log_start_offset(client):
    await create_topic(client, "trim")
    for value in (b"a", b"b", b"c"):
        await produce(client, "trim", 0, records(value))
    response = await client.call(ApiKey.DELETE_RECORDS, 2, {
        "topics": [{"name": "trim", "partitions": [{"partition_index": 0, "offset": 2}]}],
        "timeout_ms": 1000})
    partition = response.topics[0].partitions[0]
    assert (partition.error_code, partition.low_watermark) == (0, 2)
    fetched = (await fetch(client, "trim", 0, 2)).responses[0].partitions[0]
    assert (fetched.log_start_offset, read_batch_header(fetched.records).base_offset) == (2, 2)
    too_early = (await fetch(client, "trim", 0, 1)).responses[0].partitions[0]
    assert too_early.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    beyond = await client.call(ApiKey.DELETE_RECORDS, 2, {
        "topics": [{"name": "trim", "partitions": [{"partition_index": 0, "offset": 9}]}],
        "timeout_ms": 1000})
    assert beyond.topics[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE


async def test_offset_for_leader_epoch(client):
    await create_topic(client, "olfe")
    await produce(client, "olfe", 0, records(b"a", b"b"))
    response = await client.call(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {
        "replica_id": -1,
        "topics": [{"topic": "olfe", "partitions": [
            {"partition": 0, "current_leader_epoch": 0, "leader_epoch": 0}]}]})
    partition = response.topics[0].partitions[0]
    assert (partition.error_code, partition.leader_epoch, partition.end_offset) == (0, 0, 2)


async def test_idempotent_retry_gets_the_original_offset(client):
    init = await client.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None,
                                                          "transaction_timeout_ms": 60000})
    assert (init.error_code, init.producer_epoch) == (0, 0)
    await create_topic(client, "idem")
    batch = records(b"once", producer_id=init.producer_id, producer_epoch=0, base_sequence=0)
    first = await produce(client, "idem", 0, batch)
    retry = await produce(client, "idem", 0, batch)
    assert (first.base_offset, retry.base_offset, retry.error_code) == (0, 0, 0)
    gap = records(b"gap", producer_id=init.producer_id, producer_epoch=0, base_sequence=5)
    assert (await produce(client, "idem", 0, gap)).error_code == \
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    hw = (await fetch(client, "idem", 0, 0)).responses[0].partitions[0].high_watermark
    assert hw == 1


async def test_produce_errors_per_partition(client):
    await create_topic(client, "limits", configs={"max.message.bytes": "2000"})
    too_big = await produce(client, "limits", 0, records(b"x" * 3000))
    assert too_big.error_code == ErrorCode.MESSAGE_TOO_LARGE
    corrupt = bytearray(records(b"abc"))
    corrupt[-1] ^= 0xFF
    assert (await produce(client, "limits", 0, bytes(corrupt))).error_code == \
        ErrorCode.CORRUPT_MESSAGE
    assert (await produce(client, "nope", 0, records(b"a"))).error_code == \
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert (await produce(client, "limits", 0, records(b"a"), acks=2)).error_code == \
        ErrorCode.INVALID_REQUIRED_ACKS


async def test_acks_zero_gets_no_response_but_is_stored(client):
    await create_topic(client, "fire")
    await client.send(ApiKey.PRODUCE, 9, {
        "acks": 0, "timeout_ms": 1000,
        "topic_data": [{"name": "fire", "partition_data": [{"index": 0,
                                                            "records": records(b"a")}]}]})
    # The next response on the connection is the fetch's: nothing was sent for acks=0.
    partition = (await fetch(client, "fire", 0, 0)).responses[0].partitions[0]
    assert partition.high_watermark == 1


async def test_a_failed_acks_zero_produce_closes_the_connection(client):
    """Kafka's answer to an acks=0 produce that failed: no response, the connection
    closed, so the client notices and refreshes its metadata."""
    await client.send(ApiKey.PRODUCE, 9, {
        "acks": 0, "timeout_ms": 1000,
        "topic_data": [{"name": "nowhere", "partition_data": [{"index": 0,
                                                               "records": records(b"a")}]}]})
    with trio.fail_after(TIMEOUT_S):
        assert await client.stream.receive_some(1024) == b""


async def test_create_topics_validation(client, broker):
    async def create(name, partitions=1, replication=1, validate_only=False, configs=()):
        response = await client.call(ApiKey.CREATE_TOPICS, 7, {
            "topics": [{"name": name, "num_partitions": partitions,
                        "replication_factor": replication,
                        "configs": [{"name": k, "value": v} for k, v in configs]}],
            "timeout_ms": 1000, "validate_only": validate_only})
        return response.topics[0]

    dry = await create("dry", 4, validate_only=True)
    assert (dry.error_code, dry.num_partitions, dry.replication_factor) == (0, 4, 1)
    assert "dry" not in broker.metadata.topics
    made = await create("made", -1, -1, configs=[("retention.ms", "1000")])
    assert (made.error_code, made.num_partitions) == (0, 2)
    retention = [c for c in made.configs if c.name == "retention.ms"][0]
    assert (retention.value, retention.config_source) == ("1000", 1)
    assert (await create("made")).error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    assert (await create("ma_de")).error_code == ErrorCode.NONE
    assert (await create("ma.de")).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert (await create("x" * 250)).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert (await create("rf", replication=3)).error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert (await create("zero", 0)).error_code == ErrorCode.INVALID_PARTITIONS
    bad = await create("badcfg", configs=[("retention.ms", "soon")])
    assert bad.error_code == ErrorCode.INVALID_CONFIG
    assert (await create("unknowncfg", configs=[("no.such", "1")])).error_code == \
        ErrorCode.INVALID_CONFIG


async def test_delete_topics_and_create_partitions(client, broker):
    created = await create_topic(client, "short-lived", 1)
    grown = await client.call(ApiKey.CREATE_PARTITIONS, 3, {
        "topics": [{"name": "short-lived", "count": 3, "assignments": None}],
        "timeout_ms": 1000, "validate_only": False})
    assert grown.results[0].error_code == ErrorCode.NONE
    assert broker.partition_log("short-lived", 2) is not None
    shrink = await client.call(ApiKey.CREATE_PARTITIONS, 3, {
        "topics": [{"name": "short-lived", "count": 2, "assignments": None}],
        "timeout_ms": 1000, "validate_only": False})
    assert shrink.results[0].error_code == ErrorCode.INVALID_PARTITIONS

    deleted = await client.call(ApiKey.DELETE_TOPICS, 6, {
        "topics": [{"name": None, "topic_id": created.topic_id}], "timeout_ms": 1000})
    assert [(r.name, r.error_code) for r in deleted.responses] == [("short-lived", 0)]
    assert broker.partition_log("short-lived", 0) is None
    again = await client.call(ApiKey.DELETE_TOPICS, 5, {"topic_names": ["short-lived"],
                                                        "timeout_ms": 1000})
    assert again.responses[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_describe_and_alter_topic_configs(client):
    await create_topic(client, "conf", configs={"retention.ms": "60000"})

    async def describe(names=None):
        response = await client.call(ApiKey.DESCRIBE_CONFIGS, 4, {
            "resources": [{"resource_type": 2, "resource_name": "conf",
                           "configuration_keys": names}],
            "include_synonyms": True, "include_documentation": False})
        return {c.name: (c.value, c.config_source) for c in response.results[0].configs}

    assert await describe(["retention.ms", "segment.bytes"]) == {
        "retention.ms": ("60000", 1), "segment.bytes": ("1073741824", 5)}
    altered = await client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {
        "resources": [{"resource_type": 2, "resource_name": "conf", "configs": [
            {"name": "retention.ms", "config_operation": 1, "value": None},
            {"name": "cleanup.policy", "config_operation": 0, "value": "delete"}]}],
        "validate_only": False})
    assert altered.responses[0].error_code == ErrorCode.NONE
    assert await describe(["retention.ms", "cleanup.policy"]) == {
        "retention.ms": ("-1", 4), "cleanup.policy": ("delete", 1)}  # back to the broker value
    replaced = await client.call(ApiKey.ALTER_CONFIGS, 2, {
        "resources": [{"resource_type": 2, "resource_name": "conf", "configs": [
            {"name": "segment.bytes", "value": "2000000"}]}], "validate_only": False})
    assert replaced.responses[0].error_code == ErrorCode.NONE
    assert await describe(["cleanup.policy", "segment.bytes"]) == {
        "cleanup.policy": ("delete", 5), "segment.bytes": ("2000000", 1)}
    invalid = await client.call(ApiKey.ALTER_CONFIGS, 2, {
        "resources": [{"resource_type": 2, "resource_name": "conf", "configs": [
            {"name": "segment.bytes", "value": "12"}]}], "validate_only": False})
    assert invalid.responses[0].error_code == ErrorCode.INVALID_CONFIG


async def test_describe_broker_configs_and_dynamic_change(client, broker):
    name = str(broker.node_id)

    async def describe():
        response = await client.call(ApiKey.DESCRIBE_CONFIGS, 4, {
            "resources": [{"resource_type": 4, "resource_name": name,
                           "configuration_keys": ["log.retention.ms", "num.partitions"]}],
            "include_synonyms": False, "include_documentation": False})
        return {c.name: (c.value, c.config_source) for c in response.results[0].configs}

    before = await describe()
    assert before["num.partitions"] == ("2", 4)
    response = await client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {
        "resources": [{"resource_type": 4, "resource_name": name, "configs": [
            {"name": "log.retention.ms", "config_operation": 0, "value": "120000"}]}],
        "validate_only": False})
    assert response.responses[0].error_code == ErrorCode.NONE
    assert (await describe())["log.retention.ms"] == ("120000", 2)
    wrong = await client.call(ApiKey.DESCRIBE_CONFIGS, 4, {
        "resources": [{"resource_type": 4, "resource_name": "99", "configuration_keys": None}],
        "include_synonyms": False, "include_documentation": False})
    assert wrong.results[0].error_code == ErrorCode.INVALID_REQUEST


async def test_describe_cluster_and_log_dirs(client, broker):
    cluster = await client.call(ApiKey.DESCRIBE_CLUSTER, 1, {
        "include_cluster_authorized_operations": False, "endpoint_type": 1})
    assert (cluster.error_code, cluster.cluster_id, cluster.controller_id) == \
        (0, broker.cluster_id, broker.node_id)
    assert [(b.broker_id, b.host, b.port) for b in cluster.brokers] == \
        [(broker.node_id, "127.0.0.1", broker.test_address[1])]
    await create_topic(client, "sized")
    await produce(client, "sized", 0, records(b"12345"))
    dirs = await client.call(ApiKey.DESCRIBE_LOG_DIRS, 4, {"topics": None})
    result = dirs.results[0]
    sizes = {(t.name, p.partition_index): p.partition_size
             for t in result.topics for p in t.partitions}
    assert sizes == {("sized", 0): len(records(b"12345"))}
    assert result.total_bytes > 0 and result.usable_bytes > 0


async def test_garbage_closes_only_that_connection(client, broker):
    bad = await trio.open_tcp_stream(*broker.test_address)
    await bad.send_all(b"\x00\x00\x00\x02\xff\xff")
    with trio.fail_after(TIMEOUT_S):
        assert await bad.receive_some(100) == b""
    await bad.aclose()
    response = await client.call(ApiKey.METADATA, 12, {"topics": None})
    assert response.cluster_id == broker.cluster_id


async def test_retention_runs_in_the_background_and_moves_the_log_start(client):
    await create_topic(client, "expiring", configs={"retention.ms": "1000", "segment.ms": "100"})
    await produce(client, "expiring", 0, records(b"old", timestamp_ms=1000))  # long expired

    async def earliest() -> int:
        response = await client.call(ApiKey.LIST_OFFSETS, 8, {
            "replica_id": -1, "topics": [{"name": "expiring", "partitions": [
                {"partition_index": 0, "timestamp": -2}]}]})
        return response.topics[0].partitions[0].offset

    with trio.fail_after(TIMEOUT_S):
        while await earliest() != 1:
            await trio.sleep(0.05)
    partition = (await fetch(client, "expiring", 0, 1)).responses[0].partitions[0]
    assert (partition.error_code, partition.log_start_offset, partition.high_watermark,
            partition.records) == (0, 1, 1, b"")


async def test_topic_compression_type_recompresses_what_producers_send(client):
    await create_topic(client, "zipped", configs={"compression.type": "gzip"})
    sent = records(b"alpha", b"beta", producer_id=7, producer_epoch=0, base_sequence=0)
    assert (await produce(client, "zipped", 0, sent)).error_code == ErrorCode.NONE
    stored = (await fetch(client, "zipped", 0, 0)).responses[0].partitions[0].records
    header = read_batch_header(stored)
    assert (header.compression, header.producer_id, header.base_sequence, header.records_count,
            header.partition_leader_epoch) == (Compression.GZIP, 7, 0, 2, 0)
    assert [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in decode_records(stored)] == \
        [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in decode_records(sent)]
    corrupt = bytearray(records(b"gamma"))
    corrupt[-1] ^= 0x01
    assert (await produce(client, "zipped", 0, bytes(corrupt))).error_code == \
        ErrorCode.CORRUPT_MESSAGE


async def test_produce_error_messages_only_for_record_validation(client):
    await create_topic(client, "texts", configs={"max.message.bytes": "2000"})
    too_big = await produce(client, "texts", 0, records(b"x" * 3000))
    assert (too_big.error_code, too_big.error_message) == (ErrorCode.MESSAGE_TOO_LARGE, None)
    empty_batch = bytearray(records(b"a"))
    struct.pack_into(">i", empty_batch, 57, 0)  # records_count 0
    struct.pack_into(">I", empty_batch, 17, crc32c.crc32c(bytes(empty_batch[21:])))
    invalid = await produce(client, "texts", 0, bytes(empty_batch))
    assert invalid.error_code == ErrorCode.INVALID_RECORD
    assert invalid.error_message == "invalid record count 0"


async def test_group_round_trip_at_the_oldest_versions_librdkafka_2_0_uses(client, broker):
    coordinator = await client.call(ApiKey.FIND_COORDINATOR, 0, {"key": "old"})
    assert (coordinator.error_code, coordinator.node_id, coordinator.port) == \
        (0, broker.node_id, broker.test_address[1])
    await create_topic(client, "grouped", 2)
    joined = await client.call(ApiKey.JOIN_GROUP, 0, {
        "group_id": "old", "session_timeout_ms": 10000, "member_id": "",
        "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b"m"}]})
    assert (joined.error_code, joined.generation_id, joined.protocol_name) == (0, 1, "range")
    assert joined.leader == joined.member_id
    assert [(m.member_id, m.metadata) for m in joined.members] == [(joined.member_id, b"m")]
    synced = await client.call(ApiKey.SYNC_GROUP, 0, {
        "group_id": "old", "generation_id": 1, "member_id": joined.member_id,
        "assignments": [{"member_id": joined.member_id, "assignment": b"a"}]})
    assert (synced.error_code, synced.assignment) == (0, b"a")
    beat = await client.call(ApiKey.HEARTBEAT, 0, {
        "group_id": "old", "generation_id": 1, "member_id": joined.member_id})
    assert beat.error_code == ErrorCode.NONE
    committed = await client.call(ApiKey.OFFSET_COMMIT, 2, {
        "group_id": "old", "generation_id_or_member_epoch": 1, "member_id": joined.member_id,
        "retention_time_ms": -1, "topics": [
            {"name": "grouped", "partitions": [
                {"partition_index": 1, "committed_offset": 42, "committed_metadata": "meta"}]},
            {"name": "missing", "partitions": [
                {"partition_index": 0, "committed_offset": 1, "committed_metadata": None}]}]})
    assert sorted((t.name, p.partition_index, p.error_code)
                  for t in committed.topics for p in t.partitions) == \
        [("grouped", 1, 0), ("missing", 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
    fetched = await client.call(ApiKey.OFFSET_FETCH, 1, {
        "group_id": "old", "topics": [{"name": "grouped", "partition_indexes": [0, 1]}]})
    assert sorted((p.partition_index, p.committed_offset, p.metadata, p.error_code)
                  for t in fetched.topics for p in t.partitions) == \
        [(0, -1, "", 0), (1, 42, "meta", 0)]


async def test_large_fetches_are_sent_from_the_file_and_framed_exactly(client):
    # Ranges of 64 KiB and more go out with sendfile between the encoded parts: the
    # frame size and the bytes after each records field must still be exact.
    created = await create_topic(client, "bulk", 2)
    big = [records(bytes([65 + i]) * 150_000) for i in range(2)]
    for partition, batch in enumerate(big):
        assert (await produce(client, "bulk", partition, batch)).error_code == ErrorCode.NONE
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 22,
            "session_id": 0, "session_epoch": -1, "topics": [{
                "topic": "bulk", "topic_id": created.topic_id, "partitions": [
                {"partition": p, "fetch_offset": 0, "partition_max_bytes": 1 << 21}
                for p in (0, 1)]}]}
    for version in (4, 12, 16):  # classic and flexible (tagged fields after records)
        response = await client.call(ApiKey.FETCH, version, body)
        partitions = response.responses[0].partitions
        assert [(p.error_code, p.high_watermark) for p in partitions] == [(0, 1), (0, 1)]
        assert [[r.value for r in decode_records(p.records)] for p in partitions] == \
            [[bytes([65]) * 150_000], [bytes([66]) * 150_000]]
    # The connection is still in step: the next request gets its own answer.
    assert (await client.call(ApiKey.METADATA, 12, {"topics": None})).topics[0].name == "bulk"


@pytest.mark.parametrize("version", [0, 1, 2, 3])
async def test_acl_apis_answer_security_disabled_as_kafka_without_an_authorizer(client, version):
    acl = {"resource_type": 2, "resource_name": "payments", "resource_pattern_type": 3,
           "principal": "User:alice", "host": "*", "operation": 3, "permission_type": 3}
    acl_filter = {"resource_type_filter": 2, "resource_name_filter": None,
                  "pattern_type_filter": 1, "principal_filter": None, "host_filter": None,
                  "operation": 1, "permission_type": 1}
    described = await client.call(ApiKey.DESCRIBE_ACLS, version, acl_filter)
    assert (described.error_code, described.error_message, described.resources) == (
        ErrorCode.SECURITY_DISABLED, "No Authorizer is configured on the broker", [])
    created = await client.call(ApiKey.CREATE_ACLS, version, {"creations": [acl, acl]})
    assert [(r.error_code, r.error_message) for r in created.results] == [
        (ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.")] * 2
    deleted = await client.call(ApiKey.DELETE_ACLS, version, {"filters": [acl_filter]})
    assert [(r.error_code, r.error_message, r.matching_acls) for r in deleted.filter_results] \
        == [(ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.", [])]
