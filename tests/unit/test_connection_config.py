"""BrokerConnection without a socket: addresses, settings, use before connecting."""

from __future__ import annotations

import pytest

from streamclient.errors import KafkaConnectionError
from streamclient.net.connection import BrokerConnection, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:9092", ("localhost", 9092)),
        ("10.0.0.7:19092", ("10.0.0.7", 19092)),
        ("broker-1.example.com", ("broker-1.example.com", 9092)),
        (" kafka:1 ", ("kafka", 1)),
        ("[::1]:9093", ("::1", 9093)),
        ("[fe80::1]", ("fe80::1", 9092)),
        ("fe80::1", ("fe80::1", 9092)),  # a bare IPv6 address has no port
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", ":9092", "host:port", "host:0", "host:70000", "[::1",
                                  "[::1]x", "[]:9092"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad broker address"):
        parse_address(text)


@pytest.mark.parametrize(
    "kwargs",
    [{"request_timeout_ms": 0}, {"connect_timeout_ms": -1}, {"max_frame_bytes": 0}],
)
def test_settings_are_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        BrokerConnection("localhost", 9092, **kwargs)


def test_connect_timeout_defaults_to_request_timeout() -> None:
    conn = BrokerConnection("localhost", 9092, request_timeout_ms=1234)
    assert conn.connect_timeout_ms == 1234
    assert BrokerConnection("h", 1, connect_timeout_ms=5).connect_timeout_ms == 5


@pytest.mark.anyio
async def test_unconnected_connection_refuses_requests() -> None:
    from streamclient.protocol.messages.metadata import MetadataRequest

    conn = BrokerConnection("localhost", 9092)
    assert not conn.connected and not conn.closed
    with pytest.raises(KafkaConnectionError, match="not connected"):
        await conn.send(MetadataRequest())
    with pytest.raises(KafkaConnectionError, match="not negotiated"):
        conn.version_for(MetadataRequest)
    await conn.close()
    await conn.close()
    assert conn.closed and conn.failure is None
    with pytest.raises(KafkaConnectionError, match="closed"):
        await conn.send(MetadataRequest())
