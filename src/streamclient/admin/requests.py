"""The admin client's requests and how their answers are read (sans-IO).

Each builder takes the caller's arguments (already checked by the model classes) and,
where the wire format changed between versions, the version the connection negotiated.
Readers turn responses into plain values; the async client in ``client.py`` decides where
to send and what to retry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from streamclient.errors import UnsupportedVersionError
from streamclient.protocol.messages.alter_configs import AlterConfigsRequest
from streamclient.protocol.messages.create_partitions import CreatePartitionsRequest
from streamclient.protocol.messages.create_topics import CreateTopicsRequest
from streamclient.protocol.messages.delete_records import DeleteRecordsRequest
from streamclient.protocol.messages.delete_topics import DeleteTopicsRequest
from streamclient.protocol.messages.describe_configs import DescribeConfigsRequest
from streamclient.protocol.messages.describe_producers import DescribeProducersRequest
from streamclient.protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
)
from streamclient.protocol.messages.list_offsets import ListOffsetsRequest
from streamclient.protocol.messages.metadata import MetadataRequest, MetadataResponse
from streamclient.protocol.messages.offset_commit import OffsetCommitRequest
from streamclient.protocol.messages.offset_delete import OffsetDeleteRequest
from streamclient.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

from .models import (
    AlterConfigOp,
    AlterConfigOpType,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    PartitionDescription,
    TopicDescription,
    config_value,
)

__all__ = [
    "alter_configs_request",
    "by_topic",
    "create_partitions_request",
    "create_topics_request",
    "delete_records_request",
    "delete_topics_request",
    "describe_configs_request",
    "describe_producers_request",
    "incremental_alter_configs_request",
    "list_offsets_request",
    "metadata_request",
    "offset_commit_request",
    "offset_delete_request",
    "offset_fetch_request",
    "read_offset_fetch",
    "topic_descriptions",
]

# DeleteTopics v6 names topics in a struct list (KIP-516) instead of a string list
_DELETE_TOPICS_BY_STATE: Final = 6
# OffsetFetch v8 asks for groups, not one group (KIP-709)
_OFFSET_FETCH_GROUPS: Final = 8
_OFFSET_FETCH_REQUIRE_STABLE: Final = 7
# ListOffsets' max-timestamp spec (KIP-734) needs v7
_LIST_OFFSETS_MAX_TIMESTAMP: Final = 7
# Metadata before v1 reads an empty topic list as "all topics" and cannot say "none"
_METADATA_NULL_TOPICS: Final = 1


def by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Partition ids grouped by topic, each list sorted, topics in first-seen order."""
    grouped: dict[str, set[int]] = defaultdict(set)
    for tp in partitions:
        grouped[tp.topic].add(tp.partition)
    return {topic: sorted(parts) for topic, parts in grouped.items()}


# --- topics -----------------------------------------------------------------------------


def create_topics_request(new_topics: Sequence[NewTopic], timeout_ms: int,
                          validate_only: bool) -> CreateTopicsRequest:
    topic = CreateTopicsRequest.CreatableTopic
    return CreateTopicsRequest(
        timeout_ms=timeout_ms,
        validate_only=validate_only,
        topics=[topic(
            name=t.name,
            num_partitions=t.num_partitions,
            replication_factor=t.replication_factor,
            assignments=[topic.CreatableReplicaAssignment(partition_index=p, broker_ids=ids)
                         for p, ids in sorted(t.replica_assignments.items())],
            configs=[topic.CreatableTopicConfig(name=k, value=config_value(k, v))
                     for k, v in t.topic_configs.items()],
        ) for t in new_topics])


def delete_topics_request(names: Sequence[str], timeout_ms: int,
                          version: int) -> DeleteTopicsRequest:
    if version >= _DELETE_TOPICS_BY_STATE:
        return DeleteTopicsRequest(
            timeout_ms=timeout_ms,
            topics=[DeleteTopicsRequest.DeleteTopicState(name=n) for n in names])
    return DeleteTopicsRequest(timeout_ms=timeout_ms, topic_names=list(names))


def create_partitions_request(changes: Mapping[str, NewPartitions], timeout_ms: int,
                              validate_only: bool) -> CreatePartitionsRequest:
    topic = CreatePartitionsRequest.CreatePartitionsTopic
    return CreatePartitionsRequest(
        timeout_ms=timeout_ms,
        validate_only=validate_only,
        topics=[topic(
            name=name,
            count=change.total_count,
            assignments=None if change.new_assignments is None else [
                topic.CreatePartitionsAssignment(broker_ids=ids)
                for ids in change.new_assignments],
        ) for name, change in changes.items()])


