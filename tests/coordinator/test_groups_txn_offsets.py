"""Transactional offset commits in the group coordinator: pending until the marker."""
from coordinator.group_records import OffsetCommitKey, OffsetCommitValue, decode_key, decode_value, encode_key, encode_value
from coordinator.groups import GroupCoordinator, LoadedRecord
from tests.coordinator.group_testing import GROUP, coordinator, stable_group
from wire.errors import ErrorCode

PRODUCER_ID = 4000


def txn_commit(groups, offsets, *, generation_id=-1, member_id="", instance_id=None, group_id=GROUP,
               producer_id=PRODUCER_ID, now_ms=100, api_version=3):
    return groups.txn_offset_commit(group_id, producer_id, 2, generation_id, member_id, instance_id,
                                    offsets, now_ms=now_ms, api_version=api_version)


def fetched(groups, partitions=(("orders", 0),), require_stable=False, group_id=GROUP):
    response = groups.offset_fetch(group_id, list(partitions), require_stable=require_stable).response
    return [(topic["name"], entry["partition_index"], entry["committed_offset"], entry["error_code"])
            for topic in response["topics"] for entry in topic["partitions"]]


def test_pending_until_commit_marker():
    groups = coordinator()
    outcome = txn_commit(groups, [("orders", 0, 42, 3, "meta")])
    assert outcome.response == [{"name": "orders", "partitions": [
        {"partition_index": 0, "error_code": ErrorCode.NONE}]}]
    assert outcome.transactional == (PRODUCER_ID, 2)
    assert [(record.partition, decode_key(record.key), decode_value(decode_key(record.key), record.value))
            for record in outcome.records] == [(groups.partition_for(GROUP), OffsetCommitKey(GROUP, "orders", 0),
                                                OffsetCommitValue(42, "meta", 100, 3))]
    assert fetched(groups) == [("orders", 0, -1, ErrorCode.NONE)]
    assert fetched(groups, require_stable=True) == [("orders", 0, -1, ErrorCode.UNSTABLE_OFFSET_COMMIT)]
    # The marker on another partition does not touch this group.
    groups.complete_transaction(PRODUCER_ID, True, groups.partition_for(GROUP) + 1, now_ms=150)
    assert fetched(groups, require_stable=True) == [("orders", 0, -1, ErrorCode.UNSTABLE_OFFSET_COMMIT)]
    assert groups.complete_transaction(PRODUCER_ID, True, groups.partition_for(GROUP), now_ms=200).records == []
    assert fetched(groups, require_stable=True) == [("orders", 0, 42, ErrorCode.NONE)]
    assert groups.committed_offsets(GROUP)[("orders", 0)].metadata == "meta"


def test_abort_drops_pending_offsets():
    groups = coordinator()
    groups.offset_commit(GROUP, -1, "", None, -1, [("orders", 0, 10, -1, "")], now_ms=50)
    txn_commit(groups, [("orders", 0, 42, -1, "")])
    assert fetched(groups) == [("orders", 0, 10, ErrorCode.NONE)]
    groups.complete_transaction(PRODUCER_ID, False, groups.partition_for(GROUP))
    assert fetched(groups, require_stable=True) == [("orders", 0, 10, ErrorCode.NONE)]


def test_a_later_plain_commit_wins_over_an_earlier_transactional_one():
    groups = coordinator()
    txn_commit(groups, [("orders", 0, 42, -1, "")])
    groups.offset_commit(GROUP, -1, "", None, -1, [("orders", 0, 50, -1, "")], now_ms=120)
    groups.complete_transaction(PRODUCER_ID, True, groups.partition_for(GROUP))
    assert fetched(groups) == [("orders", 0, 50, ErrorCode.NONE)]


def test_require_stable_for_all_partitions():
    groups = coordinator()
    groups.offset_commit(GROUP, -1, "", None, -1, [("orders", 0, 10, -1, ""), ("orders", 1, 11, -1, "")],
                         now_ms=50)
    txn_commit(groups, [("orders", 1, 42, -1, "")])
    response = groups.offset_fetch(GROUP, None, require_stable=True).response
    assert [(entry["partition_index"], entry["committed_offset"], entry["error_code"])
            for entry in response["topics"][0]["partitions"]] == [
        (0, 10, ErrorCode.NONE), (1, -1, ErrorCode.UNSTABLE_OFFSET_COMMIT)]


