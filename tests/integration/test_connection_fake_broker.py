"""BrokerConnection against a tiny scripted broker on loopback (asyncio and trio).

Each test scripts the broker side of the conversation with frames built by the framing
module, so it can misbehave on purpose: hold responses back, send half a frame, answer
with the wrong correlation id, garbage, or hang up.
"""

from __future__ import annotations

import random
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from streamclient.errors import (
    CorrelationIdError,
    KafkaConnectionError,
    KafkaError,
    KafkaProtocolError,
    ProtocolDecodeError,
    RequestTimedOutError,
    UnsupportedVersionError,
)
from streamclient.net.connection import BrokerConnection
from streamclient.protocol.framing import decode_request, encode_response
from streamclient.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from streamclient.protocol.messages.metadata import MetadataRequest, MetadataResponse
from streamclient.protocol.messages.produce import ProduceRequest

pytestmark = pytest.mark.anyio

# what the scripted broker advertises unless a test says otherwise
DEFAULT_RANGES: dict[int, tuple[int, int]] = {18: (0, 4), 3: (0, 12), 0: (3, 11)}
API_VERSIONS_MAX = ApiVersionsRequest.LATEST_STABLE_VERSION
BOUND_S = 10  # no test step may hang longer than this


class Peer:
    """The broker side of one accepted connection."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def read_frame(self) -> bytes:
        while True:
            if len(self.buf) >= 4:
                size = int.from_bytes(self.buf[:4], "big", signed=True)
                if len(self.buf) >= 4 + size:
                    frame = bytes(self.buf[4:4 + size])
                    del self.buf[:4 + size]
                    return frame
            self.buf += await self.stream.receive()

    async def read_request(self) -> tuple[Any, Any]:
        return decode_request(await self.read_frame())

    @staticmethod
    def frame_for(header: Any, response: Any, *, correlation_id: int | None = None) -> bytes:
        return encode_response(
            response, header.request_api_version,
            header.correlation_id if correlation_id is None else correlation_id,
            header.request_api_key,
        )

    async def respond(self, header: Any, response: Any) -> None:
        await self.stream.send(self.frame_for(header, response))

    async def handshake(self, ranges: dict[int, tuple[int, int]] | None = None) -> Any:
        header, _ = await self.read_request()
        assert header.request_api_key == ApiVersionsRequest.API_KEY
        await self.respond(header, api_versions_response(ranges or DEFAULT_RANGES))
        return header


def api_versions_response(ranges: dict[int, tuple[int, int]],
                          error_code: int = 0) -> ApiVersionsResponse:
    return ApiVersionsResponse(
        error_code=error_code,
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                  for k, (lo, hi) in sorted(ranges.items())],
    )


def metadata_request(name: str) -> MetadataRequest:
    return MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)])


def echo_metadata(request: MetadataRequest, extra_topics: int = 0) -> MetadataResponse:
    names = [t.name for t in request.topics] + [f"padding-{i}" for i in range(extra_topics)]
    return MetadataResponse(
        topics=[MetadataResponse.MetadataResponseTopic(name=n, error_code=0) for n in names]
    )


def topic_names(response: MetadataResponse) -> list[str]:
    return [t.name for t in response.topics]


Handler = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def fake_broker(handler: Handler,
                      ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve ``handler`` on a loopback port and yield the port."""

    async def serve(stream: anyio.abc.ByteStream) -> None:
        # the client hanging up is the client's business, not a broker failure
        async with stream:
            with suppress(anyio.EndOfStream, anyio.BrokenResourceError,
                          anyio.ClosedResourceError):
                await handler(Peer(stream))

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(SocketAttribute.local_port)
    listener: anyio.abc.Listener[Any] = (
        tcp if ssl_context is None
        else TLSListener(tcp, ssl_context, standard_compatible=False)
    )
    # the task group is left (its serve task cancelled) before the listener closes
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


async def wait_until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(BOUND_S):
        while not predicate():
            await anyio.sleep(0.001)


def connection(port: int, **kwargs: Any) -> BrokerConnection:
    return BrokerConnection("127.0.0.1", port, client_id="test-client", **kwargs)


# --- version negotiation ------------------------------------------------------------


