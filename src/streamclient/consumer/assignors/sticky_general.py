"""The sticky assignment when members subscribe to different topics.

Java's ``GeneralAssignmentBuilder`` keeps what members owned, gives each unassigned
partition to the least-loaded eligible member and then moves single partitions while that
improves balance.  Moving one partition at a time can stall short of the best balance (member
A can only pass to B, B only to C: A=3, B=2, C=1 is stuck).  We keep the same first two steps
and then balance along *cost-reducing paths* instead: a chain A→B→C where each hop hands over
a partition the next member is subscribed to, ending at a member with at least two fewer
partitions than the start.  An assignment with no such path is optimally balanced (Harvey,
Ladner, Lovász, Tamir, "Semi-matchings for bipartite graphs and load balancing", 2006), and
each path moves as few partitions as possible (shortest path first, and on every hop a
partition the giver did not own before this round, or one going back to its previous owner).
Every step strictly lowers the sum of squared member sizes, so the loop ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

from streamclient.consumer.assignors.abstract import TopicPartitionTuple


class _Holdings:
    """Who holds what, by member and topic, with the sizes the balancing reads.

    ``fresh`` counts, per member and topic, the partitions the member did not own when the
    rebalance started: moving those costs no revocation.
    """

    def __init__(self, members: Sequence[str], original: Mapping[TopicPartitionTuple, str]) -> None:
        self.by_member: dict[str, dict[str, set[int]]] = {m: {} for m in members}
        self.fresh: dict[str, dict[str, int]] = {m: {} for m in members}
        self.size: dict[str, int] = dict.fromkeys(members, 0)
        self._original = original

    def add(self, member: str, tp: TopicPartitionTuple) -> None:
        self.by_member[member].setdefault(tp[0], set()).add(tp[1])
        self.size[member] += 1
        if self._original.get(tp) != member:
            fresh = self.fresh[member]
            fresh[tp[0]] = fresh.get(tp[0], 0) + 1

    def remove(self, member: str, tp: TopicPartitionTuple) -> None:
        topics = self.by_member[member]
        topics[tp[0]].discard(tp[1])
        if not topics[tp[0]]:
            del topics[tp[0]]
        self.size[member] -= 1
        if self._original.get(tp) != member:
            self.fresh[member][tp[0]] -= 1

    def topics_to_give(self, member: str, fresh_only: bool) -> list[str]:
        if fresh_only:
            return sorted(t for t, n in self.fresh[member].items() if n > 0)
        return sorted(self.by_member[member])

    def result(self) -> dict[str, list[TopicPartitionTuple]]:
        return {
            m: sorted((t, p) for t, ps in topics.items() for p in ps)
            for m, topics in self.by_member.items()
        }


def assign_general(
    members: Sequence[str],
    subscribed: Mapping[str, Set[str]],
    all_partitions: Sequence[TopicPartitionTuple],
    owned: Mapping[str, Sequence[TopicPartitionTuple]],
    previous_owner: Mapping[TopicPartitionTuple, str],
) -> dict[str, list[TopicPartitionTuple]]:
    """Assign ``all_partitions`` to ``members`` given each member's topics.

    ``owned`` are the valid claims of the latest generation; ``previous_owner`` names an
    owner from an older generation, used only to prefer giving a partition back to it.
    """
    ordered = sorted(members)
    eligible: dict[str, list[str]] = {}
    for member in ordered:
        for topic in subscribed[member]:
            eligible.setdefault(topic, []).append(member)

    original: dict[TopicPartitionTuple, str] = {}
    for member in ordered:
        for tp in owned.get(member, ()):
            # A partition of a topic the member dropped is revoked from it.
            if tp[0] in subscribed[member]:
                original[tp] = member
    holdings = _Holdings(ordered, original)
    for tp, member in original.items():
        holdings.add(member, tp)

    # The partitions with the fewest candidates go first, while there is still room.
    unassigned = sorted(
        (tp for tp in all_partitions if tp not in original and tp[0] in eligible),
        key=lambda tp: (len(eligible[tp[0]]), tp),
    )
    for tp in unassigned:
        back_to = previous_owner.get(tp)
        member = min(
            eligible[tp[0]], key=lambda m: (holdings.size[m], m != back_to, m)
        )
        holdings.add(member, tp)

    # Balance first by moving only partitions nobody owned before; only if that cannot
    # reach the best balance are owned partitions moved (each such move is a revocation).
    # When an optimum exists that leaves every owned partition in place (as in the second
    # rebalance of a cooperative pair, where the first one already chose it), the first
    # stage finds one, so that rebalance revokes nothing.
    for fresh_only in (True, False):
        while True:
            path = _cost_reducing_path(ordered, eligible, holdings, fresh_only)
            if path is None:
                break
            for giver, taker, topic in path:
                tp = _partition_to_move(
                    holdings, giver, taker, topic, original, previous_owner
                )
                holdings.remove(giver, tp)
                holdings.add(taker, tp)
    return holdings.result()


def _cost_reducing_path(
    members: Sequence[str],
    eligible: Mapping[str, Sequence[str]],
    holdings: _Holdings,
    fresh_only: bool,
) -> list[tuple[str, str, str]] | None:
    """The shortest chain of hand-overs from a large member to one two or more smaller.

    Each hop is ``(giver, taker, topic)``.  Larger starting members are tried first.  With
    ``fresh_only`` a hop may only hand over a partition the giver did not own before.
    """
    size = holdings.size
    smallest = min(size.values(), default=0)
    for start in sorted(members, key=lambda m: (-size[m], m)):
        if size[start] < smallest + 2:
            return None
        parent: dict[str, tuple[str, str]] = {}
        seen = {start}
        layer = [start]
        while layer:
            following: list[str] = []
            for giver in layer:
                for topic in holdings.topics_to_give(giver, fresh_only):
                    for taker in eligible[topic]:
                        if taker not in seen:
                            seen.add(taker)
                            parent[taker] = (giver, topic)
                            following.append(taker)
            targets = [m for m in following if size[m] <= size[start] - 2]
            if targets:
                end = min(targets, key=lambda m: (size[m], m))
                hops: list[tuple[str, str, str]] = []
                while end != start:
                    giver, topic = parent[end]
                    hops.append((giver, end, topic))
                    end = giver
                hops.reverse()
                return hops
            layer = following
    return None


def _partition_to_move(
    holdings: _Holdings,
    giver: str,
    taker: str,
    topic: str,
    original: Mapping[TopicPartitionTuple, str],
    previous_owner: Mapping[TopicPartitionTuple, str],
) -> TopicPartitionTuple:
    def cost(partition: int) -> tuple[bool, bool, int]:
        tp = (topic, partition)
        returning = original.get(tp) == taker or previous_owner.get(tp) == taker
        return (not returning, original.get(tp) == giver, partition)

    return (topic, min(holdings.by_member[giver][topic], key=cost))
