"""Metadata (key 3): alive brokers, controller, cluster id and topic leadership.

Topics that do not exist are auto-created when the broker allows it and the request does
(v4+ ``allow_auto_topic_creation``; always for v0-3).  Creation is synchronous here, so
an auto-created topic is answered with its partitions at once, where Kafka would say
LEADER_NOT_AVAILABLE until its controller caught up.
"""

from __future__ import annotations

import uuid

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.state import ClusterState, TopicState, validate_topic_name
from streamclient.errors import BrokerResponseError
from streamclient.protocol.messages import MetadataRequest, MetadataResponse

__all__ = ["CLUSTER_OPERATIONS", "TOPIC_OPERATIONS", "topic_metadata"]

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
INVALID_TOPIC = 17
UNKNOWN_TOPIC_ID = 100
NOT_REQUESTED = -(1 << 31)


def _bits(*operations: int) -> int:
    return sum(1 << op for op in operations)


# Kafka's AclOperation codes: no ACLs here, so everything a topic or cluster allows
TOPIC_OPERATIONS = _bits(3, 4, 5, 6, 7, 8, 10, 11)  # READ WRITE CREATE DELETE ALTER DESCRIBE …
CLUSTER_OPERATIONS = _bits(5, 7, 8, 9, 10, 11, 12, 13, 14)

Topic = MetadataResponse.MetadataResponseTopic
Partition = Topic.MetadataResponsePartition


def topic_metadata(state: ClusterState, meta: TopicState, *,
                   include_operations: bool = False) -> Topic:
    alive = state.alive_node_ids()
    partitions = [
        Partition(
            error_code=NONE if part.leader >= 0 else LEADER_NOT_AVAILABLE,
            partition_index=part.index,
            leader_id=part.leader,
            leader_epoch=part.leader_epoch,
            replica_nodes=list(part.replicas),
            isr_nodes=list(part.isr),
            offline_replicas=part.offline_replicas(alive),
        )
        for part in meta.partitions
    ]
    return Topic(
        error_code=NONE, name=meta.name, topic_id=meta.topic_id, is_internal=meta.internal,
        partitions=partitions,
        topic_authorized_operations=TOPIC_OPERATIONS if include_operations else NOT_REQUESTED,
    )


def _missing(name: str | None, error_code: int, topic_id: uuid.UUID | None = None) -> Topic:
    return Topic(error_code=error_code, name=name,
                 topic_id=topic_id or uuid.UUID(int=0), partitions=[])


def _lookup(state: ClusterState, wanted: MetadataRequest.MetadataRequestTopic,
            auto_create: bool, include_operations: bool) -> Topic:
    if wanted.name is None:
        meta = state.topic_by_id(wanted.topic_id)
        if meta is None:
            return _missing(None, UNKNOWN_TOPIC_ID, wanted.topic_id)
        return topic_metadata(state, meta, include_operations=include_operations)
    name = wanted.name
    meta = state.topics.get(name)
    if meta is None:
        try:
            validate_topic_name(name)
        except BrokerResponseError:
            return _missing(name, INVALID_TOPIC)
        if auto_create:
            meta = state.maybe_auto_create_topic(name)
        if meta is None:
            return _missing(name, UNKNOWN_TOPIC_OR_PARTITION)
    return topic_metadata(state, meta, include_operations=include_operations)


@handles(MetadataRequest)
async def handle(ctx: RequestContext, request: MetadataRequest,
                 version: int) -> MetadataResponse:
    state = ctx.state
    include_ops = bool(request.include_topic_authorized_operations)
    # v0 has no null: an empty list meant "every topic" before v1
    every_topic = request.topics is None or (version == 0 and not request.topics)
    if every_topic:
        topics = [topic_metadata(state, meta, include_operations=include_ops)
                  for _, meta in sorted(state.topics.items())]
    else:
        auto_create = version < 4 or bool(request.allow_auto_topic_creation)
        topics = [_lookup(state, wanted, auto_create, include_ops)
                  for wanted in request.topics or []]
    brokers = [MetadataResponse.MetadataResponseBroker(node_id=n.node_id, host=n.host,
                                                        port=n.port, rack=n.rack)
               for n in state.alive_nodes()]
    return MetadataResponse(
        brokers=brokers,
        cluster_id=state.cluster_id,
        controller_id=state.controller_id,
        topics=topics,
        cluster_authorized_operations=(
            CLUSTER_OPERATIONS if request.include_cluster_authorized_operations
            else NOT_REQUESTED),
    )
