"""Random consumer groups, the invariants every assignor keeps, and checks of them.

The other ``test_assignors_*`` modules import the strategies and checkers from here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.consumer.assignors import (
    Assignment,
    ConsumerPartitionAssignor,
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
)

Cluster = dict[str, int]
Group = tuple[Cluster, dict[str, Subscription]]

ALL_ASSIGNORS = (RangeAssignor, RoundRobinAssignor, StickyAssignor, CooperativeStickyAssignor)

_member_ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=6)


@st.composite
def groups(draw: st.DrawFn, *, identical: bool) -> Group:
    """1-8 members, 1-5 topics of 1-12 partitions, random subscriptions and static ids.

    Sometimes a subscribed topic has no metadata, and the cluster has a topic nobody reads:
    assignors must ignore both.
    """
    topics = [f"topic-{i}" for i in range(draw(st.integers(1, 5)))]
    cluster = {t: draw(st.integers(1, 12)) for t in topics}
    if draw(st.booleans()):
        cluster["unread"] = draw(st.integers(1, 4))
    members = draw(st.lists(_member_ids, min_size=1, max_size=8, unique=True))
    instance_ids = draw(
        st.lists(st.text(alphabet="xyz", min_size=1, max_size=3), min_size=len(members),
                 max_size=len(members), unique=True)
    )
    static = [draw(st.booleans()) for _ in members]
    ghost = ["missing-topic"] if draw(st.booleans()) else []

    def subset() -> list[str]:
        return draw(st.lists(st.sampled_from(topics), min_size=1, unique=True))

    shared = subset()
    subscriptions = {
        member: Subscription(
            topics=(shared if identical else subset()) + ghost,
            group_instance_id=instance_ids[i] if static[i] else None,
        )
        for i, member in enumerate(members)
    }
    return cluster, subscriptions


def subscribed_partitions(cluster: Mapping[str, int], topics: set[str]) -> set[tuple[str, int]]:
    return {(t, p) for t in topics if t in cluster for p in range(cluster[t])}


def check_valid(
    cluster: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    result: Mapping[str, Assignment],
    *,
    complete: bool = True,
) -> None:
    """Every member answered; each partition at most once (exactly once if ``complete``),
    only to a member subscribed to its topic."""
    assert set(result) == set(subscriptions)
    seen: list[tuple[str, int]] = []
    for member, assignment in result.items():
        for tp in assignment.partitions:
            assert tp[0] in subscriptions[member].topics, (member, tp)
            assert 0 <= tp[1] < cluster[tp[0]], tp
        seen.extend(assignment.partitions)
    assert len(seen) == len(set(seen)), "a partition was assigned twice"
    wanted = subscribed_partitions(cluster, {t for s in subscriptions.values() for t in s.topics})
    assert set(seen) <= wanted
    if complete:
        assert set(seen) == wanted


def sizes(result: Mapping[str, Assignment]) -> dict[str, int]:
    return {m: len(a.partitions) for m, a in result.items()}


def cost_reducing_path(
    subscriptions: Mapping[str, Subscription], result: Mapping[str, Assignment]
) -> tuple[str, str] | None:
    """A pair (u, v) where partitions can be passed u → … → v, each hop to a member subscribed
    to the partition's topic, and v holds at least two fewer than u.  None means the
    assignment is as balanced as the subscriptions allow (Harvey et al., semi-matchings)."""
    size = sizes(result)
    holding_topics = {m: {tp[0] for tp in a.partitions} for m, a in result.items()}
    for start in result:
        seen = {start}
        queue = deque([start])
        while queue:
            giver = queue.popleft()
            for taker, sub in subscriptions.items():
                if taker not in seen and holding_topics[giver] & set(sub.topics):
                    if size[taker] <= size[start] - 2:
                        return (start, taker)
                    seen.add(taker)
                    queue.append(taker)
    return None


@pytest.mark.parametrize("assignor_class", ALL_ASSIGNORS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(group=groups(identical=False))
def test_each_partition_goes_once_to_a_subscriber(
    assignor_class: type[ConsumerPartitionAssignor], group: Group
) -> None:
    cluster, subscriptions = group
    check_valid(cluster, subscriptions, assignor_class().assign(cluster, subscriptions))


@pytest.mark.parametrize("assignor_class", ALL_ASSIGNORS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(group=groups(identical=True))
def test_identical_subscriptions_balance_within_one(
    assignor_class: type[ConsumerPartitionAssignor], group: Group
) -> None:
    cluster, subscriptions = group
    result = assignor_class().assign(cluster, subscriptions)
    check_valid(cluster, subscriptions, result)
    if assignor_class is RangeAssignor:
        # Range balances each topic on its own: the extras of several topics pile up on
        # the first members, so only the per-topic counts are within one.
        for topic in next(iter(subscriptions.values())).topics:
            per_member = [sum(1 for tp in a.partitions if tp[0] == topic) for a in result.values()]
            assert max(per_member) - min(per_member) <= 1
    else:
        counts = sizes(result).values()
        assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize("assignor_class", ALL_ASSIGNORS, ids=lambda c: c.name)
def test_empty_group_and_unknown_topics(assignor_class: type[ConsumerPartitionAssignor]) -> None:
    assignor = assignor_class()
    assert assignor.assign({"t": 3}, {}) == {}
    result = assignor.assign({"t": 3}, {"m": Subscription(["nope"])})
    assert result == {"m": Assignment()}


@pytest.mark.parametrize("assignor_class", ALL_ASSIGNORS, ids=lambda c: c.name)
def test_cluster_may_list_partition_ids(assignor_class: type[ConsumerPartitionAssignor]) -> None:
    subscriptions = {"a": Subscription(["t"]), "b": Subscription(["t"])}
    by_count = assignor_class().assign({"t": 4}, subscriptions)
    by_ids = assignor_class().assign({"t": [3, 1, 0, 2]}, subscriptions)
    assert by_count == by_ids
