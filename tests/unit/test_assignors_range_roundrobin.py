"""RangeAssignor and RoundRobinAssignor: Java's documented examples and their exact shape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from test_assignors_groups import Group, check_valid, groups

from streamclient.consumer.assignors import (
    Assignment,
    PartitionAssignorError,
    RangeAssignor,
    RangePartitionAssignor,
    RebalanceProtocol,
    RoundRobinAssignor,
    RoundRobinPartitionAssignor,
    Subscription,
)
from streamclient.consumer.assignors.abstract import sorted_members
from streamclient.structs import TopicPartition


def tps(*pairs: tuple[str, int]) -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(t, p) for t, p in pairs)


def test_names_and_protocols() -> None:
    assert RangeAssignor.name == "range"
    assert RoundRobinAssignor.name == "roundrobin"
    assert RangeAssignor.supported_protocols == (RebalanceProtocol.EAGER,)
    assert RoundRobinAssignor.supported_protocols == (RebalanceProtocol.EAGER,)
    assert RangePartitionAssignor is RangeAssignor
    assert RoundRobinPartitionAssignor is RoundRobinAssignor


def test_range_java_example() -> None:
    subscriptions = {"C0": Subscription(["t0", "t1"]), "C1": Subscription(["t0", "t1"])}
    result = RangeAssignor().assign({"t0": 3, "t1": 3}, subscriptions)
    assert result == {
        "C0": Assignment(tps(("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1))),
        "C1": Assignment(tps(("t0", 2), ("t1", 2))),
    }


def test_roundrobin_java_example() -> None:
    subscriptions = {"C0": Subscription(["t0", "t1"]), "C1": Subscription(["t0", "t1"])}
    result = RoundRobinAssignor().assign({"t0": 3, "t1": 3}, subscriptions)
    assert result == {
        "C0": Assignment(tps(("t0", 0), ("t0", 2), ("t1", 1))),
        "C1": Assignment(tps(("t0", 1), ("t1", 0), ("t1", 2))),
    }


def test_roundrobin_skips_members_not_subscribed() -> None:
    # The unequal-subscription example of the Java and aiokafka documentation.
    subscriptions = {
        "C0": Subscription(["t0"]),
        "C1": Subscription(["t0", "t1"]),
        "C2": Subscription(["t0", "t1", "t2"]),
    }
    result = RoundRobinAssignor().assign({"t0": 1, "t1": 2, "t2": 3}, subscriptions)
    assert result == {
        "C0": Assignment(tps(("t0", 0))),
        "C1": Assignment(tps(("t1", 0))),
        "C2": Assignment(tps(("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2))),
    }


def test_static_members_come_first_by_instance_id() -> None:
    subscriptions = {
        "a": Subscription(["t"], group_instance_id="i2"),
        "b": Subscription(["t"]),
        "c": Subscription(["t"], group_instance_id="i1"),
        "0": Subscription(["t"]),
    }
    assert sorted_members(subscriptions, subscriptions) == ["c", "a", "0", "b"]
    assert RangeAssignor().assign({"t": 4}, subscriptions) == {
        "c": Assignment(tps(("t", 0))),
        "a": Assignment(tps(("t", 1))),
        "0": Assignment(tps(("t", 2))),
        "b": Assignment(tps(("t", 3))),
    }
    rr = RoundRobinAssignor().assign({"t": 6}, subscriptions)
    assert rr["c"].partitions == tps(("t", 0), ("t", 4))
    assert rr["a"].partitions == tps(("t", 1), ("t", 5))
    assert rr["b"].partitions == tps(("t", 3))


@settings(max_examples=80, deadline=None)
@given(group=groups(identical=False))
def test_range_gives_contiguous_ranges_larger_first(group: Group) -> None:
    """Per topic, in member order: contiguous ranges, sizes non-increasing and within one.

    Together these pin the range assignment down completely."""
    cluster, subscriptions = group
    result = RangeAssignor().assign(cluster, subscriptions)
    check_valid(cluster, subscriptions, result)
    for topic, count in cluster.items():
        readers = sorted_members(
            [m for m, s in subscriptions.items() if topic in s.topics], subscriptions
        )
        if not readers:
            continue
        ranges = [[p for t, p in result[m].partitions if t == topic] for m in readers]
        flat = [p for r in ranges for p in r]
        assert flat == list(range(count))
        lengths = [len(r) for r in ranges]
        assert lengths == sorted(lengths, reverse=True)
        assert lengths[0] - lengths[-1] <= 1


@settings(max_examples=80, deadline=None)
@given(group=groups(identical=True))
def test_roundrobin_deals_in_member_order(group: Group) -> None:
    cluster, subscriptions = group
    result = RoundRobinAssignor().assign(cluster, subscriptions)
    check_valid(cluster, subscriptions, result)
    ring = sorted_members(subscriptions, subscriptions)
    topics = sorted(t for t in next(iter(subscriptions.values())).topics if t in cluster)
    dealt = [(t, p) for t in topics for p in range(cluster[t])]
    for index, tp in enumerate(dealt):
        assert tp in result[ring[index % len(ring)]].partitions


@pytest.mark.parametrize("bad", [-1, "3", None, True])
def test_bad_partition_counts_are_rejected(bad: object) -> None:
    with pytest.raises(PartitionAssignorError):
        RangeAssignor().assign({"t": bad}, {"m": Subscription(["t"])})  # type: ignore[dict-item]


def test_negative_partition_id_rejected() -> None:
    with pytest.raises(PartitionAssignorError):
        RoundRobinAssignor().assign({"t": [0, -2]}, {"m": Subscription(["t"])})


def test_topics_must_not_be_a_bare_string() -> None:
    with pytest.raises(PartitionAssignorError):
        Subscription("topic")
