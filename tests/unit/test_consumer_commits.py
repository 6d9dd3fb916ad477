"""Offset commits (request with the member's identity, answer classification and its effect
on membership) and the committed-offset / offset-reset requests of ``consumer.offsets``."""

from __future__ import annotations

import pytest

from streamclient.consumer.assignors import Assignment, RoundRobinAssignor
from streamclient.consumer.group.commits import (
    GenerationReset,
    classify_commit_response,
    offset_commit_request,
)
from streamclient.consumer.group.consumer_protocol import encode_assignment
from streamclient.consumer.group.membership import GroupMembership, MemberState
from streamclient.consumer.offsets import (
    OffsetResetStrategy,
    list_offsets_request,
    offset_fetch_request,
    read_list_offsets,
    read_offset_fetch,
    reset_decision,
)
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import (
    CommitFailedError,
    GroupAuthorizationFailedError,
    IllegalArgumentError,
    IllegalGenerationError,
    NoOffsetForPartitionError,
    NotCoordinatorForGroupError,
    OffsetMetadataTooLargeError,
    TopicAuthorizationFailedError,
)
from streamclient.protocol.messages.join_group import JoinGroupResponse
from streamclient.protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from streamclient.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from streamclient.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from streamclient.protocol.messages.sync_group import SyncGroupResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

T0, T1, U0 = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("u", 0)


def commit_response(codes: dict[TopicPartition, int]) -> OffsetCommitResponse:
    by_topic: dict[
        str, list[OffsetCommitResponse.OffsetCommitResponseTopic.OffsetCommitResponsePartition]
    ] = {}
    for tp, code in codes.items():
        by_topic.setdefault(tp.topic, []).append(
            OffsetCommitResponse.OffsetCommitResponseTopic.OffsetCommitResponsePartition(
                partition_index=tp.partition, error_code=code
            )
        )
    return OffsetCommitResponse(
        topics=[
            OffsetCommitResponse.OffsetCommitResponseTopic(name=t, partitions=ps)
            for t, ps in by_topic.items()
        ]
    )


def stable_member(instance_id: str | None = None) -> GroupMembership:
    subs = SubscriptionState()
    subs.subscribe(["t"])
    m = GroupMembership(
        group_id="g",
        subscription=subs,
        assignors=[RoundRobinAssignor()],
        now_ms=0,
        group_instance_id=instance_id,
    )
    m.start_join(0)
    m.on_join_response(
        JoinGroupResponse(generation_id=7, protocol_name="roundrobin", leader="x", member_id="me"),
        0,
    )
    m.on_sync_response(SyncGroupResponse(assignment=encode_assignment(Assignment([T0]))), 0)
    assert m.state is MemberState.STABLE
    return m


@pytest.mark.parametrize("version", range(7, 10))
def test_commit_request_carries_identity(version: int) -> None:
    m = stable_member("inst")
    request = m.commit_request(
        {T0: OffsetAndMetadata(5, "meta"), U0: OffsetAndMetadata(1, "")}, {T0: 3}
    )
    decoded = OffsetCommitRequest.decode(request.encode(version), version)
    assert decoded.generation_id_or_member_epoch == 7
    assert decoded.member_id == "me"
    assert decoded.group_instance_id == "inst"
    parts = {(t.name, p.partition_index): p for t in decoded.topics for p in t.partitions}
    assert parts[("t", 0)].committed_offset == 5
    assert parts[("t", 0)].committed_metadata == "meta"
    assert parts[("t", 0)].committed_leader_epoch == 3
    assert parts[("u", 0)].committed_leader_epoch == -1


def test_commit_without_group_management_has_no_identity() -> None:
    subs = SubscriptionState()
    subs.assign([T0])
    m = GroupMembership(group_id="g", subscription=subs, assignors=[RoundRobinAssignor()], now_ms=0)
    request = m.commit_request({T0: OffsetAndMetadata(1, "")})
    assert (request.generation_id_or_member_epoch, request.member_id) == (-1, "")
    assert request.group_instance_id is None


