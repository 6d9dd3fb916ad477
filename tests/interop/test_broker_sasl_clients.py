"""SASL and TLS listeners of the embedded broker, proven by clients nobody here wrote.

confluent-kafka (librdkafka), kafka-python and aiokafka produce and consume through
SASL_PLAINTEXT and SASL_SSL listeners with every mechanism (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512, OAUTHBEARER with unsecured tokens) and through a plain SSL listener; wrong
passwords fail with the clients' own authentication errors; a client that does not
authenticate is disconnected; a SCRAM user created with confluent-kafka's admin
(AlterUserScramCredentials) logs in; librdkafka re-authenticates when the session lifetime
asks it to (KIP-368).  The broker runs on asyncio and on trio (``BlockingEmbeddedCluster``
on a background thread).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from streamclient.broker import BlockingEmbeddedCluster
from streamclient.testing.plugin import KafkaTLS

pytestmark = pytest.mark.interop

USERS = {"alice": "alice-secret", "bob": "b0b=,pw"}
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
TIMEOUT_S = 20
COUNT = 10


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def start(backend: str, protocol: str, tls: KafkaTLS, **options: Any) -> BlockingEmbeddedCluster:
    if protocol.startswith("SASL"):
        options.setdefault("sasl_enabled_mechanisms", MECHANISMS)
        options.setdefault("sasl_users", USERS)
    if protocol.endswith("SSL"):
        options["ssl_context"] = tls.server_context
    return BlockingEmbeddedCluster(1, backend=backend, group_initial_rebalance_delay_ms=0,
                                   **options)


@pytest.fixture
def topic() -> str:
    return f"sasl-{uuid.uuid4().hex[:10]}"


def unsecured_jwt(principal: str, lifetime_s: int = 3600) -> str:
    """An ``alg: none`` token as Kafka's unsecured login module makes them."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({'sub': principal, 'iat': now, 'exp': now + lifetime_s})}."


# -- per-client settings ----------------------------------------------------------------------


def confluent_settings(protocol: str, mechanism: str | None, tls: KafkaTLS,
                       user: str = "alice", password: str | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"security.protocol": protocol}
    if protocol.endswith("SSL"):
        settings["ssl.ca.location"] = tls.ca_path
    if mechanism == "OAUTHBEARER":
        settings.update({"sasl.mechanism": mechanism,
                         "enable.sasl.oauthbearer.unsecure.jwt": True,
                         "sasl.oauthbearer.config": f"principal={user}"})
    elif mechanism is not None:
        settings.update({"sasl.mechanism": mechanism, "sasl.username": user,
                         "sasl.password": USERS.get(user) if password is None else password})
    return settings


def kafka_python_settings(protocol: str, mechanism: str | None, tls: KafkaTLS,
                          user: str = "alice", password: str | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        settings["ssl_cafile"] = tls.ca_path
    if mechanism == "OAUTHBEARER":
        from kafka.net.sasl.oauth import AbstractTokenProvider

        class Tokens(AbstractTokenProvider):  # type: ignore[misc]
            def token(self) -> str:
                return unsecured_jwt(user)

        settings.update(sasl_mechanism=mechanism, sasl_oauth_token_provider=Tokens())
    elif mechanism is not None:
        settings.update(sasl_mechanism=mechanism, sasl_plain_username=user,
                        sasl_plain_password=USERS.get(user) if password is None else password)
    return settings


def aiokafka_settings(protocol: str, mechanism: str | None, tls: KafkaTLS,
                      user: str = "alice", password: str | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        settings["ssl_context"] = tls.client_context()
    if mechanism == "OAUTHBEARER":
        from aiokafka.abc import AbstractTokenProvider

        class Tokens(AbstractTokenProvider):  # type: ignore[misc]
            async def token(self) -> str:
                return unsecured_jwt(user)

        settings.update(sasl_mechanism=mechanism, sasl_oauth_token_provider=Tokens())
    elif mechanism is not None:
        settings.update(sasl_mechanism=mechanism, sasl_plain_username=user,
                        sasl_plain_password=USERS.get(user) if password is None else password)
    return settings


# -- produce and consume ----------------------------------------------------------------------


def confluent_round_trip(bootstrap: str, topic: str, settings: dict[str, Any]) -> list[bytes]:
    import confluent_kafka
    import confluent_kafka.admin

    errors: list[Any] = []
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                         "error_cb": errors.append, **settings})
    for i in range(COUNT):
        producer.produce(topic, b"ck-%d" % i)
    assert producer.flush(TIMEOUT_S) == 0, errors
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
        "auto.offset.reset": "earliest", "error_cb": errors.append, **settings})
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT_S
        while len(values) < COUNT and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert errors == []
    return values


