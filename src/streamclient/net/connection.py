"""One connection to one broker: framing, correlation ids, pipelining, version negotiation.

Design (no background task)
---------------------------
A connection owns no task.  Requests are written under a lock, each write appending a
``_Pending`` entry to a FIFO in the same critical section, so the FIFO order is the order
of the bytes on the wire; Kafka answers the requests of one connection in order, so every
response belongs to the oldest pending entry.

Whoever is waiting for a response and finds nobody reading becomes *the reader*: it reads
frames and hands each one to the oldest entry (waking that entry's waiter) until its own
response has arrived, then gives up the role and wakes the oldest waiter still waiting,
which becomes the next reader.  Received bytes go into a buffer owned by the connection,
not by the reader, so a reader cancelled between two receives (or half-way through a large
frame) loses nothing: the next reader carries on from the same buffer.  ``receive`` itself
is cancel-safe on both anyio backends (a cancelled receive consumed no bytes).

Writes are the other place where cancellation could corrupt the stream: trio may have sent
part of a frame when a ``send_all`` is cancelled.  So a frame is written in a shielded
scope bounded by the request's own deadline; the caller's cancellation takes effect as soon
as the frame is out, and the response to a request whose waiter went away is read and
dropped when it arrives.

A request timeout, a broken socket, a response whose correlation id is not the oldest
pending one, or bytes that do not decode all *fail* the connection: it is closed and every
pending request fails (the Java client does the same — once one response is missing, later
ones cannot be matched reliably).

SASL and re-authentication
--------------------------
With ``sasl`` settings, ``connect()`` authenticates right after ApiVersions
(``streamclient.net.sasl``), before the connection is handed to anyone.  When the broker
limits the session (KIP-368: SaslAuthenticate v1+ returns ``session_lifetime_ms``), the
connection does not re-authenticate in place: at 85 % of the lifetime it reports itself
no longer ``connected``, so the pool opens a fresh, freshly authenticated connection for
new requests; requests holding this one may still be sent until 95 % of the lifetime,
and the pool closes it once their responses are read (:meth:`close_when_idle`).  A
replacement costs one connect and one authentication per lifetime, and no request ever
meets a broker that has expired its session.
"""

from __future__ import annotations

import ssl
import struct
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

import anyio
import anyio.abc

from streamclient._version import __version__
from streamclient.errors import (
    CorrelationIdError,
    KafkaConnectionError,
    KafkaError,
    KafkaProtocolError,
    ProtocolDecodeError,
    RequestTimedOutError,
    UnsupportedVersionError,
    for_code,
)
from streamclient.protocol import api_versions as version_negotiation
from streamclient.protocol.framing import decode_response, encode_request
from streamclient.protocol.message import Message
from streamclient.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from streamclient.protocol.messages.sasl_authenticate import SaslAuthenticateRequest

from .sasl import SaslSettings, authenticate

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "BrokerConnection", "parse_address"]

DEFAULT_MAX_FRAME_BYTES: Final = 100 * 1024 * 1024
DEFAULT_CLIENT_ID: Final = "streamclient"
_UNSUPPORTED_VERSION: Final = version_negotiation.UNSUPPORTED_VERSION
_PRODUCE_API_KEY: Final = 0
_SIZE: Final = struct.Struct(">i")
_INT16: Final = struct.Struct(">h")
# a read never asks for more than this at once, so one huge frame does not make one huge
# receive buffer allocation before any byte has arrived
_MAX_RECEIVE: Final = 1024 * 1024
# bound on the graceful part of close() (TLS close_notify), after which the socket is
# dropped
_CLOSE_GRACE_S: Final = 1.0
# negotiation never picks a version its schema marks unstable; an explicit version may
_OUR_VERSIONS: Final = version_negotiation.supported_versions()
# KIP-368: share of the session lifetime after which new requests go to a replacement
# connection, and after which this one takes no request at all (the rest is margin for
# a request already written to reach the broker before the session ends)
_REAUTH_AT: Final = 0.85
_LAST_SEND_AT: Final = 0.95