async def test_negotiates_highest_common_version_and_uses_it() -> None:
    seen: list[tuple[int, int, str | None]] = []

    async def handler(peer: Peer) -> None:
        await peer.handshake({18: (0, 4), 3: (1, 5), 0: (3, 99)})
        while True:
            header, request = await peer.read_request()
            seen.append((header.request_api_key, header.request_api_version, header.client_id))
            await peer.respond(header, echo_metadata(request))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            assert conn.version_for(MetadataRequest) == 5
            assert conn.version_for(ProduceRequest) == ProduceRequest.VALID_VERSIONS[1]
            assert conn.broker_api_versions[3] == (1, 5)
            response = await conn.send(metadata_request("a"))
            assert topic_names(response) == ["a"]
            await conn.send(metadata_request("b"), version=2)
            with pytest.raises(UnsupportedVersionError):
                await conn.send(metadata_request("c"), version=0)  # broker starts at 1
            with pytest.raises(UnsupportedVersionError):
                await conn.send(metadata_request("c"), version=99)  # beyond our schema
            # Fetch (key 1) is not advertised at all
            from streamclient.protocol.messages.fetch import FetchRequest

            with pytest.raises(UnsupportedVersionError):
                conn.version_for(FetchRequest)
            with pytest.raises(UnsupportedVersionError):
                await conn.send(FetchRequest())
            assert conn.connected
    assert seen == [(3, 5, "test-client"), (3, 2, "test-client")]


@pytest.mark.parametrize("offered", [2, None])
async def test_api_versions_falls_back_when_broker_rejects_our_version(
        offered: int | None) -> None:
    versions_seen: list[int] = []

    async def handler(peer: Peer) -> None:
        while True:
            header, _ = await peer.read_request()
            versions_seen.append(header.request_api_version)
            limit = 0 if offered is None else offered
            if header.request_api_version > limit:
                # KIP-511: an old broker answers in v0 with UNSUPPORTED_VERSION and, if it
                # can, the ApiVersions versions it serves
                ranges = {} if offered is None else {18: (0, offered)}
                await peer.stream.send(encode_response(
                    api_versions_response(ranges, error_code=35), 0, header.correlation_id, 18))
            else:
                await peer.respond(header, api_versions_response({18: (0, limit), 3: (0, 4)}))
                break
        header, request = await peer.read_request()
        await peer.respond(header, echo_metadata(request))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            assert conn.version_for(MetadataRequest) == 4
            assert topic_names(await conn.send(metadata_request("x"))) == ["x"]
    assert versions_seen == [API_VERSIONS_MAX, 0 if offered is None else offered]


async def test_api_versions_rejected_twice_fails_connect() -> None:
    async def handler(peer: Peer) -> None:
        while True:
            header, _ = await peer.read_request()
            await peer.stream.send(encode_response(
                api_versions_response({}, error_code=35), 0, header.correlation_id, 18))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port:
            conn = connection(port)
            with pytest.raises(UnsupportedVersionError):
                await conn.connect()
            assert conn.closed
            with pytest.raises(KafkaConnectionError):
                await conn.send(metadata_request("x"))


async def test_connect_to_closed_port_is_connection_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    await listener.aclose()
    conn = connection(port)
    with anyio.fail_after(BOUND_S), pytest.raises(KafkaConnectionError):
        await conn.connect()
    assert conn.closed


# --- pipelining --------------------------------------------------------------------


async def test_pipelined_requests_are_matched_in_order() -> None:
    count = 8

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        # read every request before answering any: they must all be on the wire at once
        requests = [await peer.read_request() for _ in range(count)]
        ids = [h.correlation_id for h, _ in requests]
        assert len(set(ids)) == count
        # one write holding all responses, so the client parses several frames per read
        await peer.stream.send(b"".join(peer.frame_for(h, echo_metadata(r))
                                        for h, r in requests))
        header, request = await peer.read_request()
        await peer.respond(header, echo_metadata(request))

    results: dict[str, list[str]] = {}
    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:

            async def call(name: str) -> None:
                results[name] = topic_names(await conn.send(metadata_request(name)))

            async with anyio.create_task_group() as tg:
                for i in range(count):
                    tg.start_soon(call, f"t{i}")
            assert conn.in_flight == 0
            assert topic_names(await conn.send(metadata_request("after"))) == ["after"]
    assert results == {f"t{i}": [f"t{i}"] for i in range(count)}


