"""SASL on a connection, against a scripted broker on loopback: the handshake, the
SaslAuthenticate round trips, error codes → typed errors, and KIP-368 re-authentication
through the pool.

The scripted broker speaks only ApiVersions, SaslHandshake, SaslAuthenticate and
Metadata; it checks PLAIN credentials and OAUTHBEARER tokens itself.  The mechanisms'
own bytes are checked in tests/protocol/test_sasl_client_mechanisms.py; the real broker is in
tests/interop/test_sasl_tansu.py.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import pytest

from streamclient.abc import AbstractTokenProvider
from streamclient.cluster import ClusterClient, ClusterConfig
from streamclient.cluster.pool import ConnectionPool
from streamclient.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    UnsupportedVersionError,
)
from streamclient.net.connection import BrokerConnection
from streamclient.net.sasl import SaslSettings
from streamclient.protocol.framing import decode_request, encode_response
from streamclient.protocol.message import Message
from streamclient.protocol.messages.api_versions import ApiVersionsResponse
from streamclient.protocol.messages.metadata import MetadataRequest, MetadataResponse
from streamclient.protocol.messages.sasl_authenticate import SaslAuthenticateResponse
from streamclient.protocol.messages.sasl_handshake import SaslHandshakeResponse

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

_SIZE = struct.Struct(">i")
OAUTH_ERROR = b'{"status":"invalid_token","scope":"kafka"}'


@dataclass
class ScriptedBroker:
    mechanisms: tuple[str, ...] = ("PLAIN", "OAUTHBEARER")
    users: dict[str, str] = field(default_factory=lambda: {"alice": "alice-pw"})
    tokens: frozenset[str] = frozenset({"good-token"})
    lifetime_ms: int = 0
    handshake_max: int = 1
    port: int = 0
    authentications: int = 0
    handshakes: list[str] = field(default_factory=list)
    oauth_messages: list[bytes] = field(default_factory=list)

    def versions(self) -> list[Any]:
        av = ApiVersionsResponse.ApiVersion
        return [av(api_key=18, min_version=0, max_version=3),
                av(api_key=3, min_version=0, max_version=12),
                av(api_key=17, min_version=0, max_version=self.handshake_max),
                av(api_key=36, min_version=0, max_version=2)]

    async def serve_connection(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            state: dict[str, Any] = {"authenticated": False, "mechanism": None,
                                     "oauth_failed": False}
            buf = bytearray()
            while True:
                while len(buf) < 4 or len(buf) < 4 + _SIZE.unpack_from(buf)[0]:
                    try:
                        buf += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                size = _SIZE.unpack_from(buf)[0]
                frame, buf = bytes(buf[4:4 + size]), buf[4 + size:]
                header, request = decode_request(frame)
                answer = await self.answer(request, state)
                if answer is None:
                    return  # hang up, as a broker does on a request before authentication
                await stream.send(encode_response(answer, header.request_api_version,
                                                  header.correlation_id,
                                                  header.request_api_key))

    async def answer(self, request: Message, state: dict[str, Any]) -> Message | None:
        name = type(request).__name__
        if name == "ApiVersionsRequest":
            return ApiVersionsResponse(error_code=0, api_keys=self.versions())
        if name == "SaslHandshakeRequest":
            mechanism = request.mechanism  # type: ignore[attr-defined]
            self.handshakes.append(mechanism)
            if mechanism not in self.mechanisms:
                return SaslHandshakeResponse(error_code=33, mechanisms=list(self.mechanisms))
            state["mechanism"] = mechanism
            return SaslHandshakeResponse(error_code=0, mechanisms=list(self.mechanisms))
        if name == "SaslAuthenticateRequest":
            return self.authenticate(bytes(request.auth_bytes), state)  # type: ignore[attr-defined]
        if not state["authenticated"]:
            return None
        if name == "MetadataRequest":
            topics = request.topics or []  # type: ignore[attr-defined]
            if any(t.name == "slow" for t in topics):
                await anyio.sleep(0.6)
            broker = MetadataResponse.MetadataResponseBroker(
                node_id=0, host="127.0.0.1", port=self.port)
            return MetadataResponse(brokers=[broker], cluster_id="scripted",
                                    controller_id=0, topics=[])
        return None

    def authenticate(self, auth: bytes, state: dict[str, Any]) -> SaslAuthenticateResponse:
        if state["mechanism"] == "PLAIN":
            _, user, password = auth.split(b"\0")
            if self.users.get(user.decode()) != password.decode():
                return SaslAuthenticateResponse(
                    error_code=58, error_message="Authentication failed: Invalid username "
                    "or password")
        elif state["mechanism"] == "OAUTHBEARER":
            self.oauth_messages.append(auth)
            if state["oauth_failed"]:
                # RFC 7628: the client acknowledged the error challenge with \x01
                assert auth == b"\x01"
                return SaslAuthenticateResponse(error_code=58,
                                                error_message="invalid token")
            token = auth.split(b"auth=Bearer ")[1].split(b"\x01")[0].decode()
            if token not in self.tokens:
                state["oauth_failed"] = True
                return SaslAuthenticateResponse(error_code=0, auth_bytes=OAUTH_ERROR)
        else:
            return SaslAuthenticateResponse(error_code=34, error_message="no handshake")
        state["authenticated"] = True
        self.authentications += 1
        return SaslAuthenticateResponse(error_code=0, auth_bytes=b"",
                                        session_lifetime_ms=self.lifetime_ms)


async def run_broker(broker: ScriptedBroker,
                     task_group: anyio.abc.TaskGroup) -> anyio.abc.SocketListener:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    broker.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    task_group.start_soon(listener.serve, broker.serve_connection)
    return listener


@pytest.fixture
async def broker() -> AsyncIterator[ScriptedBroker]:
    scripted = ScriptedBroker()
    async with anyio.create_task_group() as tg:
        listener = await run_broker(scripted, tg)
        yield scripted
        tg.cancel_scope.cancel()
    await listener.aclose()


class Tokens(AbstractTokenProvider):
    def __init__(self, token: str) -> None:
        self.value = token
        self.calls = 0

    async def token(self) -> str:
        self.calls += 1
        return self.value

    def extensions(self) -> dict[str, str]:
        return {"traceId": "t1"}


def connection(broker: ScriptedBroker, settings: SaslSettings) -> BrokerConnection:
    return BrokerConnection("127.0.0.1", broker.port, sasl=settings,
                            request_timeout_ms=5_000)


async def test_plain_authenticates_then_requests_work(broker: ScriptedBroker) -> None:
    async with connection(broker, SaslSettings("PLAIN", "alice", "alice-pw")) as conn:
        assert conn.connected and conn.session_lifetime_ms == 0
        response = await conn.send(MetadataRequest(topics=None))
        assert [b.port for b in response.brokers] == [broker.port]
    assert broker.handshakes == ["PLAIN"] and broker.authentications == 1


async def test_wrong_password_is_a_typed_error_with_the_brokers_text(
        broker: ScriptedBroker) -> None:
    conn = connection(broker, SaslSettings("PLAIN", "alice", "wrong"))
    with anyio.fail_after(5):
        with pytest.raises(SaslAuthenticationFailed, match="Invalid username or password"):
            await conn.connect()
    assert conn.closed and broker.authentications == 0


async def test_unsupported_mechanism_names_what_the_broker_offers(
        broker: ScriptedBroker) -> None:
    conn = connection(broker, SaslSettings("SCRAM-SHA-512", "alice", "alice-pw"))
    with pytest.raises(UnsupportedSaslMechanismError,
                       match="SCRAM-SHA-512; it offers: PLAIN, OAUTHBEARER"):
        await conn.connect()


async def test_a_broker_without_handshake_v1_is_refused(broker: ScriptedBroker) -> None:
    broker.handshake_max = 0
    conn = connection(broker, SaslSettings("PLAIN", "alice", "alice-pw"))
    with pytest.raises(UnsupportedVersionError, match="SaslHandshake v1"):
        await conn.connect()
    assert broker.handshakes == []


async def test_oauthbearer_token_and_extensions(broker: ScriptedBroker) -> None:
    provider = Tokens("good-token")
    async with connection(broker, SaslSettings("OAUTHBEARER", token_provider=provider)):
        pass
    assert provider.calls == 1
    assert broker.oauth_messages == [b"n,,\x01auth=Bearer good-token\x01traceId=t1\x01\x01"]


async def test_oauthbearer_rejected_token_acknowledges_then_fails(
        broker: ScriptedBroker) -> None:
    conn = connection(broker, SaslSettings("OAUTHBEARER", token_provider=Tokens("stale")))
    with pytest.raises(SaslAuthenticationFailed, match="invalid_token") as info:
        await conn.connect()
    assert "invalid token" in str(info.value)  # the error code's message too
    assert broker.oauth_messages[-1] == b"\x01"


async def test_cluster_client_start_fails_fast_on_bad_credentials(
        broker: ScriptedBroker) -> None:
    bad = ClusterClient(bootstrap_servers=f"127.0.0.1:{broker.port}",
                        security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                        sasl_plain_username="alice", sasl_plain_password="nope")
    with anyio.fail_after(5):
        with pytest.raises(SaslAuthenticationFailed):
            await bad.start()
    await bad.close()
    good = ClusterClient(bootstrap_servers=f"127.0.0.1:{broker.port}",
                         security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                         sasl_plain_username="alice", sasl_plain_password="alice-pw")
    async with good:
        assert [n.node_id for n in good.metadata.brokers()] == [0]


async def test_a_client_without_sasl_is_hung_up_on(broker: ScriptedBroker) -> None:
    client = ClusterClient(bootstrap_servers=f"127.0.0.1:{broker.port}")
    with pytest.raises(KafkaConnectionError, match="closed the connection"):
        await client.start()
    await client.close()


async def test_session_lifetime_makes_the_pool_reauthenticate(
        broker: ScriptedBroker) -> None:
    """KIP-368: at 85 % of the lifetime the connection stops counting as connected, the
    pool opens (and authenticates) a new one, and the old one is closed only after the
    response to the request it was still carrying has been read."""
    broker.lifetime_ms = 2_000
    config = ClusterConfig(bootstrap_servers=f"127.0.0.1:{broker.port}",
                           security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                           sasl_plain_username="alice", sasl_plain_password="alice-pw",
                           request_timeout_ms=5_000)
    pool = ConnectionPool(config, lambda node: ("127.0.0.1", broker.port))
    start = anyio.current_time()
    first = await pool.get(0)
    assert first.session_lifetime_ms == 2_000 and broker.authentications == 1
    assert await pool.get(0) is first

    await anyio.sleep(max(start + 1.45 - anyio.current_time(), 0))
    assert first.connected and not first.reauthentication_due
    slow_result: list[Any] = []

    async def slow_request() -> None:
        slow = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="slow")])
        slow_result.append(await first.send(slow))

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow_request)  # answered 0.6 s later, after re-auth is due
        await anyio.sleep(max(start + 1.8 - anyio.current_time(), 0))
        assert first.reauthentication_due and not first.connected
        second = await pool.get(0)
        assert second is not first and second.connected
        assert broker.authentications == 2
        assert not first.closed and first.in_flight == 1  # still carrying the slow one
    assert len(slow_result) == 1 and first.closed
    # the new connection carries requests; the old one takes none
    assert (await second.send(MetadataRequest(topics=None))).brokers
    with pytest.raises(KafkaConnectionError, match="closed"):
        await first.send(MetadataRequest(topics=None))
    await pool.close()


async def test_requests_stop_at_95_percent_of_the_lifetime(broker: ScriptedBroker) -> None:
    broker.lifetime_ms = 1_000
    async with connection(broker, SaslSettings("PLAIN", "alice", "alice-pw")) as conn:
        start = anyio.current_time()
        await anyio.sleep(0.9)
        assert not conn.connected
        await conn.send(MetadataRequest(topics=None))  # 85-95 %: still allowed
        await anyio.sleep(max(start + 1.0 - anyio.current_time(), 0))
        with pytest.raises(KafkaConnectionError, match="SASL session is about to expire"):
            await conn.send(MetadataRequest(topics=None))