def kafka_python_round_trip(bootstrap: str, topic: str, settings: dict[str, Any]) -> list[bytes]:
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all", **settings)
    try:
        for i in range(COUNT):
            producer.send(topic, b"kp-%d" % i)
        producer.flush(TIMEOUT_S)
    finally:
        producer.close()
    consumer = kafka.KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}",
                                   auto_offset_reset="earliest",
                                   consumer_timeout_ms=TIMEOUT_S * 1000, **settings)
    values: list[bytes] = []
    try:
        for message in consumer:
            values.append(message.value)
            if len(values) == COUNT:
                break
        consumer.commit()
    finally:
        consumer.close()
    return values


def aiokafka_round_trip(bootstrap: str, topic: str, settings: dict[str, Any]) -> list[bytes]:
    import aiokafka

    async def run() -> list[bytes]:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                             **settings)
        await producer.start()
        try:
            for i in range(COUNT):
                await producer.send(topic, b"aio-%d" % i)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                             group_id=f"g-{topic}",
                                             auto_offset_reset="earliest", **settings)
        await consumer.start()
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while len(values) < COUNT and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                values += [m.value for batch in batches.values() for m in batch]
            await consumer.commit()
        finally:
            await consumer.stop()
        return values

    return asyncio.run(run())


CLIENTS = {
    "confluent-kafka": (confluent_settings, confluent_round_trip, b"ck-"),
    "kafka-python": (kafka_python_settings, kafka_python_round_trip, b"kp-"),
    "aiokafka": (aiokafka_settings, aiokafka_round_trip, b"aio-"),
}


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_produce_and_consume_through_sasl(client: str, mechanism: str, protocol: str,
                                          backend: str, kafka_tls: KafkaTLS,
                                          topic: str) -> None:
    settings_for, round_trip, prefix = CLIENTS[client]
    with start(backend, protocol, kafka_tls) as cluster:
        values = round_trip(cluster.bootstrap_servers, topic,
                            settings_for(protocol, mechanism, kafka_tls))
        assert sorted(values) == sorted(prefix + b"%d" % i for i in range(COUNT))
        node = cluster.cluster.nodes[0]
        assert node.sasl_logins >= 2  # a producer's and a consumer's connections at least
        # the group's commit went through the authenticated connections too
        assert cluster.call(lambda: cluster.state.groups.offsets.has_offsets(f"g-{topic}"))
        assert cluster.errors == []


@pytest.mark.parametrize("client", list(CLIENTS))
def test_produce_and_consume_through_ssl(client: str, backend: str, kafka_tls: KafkaTLS,
                                         topic: str) -> None:
    settings_for, round_trip, prefix = CLIENTS[client]
    with start(backend, "SSL", kafka_tls) as cluster:
        values = round_trip(cluster.bootstrap_servers, topic,
                            settings_for("SSL", None, kafka_tls))
        assert sorted(values) == sorted(prefix + b"%d" % i for i in range(COUNT))
        assert cluster.cluster.nodes[0].sasl_logins == 0
        assert cluster.errors == []


# -- failures ---------------------------------------------------------------------------------


def failed_errors(admin: Any, errors: list[Any]) -> list[Any]:
    """``list_topics`` fails, then the errors librdkafka reports (through ``poll``)."""
    import confluent_kafka

    with pytest.raises(confluent_kafka.KafkaException):
        admin.list_topics(timeout=3)
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        admin.poll(0.2)
    return errors


