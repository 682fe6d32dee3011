"""DescribeTopicPartitions v0 (KIP-966): topics and partitions as Metadata has them,
paged by response_partition_limit with a cursor, Kafka's errors."""
from __future__ import annotations

import uuid

from tests.broker.test_handlers import create_topic
from wire.api_keys import ApiKey
from wire.errors import ErrorCode

ALL_TOPIC_OPERATIONS = 0b1101_1111_1000


async def describe(client, names: list[str], limit: int = 2000, cursor=None):
    return await client.call(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {
        "topics": [{"name": name} for name in names], "response_partition_limit": limit,
        "cursor": cursor})


def shape(response) -> list:
    return [(t.name, t.error_code, [p.partition_index for p in t.partitions])
            for t in response.topics]


async def test_topics_in_name_order_with_their_partitions(client, broker):
    await create_topic(client, "beta", 2)
    await create_topic(client, "alpha", 1)
    response = await describe(client, ["beta", "alpha", "missing", "bad/name"])
    assert shape(response) == [("alpha", 0, [0]), ("bad/name", ErrorCode.INVALID_TOPIC_EXCEPTION, []),
                               ("beta", 0, [0, 1]),
                               ("missing", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])]
    alpha, _, beta, missing = response.topics
    assert (alpha.topic_id, alpha.is_internal, alpha.topic_authorized_operations) == (
        broker.metadata.topics["alpha"].topic_id, False, ALL_TOPIC_OPERATIONS)
    assert missing.topic_id == uuid.UUID(int=0)
    node = broker.node_id
    partition = beta.partitions[1]
    assert (partition.error_code, partition.leader_id, partition.leader_epoch,
            list(partition.replica_nodes), list(partition.isr_nodes),
            list(partition.eligible_leader_replicas), list(partition.last_known_elr),
            list(partition.offline_replicas)) == (0, node, 0, [node], [node], [], [], [])
    assert response.next_cursor is None


async def test_pages_follow_the_cursor(client):
    await create_topic(client, "pages-a", 3)
    await create_topic(client, "pages-b", 2)
    first = await describe(client, ["pages-a", "pages-b"], limit=2)
    assert shape(first) == [("pages-a", 0, [0, 1])]
    assert (first.next_cursor.topic_name, first.next_cursor.partition_index) == ("pages-a", 2)
    second = await describe(client, ["pages-a", "pages-b"], limit=1,
                            cursor={"topic_name": "pages-a", "partition_index": 2})
    # The limit reached at the end of a topic: the cursor names the next one, from 0.
    assert shape(second) == [("pages-a", 0, [2])]
    assert (second.next_cursor.topic_name, second.next_cursor.partition_index) == ("pages-b", 0)
    third = await describe(client, ["pages-a", "pages-b"], limit=5,
                           cursor={"topic_name": "pages-b", "partition_index": 0})
    assert shape(third) == [("pages-b", 0, [0, 1])] and third.next_cursor is None
    # No topics named: every topic from the cursor on; unknown ones are left out.
    everything = await describe(client, [], cursor={"topic_name": "pages-b", "partition_index": 1})
    assert shape(everything) == [("pages-b", 0, [1])]


async def test_a_cursor_outside_the_topics_is_an_invalid_request(client):
    await create_topic(client, "cursor-check", 1)
    for cursor in ({"topic_name": "elsewhere", "partition_index": 0},
                   {"topic_name": "cursor-check", "partition_index": -1}):
        response = await describe(client, ["cursor-check"], cursor=cursor)
        assert shape(response) == [("cursor-check", ErrorCode.INVALID_REQUEST, [])]
