"""AIOKafkaAdminClient against Tansu, an independent broker (asyncio and trio).

Tansu's DescribeConfigs answers no entries and its DeleteRecords panics
(reference/tansu.md), so neither is exercised here.  APIs it does not advertise
(CreatePartitions, AlterConfigs, OffsetDelete, ListTransactions) must fail at once with
``UnsupportedVersionError`` naming the API, not hang or send something it cannot read.
"""

from __future__ import annotations

import anyio
import pytest

from streamclient.admin import AIOKafkaAdminClient, ConfigResource, NewPartitions, NewTopic
from streamclient.errors import TopicAlreadyExistsError, UnsupportedVersionError
from streamclient.structs import OffsetAndMetadata, TopicPartition

pytestmark = pytest.mark.anyio

BOUND_S = 30
TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3


def admin_for(bootstrap: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="streamclient-interop",
                               request_timeout_ms=15_000, retry_backoff_ms=20)


async def test_topic_lifecycle(tansu_bootstrap: str, topic_name: str) -> None:
    other = f"{topic_name}-b"
    with anyio.fail_after(BOUND_S):
        async with admin_for(tansu_bootstrap) as admin:
            response = await admin.create_topics([NewTopic(topic_name, 3, 1),
                                                  NewTopic(other, 1, 1)])
            assert [(t.name, t.error_code) for t in response.topics] == [(topic_name, 0),
                                                                          (other, 0)]
            again = await admin.create_topics([NewTopic(topic_name, 3, 1)])
            assert [t.error_code for t in again.topics] == [TOPIC_ALREADY_EXISTS]
            with pytest.raises(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic_name, 3, 1)], raise_on_error=True)

            assert {topic_name, other} <= set(await admin.list_topics())
            described = {d.name: d for d in await admin.describe_topics([topic_name, other])}
            assert [p.partition for p in described[topic_name].partitions] == [0, 1, 2]
            assert described[topic_name]["partitions"][0]["leader"] >= 0
            assert len(described[other].partitions) == 1

            deleted = await admin.delete_topics([other])
            assert [(r.name, r.error_code) for r in deleted.responses] == [(other, 0)]
            assert other not in await admin.list_topics()
            [gone] = await admin.describe_topics([other])
            assert gone.error_code == UNKNOWN_TOPIC_OR_PARTITION


async def test_describe_cluster(tansu_bootstrap: str) -> None:
    with anyio.fail_after(BOUND_S):
        async with admin_for(tansu_bootstrap) as admin:
            cluster = await admin.describe_cluster()
    [broker] = cluster["brokers"]
    assert f"{broker['host']}:{broker['port']}" == tansu_bootstrap
    assert cluster["cluster_id"]


async def test_unadvertised_apis_fail_clearly(tansu_bootstrap: str, topic_name: str) -> None:
    tp = TopicPartition(topic_name, 0)
    with anyio.fail_after(BOUND_S):
        async with admin_for(tansu_bootstrap) as admin:
            await admin.create_topics([NewTopic(topic_name, 1, 1)], raise_on_error=True)
            with pytest.raises(UnsupportedVersionError, match="CreatePartitions"):
                await admin.create_partitions({topic_name: NewPartitions(2)})
            with pytest.raises(UnsupportedVersionError, match="AlterConfigs"):
                await admin.alter_configs(
                    [ConfigResource("topic", topic_name, {"retention.ms": "1000"})])
            with pytest.raises(UnsupportedVersionError, match="OffsetDelete"):
                await admin.delete_consumer_group_offsets("tansu-group", [tp])
            with pytest.raises(UnsupportedVersionError, match="ListTransactions"):
                await admin.list_transactions()


async def test_group_offsets(tansu_bootstrap: str, topic_name: str) -> None:
    group = f"{topic_name}-group"
    tp = TopicPartition(topic_name, 0)
    with anyio.fail_after(BOUND_S):
        async with admin_for(tansu_bootstrap) as admin:
            await admin.create_topics([NewTopic(topic_name, 1, 1)], raise_on_error=True)
            assert await admin.find_coordinator(group) >= 0
            assert await admin.alter_consumer_group_offsets(
                group, {tp: OffsetAndMetadata(3, "m")}) == {tp: None}
            committed = await admin.list_consumer_group_offsets(group, partitions=[tp])
            assert committed[tp].offset == 3
