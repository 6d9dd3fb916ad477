"""SASL on the broker's connections, over raw frames (``WireClient``), asyncio and trio.

What is served before authentication, the v1 and v0 handshake flows, failures closing the
connection, session lifetimes (KIP-368) and the SCRAM credential APIs (KIP-554).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

import pytest

from streamclient.broker import EmbeddedCluster, ManualClock
from streamclient.broker.config import BrokerConfig, InvalidConfigError
from streamclient.protocol.messages import (
    AlterUserScramCredentialsRequest,
    ApiVersionsRequest,
    DescribeUserScramCredentialsRequest,
    MetadataRequest,
    SaslAuthenticateRequest,
    SaslHandshakeRequest,
)
from streamclient.testing import WireClient

pytestmark = pytest.mark.anyio

UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58
RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93
SASL = {"sasl_mechanisms": "PLAIN,SCRAM-SHA-256", "sasl_users": {"alice": "s3cret"}}


def wire(cluster: EmbeddedCluster) -> WireClient:
    return WireClient(*cluster.address(0), timeout_s=5)


async def plain_login(client: WireClient, user: str = "alice", password: str = "s3cret",
                      *, version: int = 2) -> object:
    handshake = await client.send(SaslHandshakeRequest(mechanism="PLAIN"), 1)
    assert handshake.error_code == 0
    return await client.send(
        SaslAuthenticateRequest(auth_bytes=f"\0{user}\0{password}".encode()), version)


async def metadata_works(client: WireClient) -> bool:
    response = await client.send(MetadataRequest(topics=[]), 9)
    return [b.node_id for b in response.brokers] == [0]


@pytest.mark.kafka_cluster(**SASL)
async def test_requests_before_authentication_close_the_connection(
        kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        # ApiVersions is served before authentication (clients need it for the handshake)
        versions = await client.send(ApiVersionsRequest(), 3)
        assert {17, 36, 50, 51} <= {k.api_key for k in versions.api_keys}
        await client.send_request(MetadataRequest(topics=[]), 9)
        assert await client.closed_by_peer()


@pytest.mark.kafka_cluster(**SASL)
async def test_plain_login_then_requests_are_served(kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        handshake = await client.send(SaslHandshakeRequest(mechanism="PLAIN"), 1)
        assert handshake.error_code == 0
        assert handshake.mechanisms == ["PLAIN", "SCRAM-SHA-256"]
        response = await client.send(
            SaslAuthenticateRequest(auth_bytes=b"\0alice\0s3cret"), 2)
        assert (response.error_code, response.session_lifetime_ms) == (0, 0)
        assert await metadata_works(client)
        # a second login on an authenticated connection is out of order
        again = await client.send(SaslAuthenticateRequest(auth_bytes=b"\0alice\0s3cret"), 0)
        assert again.error_code == ILLEGAL_SASL_STATE
        assert await metadata_works(client)
    assert kafka_cluster.nodes[0].sasl_logins == 1


@pytest.mark.kafka_cluster(**SASL)
@pytest.mark.parametrize("password", ["wrong", ""])
async def test_bad_password_fails_and_closes(kafka_cluster: EmbeddedCluster,
                                             password: str) -> None:
    async with wire(kafka_cluster) as client:
        response = await plain_login(client, password=password)
        assert response.error_code == SASL_AUTHENTICATION_FAILED  # type: ignore[attr-defined]
        assert response.error_message  # type: ignore[attr-defined]
        assert await client.closed_by_peer()
    assert kafka_cluster.nodes[0].sasl_logins == 0


@pytest.mark.kafka_cluster(**SASL)
async def test_unsupported_mechanism_lists_the_enabled_ones_and_closes(
        kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        response = await client.send(SaslHandshakeRequest(mechanism="GSSAPI"), 1)
        assert response.error_code == UNSUPPORTED_SASL_MECHANISM
        assert response.mechanisms == ["PLAIN", "SCRAM-SHA-256"]
        assert await client.closed_by_peer()


@pytest.mark.kafka_cluster(**SASL)
async def test_out_of_order_requests_get_illegal_sasl_state(
        kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        early = await client.send(SaslAuthenticateRequest(auth_bytes=b"\0alice\0s3cret"), 1)
        assert early.error_code == ILLEGAL_SASL_STATE
        assert await client.closed_by_peer()
    async with wire(kafka_cluster) as client:
        assert (await client.send(SaslHandshakeRequest(mechanism="PLAIN"), 1)).error_code == 0
        # between handshake and authenticate only SaslAuthenticate is legal
        second = await client.send(SaslHandshakeRequest(mechanism="PLAIN"), 1)
        assert second.error_code == ILLEGAL_SASL_STATE
        assert await client.closed_by_peer()


@pytest.mark.kafka_cluster(**SASL)
async def test_v0_handshake_takes_raw_tokens(kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        assert (await client.send(SaslHandshakeRequest(mechanism="PLAIN"), 0)).error_code == 0
        token = b"\0alice\0s3cret"
        await client.send_raw(struct.pack(">i", len(token)) + token)
        assert await client.receive_frame() == b""  # PLAIN's empty server token
        assert await metadata_works(client)
    async with wire(kafka_cluster) as client:
        assert (await client.send(SaslHandshakeRequest(mechanism="PLAIN"), 0)).error_code == 0
        token = b"\0alice\0nope"
        await client.send_raw(struct.pack(">i", len(token)) + token)
        assert await client.closed_by_peer()


def scram_client_messages(user: str, password: str, server_first: bytes | None = None,
                          ) -> tuple[bytes, bytes | None]:
    first_bare = f"n={user},r=clientnonce123"
    if server_first is None:
        return f"n,,{first_bare}".encode(), None
    attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth = f"{first_bare},{server_first.decode()},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"n,,{first_bare}".encode(), (
        f"{without_proof},p={base64.b64encode(proof).decode()}".encode())


async def scram_login(client: WireClient, user: str, password: str) -> object:
    handshake = await client.send(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1)
    assert handshake.error_code == 0
    first, _ = scram_client_messages(user, password)
    server_first = await client.send(SaslAuthenticateRequest(auth_bytes=first), 2)
    assert server_first.error_code == 0
    _, final = scram_client_messages(user, password, bytes(server_first.auth_bytes))
    assert final is not None
    return await client.send(SaslAuthenticateRequest(auth_bytes=final), 2)


@pytest.mark.kafka_cluster(**SASL)
async def test_scram_login_and_a_bad_proof(kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        done = await scram_login(client, "alice", "s3cret")
        assert done.error_code == 0  # type: ignore[attr-defined]
        assert bytes(done.auth_bytes).startswith(b"v=")  # type: ignore[attr-defined]
        assert await metadata_works(client)
    async with wire(kafka_cluster) as client:
        failed = await scram_login(client, "alice", "wrong")
        assert failed.error_code == SASL_AUTHENTICATION_FAILED  # type: ignore[attr-defined]
        assert bytes(failed.auth_bytes) == b"e=invalid-proof"  # type: ignore[attr-defined]
        assert await client.closed_by_peer()


def upsertion(user: str, password: str, *, iterations: int = 4096,
              mechanism: int = 1) -> AlterUserScramCredentialsRequest.ScramCredentialUpsertion:
    salt = os.urandom(16)
    return AlterUserScramCredentialsRequest.ScramCredentialUpsertion(
        name=user, mechanism=mechanism, iterations=iterations, salt=salt,
        salted_password=hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations))


@pytest.mark.kafka_cluster(**SASL)
async def test_scram_credentials_added_and_removed_at_runtime(
        kafka_cluster: EmbeddedCluster) -> None:
    Deletion = AlterUserScramCredentialsRequest.ScramCredentialDeletion
    UserName = DescribeUserScramCredentialsRequest.UserName
    async with wire(kafka_cluster) as admin:
        assert (await plain_login(admin)).error_code == 0  # type: ignore[attr-defined]
        everyone = await admin.send(DescribeUserScramCredentialsRequest(users=None), 0)
        assert [(r.user, [(c.mechanism, c.iterations) for c in r.credential_infos])
                for r in everyone.results] == [("alice", [(1, 4096), (2, 4096)])]

        altered = await admin.send(AlterUserScramCredentialsRequest(
            deletions=[Deletion(name="nobody", mechanism=1)],
            upsertions=[upsertion("bob", "hunter2", iterations=8192),
                        upsertion("low", "x", iterations=100),
                        upsertion("", "x"),
                        upsertion("odd", "x", mechanism=7),
                        upsertion("twice", "x"), upsertion("twice", "y")]), 0)
        assert {r.user: r.error_code for r in altered.results} == {
            "nobody": RESOURCE_NOT_FOUND, "bob": 0, "low": UNACCEPTABLE_CREDENTIAL,
            "": UNACCEPTABLE_CREDENTIAL, "odd": UNSUPPORTED_SASL_MECHANISM,
            "twice": DUPLICATE_RESOURCE}

        described = await admin.send(DescribeUserScramCredentialsRequest(
            users=[UserName(name="bob"), UserName(name="low"), UserName(name="alice"),
                   UserName(name="alice")]), 0)
        by_user = {r.user: r for r in described.results}
        assert [(c.mechanism, c.iterations) for c in by_user["bob"].credential_infos] == [
            (1, 8192)]
        assert by_user["low"].error_code == RESOURCE_NOT_FOUND
        assert by_user["alice"].error_code == DUPLICATE_RESOURCE

    async with wire(kafka_cluster) as client:
        assert (await scram_login(client, "bob", "hunter2")).error_code == 0  # type: ignore[attr-defined]
        assert await metadata_works(client)

    async with wire(kafka_cluster) as admin:
        assert (await plain_login(admin)).error_code == 0  # type: ignore[attr-defined]
        removed = await admin.send(AlterUserScramCredentialsRequest(
            deletions=[Deletion(name="bob", mechanism=1)], upsertions=[]), 0)
        assert [(r.user, r.error_code) for r in removed.results] == [("bob", 0)]
    async with wire(kafka_cluster) as client:
        failed = await scram_login(client, "bob", "hunter2")
        assert failed.error_code == SASL_AUTHENTICATION_FAILED  # type: ignore[attr-defined]


async def test_session_lifetime_and_expiry() -> None:
    clock = ManualClock(1_000_000)
    async with EmbeddedCluster(1, clock=clock, sasl_enabled_mechanisms=["PLAIN"],
                               sasl_users={"alice": "s3cret"},
                               connections_max_reauth_ms=60_000) as cluster:
        async with wire(cluster) as old_client:
            # SaslAuthenticate v0 has no lifetime field, but the session still expires
            assert (await plain_login(old_client, version=0)).error_code == 0  # type: ignore[attr-defined]
            async with wire(cluster) as client:
                response = await plain_login(client)
                assert response.session_lifetime_ms == 60_000  # type: ignore[attr-defined]
                clock.advance(59_999)
                assert await metadata_works(client)
                # KIP-368 re-authentication on the same connection renews the session
                renewed = await plain_login(client)
                assert renewed.session_lifetime_ms == 60_000  # type: ignore[attr-defined]
                clock.advance(30_000)
                assert await metadata_works(client)
                await old_client.send_request(MetadataRequest(topics=[]), 9)
                assert await old_client.closed_by_peer()
                clock.advance(30_000)
                await client.send_request(MetadataRequest(topics=[]), 9)
                assert await client.closed_by_peer()
        assert cluster.nodes[0].sasl_logins == 2
        assert cluster.nodes[0].sasl_reauthentications == 1


@pytest.mark.kafka_cluster(**SASL)
async def test_reauthentication_must_keep_mechanism_and_principal(
        kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.credentials.add_user("bob", "pw")
    async with wire(kafka_cluster) as client:
        assert (await plain_login(client)).error_code == 0  # type: ignore[attr-defined]
        switched = await client.send(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1)
        assert switched.error_code == UNSUPPORTED_SASL_MECHANISM
        assert await client.closed_by_peer()
    async with wire(kafka_cluster) as client:
        assert (await plain_login(client)).error_code == 0  # type: ignore[attr-defined]
        other = await plain_login(client, "bob", "pw")
        assert other.error_code == SASL_AUTHENTICATION_FAILED  # type: ignore[attr-defined]
        assert await client.closed_by_peer()


async def test_sasl_requests_on_a_plaintext_listener(kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        handshake = await client.send(SaslHandshakeRequest(mechanism="PLAIN"), 1)
        assert handshake.error_code == ILLEGAL_SASL_STATE
        authenticate = await client.send(SaslAuthenticateRequest(auth_bytes=b"x"), 2)
        assert authenticate.error_code == ILLEGAL_SASL_STATE
        assert await metadata_works(client)


async def test_oauthbearer_unsecured_token_sets_the_session_lifetime() -> None:
    clock = ManualClock(1_000_000)
    claims = base64.urlsafe_b64encode(b'{"sub":"svc","exp":1030}').rstrip(b"=")
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=")
    message = b"n,,\x01auth=Bearer " + header + b"." + claims + b".\x01\x01"
    async with EmbeddedCluster(1, clock=clock, sasl_enabled_mechanisms="OAUTHBEARER",
                               connections_max_reauth_ms=60_000) as cluster:
        async with wire(cluster) as client:
            assert (await client.send(SaslHandshakeRequest(mechanism="OAUTHBEARER"),
                                      1)).error_code == 0
            response = await client.send(SaslAuthenticateRequest(auth_bytes=message), 2)
            # the token expires before connections_max_reauth_ms does
            assert (response.error_code, response.session_lifetime_ms) == (0, 30_000)
            assert await metadata_works(client)
        clock.advance(40_000)
        async with wire(cluster) as client:
            assert (await client.send(SaslHandshakeRequest(mechanism="OAUTHBEARER"),
                                      1)).error_code == 0
            challenge = await client.send(SaslAuthenticateRequest(auth_bytes=message), 2)
            assert challenge.error_code == 0 and b"invalid_token" in bytes(
                challenge.auth_bytes)
            failed = await client.send(SaslAuthenticateRequest(auth_bytes=b"\x01"), 2)
            assert failed.error_code == SASL_AUTHENTICATION_FAILED
            assert await client.closed_by_peer()


def test_bad_security_settings_are_typed_errors() -> None:
    with pytest.raises(InvalidConfigError, match="GSSAPI"):
        BrokerConfig(sasl_enabled_mechanisms="PLAIN,GSSAPI")
    with pytest.raises(InvalidConfigError, match="twice"):
        BrokerConfig(sasl_enabled_mechanisms=["PLAIN", "plain"])
    with pytest.raises(InvalidConfigError, match="sasl_enabled_mechanisms"):
        BrokerConfig(sasl_users={"alice": "x"})
    with pytest.raises(InvalidConfigError, match="4096"):
        BrokerConfig(sasl_enabled_mechanisms="PLAIN", scram_iterations=10)
    with pytest.raises(InvalidConfigError, match="reauth"):
        BrokerConfig(connections_max_reauth_ms=-1)
    with pytest.raises(InvalidConfigError, match="SSLContext"):
        BrokerConfig(ssl_context="cert.pem")  # type: ignore[arg-type]
    config = BrokerConfig(sasl_enabled_mechanisms=" scram-sha-512 , PLAIN")
    assert config.sasl_enabled_mechanisms == ("SCRAM-SHA-512", "PLAIN")
    assert config.security_protocol == "SASL_PLAINTEXT"
    assert config.kafka_configs(0, "h:1")["listeners"][0] == "SASL_PLAINTEXT://h:1"

