"""KafkaAdminClient: each call one hop to the shared loop, results and errors as the async
client's."""

from __future__ import annotations

import inspect

import pytest
from tests.sync.producing import Produce

from streamclient.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from streamclient.broker.cluster import BlockingEmbeddedCluster
from streamclient.errors import IllegalStateError, TopicAlreadyExistsError
from streamclient.structs import OffsetAndMetadata, TopicPartition
from streamclient.sync import KafkaAdminClient, KafkaConsumer
from streamclient.sync.portal import get_loop_thread


def test_topics_groups_and_errors(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    loop = get_loop_thread()
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        hops = loop.hops
        response = admin.create_topics([NewTopic("a", 2, 1), NewTopic("b", 1, 1)])
        assert loop.hops == hops + 1
        assert [t.error_code for t in response.topics] == [0, 0]
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("a", 2, 1)], raise_on_error=True)
        admin.create_partitions({"b": NewPartitions(3)})
        described = {d["topic"]: len(d["partitions"]) for d in admin.describe_topics(["a", "b"])}
        assert described == {"a": 2, "b": 3}
        assert {"a", "b"} <= set(admin.list_topics())

        produce("a", 0, 4)
        with KafkaConsumer("a", bootstrap_servers=bootstrap, group_id="ga",
                           auto_offset_reset="earliest", enable_auto_commit=False) as c:
            while sum(len(b) for b in c.poll(timeout_ms=500).values()) == 0:
                pass
            c.commit({TopicPartition("a", 0): 3})
        offsets = admin.list_consumer_group_offsets("ga")
        assert offsets[TopicPartition("a", 0)] == OffsetAndMetadata(3, "")
        assert ("ga", "consumer") in admin.list_consumer_groups()
        assert admin.delete_consumer_groups(["ga"]) == {"ga": None}

        admin.delete_topics(["b"])
        assert "b" not in admin.list_topics()
    with pytest.raises(IllegalStateError):
        admin.list_topics()


def test_every_async_method_has_a_blocking_twin() -> None:
    public = {name for name, member in inspect.getmembers(AIOKafkaAdminClient)
              if inspect.iscoroutinefunction(member) and not name.startswith("_")}
    public -= {"start"}  # the constructor starts the blocking client
    for name in public:
        twin = getattr(KafkaAdminClient, name)
        assert inspect.signature(twin) == inspect.signature(getattr(AIOKafkaAdminClient, name))
        assert not inspect.iscoroutinefunction(twin)
