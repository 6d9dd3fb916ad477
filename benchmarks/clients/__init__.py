"""One module per client library; each runs as ``python -m benchmarks.clients.<module>``.

:data:`CLIENT_MODULES` maps the names the harness accepts in ``--clients`` to modules.
"""

from __future__ import annotations

__all__ = ["ASYNC_CLIENTS", "CLIENT_MODULES"]

CLIENT_MODULES: dict[str, str] = {
    "streamclient": "benchmarks.clients.streamclient_client",
    "aiokafka": "benchmarks.clients.aiokafka_client",
    "kafka-python": "benchmarks.clients.kafka_python_client",
    "confluent-kafka": "benchmarks.clients.confluent_kafka_client",
}

# clients whose event loop can be chosen with --backend (the others run as they ship)
ASYNC_CLIENTS: dict[str, tuple[str, ...]] = {
    "streamclient": ("asyncio", "trio"),
    "aiokafka": ("asyncio",),
}
