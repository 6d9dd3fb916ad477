"""BrokerConnection against Tansu, an independent broker: negotiation, pipelining, versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from streamclient.errors import UnsupportedVersionError
from streamclient.protocol.messages.fetch import FetchRequest
from streamclient.protocol.messages.metadata import MetadataRequest
from streamclient.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from streamclient.protocol.messages.produce import ProduceRequest
from streamclient.protocol.records import Compression, RecordBatchBuilder

if TYPE_CHECKING:
    from conftest import TansuWire

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_negotiates_versions_with_tansu(tansu: TansuWire) -> None:
    async with tansu.connection() as conn:
        advertised = conn.broker_api_versions
        # what Tansu 0.6 advertises (see /work/shared/reference/tansu.md)
        assert advertised[ProduceRequest.API_KEY] == (0, 11)
        assert advertised[FetchRequest.API_KEY] == (0, 17)
        assert conn.version_for(ProduceRequest) == min(11, ProduceRequest.VALID_VERSIONS[1])
        assert conn.version_for(FetchRequest) == min(17, FetchRequest.VALID_VERSIONS[1])
        assert conn.version_for(MetadataRequest) == min(12, MetadataRequest.VALID_VERSIONS[1])
        # Tansu does not advertise OffsetForLeaderEpoch at all
        assert OffsetForLeaderEpochRequest.API_KEY not in advertised
        with pytest.raises(UnsupportedVersionError):
            await conn.send(OffsetForLeaderEpochRequest())


async def test_pipelined_metadata_requests(tansu: TansuWire, topic_name: str) -> None:
    async with tansu.connection() as conn:
        await tansu.create_topic(conn, topic_name, partitions=3)
        names: dict[int, list[str]] = {}

        async def call(i: int) -> None:
            request = MetadataRequest(
                topics=[MetadataRequest.MetadataRequestTopic(name=topic_name)],
                allow_auto_topic_creation=False)
            response = await conn.send(request)
            names[i] = [t.name for t in response.topics]
            assert len(response.topics[0].partitions) == 3

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(call, i)
        assert names == {i: [topic_name] for i in range(20)}
        assert conn.in_flight == 0


@pytest.mark.parametrize(
    ("produce_version", "fetch_version"),
    [(None, 4), (None, 11), (None, 12), (None, 13), (None, None), (3, None), (8, 12), (9, 4)],
)
async def test_produce_and_fetch_at_pinned_versions(
        tansu: TansuWire, topic_name: str, produce_version: int | None, fetch_version: int | None) -> None:
    """Old (non-flexible) and flexible request versions both work against Tansu.

    Fetch v4 and v11 are non-flexible with topic names, v12 is the first flexible one, v13+
    addresses topics by id; Produce v9 is the first flexible Produce.  ``None`` means the
    negotiated (highest common) version.
    """
    builder = RecordBatchBuilder(compression=Compression.NONE)
    for i in range(3):
        builder.append(1_700_000_000_000 + i, f"k{i}".encode(), f"v{i}".encode(), [])
    async with tansu.connection() as conn:
        await tansu.create_topic(conn, topic_name)
        base = await tansu.produce(conn, topic_name, 0, builder.build(), version=produce_version)
        assert base == 0
        records = await tansu.fetch_records(conn, topic_name, 0, 3, version=fetch_version)
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, f"k{i}".encode(), f"v{i}".encode()) for i in range(3)]