def kafka_python_send_fails(bootstrap: str, settings: dict[str, Any]) -> None:
    """kafka-python retries a failed bootstrap until its send gives up; then it closes.

    (api_version is given so the constructor does not bootstrap: a constructor that
    fails leaks kafka-python's wake-up sockets.)
    """
    import kafka
    import kafka.errors

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, api_version=(4, 0),
                                   max_block_ms=2000, **settings)
    try:
        with pytest.raises(kafka.errors.KafkaTimeoutError):
            producer.send("never", b"x").get(timeout=5)
    finally:
        producer.close(timeout=2)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_fails_in_every_client(mechanism: str, kafka_tls: KafkaTLS,
                                              caplog: pytest.LogCaptureFixture) -> None:
    import aiokafka.conn
    import aiokafka.errors
    import confluent_kafka
    import confluent_kafka.admin

    # SASL_PLAINTEXT: aiokafka leaves its TLS transport open when authentication fails
    with start("asyncio", "SASL_PLAINTEXT", kafka_tls) as cluster:
        # kafka-python's send times out; each failed login is logged with its own class
        with caplog.at_level("ERROR", logger="kafka"):
            kafka_python_send_fails(
                cluster.bootstrap_servers,
                kafka_python_settings("SASL_PLAINTEXT", mechanism, kafka_tls, password="wrong"))
        assert any("SaslAuthenticationFailedError" in r.getMessage() for r in caplog.records)

        async def aiokafka_connect() -> None:
            host, port = cluster.bootstrap_servers.split(":")
            await aiokafka.conn.create_conn(
                host, int(port),
                **aiokafka_settings("SASL_PLAINTEXT", mechanism, kafka_tls, password="wrong"))

        with pytest.raises(aiokafka.errors.SaslAuthenticationFailed, match="invalid credentials"):
            asyncio.run(aiokafka_connect())

        errors: list[Any] = []
        admin = confluent_kafka.admin.AdminClient({
            "bootstrap.servers": cluster.bootstrap_servers, "error_cb": errors.append,
            **confluent_settings("SASL_PLAINTEXT", mechanism, kafka_tls, password="wrong")})
        failed_errors(admin, errors)
        assert errors[0].code() == confluent_kafka.KafkaError._AUTHENTICATION
        assert "invalid credentials" in errors[0].str()
        del admin
        assert cluster.cluster.nodes[0].sasl_logins == 0
        assert cluster.errors == []


def test_client_without_sasl_is_disconnected(kafka_tls: KafkaTLS) -> None:
    import confluent_kafka
    import confluent_kafka.admin

    with start("trio", "SASL_PLAINTEXT", kafka_tls) as cluster:
        errors: list[Any] = []
        admin = confluent_kafka.admin.AdminClient({
            "bootstrap.servers": cluster.bootstrap_servers, "error_cb": errors.append,
            "security.protocol": "PLAINTEXT"})
        failed_errors(admin, errors)
        # librdkafka sees its connection closed, not an answer
        assert {e.code() for e in errors} <= {confluent_kafka.KafkaError._TRANSPORT,
                                              confluent_kafka.KafkaError._ALL_BROKERS_DOWN}
        assert errors
        kafka_python_send_fails(cluster.bootstrap_servers, {})
        assert cluster.cluster.nodes[0].sasl_logins == 0
        assert cluster.errors == []


def test_tls_client_that_does_not_trust_the_certificate_fails(kafka_tls: KafkaTLS,
                                                              tmp_path: Path) -> None:
    import confluent_kafka
    import confluent_kafka.admin

    from streamclient.testing.plugin import make_test_tls

    other_ca = make_test_tls(tmp_path)
    with start("asyncio", "SASL_SSL", kafka_tls) as cluster:
        errors: list[Any] = []
        admin = confluent_kafka.admin.AdminClient({
            "bootstrap.servers": cluster.bootstrap_servers, "error_cb": errors.append,
            **confluent_settings("SASL_SSL", "PLAIN", other_ca)})
        failed_errors(admin, errors)
        assert any(e.code() == confluent_kafka.KafkaError._SSL for e in errors), errors
        assert cluster.cluster.nodes[0].sasl_logins == 0
        assert cluster.errors == []


# -- users at runtime and re-authentication ---------------------------------------------------


