"""The consumer protocol's version-prefixed Subscription and Assignment bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.consumer.assignors import Assignment, Subscription
from streamclient.consumer.group.consumer_protocol import (
    ASSIGNMENT_VERSION,
    PROTOCOL_TYPE,
    SUBSCRIPTION_VERSION,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from streamclient.errors import IllegalArgumentError, ProtocolDecodeError
from streamclient.structs import TopicPartition

# The worked examples of java-client-internals.md §3.1 (t = 0x74).
SUBSCRIPTION_V3 = bytes.fromhex(
    "0003" "00000001 000174" "ffffffff" "00000001 000174 00000001 00000000" "00000005" "ffff"
)
ASSIGNMENT_V3 = bytes.fromhex("0003 00000001 000174 00000002 00000000 00000001 ffffffff")


def test_constants() -> None:
    assert PROTOCOL_TYPE == "consumer"
    assert SUBSCRIPTION_VERSION == 3
    assert ASSIGNMENT_VERSION == 3


def test_subscription_v3_matches_java_bytes() -> None:
    subscription = Subscription(["t"], owned_partitions=[("t", 0)], generation_id=5)
    assert encode_subscription(subscription) == SUBSCRIPTION_V3
    assert decode_subscription(SUBSCRIPTION_V3) == subscription


def test_assignment_v3_matches_java_bytes() -> None:
    assignment = Assignment([("t", 1), ("t", 0)])
    assert encode_assignment(assignment) == ASSIGNMENT_V3
    decoded = decode_assignment(ASSIGNMENT_V3)
    assert decoded == assignment
    assert decoded.partitions == (TopicPartition("t", 0), TopicPartition("t", 1))


def test_topics_and_owned_partitions_are_written_sorted() -> None:
    subscription = Subscription(
        ["b", "a"], user_data=b"\x01\x02", owned_partitions=[("b", 1), ("a", 2), ("b", 0)]
    )
    assert encode_subscription(subscription, 1) == bytes.fromhex(
        "0001"
        "00000002 000161 000162"
        "00000002 0102"
        "00000002 000161 00000001 00000002 000162 00000002 00000000 00000001"
    )


def test_v0_subscription_decodes_with_defaults() -> None:
    v0 = bytes.fromhex("0000 00000002 000161 000162 00000003 aabbcc")
    subscription = decode_subscription(v0, group_instance_id="static-1")
    assert subscription == Subscription(
        ["a", "b"], user_data=b"\xaa\xbb\xcc", group_instance_id="static-1"
    )
    assert subscription.owned_partitions == ()
    assert subscription.generation_id == -1
    assert subscription.rack_id is None


def test_older_versions_drop_the_fields_they_lack() -> None:
    full = Subscription(["t"], owned_partitions=[("t", 0)], generation_id=5, rack_id="r1")
    assert decode_subscription(encode_subscription(full, 0)) == Subscription(["t"])
    assert decode_subscription(encode_subscription(full, 1)) == Subscription(
        ["t"], owned_partitions=[("t", 0)]
    )
    assert decode_subscription(encode_subscription(full, 2)) == Subscription(
        ["t"], owned_partitions=[("t", 0)], generation_id=5
    )
    assert decode_subscription(encode_subscription(full, 3)) == full


def test_newer_version_reads_as_the_highest_and_ignores_the_rest() -> None:
    future = b"\x00\x07" + SUBSCRIPTION_V3[2:] + b"\x00\x00\x00\x2a new fields"
    assert decode_subscription(future) == decode_subscription(SUBSCRIPTION_V3)
    future_assignment = b"\x7f\xff" + ASSIGNMENT_V3[2:] + b"\x01"
    assert decode_assignment(future_assignment) == decode_assignment(ASSIGNMENT_V3)


def test_versions_below_the_lowest_are_rejected() -> None:
    with pytest.raises(ProtocolDecodeError, match="unsupported version -1"):
        decode_subscription(b"\xff\xff" + SUBSCRIPTION_V3[2:])
    with pytest.raises(ProtocolDecodeError, match="ConsumerProtocolAssignment"):
        decode_assignment(b"\x80\x00" + ASSIGNMENT_V3[2:])


@pytest.mark.parametrize("short", [b"", b"\x00"])
def test_assignment_shorter_than_the_prefix_is_invalid(short: bytes) -> None:
    with pytest.raises(ProtocolDecodeError, match="version prefix"):
        decode_assignment(short)
    with pytest.raises(ProtocolDecodeError):
        decode_subscription(short)


def test_truncated_bytes_raise_a_decode_error() -> None:
    for cut in range(2, len(SUBSCRIPTION_V3)):
        with pytest.raises(ProtocolDecodeError) as excinfo:
            decode_subscription(SUBSCRIPTION_V3[:cut])
        assert excinfo.value.api == "ConsumerProtocolSubscription"
    with pytest.raises(ProtocolDecodeError):
        decode_assignment(ASSIGNMENT_V3[:-1])


@pytest.mark.parametrize("version", [-1, 4])
def test_encoding_an_unknown_version_is_refused(version: int) -> None:
    with pytest.raises(IllegalArgumentError):
        encode_subscription(Subscription(["t"]), version)
    with pytest.raises(IllegalArgumentError):
        encode_assignment(Assignment(), version)


def test_decoding_accepts_bytearray_and_memoryview() -> None:
    assert decode_assignment(bytearray(ASSIGNMENT_V3)) == decode_assignment(
        memoryview(ASSIGNMENT_V3)
    )


_topic = st.text(min_size=1, max_size=8)
_partitions = st.lists(st.tuples(_topic, st.integers(0, 2**31 - 1)), max_size=6)
_user_data = st.none() | st.binary(max_size=16)


@settings(max_examples=100, deadline=None)
@given(
    topics=st.lists(_topic, max_size=5),
    user_data=_user_data,
    owned=_partitions,
    generation=st.integers(-1, 2**31 - 1),
    rack=st.none() | _topic,
)
def test_subscription_round_trip_v3(
    topics: list[str],
    user_data: bytes | None,
    owned: list[tuple[str, int]],
    generation: int,
    rack: str | None,
) -> None:
    subscription = Subscription(topics, user_data, owned, generation, None, rack)
    encoded = encode_subscription(subscription)
    assert encoded[:2] == b"\x00\x03"
    assert decode_subscription(encoded) == subscription
    # Sorting makes the bytes independent of the order the caller listed things in.
    shuffled = Subscription(list(reversed(topics)), user_data, list(reversed(owned)),
                            generation, None, rack)
    assert encode_subscription(shuffled) == encoded


@settings(max_examples=100, deadline=None)
@given(partitions=_partitions, user_data=_user_data, version=st.integers(0, 3))
def test_assignment_round_trip_every_version(
    partitions: list[tuple[str, int]], user_data: bytes | None, version: int
) -> None:
    assignment = Assignment(partitions, user_data)
    encoded = encode_assignment(assignment, version)
    # v1-v3 exist only to follow the subscription's versions: same body as v0.
    assert encoded[2:] == encode_assignment(assignment, 0)[2:]
    assert decode_assignment(encoded) == assignment


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_garbage_never_escapes_as_anything_but_a_decode_error(data: bytes) -> None:
    for decode in (decode_subscription, decode_assignment):
        with contextlib.suppress(ProtocolDecodeError):
            decode(data)
