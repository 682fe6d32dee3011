"""Every advertised version of the transaction APIs, in process over a loopback socket,
with exact answers: InitProducerId, AddPartitionsToTxn (v4+ batched and verify-only),
AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeTransactions, ListTransactions,
DescribeProducers, and what read_committed Fetch and ListOffsets then see."""
from __future__ import annotations

import time

from broker.handlers import supported_versions
from tests.broker.test_handlers import create_topic, fetch
from wire.api_keys import ApiKey
from wire.errors import ErrorCode
from wire.records import build_batch, decode_records, iter_batches, parse_end_txn_marker

READ_COMMITTED = 1


def versions(api_key: ApiKey) -> range:
    (found,) = [(low, high) for key, low, high in supported_versions() if key == api_key]
    return range(found[0], found[1] + 1)


def txn_batch(producer_id: int, epoch: int, sequence: int, *values: bytes) -> bytes:
    # Stamped now: markers carry the time they are written, and a batch older than
    # segment.ms would roll the segment (a fetch reads one segment).
    now_ms = time.time_ns() // 1_000_000
    return build_batch([(None, value, [], now_ms) for value in values],
                       producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                       is_transactional=True)


async def produce(client, topic: str, partition: int, batch: bytes, version: int = 9,
                  transactional_id: str | None = None):
    response = await client.call(ApiKey.PRODUCE, version, {
        "transactional_id": transactional_id, "acks": -1, "timeout_ms": 1000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    return response.responses[0].partition_responses[0]


async def init_producer(client, transactional_id: str, version: int = 5,
                        timeout_ms: int = 60000) -> tuple[int, int]:
    body = {"transactional_id": transactional_id, "transaction_timeout_ms": timeout_ms,
            "producer_id": -1, "producer_epoch": -1}
    response = await client.call(ApiKey.INIT_PRODUCER_ID, version, body)
    assert response.error_code == ErrorCode.NONE, response
    return response.producer_id, response.producer_epoch


async def add_partitions(client, transactional_id, producer_id, epoch, topic, partitions,
                         version: int = 3):
    response = await client.call(ApiKey.ADD_PARTITIONS_TO_TXN, version, {
        "v3_and_below_transactional_id": transactional_id,
        "v3_and_below_producer_id": producer_id, "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": topic, "partitions": partitions}]})
    return [(t.name, p.partition_index, p.partition_error_code)
            for t in response.results_by_topic_v3_and_below for p in t.results_by_partition]


async def end_txn(client, transactional_id, producer_id, epoch, committed: bool,
                  version: int = 4) -> int:
    response = await client.call(ApiKey.END_TXN, version, {
        "transactional_id": transactional_id, "producer_id": producer_id,
        "producer_epoch": epoch, "committed": committed})
    return response.error_code


async def find_transaction_coordinator(client, transactional_id: str) -> None:
    response = await client.call(ApiKey.FIND_COORDINATOR, 4, {
        "key_type": 1, "coordinator_keys": [transactional_id]})
    assert response.coordinators[0].error_code == ErrorCode.NONE


async def test_the_advertised_transaction_versions(client):
    served = {key: (low, high) for key, low, high in supported_versions()}
    assert {api: served[api] for api in (
        ApiKey.INIT_PRODUCER_ID, ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.ADD_OFFSETS_TO_TXN,
        ApiKey.END_TXN, ApiKey.TXN_OFFSET_COMMIT, ApiKey.DESCRIBE_TRANSACTIONS,
        ApiKey.LIST_TRANSACTIONS, ApiKey.DESCRIBE_PRODUCERS)} == {
        ApiKey.INIT_PRODUCER_ID: (0, 5), ApiKey.ADD_PARTITIONS_TO_TXN: (0, 5),
        ApiKey.ADD_OFFSETS_TO_TXN: (0, 4), ApiKey.END_TXN: (0, 4),
        ApiKey.TXN_OFFSET_COMMIT: (0, 4), ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
        ApiKey.LIST_TRANSACTIONS: (0, 1), ApiKey.DESCRIBE_PRODUCERS: (0, 0)}


async def test_init_producer_id_bumps_the_epoch_at_every_version(client):
    await find_transaction_coordinator(client, "t-init")
    seen = []
    for version in versions(ApiKey.INIT_PRODUCER_ID):
        seen.append(await init_producer(client, "t-init", version=version))
    producer_id = seen[0][0]
    assert seen == [(producer_id, epoch) for epoch in range(len(seen))]


