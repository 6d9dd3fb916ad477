"""CooperativeStickyAssignor: its user data, and the two-phase revocation across rebalances."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from test_assignors_groups import (
    Group,
    check_valid,
    cost_reducing_path,
    groups,
    sizes,
    subscribed_partitions,
)

from streamclient.consumer.assignors import (
    Assignment,
    CooperativeStickyAssignor,
    RebalanceProtocol,
    Subscription,
)
from streamclient.consumer.assignors.sticky_user_data import MemberData
from streamclient.structs import TopicPartition


def tps(*pairs: tuple[str, int]) -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(t, p) for t, p in pairs)


@dataclass
class Member:
    topics: list[str]
    assignor: CooperativeStickyAssignor = field(default_factory=CooperativeStickyAssignor)
    owned: set[tuple[str, int]] = field(default_factory=set)
    generation: int = -1


class CooperativeGroup:
    """A classic group running COOPERATIVE: members keep their partitions through a join.

    Each rebalance checks the safety rule that makes cooperative rebalancing correct: a
    partition is handed to a member only when no *other* member still owns it.  Members
    then revoke what they lost and take what they gained, in any interleaving, so that rule
    is exactly "no partition is ever owned by two members at once".
    """

    def __init__(self, cluster: dict[str, int]) -> None:
        self.cluster = cluster
        self.members: dict[str, Member] = {}
        self.generation = 0

    def subscriptions(self) -> dict[str, Subscription]:
        return {
            m: Subscription(
                s.topics,
                user_data=s.assignor.subscription_user_data(s.topics),
                owned_partitions=s.owned,
                generation_id=s.generation,
            )
            for m, s in self.members.items()
        }

    def rebalance(self) -> tuple[dict[str, Assignment], bool]:
        """One rebalance; returns the assignment and whether anyone had to revoke."""
        self.generation += 1
        subscriptions = self.subscriptions()
        leader = self.members[min(self.members)].assignor
        result = leader.assign(self.cluster, subscriptions)
        check_valid(self.cluster, subscriptions, result, complete=False)
        for taker, assignment in result.items():
            for tp in assignment.partitions:
                for other, member in self.members.items():
                    assert other == taker or tp not in member.owned, (tp, other, taker)
        revoked = False
        for m, member in self.members.items():
            assigned = set(result[m].partitions)
            revoked |= bool(member.owned - assigned)
            member.owned = assigned
            member.generation = self.generation
            member.assignor.on_assignment(result[m], self.generation)
        return result, revoked

    def settle(self) -> dict[str, Assignment]:
        """Rebalance until nobody revokes: at most the two rounds of KIP-429."""
        result, revoked = self.rebalance()
        if revoked:
            result, revoked = self.rebalance()
            assert not revoked, "a third rebalance was needed"
        subscriptions = self.subscriptions()
        check_valid(self.cluster, subscriptions, result, complete=True)
        return result


def test_name_protocols_and_user_data() -> None:
    assignor = CooperativeStickyAssignor()
    assert assignor.name == "cooperative-sticky"
    assert assignor.supported_protocols == (RebalanceProtocol.COOPERATIVE, RebalanceProtocol.EAGER)
    assert assignor.subscription_user_data(["t"]) == b"\xff\xff\xff\xff"
    assignor.on_assignment(Assignment(tps(("t", 0))), 7)
    assert assignor.subscription_user_data(["t"]) == b"\x00\x00\x00\x07"
    assert CooperativeStickyAssignor().subscription_user_data(["t"]) == b"\xff\xff\xff\xff"


def test_member_data_prefers_the_subscription_generation() -> None:
    assignor = CooperativeStickyAssignor()
    owned = [("t", 1)]
    v2 = Subscription(["t"], user_data=b"\x00\x00\x00\x03", owned_partitions=owned,
                      generation_id=9)
    assert assignor.member_data(v2) == MemberData(tps(("t", 1)), 9)
    v1 = Subscription(["t"], user_data=b"\x00\x00\x00\x03", owned_partitions=owned)
    assert assignor.member_data(v1) == MemberData(tps(("t", 1)), 3)
    assert assignor.member_data(Subscription(["t"], user_data=b"\x01")).generation == -1
    assert assignor.member_data(Subscription(["t"])).generation == -1


def test_joining_member_waits_for_the_revocation() -> None:
    group = CooperativeGroup({"t": 4})
    group.members["a"] = Member(["t"])
    assert group.settle()["a"].partitions == tps(*(("t", p) for p in range(4)))
    group.members["b"] = Member(["t"])
    phase1, revoked = group.rebalance()
    assert revoked
    assert phase1 == {"a": Assignment(tps(("t", 0), ("t", 1))), "b": Assignment()}
    phase2, revoked = group.rebalance()
    assert not revoked
    assert phase2 == {
        "a": Assignment(tps(("t", 0), ("t", 1))),
        "b": Assignment(tps(("t", 2), ("t", 3))),
    }


def test_partition_claimed_twice_goes_to_nobody_until_both_revoke() -> None:
    subscriptions = {
        "a": Subscription(["t"], owned_partitions=[("t", 0)], generation_id=4),
        "b": Subscription(["t"], owned_partitions=[("t", 0), ("t", 1)], generation_id=4),
    }
    result = CooperativeStickyAssignor().assign({"t": 2}, subscriptions)
    assert result == {"a": Assignment(), "b": Assignment(tps(("t", 1)))}


def test_stale_owner_still_blocks_the_handover() -> None:
    # c missed a generation: its claims are not honoured, but while it may still be reading
    # t1 nobody else gets it; t2, which only c claims, may go straight back to c.
    subscriptions = {
        "a": Subscription(["t"], owned_partitions=[("t", 0)], generation_id=8),
        "b": Subscription(["t"], generation_id=8),
        "c": Subscription(["t"], owned_partitions=[("t", 1), ("t", 2)], generation_id=7),
    }
    result = CooperativeStickyAssignor().assign({"t": 3}, subscriptions)
    assert result == {
        "a": Assignment(tps(("t", 0))),
        "b": Assignment(),
        "c": Assignment(tps(("t", 2))),
    }


def test_stale_claim_does_not_take_a_partition_from_its_current_owner() -> None:
    subscriptions = {
        "a": Subscription(["t"], owned_partitions=[("t", 0)], generation_id=8),
        "c": Subscription(["t"], owned_partitions=[("t", 0)], generation_id=7),
    }
    result = CooperativeStickyAssignor().assign({"t": 2}, subscriptions)
    assert result == {"a": Assignment(tps(("t", 0))), "c": Assignment(tps(("t", 1)))}


def test_general_builder_withholds_moving_partitions() -> None:
    subscriptions = {
        "a": Subscription(["t", "u"], owned_partitions=[("t", 0), ("t", 1), ("u", 0)],
                          generation_id=2),
        "b": Subscription(["t"], generation_id=-1),
    }
    result = CooperativeStickyAssignor().assign({"t": 2, "u": 1}, subscriptions)
    # b should take one t partition from a, but only after a revokes it.
    assert result["b"] == Assignment()
    assert len(result["a"].partitions) == 2


events = st.lists(
    st.one_of(st.tuples(st.just("leave"), st.integers(0, 7)),
              st.tuples(st.just("join"), st.integers(0, 2**16))),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(group=groups(identical=True), history=events)
def test_two_phase_rebalances_with_identical_subscriptions(
    group: Group, history: list[tuple[str, int]]
) -> None:
    cluster, subscriptions = group
    topics = list(next(iter(subscriptions.values())).topics)
    sim = CooperativeGroup(cluster)
    sim.members = {m: Member(topics) for m in subscriptions}
    before = sim.settle()
    for kind, value in history:
        if kind == "leave" and len(sim.members) > 1:
            del sim.members[sorted(sim.members)[value % len(sim.members)]]
        else:
            sim.members[f"joined-{value}"] = Member(topics)
        after = sim.settle()
        counts = sizes(after).values()
        assert max(counts) - min(counts) <= 1
        for member in sim.members:
            if member in before:
                old, new = set(before[member].partitions), set(after[member].partitions)
                assert len(old & new) == min(len(old), len(new)), member
        before = after


@settings(max_examples=40, deadline=None)
@given(group=groups(identical=False), history=events, data=st.data())
def test_two_phase_rebalances_with_different_subscriptions(
    group: Group, history: list[tuple[str, int]], data: st.DataObject
) -> None:
    cluster, subscriptions = group
    all_topics = sorted({t for s in subscriptions.values() for t in s.topics})
    sim = CooperativeGroup(cluster)
    sim.members = {m: Member(list(s.topics)) for m, s in subscriptions.items()}
    sim.settle()
    for kind, value in history:
        if kind == "leave" and len(sim.members) > 1:
            del sim.members[sorted(sim.members)[value % len(sim.members)]]
        else:
            topics = data.draw(st.lists(st.sampled_from(all_topics), min_size=1, unique=True))
            sim.members[f"joined-{value}"] = Member(topics)
        result = sim.settle()
        assert cost_reducing_path(sim.subscriptions(), result) is None
    everything = subscribed_partitions(cluster, {t for m in sim.members.values() for t in m.topics})
    assert set().union(*(m.owned for m in sim.members.values())) == everything
