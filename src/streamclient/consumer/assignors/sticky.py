"""The sticky assignors: ``sticky`` (eager) and ``cooperative-sticky`` (KIP-54, KIP-429).

Both aim for a balanced assignment that moves as few partitions as possible.  What differs
is where a member's previous partitions come from and what happens to a partition that
changes owner:

- ``sticky`` runs EAGER: members give up everything before the rebalance, so each one sends
  its last assignment and generation in its user data.
- ``cooperative-sticky`` runs COOPERATIVE (or EAGER): members keep their partitions through
  the rebalance and send them as the subscription's owned partitions (v1+) with the
  generation (v2+, else in the user data).  A partition still owned by one member is never
  handed to another in the same rebalance: it stays unassigned, its owner revokes it, and
  the follow-up rebalance gives it to its new owner.

Outputs are deterministic (members and partitions walked in sorted order) and can differ
from the Java client's, which depend on ``HashMap`` order; the invariants are the same.
The rack-aware passes of KIP-881 are not implemented: the input carries no replica racks.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from streamclient.consumer.assignors.abstract import (
    NO_GENERATION,
    Assignment,
    ClusterPartitions,
    ConsumerPartitionAssignor,
    RebalanceProtocol,
    Subscription,
    TopicPartitionTuple,
    all_subscribed_topics,
    partitions_per_topic,
    to_assignments,
)
from streamclient.consumer.assignors.sticky_constrained import assign_constrained
from streamclient.consumer.assignors.sticky_general import assign_general
from streamclient.consumer.assignors.sticky_user_data import (
    MemberData,
    decode_cooperative_user_data,
    decode_sticky_user_data,
    encode_cooperative_user_data,
    encode_sticky_user_data,
)


@dataclass
class PreviousOwnership:
    """The claims of the members, resolved (Java's ``allSubscriptionsEqual`` bookkeeping).

    Only members of the latest generation keep their claims: a member with an older
    generation missed a rebalance, so what it thinks it owns is stale.  A partition claimed
    by two members of the latest generation is valid for neither.
    """

    owned: dict[str, list[TopicPartitionTuple]]
    claimed_twice: set[TopicPartitionTuple]
    previous_owner: dict[TopicPartitionTuple, str]
    max_generation: int


def resolve_ownership(
    member_data: Mapping[str, MemberData], existing: Collection[TopicPartitionTuple]
) -> PreviousOwnership:
    max_generation = max((d.generation for d in member_data.values()), default=NO_GENERATION)
    owned: dict[str, list[TopicPartitionTuple]] = {m: [] for m in member_data}
    owner: dict[TopicPartitionTuple, str] = {}
    claimed_twice: set[TopicPartitionTuple] = set()
    previous_owner: dict[TopicPartitionTuple, str] = {}
    previous_generation: dict[TopicPartitionTuple, int] = {}
    for member in sorted(member_data):
        data = member_data[member]
        for tp in dict.fromkeys(data.partitions):
            if tp not in existing:
                continue
            if data.generation < max_generation:
                if data.generation > previous_generation.get(tp, NO_GENERATION - 1):
                    previous_generation[tp] = data.generation
                    previous_owner[tp] = member
            elif tp in claimed_twice:
                continue
            elif tp in owner:
                owned[owner[tp]].remove(tp)
                claimed_twice.add(tp)
            else:
                owner[tp] = member
                owned[member].append(tp)
    return PreviousOwnership(owned, claimed_twice, previous_owner, max_generation)


class AbstractStickyAssignor(ConsumerPartitionAssignor):
    """Java's ``AbstractStickyAssignor``: subclasses say where previous ownership comes from."""

    @abc.abstractmethod
    def member_data(self, subscription: Subscription) -> MemberData:
        """The partitions a member owned and the generation it owned them in."""

    def assign(
        self,
        cluster_partitions: ClusterPartitions,
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        if not subscriptions:
            return {}
        per_topic = partitions_per_topic(cluster_partitions, all_subscribed_topics(subscriptions))
        all_partitions = [(t, p) for t, ps in per_topic.items() for p in ps]
        members = sorted(subscriptions)
        data = {m: self.member_data(subscriptions[m]) for m in members}
        ownership = resolve_ownership(data, set(all_partitions))
        subscribed = {
            m: frozenset(t for t in subscriptions[m].topics if t in per_topic) for m in members
        }
        if len(set(subscribed.values())) == 1:
            result = assign_constrained(members, all_partitions, ownership.owned)
        else:
            result = assign_general(
                members, subscribed, all_partitions, ownership.owned, ownership.previous_owner
            )
        return to_assignments(self.adjust_assignment(result, data, ownership))

    def adjust_assignment(
        self,
        assignment: dict[str, list[TopicPartitionTuple]],
        member_data: Mapping[str, MemberData],
        ownership: PreviousOwnership,
    ) -> dict[str, list[TopicPartitionTuple]]:
        """A hook run on the balanced assignment before it is returned."""
        return assignment


class StickyAssignor(AbstractStickyAssignor):
    """``sticky``: eager; previous ownership travels in the user data (V1, V0 fallback)."""

    name = "sticky"
    supported_protocols = (RebalanceProtocol.EAGER,)

    def __init__(self) -> None:
        self._member_assignment: tuple[TopicPartitionTuple, ...] | None = None
        self._generation = NO_GENERATION

    def subscription_user_data(self, topics: Collection[str]) -> bytes | None:
        # Nothing to be sticky about before the first assignment (Java sends null too).
        if self._member_assignment is None:
            return None
        return encode_sticky_user_data(self._member_assignment, self._generation)

    def on_assignment(self, assignment: Assignment, generation: int) -> None:
        self._member_assignment = tuple(assignment.partitions)
        self._generation = generation

    def member_data(self, subscription: Subscription) -> MemberData:
        # Eager members revoke everything before joining, so the subscription's owned
        # partitions are empty: only the user data says what they had.
        return decode_sticky_user_data(subscription.user_data)


class CooperativeStickyAssignor(AbstractStickyAssignor):
    """``cooperative-sticky``: never hands a partition over while its owner still has it."""

    name = "cooperative-sticky"
    supported_protocols = (RebalanceProtocol.COOPERATIVE, RebalanceProtocol.EAGER)

    def __init__(self) -> None:
        self._generation = NO_GENERATION

    def subscription_user_data(self, topics: Collection[str]) -> bytes | None:
        # For brokers/peers that only see subscription v0/v1, which cannot carry the
        # generation; v2+ readers take it from the subscription instead.
        return encode_cooperative_user_data(self._generation)

    def on_assignment(self, assignment: Assignment, generation: int) -> None:
        self._generation = generation

    def member_data(self, subscription: Subscription) -> MemberData:
        if subscription.generation_id != NO_GENERATION:
            return MemberData(tuple(subscription.owned_partitions), subscription.generation_id)
        return MemberData(
            tuple(subscription.owned_partitions),
            decode_cooperative_user_data(subscription.user_data),
        )

    def adjust_assignment(
        self,
        assignment: dict[str, list[TopicPartitionTuple]],
        member_data: Mapping[str, MemberData],
        ownership: PreviousOwnership,
    ) -> dict[str, list[TopicPartitionTuple]]:
        # A partition goes to a member that does not validly own it only if no other member
        # reports owning it, whatever that member's generation: a claim by two members of
        # the latest generation, or by a member that missed a generation, still means
        # someone may be reading it.  Java withholds the partitions its builders saw change
        # owner; counting every claim is at least as safe and also covers a stale owner.
        # The member then revokes it, and the next rebalance hands it over.
        claimants: dict[TopicPartitionTuple, set[str]] = {}
        for member, data in member_data.items():
            for tp in data.partitions:
                claimants.setdefault(tp, set()).add(member)
        adjusted: dict[str, list[TopicPartitionTuple]] = {}
        for member, tps in assignment.items():
            keeps = set(ownership.owned.get(member, ()))
            adjusted[member] = [
                tp for tp in tps if tp in keeps or not (claimants.get(tp, set()) - {member})
            ]
        return adjusted
