"""Client-side SASL mechanisms as small state machines (sans-IO).

Each mechanism produces the client's messages and takes the server's replies as bytes;
the connection carries them in SaslAuthenticate requests (KIP-152).  The protocol is
the same for all of them::

    message = mechanism.initial_response()
    while True:
        reply = <send message in a SaslAuthenticate request, raise on its error code>
        message = mechanism.step(reply)
        if message is None:        # the mechanism is satisfied: authenticated
            break

Bad server input raises :class:`~streamclient.errors.SaslAuthenticationFailed` (or its
subclass :class:`~streamclient.errors.SaslServerSignatureError` when a SCRAM server
cannot prove it knows the password), never an IndexError or a binascii error.

Mechanisms: PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677; as
Kafka uses them, KIP-84), OAUTHBEARER (RFC 7628's client initial response, KIP-255, with
KIP-342's extensions).  GSSAPI is not implemented (the configuration refuses it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Final

from streamclient.errors import SaslAuthenticationFailed, SaslServerSignatureError

__all__ = [
    "MECHANISMS",
    "SCRAM_MIN_ITERATIONS",
    "OAuthBearerMechanism",
    "PlainMechanism",
    "SaslMechanism",
    "ScramMechanism",
    "escape_saslname",
]

MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
# Kafka stores SCRAM credentials with at least 4096 iterations (and its clients refuse a
# server that asks for fewer): fewer would make a stolen credential cheap to brute-force
SCRAM_MIN_ITERATIONS: Final = 4096
# RFC 7628 section 3.1: key = 1*(ALPHA), value = *(VCHAR / SP / HTAB / CR / LF)
_OAUTH_KEY: Final = re.compile(r"[A-Za-z]+")
_OAUTH_VALUE: Final = re.compile(r"[\x21-\x7E \t\r\n]*")
# RFC 7628 section 3.1: the bearer token is b64token (RFC 6750)
_BEARER_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 5802: printable ASCII except ','
_NONCE: Final = re.compile(r"[\x21-\x2B\x2D-\x7E]+")


class SaslMechanism(ABC):
    """One authentication exchange, client side.  Use each instance once."""

    #: the mechanism's name as SaslHandshake sends it
    name: str

    @abstractmethod
    def initial_response(self) -> bytes:
        """The client's first message."""

    @abstractmethod
    def step(self, challenge: bytes) -> bytes | None:
        """Take the server's reply to the last message; return the next message, or
        ``None`` once authentication is complete."""

    def failure_detail(self) -> str | None:
        """What the server said about a failure before it answered with an error code
        (OAUTHBEARER's error JSON), to add to the error raised for that code."""
        return None


class PlainMechanism(SaslMechanism):
    """RFC 4616: ``authzid NUL authcid NUL passwd`` with an empty authzid."""

    name = "PLAIN"

    def __init__(self, username: str, password: str) -> None:
        if "\0" in username or "\0" in password:
            raise ValueError("SASL/PLAIN username and password must not contain NUL")
        self._message = b"\0" + username.encode() + b"\0" + password.encode()
        self._sent = False

    def initial_response(self) -> bytes:
        self._sent = True
        return self._message

    def step(self, challenge: bytes) -> bytes | None:
        if not self._sent:
            raise SaslAuthenticationFailed("SASL/PLAIN: step() before initial_response()")
        # The server says nothing more on success; any challenge is a protocol error, but
        # the error code of the SaslAuthenticate answer already decided the outcome.
        return None


def escape_saslname(name: str) -> str:
    """RFC 5802 section 5.1: ``=`` → ``=3D`` and ``,`` → ``=2C`` (``=`` first)."""
    return name.replace("=", "=3D").replace(",", "=2C")


def _parse_attributes(message: str, what: str) -> list[tuple[str, str]]:
    """``a=x,b=y`` → ``[("a", "x"), ("b", "y")]`` (values may contain ``=``)."""
    pairs = []
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isalpha():
            raise SaslAuthenticationFailed(f"{what} is malformed: {message!r}")
        pairs.append((part[0], part[2:]))
    return pairs