def test_commit_offsets_accept_aiokafka_forms() -> None:
    request = offset_commit_request("g", {T0: 3, T1: (4, "m")})  # type: ignore[dict-item]
    parts = [(p.committed_offset, p.committed_metadata) for p in request.topics[0].partitions]
    assert parts == [(3, ""), (4, "m")]
    for bad in (-1, "3", (1, 2), None):
        with pytest.raises(IllegalArgumentError):
            offset_commit_request("g", {T0: bad})  # type: ignore[dict-item]


def test_commit_ok() -> None:
    outcome = classify_commit_response(commit_response({T0: 0, T1: 0}), "g")
    assert outcome.ok and outcome.committed == {T0, T1}


@pytest.mark.parametrize(
    ("code", "reset", "rejoin"),
    [
        (22, GenerationReset.GENERATION, False),
        (25, GenerationReset.MEMBER, False),
        (27, GenerationReset.NONE, True),
    ],
)
def test_commit_failed_errors(code: int, reset: GenerationReset, rejoin: bool) -> None:
    m = stable_member()
    outcome = m.on_commit_response(commit_response({T0: code}), 0)
    assert isinstance(outcome.error, CommitFailedError)
    assert getattr(outcome.error.__cause__, "errno", None) == code
    assert outcome.reset is reset and not outcome.retry
    assert m.rejoin_needed
    if reset is GenerationReset.NONE:
        assert m.generation.generation_id == 7
    else:
        assert m.generation.generation_id == -1
        assert (m.generation.member_id == "") is (reset is GenerationReset.MEMBER)


@pytest.mark.parametrize("code", [7, 15, 16])
def test_coordinator_errors_retry_after_rediscovery(code: int) -> None:
    outcome = classify_commit_response(commit_response({T0: code}), "g")
    assert outcome.retry and outcome.coordinator_moved


@pytest.mark.parametrize("code", [14, 3, 88])
def test_retriable_commit_errors(code: int) -> None:
    outcome = classify_commit_response(commit_response({T0: code}), "g")
    assert outcome.retry and not outcome.coordinator_moved


def test_fatal_commit_errors() -> None:
    too_large = classify_commit_response(commit_response({T0: 12}), "g")
    assert isinstance(too_large.error, OffsetMetadataTooLargeError) and not too_large.retry
    group = classify_commit_response(commit_response({T0: 30}), "g")
    assert isinstance(group.error, GroupAuthorizationFailedError)
    topics = classify_commit_response(commit_response({T0: 29, U0: 29, T1: 0}), "g")
    assert isinstance(topics.error, TopicAuthorizationFailedError)
    assert topics.error.args == (["t", "u"],)
    assert topics.committed == {T1}
    with pytest.raises(Exception, match="Error 82"):
        stable_member("inst").on_commit_response(commit_response({T0: 82}), 0)


# --- committed offsets and resets ------------------------------------------------------


@pytest.mark.parametrize("version", [1, 5, 7, 8, 9])
def test_offset_fetch_request_layouts(version: int) -> None:
    request = offset_fetch_request("g", [T1, T0, U0], version)
    decoded = OffsetFetchRequest.decode(request.encode(version), version)
    if version >= 8:
        (group,) = decoded.groups
        assert group.group_id == "g"
        assert [(t.name, t.partition_indexes) for t in group.topics] == [("t", [0, 1]), ("u", [0])]
    else:
        assert decoded.group_id == "g"
        assert [(t.name, t.partition_indexes) for t in decoded.topics] == [
            ("t", [0, 1]),
            ("u", [0]),
        ]
    assert decoded.require_stable is (version >= 7)


