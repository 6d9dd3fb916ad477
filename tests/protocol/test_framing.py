"""Whole frames: size prefix, header versions, and the broker-side request decoder."""

from __future__ import annotations

import pytest

from streamclient.errors import ProtocolDecodeError
from streamclient.protocol.framing import (
    UnsupportedRequestError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    peek_correlation_id,
    peek_request_header,
    request_header_version,
    response_header_version,
)
from streamclient.protocol.message import ProtocolEncodeError
from streamclient.protocol.messages import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    ControlledShutdownRequest,
    FetchRequest,
    MetadataRequest,
    MetadataResponse,
    ProduceRequest,
    ProduceResponse,
)


def test_api_versions_v3_request_frame() -> None:
    request = ApiVersionsRequest(client_software_name="sc", client_software_version="1.0")
    frame = encode_request(request, 3, correlation_id=1, client_id="cli")
    body = b"\x03sc\x041.0\x00"
    header = b"\x00\x12\x00\x03\x00\x00\x00\x01" + b"\x00\x03cli" + b"\x00"
    assert frame == (len(header) + len(body)).to_bytes(4, "big") + header + body


def test_metadata_v1_request_frame() -> None:
    request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="t")])
    frame = encode_request(request, 1, correlation_id=258, client_id=None)
    expected_body = b"\x00\x03\x00\x01\x00\x00\x01\x02" + b"\xff\xff" + b"\x00\x00\x00\x01\x00\x01t"
    assert frame == len(expected_body).to_bytes(4, "big") + expected_body


def test_controlled_shutdown_v0_uses_header_v0() -> None:
    frame = encode_request(ControlledShutdownRequest(broker_id=3), 0, 9, "cli")
    assert frame == b"\x00\x00\x00\x0c" + b"\x00\x07\x00\x00\x00\x00\x00\x09" + b"\x00\x00\x00\x03"
    header, request = decode_request(frame[4:])
    assert header.client_id == ""  # absent from header v0: the schema default
    assert request == ControlledShutdownRequest(broker_id=3)


@pytest.mark.parametrize(
    ("api_key", "version", "request_header", "response_header"),
    [
        (18, 2, 1, 0),
        (18, 3, 2, 0),
        (0, 8, 1, 0),
        (0, 9, 2, 1),
        (3, 9, 2, 1),
        (7, 0, 0, 0),
        (7, 1, 1, 0),
        (17, 1, 1, 0),
    ],
)
def test_header_versions(
    api_key: int, version: int, request_header: int, response_header: int
) -> None:
    assert request_header_version(api_key, version) == request_header
    assert response_header_version(api_key, version) == response_header


def test_request_round_trip_through_frames() -> None:
    request = FetchRequest(max_wait_ms=500, min_bytes=1, isolation_level=1, session_epoch=-1)
    frame = encode_request(request, 12, correlation_id=77, client_id="c")
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert peek_request_header(frame[4:]) == (1, 12, 77)
    header, decoded = decode_request(frame[4:])
    assert (header.request_api_key, header.request_api_version) == (1, 12)
    assert (header.correlation_id, header.client_id) == (77, "c")
    assert decoded == request


def test_unknown_api_key_is_a_typed_error() -> None:
    frame = b"\x03\xe7\x00\x01\x00\x00\x00\x2a\x00\x00"
    with pytest.raises(UnsupportedRequestError) as info:
        decode_request(frame)
    assert (info.value.api_key, info.value.api_version, info.value.correlation_id) == (999, 1, 42)
    assert isinstance(info.value, ProtocolDecodeError)


def test_unsupported_version_is_a_typed_error() -> None:
    frame = b"\x00\x12\x00\x63\x00\x00\x00\x05\x00\x00\x00"
    with pytest.raises(UnsupportedRequestError, match="ApiVersions v99") as info:
        decode_request(frame)
    assert (info.value.api_key, info.value.api_version, info.value.correlation_id) == (18, 99, 5)


def test_truncated_request_frames() -> None:
    frame = encode_request(ProduceRequest(acks=1), 9, 1, "c")[4:]
    with pytest.raises(ProtocolDecodeError):
        peek_request_header(frame[:7])
    for cut in range(len(frame)):
        with pytest.raises(ProtocolDecodeError):
            decode_request(frame[:cut])


def test_flexible_response_has_a_tag_section_in_its_header() -> None:
    response = ProduceResponse(throttle_time_ms=3)
    frame = encode_response(response, 9, correlation_id=12, api_key=0)
    assert frame[4:9] == b"\x00\x00\x00\x0c\x00"
    assert peek_correlation_id(frame[4:]) == 12
    assert decode_response(frame[4:], ProduceRequest, 9) == (12, response)
    old = encode_response(response, 8, correlation_id=12, api_key=0)
    assert old[4:8] == b"\x00\x00\x00\x0c"
    assert old[8:] == response.encode(8)


def test_api_versions_response_header_is_always_v0() -> None:
    response = ApiVersionsResponse(
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)]
    )
    frame = encode_response(response, 3, correlation_id=1, api_key=18)
    assert frame[4:] == b"\x00\x00\x00\x01" + response.encode(3)
    assert decode_response(frame[4:], ApiVersionsRequest, 3) == (1, response)


def test_api_versions_unsupported_version_answer_is_read_as_v0() -> None:
    # a broker that knows ApiVersions v0-2 answers a v4 request in the v0 schema
    answer = ApiVersionsResponse(
        error_code=35,
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=2)],
    )
    frame = encode_response(answer, 0, correlation_id=4, api_key=18)
    correlation_id, decoded = decode_response(frame[4:], ApiVersionsRequest, 4)
    assert correlation_id == 4
    assert decoded == answer


def test_response_for_the_wrong_api_is_refused() -> None:
    with pytest.raises(ProtocolEncodeError):
        encode_response(MetadataResponse(), 1, correlation_id=1, api_key=0)


def test_short_response_frames() -> None:
    with pytest.raises(ProtocolDecodeError):
        peek_correlation_id(b"\x00\x00")
    with pytest.raises(ProtocolDecodeError):
        decode_response(b"\x00\x00\x00\x01", MetadataRequest, 1)
