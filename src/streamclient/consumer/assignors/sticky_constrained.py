"""The sticky assignment when every member subscribes to the same topics.

This is Java's ``ConstrainedAssignmentBuilder`` without the rack pass: quotas are known up
front (``min = P // C``, ``max = ceil(P / C)``, exactly ``P % C`` members at max), members
keep what they owned up to their quota, and the rest is dealt round-robin to the members
still below quota.  Java walks the owners in ``HashMap`` order; we walk them by member id, so
who keeps the larger quota can differ from Java while every invariant holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence, Set

from streamclient.consumer.assignors.abstract import PartitionAssignorError, TopicPartitionTuple


def _by_partition_then_topic(tp: TopicPartitionTuple) -> tuple[int, str]:
    # Keeping the lowest partition numbers first spreads what a member keeps over topics.
    return (tp[1], tp[0])


def assign_constrained(
    members: Sequence[str],
    all_partitions: Sequence[TopicPartitionTuple],
    owned: Mapping[str, Sequence[TopicPartitionTuple]],
) -> dict[str, list[TopicPartitionTuple]]:
    """Assign ``all_partitions`` (topics by name, partitions ascending) to ``members``.

    ``owned`` holds each member's valid previous partitions: partitions claimed twice in the
    latest generation must already be removed from it.
    """
    min_quota, expected_over = divmod(len(all_partitions), len(members))
    max_quota = min_quota + (1 if expected_over else 0)
    current_over = 0
    assignment: dict[str, list[TopicPartitionTuple]] = {m: [] for m in members}
    under_min: list[str] = []
    exactly_min: list[str] = []

    for member in sorted(members):
        kept = sorted(owned.get(member, ()), key=_by_partition_then_topic)
        if len(kept) < min_quota:
            assignment[member].extend(kept)
            under_min.append(member)
        elif len(kept) >= max_quota and current_over < expected_over:
            current_over += 1
            if current_over == expected_over:
                # Every over-quota slot is taken: nobody at min may grow any more.
                exactly_min.clear()
            assignment[member].extend(kept[:max_quota])
        else:
            assignment[member].extend(kept[:min_quota])
            if current_over < expected_over:
                exactly_min.append(member)

    taken: Set[TopicPartitionTuple] = {tp for tps in assignment.values() for tp in tps}
    unassigned = [tp for tp in all_partitions if tp not in taken]
    under_min.sort()
    can_grow = deque(sorted(exactly_min))

    index = 0
    for tp in unassigned:
        if under_min:
            if index >= len(under_min):
                index = 0
            member = under_min[index]
        elif can_grow:
            member = can_grow.popleft()
        else:
            raise PartitionAssignorError(
                f"sticky assignment ran out of members with room for {tp}"
            )
        assignment[member].append(tp)
        count = len(assignment[member])
        if under_min and under_min[index] == member:
            if count == min_quota:
                # Java removes the member through its iterator: the next member slides into
                # this index, so the index does not advance.
                under_min.pop(index)
                can_grow.append(member)
            else:
                index += 1
        elif count == max_quota:
            current_over += 1

    _verify_quotas(assignment, min_quota, max_quota, expected_over)
    return assignment


def _verify_quotas(
    assignment: Mapping[str, list[TopicPartitionTuple]],
    min_quota: int,
    max_quota: int,
    expected_over: int,
) -> None:
    sizes = [len(tps) for tps in assignment.values()]
    over = sum(1 for s in sizes if s == max_quota and max_quota != min_quota)
    if any(s < min_quota or s > max_quota for s in sizes) or (
        max_quota != min_quota and over != expected_over
    ):
        raise PartitionAssignorError(
            f"sticky assignment broke its quotas (min {min_quota}, max {max_quota}): {sizes}"
        )