async def test_commit_and_abort_at_every_add_partitions_and_end_txn_version(client):
    await create_topic(client, "txn-versions", 1)
    await find_transaction_coordinator(client, "t-versions")
    producer_id, epoch = await init_producer(client, "t-versions")
    sequence = 0
    committed_values = []
    for version in versions(ApiKey.ADD_PARTITIONS_TO_TXN):
        if version <= 3:
            assert await add_partitions(client, "t-versions", producer_id, epoch,
                                        "txn-versions", [0], version) == [
                ("txn-versions", 0, ErrorCode.NONE)]
        else:
            response = await client.call(ApiKey.ADD_PARTITIONS_TO_TXN, version, {
                "transactions": [{"transactional_id": "t-versions", "producer_id": producer_id,
                                  "producer_epoch": epoch, "verify_only": False,
                                  "topics": [{"name": "txn-versions", "partitions": [0]}]}]})
            assert response.error_code == ErrorCode.NONE
            assert [(r.transactional_id, t.name, p.partition_index, p.partition_error_code)
                    for r in response.results_by_transaction for t in r.topic_results
                    for p in t.results_by_partition] == [
                ("t-versions", "txn-versions", 0, ErrorCode.NONE)]
        value = f"v{version}".encode()
        result = await produce(client, "txn-versions", 0,
                               txn_batch(producer_id, epoch, sequence, value),
                               transactional_id="t-versions")
        assert result.error_code == ErrorCode.NONE
        sequence += 1
        commit = version % 2 == 0
        end_version = min(version, max(versions(ApiKey.END_TXN)))
        assert await end_txn(client, "t-versions", producer_id, epoch, commit,
                             end_version) == ErrorCode.NONE
        if commit:
            committed_values.append(value)

    committed = await fetch(client, "txn-versions", 0, 0, version=12,
                            isolation_level=READ_COMMITTED)
    partition = committed.responses[0].partitions[0]
    # Six transactions, each one record and one marker: 12 offsets, all decided.
    assert (partition.high_watermark, partition.last_stable_offset) == (12, 12)
    assert [(a.producer_id, a.first_offset) for a in partition.aborted_transactions] == [
        (producer_id, 2), (producer_id, 6), (producer_id, 10)]
    data = bytes(partition.records)
    values, markers = [], []
    for position, header in iter_batches(data):
        batch = data[position:position + header.size]
        if header.is_control:
            markers.append(parse_end_txn_marker(batch).commit)
        else:
            values += [record.value for record in decode_records(batch)]
    assert values == [f"v{v}".encode() for v in versions(ApiKey.ADD_PARTITIONS_TO_TXN)]
    assert markers == [True, False, True, False, True, False]
    assert committed_values == [b"v0", b"v2", b"v4"]


