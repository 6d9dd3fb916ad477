"""Sockets: one anyio connection to one broker (framing, pipelining, version negotiation)."""

from __future__ import annotations

from streamclient.net.connection import DEFAULT_MAX_FRAME_BYTES, BrokerConnection, parse_address

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "BrokerConnection", "parse_address"]
