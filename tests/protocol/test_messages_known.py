"""Generated messages against encodings written out by hand from the protocol guide."""

from __future__ import annotations

import uuid

import pytest

from streamclient.errors import ProtocolDecodeError
from streamclient.protocol.message import ProtocolEncodeError
from streamclient.protocol.messages import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    ConsumerProtocolSubscription,
    DescribeTopicPartitionsRequest,
    FetchResponse,
    MetadataRequest,
    ProduceRequest,
    RequestHeader,
)


def test_api_versions_v3_request_body() -> None:
    body = ApiVersionsRequest(client_software_name="sc", client_software_version="1.0").encode(3)
    # compact strings are length+1 as an unsigned varint, then a tag section of 0 fields
    assert body == b"\x03sc" + b"\x041.0" + b"\x00"
    assert ApiVersionsRequest.decode(body, 3).client_software_name == "sc"


def test_api_versions_v0_request_is_empty() -> None:
    assert ApiVersionsRequest(client_software_name="ignored").encode(0) == b""


def test_metadata_v1_request() -> None:
    msg = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="topic")])
    assert msg.encode(1) == b"\x00\x00\x00\x01" + b"\x00\x05topic"
    # null topics (v1+) means "every topic"
    assert MetadataRequest(topics=None).encode(1) == b"\xff\xff\xff\xff"
    with pytest.raises(ProtocolEncodeError, match="not nullable"):
        MetadataRequest(topics=None).encode(0)


def test_metadata_v12_request_with_topic_id() -> None:
    topic_id = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    msg = MetadataRequest(
        topics=[MetadataRequest.MetadataRequestTopic(topic_id=topic_id, name=None)],
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=True,
    )
    expected = (
        b"\x02"  # compact array of one
        + topic_id.bytes
        + b"\x00"  # null compact string
        + b"\x00"  # the topic's tag section
        + b"\x00"  # allow_auto_topic_creation
        + b"\x01"  # include_topic_authorized_operations
        + b"\x00"  # tag section
    )
    assert msg.encode(12) == expected
    assert MetadataRequest.decode(expected, 12) == msg


def test_flexible_response_with_tagged_fields() -> None:
    msg = ApiVersionsResponse(
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=1, min_version=4, max_version=16)],
        throttle_time_ms=7,
        finalized_features_epoch=5,
        zk_migration_ready=True,
    )
    expected = (
        b"\x00\x00"  # error_code
        + b"\x02"  # one api key
        + b"\x00\x01\x00\x04\x00\x10\x00"
        + b"\x00\x00\x00\x07"  # throttle_time_ms
        + b"\x02"  # two tagged fields, ascending tags
        + b"\x01\x08"
        + (5).to_bytes(8, "big")  # tag 1: finalized_features_epoch
        + b"\x03\x01\x01"  # tag 3: zk_migration_ready
    )
    assert msg.encode(3) == expected
    decoded = ApiVersionsResponse.decode(expected, 3)
    assert decoded.finalized_features_epoch == 5
    assert decoded.zk_migration_ready is True
    assert decoded.supported_features == []


def test_tagged_fields_at_their_default_are_not_written() -> None:
    assert ApiVersionsResponse().encode(3) == b"\x00\x00\x01\x00\x00\x00\x00\x00"


def test_unknown_tags_are_kept_and_written_back() -> None:
    wire = (
        b"\x00\x00\x01\x00\x00\x00\x00"
        + b"\x02"
        + b"\x01\x08"
        + (9).to_bytes(8, "big")
        + b"\x2a\x03abc"  # tag 42: nobody knows it
    )
    decoded = ApiVersionsResponse.decode(wire, 3)
    assert decoded.finalized_features_epoch == 9
    assert decoded.unknown_tags == {42: b"abc"}
    assert decoded.encode(3) == wire
    # unknown tags are merged with the known ones in tag order
    decoded.unknown_tags = {2000: b"z", 0x02 + 0x100: b""}
    again = ApiVersionsResponse.decode(decoded.encode(3), 3)
    assert again.unknown_tags == {2000: b"z", 0x102: b""}


def test_produce_v3_request() -> None:
    records = b"\x01\x02\x03"
    msg = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=1500,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t",
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(index=2, records=records)
                ],
            )
        ],
    )
    expected = (
        b"\xff\xff"  # null transactional id
        + b"\xff\xff"  # acks -1
        + (1500).to_bytes(4, "big")
        + b"\x00\x00\x00\x01\x00\x01t"
        + b"\x00\x00\x00\x01\x00\x00\x00\x02"
        + b"\x00\x00\x00\x03"
        + records
    )
    assert msg.encode(3) == expected


def test_records_decode_without_copying() -> None:
    msg = FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="t",
                partitions=[FetchResponse.FetchableTopicResponse.PartitionData(records=b"x" * 100)],
            )
        ]
    )
    wire = msg.encode(12)
    decoded = FetchResponse.decode(wire, 12)
    records = decoded.responses[0].partitions[0].records
    assert isinstance(records, memoryview)
    assert records.obj is wire
    assert records == b"x" * 100


