"""Fixtures for the blocking API's tests."""

from __future__ import annotations

import pytest
from tests.sync.producing import Produce, produce_async

from streamclient.broker.cluster import BlockingEmbeddedCluster
from streamclient.sync.portal import get_loop_thread


@pytest.fixture
def produce(kafka_cluster_sync: BlockingEmbeddedCluster) -> Produce:
    """``produce(topic, partition, count)`` on the embedded cluster (see ``producing``)."""
    bootstrap = kafka_cluster_sync.bootstrap_servers

    def produce(topic: str, partition: int, count: int) -> list[int]:
        return get_loop_thread().call(produce_async, bootstrap, topic, partition, count)

    return produce
