"""SASL on one connection: which requests are served before and after authentication.

Sans-IO: :class:`ConnectionAuthenticator` takes decoded requests (or, after a v0
handshake, raw tokens) and the time, and says what to answer and whether to close; the
server (``broker/server.py``) does the reading and writing.  Kafka's rules
(``SaslServerAuthenticator`` and KIP-152, KIP-368):

- Until authenticated, only ApiVersions and SaslHandshake are served; any other request
  closes the connection unanswered.  SaslAuthenticate before a handshake is answered with
  ILLEGAL_SASL_STATE, then the connection closes.
- SaslHandshake names a mechanism: not enabled → UNSUPPORTED_SASL_MECHANISM with the
  enabled list, then close.  v1 is followed by SaslAuthenticate requests carrying the
  tokens; v0 by bare size-prefixed tokens with no request header (the pre-KIP-152 flow).
- Between handshake and success, anything but SaslAuthenticate gets ILLEGAL_SASL_STATE and
  the connection closes.  Bad credentials: SASL_AUTHENTICATION_FAILED with a message, then
  close.
- Once authenticated, requests go to the handlers.  With a session lifetime
  (``connections_max_reauth_ms``, or an OAUTHBEARER token's expiry) SaslAuthenticate v1+
  reports it, and the first request after it has passed closes the connection, unless it
  is a SaslHandshake starting a re-authentication (clients that authenticated with
  SaslAuthenticate v1+ only), which must keep the mechanism and the principal.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamclient.broker.error_response import error_response
from streamclient.broker.sasl import (
    CredentialStore,
    MechanismServer,
    SaslAuthenticationFailed,
    new_mechanism_server,
)
from streamclient.protocol.message import Message
from streamclient.protocol.messages import (
    ApiVersionsRequest,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

__all__ = ["AuthOutcome", "ConnectionAuthenticator", "Stage"]

log = logging.getLogger("streamclient.broker")

UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58


class Stage(enum.Enum):
    HANDSHAKE = "handshake"  # ApiVersions or SaslHandshake expected
    AUTHENTICATE = "authenticate"  # SaslAuthenticate requests carry the tokens (v1)
    RAW_TOKENS = "raw tokens"  # bare size-prefixed tokens (handshake v0)
    AUTHENTICATED = "authenticated"


@dataclass(frozen=True)
class AuthOutcome:
    """What the server does with one request or token."""

    # answer with this (at the request's version), or with this bare token (v0 flow)
    response: Message | None = None
    raw_token: bytes | None = None
    close: bool = False
    # not an authentication matter: serve it through the handler registry
    passthrough: bool = False


_PASS = AuthOutcome(passthrough=True)
_CLOSE = AuthOutcome(close=True)


class ConnectionAuthenticator:
    """The SASL state of one connection of a SASL listener."""

    def __init__(self, mechanisms: Sequence[str], store: CredentialStore,
                 now_ms: Callable[[], int], *, max_reauth_ms: int = 0,
                 on_authenticated: Callable[[str, str, bool], None] | None = None) -> None:
        self.mechanisms = list(mechanisms)
        self._store = store
        self._now_ms = now_ms
        self._max_reauth_ms = max_reauth_ms
        self._on_authenticated = on_authenticated
        self.stage = Stage.HANDSHAKE
        self.principal: str | None = None
        self.mechanism: str | None = None
        # None: the session does not expire
        self.session_expires_at_ms: int | None = None
        self._server: MechanismServer | None = None
        self._reauthenticating = False
        # KIP-368: only a client that used SaslAuthenticate v1+ knows how to re-authenticate
        self._client_can_reauthenticate = False

    @property
    def authenticated(self) -> bool:
        return self.stage is Stage.AUTHENTICATED

    @property
    def expects_raw_token(self) -> bool:
        return self.stage is Stage.RAW_TOKENS

    def session_expired(self, now_ms: int | None = None) -> bool:
        if self.session_expires_at_ms is None:
            return False
        now = self._now_ms() if now_ms is None else now_ms
        return now >= self.session_expires_at_ms

    # -- requests ------------------------------------------------------------------------

    def on_request(self, api_key: int, version: int, request: Any) -> AuthOutcome:
        if self.stage is Stage.AUTHENTICATED:
            if isinstance(request, SaslHandshakeRequest) and self._client_can_reauthenticate:
                self._reauthenticating = True
                self.stage = Stage.HANDSHAKE
                return self._handshake(request, version)
            if self.session_expired():
                log.info("closing a connection of %r: its SASL session expired",
                         self.principal)
                return _CLOSE
            return _PASS
        if self.stage is Stage.HANDSHAKE:
            if isinstance(request, SaslHandshakeRequest):
                return self._handshake(request, version)
            if isinstance(request, ApiVersionsRequest):
                return _PASS
            if isinstance(request, SaslAuthenticateRequest):
                return self._illegal(request, version, "SaslAuthenticate before SaslHandshake")
            log.info("closing a connection: %s (key %d) before SASL authentication",
                     type(request).API_NAME, api_key)
            return _CLOSE
        if self.stage is Stage.AUTHENTICATE and isinstance(request, SaslAuthenticateRequest):
            return self._authenticate(bytes(request.auth_bytes), version)
        return self._illegal(request, version, f"{type(request).API_NAME} during SASL "
                             "authentication")

    def on_raw_token(self, token: bytes) -> AuthOutcome:
        """A bare token after a v0 handshake; failure closes without an answer."""
        assert self._server is not None
        try:
            challenge = self._server.step(token)
        except SaslAuthenticationFailed as exc:
            self._log_failure(exc)
            return _CLOSE
        if self._server.complete:
            self._complete(0)
        return AuthOutcome(raw_token=challenge)

    # -- steps ---------------------------------------------------------------------------

    def _handshake(self, request: SaslHandshakeRequest, version: int) -> AuthOutcome:
        mechanism = request.mechanism
        if self._reauthenticating and mechanism != self.mechanism:
            log.info("re-authentication with %s refused: the session used %s", mechanism,
                     self.mechanism)
            return AuthOutcome(SaslHandshakeResponse(
                error_code=UNSUPPORTED_SASL_MECHANISM, mechanisms=[self.mechanism or ""]),
                close=True)
        if mechanism not in self.mechanisms:
            log.info("SASL mechanism %r is not enabled (%s)", mechanism,
                     ", ".join(self.mechanisms))
            return AuthOutcome(SaslHandshakeResponse(
                error_code=UNSUPPORTED_SASL_MECHANISM, mechanisms=list(self.mechanisms)),
                close=True)
        self.mechanism = mechanism
        self._server = new_mechanism_server(mechanism, self._store, self._now_ms)
        self.stage = Stage.AUTHENTICATE if version >= 1 else Stage.RAW_TOKENS
        return AuthOutcome(SaslHandshakeResponse(error_code=0,
                                                 mechanisms=list(self.mechanisms)))

    def _authenticate(self, token: bytes, version: int) -> AuthOutcome:
        assert self._server is not None
        try:
            challenge = self._server.step(token)
        except SaslAuthenticationFailed as exc:
            self._log_failure(exc)
            return AuthOutcome(SaslAuthenticateResponse(
                error_code=SASL_AUTHENTICATION_FAILED, error_message=exc.message,
                auth_bytes=exc.challenge), close=True)
        if not self._server.complete:
            return AuthOutcome(SaslAuthenticateResponse(error_code=0, auth_bytes=challenge))
        previous = self.principal
        if self._reauthenticating and self._server.principal != previous:
            message = "Cannot change principals during re-authentication"
            log.info("%s: %r became %r", message, previous, self._server.principal)
            return AuthOutcome(SaslAuthenticateResponse(
                error_code=SASL_AUTHENTICATION_FAILED, error_message=message,
                auth_bytes=b""), close=True)
        lifetime = self._complete(version)
        response = SaslAuthenticateResponse(error_code=0, auth_bytes=challenge)
        if version >= 1:
            response.session_lifetime_ms = lifetime
        return AuthOutcome(response)

    def _complete(self, version: int) -> int:
        """Enter the authenticated stage; returns the session lifetime (0: none)."""
        assert self._server is not None
        now = self._now_ms()
        lifetime: int | None = self._max_reauth_ms or None
        if self._server.expires_at_ms is not None:
            left = max(self._server.expires_at_ms - now, 1)
            lifetime = left if lifetime is None else min(lifetime, left)
        self.session_expires_at_ms = None if lifetime is None else now + lifetime
        self.principal = self._server.principal
        self.stage = Stage.AUTHENTICATED
        self._client_can_reauthenticate = version >= 1
        reauthentication, self._reauthenticating = self._reauthenticating, False
        self._server = None
        log.info("%s %r with %s", "re-authenticated" if reauthentication else
                 "authenticated", self.principal, self.mechanism)
        if self._on_authenticated is not None:
            self._on_authenticated(self.principal or "", self.mechanism or "",
                                   reauthentication)
        return lifetime or 0

    def _illegal(self, request: Any, version: int, what: str) -> AuthOutcome:
        log.info("closing a connection: %s (%s)", what, self.stage.value)
        return AuthOutcome(error_response(request, version, ILLEGAL_SASL_STATE,
                                          f"Unexpected {what}"), close=True)

    def _log_failure(self, exc: SaslAuthenticationFailed) -> None:
        log.info("SASL %s authentication failed: %s", self.mechanism, exc.reason)
