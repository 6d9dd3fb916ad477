"""The server side of SASL: credentials and one state machine per mechanism (sans-IO).

Each mechanism server takes the client's tokens one at a time (:meth:`step`) and returns
the token to send back, until ``complete``; a bad exchange raises
:class:`SaslAuthenticationFailed`.  Nothing here reads a socket or a clock: the broker's
connection code (``broker/authenticator.py``) frames the tokens and passes the time in.

- PLAIN (RFC 4616): ``[authzid] NUL authcid NUL passwd``, checked against the configured
  passwords.
- SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677): two round trips against salted
  credentials (salt, StoredKey, ServerKey, iterations), as Kafka stores them; no channel
  binding (Kafka has none).
- OAUTHBEARER (RFC 7628) with unsecured JWS tokens (``alg: none``), validated the way
  Kafka's default unsecured validator does: ``sub`` and ``exp`` required, not expired.

Kafka's rules kept here: an authorization id, when given, must equal the user name;
passwords are compared as UTF-8 bytes (no SASLprep); SCRAM credentials need at least 4096
iterations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "MAX_SCRAM_ITERATIONS",
    "MIN_SCRAM_ITERATIONS",
    "SCRAM_BY_WIRE_TYPE",
    "SCRAM_MECHANISMS",
    "SUPPORTED_MECHANISMS",
    "CredentialStore",
    "MechanismServer",
    "OAuthBearerServer",
    "PlainServer",
    "SaslAuthenticationFailed",
    "ScramCredential",
    "ScramMechanism",
    "ScramServer",
    "new_mechanism_server",
    "unescape_saslname",
]

PLAIN = "PLAIN"
OAUTHBEARER = "OAUTHBEARER"
# Kafka's bounds for SCRAM iterations (ScramMechanism.minIterations and
# AlterUserScramCredentials' upper limit)
MIN_SCRAM_ITERATIONS = 4096
MAX_SCRAM_ITERATIONS = 16384


@dataclass(frozen=True)
class ScramMechanism:
    name: str
    hash_name: str
    # the int8 KIP-554 uses on the wire (DescribeUserScramCredentials and friends)
    wire_type: int

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(self.hash_name, data).digest()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, self.hash_name).digest()

    def hi(self, password: bytes, salt: bytes, iterations: int) -> bytes:
        """RFC 5802's Hi(): PBKDF2 with this mechanism's HMAC."""
        return hashlib.pbkdf2_hmac(self.hash_name, password, salt, iterations)


SCRAM_MECHANISMS: dict[str, ScramMechanism] = {
    m.name: m for m in (ScramMechanism("SCRAM-SHA-256", "sha256", 1),
                        ScramMechanism("SCRAM-SHA-512", "sha512", 2))
}
SCRAM_BY_WIRE_TYPE: dict[int, ScramMechanism] = {m.wire_type: m for m in SCRAM_MECHANISMS.values()}
SUPPORTED_MECHANISMS: tuple[str, ...] = (PLAIN, *SCRAM_MECHANISMS, OAUTHBEARER)


class SaslAuthenticationFailed(Exception):
    """The client failed to authenticate.

    ``message`` is what the client is told (SaslAuthenticate's error_message);
    ``reason`` is the detail for the broker's log; ``challenge`` is a last token for the
    client when the mechanism defines one (SCRAM's ``e=`` server-final message).
    """

    def __init__(self, message: str, *, reason: str | None = None,
                 challenge: bytes = b"") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or message
        self.challenge = challenge


# -- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScramCredential:
    """What the broker keeps of a SCRAM password (never the password itself)."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    @classmethod
    def from_salted_password(cls, mechanism: ScramMechanism, salted_password: bytes,
                             salt: bytes, iterations: int) -> ScramCredential:
        client_key = mechanism.hmac(salted_password, b"Client Key")
        server_key = mechanism.hmac(salted_password, b"Server Key")
        return cls(salt, mechanism.digest(client_key), server_key, iterations)

    @classmethod
    def from_password(cls, mechanism: ScramMechanism, password: str, *,
                      salt: bytes | None = None,
                      iterations: int = MIN_SCRAM_ITERATIONS) -> ScramCredential:
        if iterations < MIN_SCRAM_ITERATIONS:
            raise ValueError(f"{mechanism.name} needs at least {MIN_SCRAM_ITERATIONS} "
                             f"iterations, got {iterations}")
        salt = os.urandom(32) if salt is None else salt
        salted = mechanism.hi(password.encode(), salt, iterations)
        return cls.from_salted_password(mechanism, salted, salt, iterations)


class CredentialStore:
    """Users of the cluster: PLAIN passwords and SCRAM credentials per mechanism.

    As in Kafka these are separate: a user added through AlterUserScramCredentials has
    SCRAM credentials only, so it cannot log in with PLAIN.
    """

    def __init__(self) -> None:
        self._passwords: dict[str, bytes] = {}
        self._scram: dict[str, dict[str, ScramCredential]] = {}
        # a fixed secret per store, so an unknown SCRAM user gets the same fake salt on
        # every attempt and cannot be told apart from a known one by the first round trip
        self._fake_salt_key = os.urandom(32)

    @classmethod
    def from_passwords(cls, users: Mapping[str, str], *,
                       scram_mechanisms: Iterable[str] = tuple(SCRAM_MECHANISMS),
                       iterations: int = MIN_SCRAM_ITERATIONS) -> CredentialStore:
        store = cls()
        for name, password in users.items():
            store.add_user(name, password, scram_mechanisms=scram_mechanisms,
                           iterations=iterations)
        return store

    def add_user(self, name: str, password: str, *,
                 scram_mechanisms: Iterable[str] = tuple(SCRAM_MECHANISMS),
                 iterations: int = MIN_SCRAM_ITERATIONS) -> None:
        """A PLAIN password and salted credentials for each SCRAM mechanism."""
        if not name:
            raise ValueError("a SASL user name must not be empty")
        self._passwords[name] = password.encode()
        for mechanism in scram_mechanisms:
            self.set_scram(name, SCRAM_MECHANISMS[mechanism].name, ScramCredential.from_password(
                SCRAM_MECHANISMS[mechanism], password, iterations=iterations))

    def check_password(self, name: str, password: bytes) -> bool:
        expected = self._passwords.get(name)
        # compared even for an unknown user, so the time taken does not tell
        return hmac.compare_digest(expected if expected is not None else b"\0", password) and (
            expected is not None)

    def scram(self, name: str, mechanism: str) -> ScramCredential | None:
        return self._scram.get(name, {}).get(mechanism)

    def set_scram(self, name: str, mechanism: str, credential: ScramCredential) -> None:
        self._scram.setdefault(name, {})[mechanism] = credential

    def delete_scram(self, name: str, mechanism: str) -> bool:
        """Remove one credential; False if there was none."""
        by_mechanism = self._scram.get(name)
        if by_mechanism is None or mechanism not in by_mechanism:
            return False
        del by_mechanism[mechanism]
        if not by_mechanism:
            del self._scram[name]
        return True

    def scram_users(self) -> dict[str, dict[str, ScramCredential]]:
        """``user -> mechanism -> credential``, users in name order."""
        return {name: dict(self._scram[name]) for name in sorted(self._scram)}

    def fake_salt(self, name: str) -> bytes:
        return hmac.new(self._fake_salt_key, name.encode(), "sha256").digest()


# -- mechanisms -----------------------------------------------------------------------------


class MechanismServer(Protocol):
    mechanism: str
    complete: bool
    principal: str | None
    # when the credential itself expires (OAUTHBEARER's exp), in the clock's ms
    expires_at_ms: int | None

    def step(self, token: bytes) -> bytes: ...


def _invalid_credentials(mechanism: str, reason: str) -> SaslAuthenticationFailed:
    # Kafka's wording for every credential failure, so nothing tells which part was wrong
    return SaslAuthenticationFailed(
        f"Authentication failed during authentication due to invalid credentials with SASL "
        f"mechanism {mechanism}", reason=reason)


class PlainServer:
    """RFC 4616 PLAIN: one client token, no server challenge."""

    mechanism = PLAIN

    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        self.complete = False
        self.principal: str | None = None
        self.expires_at_ms: int | None = None

    def step(self, token: bytes) -> bytes:
        if self.complete:
            raise SaslAuthenticationFailed("PLAIN takes a single token")
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise SaslAuthenticationFailed(
                f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}")
        try:
            authzid, authcid, password = (p.decode() for p in parts)
        except UnicodeDecodeError:
            raise SaslAuthenticationFailed(
                "Invalid SASL/PLAIN response: not UTF-8") from None
        if not authcid:
            raise SaslAuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise SaslAuthenticationFailed("Authentication failed: password not specified")
        if authzid and authzid != authcid:
            raise SaslAuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is "
                "different from username")
        if not self._store.check_password(authcid, parts[2]):
            raise _invalid_credentials(PLAIN, f"bad PLAIN password for user {authcid!r}")
        self.principal = authcid
        self.complete = True
        return b""


def unescape_saslname(value: str) -> str:
    """RFC 5802 saslname: ``=2C`` is ``,`` and ``=3D`` is ``=``; any other ``=`` is invalid."""
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == ",":
            raise ValueError("unescaped ',' in a saslname")
        if char == "=":
            code = value[i + 1:i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise ValueError(f"invalid escape '={code}' in a saslname")
            i += 3
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _printable_nonce(value: str) -> bool:
    # RFC 5802: printable ASCII except ','
    return bool(value) and all(0x21 <= ord(c) <= 0x7E and c != "," for c in value)


def _b64decode(value: str) -> bytes:
    return base64.b64decode(value.encode("ascii"), validate=True)


class ScramServer:
    """RFC 5802 server: client-first → server-first → client-final → server-final."""

    def __init__(self, mechanism: str, store: CredentialStore, *,
                 server_nonce: str | None = None) -> None:
        self._scram = SCRAM_MECHANISMS[mechanism]
        self.mechanism = mechanism
        self._store = store
        self._server_nonce = server_nonce or secrets.token_urlsafe(24)
        if not _printable_nonce(self._server_nonce):
            raise ValueError("a SCRAM nonce is printable ASCII without ','")
        self.complete = False
        self.principal: str | None = None
        self.expires_at_ms: int | None = None
        self._stage = 0
        self._user = ""
        self._credential: ScramCredential | None = None
        self._gs2_header = ""
        self._nonce = ""
        self._client_first_bare = ""
        self._server_first = ""

    def _fail(self, error: str, reason: str) -> SaslAuthenticationFailed:
        """A failure with RFC 5802's ``e=`` server-final message as the last token."""
        failure = _invalid_credentials(self.mechanism, reason) if error in (
            "invalid-proof", "unknown-user") else SaslAuthenticationFailed(
            f"Authentication failed: {reason}")
        failure.challenge = f"e={error}".encode()
        return failure

    def step(self, token: bytes) -> bytes:
        try:
            text = token.decode()
        except UnicodeDecodeError:
            raise self._fail("invalid-encoding", "the SCRAM message is not UTF-8") from None
        if self._stage == 0:
            return self._client_first(text)
        if self._stage == 1:
            return self._client_final(text)
        raise SaslAuthenticationFailed("the SCRAM exchange is already complete")

    def _client_first(self, text: str) -> bytes:
        # gs2-header = gs2-cbind-flag "," [ authzid ] ","
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise self._fail("other-error", "invalid client-first message")
        cbind, authzid_part, bare = parts
        if cbind.startswith("p="):
            raise self._fail("channel-bindings-not-supported",
                             "channel binding is not supported")
        if cbind not in ("n", "y"):
            raise self._fail("other-error", f"invalid channel-binding flag {cbind!r}")
        authzid = ""
        if authzid_part:
            if not authzid_part.startswith("a="):
                raise self._fail("other-error", "invalid authzid in the gs2 header")
            try:
                authzid = unescape_saslname(authzid_part[2:])
            except ValueError as exc:
                raise self._fail("invalid-username-encoding", str(exc)) from None
        attributes = bare.split(",")
        if attributes and attributes[0].startswith("m="):
            raise self._fail("extensions-not-supported", "mandatory extensions are not "
                             "supported")
        if len(attributes) < 2 or not attributes[0].startswith("n=") or (
                not attributes[1].startswith("r=")):
            raise self._fail("other-error", "the client-first message needs n= and r=")
        try:
            user = unescape_saslname(attributes[0][2:])
        except ValueError as exc:
            raise self._fail("invalid-username-encoding", str(exc)) from None
        client_nonce = attributes[1][2:]
        if not user:
            raise self._fail("invalid-username-encoding", "empty user name")
        if not _printable_nonce(client_nonce):
            raise self._fail("other-error", "invalid client nonce")
        # further attributes are Kafka's extensions (tokenauth=...): delegation tokens are
        # not supported, so asking for one is refused rather than ignored
        for extension in attributes[2:]:
            key, sep, _ = extension.partition("=")
            if not sep or not key.isalnum():
                raise self._fail("other-error", f"malformed attribute {extension!r}")
            if key == "tokenauth" and extension != "tokenauth=false":
                raise self._fail("extensions-not-supported",
                                 "delegation tokens are not supported")
        if authzid and authzid != user:
            raise self._fail("other-error", "Client requested an authorization id that is "
                             "different from username")
        self._user = user
        self._gs2_header = f"{cbind},{authzid_part},"
        self._client_first_bare = bare
        self._nonce = client_nonce + self._server_nonce
        self._credential = self._store.scram(user, self.mechanism)
        if self._credential is not None:
            salt, iterations = self._credential.salt, self._credential.iterations
        else:
            # RFC 5802 §5.1: go on with made-up parameters, fail at the proof
            salt, iterations = self._store.fake_salt(user), MIN_SCRAM_ITERATIONS
        self._server_first = (f"r={self._nonce},s={base64.b64encode(salt).decode()},"
                              f"i={iterations}")
        self._stage = 1
        return self._server_first.encode()

    def _client_final(self, text: str) -> bytes:
        attributes = text.split(",")
        if len(attributes) < 3 or not attributes[0].startswith("c=") or (
                not attributes[1].startswith("r=")) or not attributes[-1].startswith("p="):
            raise self._fail("other-error", "the client-final message needs c=, r= and p=")
        self._stage = 2
        try:
            binding = _b64decode(attributes[0][2:])
            proof = _b64decode(attributes[-1][2:])
        except (binascii.Error, ValueError):
            raise self._fail("invalid-encoding", "bad base64 in the client-final message") \
                from None
        if binding != self._gs2_header.encode():
            raise self._fail("channel-bindings-dont-match",
                             "the channel binding does not match the gs2 header")
        if attributes[1][2:] != self._nonce:
            raise self._fail("other-error", "the nonce does not match the server's")
        credential = self._credential
        if credential is None:
            raise self._fail("unknown-user", f"no {self.mechanism} credential for user "
                             f"{self._user!r}")
        without_proof = text[:text.rindex(",p=")]
        auth_message = ",".join(
            (self._client_first_bare, self._server_first, without_proof)).encode()
        scram = self._scram
        client_signature = scram.hmac(credential.stored_key, auth_message)
        if len(proof) != len(client_signature):
            raise self._fail("invalid-proof", f"bad {self.mechanism} proof for user "
                             f"{self._user!r}")
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        if not hmac.compare_digest(scram.digest(client_key), credential.stored_key):
            raise self._fail("invalid-proof", f"bad {self.mechanism} proof for user "
                             f"{self._user!r}")
        server_signature = scram.hmac(credential.server_key, auth_message)
        self.principal = self._user
        self.complete = True
        return b"v=" + base64.b64encode(server_signature)


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class OAuthBearerServer:
    """RFC 7628 OAUTHBEARER with unsecured JWS tokens, as Kafka's default validator does.

    A rejected token gets RFC 7628's error JSON as a challenge; the client answers it with
    a single ``0x01`` and the exchange fails (:meth:`step` raises then).
    """

    mechanism = OAUTHBEARER

    def __init__(self, now_ms: Callable[[], int], *, principal_claim: str = "sub") -> None:
        self._now_ms = now_ms
        self._principal_claim = principal_claim
        self.complete = False
        self.principal: str | None = None
        self.expires_at_ms: int | None = None
        self._failure: SaslAuthenticationFailed | None = None

    def step(self, token: bytes) -> bytes:
        if self._failure is not None:
            raise self._failure
        try:
            self._validate(token)
        except SaslAuthenticationFailed as exc:
            self._failure = exc
            return json.dumps({"status": "invalid_token"}).encode()
        self.complete = True
        return b""

    def _validate(self, token: bytes) -> None:
        try:
            text = token.decode()
        except UnicodeDecodeError:
            raise SaslAuthenticationFailed("Invalid OAUTHBEARER message: not UTF-8") from None
        # gs2-header kvsep *(key=value kvsep) kvsep
        header, sep, rest = text.partition("\x01")
        if not sep or not rest.endswith("\x01\x01"):
            raise SaslAuthenticationFailed("Invalid OAUTHBEARER client first message")
        if not header.startswith(("n,", "y,")) or not header.endswith(","):
            raise SaslAuthenticationFailed("Invalid OAUTHBEARER gs2 header")
        authzid = header[2:-1]
        pairs = [item for item in rest.split("\x01") if item]
        values = dict(item.split("=", 1) for item in pairs if "=" in item)
        auth = values.get("auth", "")
        scheme, _, jws = auth.partition(" ")
        if scheme.lower() != "bearer" or not jws:
            raise SaslAuthenticationFailed("Invalid OAUTHBEARER message: no bearer token")
        claims = self._claims(jws.strip())
        principal = claims.get(self._principal_claim)
        if not isinstance(principal, str) or not principal:
            raise SaslAuthenticationFailed(
                f"the token has no '{self._principal_claim}' (principal) claim")
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or isinstance(expires, bool):
            raise SaslAuthenticationFailed("the token has no numeric 'exp' claim")
        now = self._now_ms()
        expires_ms = int(expires * 1000)
        if expires_ms <= now:
            raise SaslAuthenticationFailed("the token has expired")
        if authzid and authzid != f"a={principal}":
            raise SaslAuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is "
                "different from the token's principal")
        self.principal = principal
        self.expires_at_ms = expires_ms

    @staticmethod
    def _claims(jws: str) -> dict[str, object]:
        parts = jws.split(".")
        if len(parts) != 3 or parts[2]:
            raise SaslAuthenticationFailed(
                "the token is not an unsecured JWS (header.payload. with no signature)")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
        except (ValueError, binascii.Error):
            raise SaslAuthenticationFailed("the token is not base64url JSON") from None
        if not isinstance(header, dict) or header.get("alg") != "none":
            raise SaslAuthenticationFailed("the unsecured validator takes only alg 'none'")
        if not isinstance(claims, dict):
            raise SaslAuthenticationFailed("the token's claims are not a JSON object")
        return claims


def new_mechanism_server(mechanism: str, store: CredentialStore,
                         now_ms: Callable[[], int]) -> MechanismServer:
    if mechanism == PLAIN:
        return PlainServer(store)
    if mechanism in SCRAM_MECHANISMS:
        return ScramServer(mechanism, store)
    if mechanism == OAUTHBEARER:
        return OAuthBearerServer(now_ms)
    raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
