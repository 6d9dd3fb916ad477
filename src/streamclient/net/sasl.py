"""SASL authentication of one connection: SaslHandshake, then SaslAuthenticate round trips.

The mechanisms themselves are sans-IO (``streamclient.protocol.sasl``); this module asks
the token provider for an OAUTHBEARER token, sends the messages and turns error codes
into typed errors.  It runs right after ApiVersions, before the connection is handed to
anyone (KIP-43 / KIP-152: SaslHandshake v1 names the mechanism, then the mechanism's
messages travel in SaslAuthenticate requests, which can carry error codes and, from v1,
the session lifetime of KIP-368).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from streamclient.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    UnsupportedVersionError,
    for_code,
)
from streamclient.protocol.message import Message
from streamclient.protocol.messages.sasl_authenticate import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
)
from streamclient.protocol.messages.sasl_handshake import (
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from streamclient.protocol.sasl import (
    MECHANISMS,
    OAuthBearerMechanism,
    PlainMechanism,
    SaslMechanism,
    ScramMechanism,
)

__all__ = ["SaslSettings", "authenticate"]

_UNSUPPORTED_SASL_MECHANISM: Final = 33
_ILLEGAL_SASL_STATE: Final = 34
_SASL_AUTHENTICATION_FAILED: Final = 58
# v0 of SaslHandshake means "raw SASL tokens follow, outside Kafka's framing" (before
# Kafka 1.0); we speak only the framed SaslAuthenticate exchange
_HANDSHAKE_VERSION: Final = 1

# (request, version) -> decoded response; the connection's own send, which works before
# the connection is handed out
SendFn = Callable[[Message, int], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SaslSettings:
    """What a connection needs to authenticate: the mechanism and its credentials.

    ``token_provider`` (OAUTHBEARER) has a ``token()`` method, async as
    ``streamclient.abc.AbstractTokenProvider``'s (a plain method works too), and
    optionally ``extensions() -> dict[str, str]``.
    """

    mechanism: str
    username: str | None = None
    password: str | None = None
    token_provider: Any = None

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"SASL mechanism {self.mechanism!r} is not supported; use one "
                             f"of {', '.join(MECHANISMS)}")
        if self.mechanism == "OAUTHBEARER":
            if not callable(getattr(self.token_provider, "token", None)):
                raise ValueError("sasl_oauth_token_provider needs to be provided "
                                 "implementing streamclient.abc.AbstractTokenProvider")
        elif self.username is None or self.password is None:
            raise ValueError(f"sasl_plain_username and sasl_plain_password required for "
                             f"{self.mechanism} sasl")

    def __repr__(self) -> str:
        # never print the password
        return f"SaslSettings(mechanism={self.mechanism!r}, username={self.username!r})"

    async def new_mechanism(self) -> SaslMechanism:
        """A fresh exchange (an OAUTHBEARER token is asked for each time)."""
        if self.mechanism == "PLAIN":
            assert self.username is not None and self.password is not None
            return PlainMechanism(self.username, self.password)
        if self.mechanism.startswith("SCRAM-"):
            assert self.username is not None and self.password is not None
            return ScramMechanism(self.mechanism, self.username, self.password)
        provider = self.token_provider
        token = provider.token()
        if inspect.isawaitable(token):
            token = await token
        extensions: Mapping[str, str] = {}
        get_extensions = getattr(provider, "extensions", None)
        if callable(get_extensions):
            extensions = get_extensions() or {}
            if inspect.isawaitable(extensions):
                extensions = await extensions
        return OAuthBearerMechanism(token, extensions)


async def authenticate(send: SendFn, versions: Mapping[int, tuple[int, int]],
                       authenticate_version: int, settings: SaslSettings,
                       peer: str) -> int:
    """Authenticate the connection; return the session lifetime in ms (0: unlimited).

    ``versions`` is what the broker advertised; ``authenticate_version`` the negotiated
    SaslAuthenticate version.  Raises ``UnsupportedSaslMechanismError`` (naming what the
    broker offers), ``SaslAuthenticationFailed`` (or ``SaslServerSignatureError``),
    ``IllegalSaslStateError`` and ``UnsupportedVersionError``; a broker that hangs up
    mid-way raises ``KafkaConnectionError`` saying so.
    """
    handshake = versions.get(SaslHandshakeRequest.API_KEY)
    if handshake is None or handshake[1] < _HANDSHAKE_VERSION:
        raise UnsupportedVersionError(
            f"{peer}: the broker does not support SaslHandshake v1 (Kafka 1.0+), which "
            "SASL authentication needs")
    mechanism_name = settings.mechanism
    try:
        response = await send(SaslHandshakeRequest(mechanism=mechanism_name),
                              _HANDSHAKE_VERSION)
    except KafkaConnectionError as exc:
        raise KafkaConnectionError(
            f"{peer}: the broker closed the connection during the SASL handshake for "
            f"{mechanism_name} (it may not offer that mechanism): {exc}") from exc
    assert isinstance(response, SaslHandshakeResponse)
    offered = list(response.mechanisms or [])
    if response.error_code == _UNSUPPORTED_SASL_MECHANISM:
        raise UnsupportedSaslMechanismError(
            f"{peer}: the broker does not offer SASL mechanism {mechanism_name}; it "
            f"offers: {', '.join(offered) or 'none'}")
    if response.error_code != 0:
        raise for_code(response.error_code)(
            f"{peer}: SaslHandshake for {mechanism_name} failed")

    mechanism = await settings.new_mechanism()
    message: bytes | None = mechanism.initial_response()
    lifetime_ms = 0
    while message is not None:
        try:
            answer = await send(SaslAuthenticateRequest(auth_bytes=message),
                                authenticate_version)
        except KafkaConnectionError as exc:
            raise KafkaConnectionError(
                f"{peer}: the broker closed the connection during SASL/{mechanism_name} "
                f"authentication: {exc}") from exc
        assert isinstance(answer, SaslAuthenticateResponse)
        if answer.error_code != 0:
            raise _authenticate_error(answer, mechanism, peer)
        lifetime_ms = answer.session_lifetime_ms if authenticate_version >= 1 else 0
        try:
            message = mechanism.step(bytes(answer.auth_bytes or b""))
        except SaslAuthenticationFailed as exc:
            # same class (a bad SCRAM signature stays SaslServerSignatureError), with
            # the broker named
            raise type(exc)(f"{peer}: {exc.args[0] if exc.args else exc}") from None
    return max(lifetime_ms, 0)


def _authenticate_error(answer: SaslAuthenticateResponse, mechanism: SaslMechanism,
                        peer: str) -> Exception:
    text = f"{peer}: SASL/{mechanism.name} authentication failed"
    if answer.error_message:
        text += f": {answer.error_message}"
    detail = mechanism.failure_detail()
    if detail:
        text += f" (server said: {detail})"
    code = answer.error_code
    if code == _SASL_AUTHENTICATION_FAILED:
        return SaslAuthenticationFailed(text)
    if code == _ILLEGAL_SASL_STATE:
        return IllegalSaslStateError(text)
    return for_code(code)(text)