def metadata_request(topics: Sequence[str] | None, version: int) -> MetadataRequest:
    """Metadata for ``topics`` (``None``: all), never creating any."""
    wire: list[MetadataRequest.MetadataRequestTopic] | None
    if topics is None:
        wire = [] if version < _METADATA_NULL_TOPICS else None
    else:
        if not topics and version < _METADATA_NULL_TOPICS:
            raise UnsupportedVersionError("Metadata v0 cannot ask for no topics")
        wire = [MetadataRequest.MetadataRequestTopic(name=t) for t in topics]
    return MetadataRequest(topics=wire, allow_auto_topic_creation=False)


def topic_descriptions(response: MetadataResponse) -> list[TopicDescription]:
    return [
        TopicDescription(
            name=t.name or "",
            topic_id=t.topic_id,
            is_internal=bool(t.is_internal),
            error_code=t.error_code,
            partitions=tuple(
                PartitionDescription(
                    partition=p.partition_index, leader=p.leader_id,
                    leader_epoch=p.leader_epoch, replicas=tuple(p.replica_nodes),
                    isr=tuple(p.isr_nodes), offline_replicas=tuple(p.offline_replicas),
                    error_code=p.error_code)
                for p in sorted(t.partitions, key=lambda p: p.partition_index)),
        )
        for t in response.topics
    ]


# --- configs ----------------------------------------------------------------------------


def describe_configs_request(resources: Sequence[ConfigResource], include_synonyms: bool,
                             include_documentation: bool) -> DescribeConfigsRequest:
    return DescribeConfigsRequest(
        include_synonyms=include_synonyms,
        include_documentation=include_documentation,
        resources=[DescribeConfigsRequest.DescribeConfigsResource(
            resource_type=int(r.resource_type), resource_name=r.name,
            # aiokafka's rule: None (and an empty dict) asks for every config
            configuration_keys=list(r.configs) if r.configs else None)
            for r in resources])


def alter_configs_request(resources: Sequence[ConfigResource],
                          validate_only: bool) -> AlterConfigsRequest:
    resource = AlterConfigsRequest.AlterConfigsResource
    return AlterConfigsRequest(
        validate_only=validate_only,
        resources=[resource(
            resource_type=int(r.resource_type), resource_name=r.name,
            configs=[resource.AlterableConfig(name=k, value=config_value(k, v))
                     for k, v in (r.configs or {}).items()])
            for r in resources])


def incremental_alter_configs_request(
        resources: Sequence[ConfigResource],
        validate_only: bool) -> IncrementalAlterConfigsRequest:
    """A value means SET, ``None`` DELETE, an ``AlterConfigOp`` says which."""
    resource = IncrementalAlterConfigsRequest.AlterConfigsResource
    return IncrementalAlterConfigsRequest(
        validate_only=validate_only,
        resources=[resource(
            resource_type=int(r.resource_type), resource_name=r.name,
            configs=[resource.AlterableConfig(name=k, config_operation=int(op.op_type),
                                              value=op.value)
                     for k, op in ((k, _as_op(k, v)) for k, v in (r.configs or {}).items())])
            for r in resources])


def _as_op(name: str, value: Any) -> AlterConfigOp:
    if isinstance(value, AlterConfigOp):
        return value
    if value is None:
        return AlterConfigOp(AlterConfigOpType.DELETE)
    return AlterConfigOp(AlterConfigOpType.SET, config_value(name, value))


# --- group offsets ----------------------------------------------------------------------


def offset_fetch_request(group_id: str, partitions: Sequence[TopicPartition] | None,
                         version: int, require_stable: bool) -> OffsetFetchRequest:
    """Committed offsets of ``partitions`` (``None``: every partition with one)."""
    if require_stable and version < _OFFSET_FETCH_REQUIRE_STABLE:
        raise UnsupportedVersionError(
            f"require_stable needs OffsetFetch v{_OFFSET_FETCH_REQUIRE_STABLE}; the broker "
            f"speaks v{version}")
    grouped = None if partitions is None else by_topic(partitions)
    if version >= _OFFSET_FETCH_GROUPS:
        group = OffsetFetchRequest.OffsetFetchRequestGroup
        topics = None if grouped is None else [
            group.OffsetFetchRequestTopics(name=t, partition_indexes=ps)
            for t, ps in grouped.items()]
        return OffsetFetchRequest(require_stable=require_stable,
                                  groups=[group(group_id=group_id, topics=topics)])
    if grouped is None and version < 2:
        raise UnsupportedVersionError("OffsetFetch before v2 cannot ask for all partitions")
    topics_v0 = None if grouped is None else [
        OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=ps)
        for t, ps in grouped.items()]
    return OffsetFetchRequest(group_id=group_id, topics=topics_v0,
                              require_stable=require_stable)