def test_nullable_struct_has_a_presence_byte() -> None:
    none = DescribeTopicPartitionsRequest(topics=[], response_partition_limit=10)
    assert none.encode(0) == b"\x01" + b"\x00\x00\x00\x0a" + b"\xff" + b"\x00"
    cursor = DescribeTopicPartitionsRequest.Cursor(topic_name="a", partition_index=3)
    some = DescribeTopicPartitionsRequest(topics=[], response_partition_limit=10, cursor=cursor)
    wire = some.encode(0)
    assert wire == b"\x01" + b"\x00\x00\x00\x0a" + b"\x01" + b"\x02a\x00\x00\x00\x03\x00" + b"\x00"
    assert DescribeTopicPartitionsRequest.decode(wire, 0).cursor == cursor


def test_request_header_v2_client_id_is_not_compact() -> None:
    header = RequestHeader(
        request_api_key=18, request_api_version=3, correlation_id=7, client_id="cli"
    )
    assert header.encode(2) == b"\x00\x12\x00\x03\x00\x00\x00\x07\x00\x03cli\x00"
    assert header.encode(0) == b"\x00\x12\x00\x03\x00\x00\x00\x07"


def test_flexible_versions_none_data_message() -> None:
    msg = ConsumerProtocolSubscription(topics=["a", "bc"], user_data=b"u")
    wire = msg.encode(1)
    # classic encodings throughout: int32 array count, int16 string lengths, int32 bytes
    assert wire == b"\x00\x00\x00\x02\x00\x01a\x00\x02bc\x00\x00\x00\x01u\x00\x00\x00\x00"
    assert ConsumerProtocolSubscription.decode(wire, 1) == msg


def test_schema_defaults() -> None:
    request = MetadataRequest()
    assert request.allow_auto_topic_creation is True
    assert request.topics == []
    assert ProduceRequest().transactional_id is None
    assert ApiVersionsResponse().finalized_features_epoch == -1
    assert FetchResponse.FetchableTopicResponse().topic_id == uuid.UUID(int=0)
    # mutable defaults are not shared between instances
    a, b = MetadataRequest(), MetadataRequest()
    a.topics.append(MetadataRequest.MetadataRequestTopic(name="x"))
    assert b.topics == []


def test_fields_missing_from_the_version() -> None:
    # not ignorable and not at its default: refused, like Kafka's UnsupportedVersionException
    with pytest.raises(ProtocolEncodeError, match="transactional_id"):
        ProduceRequest(transactional_id="tx").encode(2)
    with pytest.raises(ProtocolEncodeError, match="allow_auto_topic_creation"):
        MetadataRequest(allow_auto_topic_creation=False).encode(3)
    # ignorable: dropped silently
    assert ApiVersionsResponse(throttle_time_ms=100).encode(0) == b"\x00\x00\x00\x00\x00\x00"
    # at its default: fine
    assert ProduceRequest(acks=1).encode(2) == b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"


def test_values_that_do_not_fit_raise_encode_errors() -> None:
    with pytest.raises(ProtocolEncodeError):
        ProduceRequest(acks=70000).encode(3)
    with pytest.raises(ProtocolEncodeError):
        ProduceRequest(topic_data=[ProduceRequest.TopicProduceData(name=None)]).encode(3)  # type: ignore[arg-type]
    with pytest.raises(ProtocolEncodeError, match="no version 12"):
        ProduceRequest().encode(12)
    assert issubclass(ProtocolEncodeError, ValueError)


def test_decode_errors_name_api_version_and_offset() -> None:
    with pytest.raises(ProtocolDecodeError) as info:
        MetadataRequest.decode(b"\x00\x00\x00\x01\x00\x05top", 1)
    assert info.value.api == "Metadata"
    assert info.value.version == 1
    assert info.value.offset == 6
    assert "Metadata v1" in str(info.value)
    with pytest.raises(ProtocolDecodeError, match="no version 13"):
        MetadataRequest.decode(b"", 13)
    with pytest.raises(ProtocolDecodeError, match="UTF-8"):
        MetadataRequest.decode(b"\x00\x00\x00\x01\x00\x01\xff", 1)


def test_equality_and_repr() -> None:
    a = ProduceRequest(acks=1, topic_data=[ProduceRequest.TopicProduceData(name="t")])
    b = ProduceRequest(acks=1, topic_data=[ProduceRequest.TopicProduceData(name="t")])
    assert a == b
    b.topic_data[0].name = "u"
    assert a != b
    assert a != ProduceRequest.TopicProduceData(name="t")
    assert repr(a) == (
        "ProduceRequest(transactional_id=None, acks=1, timeout_ms=0, "
        "topic_data=[ProduceRequest.TopicProduceData(name='t', partition_data=[])])"
    )


def test_class_attributes() -> None:
    assert ProduceRequest.API_KEY == 0
    assert ProduceRequest.API_NAME == "Produce"
    assert ProduceRequest.VALID_VERSIONS == (0, 11)
    assert ProduceRequest.FLEXIBLE_MIN == 9
    assert ProduceRequest.RESPONSE_TYPE.__name__ == "ProduceResponse"
    assert ConsumerProtocolSubscription.FLEXIBLE_MIN is None
    assert not hasattr(ProduceRequest(), "__dict__")
