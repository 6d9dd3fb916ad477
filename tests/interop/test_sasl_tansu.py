"""SASL against Tansu started with ``--authentication`` (an independent Rust broker).

Tansu 0.6 with in-memory storage can show only the failure paths: it offers
SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (without a token validator), it hangs up
on PLAIN (instead of answering UNSUPPORTED_SASL_MECHANISM with its list) and on any
request before authentication, and it can have no users (``tansu user create`` is refused by an
authenticating broker; see ``streamclient.testing.tansu``).  So every login here is an
unknown user, which Tansu must reject with SASL_AUTHENTICATION_FAILED after parsing our
client-first message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest

from streamclient import AIOKafkaConsumer, AIOKafkaProducer
from streamclient.errors import KafkaConnectionError, SaslAuthenticationFailed
from streamclient.net.connection import BrokerConnection, parse_address
from streamclient.net.sasl import SaslSettings
from streamclient.protocol.messages.sasl_handshake import SaslHandshakeRequest
from streamclient.sync import KafkaProducer
from streamclient.testing.tansu import TansuUnavailable, running_tansu

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

# failures must come back at once, not after retries or the request timeout
FAST_S = 10.0


@pytest.fixture(scope="module")
def auth_tansu() -> Iterator[str]:
    try:
        with running_tansu(startup_timeout_s=20.0, authentication=True) as tansu:
            yield tansu.bootstrap
    except TansuUnavailable as exc:  # pragma: no cover - the test extra installs it
        raise pytest.UsageError(f"the interop tests need Tansu: {exc}") from exc


def sasl_kwargs(mechanism: str, user: str = "nobody", password: str = "pw") -> dict[str, Any]:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
            "sasl_plain_username": user, "sasl_plain_password": password,
            "request_timeout_ms": 15_000}


async def test_tansu_accepts_our_scram_handshake(auth_tansu: str) -> None:
    """The handshake names a mechanism Tansu offers; Tansu parses our client-first
    message and answers SCRAM's own ``e=unknown-user``, which becomes the error."""
    host, port = parse_address(auth_tansu)
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        conn = BrokerConnection(host, port, request_timeout_ms=15_000,
                                sasl=SaslSettings(mechanism, "nobody", "pw"))
        with anyio.fail_after(FAST_S):
            with pytest.raises(SaslAuthenticationFailed,
                               match=f"{port}>: {mechanism}: server error: unknown-user"):
                await conn.connect()
        assert conn.closed


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("user,password", [("nobody", "pw"), ("admin", "wrong-password")])
async def test_producer_start_fails_with_sasl_authentication_failed(
        auth_tansu: str, mechanism: str, user: str, password: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=auth_tansu,
                                **sasl_kwargs(mechanism, user, password))
    with anyio.fail_after(FAST_S):
        with pytest.raises(SaslAuthenticationFailed, match="unknown-user"):
            await producer.start()
    await producer.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_consumer_start_fails_with_sasl_authentication_failed(
        auth_tansu: str, mechanism: str) -> None:
    consumer = AIOKafkaConsumer("t", bootstrap_servers=auth_tansu, group_id="g",
                                **sasl_kwargs(mechanism))
    with anyio.fail_after(FAST_S):
        with pytest.raises(SaslAuthenticationFailed):
            await consumer.start()
    await consumer.stop()


async def test_a_client_without_sasl_fails_clearly(auth_tansu: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=auth_tansu, request_timeout_ms=15_000)
    with anyio.fail_after(FAST_S):
        with pytest.raises(KafkaConnectionError,
                           match=r"Unable to bootstrap.*closed the connection"):
            await producer.start()
    await producer.stop()


async def test_plain_which_tansu_does_not_offer(auth_tansu: str) -> None:
    """Tansu closes the connection instead of listing its mechanisms; the error says
    which mechanism the broker gave up on, and that it may not offer it."""
    producer = AIOKafkaProducer(bootstrap_servers=auth_tansu,
                                **sasl_kwargs("PLAIN", "admin", "pw"))
    with anyio.fail_after(FAST_S):
        with pytest.raises(KafkaConnectionError,
                           match="SASL handshake for PLAIN \\(it may not offer"):
            await producer.start()
    await producer.stop()


async def test_oauthbearer_token_tansu_cannot_validate(auth_tansu: str) -> None:
    """Tansu accepts the OAUTHBEARER handshake but has no token validator: our initial
    response is answered with SASL_AUTHENTICATION_FAILED and its message."""
    class Token:
        async def token(self) -> str:
            return "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."

    producer = AIOKafkaProducer(bootstrap_servers=auth_tansu,
                                security_protocol="SASL_PLAINTEXT",
                                sasl_mechanism="OAUTHBEARER",
                                sasl_oauth_token_provider=Token(), request_timeout_ms=15_000)
    with anyio.fail_after(FAST_S):
        with pytest.raises(SaslAuthenticationFailed,
                           match="SASL/OAUTHBEARER authentication failed: SASL Auth"):
            await producer.start()
    await producer.stop()


async def test_tansu_handshake_lists_the_offered_mechanism(auth_tansu: str) -> None:
    host, port = parse_address(auth_tansu)
    async with BrokerConnection(host, port, request_timeout_ms=15_000) as conn:
        response = await conn.send(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1)
    assert response.error_code == 0 and "SCRAM-SHA-512" in response.mechanisms


def test_sync_producer_with_scram_fails_at_construction(auth_tansu: str) -> None:
    with pytest.raises(SaslAuthenticationFailed):
        KafkaProducer(bootstrap_servers=auth_tansu, **sasl_kwargs("SCRAM-SHA-512"))