async def test_large_response_arrives_in_pieces_and_decodes() -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        header, request = await peer.read_request()
        frame = peer.frame_for(header, echo_metadata(request, extra_topics=20_000))
        assert len(frame) > 300_000
        # dribble it out so the client sees many partial reads
        for start in range(0, len(frame), 7_919):
            await peer.stream.send(frame[start:start + 7_919])

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            names = topic_names(await conn.send(metadata_request("big")))
    assert names == ["big"] + [f"padding-{i}" for i in range(20_000)]


async def test_produce_with_acks_0_expects_no_response() -> None:
    got: list[tuple[int, int]] = []

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        header, request = await peer.read_request()
        got.append((header.request_api_key, request.acks))
        header, request = await peer.read_request()
        await peer.respond(header, echo_metadata(request))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            produce = ProduceRequest(acks=0, timeout_ms=1000, topic_data=[])
            assert await conn.send(produce) is None
            assert conn.in_flight == 0
            assert topic_names(await conn.send(metadata_request("next"))) == ["next"]
    assert got == [(0, 0)]


# --- failures ----------------------------------------------------------------------


async def test_broker_closing_mid_flight_fails_every_pending_request() -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        requests = [await peer.read_request() for _ in range(3)]
        await peer.respond(*requests[0][:1], echo_metadata(requests[0][1]))
        await peer.stream.aclose()

    outcomes: dict[str, object] = {}
    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:

            async def call(name: str) -> None:
                try:
                    outcomes[name] = topic_names(await conn.send(metadata_request(name)))
                except KafkaConnectionError as exc:
                    outcomes[name] = exc

            async with anyio.create_task_group() as tg:
                for name in ("a", "b", "c"):
                    tg.start_soon(call, name)
                    await wait_until(lambda: conn.in_flight >= 1)
            assert conn.closed
            with pytest.raises(KafkaConnectionError):
                await conn.send(metadata_request("later"))
    assert outcomes["a"] == ["a"]
    assert isinstance(outcomes["b"], KafkaConnectionError)
    assert isinstance(outcomes["c"], KafkaConnectionError)


async def test_timeout_fails_request_and_closes_connection() -> None:
    release = anyio.Event()

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await peer.read_request()
        await release.wait()  # never answer

    outcomes: dict[str, BaseException] = {}
    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port, request_timeout_ms=300) as conn:

            async def call(name: str) -> None:
                with pytest.raises((RequestTimedOutError, KafkaConnectionError)) as info:
                    await conn.send(metadata_request(name))
                outcomes[name] = info.value

            started = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "first")
                await anyio.sleep(0.1)  # the second request's deadline is clearly later
                tg.start_soon(call, "second")
            elapsed = anyio.current_time() - started
            assert conn.closed
            with pytest.raises(KafkaConnectionError):
                await conn.send(metadata_request("later"))
            release.set()
    assert isinstance(outcomes["first"], RequestTimedOutError)
    # the second one did not time out itself: the connection was closed under it
    assert type(outcomes["second"]) is KafkaConnectionError
    # bounded by the first request's timeout (slack for a loaded machine)
    assert 0.28 <= elapsed < 3.0


async def test_wrong_correlation_id_is_protocol_error_and_closes() -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        requests = [await peer.read_request() for _ in range(2)]
        header, request = requests[0]
        await peer.stream.send(peer.frame_for(header, echo_metadata(request),
                                              correlation_id=header.correlation_id + 1000))
        await anyio.sleep_forever()

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            errors: dict[str, BaseException] = {}

            async def call(name: str) -> None:
                with pytest.raises(KafkaError) as info:
                    await conn.send(metadata_request(name))
                errors[name] = info.value

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "a")
                await wait_until(lambda: conn.in_flight == 1)
                tg.start_soon(call, "b")
            assert conn.closed
    assert type(errors["a"]) is CorrelationIdError
    assert type(errors["b"]) is KafkaConnectionError
    assert "correlation id" in str(errors["a"])


@pytest.mark.parametrize("body", [b"", b"\xff\xff\xff", b"\x00\x00\x00\x00" + b"\xff" * 40])
async def test_garbage_response_is_decode_error_and_closes(body: bytes) -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        header, _ = await peer.read_request()
        frame = header.correlation_id.to_bytes(4, "big") + body
        await peer.stream.send(len(frame).to_bytes(4, "big") + frame)
        await anyio.sleep_forever()

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            with pytest.raises(ProtocolDecodeError):
                await conn.send(metadata_request("a"))
            assert conn.closed
            with pytest.raises(KafkaConnectionError):
                await conn.send(metadata_request("b"))


