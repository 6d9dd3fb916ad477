"""One broker node's network side: a TCP listener and one task per connection.

Each connection is served strictly in order, one request at a time, as Kafka does (its
network layer mutes a channel while a request is in flight): read a size-prefixed frame,
decode it, consult the fault injector, run the handler, write the response, repeat.  So
responses always leave in request order and a slow request (a long-polling Fetch) delays
only its own connection.

What closes a connection (and only that connection): a size prefix that is negative or
above ``max_frame_bytes``, a frame that does not decode, an unknown API key, a version no
handler serves (except ApiVersions, answered at v0 with UNSUPPORTED_VERSION as KIP-511
asks), and a response that fails to encode.  A handler that raises gets an
UNKNOWN_SERVER_ERROR response and the error is recorded; the connection stays up.

The listener speaks what the broker config asks for: plaintext, TLS (``ssl_context``),
SASL (``sasl_enabled_mechanisms``) or both.  On a SASL listener each connection has a
:class:`~streamclient.broker.authenticator.ConnectionAuthenticator` that sees every request
first and decides what is served before authentication, and when a session has expired;
fault injection applies only to the requests it lets through.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ByteStream, Listener, SocketAttribute, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSListener

from streamclient.broker.authenticator import ConnectionAuthenticator
from streamclient.broker.error_response import error_response
from streamclient.broker.handlers.registry import REGISTRY, RequestContext
from streamclient.errors import ProtocolDecodeError
from streamclient.protocol.framing import (
    UnsupportedRequestError,
    decode_request,
    encode_response,
)

if TYPE_CHECKING:
    from streamclient.broker.faults import FaultAction
    from streamclient.broker.state import ClusterState
    from streamclient.protocol.message import Message

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "BrokerNode"]

log = logging.getLogger("streamclient.broker")

# Kafka's socket.request.max.bytes
DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024
API_VERSIONS_KEY = 18
UNSUPPORTED_VERSION = 35
UNKNOWN_SERVER_ERROR = -1
FAILED_AUTHENTICATION_DELAY_S = 0.1

_SIZE = struct.Struct(">i")
_connection_ids = itertools.count(1)

ErrorSink = Callable[[BaseException], None]


class _CloseConnection(Exception):
    """Ends one connection; the reason has been logged."""


class _QuietTLSListener(TLSListener):
    """A failed TLS handshake (a client that does not trust our certificate) is the
    client's problem: log one line, not anyio's traceback at error level."""

    @staticmethod
    async def handle_handshake_error(exc: BaseException, stream: Any) -> None:
        await anyio.aclose_forcefully(stream)
        if isinstance(exc, anyio.get_cancelled_exc_class()) or not isinstance(exc, Exception):
            raise exc
        log.warning("TLS handshake failed: %s", exc)


class BrokerNode:
    """Listener and connections of node ``node_id``; start with ``await tg.start(node.run)``."""

    def __init__(self, node_id: int, state: ClusterState, *, host: str = "127.0.0.1",
                 port: int = 0, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 on_error: ErrorSink | None = None) -> None:
        self.node_id = node_id
        self.state = state
        self.host = host
        self.port = port
        self.max_frame_bytes = max_frame_bytes
        self._on_error = on_error
        self._scope: anyio.CancelScope | None = None
        self._stopped = anyio.Event()
        self._stopped.set()
        self.connections = 0  # open connections, for tests
        # successful SASL authentications and KIP-368 re-authentications, for tests
        self.sasl_logins = 0
        self.sasl_reauthentications = 0

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    async def run(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until :meth:`stop`; reports the bound port through ``task_status``."""
        if self.running:
            raise RuntimeError(f"node {self.node_id} is already running")
        self._stopped = anyio.Event()
        try:
            tcp = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        except BaseException:
            self._stopped.set()
            raise
        listener: Listener[Any] = tcp
        context = self.state.config.ssl_context
        if context is not None:
            # standard_compatible=False: Kafka clients close without TLS's close_notify
            listener = _QuietTLSListener(tcp, context, standard_compatible=False)
        try:
            self.port = int(tcp.extra(SocketAttribute.local_port))
            with anyio.CancelScope() as scope:
                self._scope = scope
                task_status.started(self.port)
                async with listener:
                    await listener.serve(self._serve_connection)
        finally:
            self._scope = None
            self._stopped.set()

    async def stop(self) -> None:
        """Close the listener and every connection of this node, and wait until they are."""
        if self._scope is not None:
            self._scope.cancel()
        await self._stopped.wait()

    # -- one connection ------------------------------------------------------------------

    def _authenticator(self) -> ConnectionAuthenticator | None:
        config = self.state.config
        if not config.sasl_enabled_mechanisms:
            return None
        return ConnectionAuthenticator(
            config.sasl_enabled_mechanisms, self.state.credentials, self.state.clock.now_ms,
            max_reauth_ms=config.connections_max_reauth_ms,
            on_authenticated=self._count_login)

    def _count_login(self, principal: str, mechanism: str, reauthentication: bool) -> None:
        if reauthentication:
            self.sasl_reauthentications += 1
        else:
            self.sasl_logins += 1

    async def _serve_connection(self, stream: ByteStream) -> None:
        connection_id = next(_connection_ids)
        try:
            peer = str(stream.extra(SocketAttribute.remote_address)[0])
        except (OSError, LookupError, TypeError):  # LookupError: anyio's missing attribute too
            peer = ""
        self.connections += 1
        reader = BufferedByteReceiveStream(stream)
        auth = self._authenticator()
        try:
            async with stream:
                while True:
                    frame = await self._read_frame(reader, connection_id)
                    if frame is None:
                        return
                    if auth is not None and auth.expects_raw_token:
                        await self._raw_token(stream, auth, frame)
                        continue
                    await self._process(stream, frame, connection_id, peer, auth)
        except _CloseConnection:
            pass
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                anyio.ClosedResourceError, ConnectionError, ssl.SSLError):
            # the peer went away; nothing to answer
            pass
        except Exception as exc:
            # a bug of ours: keep the node up, record it for the test to see
            log.exception("node %d connection %d failed", self.node_id, connection_id)
            self._report(exc)
        finally:
            self.connections -= 1

    async def _read_frame(self, reader: BufferedByteReceiveStream,
                          connection_id: int) -> bytes | None:
        try:
            prefix = await reader.receive_exactly(4)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return None
        (size,) = _SIZE.unpack(prefix)
        if size < 0 or size > self.max_frame_bytes:
            log.warning("node %d connection %d: frame size %d outside 0..%d, closing",
                        self.node_id, connection_id, size, self.max_frame_bytes)
            raise _CloseConnection
        return await reader.receive_exactly(size)

    async def _raw_token(self, stream: ByteStream, auth: ConnectionAuthenticator,
                         token: bytes) -> None:
        outcome = auth.on_raw_token(token)
        if outcome.close or outcome.raw_token is None:
            raise _CloseConnection
        await stream.send(_SIZE.pack(len(outcome.raw_token)) + outcome.raw_token)

    async def _process(self, stream: ByteStream, frame: bytes, connection_id: int,
                       peer: str, auth: ConnectionAuthenticator | None = None) -> None:
        try:
            header, request = decode_request(frame)
        except UnsupportedRequestError as exc:
            await self._unsupported(stream, exc.api_key, exc.api_version, exc.correlation_id,
                                    connection_id, str(exc))
            return
        except ProtocolDecodeError as exc:
            log.warning("node %d connection %d: undecodable request (%s), closing",
                        self.node_id, connection_id, exc)
            raise _CloseConnection from None
        api_key = int(header.request_api_key)
        version = int(header.request_api_version)
        registration = REGISTRY.get(api_key)
        if registration is None or not (
                registration.advertised[0] <= version <= registration.advertised[1]):
            await self._unsupported(stream, api_key, version, int(header.correlation_id),
                                    connection_id, f"no handler for {type(request).API_NAME} "
                                    f"v{version}")
            return
        if auth is not None:
            outcome = auth.on_request(api_key, version, request)
            if not outcome.passthrough:
                if outcome.response is not None:
                    await self._send_response(stream, outcome.response, version,
                                              int(header.correlation_id), api_key,
                                              type(request).API_NAME)
                if outcome.close:
                    if outcome.response is not None:
                        # as Kafka's connection.failed.authentication.delay.ms: a client
                        # that pipelined more bytes would otherwise get a reset that can
                        # discard the answer telling it why
                        await anyio.sleep(FAILED_AUTHENTICATION_DELAY_S)
                    raise _CloseConnection
                return
        ctx = RequestContext(self.node_id, self.state, header, connection_id, peer)
        action = self.state.faults.take(self.node_id, connection_id, header, request, version)
        response = await self._respond(ctx, request, version, action)
        if action is not None and action.drop == "after":
            log.info("node %d: dropping the response to %s v%d (fault injection)",
                     self.node_id, type(request).API_NAME, version)
            raise _CloseConnection
        if response is None:
            return
        await self._send_response(stream, response, version, int(header.correlation_id),
                                  api_key, type(request).API_NAME)

    async def _send_response(self, stream: ByteStream, response: Message, version: int,
                             correlation_id: int, api_key: int, api_name: str) -> None:
        try:
            data = encode_response(response, version, correlation_id, api_key)
        except Exception as exc:
            log.exception("node %d: cannot encode the %s v%d response, closing",
                          self.node_id, api_name, version)
            self._report(exc)
            raise _CloseConnection from None
        await stream.send(data)

    async def _respond(self, ctx: RequestContext, request: Any, version: int,
                       action: FaultAction | None) -> Message | None:
        if action is not None:
            if action.delay_ms:
                await anyio.sleep(action.delay_ms / 1000)
            if action.drop == "before":
                log.info("node %d: dropping the connection before %s v%d (fault injection)",
                         self.node_id, type(request).API_NAME, version)
                raise _CloseConnection
            if action.error is not None:
                return error_response(request, version, action.error, action.error_message)
            if action.respond is not None:
                return action.respond(request, version)
        registration = REGISTRY.get(ctx.api_key)
        assert registration is not None
        try:
            return await registration.handler(ctx, request, version)
        except Exception as exc:
            log.exception("node %d: the %s v%d handler failed", self.node_id,
                          type(request).API_NAME, version)
            self._report(exc)
            return error_response(request, version, UNKNOWN_SERVER_ERROR,
                                  f"{type(exc).__name__}: {exc}")

    async def _unsupported(self, stream: ByteStream, api_key: int, version: int,
                           correlation_id: int, connection_id: int, reason: str) -> None:
        if api_key != API_VERSIONS_KEY:
            log.warning("node %d connection %d: %s, closing", self.node_id, connection_id,
                        reason)
            raise _CloseConnection
        # KIP-511: answer an ApiVersions version we do not know at v0, with the error and
        # our versions, so the client can retry with one we support
        from streamclient.broker.handlers.api_versions import api_versions_response

        response = api_versions_response(UNSUPPORTED_VERSION)
        await stream.send(encode_response(response, 0, correlation_id, API_VERSIONS_KEY))

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(exc)