_Decoder = Callable[[bytes], Any]


def parse_address(address: str, default_port: int = 9092) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[v6addr]:port"`` for IPv6) into host and port."""
    text = address.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad broker address {address!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"bad broker address {address!r}: no host")
    if not port_text:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad broker address {address!r}: port is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad broker address {address!r}: port out of range")
    return host, port


class _Pending:
    """A request on the wire whose response has not been read yet."""

    __slots__ = ("abandoned", "api_name", "correlation_id", "decode", "error", "response",
                 "settled", "wakeup")

    def __init__(self, correlation_id: int, api_name: str, decode: _Decoder) -> None:
        self.correlation_id = correlation_id
        self.api_name = api_name
        self.decode = decode
        self.settled = False
        self.response: Any = None
        self.error: BaseException | None = None
        # the waiter went away (cancelled); its response is still read, then dropped
        self.abandoned = False
        # set when the entry is settled, or when its waiter should take over reading
        self.wakeup = anyio.Event()

    def settle(self, response: Any = None, error: BaseException | None = None) -> None:
        if self.settled:
            return
        self.settled = True
        self.response = response
        self.error = error
        self.wakeup.set()


class BrokerConnection:
    """A connection to one broker, usable from many tasks at once.

    ``async with BrokerConnection(host, port) as conn:`` connects, negotiates API versions
    and closes on exit.  ``await conn.send(request)`` sends at the negotiated version and
    returns the decoded response (``None`` for a Produce with ``acks=0``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        client_id: str | None = DEFAULT_CLIENT_ID,
        request_timeout_ms: int = 30_000,
        connect_timeout_ms: int | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        client_software_name: str = "streamclient",
        client_software_version: str = __version__,
        sasl: SaslSettings | None = None,
    ) -> None:
        if request_timeout_ms <= 0:
            raise ValueError("request_timeout_ms must be positive")
        if connect_timeout_ms is not None and connect_timeout_ms <= 0:
            raise ValueError("connect_timeout_ms must be positive")
        if max_frame_bytes <= 0:
            raise ValueError("max_frame_bytes must be positive")
        self.host = host
        self.port = port
        self.client_id = client_id
        self.request_timeout_ms = request_timeout_ms
        self.connect_timeout_ms = (
            request_timeout_ms if connect_timeout_ms is None else connect_timeout_ms
        )
        self.max_frame_bytes = max_frame_bytes
        self._ssl_context = ssl_context
        self._software = (client_software_name, client_software_version)

        self._stream: anyio.abc.ByteStream | None = None
        self._connect_started = False
        self._send_lock = anyio.Lock()
        self._pending: deque[_Pending] = deque()
        self._rbuf = bytearray()
        self._reading = False
        self._next_correlation_id = 0
        self._failure: KafkaError | None = None
        self._closed = False
        self._broker_versions: dict[int, tuple[int, int]] = {}
        self._versions: version_negotiation.VersionTable | None = None
        self._sasl = sasl
        self._authenticated = sasl is None
        # anyio clock, seconds; None: the session does not expire
        self._reauth_at: float | None = None
        self._last_send_at: float | None = None
        self._retiring = False  # close_when_idle() was called

    # --- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> BrokerConnection:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the socket (TLS if an ``ssl_context`` was given) and negotiate versions."""
        if self._connect_started or self._closed:
            raise KafkaConnectionError(f"{self}: connect() may be called once")
        self._connect_started = True
        try:
            with anyio.fail_after(self.connect_timeout_ms / 1000):
                if self._ssl_context is None:
                    self._stream = await anyio.connect_tcp(self.host, self.port)
                else:
                    self._stream = await anyio.connect_tcp(
                        self.host,
                        self.port,
                        ssl_context=self._ssl_context,
                        # Kafka brokers may drop TLS connections without close_notify;
                        # waiting for it would only make close() hang
                        tls_standard_compatible=False,
                    )
        except TimeoutError:
            self._closed = True
            raise KafkaConnectionError(
                f"{self}: no connection within {self.connect_timeout_ms} ms"
            ) from None
        except (OSError, ssl.SSLError, anyio.BrokenResourceError) as exc:
            self._closed = True
            raise KafkaConnectionError(f"{self}: cannot connect: {exc}") from exc
        try:
            await self._negotiate_versions()
            if self._sasl is not None:
                await self._authenticate(self._sasl)
        except BaseException:
            await self.close()
            raise

    async def _authenticate(self, settings: SaslSettings) -> None:
        # the broker starts the session's clock when it authenticates us, which is after
        # this instant: deadlines counted from here err on the early side
        started = anyio.current_time()
        lifetime_ms = await authenticate(
            self._request, self._broker_versions,
            self.version_for(SaslAuthenticateRequest), settings, str(self))
        if lifetime_ms > 0:
            self._reauth_at = started + lifetime_ms * _REAUTH_AT / 1000
            self._last_send_at = started + lifetime_ms * _LAST_SEND_AT / 1000
        self.session_lifetime_ms = lifetime_ms
        self._authenticated = True

    async def _request(self, request: Message, version: int) -> Any:
        """Send on a connection that is not handed out yet (negotiation, SASL)."""
        request_type = type(request)

        def decode(frame: bytes) -> Any:
            return decode_response(frame, request_type, version)[1]

        return await self._send(request, version, decode, expect_response=True)

    async def close(self) -> None:
        """Close the connection; pending requests fail with ``KafkaConnectionError``.

        Idempotent, and safe to call from any task, including while others wait.
        """
        self._settle_all(KafkaConnectionError(f"{self}: connection closed"))
        self._closed = True
        await self._close_stream()

    #: the broker's SASL session lifetime (KIP-368); 0: unlimited, or no SASL
    session_lifetime_ms: int = 0

    @property
    def connected(self) -> bool:
        """True once connected, negotiated and authenticated, until closed or failed, or
        until re-authentication is due (then the pool replaces the connection)."""
        if not self._usable():
            return False
        return self._reauth_at is None or anyio.current_time() < self._reauth_at

    def _usable(self) -> bool:
        """Whether :meth:`send` may still write on this connection."""
        if self._stream is None or self._closed or not self._broker_versions:
            return False
        if not self._authenticated or self._retiring:
            return False
        return self._last_send_at is None or anyio.current_time() < self._last_send_at

    @property
    def reauthentication_due(self) -> bool:
        """The SASL session is near its end: new requests belong on a new connection."""
        return self._reauth_at is not None and anyio.current_time() >= self._reauth_at

    async def close_when_idle(self) -> None:
        """Take no more requests; close once the responses in flight have been read."""
        self._retiring = True
        if not self._pending:
            await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def failure(self) -> KafkaError | None:
        """The error that broke the connection, if one did (``None`` after a plain close)."""
        return self._failure

    @property
    def in_flight(self) -> int:
        """Requests written whose response has not been read (including abandoned ones)."""
        return len(self._pending)

    # --- versions ------------------------------------------------------------------

    @property
    def broker_api_versions(self) -> dict[int, tuple[int, int]]:
        """API key → (min, max) as the broker advertised them."""
        return dict(self._broker_versions)

    def version_for(self, request_type: type[Message] | int) -> int:
        """The version :meth:`send` uses for this request type (or API key) by default.

        Raises ``UnsupportedVersionError`` when the broker does not support the API or no
        version is supported by both sides.
        """
        api_key = request_type if isinstance(request_type, int) else request_type.API_KEY
        if self._versions is None:
            raise KafkaConnectionError(f"{self}: versions are not negotiated yet")
        version = self._versions.version_for(api_key)
        if version is None:
            name = api_key if isinstance(request_type, int) else request_type.API_NAME
            broker = self._broker_versions.get(api_key)
            raise UnsupportedVersionError(
                f"{self}: no version of API {name} is supported by both sides (broker: "
                + ("none" if broker is None else f"{broker[0]}-{broker[1]}") + ")"
            )
        return version

    async def _negotiate_versions(self) -> None:
        ours = ApiVersionsRequest.LATEST_STABLE_VERSION
        version = ours
        response = await self._request_api_versions(version)
        retry = version_negotiation.retry_api_versions_version(response, version, ours)
        if retry is not None:
            # KIP-511: the broker answered in v0 and listed the ApiVersions versions it
            # serves (if any); one retry at the highest we share
            version = retry
            response = await self._request_api_versions(version)
        if response.error_code != 0:
            raise for_code(response.error_code)(f"{self}: ApiVersions v{version} failed")
        if not response.api_keys:
            raise KafkaProtocolError(f"{self}: ApiVersions response lists no APIs")
        self._versions = version_negotiation.VersionTable(_OUR_VERSIONS, response.api_keys)
        self._broker_versions = {
            k.api_key: (k.min_version, k.max_version) for k in response.api_keys
        }

    async def _request_api_versions(self, version: int) -> ApiVersionsResponse:
        request = ApiVersionsRequest()
        if version >= 3:
            request.client_software_name, request.client_software_version = self._software

        def decode(frame: bytes) -> Any:
            # The error code is the body's first field at every version, right after the
            # 4-byte v0 response header.  An UNSUPPORTED_VERSION answer is encoded as v0
            # whatever version we asked for (KIP-511), so peek before choosing.
            body_version = version
            if len(frame) >= 6 and _INT16.unpack_from(frame, 4)[0] == _UNSUPPORTED_VERSION:
                body_version = 0
            return decode_response(frame, ApiVersionsRequest, body_version)[1]

        result = await self._send(request, version, decode, expect_response=True)
        assert isinstance(result, ApiVersionsResponse)
        return result

    # --- requests ------------------------------------------------------------------

    async def send(self, request: Message, version: int | None = None) -> Any:
        """Send ``request`` and return its decoded response.

        ``version`` defaults to the negotiated one; an explicit version must be one both
        sides support.  A Produce with ``acks=0`` returns ``None`` once written, since the
        broker sends nothing back.
        """
        if not self._usable():
            self._raise_unusable()
        request_type = type(request)
        if version is None:
            version = self.version_for(request_type)
        else:
            self._check_version(request_type, version)
        expect_response = not (request_type.API_KEY == _PRODUCE_API_KEY
                               and getattr(request, "acks", -1) == 0)

        def decode(frame: bytes) -> Any:
            return decode_response(frame, request_type, version)[1]

        return await self._send(request, version, decode, expect_response)

    def _check_version(self, request_type: type[Message], version: int) -> None:
        lo, hi = request_type.VALID_VERSIONS
        if not lo <= version <= hi:
            raise UnsupportedVersionError(
                f"{request_type.API_NAME} v{version} is outside the versions we know ({lo}-{hi})"
            )
        broker = self._broker_versions.get(request_type.API_KEY)
        if broker is None or not broker[0] <= version <= broker[1]:
            raise UnsupportedVersionError(
                f"{self}: broker does not support {request_type.API_NAME} v{version}"
                + ("" if broker is None else f" (it supports {broker[0]}-{broker[1]})")
            )

    async def _send(self, request: Message, version: int, decode: _Decoder,
                    expect_response: bool) -> Any:
        deadline = anyio.current_time() + self.request_timeout_ms / 1000
        correlation_id = self._next_correlation_id
        self._next_correlation_id = (correlation_id + 1) & 0x7FFFFFFF
        frame = encode_request(request, version, correlation_id, self.client_id)
        entry = _Pending(correlation_id, type(request).API_NAME, decode)

        lock = self._send_lock
        try:
            # Uncontended (the usual case): no timer to arm, and the lock is taken before
            # the first yield, as acquire() would; a cancelled caller still writes nothing.
            await anyio.lowlevel.checkpoint_if_cancelled()
            lock.acquire_nowait()
        except anyio.WouldBlock:
            with anyio.CancelScope(deadline=deadline) as lock_wait:
                await lock.acquire()
            if lock_wait.cancelled_caught:
                # nothing was written, so the connection itself is still in step
                raise self._timeout_error(entry, "waiting for the connection to write") from None
        try:
            if self._closed:
                self._raise_unusable()
            if expect_response:
                self._pending.append(entry)
            await self._write(frame, entry, deadline)
        finally:
            lock.release()
        if not expect_response:
            return None

        with anyio.CancelScope(deadline=deadline) as waiting:
            await self._await_response(entry)
        if not entry.settled and waiting.cancelled_caught:
            error = self._timeout_error(entry, "waiting for the response")
            await self._fail(
                KafkaConnectionError(
                    f"{self}: closed because {entry.api_name} (correlation id "
                    f"{entry.correlation_id}) timed out; later responses would be misaligned"
                ),
                (entry, error),
            )
        if entry.error is not None:
            raise entry.error
        return entry.response

    def _timeout_error(self, entry: _Pending, stage: str) -> RequestTimedOutError:
        return RequestTimedOutError(
            f"{self}: {entry.api_name} (correlation id {entry.correlation_id}) got no "
            f"response within {self.request_timeout_ms} ms ({stage})"
        )

    async def _write(self, frame: bytes, entry: _Pending, deadline: float) -> None:
        stream = self._stream
        assert stream is not None
        # Shielded: a cancelled write may leave half a frame on the wire, after which
        # nothing on this connection could be parsed by the broker.  The request deadline
        # still bounds it.
        error: KafkaError | None = None
        # one scope for both: its own deadline still cancels it, the shield keeps the
        # caller's cancellation out
        with anyio.CancelScope(shield=True, deadline=deadline) as scope:
            try:
                await stream.send(frame)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError,
                    ssl.SSLError) as exc:
                error = KafkaConnectionError(f"{self}: write failed: {exc!r}")
                error.__cause__ = exc
        if scope.cancelled_caught:
            error = self._timeout_error(entry, "writing the request")
        if error is not None:
            with anyio.CancelScope(shield=True):
                await self._fail(error, None)
            raise error

    # --- reading -------------------------------------------------------------------

    async def _await_response(self, entry: _Pending) -> None:
        try:
            while not entry.settled:
                if self._reading:
                    await entry.wakeup.wait()
                    if not entry.settled:
                        entry.wakeup = anyio.Event()
                    continue
                self._reading = True
                try:
                    while not entry.settled:
                        await self._read_one()
                finally:
                    self._reading = False
                    if not entry.settled:
                        entry.abandoned = True
                    self._hand_off()
        except BaseException:
            # Cancelled: the response will still be read and dropped, and if this waiter
            # had just been picked to read next, the role passes on.
            if not entry.settled:
                entry.abandoned = True
                if not self._reading:
                    self._hand_off()
            raise

    def _hand_off(self) -> None:
        for pending in self._pending:
            if not pending.abandoned:
                pending.wakeup.set()
                return

    async def _read_one(self) -> None:
        """Read until one whole frame is buffered, then hand it to the oldest request."""
        stream = self._stream
        assert stream is not None
        buf = self._rbuf
        while True:
            if len(buf) >= 4:
                size = _SIZE.unpack_from(buf)[0]
                if size < 0 or size > self.max_frame_bytes:
                    await self._fail_protocol(KafkaProtocolError(
                        f"{self}: response frame size {size} is outside 0-{self.max_frame_bytes}"
                    ))
                    return
                if len(buf) >= 4 + size:
                    # one copy into an immutable frame: decoded ``records`` fields are
                    # zero-copy views of it, so it must not be the reused buffer
                    view = memoryview(buf)
                    try:
                        frame = view[4:4 + size].tobytes()
                    finally:
                        view.release()
                    del buf[:4 + size]
                    await self._dispatch(frame)
                    return
                want = 4 + size - len(buf)
            else:
                want = 4 - len(buf)
            try:
                chunk = await stream.receive(min(max(want, 65536), _MAX_RECEIVE))
            except anyio.EndOfStream:
                await self._fail(KafkaConnectionError(f"{self}: broker closed the connection"),
                                 None)
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError,
                    ssl.SSLError) as exc:
                error = KafkaConnectionError(f"{self}: read failed: {exc!r}")
                error.__cause__ = exc
                await self._fail(error, None)
                return
            buf += chunk

    async def _dispatch(self, frame: bytes) -> None:
        if not self._pending:
            await self._fail_protocol(KafkaProtocolError(
                f"{self}: received a response ({len(frame)} bytes) with no request pending"
            ))
            return
        entry = self._pending[0]
        if len(frame) < 4:
            await self._fail_protocol(KafkaProtocolError(
                f"{self}: response frame of {len(frame)} bytes has no header"
            ))
            return
        correlation_id = _SIZE.unpack_from(frame)[0]
        if correlation_id != entry.correlation_id:
            await self._fail_protocol(CorrelationIdError(
                f"{self}: response correlation id {correlation_id} does not match the oldest "
                f"pending request ({entry.api_name}, correlation id {entry.correlation_id})"
            ))
            return
        self._pending.popleft()
        if self._retiring and not self._pending:
            # the last response a retired connection waited for: nothing else will come
            self._closed = True
            await self._close_stream()
        if entry.abandoned:
            return
        try:
            response = entry.decode(frame)
        except Exception as exc:
            if not isinstance(exc, ProtocolDecodeError):
                # the decoders promise ProtocolDecodeError; anything else is still bytes
                # we cannot use, and must not leave the request hanging
                wrapped = KafkaProtocolError(f"{self}: cannot decode {entry.api_name}: {exc!r}")
                wrapped.__cause__ = exc
                exc = wrapped
            await self._fail(
                KafkaConnectionError(f"{self}: closed after an undecodable response: {exc}"),
                (entry, exc),
            )
            return
        entry.settle(response)

    # --- failure -------------------------------------------------------------------

    async def _fail_protocol(self, error: KafkaProtocolError) -> None:
        """A framing error: the oldest request gets it, the others a connection error."""
        culprit = (self._pending[0], error) if self._pending else None
        await self._fail(
            KafkaConnectionError(f"{self}: closed after a protocol error: {error}"), culprit
        )

    async def _fail(self, error: KafkaError,
                    culprit: tuple[_Pending, BaseException] | None) -> None:
        """Break the connection: every pending request fails, the socket is closed."""
        if culprit is not None:
            culprit[0].settle(error=culprit[1])
            if culprit[0] in self._pending:
                self._pending.remove(culprit[0])
        if self._failure is None and not self._closed:
            self._failure = error
        self._settle_all(error)
        self._closed = True
        await self._close_stream()

    def _settle_all(self, error: KafkaError) -> None:
        pending, self._pending = self._pending, deque()
        for entry in pending:
            entry.settle(error=error)

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(_CLOSE_GRACE_S):
                try:
                    await stream.aclose()
                    return
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError,
                        ssl.SSLError):
                    pass
            await anyio.aclose_forcefully(stream)

    def _raise_unusable(self) -> None:
        if self._failure is not None:
            raise KafkaConnectionError(f"{self}: connection failed: {self._failure}") \
                from self._failure
        if self._closed:
            raise KafkaConnectionError(f"{self}: connection is closed")
        if self._retiring or (self._last_send_at is not None
                              and anyio.current_time() >= self._last_send_at):
            raise KafkaConnectionError(
                f"{self}: the SASL session is about to expire; the request belongs on a "
                "new connection")
        raise KafkaConnectionError(f"{self}: not connected (call connect() first)")

    def __repr__(self) -> str:
        return f"<BrokerConnection {self.host}:{self.port}>"

    __str__ = __repr__