def test_validation():
    groups = coordinator()
    # Unknown group: generation -1 creates a simple group, a generation is illegal.
    assert txn_commit(groups, [("t", 0, 1, -1, "")], group_id="other", generation_id=3).response == [
        {"name": "t", "partitions": [{"partition_index": 0, "error_code": ErrorCode.ILLEGAL_GENERATION}]}]
    members, now_ms = stable_group(groups, 2)
    # v0-v2 (no member, generation -1) are accepted even by a group with members.
    assert txn_commit(groups, [("t", 0, 1, -1, "")], now_ms=now_ms, api_version=2).response[0]["partitions"][0][
        "error_code"] == ErrorCode.NONE
    assert txn_commit(groups, [("t", 0, 1, -1, "")], generation_id=1, member_id=members[0],
                      now_ms=now_ms).response[0]["partitions"][0]["error_code"] == ErrorCode.NONE
    assert txn_commit(groups, [("t", 0, 1, -1, "")], generation_id=2, member_id=members[0],
                      now_ms=now_ms).response[0]["partitions"][0]["error_code"] == ErrorCode.ILLEGAL_GENERATION
    assert txn_commit(groups, [("t", 0, 1, -1, "")], generation_id=1, member_id="nobody",
                      now_ms=now_ms).response[0]["partitions"][0]["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    too_big = txn_commit(groups, [("t", 0, 1, -1, "x" * 4097), ("t", 1, 1, -1, "")], now_ms=now_ms)
    assert too_big.response == [{"name": "t", "partitions": [
        {"partition_index": 0, "error_code": ErrorCode.OFFSET_METADATA_TOO_LARGE},
        {"partition_index": 1, "error_code": ErrorCode.NONE}]}]
    assert len(too_big.records) == 1
    assert txn_commit(groups, [("t", 0, 1, -1, "")], group_id="").response[0]["partitions"][0]["error_code"] == \
        ErrorCode.INVALID_GROUP_ID


def test_not_coordinator_and_loading():
    groups = GroupCoordinator()
    assert txn_commit(groups, [("t", 0, 1, -1, "")]).response[0]["partitions"][0]["error_code"] == \
        ErrorCode.NOT_COORDINATOR
    groups.begin_loading(groups.partition_for(GROUP))
    assert txn_commit(groups, [("t", 0, 1, -1, "")]).response[0]["partitions"][0]["error_code"] == \
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert txn_commit(groups, [("t", 0, 1, -1, "")], api_version=1).response[0]["partitions"][0]["error_code"] == \
        ErrorCode.COORDINATOR_NOT_AVAILABLE


def record(offset: int, partition: int = 0):
    return (encode_key(OffsetCommitKey(GROUP, "orders", partition)),
            encode_value(OffsetCommitValue(offset, "", 5)))


def test_replay_of_transactional_records_and_markers():
    groups = GroupCoordinator()
    partition = groups.partition_for(GROUP)
    groups.load(partition, [
        record(1),                                          # plain (key, value) still works
        LoadedRecord(*record(7), producer_id=11),           # committed below
        LoadedRecord(*record(8, partition=1), producer_id=12),  # aborted below
        LoadedRecord(*record(9, partition=2), producer_id=13),  # no marker yet: pending
        LoadedRecord(None, None, producer_id=11, control=True),
        LoadedRecord(None, None, producer_id=12, control=False),
        LoadedRecord(*record(3), producer_id=None),
    ], now_ms=0)
    assert fetched(groups, [("orders", 0), ("orders", 1), ("orders", 2)], require_stable=True) == [
        ("orders", 0, 3, ErrorCode.NONE), ("orders", 1, -1, ErrorCode.NONE),
        ("orders", 2, -1, ErrorCode.UNSTABLE_OFFSET_COMMIT)]
    # The marker arrives after loading.
    groups.complete_transaction(13, True, partition)
    assert fetched(groups, [("orders", 2)], require_stable=True) == [("orders", 2, 9, ErrorCode.NONE)]


def test_tombstone_and_delete_remove_pending_offsets():
    groups = coordinator()
    txn_commit(groups, [("orders", 0, 42, -1, "")])
    deleted = groups.delete_groups([GROUP], now_ms=200).response
    assert deleted == [{"group_id": GROUP, "error_code": ErrorCode.NONE}]
    groups.complete_transaction(PRODUCER_ID, True, groups.partition_for(GROUP))
    assert groups.committed_offsets(GROUP) == {}
