"""A client that cannot reach any bootstrap server says so with KafkaConnectionError.

aiokafka raises the connection error itself from ``start()``; code that catches it must
not need to unwrap an exception group made by our task groups.
"""

from __future__ import annotations

import socket

import pytest

from streamclient import AIOKafkaConsumer, AIOKafkaProducer
from streamclient.admin import AIOKafkaAdminClient
from streamclient.errors import KafkaConnectionError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
@pytest.mark.parametrize("client_type", [AIOKafkaConsumer, AIOKafkaProducer,
                                         AIOKafkaAdminClient])
async def test_start_without_a_broker_raises_the_connection_error(client_type: type) -> None:
    client = client_type(bootstrap_servers=f"127.0.0.1:{_closed_port()}",
                         request_timeout_ms=2000)
    with pytest.raises(KafkaConnectionError, match="bootstrap"):
        await client.start()


@pytest.mark.anyio
async def test_consumer_start_can_be_retried_after_a_failed_bootstrap() -> None:
    consumer = AIOKafkaConsumer("t", bootstrap_servers=f"127.0.0.1:{_closed_port()}",
                                request_timeout_ms=2000)
    for _ in range(2):
        with pytest.raises(KafkaConnectionError):
            await consumer.start()
    await consumer.stop()  # nothing was started: stop() is a no-op
