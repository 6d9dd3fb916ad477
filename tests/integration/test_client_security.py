"""streamclient's own clients through the embedded broker's SASL and TLS listeners.

The client's SASL is proven against software nobody here wrote elsewhere (RFC 7677's
example, kafka-python's SCRAM messages, Tansu's answers: tests/protocol, tests/interop);
the broker's listeners by confluent-kafka, kafka-python and aiokafka
(tests/interop/test_broker_sasl_clients.py).  Here the two meet for what neither of
those could show alone: successful logins with every mechanism over SASL_PLAINTEXT and
SASL_SSL, records produced and consumed through a group, a wrong password failing
`start()` at once, and re-authentication before a broker-limited session ends (KIP-368).
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import uuid
from typing import Any

import anyio
import pytest

from streamclient import AIOKafkaConsumer, AIOKafkaProducer, KafkaProducer
from streamclient.abc import AbstractTokenProvider
from streamclient.admin import AIOKafkaAdminClient
from streamclient.broker import EmbeddedCluster
from streamclient.errors import KafkaConnectionError, SaslAuthenticationFailed
from streamclient.testing.plugin import KafkaTLS

USERS = {"alice": "alice-secret", "bob": "b0b=,pw"}
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class UnsecuredTokens(AbstractTokenProvider):
    """``alg: none`` tokens, as Kafka's unsecured validator (and the broker's) accepts."""

    def __init__(self, principal: str) -> None:
        self.principal = principal
        self.calls = 0

    async def token(self) -> str:
        self.calls += 1

        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        now = int(time.time())
        return (f"{part({'alg': 'none'})}."
                f"{part({'sub': self.principal, 'iat': now, 'exp': now + 3600})}.")


def client_settings(protocol: str, mechanism: str, tls: KafkaTLS, user: str = "bob",
                    password: str | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"security_protocol": protocol, "sasl_mechanism": mechanism}
    if protocol.endswith("SSL"):
        settings["ssl_context"] = tls.client_context()
    if mechanism == "OAUTHBEARER":
        settings["sasl_oauth_token_provider"] = UnsecuredTokens(user)
    else:
        settings["sasl_plain_username"] = user
        settings["sasl_plain_password"] = USERS[user] if password is None else password
    return settings


def cluster(protocol: str, tls: KafkaTLS, **options: Any) -> EmbeddedCluster:
    if protocol.endswith("SSL"):
        options["ssl_context"] = tls.server_context
    return EmbeddedCluster(1, sasl_enabled_mechanisms=MECHANISMS, sasl_users=USERS,
                           group_initial_rebalance_delay_ms=0, **options)


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_produce_and_consume_through_a_group(protocol: str, mechanism: str,
                                                   kafka_tls: KafkaTLS) -> None:
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    settings = client_settings(protocol, mechanism, kafka_tls)
    async with cluster(protocol, kafka_tls) as running:
        with anyio.fail_after(30):
            async with AIOKafkaProducer(bootstrap_servers=running.bootstrap_servers,
                                        **settings) as producer:
                sent = [await producer.send_and_wait(topic, b"v%d" % i, key=b"k")
                        for i in range(5)]
            async with AIOKafkaConsumer(topic, bootstrap_servers=running.bootstrap_servers,
                                        group_id="g", auto_offset_reset="earliest",
                                        **settings) as consumer:
                got: list[bytes] = []
                while len(got) < 5:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        got += [r.value for r in records if r.value is not None]
                await consumer.commit()
            async with AIOKafkaAdminClient(bootstrap_servers=running.bootstrap_servers,
                                           **settings) as admin:
                offsets = await admin.list_consumer_group_offsets("g")
    assert got == [b"v%d" % i for i in range(5)]
    assert [md.offset for md in sent] == list(range(5))
    assert sum(o.offset for o in offsets.values()) == 5
    assert running.nodes[0].sasl_logins >= 3  # producer, consumer and admin each logged in


@pytest.mark.anyio
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_a_wrong_password_fails_start_at_once(mechanism: str,
                                                    kafka_tls: KafkaTLS) -> None:
    settings = client_settings("SASL_PLAINTEXT", mechanism, kafka_tls, password="wrong")
    async with cluster("SASL_PLAINTEXT", kafka_tls) as running:
        producer = AIOKafkaProducer(bootstrap_servers=running.bootstrap_servers, **settings)
        with anyio.fail_after(10), pytest.raises(SaslAuthenticationFailed):
            await producer.start()
        assert running.nodes[0].sasl_logins == 0


@pytest.mark.anyio
async def test_the_client_moves_to_a_new_session_before_the_broker_ends_it(
        kafka_tls: KafkaTLS) -> None:
    """The broker limits sessions to 1.5 s and closes a connection used past its end; the
    producer keeps sending for 4 s without a failed request."""
    settings = client_settings("SASL_SSL", "SCRAM-SHA-512", kafka_tls)
    topic = f"reauth-{uuid.uuid4().hex[:8]}"
    async with cluster("SASL_SSL", kafka_tls, connections_max_reauth_ms=1500) as running:
        async with AIOKafkaProducer(bootstrap_servers=running.bootstrap_servers,
                                    **settings) as producer:
            with anyio.fail_after(20):
                sent = []
                deadline = time.monotonic() + 4
                while time.monotonic() < deadline:
                    sent.append(await producer.send_and_wait(topic, b"x", partition=0))
                    await anyio.sleep(0.05)
        logins = running.nodes[0].sasl_logins + running.nodes[0].sasl_reauthentications
    assert [md.offset for md in sent] == list(range(len(sent)))
    assert logins >= 3, "the sessions were not renewed"


def test_the_blocking_producer_over_sasl_ssl(kafka_tls: KafkaTLS) -> None:
    from streamclient.broker import BlockingEmbeddedCluster

    settings = client_settings("SASL_SSL", "SCRAM-SHA-256", kafka_tls, user="alice")
    running = BlockingEmbeddedCluster(1, sasl_enabled_mechanisms=MECHANISMS, sasl_users=USERS,
                                      ssl_context=kafka_tls.server_context)
    with running, KafkaProducer(bootstrap_servers=running.bootstrap_servers,
                                **settings) as producer:
        metadata = producer.send("t", b"v").get(20)
    assert metadata.offset == 0


@pytest.mark.anyio
async def test_tls_without_sasl(kafka_tls: KafkaTLS) -> None:
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    async with EmbeddedCluster(1, ssl_context=kafka_tls.server_context) as running:
        async with AIOKafkaProducer(bootstrap_servers=running.bootstrap_servers,
                                    security_protocol="SSL",
                                    ssl_context=kafka_tls.client_context()) as producer:
            metadata = await producer.send_and_wait(topic, b"v")
        untrusting = ssl.create_default_context()  # the test CA is not in it
        producer = AIOKafkaProducer(bootstrap_servers=running.bootstrap_servers,
                                    security_protocol="SSL", ssl_context=untrusting,
                                    request_timeout_ms=3000)
        with anyio.fail_after(20), pytest.raises(KafkaConnectionError) as failed:
            await producer.start()
    assert metadata.offset == 0
    assert "CERTIFICATE_VERIFY_FAILED" in repr(failed.value.__cause__) + str(failed.value)
