"""``WireClient``: raw Kafka frames over one TCP connection, for broker tests.

Deliberately not a client: no version negotiation, no retries, no pipelining rules.  It
sends exactly the bytes a test asks for, so tests can speak any version, send garbage
and see whether the broker closed the connection.
"""

from __future__ import annotations

import itertools
import struct
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from streamclient.protocol.framing import decode_response, encode_request
from streamclient.protocol.message import Message

__all__ = ["WireClient"]

_SIZE = struct.Struct(">i")


class WireClient:
    """``async with WireClient(host, port) as wire: response = await wire.send(req, 3)``."""

    def __init__(self, host: str, port: int, *, client_id: str | None = "wire-test",
                 timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._stream: SocketStream | None = None
        self._reader: BufferedByteReceiveStream | None = None
        self._correlation = itertools.count(1)

    async def __aenter__(self) -> WireClient:
        with anyio.fail_after(self.timeout_s):
            self._stream = await anyio.connect_tcp(self.host, self.port)
        self._reader = BufferedByteReceiveStream(self._stream)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    def _require(self) -> tuple[SocketStream, BufferedByteReceiveStream]:
        if self._stream is None or self._reader is None:
            raise RuntimeError("the WireClient is not connected")
        return self._stream, self._reader

    def next_correlation_id(self) -> int:
        return next(self._correlation)

    async def send_raw(self, data: bytes) -> None:
        stream, _ = self._require()
        with anyio.fail_after(self.timeout_s):
            await stream.send(data)

    async def send_request(self, request: Message, version: int,
                           correlation_id: int | None = None) -> int:
        """Send without waiting for the answer; returns the correlation id used."""
        cid = self.next_correlation_id() if correlation_id is None else correlation_id
        await self.send_raw(encode_request(request, version, cid, self.client_id))
        return cid

    async def receive_frame(self) -> bytes:
        """The next response frame (without its size prefix)."""
        _, reader = self._require()
        with anyio.fail_after(self.timeout_s):
            (size,) = _SIZE.unpack(await reader.receive_exactly(4))
            return await reader.receive_exactly(size)

    async def receive(self, request_type: type[Message], version: int) -> tuple[int, Any]:
        """``(correlation_id, response)`` of the next frame, read as ``request_type``."""
        return decode_response(await self.receive_frame(), request_type, version)

    async def send(self, request: Message, version: int) -> Any:
        """Send ``request`` at ``version`` and return its decoded response."""
        cid = await self.send_request(request, version)
        got, response = await self.receive(type(request), version)
        if got != cid:
            raise AssertionError(f"expected correlation id {cid}, got {got}")
        return response

    async def closed_by_peer(self) -> bool:
        """Whether the broker has closed the connection (waits up to the timeout).

        True when the read ends with end-of-stream or a reset; False if a frame or
        bytes arrive instead.
        """
        _, reader = self._require()
        try:
            with anyio.fail_after(self.timeout_s):
                await reader.receive(1)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                ConnectionError):
            return True
        return False
