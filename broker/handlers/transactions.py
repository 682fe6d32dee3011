"""The transaction APIs: thin mappings between the wire and the transaction coordinator
(coordinator/transactions.py) run by broker/transactions.py, plus DescribeProducers,
which reads the partitions' producer state."""
from __future__ import annotations

from broker.handlers import handles
from broker.handlers.groups import commit_offsets
from broker.transactions import write_marker
from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError, WireError
from wire.records import read_batch_header


@handles(ApiKey.INIT_PRODUCER_ID, versions=range(0, 6))
async def init_producer_id(ctx, request) -> dict:
    version = ctx.header.api_version
    if request.transactional_id is None:
        # An idempotent producer (also one bumping its epoch after an error, KIP-360) gets
        # a fresh id at epoch 0, as Kafka's ProducerIdManager hands out.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE,
                "producer_id": ctx.broker.allocate_producer_id(), "producer_epoch": 0}
    transactions = ctx.broker.transactions
    response = await transactions.call(
        transactions.coordinator.init_producer_id, request.transactional_id,
        request.transaction_timeout_ms,
        request.producer_id if version >= 3 else -1,
        request.producer_epoch if version >= 3 else -1,
        api_version=version)
    return {"throttle_time_ms": 0, **response}


@handles(ApiKey.ADD_PARTITIONS_TO_TXN, versions=range(0, 6))
async def add_partitions_to_txn(ctx, request) -> dict:
    version = ctx.header.api_version
    transactions = ctx.broker.transactions
    if version <= 3:
        results = await _add_partitions(ctx, transactions, request.v3_and_below_transactional_id,
                                  request.v3_and_below_producer_id,
                                  request.v3_and_below_producer_epoch,
                                  request.v3_and_below_topics, verify_only=False)
        return {"throttle_time_ms": 0, "results_by_topic_v3_and_below": results}
    # v4+: brokers batch several transactions (KIP-890 verification).
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results_by_transaction": [
        {"transactional_id": transaction.transactional_id,
         "topic_results": await _add_partitions(ctx, transactions, transaction.transactional_id,
                                          transaction.producer_id, transaction.producer_epoch,
                                          transaction.topics,
                                          verify_only=transaction.verify_only)}
        for transaction in request.transactions]}


async def _add_partitions(ctx, transactions, transactional_id: str, producer_id: int,
                          producer_epoch: int, topics, *, verify_only: bool) -> list[dict]:
    broker = ctx.broker
    wanted = [(topic.name, index) for topic in topics for index in topic.partitions]
    unknown = {key for key, exists in zip(wanted, await broker.partitions_exist(wanted))
               if not exists}
    if unknown:
        # Kafka refuses the whole request: the unknown partitions get their error, the
        # others OPERATION_NOT_ATTEMPTED.
        errors = {key: (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if key in unknown
                        else ErrorCode.OPERATION_NOT_ATTEMPTED) for key in wanted}
    else:
        errors = await transactions.call(
            transactions.coordinator.add_partitions, transactional_id, producer_id,
            producer_epoch, wanted, api_version=ctx.header.api_version, verify_only=verify_only)
    by_topic: dict[str, list[dict]] = {}
    for (name, index), error in errors.items():
        by_topic.setdefault(name, []).append(
            {"partition_index": index, "partition_error_code": error})
    return [{"name": name, "results_by_partition": partitions}
            for name, partitions in by_topic.items()]


@handles(ApiKey.ADD_OFFSETS_TO_TXN, versions=range(0, 5))
async def add_offsets_to_txn(ctx, request) -> dict:
    transactions = ctx.broker.transactions
    ctx.broker.groups.ensure_loaded()  # the group's partition gets the marker
    error = await transactions.call(
        transactions.coordinator.add_offsets, request.transactional_id, request.producer_id,
        request.producer_epoch, request.group_id, api_version=ctx.header.api_version)
    return {"throttle_time_ms": 0, "error_code": error}


@handles(ApiKey.END_TXN, versions=range(0, 5))
async def end_txn(ctx, request) -> dict:
    transactions = ctx.broker.transactions
    response = await transactions.call(
        transactions.coordinator.end_txn, request.transactional_id, request.producer_id,
        request.producer_epoch, request.committed, api_version=ctx.header.api_version)
    return {"throttle_time_ms": 0, "error_code": response["error_code"]}


@handles(ApiKey.TXN_OFFSET_COMMIT, versions=range(0, 5))
async def txn_offset_commit(ctx, request) -> dict:
    version = ctx.header.api_version
    groups = ctx.broker.groups
    topics = await commit_offsets(ctx.broker, request.topics, version >= 2, lambda known: groups.call(
        groups.coordinator.txn_offset_commit, request.group_id, request.producer_id,
        request.producer_epoch,
        request.generation_id if version >= 3 else -1,
        request.member_id if version >= 3 else "",
        request.group_instance_id if version >= 3 else None,
        known, api_version=version))
    return {"throttle_time_ms": 0, "topics": topics}


@handles(ApiKey.DESCRIBE_TRANSACTIONS, versions=range(0, 1))
async def describe_transactions(ctx, request) -> dict:
    states = ctx.broker.transactions.coordinator.describe_transactions(
        list(request.transactional_ids))
    return {"throttle_time_ms": 0, "transaction_states": states}


