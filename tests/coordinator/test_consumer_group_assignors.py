"""The server-side assignors' exact assignments (uniform and range)."""
import uuid

import pytest

from coordinator.assignors import (
    MemberSubscription, PartitionAssignorError, RangeAssignor, UniformAssignor, assignor_for,
)

A = uuid.UUID(int=1)
B = uuid.UUID(int=2)


def member(*topics, instance_id=None, **assignment) -> MemberSubscription:
    current = {{"A": A, "B": B}[name]: frozenset(partitions) for name, partitions in assignment.items()}
    return MemberSubscription(instance_id, frozenset(topics), current)


def test_uniform_homogeneous_from_scratch_deals_partitions_in_topic_order():
    assignment = UniformAssignor().assign({"m1": member(A, B), "m2": member(A, B), "m3": member(A, B)},
                                          {A: 4, B: 3})
    # 7 partitions for 3 members: quotas 3, 2, 2 in member order.
    assert assignment == {"m1": {A: frozenset({0, 1, 2})},
                          "m2": {A: frozenset({3}), B: frozenset({0})},
                          "m3": {B: frozenset({1, 2})}}


def test_uniform_homogeneous_is_sticky_within_the_quota():
    members = {"m1": member(A, A=[0, 1, 2, 3, 4, 5]), "m2": member(A, A=[]), "m3": member(A)}
    assert UniformAssignor().assign(members, {A: 6}) == {
        "m1": {A: frozenset({0, 1})}, "m2": {A: frozenset({2, 3})}, "m3": {A: frozenset({4, 5})}}
    # A member leaves: the others keep theirs and share its partitions.
    members = {"m1": member(A, A=[0, 1]), "m3": member(A, A=[4, 5])}
    assert UniformAssignor().assign(members, {A: 6}) == {
        "m1": {A: frozenset({0, 1, 2})}, "m3": {A: frozenset({4, 5, 3})}}


def test_uniform_drops_partitions_of_unsubscribed_and_deleted_topics():
    members = {"m1": member(A, A=[0], B=[0, 1])}
    assert UniformAssignor().assign(members, {A: 2}) == {"m1": {A: frozenset({0, 1})}}
    assert UniformAssignor().assign({"m1": member()}, {A: 2}) == {"m1": {}}


def test_uniform_heterogeneous_balances_within_subscriptions():
    members = {"m1": member(A), "m2": member(A, B), "m3": member(B)}
    assert UniformAssignor().assign(members, {A: 3, B: 3}) == {
        "m1": {A: frozenset({0, 2})}, "m2": {A: frozenset({1}), B: frozenset({1})},
        "m3": {B: frozenset({0, 2})}}


def test_uniform_heterogeneous_moves_from_the_most_loaded():
    members = {"m1": member(A, B, A=[0, 1, 2], B=[0, 1]), "m2": member(B)}
    assert UniformAssignor().assign(members, {A: 3, B: 2}) == {
        "m1": {A: frozenset({0, 1, 2})}, "m2": {B: frozenset({0, 1})}}


def test_range_gives_consecutive_ranges_static_members_first():
    members = {"m2": member(A, B), "m1": member(A, B), "s": member(A, B, instance_id="z")}
    assert RangeAssignor().assign(members, {A: 7, B: 2}) == {
        "s": {A: frozenset({0, 1, 2}), B: frozenset({0})},
        "m1": {A: frozenset({3, 4}), B: frozenset({1})},
        "m2": {A: frozenset({5, 6})}}


def test_range_per_topic_subscribers_only():
    members = {"m1": member(A), "m2": member(A, B)}
    assert RangeAssignor().assign(members, {A: 3, B: 2}) == {
        "m1": {A: frozenset({0, 1})}, "m2": {A: frozenset({2}), B: frozenset({0, 1})}}
    with pytest.raises(PartitionAssignorError):
        RangeAssignor().assign({"m1": member(B)}, {A: 3})


def test_assignors_by_config_name():
    assert assignor_for("org.apache.kafka.coordinator.group.assignor.UniformAssignor").name == "uniform"
    assert assignor_for("range").name == "range"
    with pytest.raises(ValueError, match="unknown assignor 'sticky'"):
        assignor_for("sticky")