def read_offset_fetch(response: OffsetFetchResponse, version: int
                      ) -> tuple[int, dict[TopicPartition, tuple[OffsetAndMetadata, int]]]:
    """``(group error code, {tp: (OffsetAndMetadata, partition error code)})``."""
    # v8+ nests the topics in a group, as a struct of another name but the same fields
    topics: Sequence[OffsetFetchResponse.OffsetFetchResponseTopic
                     | OffsetFetchResponse.OffsetFetchResponseGroup.OffsetFetchResponseTopics]
    if version >= _OFFSET_FETCH_GROUPS:
        if not response.groups:
            return 0, {}
        [group] = response.groups
        group_error, topics = group.error_code, group.topics
    else:
        group_error, topics = response.error_code, response.topics
    offsets = {
        TopicPartition(t.name, p.partition_index):
            (OffsetAndMetadata(p.committed_offset, p.metadata or ""), p.error_code)
        for t in topics for p in t.partitions
    }
    return group_error, offsets


def offset_commit_request(group_id: str,
                          offsets: Mapping[TopicPartition, OffsetAndMetadata]
                          ) -> OffsetCommitRequest:
    """A commit from outside the group: generation -1 and no member id, as the Java
    admin's alterConsumerGroupOffsets sends (the coordinator accepts it only while the
    group has no members)."""
    topic = OffsetCommitRequest.OffsetCommitRequestTopic
    grouped: dict[str, list[OffsetCommitRequest.OffsetCommitRequestTopic
                            .OffsetCommitRequestPartition]] = defaultdict(list)
    for tp, om in offsets.items():
        grouped[tp.topic].append(topic.OffsetCommitRequestPartition(
            partition_index=tp.partition, committed_offset=om.offset,
            committed_metadata=om.metadata))
    return OffsetCommitRequest(
        group_id=group_id, generation_id_or_member_epoch=-1, member_id="",
        topics=[topic(name=t, partitions=ps) for t, ps in grouped.items()])


def offset_delete_request(group_id: str,
                          partitions: Sequence[TopicPartition]) -> OffsetDeleteRequest:
    topic = OffsetDeleteRequest.OffsetDeleteRequestTopic
    return OffsetDeleteRequest(group_id=group_id, topics=[
        topic(name=t, partitions=[topic.OffsetDeleteRequestPartition(partition_index=p)
                                  for p in ps])
        for t, ps in by_topic(partitions).items()])


# --- partitions on their leaders ----------------------------------------------------------


def delete_records_request(before: Mapping[TopicPartition, int],
                           timeout_ms: int) -> DeleteRecordsRequest:
    topic = DeleteRecordsRequest.DeleteRecordsTopic
    grouped: dict[str, list[Any]] = defaultdict(list)
    for tp, offset in before.items():
        grouped[tp.topic].append(topic.DeleteRecordsPartition(
            partition_index=tp.partition, offset=offset))
    return DeleteRecordsRequest(timeout_ms=timeout_ms, topics=[
        topic(name=t, partitions=ps) for t, ps in grouped.items()])


def list_offsets_request(specs: Mapping[TopicPartition, OffsetSpec], isolation_level: int,
                         version: int) -> ListOffsetsRequest:
    topic = ListOffsetsRequest.ListOffsetsTopic
    grouped: dict[str, list[Any]] = defaultdict(list)
    for tp, spec in specs.items():
        if spec.timestamp == OffsetSpec.MAX_TIMESTAMP and \
                version < _LIST_OFFSETS_MAX_TIMESTAMP:
            raise UnsupportedVersionError(
                f"the max-timestamp offset spec needs ListOffsets "
                f"v{_LIST_OFFSETS_MAX_TIMESTAMP}; the broker speaks v{version}")
        grouped[tp.topic].append(topic.ListOffsetsPartition(
            partition_index=tp.partition, timestamp=spec.timestamp, max_num_offsets=1))
    return ListOffsetsRequest(replica_id=-1, isolation_level=isolation_level, topics=[
        topic(name=t, partitions=ps) for t, ps in grouped.items()])


def describe_producers_request(partitions: Iterable[TopicPartition]
                               ) -> DescribeProducersRequest:
    return DescribeProducersRequest(topics=[
        DescribeProducersRequest.TopicRequest(name=t, partition_indexes=ps)
        for t, ps in by_topic(partitions).items()])
