"""The assignor interface: protocol choice, resolving partition_assignment_strategy, and
aiokafka-style assignors (including aiokafka's own) running behind it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from aiokafka.coordinator.assignors.range import RangePartitionAssignor as AiokafkaRange
from aiokafka.coordinator.assignors.roundrobin import (
    RoundRobinPartitionAssignor as AiokafkaRoundRobin,
)
from hypothesis import given, settings
from test_assignors_groups import Group, groups

from streamclient.consumer.assignors import (
    AbstractPartitionAssignor,
    AiokafkaAssignorAdapter,
    Assignment,
    ClusterView,
    ConsumerPartitionAssignor,
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
    CooperativeStickyAssignor,
    PartitionAssignorError,
    RangeAssignor,
    RebalanceProtocol,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
    resolve_assignor,
    resolve_assignors,
    select_group_assignor,
    select_rebalance_protocol,
)
from streamclient.errors import KafkaConfigurationError


class CooperativeOnly(ConsumerPartitionAssignor):
    name = "coop-only"
    supported_protocols = (RebalanceProtocol.COOPERATIVE,)

    def assign(
        self, cluster_partitions: Mapping[str, object], subscriptions: Mapping[str, Subscription]
    ) -> dict[str, Assignment]:
        return {m: Assignment() for m in subscriptions}


@pytest.mark.parametrize(
    ("assignors", "expected"),
    [
        ([RangeAssignor()], RebalanceProtocol.EAGER),
        ([CooperativeStickyAssignor()], RebalanceProtocol.COOPERATIVE),
        # Java's default list runs eager: range cannot cooperate.
        ([RangeAssignor(), CooperativeStickyAssignor()], RebalanceProtocol.EAGER),
        ([CooperativeOnly(), CooperativeStickyAssignor()], RebalanceProtocol.COOPERATIVE),
    ],
)
def test_rebalance_protocol_is_the_highest_all_support(
    assignors: list[ConsumerPartitionAssignor], expected: RebalanceProtocol
) -> None:
    assert select_rebalance_protocol(assignors) == expected


def test_no_common_rebalance_protocol_is_a_configuration_error() -> None:
    with pytest.raises(KafkaConfigurationError, match="share no rebalance protocol"):
        select_rebalance_protocol([RangeAssignor(), CooperativeOnly()])
    with pytest.raises(KafkaConfigurationError):
        select_rebalance_protocol([])


def test_group_assignor_choice_by_vote_among_common_names() -> None:
    # Only names every member lists count; each member votes for its first such name.
    assert select_group_assignor({
        "a": ["cooperative-sticky", "range"],
        "b": ["range", "cooperative-sticky"],
        "c": ["cooperative-sticky", "roundrobin", "range"],
    }) == "cooperative-sticky"
    assert select_group_assignor({
        "a": ["sticky", "range"],
        "b": ["roundrobin", "range"],
    }) == "range"
    # A tie goes to the smaller name, so every run agrees.
    assert select_group_assignor({"a": ["range", "sticky"], "b": ["sticky", "range"]}) == "range"
    with pytest.raises(PartitionAssignorError):
        select_group_assignor({"a": ["range"], "b": ["sticky"]})
    with pytest.raises(PartitionAssignorError):
        select_group_assignor({})


def test_classes_become_one_instance_per_consumer() -> None:
    first, second = resolve_assignor(StickyAssignor), resolve_assignor(StickyAssignor)
    assert isinstance(first, StickyAssignor)
    assert first is not second
    first.on_assignment(Assignment([("t", 0)]), 1)
    assert second.subscription_user_data(["t"]) is None
    instance = RangeAssignor()
    assert resolve_assignor(instance) is instance


def test_resolve_rejects_non_assignors_and_duplicates() -> None:
    with pytest.raises(KafkaConfigurationError, match="not a partition assignor"):
        resolve_assignor("range")
    with pytest.raises(KafkaConfigurationError, match="unique"):
        resolve_assignors([RangeAssignor, RangeAssignor()])
    with pytest.raises(KafkaConfigurationError):
        resolve_assignors([])
    names = [a.name for a in resolve_assignors([RangeAssignor, CooperativeStickyAssignor])]
    assert names == ["range", "cooperative-sticky"]


class GenerationCounting(AbstractPartitionAssignor):
    """Written the aiokafka way: classmethods and class-level state."""

    name = "everything-to-first"
    seen: list[object] = []
    generations: list[int] = []

    @classmethod
    def assign(
        cls, cluster: ClusterView, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        first = min(members)
        topics = sorted({t for m in members.values() for t in m.subscription})
        assignment = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
        return {
            m: ConsumerProtocolMemberAssignment(0, assignment if m == first else [], b"hi")
            for m in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(0, sorted(topics), b"meta")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        cls.seen.append(assignment.partitions())

    @classmethod
    def on_generation_assignment(cls, generation: int) -> None:
        cls.generations.append(generation)


def test_aiokafka_style_class_runs_through_the_adapter() -> None:
    assignor = resolve_assignor(GenerationCounting)
    assert isinstance(assignor, AiokafkaAssignorAdapter)
    assert assignor.name == "everything-to-first"
    assert assignor.subscription_user_data(["t"]) == b"meta"
    result = assignor.assign(
        {"t": 2, "u": 1}, {"b": Subscription(["t", "u"]), "a": Subscription(["t"])}
    )
    assert result == {
        "a": Assignment([("t", 0), ("t", 1), ("u", 0)], b"hi"),
        "b": Assignment([], b"hi"),
    }
    assignor.on_assignment(result["a"], 12)
    assert GenerationCounting.seen[-1] == [("t", 0), ("t", 1), ("u", 0)]
    # aiokafka never calls on_generation_assignment (#1176); the adapter does.
    assert GenerationCounting.generations[-1] == 12


def test_adapter_rejects_a_malformed_result() -> None:
    class Broken(GenerationCounting):
        name = "broken"

        @classmethod
        def assign(cls, cluster, members):  # type: ignore[no-untyped-def, override]
            return {"stranger": ConsumerProtocolMemberAssignment(0, [], None)}

    with pytest.raises(PartitionAssignorError, match="unknown member"):
        resolve_assignor(Broken).assign({"t": 1}, {"m": Subscription(["t"])})


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [(AiokafkaRange, RangeAssignor), (AiokafkaRoundRobin, RoundRobinAssignor)],
)
@settings(max_examples=40, deadline=None)
@given(group=groups(identical=True))
def test_aiokafka_own_assignors_agree_with_ours(
    theirs: type, ours: type[ConsumerPartitionAssignor], group: Group
) -> None:
    cluster, subscriptions = group
    # aiokafka orders members by member id only (no static-member rule), so compare on
    # dynamic members, where the Java order is the same.
    dynamic = {m: Subscription(s.topics) for m, s in subscriptions.items()}
    adapted = resolve_assignor(theirs)
    assert isinstance(adapted, AiokafkaAssignorAdapter)
    expected = ours().assign(cluster, dynamic)
    got = adapted.assign(cluster, dynamic)
    assert {m: a.partitions for m, a in got.items()} == {
        m: a.partitions for m, a in expected.items()
    }