class ScramMechanism(SaslMechanism):
    """SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677), without channel binding.

    ``nonce`` is for tests (RFC 7677's example); by default 32 random characters.  The
    password is used as its UTF-8 bytes, as Kafka's clients do (no SASLprep).
    """

    _HASHES: ClassVar[dict[str, str]] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
    _GS2_HEADER: ClassVar[str] = "n,,"  # no channel binding, no authzid

    def __init__(self, mechanism: str, username: str, password: str, *,
                 nonce: str | None = None) -> None:
        if mechanism not in self._HASHES:
            raise ValueError(f"not a SCRAM mechanism: {mechanism!r}")
        self.name = mechanism  # one class for both hashes
        self._hash = self._HASHES[mechanism]
        self._password = password.encode()
        if nonce is None:
            nonce = secrets.token_urlsafe(24)  # 32 characters, none of them ','
        elif not _NONCE.fullmatch(nonce):
            raise ValueError("a SCRAM nonce is printable ASCII without ','")
        self._client_nonce = nonce
        self._client_first_bare = f"n={escape_saslname(username)},r={nonce}"
        self._state = "new"
        self._server_signature = b""

    def initial_response(self) -> bytes:
        if self._state != "new":
            raise SaslAuthenticationFailed(f"{self.name}: initial_response() called twice")
        self._state = "sent-first"
        return (self._GS2_HEADER + self._client_first_bare).encode()

    def step(self, challenge: bytes) -> bytes | None:
        if self._state == "sent-first":
            return self._client_final(self._decode(challenge, "server-first-message"))
        if self._state == "sent-final":
            self._verify_server_final(self._decode(challenge, "server-final-message"))
            return None
        raise SaslAuthenticationFailed(f"{self.name}: unexpected server message in state "
                                       f"{self._state!r}")

    def _decode(self, challenge: bytes, what: str) -> str:
        try:
            return bytes(challenge).decode("utf-8")
        except UnicodeDecodeError:
            self._state = "failed"
            raise SaslAuthenticationFailed(f"{self.name}: {what} is not UTF-8") from None

    def _fail(self, detail: str) -> SaslAuthenticationFailed:
        self._state = "failed"
        return SaslAuthenticationFailed(f"{self.name}: {detail}")

    def _client_final(self, server_first: str) -> bytes:
        attributes = _parse_attributes(server_first, f"{self.name} server-first-message")
        if attributes[0][0] == "e":
            raise self._fail(f"server error: {attributes[0][1]}")
        if attributes[0][0] == "m":
            raise self._fail("the server requires an extension we do not support (m=)")
        if [key for key, _ in attributes[:3]] != ["r", "s", "i"]:
            raise self._fail(f"server-first-message must start r=,s=,i=: {server_first!r}")
        nonce, salt_b64, iterations_text = (value for _, value in attributes[:3])
        # The server must extend our nonce: a reply to somebody else's exchange (or a
        # replay) would not
        if not nonce.startswith(self._client_nonce) or len(nonce) == len(self._client_nonce):
            raise self._fail("the server's nonce does not extend the client's")
        if not _NONCE.fullmatch(nonce):
            raise self._fail("the server's nonce has characters RFC 5802 does not allow")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except (binascii.Error, ValueError):
            raise self._fail(f"the salt is not base64: {salt_b64!r}") from None
        if not salt:
            raise self._fail("the salt is empty")
        if not iterations_text.isdigit():
            raise self._fail(f"the iteration count is not a number: {iterations_text!r}")
        iterations = int(iterations_text)
        if iterations < SCRAM_MIN_ITERATIONS:
            raise self._fail(f"the server asks for {iterations} iterations; Kafka requires "
                             f"at least {SCRAM_MIN_ITERATIONS}")

        salted = hashlib.pbkdf2_hmac(self._hash, self._password, salt, iterations)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        channel_binding = base64.b64encode(self._GS2_HEADER.encode()).decode()
        without_proof = f"c={channel_binding},r={nonce}"
        auth_message = ",".join((self._client_first_bare, server_first, without_proof)).encode()
        client_signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        server_key = self._hmac(salted, b"Server Key")
        self._server_signature = self._hmac(server_key, auth_message)
        self._state = "sent-final"
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def _verify_server_final(self, server_final: str) -> None:
        attributes = _parse_attributes(server_final, f"{self.name} server-final-message")
        key, value = attributes[0]
        if key == "e":
            raise self._fail(f"server error: {value}")
        if key != "v":
            raise self._fail(f"server-final-message has neither v= nor e=: {server_final!r}")
        try:
            signature = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self._fail(f"the server signature is not base64: {value!r}") from None
        if not hmac.compare_digest(signature, self._server_signature):
            self._state = "failed"
            raise SaslServerSignatureError(
                f"{self.name}: the server's signature does not verify; it does not know "
                "the password (or the exchange was tampered with)")
        self._state = "done"

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()


class OAuthBearerMechanism(SaslMechanism):
    """OAUTHBEARER's client initial response (RFC 7628 section 3.1; KIP-255, KIP-342).

    ``n,,\\x01auth=Bearer <token>\\x01key=value\\x01...\\x01\\x01``.  On failure the server
    first sends an error JSON (RFC 7628 section 3.2.2); the client answers ``\\x01`` and
    the server then fails the exchange with an error code.
    """

    name = "OAUTHBEARER"
    # Kafka reserves "auth" (the token itself) and refuses it as an extension name
    _RESERVED: ClassVar[frozenset[str]] = frozenset({"auth"})

    def __init__(self, token: str, extensions: Mapping[str, str] | None = None) -> None:
        if not isinstance(token, str) or not _BEARER_TOKEN.fullmatch(token):
            raise SaslAuthenticationFailed(
                "OAUTHBEARER: the token provider returned no usable bearer token "
                "(a non-empty str of RFC 6750 b64token characters)")
        parts = [f"auth=Bearer {token}"]
        for key, value in (extensions or {}).items():
            if not isinstance(key, str) or not _OAUTH_KEY.fullmatch(key) \
                    or key in self._RESERVED:
                raise SaslAuthenticationFailed(
                    f"OAUTHBEARER: extension name {key!r} is not allowed (letters only, "
                    "not 'auth')")
            if not isinstance(value, str) or not _OAUTH_VALUE.fullmatch(value):
                raise SaslAuthenticationFailed(
                    f"OAUTHBEARER: extension {key!r} has a value RFC 7628 does not allow")
            parts.append(f"{key}={value}")
        self._message = ("n,," + "\x01" + "\x01".join(parts) + "\x01\x01").encode()
        self._state = "new"
        self._server_error: str | None = None

    def initial_response(self) -> bytes:
        self._state = "sent"
        return self._message

    def step(self, challenge: bytes) -> bytes | None:
        if self._state == "sent":
            if not challenge:
                self._state = "done"
                return None
            # an error challenge: acknowledge it so the server can end the exchange
            self._server_error = bytes(challenge).decode("utf-8", "replace")
            self._state = "acknowledged-error"
            return b"\x01"
        detail = self._server_error or "unexpected server message"
        self._state = "failed"
        raise SaslAuthenticationFailed(f"OAUTHBEARER: authentication failed: {detail}")

    def failure_detail(self) -> str | None:
        return self._server_error