async def test_verify_only_and_unknown_partitions(client):
    await create_topic(client, "txn-verify", 2)
    await find_transaction_coordinator(client, "t-verify")
    producer_id, epoch = await init_producer(client, "t-verify")
    assert await add_partitions(client, "t-verify", producer_id, epoch, "txn-verify", [0]) == [
        ("txn-verify", 0, ErrorCode.NONE)]
    response = await client.call(ApiKey.ADD_PARTITIONS_TO_TXN, 4, {
        "transactions": [{"transactional_id": "t-verify", "producer_id": producer_id,
                          "producer_epoch": epoch, "verify_only": True,
                          "topics": [{"name": "txn-verify", "partitions": [0, 1]}]}]})
    assert [(p.partition_index, p.partition_error_code)
            for r in response.results_by_transaction for t in r.topic_results
            for p in t.results_by_partition] == [
        (0, ErrorCode.NONE), (1, ErrorCode.TRANSACTION_ABORTABLE)]
    # A write to a partition the transaction has not added is refused (KIP-890), with
    # the code each Produce version's clients know.
    for version, error in ((9, ErrorCode.INVALID_TXN_STATE),
                           (11, ErrorCode.TRANSACTION_ABORTABLE)):
        result = await produce(client, "txn-verify", 1, txn_batch(producer_id, epoch, 0, b"x"),
                               version=version, transactional_id="t-verify")
        assert result.error_code == error
    # Transactional records need a transactional id.
    result = await produce(client, "txn-verify", 0, txn_batch(producer_id, epoch, 0, b"x"))
    assert result.error_code == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    assert await add_partitions(client, "t-verify", producer_id, epoch, "missing", [0]) == [
        ("missing", 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]


async def test_an_open_transaction_sets_the_last_stable_offset(client):
    await create_topic(client, "txn-lso", 1)
    await find_transaction_coordinator(client, "t-lso")
    now_ms = time.time_ns() // 1_000_000
    await produce(client, "txn-lso", 0, build_batch([(None, b"plain", [], now_ms)]))
    producer_id, epoch = await init_producer(client, "t-lso")
    await add_partitions(client, "t-lso", producer_id, epoch, "txn-lso", [0])
    await produce(client, "txn-lso", 0, txn_batch(producer_id, epoch, 0, b"open"),
                  transactional_id="t-lso")
    await produce(client, "txn-lso", 0, build_batch([(None, b"later", [], now_ms)]))
    committed = (await fetch(client, "txn-lso", 0, 0, isolation_level=READ_COMMITTED)
                 ).responses[0].partitions[0]
    assert (committed.high_watermark, committed.last_stable_offset) == (3, 1)
    assert [r.value for r in decode_records(bytes(committed.records))] == [b"plain"]
    offsets = {}
    for isolation in (0, READ_COMMITTED):
        response = await client.call(ApiKey.LIST_OFFSETS, 7, {
            "replica_id": -1, "isolation_level": isolation,
            "topics": [{"name": "txn-lso", "partitions": [
                {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]})
        offsets[isolation] = response.topics[0].partitions[0].offset
    assert offsets == {0: 3, READ_COMMITTED: 1}
    # DescribeProducers shows the open transaction's first offset.
    described = await client.call(ApiKey.DESCRIBE_PRODUCERS, 0, {
        "topics": [{"name": "txn-lso", "partition_indexes": [0]}]})
    (state,) = described.topics[0].partitions[0].active_producers
    assert (state.producer_id, state.producer_epoch, state.last_sequence,
            state.coordinator_epoch, state.current_txn_start_offset) == (
        producer_id, epoch, 0, -1, 1)


async def test_offsets_in_a_transaction_at_every_version(client, broker):
    await create_topic(client, "txn-offsets-in", 1)
    await find_transaction_coordinator(client, "t-offsets")
    await client.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0,
                                                   "coordinator_keys": ["g-txn"]})
    producer_id, epoch = await init_producer(client, "t-offsets")
    for version in versions(ApiKey.TXN_OFFSET_COMMIT):
        add_version = min(version, max(versions(ApiKey.ADD_OFFSETS_TO_TXN)))
        added = await client.call(ApiKey.ADD_OFFSETS_TO_TXN, add_version, {
            "transactional_id": "t-offsets", "producer_id": producer_id,
            "producer_epoch": epoch, "group_id": "g-txn"})
        assert added.error_code == ErrorCode.NONE
        response = await client.call(ApiKey.TXN_OFFSET_COMMIT, version, {
            "transactional_id": "t-offsets", "group_id": "g-txn", "producer_id": producer_id,
            "producer_epoch": epoch, "generation_id": -1, "member_id": "",
            "group_instance_id": None,
            "topics": [{"name": "txn-offsets-in", "partitions": [
                {"partition_index": 0, "committed_offset": 100 + version,
                 "committed_leader_epoch": -1, "committed_metadata": f"m{version}"}]}]})
        assert [(p.partition_index, p.error_code) for t in response.topics
                for p in t.partitions] == [(0, ErrorCode.NONE)]
        stable = await client.call(ApiKey.OFFSET_FETCH, 7, {
            "group_id": "g-txn", "require_stable": True,
            "topics": [{"name": "txn-offsets-in", "partition_indexes": [0]}]})
        assert [(p.committed_offset, p.error_code) for p in stable.topics[0].partitions] == [
            (-1, ErrorCode.UNSTABLE_OFFSET_COMMIT)]
        commit = version != 2  # one aborted in the middle
        assert await end_txn(client, "t-offsets", producer_id, epoch, commit) == ErrorCode.NONE
        fetched = await client.call(ApiKey.OFFSET_FETCH, 7, {
            "group_id": "g-txn", "require_stable": True,
            "topics": [{"name": "txn-offsets-in", "partition_indexes": [0]}]})
        expected = 100 + version if commit else 100 + version - 1
        assert [(p.committed_offset, p.metadata, p.error_code)
                for p in fetched.topics[0].partitions] == [
            (expected, f"m{expected - 100}", ErrorCode.NONE)]


async def test_describe_and_list_transactions(client, broker):
    await create_topic(client, "txn-describe", 1)
    await find_transaction_coordinator(client, "t-describe")
    producer_id, epoch = await init_producer(client, "t-describe", timeout_ms=45000)
    await add_partitions(client, "t-describe", producer_id, epoch, "txn-describe", [0])
    described = await client.call(ApiKey.DESCRIBE_TRANSACTIONS, 0, {
        "transactional_ids": ["t-describe", "t-unknown"]})
    known, unknown = described.transaction_states
    assert (known.error_code, known.transactional_id, known.transaction_state,
            known.transaction_timeout_ms, known.producer_id, known.producer_epoch,
            [(t.topic, list(t.partitions)) for t in known.topics]) == (
        ErrorCode.NONE, "t-describe", "Ongoing", 45000, producer_id, epoch,
        [("txn-describe", [0])])
    assert known.transaction_start_time_ms > 0
    assert (unknown.error_code, unknown.transactional_id) == (
        ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, "t-unknown")
    for version in versions(ApiKey.LIST_TRANSACTIONS):
        body = {"state_filters": ["Ongoing"], "producer_id_filters": []}
        if version >= 1:
            body["duration_filter"] = -1
        listed = await client.call(ApiKey.LIST_TRANSACTIONS, version, body)
        assert (listed.error_code, list(listed.unknown_state_filters),
                [(s.transactional_id, s.producer_id, s.transaction_state)
                 for s in listed.transaction_states]) == (
            ErrorCode.NONE, [], [("t-describe", producer_id, "Ongoing")])
    listed = await client.call(ApiKey.LIST_TRANSACTIONS, 1, {
        "state_filters": ["Bogus"], "producer_id_filters": [], "duration_filter": -1})
    assert list(listed.unknown_state_filters) == ["Bogus"]


async def write_txn_markers(client, version: int, producer_id: int, epoch: int, commit: bool,
                            coordinator_epoch: int, topic: str, partitions: list[int]):
    response = await client.call(ApiKey.WRITE_TXN_MARKERS, version, {"markers": [{
        "producer_id": producer_id, "producer_epoch": epoch, "transaction_result": commit,
        "coordinator_epoch": coordinator_epoch,
        "topics": [{"name": topic, "partition_indexes": partitions}]}]})
    return [(marker.producer_id, topic.name, partition.partition_index, partition.error_code)
            for marker in response.markers for topic in marker.topics
            for partition in topic.partitions]


async def test_write_txn_markers_at_every_version(client):
    """A coordinator's markers, as another broker's coordinator sends them: commit and
    abort end the producer's transaction; stale epochs and unknown partitions are refused
    per partition."""
    assert versions(ApiKey.WRITE_TXN_MARKERS) == range(0, 2)
    await create_topic(client, "txn-markers", 2)
    await find_transaction_coordinator(client, "t-markers")
    for version in versions(ApiKey.WRITE_TXN_MARKERS):
        producer_id, epoch = await init_producer(client, "t-markers")
        await add_partitions(client, "t-markers", producer_id, epoch, "txn-markers", [0, 1])
        for partition in (0, 1):
            await produce(client, "txn-markers", partition,
                          txn_batch(producer_id, epoch, 0, b"v%d-p%d" % (version, partition)),
                          transactional_id="t-markers")
        assert await write_txn_markers(client, version, producer_id, epoch, True, 5,
                                       "txn-markers", [0]) == [
            (producer_id, "txn-markers", 0, ErrorCode.NONE)]
        assert await write_txn_markers(client, version, producer_id, epoch, False, 5,
                                       "txn-markers", [1, 7]) == [
            (producer_id, "txn-markers", 1, ErrorCode.NONE),
            (producer_id, "txn-markers", 7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
        # An older producer epoch or coordinator epoch than the partition has seen.
        assert await write_txn_markers(client, version, producer_id, epoch - 1, True, 5,
                                       "txn-markers", [0]) == [
            (producer_id, "txn-markers", 0, ErrorCode.INVALID_PRODUCER_EPOCH)]
        assert await write_txn_markers(client, version, producer_id, epoch, True, 4,
                                       "txn-markers", [0]) == [
            (producer_id, "txn-markers", 0, ErrorCode.TRANSACTION_COORDINATOR_FENCED)]
        # The commit is visible to read_committed, the aborted write is not.
        seen = []
        for partition in (0, 1):
            data = (await fetch(client, "txn-markers", partition, 0,
                                isolation_level=READ_COMMITTED)).responses[0].partitions[0]
            assert data.last_stable_offset == data.high_watermark
            aborted = {a.producer_id for a in data.aborted_transactions or []}
            for position, header in iter_batches(bytes(data.records)):
                if header.is_control or header.producer_id in aborted:
                    continue
                batch = bytes(data.records)[position:position + header.size]
                seen += [record.value for record in decode_records(batch)]
        assert seen == [b"v%d-p0" % earlier for earlier in range(version + 1)]
        # The coordinator still counts the transaction open: end it to start the next.
        assert await end_txn(client, "t-markers", producer_id, epoch, True) == ErrorCode.NONE
