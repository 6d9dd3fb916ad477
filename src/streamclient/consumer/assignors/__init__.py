"""Partition assignors for consumer groups (public import path).

``RangePartitionAssignor``, ``RoundRobinPartitionAssignor``, ``StickyPartitionAssignor`` and
``AbstractPartitionAssignor`` are the names aiokafka exports from
``aiokafka.coordinator.assignors.range``, ``.roundrobin``, ``.sticky.sticky_assignor`` and
``.abstract``; here they all live in ``streamclient.consumer.assignors``.  The three
built-in ones are our instance-based assignors under aiokafka's names; the consumer creates
an instance per consumer when given the class, so their state is never shared (unlike
aiokafka's ``StickyPartitionAssignor``, aiokafka #1175).  ``AbstractPartitionAssignor`` keeps
aiokafka's classmethod interface for user-written assignors (see :mod:`.compat`).
"""

from streamclient.consumer.assignors.abstract import (
    NO_GENERATION,
    Assignment,
    ClusterPartitions,
    ConsumerPartitionAssignor,
    PartitionAssignorError,
    RebalanceProtocol,
    Subscription,
    TopicPartitionTuple,
    select_group_assignor,
    select_rebalance_protocol,
)
from streamclient.consumer.assignors.compat import (
    AbstractPartitionAssignor,
    AiokafkaAssignorAdapter,
    ClusterView,
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
    resolve_assignor,
    resolve_assignors,
)
from streamclient.consumer.assignors.range import RangeAssignor
from streamclient.consumer.assignors.roundrobin import RoundRobinAssignor
from streamclient.consumer.assignors.sticky import (
    AbstractStickyAssignor,
    CooperativeStickyAssignor,
    StickyAssignor,
)

RangePartitionAssignor = RangeAssignor
RoundRobinPartitionAssignor = RoundRobinAssignor
StickyPartitionAssignor = StickyAssignor

__all__ = [
    "NO_GENERATION",
    "AbstractPartitionAssignor",
    "AbstractStickyAssignor",
    "AiokafkaAssignorAdapter",
    "Assignment",
    "ClusterPartitions",
    "ClusterView",
    "ConsumerPartitionAssignor",
    "ConsumerProtocolMemberAssignment",
    "ConsumerProtocolMemberMetadata",
    "CooperativeStickyAssignor",
    "PartitionAssignorError",
    "RangeAssignor",
    "RangePartitionAssignor",
    "RebalanceProtocol",
    "RoundRobinAssignor",
    "RoundRobinPartitionAssignor",
    "StickyAssignor",
    "StickyPartitionAssignor",
    "Subscription",
    "TopicPartitionTuple",
    "resolve_assignor",
    "resolve_assignors",
    "select_group_assignor",
    "select_rebalance_protocol",
]
