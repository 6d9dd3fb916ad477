"""The round-robin assignor (Java's ``RoundRobinAssignor``, protocol name ``roundrobin``).

All partitions of all subscribed topics, topics by name and partitions ascending, are dealt
to the members in ``MemberInfo`` order (static members by instance id first), skipping a
member that is not subscribed to the partition's topic.  With identical subscriptions the
counts differ by at most one.
"""

from __future__ import annotations

from collections.abc import Mapping

from streamclient.consumer.assignors.abstract import (
    Assignment,
    ClusterPartitions,
    ConsumerPartitionAssignor,
    Subscription,
    all_subscribed_topics,
    empty_assignments,
    partitions_per_topic,
    sorted_members,
    to_assignments,
)


class RoundRobinAssignor(ConsumerPartitionAssignor):
    name = "roundrobin"

    def assign(
        self,
        cluster_partitions: ClusterPartitions,
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        per_topic = partitions_per_topic(cluster_partitions, all_subscribed_topics(subscriptions))
        assigned = empty_assignments(subscriptions)
        ring = sorted_members(subscriptions, subscriptions)
        position = 0
        for topic, partitions in per_topic.items():
            for partition in partitions:
                # Some member is subscribed to every listed topic, so this finds one within
                # one turn of the ring, as Java's CircularIterator does.
                while topic not in subscriptions[ring[position]].topics:
                    position = (position + 1) % len(ring)
                assigned[ring[position]].append((topic, partition))
                position = (position + 1) % len(ring)
        return to_assignments(assigned)
