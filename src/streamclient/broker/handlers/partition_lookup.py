"""From a request's (topic, partition) to the partition's log, with the leader checks
every data-path handler makes (unknown topic, not the leader, fenced leader epoch)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from streamclient.broker.handlers.registry import RequestContext
from streamclient.broker.log import Err, PartitionLog


@dataclass
class PartitionTarget:
    """The outcome of a lookup: a log to serve from, or the error to answer."""

    error: Err
    log: PartitionLog | None = None
    # the partition's leader and epoch as the cluster sees them (-1 when unknown), for
    # the current_leader hints of Produce v10+ and Fetch v12+
    leader_id: int = -1
    leader_epoch: int = -1


def topic_name_for_id(ctx: RequestContext, topic_id: uuid.UUID) -> str | None:
    topic = ctx.state.topic_by_id(topic_id)
    return None if topic is None else topic.name


def topic_id_for_name(ctx: RequestContext, name: str) -> uuid.UUID | None:
    topic = ctx.state.topics.get(name)
    return None if topic is None else topic.topic_id


def _partition_state(ctx: RequestContext, topic: str, partition: int, auto_create: bool) -> Any:
    state = ctx.state
    if auto_create and topic not in state.topics:
        state.maybe_auto_create_topic(topic)
    return state.partition(topic, partition)


def lookup(ctx: RequestContext, topic: str, partition: int, *, current_leader_epoch: int = -1,
           auto_create: bool = False) -> PartitionTarget:
    """The log of ``topic``-``partition`` if this node leads it at the expected epoch."""
    part = _partition_state(ctx, topic, partition, auto_create)
    if part is None:
        return PartitionTarget(Err.UNKNOWN_TOPIC_OR_PARTITION)
    leader, epoch = part.leader, part.leader_epoch
    log = ctx.state.logs.partition(topic, partition)
    if log is None:
        return PartitionTarget(Err.UNKNOWN_TOPIC_OR_PARTITION, None, leader, epoch)
    if current_leader_epoch >= 0:
        if current_leader_epoch < epoch:
            return PartitionTarget(Err.FENCED_LEADER_EPOCH, None, leader, epoch)
        if current_leader_epoch > epoch:
            return PartitionTarget(Err.UNKNOWN_LEADER_EPOCH, None, leader, epoch)
    if leader != ctx.node_id:
        return PartitionTarget(Err.NOT_LEADER_OR_FOLLOWER, None, leader, epoch)
    return PartitionTarget(Err.NONE, log, leader, epoch)


def leader_endpoints(ctx: RequestContext, leader_ids: set[int], endpoint_type: type) -> list[Any]:
    """``NodeEndpoint``s of hinted leaders (KIP-951), so the client can reach them at once."""
    endpoints = []
    for node_id in sorted(leader_ids):
        node = ctx.state.nodes.get(node_id)
        if node is not None and node_id >= 0:
            endpoints.append(endpoint_type(node_id=node_id, host=node.host, port=node.port,
                                           rack=node.rack))
    return endpoints