@pytest.mark.parametrize("size", [-1, 5_000])
async def test_bad_frame_size_is_protocol_error(size: int) -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        header, _ = await peer.read_request()
        await peer.stream.send(size.to_bytes(4, "big", signed=True)
                               + header.correlation_id.to_bytes(4, "big"))
        await anyio.sleep_forever()

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port, max_frame_bytes=4096) as conn:
            with pytest.raises(KafkaProtocolError, match="frame size"):
                await conn.send(metadata_request("a"))
            assert conn.closed


async def test_unsolicited_frame_is_protocol_error() -> None:
    async def handler(peer: Peer) -> None:
        header = await peer.handshake()
        # a second, unasked-for copy of the handshake answer
        await peer.stream.send(peer.frame_for(header, api_versions_response(DEFAULT_RANGES)))
        header, request = await peer.read_request()
        await peer.respond(header, echo_metadata(request))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            # the stray frame is found when the next response is awaited; whichever way it
            # is reported, the connection must not hand it to this request
            with pytest.raises((KafkaProtocolError, KafkaConnectionError)):
                await conn.send(metadata_request("a"))
            assert conn.closed


# --- cancellation -------------------------------------------------------------------


@pytest.mark.parametrize("victim", ["a", "b"])
async def test_cancelled_waiter_does_not_disturb_the_others(victim: str) -> None:
    """Cancel the reader while it holds half a frame ("a"), or a plain waiter ("b")."""
    half_sent = anyio.Event()
    go_on = anyio.Event()

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        requests = [await peer.read_request() for _ in range(3)]
        frames = b"".join(peer.frame_for(h, echo_metadata(r)) for h, r in requests)
        await peer.stream.send(frames[:13])
        half_sent.set()
        await go_on.wait()
        await peer.stream.send(frames[13:])
        header, request = await peer.read_request()
        await peer.respond(header, echo_metadata(request))

    results: dict[str, list[str]] = {}
    scopes = {name: anyio.CancelScope() for name in "abc"}
    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:

            async def call(name: str) -> None:
                with scopes[name]:
                    results[name] = topic_names(await conn.send(metadata_request(name)))

            async with anyio.create_task_group() as tg:
                for i, name in enumerate("abc"):
                    tg.start_soon(call, name)
                    await wait_until(lambda i=i: conn.in_flight == i + 1)
                await half_sent.wait()
                # "a" waited first, so it is the reader: wait until it holds the partial frame
                await wait_until(lambda: len(conn._rbuf) == 13)
                scopes[victim].cancel()
                await anyio.sleep(0.01)
                go_on.set()
            assert not conn.closed
            assert topic_names(await conn.send(metadata_request("d"))) == ["d"]
            assert conn.in_flight == 0
    expected = {n: [n] for n in "abc" if n != victim}
    assert results == expected


async def test_waiter_cancelled_just_after_being_picked_to_read_passes_it_on() -> None:
    """The reader finishes and picks the next waiter, which is cancelled before it runs."""
    go_on = anyio.Event()
    received: list[str] = []

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        requests = []
        for _ in range(3):
            requests.append(await peer.read_request())
            received.append(requests[-1][1].topics[0].name)
        await peer.respond(*requests[0][:1], echo_metadata(requests[0][1]))
        await go_on.wait()
        for header, request in requests[1:]:
            await peer.respond(header, echo_metadata(request))

    results: dict[str, list[str]] = {}
    scopes = {name: anyio.CancelScope() for name in "abc"}
    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:

            async def call(name: str) -> None:
                with scopes[name]:
                    results[name] = topic_names(await conn.send(metadata_request(name)))
                if name == "a":
                    # no checkpoint since "a" handed the reading role to "b"
                    scopes["b"].cancel()
                    go_on.set()

            async with anyio.create_task_group() as tg:
                for i, name in enumerate("abc"):
                    tg.start_soon(call, name)
                    # in order, so that "a" reads first and "b" is next in line
                    await wait_until(lambda i=i: len(received) == i + 1)
            assert not conn.closed
    assert results == {"a": ["a"], "c": ["c"]}


