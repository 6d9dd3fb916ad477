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

SASL and TLS come from the same marker:
``@pytest.mark.kafka_cluster(sasl_mechanisms="PLAIN,SCRAM-SHA-256",
sasl_users={"alice": "secret"}, tls=True)``.  ``tls=True`` serves the listeners with a
certificate for 127.0.0.1/localhost from a test CA; the ``kafka_tls`` fixture (one per
session, needs the ``trustme`` package) gives that CA to clients: ``kafka_tls.ca_path``
(librdkafka's ``ssl.ca.location``, kafka-python's ``ssl_cafile``) and
``kafka_tls.client_context()``.

An exception raised inside the broker (a handler or a coordinator tick) fails the test at
teardown, with the broker's traceback, instead of hiding behind an error response.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamclient.broker.cluster import BlockingEmbeddedCluster, EmbeddedCluster

__all__ = ["KafkaTLS", "cluster_options", "make_test_tls"]

_ALIASES = {"partitions": "default_partitions",
            "replication_factor": "default_replication_factor",
            "sasl_mechanisms": "sasl_enabled_mechanisms"}
_TEST_DEFAULTS: dict[str, Any] = {"nodes": 1, "group_initial_rebalance_delay_ms": 0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kafka_cluster(nodes=1, partitions=1, replication_factor=1, sasl_mechanisms=(), "
        "sasl_users={}, tls=False, **options): "
        "options of the embedded cluster the kafka_cluster fixtures start",
    )


@dataclass(frozen=True)
class KafkaTLS:
    """A test CA and a server certificate for 127.0.0.1 and localhost."""

    # the CA certificate (PEM): librdkafka's ssl.ca.location, kafka-python's ssl_cafile
    ca_path: str
    # the broker side: EmbeddedCluster(ssl_context=...)
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (aiokafka's, streamclient's)."""
        return ssl.create_default_context(cafile=self.ca_path)


def make_test_tls(directory: str | Path) -> KafkaTLS:
    """Make a CA with ``trustme`` and write its certificate into ``directory``."""
    try:
        import trustme
    except ImportError:  # pragma: no cover - the test extra installs it
        raise pytest.UsageError(
            "TLS test clusters need the 'trustme' package (pip install trustme)") from None
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_path = Path(directory) / "kafka-test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return KafkaTLS(str(ca_path), context)


@pytest.fixture(scope="session")
def kafka_tls() -> Iterator[KafkaTLS]:
    """The test CA the ``tls=True`` clusters' certificates come from."""
    with tempfile.TemporaryDirectory(prefix="streamclient-tls-") as directory:
        yield make_test_tls(directory)


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
    if options.pop("tls", False):
        tls: KafkaTLS = request.getfixturevalue("kafka_tls")
        options["ssl_context"] = tls.server_context
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
