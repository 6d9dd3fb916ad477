"""The range assignor (Java's ``RangeAssignor``, protocol name ``range``).

Per topic, the members subscribed to it (static members first by instance id, then by member
id) take contiguous ranges of partitions; the first ``P % C`` members take one extra.  Topics
are assigned independently, so members listed early collect the extras of every topic.

The rack-aware pre-pass of KIP-881 is not implemented: the leader's input here carries no
replica racks, so every assignment is the plain range assignment.
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


class RangeAssignor(ConsumerPartitionAssignor):
    name = "range"

    def assign(
        self,
        cluster_partitions: ClusterPartitions,
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        per_topic = partitions_per_topic(cluster_partitions, all_subscribed_topics(subscriptions))
        assigned = empty_assignments(subscriptions)
        for topic, partitions in per_topic.items():
            members = sorted_members(
                (m for m, sub in subscriptions.items() if topic in sub.topics), subscriptions
            )
            base, extra = divmod(len(partitions), len(members))
            start = 0
            for index, member in enumerate(members):
                length = base + (1 if index < extra else 0)
                assigned[member].extend((topic, p) for p in partitions[start : start + length])
                start += length
        return to_assignments(assigned)