@handles(ApiKey.LIST_TRANSACTIONS, versions=range(0, 2))
async def list_transactions(ctx, request) -> dict:
    response = ctx.broker.transactions.coordinator.list_transactions(
        list(request.state_filters), list(request.producer_id_filters),
        request.duration_filter if ctx.header.api_version >= 1 else -1, now_ms=ctx.now_ms())
    return {"throttle_time_ms": 0, **response}


@handles(ApiKey.DESCRIBE_PRODUCERS, versions=range(0, 1))
async def describe_producers(ctx, request) -> dict:
    broker = ctx.broker
    topics = []
    for topic in request.topics:
        partitions = []
        for index in topic.partition_indexes:
            partition_log = broker.partition_log(topic.name, index)
            if partition_log is None:
                partitions.append({"partition_index": index,
                                   "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                   "error_message": None, "active_producers": []})
                continue
            ongoing = partition_log.ongoing_transactions()
            partitions.append({
                "partition_index": index, "error_code": ErrorCode.NONE, "error_message": None,
                "active_producers": [
                    {"producer_id": producer_id, "producer_epoch": epoch,
                     "last_sequence": last_sequence, "last_timestamp": last_timestamp,
                     "coordinator_epoch": coordinator_epoch,
                     "current_txn_start_offset": ongoing.get(producer_id, -1)}
                    for producer_id, (epoch, last_sequence, last_timestamp, coordinator_epoch)
                    in sorted(partition_log.describe_producers().items())]})
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}


async def verify_transactional_produce(broker, request) -> dict[tuple[str, int], ErrorCode]:
    """KIP-890 verification (transaction.partition.verification.enable): a transactional
    write must go to a partition its transaction has added. Asks the transactional id's
    coordinator (this broker's, or another's with AddPartitionsToTxn verify_only, then
    only for a partition where the producer has no transaction open yet, as Kafka does)
    about every transactional batch this broker leads; their codes, NONE when verified."""
    results: dict[tuple[str, int], ErrorCode] = {}
    if not broker.config.value("transaction.partition.verification.enable"):
        return results
    transactions = broker.transactions
    remote = not transactions.coordinates(request.transactional_id)
    for topic_data in request.topic_data:
        for partition_data in topic_data.partition_data:
            partition = broker.replicas.leader_or_none(topic_data.name, partition_data.index)
            if partition is None or not partition_data.records:
                continue  # the append answers it
            try:
                header = read_batch_header(partition_data.records)
            except WireError:
                continue  # the append answers it
            if not header.is_transactional or (
                    remote and header.producer_id in partition.log.ongoing_transactions()):
                continue
            results[(topic_data.name, partition_data.index)] = await transactions.verify_partition(
                request.transactional_id, header.producer_id, header.producer_epoch,
                topic_data.name, partition_data.index)
    return results


# Verification errors a producer retries, as Kafka's ReplicaManager answers them.
_RETRY_VERIFICATION = frozenset({
    ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.NETWORK_EXCEPTION,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_COORDINATOR})


def check_verified(error: ErrorCode, topic: str, partition: int, produce_version: int) -> None:
    """Raises what the producer is answered for a failed verification: fenced ->
    INVALID_PRODUCER_EPOCH; not added -> TRANSACTION_ABORTABLE from Produce v11 on,
    INVALID_TXN_STATE before; a coordinator not reachable -> NOT_ENOUGH_REPLICAS."""
    if error == ErrorCode.NONE:
        return
    if error == ErrorCode.PRODUCER_FENCED:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    elif error == ErrorCode.TRANSACTION_ABORTABLE and produce_version <= 10:
        error = ErrorCode.INVALID_TXN_STATE
    elif error in _RETRY_VERIFICATION:
        raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS,
                         "Unable to verify the partition has been added to the transaction. "
                         f"Underlying error: {error.name}")
    raise KafkaError(error, f"{topic}-{partition} is not part of the transaction")


@handles(ApiKey.WRITE_TXN_MARKERS, versions=range(0, 2))
async def write_txn_markers(ctx, request) -> dict:
    """A transaction coordinator's markers for the partitions this broker leads, appended
    and replicated (acks=all) before the answer."""
    broker = ctx.broker
    answers = []
    waits = []
    for marker in request.markers:
        topics = []
        for topic in marker.topics:
            partitions = []
            for index in topic.partition_indexes:
                result = {"partition_index": index, "error_code": ErrorCode.NONE}
                try:
                    written = write_marker(broker, topic.name, index, marker.producer_id,
                                           marker.producer_epoch, marker.transaction_result,
                                           marker.coordinator_epoch)
                except KafkaError as exc:
                    result["error_code"] = exc.code
                else:
                    if written.partition.log.high_watermark < written.end_offset:
                        waits.append((written.partition, written.end_offset, result))
                partitions.append(result)
            topics.append({"name": topic.name, "partitions": partitions})
        answers.append({"producer_id": marker.producer_id, "topics": topics})
    if waits:
        await broker.replicas.wait_for_acks(waits, broker.config.value("request.timeout.ms"))
    return {"markers": answers}
