"""Random frames thrown at a running broker never hurt other connections or the node.

One broker runs for the module (on a background thread); each example opens a raw socket,
sends hostile bytes, and then a well-formed client on a fresh connection must be served.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamclient.broker import BlockingEmbeddedCluster
from streamclient.protocol.framing import decode_response, encode_request
from streamclient.protocol.messages import ApiVersionsRequest, MetadataRequest

MAX_FRAME = 64 * 1024


@pytest.fixture(scope="module")
def broker() -> Iterator[BlockingEmbeddedCluster]:
    with BlockingEmbeddedCluster(1, max_frame_bytes=MAX_FRAME) as cluster:
        yield cluster
    assert cluster.errors == []


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def header(api_key: int, version: int, correlation_id: int = 1) -> bytes:
    return struct.pack(">hhi", api_key, version, correlation_id) + struct.pack(">h", 1) + b"x"


random_bytes = st.binary(max_size=300)
truncated = st.builds(lambda body, cut: frame(body)[:cut],
                      st.binary(min_size=1, max_size=200), st.integers(0, 200))
huge_prefix = st.builds(lambda size, tail: struct.pack(">i", size) + tail,
                        st.one_of(st.integers(MAX_FRAME + 1, 2**31 - 1),
                                  st.integers(-(2**31), -1)),
                        st.binary(max_size=20))
unknown_key = st.builds(lambda key, version, body: frame(header(key, version) + body),
                        st.integers(75, 2**15 - 1) | st.integers(-(2**15), -1),
                        st.integers(-5, 50), st.binary(max_size=50))
# a header every handler would accept, followed by a body of noise
garbage_body = st.builds(
    lambda key, version, body: frame(header(key, version) + body),
    st.sampled_from([0, 1, 3, 8, 9, 10, 11, 18, 19, 20, 32, 33, 37, 44, 60]),
    st.integers(0, 12), st.binary(max_size=200))
# a valid request with a random suffix or with bytes flipped
mutated = st.builds(
    lambda data, position, value: (data[:position % len(data)] + bytes([value])
                                   + data[position % len(data) + 1:]),
    st.sampled_from([
        encode_request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(
            name="fuzz")]), 12, 5, "fuzz"),
        encode_request(ApiVersionsRequest(client_software_name="a",
                                          client_software_version="1"), 3, 6, "fuzz"),
    ]),
    st.integers(0, 10_000), st.integers(0, 255))
hostile = st.lists(st.one_of(random_bytes, truncated, huge_prefix, unknown_key, garbage_body,
                             mutated), min_size=1, max_size=4)


def send_and_abandon(address: tuple[str, int], chunks: list[bytes]) -> None:
    with socket.create_connection(address, timeout=5) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                return  # the broker already closed the connection: that is allowed
        sock.settimeout(0.05)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass  # nothing (more) to read within the short wait


def well_formed_client_is_served(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(encode_request(ApiVersionsRequest(), 2, 42, "probe"))
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "the broker closed a well-formed connection"
            data += chunk
        correlation_id, response = decode_response(data[4:], ApiVersionsRequest, 2)
        assert correlation_id == 42 and response.error_code == 0 and response.api_keys


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=hostile)
def test_hostile_frames_do_not_disturb_other_connections(
        broker: BlockingEmbeddedCluster, chunks: list[bytes]) -> None:
    host, port = broker.bootstrap_servers.split(":")
    address = (host, int(port))
    send_and_abandon(address, chunks)
    well_formed_client_is_served(address)
    assert broker.errors == []


def test_many_hostile_connections_at_once(broker: BlockingEmbeddedCluster) -> None:
    host, port = broker.bootstrap_servers.split(":")
    address = (host, int(port))
    sockets = [socket.create_connection(address, timeout=5) for _ in range(20)]
    try:
        for i, sock in enumerate(sockets):
            # half-sent frames keep these connections parked in a read
            sock.sendall(struct.pack(">i", 1000) + bytes(i))
        well_formed_client_is_served(address)
    finally:
        for sock in sockets:
            sock.close()
    well_formed_client_is_served(address)
