"""The broker's SASL mechanism servers (``streamclient.broker.sasl``), no sockets.

SCRAM is checked against RFC 7677's SCRAM-SHA-256 example exchange, byte for byte, and
with a client written here from RFC 5802's formulas for SHA-512 and the error cases.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from tests import rfc7677

from streamclient.broker.sasl import (
    SCRAM_MECHANISMS,
    CredentialStore,
    OAuthBearerServer,
    PlainServer,
    SaslAuthenticationFailed,
    ScramCredential,
    ScramServer,
    unescape_saslname,
)

# RFC 7677 section 3 (tests/rfc7677.py)
RFC_SALT = base64.b64decode(rfc7677.SALT_B64)
RFC_SERVER_NONCE = rfc7677.SERVER_NONCE
RFC_CLIENT_FIRST = rfc7677.CLIENT_FIRST
RFC_SERVER_FIRST = rfc7677.SERVER_FIRST
RFC_CLIENT_FINAL = rfc7677.CLIENT_FINAL
RFC_SERVER_FINAL = rfc7677.SERVER_FINAL


def rfc_store() -> CredentialStore:
    store = CredentialStore()
    store.set_scram("user", "SCRAM-SHA-256", ScramCredential.from_password(
        SCRAM_MECHANISMS["SCRAM-SHA-256"], "pencil", salt=RFC_SALT, iterations=4096))
    return store


def test_rfc7677_example_exchange() -> None:
    server = ScramServer("SCRAM-SHA-256", rfc_store(), server_nonce=RFC_SERVER_NONCE)
    assert server.step(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert not server.complete
    assert server.step(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert server.complete
    assert server.principal == "user"


def test_rfc7677_example_with_a_wrong_password_fails_with_invalid_proof() -> None:
    store = CredentialStore()
    store.set_scram("user", "SCRAM-SHA-256", ScramCredential.from_password(
        SCRAM_MECHANISMS["SCRAM-SHA-256"], "pen", salt=RFC_SALT, iterations=4096))
    server = ScramServer("SCRAM-SHA-256", store, server_nonce=RFC_SERVER_NONCE)
    assert server.step(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    with pytest.raises(SaslAuthenticationFailed) as failure:
        server.step(RFC_CLIENT_FINAL)
    assert failure.value.challenge == b"e=invalid-proof"
    assert "SCRAM-SHA-256" in failure.value.message
    assert not server.complete and server.principal is None


class ScramClient:
    """RFC 5802's client side, enough to drive the server in tests."""

    def __init__(self, mechanism: str, user: str, password: str, *,
                 gs2_header: str = "n,,", nonce: str = "fyko+d2lbbFgONRv9qkxdawL") -> None:
        self.hash = SCRAM_MECHANISMS[mechanism].hash_name
        self.user = user
        self.password = password
        self.gs2_header = gs2_header
        self.nonce = nonce
        escaped = user.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = f"n={escaped},r={nonce}"

    def first(self) -> bytes:
        return (self.gs2_header + self.first_bare).encode()

    def final(self, server_first: bytes, *, nonce: str | None = None) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
        salted = hashlib.pbkdf2_hmac(self.hash, self.password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored_key = hashlib.new(self.hash, client_key).digest()
        binding = base64.b64encode(self.gs2_header.encode()).decode()
        without_proof = f"c={binding},r={attrs['r'] if nonce is None else nonce}"
        auth = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth, self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", self.hash).digest()
        self.expected_server_final = b"v=" + base64.b64encode(
            hmac.new(server_key, auth, self.hash).digest())
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_round_trip_with_stored_credentials(mechanism: str) -> None:
    store = CredentialStore.from_passwords({"alice": "wonderland"})
    server = ScramServer(mechanism, store)
    client = ScramClient(mechanism, "alice", "wonderland")
    server_first = server.step(client.first())
    # the server's nonce extends the client's
    nonce = dict(i.split("=", 1) for i in server_first.decode().split(","))["r"]
    assert nonce.startswith(client.nonce) and len(nonce) > len(client.nonce)
    assert server.step(client.final(server_first)) == client.expected_server_final
    assert server.principal == "alice"


def test_stored_credentials_keep_no_password_and_use_4096_iterations() -> None:
    store = CredentialStore.from_passwords({"alice": "wonderland"})
    credential = store.scram("alice", "SCRAM-SHA-512")
    assert credential is not None
    assert credential.iterations == 4096
    assert len(credential.salt) >= 16
    assert b"wonderland" not in credential.stored_key + credential.server_key
    with pytest.raises(ValueError, match="4096"):
        ScramCredential.from_password(SCRAM_MECHANISMS["SCRAM-SHA-256"], "x", iterations=1000)


def test_scram_user_names_are_unescaped() -> None:
    store = CredentialStore.from_passwords({"a,b=c": "pw"})
    server = ScramServer("SCRAM-SHA-256", store)
    client = ScramClient("SCRAM-SHA-256", "a,b=c", "pw")
    assert b"n=a=2Cb=3Dc," in client.first()
    final = client.final(server.step(client.first()))
    assert server.step(final) == client.expected_server_final
    assert server.principal == "a,b=c"


def test_saslname_unescaping_rules() -> None:
    assert unescape_saslname("plain") == "plain"
    assert unescape_saslname("x=2Cy=3Dz") == "x,y=z"
    for bad in ("a=2", "a=41", "a,b", "=", "=3"):
        with pytest.raises(ValueError):
            unescape_saslname(bad)


def test_scram_unknown_user_fails_only_at_the_proof() -> None:
    store = CredentialStore.from_passwords({"alice": "pw"})
    server = ScramServer("SCRAM-SHA-256", store)
    client = ScramClient("SCRAM-SHA-256", "mallory", "pw")
    first = server.step(client.first())
    # salt and iterations are made up but stable, so a probe learns nothing
    again = ScramServer("SCRAM-SHA-256", store).step(client.first())
    assert first.split(b",")[1:] == again.split(b",")[1:]
    with pytest.raises(SaslAuthenticationFailed) as failure:
        server.step(client.final(first))
    assert failure.value.challenge == b"e=unknown-user"
    assert "invalid credentials" in failure.value.message


@pytest.mark.parametrize(("first", "error"), [
    (b"p=tls-unique,,n=alice,r=abc", b"e=channel-bindings-not-supported"),
    (b"x,,n=alice,r=abc", b"e=other-error"),
    (b"n,,m=ext,n=alice,r=abc", b"e=extensions-not-supported"),
    (b"n,,n=al=ice,r=abc", b"e=invalid-username-encoding"),
    (b"n,,n=,r=abc", b"e=invalid-username-encoding"),
    (b"n,,r=abc,n=alice", b"e=other-error"),
    (b"n,,n=alice,r=a,b", b"e=other-error"),
    (b"n,,n=alice", b"e=other-error"),
    (b"n,a=bob,n=alice,r=abc", b"e=other-error"),
    (b"n,,n=alice,r=abc,tokenauth=true", b"e=extensions-not-supported"),
    (b"\xff\xfe", b"e=invalid-encoding"),
])
def test_scram_bad_client_first_messages(first: bytes, error: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256", CredentialStore.from_passwords({"alice": "pw"}))
    with pytest.raises(SaslAuthenticationFailed) as failure:
        server.step(first)
    assert failure.value.challenge == error


def test_scram_authzid_equal_to_the_user_is_accepted() -> None:
    store = CredentialStore.from_passwords({"alice": "pw"})
    server = ScramServer("SCRAM-SHA-256", store)
    client = ScramClient("SCRAM-SHA-256", "alice", "pw", gs2_header="n,a=alice,")
    final = client.final(server.step(client.first()))
    assert server.step(final) == client.expected_server_final


def test_scram_final_with_another_nonce_or_binding_fails() -> None:
    store = CredentialStore.from_passwords({"alice": "pw"})
    server = ScramServer("SCRAM-SHA-256", store)
    client = ScramClient("SCRAM-SHA-256", "alice", "pw")
    first = server.step(client.first())
    with pytest.raises(SaslAuthenticationFailed) as failure:
        server.step(client.final(first, nonce=client.nonce + "forged"))
    assert failure.value.challenge == b"e=other-error"

    server = ScramServer("SCRAM-SHA-256", store)
    first = server.step(client.first())
    final = client.final(first).replace(b"c=biws", b"c=eSws")  # "y,," instead of "n,,"
    with pytest.raises(SaslAuthenticationFailed) as failure:
        server.step(final)
    assert failure.value.challenge == b"e=channel-bindings-dont-match"


def test_scram_with_a_password_changed_between_rounds() -> None:
    store = CredentialStore.from_passwords({"alice": "old"})
    server = ScramServer("SCRAM-SHA-256", store)
    client = ScramClient("SCRAM-SHA-256", "alice", "new")
    with pytest.raises(SaslAuthenticationFailed):
        server.step(client.final(server.step(client.first())))


# -- PLAIN ----------------------------------------------------------------------------------


def test_plain_accepts_the_right_password_with_or_without_authzid() -> None:
    store = CredentialStore.from_passwords({"alice": "s3cret"})
    for token in (b"\0alice\0s3cret", b"alice\0alice\0s3cret"):
        server = PlainServer(store)
        assert server.step(token) == b""
        assert server.complete and server.principal == "alice"


@pytest.mark.parametrize(("token", "words"), [
    (b"\0alice\0wrong", "invalid credentials"),
    (b"\0bob\0s3cret", "invalid credentials"),
    (b"alice\0s3cret", "expected 3 tokens, got 2"),
    (b"\0alice\0s3cret\0", "expected 3 tokens, got 4"),
    (b"\0\0s3cret", "username not specified"),
    (b"\0alice\0", "password not specified"),
    (b"bob\0alice\0s3cret", "authorization id"),
    (b"\0ali\xffce\0s3cret", "UTF-8"),
])
def test_plain_rejects(token: bytes, words: str) -> None:
    server = PlainServer(CredentialStore.from_passwords({"alice": "s3cret"}))
    with pytest.raises(SaslAuthenticationFailed, match=words):
        server.step(token)
    assert not server.complete


def test_scram_only_users_cannot_use_plain() -> None:
    store = CredentialStore()
    store.set_scram("carol", "SCRAM-SHA-256", ScramCredential.from_password(
        SCRAM_MECHANISMS["SCRAM-SHA-256"], "pw"))
    with pytest.raises(SaslAuthenticationFailed):
        PlainServer(store).step(b"\0carol\0pw")


# -- OAUTHBEARER ----------------------------------------------------------------------------


def unsecured_token(claims: dict[str, object], alg: str = "none") -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': alg})}.{part(claims)}."


def oauth_message(token: str, authzid: str = "") -> bytes:
    return f"n,{authzid},\x01auth=Bearer {token}\x01\x01".encode()


def test_oauthbearer_accepts_an_unsecured_token_and_reports_its_expiry() -> None:
    server = OAuthBearerServer(lambda: 1_000_000)
    token = unsecured_token({"sub": "svc", "exp": 2000, "iat": 900})
    assert server.step(oauth_message(token, "a=svc")) == b""
    assert server.complete and server.principal == "svc"
    assert server.expires_at_ms == 2_000_000


@pytest.mark.parametrize("claims", [
    {"exp": 2000},  # no subject
    {"sub": "svc"},  # no expiry
    {"sub": "svc", "exp": 999},  # expired
])
def test_oauthbearer_rejects_bad_claims_with_an_error_challenge(claims: dict[str, object]) -> None:
    server = OAuthBearerServer(lambda: 1_000_000)
    challenge = server.step(oauth_message(unsecured_token(claims)))
    assert json.loads(challenge) == {"status": "invalid_token"}
    # the client acknowledges with a lone 0x01; then the exchange fails
    with pytest.raises(SaslAuthenticationFailed):
        server.step(b"\x01")
    assert not server.complete


def test_oauthbearer_rejects_signed_tokens_and_garbage() -> None:
    signed = unsecured_token({"sub": "svc", "exp": 2000}, alg="HS256") + "c2ln"
    for message in (oauth_message(signed), oauth_message("not-a-jwt"), b"n,,auth=x",
                    oauth_message(unsecured_token({"sub": "svc", "exp": 2000}), "a=other")):
        server = OAuthBearerServer(lambda: 1_000_000)
        assert json.loads(server.step(message)) == {"status": "invalid_token"}
        with pytest.raises(SaslAuthenticationFailed):
            server.step(b"\x01")