def test_scram_user_added_with_confluent_admin_can_log_in(backend: str, kafka_tls: KafkaTLS,
                                                          topic: str) -> None:
    import confluent_kafka
    import confluent_kafka.admin
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    with start(backend, "SASL_PLAINTEXT", kafka_tls) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers,
                             **confluent_settings("SASL_PLAINTEXT", "SCRAM-SHA-256",
                                                  kafka_tls)})
        futures = admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion(
                "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                b"carol-pw", b"some-salt-bytes"),
            UserScramCredentialUpsertion(
                "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"carol-pw"),
        ])
        for future in futures.values():
            future.result(timeout=TIMEOUT_S)
        described = admin.describe_user_scram_credentials(["carol"])["carol"].result(
            timeout=TIMEOUT_S)
        assert sorted((i.mechanism, i.iterations)
                      for i in described.scram_credential_infos) == [
            (ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512, 8192)]

        USERS["carol"] = "carol-pw"
        try:
            values = kafka_python_round_trip(
                cluster.bootstrap_servers, topic,
                kafka_python_settings("SASL_PLAINTEXT", "SCRAM-SHA-512", kafka_tls, "carol"))
            assert len(values) == COUNT
            aiokafka_round_trip(
                cluster.bootstrap_servers, topic + "-aio",
                aiokafka_settings("SASL_PLAINTEXT", "SCRAM-SHA-256", kafka_tls, "carol"))
            # SCRAM credentials do not make a PLAIN password (as in Kafka)
            errors: list[Any] = []
            plain = AdminClient({"bootstrap.servers": cluster.bootstrap_servers,
                                 "error_cb": errors.append,
                                 **confluent_settings("SASL_PLAINTEXT", "PLAIN", kafka_tls,
                                                      "carol")})
            assert failed_errors(plain, errors)[0].code() == (
                confluent_kafka.KafkaError._AUTHENTICATION)
            del plain
        finally:
            del USERS["carol"]

        deleted = admin.alter_user_scram_credentials([
            UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)])
        deleted["carol"].result(timeout=TIMEOUT_S)
        errors = []
        gone = AdminClient({"bootstrap.servers": cluster.bootstrap_servers,
                            "error_cb": errors.append,
                            **confluent_settings("SASL_PLAINTEXT", "SCRAM-SHA-512", kafka_tls,
                                                 "carol", "carol-pw")})
        failed_errors(gone, errors)
        del gone
        assert errors[0].code() == confluent_kafka.KafkaError._AUTHENTICATION
        assert cluster.errors == []


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "OAUTHBEARER"])
def test_librdkafka_reauthenticates_within_the_session_lifetime(
        mechanism: str, backend: str, kafka_tls: KafkaTLS, topic: str) -> None:
    import confluent_kafka
    import confluent_kafka.admin

    with start(backend, "SASL_SSL", kafka_tls, connections_max_reauth_ms=1500) as cluster:
        errors: list[Any] = []
        producer = confluent_kafka.Producer({
            "bootstrap.servers": cluster.bootstrap_servers, "error_cb": errors.append,
            **confluent_settings("SASL_SSL", mechanism, kafka_tls)})
        delivered: list[Any] = []
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            producer.produce(topic, b"x", on_delivery=lambda err, msg: delivered.append(err))
            producer.poll(0.2)
        assert producer.flush(TIMEOUT_S) == 0
        assert delivered and all(err is None for err in delivered)
        assert errors == []
        node = cluster.cluster.nodes[0]
        assert node.sasl_reauthentications >= 2
        assert cluster.errors == []


def test_sasl_tls_cluster_from_the_pytest_marker(tmp_path: Path) -> None:
    """What docs/testing.md shows: the marker's options and the kafka_tls fixture."""
    (tmp_path / "test_app.py").write_text(textwrap.dedent("""
        import confluent_kafka
        import pytest

        @pytest.mark.kafka_cluster(sasl_mechanisms="SCRAM-SHA-512", tls=True,
                                   sasl_users={"app": "app-pw"})
        def test_app(kafka_cluster_sync, kafka_tls):
            producer = confluent_kafka.Producer({
                "bootstrap.servers": kafka_cluster_sync.bootstrap_servers,
                "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "app", "sasl.password": "app-pw",
                "ssl.ca.location": kafka_tls.ca_path})
            producer.produce("t", b"v")
            assert producer.flush(20) == 0
            assert kafka_cluster_sync.state.config.security_protocol == "SASL_SSL"
            assert kafka_cluster_sync.cluster.nodes[0].sasl_logins >= 1
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
