"""Test helpers: the pytest plugin (``streamclient.testing.plugin``) and a raw wire client."""

from streamclient.testing.wire import WireClient

__all__ = ["WireClient"]
