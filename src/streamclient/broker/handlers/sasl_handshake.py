"""SaslHandshake (key 17) once a connection needs none.

On a SASL listener the connection's authenticator (``broker/authenticator.py``) takes
every handshake before authentication and the ones that start a KIP-368
re-authentication; what reaches this handler is a handshake on a plaintext/SSL listener
or a repeated one, answered with ILLEGAL_SASL_STATE as Kafka's request handler does.
"""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import SaslHandshakeRequest, SaslHandshakeResponse

ILLEGAL_SASL_STATE = 34


@handles(SaslHandshakeRequest)
async def handle(ctx: RequestContext, request: SaslHandshakeRequest,
                 version: int) -> SaslHandshakeResponse:
    return SaslHandshakeResponse(error_code=ILLEGAL_SASL_STATE, mechanisms=[])