async def test_abandoned_response_is_read_and_dropped() -> None:
    """A caller that gives up after sending leaves its response to be read and dropped."""
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        # hold the first answer back until the second request is in
        requests = [await peer.read_request() for _ in range(2)]
        for header, request in requests:
            await peer.respond(header, echo_metadata(request))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            with anyio.move_on_after(0.05) as scope:
                await conn.send(metadata_request("gone"))
            assert scope.cancelled_caught
            assert conn.in_flight == 1 and not conn.closed
            assert topic_names(await conn.send(metadata_request("kept"))) == ["kept"]
            assert conn.in_flight == 0


async def test_cancelled_before_writing_sends_nothing() -> None:
    seen: list[str] = []

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        header, request = await peer.read_request()
        seen.append(request.topics[0].name)
        await peer.respond(header, echo_metadata(request))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:
            with anyio.CancelScope() as scope:
                scope.cancel()
                await conn.send(metadata_request("never"))
            assert conn.in_flight == 0
            assert topic_names(await conn.send(metadata_request("sent"))) == ["sent"]
    assert seen == ["sent"]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_cancellations_never_misdeliver(seed: int) -> None:
    """Many callers, some cancelled at arbitrary moments, responses cut at arbitrary bytes."""
    rng = random.Random(seed)
    count = 40

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        owed = bytearray()
        done = anyio.Event()

        async def dribble() -> None:
            # send a random prefix of what is owed, splitting frames anywhere
            while not (done.is_set() and not owed):
                cut = rng.randrange(len(owed) + 1)
                if cut:
                    chunk = bytes(owed[:cut])
                    del owed[:cut]
                    await peer.stream.send(chunk)
                await anyio.sleep(rng.random() * 0.002)

        async with anyio.create_task_group() as tg:
            tg.start_soon(dribble)
            while not done.is_set():
                # callers cancelled before writing never reach the broker, so read until
                # the closing request rather than counting
                header, request = await peer.read_request()
                owed += peer.frame_for(header, echo_metadata(request))
                if request.topics[0].name == "last":
                    done.set()

    results: dict[str, list[str]] = {}
    cancelled: set[str] = set()
    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port, connection(port) as conn:

            async def call(name: str, patience: float | None) -> None:
                with anyio.move_on_after(patience if patience is not None else BOUND_S) as s:
                    results[name] = topic_names(await conn.send(metadata_request(name)))
                if s.cancelled_caught:
                    cancelled.add(name)

            async with anyio.create_task_group() as tg:
                for i in range(count):
                    patience = rng.choice([None, None, 0.0, 0.001, 0.003])
                    tg.start_soon(call, f"r{i}", patience)
                    await anyio.sleep(rng.random() * 0.001)
            assert not conn.closed
            assert topic_names(await conn.send(metadata_request("last"))) == ["last"]
            assert conn.in_flight == 0
    assert cancelled | set(results) == {f"r{i}" for i in range(count)}
    assert all(results[name] == [name] for name in results)
    assert cancelled, "the scenario should cancel some callers"


# --- lifecycle ----------------------------------------------------------------------


async def test_close_fails_pending_and_is_idempotent() -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await peer.read_request()
        await anyio.sleep_forever()

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler) as port:
            conn = connection(port)
            await conn.connect()
            assert conn.connected
            outcome: list[BaseException] = []

            async def call() -> None:
                with pytest.raises(KafkaConnectionError) as info:
                    await conn.send(metadata_request("a"))
                outcome.append(info.value)

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await wait_until(lambda: conn.in_flight == 1)
                await anyio.sleep(0.01)  # let the waiter block in receive
                await conn.close()
            await conn.close()
            assert conn.closed and not conn.connected
            assert conn.failure is None
            assert len(outcome) == 1
            with pytest.raises(KafkaConnectionError):
                await conn.send(metadata_request("b"))
            with pytest.raises(KafkaConnectionError):
                await conn.connect()


# --- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )
    yield cert, key


async def test_tls_connection(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        header, request = await peer.read_request()
        await peer.respond(header, echo_metadata(request, extra_topics=3000))

    with anyio.fail_after(BOUND_S):
        async with fake_broker(handler, server_ctx) as port:
            async with connection(port, ssl_context=client_ctx) as conn:
                names = topic_names(await conn.send(metadata_request("secure")))
            assert names[0] == "secure" and len(names) == 3001
            # a client that does not trust the certificate cannot connect
            untrusting = ssl.create_default_context()
            conn = connection(port, ssl_context=untrusting)
            with pytest.raises(KafkaConnectionError):
                await conn.connect()

