"""pytest plugin: an embedded Kafka cluster per test.

Fixtures:

- ``kafka_cluster`` — an :class:`~streamclient.broker.EmbeddedCluster` running on the
  test's anyio backend (so an ``@pytest.mark.anyio`` test gets it on asyncio and trio);
- ``kafka_bootstrap_servers`` — its ``"host:port,…"`` string;
- ``kafka_cluster_sync`` — a :class:`~streamclient.broker.BlockingEmbeddedCluster` for
  tests that block (confluent-kafka, kafka-python, the sync API).

Options come from the ``kafka_cluster`` marker, e.g.
``@pytest.mark.kafka_cluster(nodes=3, partitions=6)``; any other keyword is passed to
``EmbeddedCluster`` (``auto_create_topics=False``, ``replication_factor=3``, broker config
fields such as ``offsets_topic_num_partitions=5``).  Tests get a fast group coordinator
(``group_initial_rebalance_delay_ms=0``) unless the marker says otherwise.

An exception raised inside the broker (a handler or a coordinator tick) fails the test at
teardown, with the broker's traceback, instead of hiding behind an error response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from streamclient.broker.cluster import BlockingEmbeddedCluster, EmbeddedCluster

__all__ = ["cluster_options"]

_ALIASES = {"partitions": "default_partitions",
            "replication_factor": "default_replication_factor"}
_TEST_DEFAULTS: dict[str, Any] = {"nodes": 1, "group_initial_rebalance_delay_ms": 0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kafka_cluster(nodes=1, partitions=1, replication_factor=1, **options): "
        "options of the embedded cluster the kafka_cluster fixtures start",
    )


def cluster_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The EmbeddedCluster keywords for this test, from its ``kafka_cluster`` marker."""
    options = dict(_TEST_DEFAULTS)
    marker = request.node.get_closest_marker("kafka_cluster")
    if marker is not None:
        if len(marker.args) > 1:
            raise pytest.UsageError("kafka_cluster takes at most one positional argument "
                                    "(the node count)")
        if marker.args:
            options["nodes"] = marker.args[0]
        for key, value in marker.kwargs.items():
            options[_ALIASES.get(key, key)] = value
    return options


def _fail_on_broker_errors(errors: list[BaseException]) -> None:
    if errors:
        lines = "\n".join(f"  {type(e).__name__}: {e}" for e in errors)
        pytest.fail(f"the embedded broker raised {len(errors)} error(s):\n{lines}",
                    pytrace=False)


@pytest.fixture
async def kafka_cluster(request: pytest.FixtureRequest,
                        anyio_backend: Any) -> AsyncIterator[EmbeddedCluster]:
    """An EmbeddedCluster for this test, on the current anyio backend."""
    options = cluster_options(request)
    nodes = options.pop("nodes")
    async with EmbeddedCluster(nodes, **options) as cluster:
        yield cluster
    _fail_on_broker_errors(cluster.errors)


@pytest.fixture
def kafka_bootstrap_servers(kafka_cluster: EmbeddedCluster) -> str:
    return kafka_cluster.bootstrap_servers


@pytest.fixture
def kafka_cluster_sync(request: pytest.FixtureRequest) -> Iterator[BlockingEmbeddedCluster]:
    """A BlockingEmbeddedCluster (its loop on a background thread) for blocking tests."""
    options = cluster_options(request)
    nodes = options.pop("nodes")
    with BlockingEmbeddedCluster(nodes, **options) as cluster:
        yield cluster
    _fail_on_broker_errors(cluster.errors)
