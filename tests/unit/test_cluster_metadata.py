"""ClusterMetadata: the snapshot, Kafka's update rules and refresh timing (no I/O, no clock)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.cluster.metadata import ClusterMetadata, Node
from streamclient.protocol.messages.metadata import MetadataResponse
from streamclient.protocol.messages.produce import ProduceResponse
from streamclient.structs import TopicPartition

Broker = MetadataResponse.MetadataResponseBroker
Topic = MetadataResponse.MetadataResponseTopic
Partition = MetadataResponse.MetadataResponseTopic.MetadataResponsePartition

TOPIC_IDS: dict[str, uuid.UUID] = {}


def topic_id(name: str) -> uuid.UUID:
    return TOPIC_IDS.setdefault(name, uuid.uuid4())


def part(index: int, leader: int, epoch: int = 0, *, error: int = 0,
         replicas: tuple[int, ...] = (0, 1, 2), isr: tuple[int, ...] | None = None,
         offline: tuple[int, ...] = ()) -> Any:
    return Partition(error_code=error, partition_index=index, leader_id=leader,
                     leader_epoch=epoch, replica_nodes=list(replicas),
                     isr_nodes=list(replicas if isr is None else isr),
                     offline_replicas=list(offline))


def topic(name: str, *partitions: Any, error: int = 0, internal: bool = False,
          tid: uuid.UUID | None = None) -> Any:
    return Topic(error_code=error, name=name, topic_id=tid or topic_id(name),
                 is_internal=internal, partitions=list(partitions))


def response(*topics: Any, nodes: tuple[int, ...] = (0, 1, 2), controller: int = 0,
             cluster_id: str | None = "c1") -> Any:
    return MetadataResponse(
        brokers=[Broker(node_id=n, host=f"b{n}", port=9000 + n, rack=f"r{n % 2}")
                 for n in nodes],
        cluster_id=cluster_id, controller_id=controller, topics=list(topics))


def make(**kwargs: Any) -> ClusterMetadata:
    kwargs.setdefault("random_source", lambda: 0.5)  # no jitter: exact timings
    return ClusterMetadata(**kwargs)


TP0 = TopicPartition("t", 0)


# --- the snapshot -----------------------------------------------------------------------


def test_update_builds_snapshot() -> None:
    md = make()
    assert md.update(response(
        topic("t", part(0, 1, 5), part(1, -1, 3, error=5), part(2, 2, offline=(0,))),
        topic("__consumer_offsets", part(0, 0), internal=True),
        topic("denied", error=29), topic("bad name!", error=17),
        controller=2), now_ms=1000)
    assert md.version == 1
    assert md.cluster_id == "c1" and md.controller_id == 2
    assert md.brokers() == [Node(0, "b0", 9000, "r0"), Node(1, "b1", 9001, "r1"),
                            Node(2, "b2", 9002, "r0")]
    assert md.broker(1) == Node(1, "b1", 9001, "r1") and md.broker(7) is None
    assert md.topics() == {"t", "__consumer_offsets"}
    assert md.topics(exclude_internal=True) == {"t"}
    assert md.internal_topics() == {"__consumer_offsets"}
    assert md.topic_id("t") == topic_id("t")
    assert md.partitions_for_topic("t") == {0, 1, 2}
    assert md.available_partitions_for_topic("t") == {0, 2}
    assert md.partitions_for_topic("missing") is None
    assert md.available_partitions_for_topic("missing") is None
    assert md.leader_for(TP0) == 1
    assert md.leader_for(TopicPartition("t", 1)) == -1
    assert md.leader_for(TopicPartition("t", 9)) is None
    assert md.leader_epoch_for(TP0) == 5
    info = md.partition(TopicPartition("t", 2))
    assert info is not None and info.offline_replicas == (0,) and info.replicas == (0, 1, 2)
    assert md.partitions_for_broker(1) == {TP0}
    assert md.partitions_for_broker(0) == {TopicPartition("__consumer_offsets", 0)}
    assert md.partitions_for_broker(5) is None
    assert md.unauthorized_topics == {"denied"}
    assert md.invalid_topics == {"bad name!"}
    assert md.topic_error("denied") == 29 and md.topic_error("t") is None


def test_no_brokers_is_a_failed_update() -> None:
    md = make(retry_backoff_ms=100)
    md.update(response(topic("t", part(0, 1))), now_ms=0)
    assert not md.update(response(topic("t", part(0, 2)), nodes=()), now_ms=50)
    assert md.version == 1 and md.leader_for(TP0) == 1
    # a failure backs the next attempt off
    md.request_update()
    assert md.time_to_next_update(50) == 100
    assert md.time_to_next_update(150) == 0


def test_controller_minus_one_is_none() -> None:
    md = make()
    md.update(response(controller=-1), now_ms=0)
    assert md.controller_id is None


# --- KIP-320 leader epochs ------------------------------------------------------------


def test_older_leader_epoch_is_ignored() -> None:
    md = make()
    md.update(response(topic("t", part(0, 1, epoch=7), part(1, 2, epoch=3))), now_ms=0)
    # a broker that missed the change answers with the old leader (epoch 6) for p0
    md.update(response(topic("t", part(0, 0, epoch=6), part(1, 0, epoch=4))), now_ms=10)
    assert md.leader_for(TP0) == 1 and md.leader_epoch_for(TP0) == 7
    assert md.leader_for(TopicPartition("t", 1)) == 0
    assert md.leader_epoch_for(TopicPartition("t", 1)) == 4
    # the same epoch is accepted (ISR changes keep the epoch)
    md.update(response(topic("t", part(0, 1, epoch=7, isr=(1,)), part(1, 0, epoch=4))),
              now_ms=20)
    info = md.partition(TP0)
    assert info is not None and info.isr == (1,)


def test_epochs_unknown_are_accepted() -> None:
    md = make()
    md.update(response(topic("t", part(0, 1, epoch=7))), now_ms=0)
    # Metadata < v7 reports no epoch: nothing to compare, take it
    md.update(response(topic("t", part(0, 2, epoch=-1))), now_ms=10)
    assert md.leader_for(TP0) == 2


def test_recreated_topic_forgets_old_epochs() -> None:
    md = make()
    md.update(response(topic("t", part(0, 1, epoch=9))), now_ms=0)
    md.update(response(topic("t", part(0, 2, epoch=0), tid=uuid.uuid4())), now_ms=10)
    assert md.leader_for(TP0) == 2 and md.leader_epoch_for(TP0) == 0


def test_recreated_topic_after_an_error_gap_starts_epochs_afresh() -> None:
    md = make()
    md.add_topics(["t"])
    md.update(response(topic("t", part(0, 1, epoch=9))), now_ms=0)
    md.update(response(topic("t", error=3)), now_ms=10)  # deleted
    assert md.partitions_for_topic("t") is None
    new_id = uuid.uuid4()
    md.update(response(topic("t", part(0, 2, epoch=0), tid=new_id)), now_ms=20)
    md.update(response(topic("t", part(0, 0, epoch=1), tid=new_id)), now_ms=30)
    assert md.leader_for(TP0) == 0 and md.leader_epoch_for(TP0) == 1


def test_last_seen_epoch_from_elsewhere_requests_update_and_guards_stale_metadata() -> None:
    md = make()
    md.update(response(topic("t", part(0, 1, epoch=3))), now_ms=0)
    assert not md.update_requested
    assert not md.update_last_seen_epoch_if_newer(TP0, 3)
    assert md.update_last_seen_epoch_if_newer(TP0, 5)
    assert md.update_requested
    # a refresh still at epoch 4 keeps the cached partition
    md.update(response(topic("t", part(0, 2, epoch=4))), now_ms=10)
    assert md.leader_for(TP0) == 1
    md.update(response(topic("t", part(0, 2, epoch=5))), now_ms=20)
    assert md.leader_for(TP0) == 2 and md.last_seen_leader_epoch(TP0) == 5


# --- topic errors and topics of interest --------------------------------------------


@pytest.mark.parametrize("code", [3, 5])
def test_missing_topic_keeps_refreshing_with_growing_backoff(code: int) -> None:
    md = make(retry_backoff_ms=100, retry_backoff_max_ms=1000, metadata_max_age_ms=60_000)
    md.add_topics(["new"])
    assert md.time_to_next_update(0) == 0
    md.update(response(topic("new", error=code)), now_ms=0)
    assert md.partitions_for_topic("new") is None and md.topic_error("new") == code
    assert md.update_requested
    assert md.time_to_next_update(0) == 100
    assert md.time_to_next_update(99) == 1
    md.update(response(topic("new", error=code)), now_ms=100)
    assert md.time_to_next_update(100) == 200  # exponential (KIP-580)
    md.update(response(topic("new", part(0, 1))), now_ms=300)
    assert not md.update_requested
    assert md.time_to_next_update(300) == 60_000
    assert md.partitions_for_topic("new") == {0}


def test_partition_without_leader_keeps_topic_refreshing() -> None:
    md = make(retry_backoff_ms=100)
    md.add_topics(["t"])
    md.update(response(topic("t", part(0, -1, error=5))), now_ms=0)
    assert md.partitions_for_topic("t") == {0}
    assert md.available_partitions_for_topic("t") == set()
    assert md.time_to_next_update(0) == 100


def test_missing_topic_no_one_wants_does_not_force_refresh() -> None:
    md = make(metadata_max_age_ms=5000)
    md.update(response(topic("other", error=3)), now_ms=0, requested_topics=["other"])
    assert not md.update_requested
    assert md.time_to_next_update(0) == 5000


def test_unauthorized_topic_is_not_retried() -> None:
    md = make(metadata_max_age_ms=5000)
    md.add_topics(["denied"])
    md.update(response(topic("denied", error=29)), now_ms=0)
    assert md.unauthorized_topics == {"denied"}
    assert md.time_to_next_update(0) == 5000


def test_topics_of_interest() -> None:
    md = make()
    md.update(response(topic("a", part(0, 1))), now_ms=0, requested_topics=["a"])
    assert md.request_topics() == []
    assert md.add_topics(["b", "a"])
    assert not md.add_topics(["b"])
    assert md.topics_of_interest == {"a", "b"}
    assert md.request_topics() == ["a", "b"]
    assert md.set_topics(["c"])
    assert not md.set_topics(["c"])
    assert md.request_topics() == ["c"]
    md.set_need_all_topics(True)
    assert md.request_topics() is None
    md.set_need_all_topics(False)
    md.remove_topics(["c"])
    assert md.request_topics() == []
    with pytest.raises(ValueError):
        md.add_topics([""])


def test_adding_a_known_topic_needs_no_update() -> None:
    md = make(metadata_max_age_ms=5000)
    md.update(response(topic("a", part(0, 1))), now_ms=0)  # asked for all
    md.add_topics(["a"])
    assert not md.update_requested
    md.add_topics(["b"])
    assert md.update_requested


def test_partial_update_keeps_other_topics_while_wanted() -> None:
    md = make()
    md.set_topics(["a", "b"])
    md.update(response(topic("a", part(0, 1)), topic("b", part(0, 2))), now_ms=0,
              requested_topics=["a", "b"])
    # a request for "b" alone leaves "a" as it was
    md.update(response(topic("b", part(0, 0))), now_ms=10, requested_topics=["b"])
    assert md.leader_for(TopicPartition("a", 0)) == 1
    assert md.leader_for(TopicPartition("b", 0)) == 0
    # once nobody wants "a", the next update drops it
    md.set_topics(["b"])
    md.update(response(topic("b", part(0, 0))), now_ms=20, requested_topics=["b"])
    assert md.topics() == {"b"}


def test_full_update_drops_deleted_topics() -> None:
    md = make()
    md.set_need_all_topics(True)
    md.update(response(topic("a", part(0, 1)), topic("b", part(0, 1))), now_ms=0)
    md.update(response(topic("b", part(0, 1))), now_ms=10)
    assert md.topics() == {"b"}


# --- timing ---------------------------------------------------------------------------


def test_max_age_and_requested_updates() -> None:
    md = make(metadata_max_age_ms=1000, retry_backoff_ms=100)
    assert md.time_to_next_update(0) == 0  # nothing known yet
    md.update(response(), now_ms=500)
    assert md.time_to_next_update(500) == 1000
    assert md.time_to_next_update(1400) == 100
    assert md.time_to_next_update(1600) == 0
    version = md.request_update()
    assert version == md.version
    # a requested update after a successful one is not held back
    assert md.time_to_next_update(600) == 0


def test_failed_updates_back_off_exponentially_then_reset() -> None:
    md = make(retry_backoff_ms=100, retry_backoff_max_ms=350)
    md.failed_update(0)
    assert md.time_to_next_update(0) == 100
    md.failed_update(100)
    assert md.time_to_next_update(100) == 200
    md.failed_update(300)
    assert md.time_to_next_update(300) == 350  # capped
    md.update(response(), now_ms=700)
    md.request_update()
    assert md.time_to_next_update(700) == 0


def test_jitter_spreads_backoff() -> None:
    md = ClusterMetadata(retry_backoff_ms=100, retry_backoff_max_ms=1000,
                         random_source=lambda: 1.0)
    md.failed_update(0)
    assert md.time_to_next_update(0) == 120


# --- KIP-951 leader hints ----------------------------------------------------------------


def test_leader_hint_applies_newer_epoch_only() -> None:
    md = make()
    md.update(response(topic("t", part(0, 1, epoch=4), part(1, 1, epoch=4))), now_ms=0)
    seen: list[int] = []
    md.add_listener(lambda m: seen.append(m.version))
    applied = md.update_partition_leaders({TP0: (2, 5), TopicPartition("t", 1): (2, 4)})
    assert applied == {TP0}
    assert md.leader_for(TP0) == 2 and md.leader_epoch_for(TP0) == 5
    assert md.leader_for(TopicPartition("t", 1)) == 1
    assert md.partitions_for_broker(2) == {TP0}
    assert seen == [1]
    # a later refresh at the older epoch does not undo it
    md.update(response(topic("t", part(0, 1, epoch=4), part(1, 1, epoch=4))), now_ms=10)
    assert md.leader_for(TP0) == 2


def test_leader_hint_with_new_node_endpoint() -> None:
    md = make()
    md.update(response(topic("t", part(0, 1, epoch=1)), nodes=(0, 1)), now_ms=0)
    # an unknown leader without an endpoint cannot be used
    assert md.update_partition_leaders({TP0: (3, 2)}) == set()
    endpoint = ProduceResponse.NodeEndpoint(node_id=3, host="b3", port=9003, rack=None)
    assert md.update_partition_leaders({TP0: (3, 2)}, [endpoint]) == {TP0}
    assert md.broker(3) == Node(3, "b3", 9003, None)
    assert md.leader_for(TP0) == 3
    # unknown partitions and missing hints (-1) are skipped
    assert md.update_partition_leaders({TopicPartition("x", 0): (1, 9), TP0: (-1, -1)}) == set()


# --- listeners ------------------------------------------------------------------------


def test_listeners_hear_changes_only_and_survive_errors(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    md = make()
    heard: list[set[str]] = []

    def broken(_md: ClusterMetadata) -> None:
        raise RuntimeError("listener bug")

    md.add_listener(broken)
    md.add_listener(lambda m: heard.append(m.topics()))
    md.update(response(topic("a", part(0, 1))), now_ms=0)
    md.update(response(topic("a", part(0, 1))), now_ms=10)  # no change
    md.update(response(topic("a", part(0, 1)), topic("b", part(0, 0))), now_ms=20)
    assert heard == [{"a"}, {"a", "b"}]
    assert "listener bug" in caplog.text
    md.remove_listener(broken)
    md.update(response(), now_ms=30)
    assert heard[-1] == set()


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        ClusterMetadata(metadata_max_age_ms=-1)
    with pytest.raises(ValueError):
        ClusterMetadata(retry_backoff_ms=-1)


# --- property: epochs never go backwards --------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(-1, 2), st.integers(-1, 6)),
                         min_size=2, max_size=2), min_size=1, max_size=12))
def test_accepted_leader_epochs_never_decrease(
        updates: list[list[tuple[int, int]]]) -> None:
    md = make()
    md.add_topics(["t"])
    best = {0: -1, 1: -1}
    for now, parts in enumerate(updates):
        md.update(response(topic("t", *(part(i, leader, epoch)
                                         for i, (leader, epoch) in enumerate(parts)))),
                  now_ms=now)
        for i, (leader, epoch) in enumerate(parts):
            tp = TopicPartition("t", i)
            got = md.partition(tp)
            assert got is not None
            if epoch >= best[i]:
                # the newest (or an epoch-less) answer is taken as it is
                assert (got.leader, got.leader_epoch) == (leader, epoch)
            else:
                # an older epoch is refused: what stays is newer, or carried no epoch
                assert got.leader_epoch == -1 or got.leader_epoch >= best[i]
            if epoch >= 0:
                best[i] = max(best[i], epoch)
            assert md.last_seen_leader_epoch(tp) == (best[i] if best[i] >= 0 else None)
