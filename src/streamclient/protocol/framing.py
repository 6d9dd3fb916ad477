"""Whole requests and responses on the wire: size prefix, header, body.

Header versions follow the body: a flexible request version uses request header v2 (with a
tagged-field section), otherwise v1; a flexible response uses response header v1,
otherwise v0.  Two exceptions are fixed by the protocol: ApiVersions responses always use
header v0 (KIP-511: a client that sent a version the broker does not know must still be
able to read the error), and ControlledShutdown v0 requests use request header v0 (no
client id).

``frame`` arguments are the bytes after the 4-byte size prefix; the ``encode_*``
functions return bytes with the prefix included.
"""

from __future__ import annotations

import struct

from streamclient.errors import ProtocolDecodeError
from streamclient.protocol import messages
from streamclient.protocol.message import Buffer, Message, ProtocolEncodeError
from streamclient.protocol.messages.request_header import RequestHeader
from streamclient.protocol.messages.response_header import ResponseHeader
from streamclient.protocol.primitives import write_string

__all__ = [
    "UnsupportedRequestError",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "peek_correlation_id",
    "peek_request_header",
    "request_header_version",
    "response_header_version",
]

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7
UNSUPPORTED_VERSION = 35

_PREFIX = struct.Struct(">i")
_REQUEST_START = struct.Struct(">hhi")  # api key, api version, correlation id
_CORRELATION = struct.Struct(">i")


class UnsupportedRequestError(ProtocolDecodeError):
    """A request for an API key or version this side does not implement.

    Carries what a broker needs to answer (UNSUPPORTED_VERSION, error 35) or to close the
    connection: ``api_key``, ``api_version`` and ``correlation_id``.
    """

    def __init__(
        self, message: str, *, api_key: int, api_version: int, correlation_id: int
    ) -> None:
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id
        super().__init__(message, api=f"api key {api_key}", version=api_version)


def _flexible(cls: type[Message], version: int) -> bool:
    return cls.FLEXIBLE_MIN is not None and version >= cls.FLEXIBLE_MIN


def _request_header_version(cls: type[Message], api_version: int) -> int:
    if cls.API_KEY == CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    return 2 if _flexible(cls, api_version) else 1


def _response_header_version(cls: type[Message], api_version: int) -> int:
    if cls.API_KEY == API_VERSIONS_KEY:
        return 0
    return 1 if _flexible(cls, api_version) else 0


# The lookups by key load every message module (about 0.1 s); the client paths below use
# the classes they are given instead.
def request_header_version(api_key: int, api_version: int) -> int:
    cls = messages.REQUEST_TYPES.get(api_key)
    if cls is None:
        raise KeyError(f"unknown API key {api_key}")
    return _request_header_version(cls, api_version)


def response_header_version(api_key: int, api_version: int) -> int:
    cls = messages.RESPONSE_TYPES.get(api_key)
    if cls is None:
        raise KeyError(f"unknown API key {api_key}")
    return _response_header_version(cls, api_version)


def encode_request(
    request: Message, version: int, correlation_id: int, client_id: str | None
) -> bytes:
    """Size prefix, request header and body of ``request`` at ``version``."""
    api_key = request.API_KEY
    header_version = _request_header_version(type(request), version)
    buf = bytearray(4)
    buf += _REQUEST_START.pack(api_key, version, correlation_id)
    if header_version >= 1:
        # the client id stays a classic nullable string even in header v2
        write_string(buf, client_id)
    if header_version >= 2:
        buf.append(0)  # no tagged fields in the header
    request.write(buf, version)
    _PREFIX.pack_into(buf, 0, len(buf) - 4)
    return bytes(buf)


def peek_request_header(frame: Buffer) -> tuple[int, int, int]:
    """``(api_key, api_version, correlation_id)`` of a request frame, without decoding it."""
    if len(frame) < _REQUEST_START.size:
        raise ProtocolDecodeError("request frame shorter than its header", offset=len(frame))
    api_key, api_version, correlation_id = _REQUEST_START.unpack_from(frame, 0)
    return api_key, api_version, correlation_id


def peek_correlation_id(frame: Buffer) -> int:
    """The correlation id at the start of a response frame."""
    if len(frame) < 4:
        raise ProtocolDecodeError("response frame shorter than its header", offset=len(frame))
    return int(_CORRELATION.unpack_from(frame, 0)[0])


def decode_request(frame: Buffer) -> tuple[RequestHeader, Message]:
    """Decode a request frame (broker side).

    Raises :class:`UnsupportedRequestError` for an API key or version this package does
    not know, and ``ProtocolDecodeError`` for bytes that do not decode.
    """
    api_key, api_version, correlation_id = peek_request_header(frame)
    cls = messages.REQUEST_TYPES.get(api_key)
    if cls is None:
        raise UnsupportedRequestError(
            f"unknown API key {api_key}",
            api_key=api_key,
            api_version=api_version,
            correlation_id=correlation_id,
        )
    lo, hi = cls.VALID_VERSIONS
    if not lo <= api_version <= hi:
        raise UnsupportedRequestError(
            f"{cls.API_NAME} v{api_version} is not supported (valid: {lo}-{hi})",
            api_key=api_key,
            api_version=api_version,
            correlation_id=correlation_id,
        )
    mv = frame if isinstance(frame, memoryview) else memoryview(frame)
    header, pos = RequestHeader.read(mv, 0, _request_header_version(cls, api_version))
    request, _ = cls.read(mv, pos, api_version)
    return header, request


def encode_response(response: Message, version: int, correlation_id: int, api_key: int) -> bytes:
    """Size prefix, response header and body of ``response`` at ``version``."""
    buf = bytearray(4)
    buf += _CORRELATION.pack(correlation_id)
    if api_key != type(response).API_KEY:
        raise ProtocolEncodeError(f"{type(response).__name__} does not belong to API key {api_key}")
    if _response_header_version(type(response), version) >= 1:
        buf.append(0)
    response.write(buf, version)
    _PREFIX.pack_into(buf, 0, len(buf) - 4)
    return bytes(buf)


def decode_response(
    frame: Buffer, request_type: type[Message], version: int
) -> tuple[int, Message]:
    """Decode a response frame to ``request_type`` sent at ``version``.

    An ApiVersions response whose error code is UNSUPPORTED_VERSION is read as version 0,
    which is how a broker answers a version it does not know (KIP-511).
    """
    response_type = request_type.RESPONSE_TYPE
    api_key = request_type.API_KEY
    mv = frame if isinstance(frame, memoryview) else memoryview(frame)
    header, pos = ResponseHeader.read(mv, 0, _response_header_version(response_type, version))
    if (
        api_key == API_VERSIONS_KEY
        and version > 0
        and len(mv) >= pos + 2
        and struct.unpack_from(">h", mv, pos)[0] == UNSUPPORTED_VERSION
    ):
        version = 0
    response, _ = response_type.read(mv, pos, version)
    return header.correlation_id, response
