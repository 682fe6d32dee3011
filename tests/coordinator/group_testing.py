"""Helpers for the group coordinator tests: a coordinator serving every partition, with
predictable member ids, and join/sync shorthands."""
from __future__ import annotations

import itertools

from coordinator.groups import GroupConfig, GroupCoordinator, Outcome

GROUP = "orders-app"
CONSUMER = "consumer"
SESSION_TIMEOUT_MS = 10_000
REBALANCE_TIMEOUT_MS = 30_000


def subscription(*topics: str) -> bytes:
    """ConsumerProtocolSubscription v0: version, topics, null user data."""
    data = (0).to_bytes(2, "big") + len(topics).to_bytes(4, "big")
    for topic in topics:
        data += len(topic).to_bytes(2, "big") + topic.encode()
    return data + (-1).to_bytes(4, "big", signed=True)


RANGE = [("range", subscription("orders"))]


def coordinator(config: GroupConfig | None = None, now_ms: int = 0, **overrides) -> GroupCoordinator:
    """A coordinator that has loaded every (empty) partition; member ids end in u1, u2..."""
    config = config or GroupConfig(**overrides)
    counter = itertools.count(1)
    groups = GroupCoordinator(config, new_uuid=lambda: f"u{next(counter)}")
    for partition in range(config.offsets_topic_num_partitions):
        groups.load(partition, [], now_ms=now_ms)
    return groups


def join(groups: GroupCoordinator, token: str, member_id: str = "", *, now_ms: int,
         client_id: str = "client", group_instance_id: str | None = None, protocols=None,
         session_timeout_ms: int = SESSION_TIMEOUT_MS, rebalance_timeout_ms: int = REBALANCE_TIMEOUT_MS,
         require_known_member_id: bool = False, supports_skip_assignment: bool = True,
         group_id: str = GROUP) -> Outcome:
    return groups.join_group(
        token, group_id, member_id, group_instance_id, client_id, "/127.0.0.1",
        session_timeout_ms, rebalance_timeout_ms, CONSUMER, RANGE if protocols is None else protocols,
        reason=None, require_known_member_id=require_known_member_id,
        supports_skip_assignment=supports_skip_assignment, now_ms=now_ms)


def sync(groups: GroupCoordinator, token: str, member_id: str, generation_id: int, *, now_ms: int,
         assignments=(), group_instance_id: str | None = None, group_id: str = GROUP) -> Outcome:
    return groups.sync_group(token, group_id, generation_id, member_id, group_instance_id,
                             CONSUMER, "range", list(assignments), now_ms=now_ms)


def replies(outcomes) -> dict:
    """token -> response over one Outcome or a list of them (a token is answered once)."""
    if isinstance(outcomes, Outcome):
        outcomes = [outcomes]
    answered = {}
    for outcome in outcomes:
        for token, response in outcome.replies:
            assert token not in answered, f"{token} answered twice"
            answered[token] = response
    return answered


def records(outcomes) -> list:
    if isinstance(outcomes, Outcome):
        outcomes = [outcomes]
    return [record for outcome in outcomes for record in outcome.records]


def joined(member_id: str, generation_id: int, leader: str, members=(), protocol_name: str = "range",
           skip_assignment: bool = False) -> dict:
    """A successful JoinGroup answer."""
    return {"error_code": 0, "generation_id": generation_id, "protocol_type": CONSUMER,
            "protocol_name": protocol_name, "leader": leader, "skip_assignment": skip_assignment,
            "member_id": member_id, "members": list(members)}


def join_error(member_id: str, error_code: int, protocol_name: str | None = "") -> dict:
    return {"error_code": error_code, "generation_id": -1, "protocol_type": None,
            "protocol_name": protocol_name, "leader": "", "skip_assignment": False,
            "member_id": member_id, "members": []}


def leader_member(member_id: str, metadata: bytes = RANGE[0][1], group_instance_id: str | None = None) -> dict:
    return {"member_id": member_id, "group_instance_id": group_instance_id, "metadata": metadata}


def synced(assignment: bytes) -> dict:
    return {"error_code": 0, "protocol_type": CONSUMER, "protocol_name": "range", "assignment": assignment}


def stable_group(groups: GroupCoordinator, count: int, *, now_ms: int = 0, static: bool = False):
    """Bring GROUP to Stable generation 1 with `count` members joined at now_ms and
    synced when the join phase ends. Returns (member ids, that time)."""
    member_ids = []
    for index in range(count):
        name = "abc"[index]
        outcome = join(groups, f"join-{name}", now_ms=now_ms, client_id=f"client-{name}",
                       group_instance_id=f"instance-{name}" if static else None)
        assert outcome.replies == []
    # Each member after the first extends the initial delay (Kafka's InitialDelayedJoin).
    answers = {}
    while len(answers) < count:
        deadline = groups.next_deadline()
        answers.update(replies(groups.expire(deadline)))
    for index in range(count):
        member_ids.append(answers[f"join-{'abc'[index]}"]["member_id"])
    leader = member_ids[0]
    for member_id in member_ids[1:]:
        sync(groups, f"sync-{member_id}", member_id, 1, now_ms=deadline)
    sync(groups, f"sync-{leader}", leader, 1, now_ms=deadline,
         assignments=[(member_id, f"assignment-{member_id}".encode()) for member_id in member_ids])
    return member_ids, deadline


def expire_until_replies(groups: GroupCoordinator) -> tuple[dict, int]:
    """Run the timers deadline by deadline until one answers something (the initial
    delay may be extended first). Returns (token -> response, the time it happened)."""
    while True:
        deadline = groups.next_deadline()
        answers = replies(groups.expire(deadline))
        if answers:
            return answers, deadline
