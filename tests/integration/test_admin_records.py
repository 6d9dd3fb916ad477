"""AIOKafkaAdminClient calls served by partition leaders, and transactions, against a
3-node EmbeddedCluster (asyncio and trio): delete_records moving the log start offset,
list_offsets by every spec, describe_producers, and list / describe transactions after a
confluent-kafka transactional producer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from streamclient.admin import (
    AIOKafkaAdminClient,
    ListOffsetsResultInfo,
    NewTopic,
    OffsetSpec,
    RecordsToDelete,
)
from streamclient.broker import EmbeddedCluster
from streamclient.errors import (
    IllegalArgumentError,
    OffsetOutOfRangeError,
    TransactionalIdNotFoundError,
    UnknownTopicOrPartitionError,
)
from streamclient.protocol.messages.delete_records import DeleteRecordsRequest
from streamclient.protocol.messages.list_offsets import ListOffsetsRequest
from streamclient.structs import TopicPartition

pytestmark = [pytest.mark.anyio, pytest.mark.kafka_cluster(3)]

BOUND_S = 60
TOPIC = "log"
PARTITIONS = 3
PER_PARTITION = 10
BASE_TS = 1_700_000_000_000
NOT_LEADER_OR_FOLLOWER = 6


@pytest.fixture
async def admin(kafka_cluster: EmbeddedCluster) -> AsyncIterator[AIOKafkaAdminClient]:
    async with AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers,
                                   request_timeout_ms=10_000, retry_backoff_ms=10) as client:
        await client.create_topics([NewTopic(TOPIC, PARTITIONS, 2)], raise_on_error=True)
        yield client


def produce(bootstrap: str) -> None:
    """PER_PARTITION records per partition; record i has timestamp BASE_TS + 10 * i,
    except the next-to-last, which has the largest (for the max-timestamp spec)."""
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            ts = BASE_TS + (10_000 if i == PER_PARTITION - 2 else 10 * i)
            producer.produce(TOPIC, value=b"%d-%d" % (p, i), partition=p, timestamp=ts)
    assert producer.flush(BOUND_S / 2) == 0


async def test_delete_records_moves_the_log_start(admin: AIOKafkaAdminClient,
                                                  kafka_cluster: EmbeddedCluster) -> None:
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    observed = kafka_cluster.faults.observe(DeleteRecordsRequest)
    with anyio.fail_after(BOUND_S):
        await anyio.to_thread.run_sync(produce, kafka_cluster.bootstrap_servers)
        low = await admin.delete_records({tps[0]: RecordsToDelete(4), tps[1]: 7,
                                          tps[2]: RecordsToDelete(-1)})
        assert low == {tps[0]: 4, tps[1]: 7, tps[2]: PER_PARTITION}
        for tp in tps:
            log = kafka_cluster.state.logs.partition(tp.topic, tp.partition)
            assert log is not None and log.log_start_offset == low[tp]
        earliest = await admin.list_offsets(dict.fromkeys(tps, "earliest"))
        assert {tp: r.offset for tp, r in earliest.items()} == low

        with pytest.raises(OffsetOutOfRangeError):
            await admin.delete_records({tps[0]: RecordsToDelete(PER_PARTITION + 5)})
        with pytest.raises(UnknownTopicOrPartitionError):
            await admin.delete_records({TopicPartition("missing", 0): RecordsToDelete(1)})
        with pytest.raises(UnknownTopicOrPartitionError):
            await admin.delete_records({TopicPartition(TOPIC, 9): RecordsToDelete(1)})
    # one request per leader, each naming only the partitions it leads
    first = observed.requests[:len({kafka_cluster.state.topics[TOPIC].partitions[p].leader
                                    for p in range(PARTITIONS)})]
    for request in first:
        for topic in request.request.topics:
            for part in topic.partitions:
                leader = kafka_cluster.state.topics[TOPIC].partitions[part.partition_index].leader
                assert leader == request.node_id


async def test_list_offsets_by_spec(admin: AIOKafkaAdminClient,
                                    kafka_cluster: EmbeddedCluster) -> None:
    tp = TopicPartition(TOPIC, 1)
    with anyio.fail_after(BOUND_S):
        await anyio.to_thread.run_sync(produce, kafka_cluster.bootstrap_servers)
        found = await admin.list_offsets({
            TopicPartition(TOPIC, 0): OffsetSpec.earliest(),
            tp: "latest",
            TopicPartition(TOPIC, 2): OffsetSpec.max_timestamp(),
        })
        assert found[TopicPartition(TOPIC, 0)].offset == 0
        assert found[tp].offset == PER_PARTITION
        assert found[TopicPartition(TOPIC, 2)] == ListOffsetsResultInfo(
            PER_PARTITION - 2, BASE_TS + 10_000, found[TopicPartition(TOPIC, 2)].leader_epoch)
        assert found[tp].leader_epoch is not None

        by_time = await admin.list_offsets({tp: BASE_TS + 35})
        assert (by_time[tp].offset, by_time[tp].timestamp) == (4, BASE_TS + 40)
        after_all = await admin.list_offsets({tp: OffsetSpec.for_timestamp(BASE_TS + 99_999)})
        assert after_all[tp].offset == -1
        committed_view = await admin.list_offsets({tp: "latest"},
                                                  isolation_level="read_committed")
        assert committed_view[tp].offset == PER_PARTITION
    with pytest.raises(IllegalArgumentError, match="isolation_level"):
        await admin.list_offsets({tp: "latest"}, isolation_level="dirty")
    with pytest.raises(IllegalArgumentError, match="offset spec"):
        await admin.list_offsets({tp: "soon"})


async def test_list_offsets_follows_a_moved_leader(admin: AIOKafkaAdminClient,
                                                   kafka_cluster: EmbeddedCluster) -> None:
    tp = TopicPartition(TOPIC, 0)
    observed = kafka_cluster.faults.observe(ListOffsetsRequest)
    with anyio.fail_after(BOUND_S):
        await anyio.to_thread.run_sync(produce, kafka_cluster.bootstrap_servers)
        assert (await admin.list_offsets({tp: "latest"}))[tp].offset == PER_PARTITION
        old = kafka_cluster.state.topics[TOPIC].partitions[0].leader
        new = next(n for n in kafka_cluster.state.topics[TOPIC].partitions[0].replicas
                   if n != old)
        kafka_cluster.move_leader(TOPIC, 0, new)
        # the admin's metadata still names the old leader, which refuses
        assert (await admin.list_offsets({tp: "latest"}))[tp].offset == PER_PARTITION
    nodes = [r.node_id for r in observed.requests]
    assert nodes == [old, old, new]


async def test_transactions_and_producers(admin: AIOKafkaAdminClient,
                                          kafka_cluster: EmbeddedCluster) -> None:
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers,
                            "transactional.id": "admin-txn", "linger.ms": 5})
    tp = TopicPartition(TOPIC, 1)
    with anyio.fail_after(BOUND_S):
        await anyio.to_thread.run_sync(producer.init_transactions, BOUND_S / 2)
        producer.begin_transaction()
        producer.produce(TOPIC, value=b"in-flight", partition=1)
        assert await anyio.to_thread.run_sync(producer.flush, BOUND_S / 2) == 0

        [listing] = await admin.list_transactions()
        assert (listing.transactional_id, listing.state) == ("admin-txn", "Ongoing")
        assert listing.coordinator_id == await admin.find_coordinator("admin-txn", 1)
        assert await admin.list_transactions(states=["CompleteCommit"]) == []
        assert await admin.list_transactions(producer_ids=[listing.producer_id]) == [listing]

        described = (await admin.describe_transactions(["admin-txn"]))["admin-txn"]
        assert (described.state, described.producer_id) == ("Ongoing", listing.producer_id)
        assert described.coordinator_id == listing.coordinator_id
        assert described.topic_partitions == frozenset({tp})
        assert described.transaction_start_time_ms is not None

        producers = await admin.describe_producers([tp, TopicPartition(TOPIC, 2)])
        [state] = producers[tp]
        assert state.producer_id == listing.producer_id
        assert state.current_transaction_start_offset == 0
        assert producers[TopicPartition(TOPIC, 2)] == []
        # the open transaction holds the last stable offset back
        assert (await admin.list_offsets({tp: "latest"}, isolation_level="read_committed")
                )[tp].offset == 0

        await anyio.to_thread.run_sync(producer.commit_transaction, BOUND_S / 2)
        described = (await admin.describe_transactions(["admin-txn"]))["admin-txn"]
        assert described.state == "CompleteCommit"
        assert described.topic_partitions == frozenset()
        [state] = (await admin.describe_producers([tp]))[tp]
        assert state.current_transaction_start_offset is None
        with pytest.raises(TransactionalIdNotFoundError, match="nobody"):
            await admin.describe_transactions(["nobody"])
