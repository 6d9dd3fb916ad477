"""AIOKafkaAdminClient group calls against a 3-node EmbeddedCluster (asyncio and trio),
with a real consumer group made by confluent-kafka consumers: list / describe / delete
groups, find_coordinator, committed offsets listed / altered / deleted, and the
NOT_COORDINATOR retry."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from streamclient.admin import AIOKafkaAdminClient, NewTopic
from streamclient.broker import EmbeddedCluster
from streamclient.errors import (
    GroupIdNotFound,
    IllegalArgumentError,
    NonEmptyGroup,
    NotCoordinatorForGroupError,
    UnknownMemberIdError,
)
from streamclient.protocol.messages.describe_groups import DescribeGroupsRequest
from streamclient.protocol.messages.find_coordinator import FindCoordinatorRequest
from streamclient.protocol.messages.offset_fetch import OffsetFetchRequest
from streamclient.structs import OffsetAndMetadata, TopicPartition

pytestmark = [pytest.mark.anyio, pytest.mark.kafka_cluster(3, offsets_topic_num_partitions=6)]

BOUND_S = 60
TOPIC = "events"
PARTITIONS = 4
GROUP = "readers"
NOT_COORDINATOR = 16
GROUP_SUBSCRIBED_TO_TOPIC = 86


@pytest.fixture
async def admin(kafka_cluster: EmbeddedCluster) -> AsyncIterator[AIOKafkaAdminClient]:
    async with AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers,
                                   request_timeout_ms=10_000, retry_backoff_ms=10) as client:
        await client.create_topics([NewTopic(TOPIC, PARTITIONS, 2)], raise_on_error=True)
        yield client


class Readers:
    """Two confluent-kafka consumers in one group; every call blocks (run in a thread)."""

    def __init__(self, bootstrap: str) -> None:
        import confluent_kafka as ck

        self.consumers = [ck.Consumer({
            "bootstrap.servers": bootstrap, "group.id": GROUP, "client.id": f"reader-{i}",
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
        }) for i in range(2)]
        for consumer in self.consumers:
            consumer.subscribe([TOPIC])

    def join(self) -> None:
        """Poll both until the group is stable with every partition assigned."""
        deadline = time.monotonic() + BOUND_S / 2
        while True:
            for consumer in self.consumers:
                consumer.poll(0.05)
            sizes = [len(c.assignment()) for c in self.consumers]
            if all(sizes) and sum(sizes) == PARTITIONS:
                return
            assert time.monotonic() < deadline, f"the group did not form: {sizes}"

    def commit(self, offsets: dict[int, int]) -> None:
        import confluent_kafka as ck

        for consumer in self.consumers:
            mine = [ck.TopicPartition(TOPIC, p.partition, offsets[p.partition])
                    for p in consumer.assignment()]
            consumer.commit(offsets=mine, asynchronous=False)

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close()


@pytest.fixture
def readers(kafka_cluster: EmbeddedCluster) -> Iterator[Readers]:
    group = Readers(kafka_cluster.bootstrap_servers)
    try:
        yield group
    finally:
        group.close()


async def test_list_and_describe_a_live_group(admin: AIOKafkaAdminClient,
                                              readers: Readers) -> None:
    with anyio.fail_after(BOUND_S):
        await anyio.to_thread.run_sync(readers.join)
        assert (GROUP, "consumer") in await admin.list_consumer_groups()
        coordinator = await admin.find_coordinator(GROUP)
        on_coordinator = await admin.list_consumer_groups(broker_ids=[coordinator])
        others = [n for n in (0, 1, 2) if n != coordinator]
        assert (GROUP, "consumer") in on_coordinator
        assert (GROUP, "consumer") not in await admin.list_consumer_groups(broker_ids=others)

        [response] = await admin.describe_consumer_groups([GROUP, "nobody"])
        described = {g.group_id: g for g in response.groups}
        live = described[GROUP]
        assert (live.error_code, live.group_state, live.protocol_type) == (
            0, "Stable", "consumer")
        assert sorted(m.client_id for m in live.members) == ["reader-0", "reader-1"]
        # a group nobody made is described as Dead, without an error (Kafka's answer)
        assert described["nobody"].group_state == "Dead"

        [same] = await admin.describe_consumer_groups([GROUP],
                                                      group_coordinator_id=coordinator)
        assert [g.group_id for g in same.groups] == [GROUP]


async def test_offsets_of_a_live_then_empty_group(admin: AIOKafkaAdminClient,
                                                  readers: Readers) -> None:
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    with anyio.fail_after(BOUND_S):
        await anyio.to_thread.run_sync(readers.join)
        await anyio.to_thread.run_sync(readers.commit, {0: 5, 1: 6, 2: 7, 3: 8})
        committed = await admin.list_consumer_group_offsets(GROUP)
        assert {tp: om.offset for tp, om in committed.items()} == dict(
            zip(tps, [5, 6, 7, 8], strict=True))
        some = await admin.list_consumer_group_offsets(GROUP, partitions=tps[:1])
        assert list(some) == tps[:1]

        # a live group refuses changes from outside it
        with pytest.raises(UnknownMemberIdError):
            await admin.alter_consumer_group_offsets(GROUP, {tps[0]: 0})
        errors = await admin.delete_consumer_group_offsets(GROUP, tps[:2],
                                                           raise_on_error=False)
        assert {tp: e.errno for tp, e in errors.items() if e} == {
            tps[0]: GROUP_SUBSCRIBED_TO_TOPIC, tps[1]: GROUP_SUBSCRIBED_TO_TOPIC}
        with pytest.raises(NonEmptyGroup):
            await admin.delete_consumer_groups([GROUP])

        await anyio.to_thread.run_sync(readers.close)
        altered = await admin.alter_consumer_group_offsets(GROUP, {
            tps[0]: OffsetAndMetadata(1, "rewound"), tps[3]: 2})
        assert altered == {tps[0]: None, tps[3]: None}
        committed = await admin.list_consumer_group_offsets(GROUP)
        assert committed[tps[0]] == OffsetAndMetadata(1, "rewound")
        assert committed[tps[3]].offset == 2 and committed[tps[1]].offset == 6

        assert await admin.delete_consumer_group_offsets(GROUP, tps[:2]) == {
            tps[0]: None, tps[1]: None}
        assert sorted(await admin.list_consumer_group_offsets(GROUP)) == tps[2:]

        assert await admin.delete_consumer_groups([GROUP]) == {GROUP: None}
        assert (GROUP, "consumer") not in await admin.list_consumer_groups()
        result = await admin.delete_consumer_groups([GROUP], raise_on_error=False)
        assert isinstance(result[GROUP], GroupIdNotFound)


async def test_not_coordinator_is_looked_up_again(
        admin: AIOKafkaAdminClient, kafka_cluster: EmbeddedCluster) -> None:
    tp = TopicPartition(TOPIC, 0)
    with anyio.fail_after(BOUND_S):
        await admin.alter_consumer_group_offsets("moved", {tp: 3})
        coordinator = await admin.find_coordinator("moved")
        lookups = kafka_cluster.faults.observe(FindCoordinatorRequest)
        described = kafka_cluster.faults.observe(DescribeGroupsRequest)
        fetched = kafka_cluster.faults.observe(OffsetFetchRequest)
        kafka_cluster.faults.control(DescribeGroupsRequest, error=NOT_COORDINATOR, times=1)
        kafka_cluster.faults.control(OffsetFetchRequest, error=NOT_COORDINATOR, times=1)

        [response] = await admin.describe_consumer_groups(["moved"])
        assert [(g.group_id, g.error_code) for g in response.groups] == [("moved", 0)]
        assert await admin.list_consumer_group_offsets("moved") == {
            tp: OffsetAndMetadata(3, "")}
    # each NOT_COORDINATOR made the client forget the coordinator and ask again
    assert len(lookups) == 2
    assert len(described) == 2 and len(fetched) == 2
    assert {r.node_id for r in [*described.requests, *fetched.requests]} == {coordinator}


async def test_named_coordinator_answers_are_final(
        admin: AIOKafkaAdminClient, kafka_cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        coordinator = await admin.find_coordinator("elsewhere")
        wrong = next(n for n in (0, 1, 2) if n != coordinator)
        kafka_cluster.faults.control(DescribeGroupsRequest, error=NOT_COORDINATOR, times=1,
                                     nodes=wrong)
        [response] = await admin.describe_consumer_groups(["elsewhere"],
                                                          group_coordinator_id=wrong)
        assert [g.error_code for g in response.groups] == [NOT_COORDINATOR]
        kafka_cluster.faults.control(DescribeGroupsRequest, error=NOT_COORDINATOR, times=1)
        with pytest.raises(NotCoordinatorForGroupError, match="elsewhere"):
            await admin.describe_consumer_groups(["elsewhere"], group_coordinator_id=wrong,
                                                 raise_on_error=True)


async def test_find_coordinator_and_bad_arguments(admin: AIOKafkaAdminClient,
                                                  kafka_cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        node = await admin.find_coordinator("some-group")
        assert node in (0, 1, 2)
        assert await admin.find_coordinator("some-group", coordinator_type=0) == node
        txn_node = await admin.find_coordinator("some-txn", coordinator_type=1)
        assert txn_node in (0, 1, 2)
    with pytest.raises(IllegalArgumentError, match="coordinator_type"):
        await admin.find_coordinator("g", coordinator_type=7)
    with pytest.raises(TypeError, match="OffsetAndMetadata"):
        await admin.alter_consumer_group_offsets("g", {TopicPartition(TOPIC, 0): "3"})
    with pytest.raises(TypeError, match="TopicPartition"):
        await admin.delete_consumer_group_offsets("g", [(TOPIC, "0")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="list of str"):
        await admin.describe_consumer_groups("g")  # type: ignore[arg-type]
    assert await admin.delete_consumer_groups([]) == {}
