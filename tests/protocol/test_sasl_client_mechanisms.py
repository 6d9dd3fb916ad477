"""The client SASL mechanisms, message by message (sans-IO)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from kafka.net.sasl.scram import ScramClient  # kafka-python's own SCRAM client
from tests import rfc7677

from streamclient.errors import SaslAuthenticationFailed, SaslServerSignatureError
from streamclient.protocol.sasl import (
    OAuthBearerMechanism,
    PlainMechanism,
    ScramMechanism,
    escape_saslname,
)

# RFC 7677 section 3 (tests/rfc7677.py)
RFC_CLIENT_NONCE = rfc7677.CLIENT_NONCE
RFC_CLIENT_FIRST = rfc7677.CLIENT_FIRST
RFC_SERVER_FIRST = rfc7677.SERVER_FIRST
RFC_CLIENT_FINAL = rfc7677.CLIENT_FINAL
RFC_SERVER_FINAL = rfc7677.SERVER_FINAL


def rfc_scram() -> ScramMechanism:
    return ScramMechanism("SCRAM-SHA-256", "user", "pencil", nonce=RFC_CLIENT_NONCE)


# --- PLAIN -----------------------------------------------------------------------------


def test_plain_message_and_completion() -> None:
    mech = PlainMechanism("alice", "s3cr\u00e9t")
    assert mech.name == "PLAIN"
    assert mech.initial_response() == b"\0alice\0s3cr\xc3\xa9t"
    assert mech.step(b"") is None


def test_plain_refuses_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        PlainMechanism("a\0b", "p")


# --- SCRAM -----------------------------------------------------------------------------


def test_rfc7677_exchange_byte_for_byte() -> None:
    mech = rfc_scram()
    assert mech.initial_response() == RFC_CLIENT_FIRST
    assert mech.step(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    assert mech.step(RFC_SERVER_FINAL) is None


@pytest.mark.parametrize("name,escaped", [
    ("plain", "plain"), ("a=b", "a=3Db"), ("a,b", "a=2Cb"), ("=,=", "=3D=2C=3D"),
    ("=2C", "=3D2C"),  # '=' first, so an escape already in the name stays literal
])
def test_saslname_escaping(name: str, escaped: str) -> None:
    assert escape_saslname(name) == escaped
    mech = ScramMechanism("SCRAM-SHA-512", name, "pw", nonce="abc")
    assert mech.initial_response() == f"n,,n={escaped},r=abc".encode()


def test_default_nonce_is_random_and_valid() -> None:
    first = ScramMechanism("SCRAM-SHA-256", "u", "p").initial_response()
    second = ScramMechanism("SCRAM-SHA-256", "u", "p").initial_response()
    assert first != second
    nonce = first.decode().split(",r=")[1]
    assert len(nonce) >= 24 and "," not in nonce


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_same_messages_as_kafka_python(mechanism: str) -> None:
    """kafka-python's independent SCRAM client, given the same nonce, sends the same
    bytes and expects the same server signature (SHA-512 has no RFC example)."""
    nonce = "fyko+d2lbbFgONRv9qkxdawL"
    server_first = f"r={nonce}3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096".encode()
    # (kafka-python does not escape "=" and ",", so a name without them)
    theirs = ScramClient("user", "pencil", mechanism)
    theirs.nonce = nonce.encode()
    ours = ScramMechanism(mechanism, "user", "pencil", nonce=nonce)
    assert ours.initial_response() == theirs.first_message()
    theirs.process_server_first_message(server_first)
    assert ours.step(server_first) == theirs.final_message()
    signature = base64.b64encode(theirs.server_signature)
    assert ours.step(b"v=" + signature) is None


def test_server_nonce_must_extend_ours() -> None:
    mech = rfc_scram()
    mech.initial_response()
    with pytest.raises(SaslAuthenticationFailed, match="nonce"):
        mech.step(b"r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


def test_server_nonce_must_add_something() -> None:
    mech = rfc_scram()
    mech.initial_response()
    with pytest.raises(SaslAuthenticationFailed, match="nonce"):
        mech.step(f"r={RFC_CLIENT_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".encode())


@pytest.mark.parametrize("iterations", [1, 4095, 0])
def test_too_few_iterations_are_refused(iterations: int) -> None:
    mech = rfc_scram()
    mech.initial_response()
    with pytest.raises(SaslAuthenticationFailed, match="4096"):
        mech.step(RFC_SERVER_FIRST.replace(b"i=4096", f"i={iterations}".encode()))


@pytest.mark.parametrize("server_first,match", [
    (RFC_SERVER_FIRST.replace(b"W22ZaJ0SNY7soEsUEjb6gQ==", b"not*base64"), "base64"),
    (RFC_SERVER_FIRST.replace(b"i=4096", b"i=lots"), "not a number"),
    (b"garbage", "malformed"),
    (b"s=W22ZaJ0SNY7soEsUEjb6gQ==,r=x,i=4096", "r=,s=,i="),
    (b"m=ext," + RFC_SERVER_FIRST, "extension"),
    (b"\xff\xfe", "UTF-8"),
    (RFC_SERVER_FIRST.replace(b"W22ZaJ0SNY7soEsUEjb6gQ==", b""), "salt"),
])
def test_bad_server_first_messages(server_first: bytes, match: str) -> None:
    mech = rfc_scram()
    mech.initial_response()
    with pytest.raises(SaslAuthenticationFailed, match=match):
        mech.step(server_first)


def test_server_error_in_server_first() -> None:
    mech = rfc_scram()
    mech.initial_response()
    with pytest.raises(SaslAuthenticationFailed, match="unknown-user"):
        mech.step(b"e=unknown-user")


def test_wrong_server_signature_is_its_own_error() -> None:
    mech = rfc_scram()
    mech.initial_response()
    mech.step(RFC_SERVER_FIRST)
    forged = base64.b64encode(b"\0" * 32)
    with pytest.raises(SaslServerSignatureError, match="signature does not verify"):
        mech.step(b"v=" + forged)
    # it is an authentication failure like any other for code that catches those
    assert issubclass(SaslServerSignatureError, SaslAuthenticationFailed)
    assert SaslServerSignatureError.errno == 58


def test_server_final_error_carries_the_servers_text() -> None:
    mech = rfc_scram()
    mech.initial_response()
    mech.step(RFC_SERVER_FIRST)
    with pytest.raises(SaslAuthenticationFailed, match="invalid-proof") as info:
        mech.step(b"e=invalid-proof")
    assert not isinstance(info.value, SaslServerSignatureError)


@pytest.mark.parametrize("server_final,match", [
    (b"x=whatever", "neither v= nor e="),
    (b"v=***", "not base64"),
])
def test_bad_server_final_messages(server_final: bytes, match: str) -> None:
    mech = rfc_scram()
    mech.initial_response()
    mech.step(RFC_SERVER_FIRST)
    with pytest.raises(SaslAuthenticationFailed, match=match):
        mech.step(server_final)


def test_scram_with_a_known_credential_by_hand() -> None:
    """The proof the client sends verifies against a credential computed independently
    from the stored key (what a Kafka broker keeps), for SHA-512."""
    salt = b"0123456789abcdef"
    mech = ScramMechanism("SCRAM-SHA-512", "bob", "hunter2", nonce="clientnonce")
    client_first_bare = mech.initial_response()[3:]
    server_first = b"r=clientnonceSERVER,s=" + base64.b64encode(salt) + b",i=8192"
    client_final = mech.step(server_first)
    assert client_final is not None
    without_proof, proof_b64 = client_final.rsplit(b",p=", 1)
    salted = hashlib.pbkdf2_hmac("sha512", b"hunter2", salt, 8192)
    client_key = hmac.new(salted, b"Client Key", "sha512").digest()
    stored_key = hashlib.sha512(client_key).digest()
    auth_message = b",".join((client_first_bare, server_first, without_proof))
    signature = hmac.new(stored_key, auth_message, "sha512").digest()
    recovered_client_key = bytes(
        a ^ b for a, b in zip(base64.b64decode(proof_b64), signature, strict=True))
    assert hashlib.sha512(recovered_client_key).digest() == stored_key
    server_key = hmac.new(salted, b"Server Key", "sha512").digest()
    server_signature = hmac.new(server_key, auth_message, "sha512").digest()
    assert mech.step(b"v=" + base64.b64encode(server_signature)) is None


def test_scram_misuse() -> None:
    with pytest.raises(ValueError, match="not a SCRAM mechanism"):
        ScramMechanism("SCRAM-MD5", "u", "p")
    with pytest.raises(ValueError, match="nonce"):
        ScramMechanism("SCRAM-SHA-256", "u", "p", nonce="has,comma")
    mech = rfc_scram()
    with pytest.raises(SaslAuthenticationFailed, match="unexpected"):
        mech.step(RFC_SERVER_FIRST)


# --- OAUTHBEARER -----------------------------------------------------------------------


def test_oauthbearer_initial_response_with_extensions() -> None:
    mech = OAuthBearerMechanism("eyJhbGciOi.JzdWIiOi-_x", {"traceId": "abc 123",
                                                           "logicalCluster": "lkc-1"})
    assert mech.initial_response() == (
        b"n,,\x01auth=Bearer eyJhbGciOi.JzdWIiOi-_x\x01traceId=abc 123\x01"
        b"logicalCluster=lkc-1\x01\x01")
    assert mech.step(b"") is None


def test_oauthbearer_without_extensions() -> None:
    assert OAuthBearerMechanism("tok").initial_response() == b"n,,\x01auth=Bearer tok\x01\x01"


def test_oauthbearer_error_challenge_is_acknowledged_then_fails() -> None:
    mech = OAuthBearerMechanism("tok")
    mech.initial_response()
    error = b'{"status":"invalid_token"}'
    assert mech.step(error) == b"\x01"
    assert mech.failure_detail() == '{"status":"invalid_token"}'
    # a server that then answers without an error code still does not let us in
    with pytest.raises(SaslAuthenticationFailed, match="invalid_token"):
        mech.step(b"")


@pytest.mark.parametrize("token,extensions,match", [
    ("", None, "bearer token"),
    ("has space", None, "bearer token"),
    (None, None, "bearer token"),
    ("tok", {"auth": "x"}, "not allowed"),
    ("tok", {"bad-key": "x"}, "not allowed"),
    ("tok", {"k": "\x01"}, "value"),
])
def test_oauthbearer_bad_input(token: object, extensions: dict[str, str] | None,
                               match: str) -> None:
    with pytest.raises(SaslAuthenticationFailed, match=match):
        OAuthBearerMechanism(token, extensions)  # type: ignore[arg-type]
