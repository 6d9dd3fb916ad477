"""OffsetFetch: committed offsets of one group (v0-7) or several (v8+)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamclient.broker.groups.error_code import Code
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import OffsetFetchRequest, OffsetFetchResponse

_V0Topic = OffsetFetchResponse.OffsetFetchResponseTopic
_V0Partition = _V0Topic.OffsetFetchResponsePartition
_Group = OffsetFetchResponse.OffsetFetchResponseGroup
_GTopic = _Group.OffsetFetchResponseTopics
_GPartition = _GTopic.OffsetFetchResponsePartitions


def _fetch(
    ctx: RequestContext, group_id: str, topics: Iterable[Any] | None, require_stable: bool
) -> tuple[Code, dict[str, list[tuple[int, int, int, str, Code]]]]:
    """Group-level error and, by topic, (partition, offset, leader epoch, metadata, error)."""
    wanted = None
    if topics is not None:
        wanted = [(t.name, p) for t in topics for p in t.partition_indexes]
    code, fetched = ctx.state.groups.fetch_offsets(
        ctx.node_id, group_id, wanted, require_stable=require_stable
    )
    by_topic: dict[str, list[tuple[int, int, int, str, Code]]] = {}
    if code is not Code.NONE:
        for topic, partition in wanted or []:
            by_topic.setdefault(topic, []).append((partition, -1, -1, "", code))
        return code, by_topic
    for (topic, partition), (om, err) in fetched.items():
        if om is None:
            by_topic.setdefault(topic, []).append((partition, -1, -1, "", err))
        else:
            by_topic.setdefault(topic, []).append(
                (partition, om.offset, om.leader_epoch, om.metadata, err)
            )
    return Code.NONE, by_topic


@handles(OffsetFetchRequest, 0, 9)
async def handle(
    ctx: RequestContext, request: OffsetFetchRequest, version: int
) -> OffsetFetchResponse:
    require_stable = request.require_stable if version >= 7 else False
    if version >= 8:
        groups = []
        for g in request.groups:
            code, by_topic = _fetch(ctx, g.group_id, g.topics, require_stable)
            groups.append(
                _Group(
                    group_id=g.group_id,
                    error_code=code,
                    topics=[] if code is not Code.NONE else [
                        _GTopic(name=name, partitions=[
                            _GPartition(partition_index=p, committed_offset=o,
                                        committed_leader_epoch=e, metadata=m, error_code=err)
                            for p, o, e, m, err in parts
                        ])
                        for name, parts in by_topic.items()
                    ],
                )
            )
        return OffsetFetchResponse(groups=groups)
    code, by_topic = _fetch(ctx, request.group_id, request.topics, require_stable)
    return OffsetFetchResponse(
        error_code=code if version >= 2 else 0,
        topics=[
            _V0Topic(name=name, partitions=[
                _V0Partition(partition_index=p, committed_offset=o,
                             committed_leader_epoch=e if version >= 5 else -1,
                             metadata=m, error_code=err)
                for p, o, e, m, err in parts
            ])
            for name, parts in by_topic.items()
        ],
    )
