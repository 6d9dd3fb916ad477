"""Kafka's wire protocol, sans-IO: primitives, generated messages, framing, version negotiation.

This package module imports nothing: ``streamclient.errors`` loads
``streamclient.protocol.error_codes`` while it is itself being imported, and the message
runtime imports ``streamclient.errors``.  Import the submodules directly, e.g.
``from streamclient.protocol.messages import FetchRequest``.
"""
