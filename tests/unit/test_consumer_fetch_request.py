"""The sessionless FetchRequest built from the subscription, at the versions brokers use,
and matching a FetchResponse back to the partitions asked for."""

from __future__ import annotations

import uuid

import pytest

from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.fetch_request import (
    build_fetch_request,
    fetch_version,
    response_partitions,
)
from streamclient.consumer.offsets import OffsetResetStrategy
from streamclient.consumer.records import read_partition_response
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import UnknownTopicIdError
from streamclient.protocol.messages.fetch import FetchRequest, FetchResponse
from streamclient.protocol.records import RecordBatchBuilder
from streamclient.structs import TopicPartition

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
IDS = {"a": uuid.UUID(int=1), "b": uuid.UUID(int=2)}


def subscription() -> SubscriptionState:
    subs = SubscriptionState()
    subs.assign([A0, A1, B0])
    subs.seek(A0, 10)
    subs.seek(B0, 3)
    subs.set_leader_epoch(A0, 7)
    return subs  # A1 has no position yet


CONFIG = ConsumerConfig(
    fetch_min_bytes=5,
    fetch_max_bytes=1000,
    fetch_max_wait_ms=250,
    max_partition_fetch_bytes=300,
    isolation_level="read_committed",
    client_rack="rack-1",
)


@pytest.mark.parametrize("version", range(11, 16))
def test_request_fields_and_encoding(version: int) -> None:
    plan = build_fetch_request(subscription(), [A0, A1, B0], CONFIG, version, topic_ids=IDS)
    assert plan.fetch_offsets == {A0: 10, B0: 3}
    request = plan.request
    assert (request.session_id, request.session_epoch) == (0, -1)
    assert (request.min_bytes, request.max_bytes, request.max_wait_ms) == (5, 1000, 250)
    assert request.isolation_level == 1
    assert request.rack_id == "rack-1"
    decoded = FetchRequest.decode(request.encode(version), version)
    parts = {
        (t.topic_id if version >= 13 else t.topic, p.partition): p
        for t in decoded.topics
        for p in t.partitions
    }
    key_a = IDS["a"] if version >= 13 else "a"
    key_b = IDS["b"] if version >= 13 else "b"
    assert set(parts) == {(key_a, 0), (key_b, 0)}
    assert parts[(key_a, 0)].fetch_offset == 10
    assert parts[(key_a, 0)].current_leader_epoch == 7
    assert parts[(key_b, 0)].current_leader_epoch == -1
    assert parts[(key_a, 0)].partition_max_bytes == 300
    assert decoded.session_epoch == -1 and decoded.isolation_level == 1
    assert decoded.rack_id == "rack-1"


def test_paused_and_pending_partitions_left_out() -> None:
    subs = subscription()
    subs.pause(A0)
    plan = build_fetch_request(subs, [A0, B0], CONFIG, 12)
    assert plan.fetch_offsets == {B0: 3}


def test_topic_ids_required_from_v13() -> None:
    with pytest.raises(UnknownTopicIdError):
        build_fetch_request(subscription(), [A0], CONFIG, 13, topic_ids={})
    assert fetch_version(15, ["a", "b"], IDS) == 15
    assert fetch_version(15, ["a", "c"], IDS) == 12
    assert fetch_version(11, ["c"], {}) == 11


def _records(base: int) -> bytes:
    builder = RecordBatchBuilder(base_offset=base)
    builder.append(1, b"k", b"v")
    return builder.build()


@pytest.mark.parametrize("version", [12, 15])
def test_response_matched_back_to_request(version: int) -> None:
    plan = build_fetch_request(subscription(), [A0, B0], CONFIG, version, topic_ids=IDS)
    Topic = FetchResponse.FetchableTopicResponse
    response = FetchResponse(
        responses=[
            Topic(
                topic="a",
                topic_id=IDS["a"],
                partitions=[
                    Topic.PartitionData(partition_index=0, high_watermark=11, records=_records(10)),
                    # not asked for: ignored
                    Topic.PartitionData(partition_index=1, high_watermark=0),
                ],
            ),
            Topic(topic="zzz", topic_id=uuid.UUID(int=99), partitions=[]),
        ]
    )
    decoded = FetchResponse.decode(response.encode(version), version)
    names = {v: k for k, v in IDS.items()}
    matched = response_partitions(decoded, plan, names)
    assert [tp for tp, _ in matched] == [A0]
    tp, data = matched[0]
    decision = read_partition_response(
        tp,
        data,
        fetch_offset=plan.fetch_offsets[tp],
        default_reset=OffsetResetStrategy.LATEST,
    )
    assert decision.completed is not None
    assert [r.offset for r in decision.completed.take()] == [10]
