"""Helpers with aiokafka's names (``aiokafka.helpers``)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from os import PathLike

__all__ = ["create_ssl_context"]

_Path = str | bytes | PathLike[str] | PathLike[bytes]


def create_ssl_context(
    *,
    cafile: _Path | None = None,
    capath: _Path | None = None,
    cadata: str | bytes | None = None,
    certfile: _Path | None = None,
    keyfile: _Path | None = None,
    password: Callable[[], str | bytes | bytearray] | str | bytes | bytearray | None = None,
) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for talking to brokers over TLS, as aiokafka builds it.

    The context verifies the broker's certificate and host name against ``cafile``,
    ``capath`` or ``cadata`` (the system's trust store when none is given); with
    ``certfile`` (and ``keyfile``, ``password``) it also presents a client certificate.
    """
    context = ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH, cafile=cafile, capath=capath, cadata=cadata)
    context.check_hostname = True
    if certfile is not None:
        context.load_cert_chain(certfile=certfile, keyfile=keyfile, password=password)
    return context
