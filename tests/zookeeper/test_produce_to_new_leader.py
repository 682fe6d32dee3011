"""A producer may hear that a broker leads a new partition (from any broker's Metadata)
before that broker has taken the leadership up. Its records then wait for the broker to
catch up instead of being refused: with acks=0 a refusal closes the connection and the
records are lost."""
from __future__ import annotations

import trio

from tests.zookeeper.inprocess import wait_until
from wire.api_keys import ApiKey
from wire.records import build_batch, decode_records


async def test_acks_0_records_wait_for_the_leadership_to_be_taken_up(zk_cluster):
    cluster = zk_cluster()
    for node_id in (1, 2):
        await cluster.start(node_id)
    await cluster.wait_for_controller()
    leader = cluster.brokers[2]
    # Broker 2's view takes the new state in; its replicas take their roles up only when
    # the produce request has found it not yet leading and is waiting for the view.
    request_waiting = trio.Event()
    apply_roles, wait_for_refresh = leader.replicas.apply, leader.cluster.wait_for_refresh

    async def apply_roles_late(states):
        if any(state.topic == "fresh" for state in states):
            await request_waiting.wait()
        await apply_roles(states)

    async def waiting_request(timeout_s):
        request_waiting.set()
        await wait_for_refresh(timeout_s)

    leader.replicas.apply = apply_roles_late
    leader.cluster.wait_for_refresh = waiting_request
    await cluster.create_topic("fresh", {0: [2, 1]})
    await wait_until(lambda: (view := leader.cluster.partition("fresh", 0)) is not None
                     and view.leader == 2, what="broker 2 leading fresh-0 in its view")
    assert leader.replicas.leader_or_none("fresh", 0) is None

    client = await cluster.client(2)
    batch = build_batch([(b"k", b"acks=0", [], 1_700_000_000_000)])
    await client.send(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": 0, "timeout_ms": 10_000,
        "topic_data": [{"name": "fresh", "partition_data": [{"index": 0, "records": batch}]}]})
    # The connection stays open (a refused acks=0 produce would close it) ...
    response = await client.call(ApiKey.METADATA, 9, {
        "topics": [{"name": "fresh"}], "allow_auto_topic_creation": False,
        "include_cluster_authorized_operations": False,
        "include_topic_authorized_operations": False})
    assert [(p.partition_index, p.leader_id) for p in response.topics[0].partitions] == [(0, 2)]
    # ... and the record is in the leader's log.
    partition_log = leader.partition_log("fresh", 0)
    batch = partition_log.read(0, 1 << 20).read()  # one batch
    assert [(r.key, r.value) for r in decode_records(batch)] == [(b"k", b"acks=0")]