def test_read_offset_fetch_v7_layout() -> None:
    Topic = OffsetFetchResponse.OffsetFetchResponseTopic
    Part = Topic.OffsetFetchResponsePartition
    response = OffsetFetchResponse(
        topics=[
            Topic(
                name="t",
                partitions=[
                    Part(
                        partition_index=0,
                        committed_offset=10,
                        committed_leader_epoch=2,
                        metadata="m",
                    ),
                    Part(partition_index=1, committed_offset=-1, metadata=""),
                ],
            ),
            Topic(name="u", partitions=[Part(partition_index=0, error_code=3)]),
        ]
    )
    decoded = OffsetFetchResponse.decode(response.encode(7), 7)
    result = read_offset_fetch(decoded, "g")
    assert result.offsets == {T0: OffsetAndMetadata(10, "m")}
    assert result.leader_epochs == {T0: 2}
    assert result.missing == {T1, U0}
    assert result.error is None


def test_read_offset_fetch_v8_group_error() -> None:
    Group = OffsetFetchResponse.OffsetFetchResponseGroup
    response = OffsetFetchResponse(groups=[Group(group_id="g", error_code=16)])
    result = read_offset_fetch(OffsetFetchResponse.decode(response.encode(8), 8), "g")
    assert isinstance(result.error, NotCoordinatorForGroupError)
    assert result.retry and result.coordinator_moved
    auth = OffsetFetchResponse(groups=[Group(group_id="g", error_code=30)])
    failed = read_offset_fetch(auth, "g")
    assert isinstance(failed.error, GroupAuthorizationFailedError) and not failed.retry


def test_reset_policy() -> None:
    assert OffsetResetStrategy.from_policy("Earliest") is OffsetResetStrategy.EARLIEST
    assert reset_decision(T0, OffsetResetStrategy.LATEST) is OffsetResetStrategy.LATEST
    with pytest.raises(NoOffsetForPartitionError):
        reset_decision(T0, OffsetResetStrategy.NONE)
    with pytest.raises(ValueError):
        OffsetResetStrategy.from_policy("smallest")


@pytest.mark.parametrize("version", [4, 7, 8])
def test_list_offsets_request_and_answer(version: int) -> None:
    request = list_offsets_request(
        {T0: OffsetResetStrategy.EARLIEST, U0: OffsetResetStrategy.LATEST},
        isolation_level=1,
        current_leader_epochs={T0: 5},
    )
    decoded = ListOffsetsRequest.decode(request.encode(version), version)
    assert decoded.isolation_level == 1
    parts = {(t.name, p.partition_index): p for t in decoded.topics for p in t.partitions}
    assert parts[("t", 0)].timestamp == -2 and parts[("t", 0)].current_leader_epoch == 5
    assert parts[("u", 0)].timestamp == -1

    Topic = ListOffsetsResponse.ListOffsetsTopicResponse
    Part = Topic.ListOffsetsPartitionResponse
    response = ListOffsetsResponse(
        topics=[
            Topic(name="t", partitions=[Part(partition_index=0, offset=0, leader_epoch=5)]),
            Topic(name="u", partitions=[Part(partition_index=0, error_code=6)]),
        ]
    )
    found, failed = read_list_offsets(ListOffsetsResponse.decode(response.encode(version), version))
    assert found[T0].offset == 0 and found[T0].leader_epoch == 5 and found[T0].timestamp is None
    assert failed[U0].invalid_metadata


def test_reset_then_apply_list_offsets_answer() -> None:
    subs = SubscriptionState(OffsetResetStrategy.EARLIEST)
    subs.assign([T0])
    subs.request_offset_reset(T0)
    pending = subs.partitions_needing_reset(0)
    request = list_offsets_request(pending, isolation_level=0)
    assert request.topics[0].partitions[0].timestamp == -2
    Topic = ListOffsetsResponse.ListOffsetsTopicResponse
    answer = ListOffsetsResponse(
        topics=[
            Topic(
                name="t",
                partitions=[Topic.ListOffsetsPartitionResponse(partition_index=0, offset=17)],
            )
        ]
    )
    found, _ = read_list_offsets(answer)
    assert subs.complete_reset(T0, pending[T0], found[T0].offset, found[T0].leader_epoch)
    assert subs.has_all_fetch_positions()


def test_illegal_generation_class_is_used_for_cause() -> None:
    outcome = classify_commit_response(commit_response({T0: 22}), "g")
    assert isinstance(outcome.error.__cause__, IllegalGenerationError)
