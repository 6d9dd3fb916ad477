"""SaslAuthenticate (key 36) once a connection needs none.

Tokens of a SASL exchange go to the connection's authenticator
(``broker/authenticator.py``); a SaslAuthenticate that reaches this handler comes on a
listener without SASL or after authentication, and gets ILLEGAL_SASL_STATE as in Kafka.
"""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import SaslAuthenticateRequest, SaslAuthenticateResponse

ILLEGAL_SASL_STATE = 34


@handles(SaslAuthenticateRequest)
async def handle(ctx: RequestContext, request: SaslAuthenticateRequest,
                 version: int) -> SaslAuthenticateResponse:
    return SaslAuthenticateResponse(
        error_code=ILLEGAL_SASL_STATE, auth_bytes=b"",
        error_message="SaslAuthenticate is only valid during SASL authentication "
                      f"({ctx.state.config.security_protocol} listener)")
