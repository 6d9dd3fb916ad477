"""StickyAssignor (eager) and the builders it shares with CooperativeStickyAssignor."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_assignors_groups import Group, check_valid, cost_reducing_path, groups, sizes

from streamclient.consumer.assignors import (
    Assignment,
    RebalanceProtocol,
    StickyAssignor,
    StickyPartitionAssignor,
    Subscription,
)
from streamclient.consumer.assignors.sticky import resolve_ownership
from streamclient.consumer.assignors.sticky_user_data import (
    MemberData,
    decode_sticky_user_data,
    encode_sticky_user_data,
)
from streamclient.structs import TopicPartition

# Java's STICKY_ASSIGNOR_USER_DATA_V1 for {t: [0, 1]} at generation 3 (no version prefix).
USER_DATA_V1_EXAMPLE = bytes.fromhex("00000001 000174 00000002 00000000 00000001 00000003")


def tps(*pairs: tuple[str, int]) -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(t, p) for t, p in pairs)


class EagerGroup:
    """Members with their own StickyAssignor, rebalanced the eager way through user data."""

    def __init__(self, cluster: dict[str, int], topics: dict[str, list[str]]) -> None:
        self.cluster = cluster
        self.members = {m: (list(ts), StickyAssignor()) for m, ts in topics.items()}
        self.generation = 0

    def rebalance(self) -> dict[str, Assignment]:
        self.generation += 1
        subscriptions = {
            m: Subscription(ts, user_data=assignor.subscription_user_data(ts))
            for m, (ts, assignor) in self.members.items()
        }
        leader = self.members[min(self.members)][1]
        result = leader.assign(self.cluster, subscriptions)
        check_valid(self.cluster, subscriptions, result)
        for m, (_, assignor) in self.members.items():
            assignor.on_assignment(result[m], self.generation)
        return result


def test_name_and_protocol() -> None:
    assert StickyAssignor.name == "sticky"
    assert StickyAssignor.supported_protocols == (RebalanceProtocol.EAGER,)
    assert StickyPartitionAssignor is StickyAssignor


def test_user_data_v1_matches_java_bytes() -> None:
    assert encode_sticky_user_data([("t", 1), ("t", 0)], 3) == USER_DATA_V1_EXAMPLE
    assert decode_sticky_user_data(USER_DATA_V1_EXAMPLE) == MemberData(tps(("t", 0), ("t", 1)), 3)


def test_user_data_v0_and_garbage_fallbacks() -> None:
    v0 = encode_sticky_user_data([("t", 0), ("u", 2)], None)
    assert v0 == bytes.fromhex("00000002 000174 00000001 00000000 000175 00000001 00000002")
    assert decode_sticky_user_data(v0) == MemberData(tps(("t", 0), ("u", 2)), -1)
    assert decode_sticky_user_data(b"\x00\x00\x00\x05\x00") == MemberData((), -1)
    assert decode_sticky_user_data(b"") == MemberData((), -1)
    assert decode_sticky_user_data(None) == MemberData((), -1)


def test_user_data_is_none_until_the_first_assignment_and_per_instance() -> None:
    first, second = StickyAssignor(), StickyAssignor()
    assert first.subscription_user_data(["t"]) is None
    first.on_assignment(Assignment(tps(("t", 1), ("t", 0))), 3)
    assert first.subscription_user_data(["t"]) == USER_DATA_V1_EXAMPLE
    # aiokafka keeps this state on the class (#1175); here a second consumer is unaffected.
    assert second.subscription_user_data(["t"]) is None


def test_java_documented_example_and_member_leaving() -> None:
    cluster = {"t0": 2, "t1": 2, "t2": 2, "t3": 2}
    topics = list(cluster)
    group = EagerGroup(cluster, {"C0": topics, "C1": topics, "C2": topics})
    first = group.rebalance()
    assert first == {
        "C0": Assignment(tps(("t0", 0), ("t1", 1), ("t3", 0))),
        "C1": Assignment(tps(("t0", 1), ("t2", 0), ("t3", 1))),
        "C2": Assignment(tps(("t1", 0), ("t2", 1))),
    }
    del group.members["C1"]
    second = group.rebalance()
    for member in ("C0", "C2"):
        assert set(first[member].partitions) <= set(second[member].partitions)
    assert sizes(second) == {"C0": 4, "C2": 4}


def test_unequal_subscriptions_documented_example() -> None:
    cluster = {"t0": 1, "t1": 2, "t2": 3}
    group = EagerGroup(cluster, {"C0": ["t0"], "C1": ["t0", "t1"], "C2": ["t0", "t1", "t2"]})
    assert group.rebalance() == {
        "C0": Assignment(tps(("t0", 0))),
        "C1": Assignment(tps(("t1", 0), ("t1", 1))),
        "C2": Assignment(tps(("t2", 0), ("t2", 1), ("t2", 2))),
    }
    del group.members["C0"]
    assert group.rebalance() == {
        "C1": Assignment(tps(("t0", 0), ("t1", 0), ("t1", 1))),
        "C2": Assignment(tps(("t2", 0), ("t2", 1), ("t2", 2))),
    }


def test_ownership_higher_generation_wins_and_double_claims_void() -> None:
    existing = {("t", p) for p in range(4)}
    ownership = resolve_ownership(
        {
            "a": MemberData(tps(("t", 0), ("t", 1)), 5),
            "b": MemberData(tps(("t", 1), ("t", 2)), 5),
            "c": MemberData(tps(("t", 3), ("t", 0)), 4),
            "d": MemberData(tps(("gone", 0),), 5),
        },
        existing,
    )
    assert ownership.max_generation == 5
    assert ownership.owned == {"a": [("t", 0)], "b": [("t", 2)], "c": [], "d": []}
    assert ownership.claimed_twice == {("t", 1)}
    assert ownership.previous_owner == {("t", 3): "c", ("t", 0): "c"}


def test_stale_generation_loses_its_claims_to_the_current_one() -> None:
    subscriptions = {
        "a": Subscription(["t"], user_data=encode_sticky_user_data([("t", 0), ("t", 1)], 7)),
        "b": Subscription(["t"], user_data=encode_sticky_user_data([("t", 0), ("t", 1)], 6)),
    }
    result = StickyAssignor().assign({"t": 2}, subscriptions)
    # a (generation 7) keeps one of its partitions; b's older claims do not count.
    assert result["a"].partitions == tps(("t", 0))
    assert result["b"].partitions == tps(("t", 1))


@settings(max_examples=50, deadline=None)
@given(group=groups(identical=True), data=st.data())
def test_identical_subscriptions_only_necessary_moves(group: Group, data: st.DataObject) -> None:
    cluster, subscriptions = group
    sim = EagerGroup(cluster, {m: list(s.topics) for m, s in subscriptions.items()})
    before = sim.rebalance()
    if len(sim.members) > 1 and data.draw(st.booleans(), label="leave"):
        leaving = data.draw(st.sampled_from(sorted(sim.members)), label="leaving")
        del sim.members[leaving]
    else:
        sim.members["new-member"] = (list(next(iter(subscriptions.values())).topics),
                                     StickyAssignor())
    after = sim.rebalance()
    counts = sizes(after).values()
    assert max(counts) - min(counts) <= 1
    for member in sim.members:
        if member not in before:
            continue
        old, new = set(before[member].partitions), set(after[member].partitions)
        # A member keeps everything it had, or sheds down to its new quota and gains nothing.
        assert len(old & new) == min(len(old), len(new)), member


@settings(max_examples=50, deadline=None)
@given(group=groups(identical=False))
def test_general_builder_is_optimally_balanced_and_stable(group: Group) -> None:
    cluster, subscriptions = group
    sim = EagerGroup(cluster, {m: list(s.topics) for m, s in subscriptions.items()})
    first = sim.rebalance()
    assert cost_reducing_path(subscriptions, first) is None
    # Nothing changed, so nothing moves.
    assert sim.rebalance() == first


@settings(max_examples=40, deadline=None)
@given(group=groups(identical=False), data=st.data())
def test_general_builder_rebalances_optimally_after_a_member_leaves(
    group: Group, data: st.DataObject
) -> None:
    cluster, subscriptions = group
    sim = EagerGroup(cluster, {m: list(s.topics) for m, s in subscriptions.items()})
    before = sim.rebalance()
    if len(sim.members) > 1:
        del sim.members[data.draw(st.sampled_from(sorted(sim.members)))]
    after = sim.rebalance()
    remaining = {m: s for m, s in subscriptions.items() if m in sim.members}
    assert cost_reducing_path(remaining, after) is None
    if len(remaining) == len(subscriptions):
        assert after == before  # a one-member group: nobody left, nothing moves
