"""ClusterState without sockets: placement, leadership, ISR, configs."""

from __future__ import annotations

import pytest

from streamclient.broker.config import BrokerConfig, validate_topic_configs
from streamclient.broker.log import LogManager
from streamclient.broker.state import ClusterState, ManualClock
from streamclient.errors import BrokerResponseError, KafkaError


def make_state(nodes: int = 3, **config: object) -> ClusterState:
    state = ClusterState(BrokerConfig(**config), clock=ManualClock(1_000))  # type: ignore[arg-type]
    state.logs = LogManager(state)
    for i in range(nodes):
        state.add_node(i, "127.0.0.1", 9000 + i)
    return state


def errno(exc: pytest.ExceptionInfo[BrokerResponseError]) -> int:
    return exc.value.errno


def test_leaders_spread_round_robin_and_replicas_follow() -> None:
    state = make_state()
    meta = state.create_topic("t", 6, 2)
    leaders = [p.leader for p in meta.partitions]
    assert sorted(leaders) == [0, 0, 1, 1, 2, 2]
    for p in meta.partitions:
        assert len(set(p.replicas)) == 2 and p.replicas[0] == p.leader
        assert p.isr == p.replicas and p.leader_epoch == 0
    # the next single-partition topics start on different nodes
    firsts = {state.create_topic(f"single-{i}", 1, 1).partitions[0].leader for i in range(3)}
    assert firsts == {0, 1, 2}


def test_new_partitions_get_a_log_with_the_replication_state() -> None:
    state = make_state()
    meta = state.create_topic("t", 2, 3, {"retention.ms": "100"})
    for p in meta.partitions:
        log = state.logs.partition("t", p.index)
        assert log is not None
        assert log.leader == p.leader and log.isr == tuple(p.isr)
        assert log.config.retention_ms == 100


@pytest.mark.parametrize(("args", "code"), [
    (("", 1, 1), 17),
    (("a" * 250, 1, 1), 17),
    (("..", 1, 1), 17),
    (("t", 0, 1), 37),
    (("t", 1, 0), 38),
    (("t", 1, 4), 38),
    (("__transaction_state", 1, 1), 36),
])
def test_create_topic_errors(args: tuple[str, int, int], code: int) -> None:
    state = make_state()
    state.ensure_internal_topic("__transaction_state")
    with pytest.raises(BrokerResponseError) as exc:
        state.create_topic(*args)
    assert errno(exc) == code


def test_internal_topics_and_defaults() -> None:
    state = make_state(1, offsets_topic_num_partitions=4, num_partitions=3)
    offsets = state.ensure_internal_topic("__consumer_offsets")
    assert offsets.internal and len(offsets.partitions) == 4
    # the configured factor (3) is capped by the one node there is
    assert offsets.replication_factor == 1
    assert offsets.configs["cleanup.policy"] == "compact"
    assert state.ensure_internal_topic("__consumer_offsets") is offsets
    assert len(state.create_topic("d").partitions) == 3
    with pytest.raises(BrokerResponseError) as exc:
        state.delete_topic("__consumer_offsets")
    assert errno(exc) == 73


def test_auto_create_respects_the_broker_setting() -> None:
    on, off = make_state(), make_state(auto_create_topics_enable=False)
    assert on.maybe_auto_create_topic("fresh") is on.topics["fresh"]
    assert on.maybe_auto_create_topic("bad/name") is None
    assert on.maybe_auto_create_topic("__consumer_offsets") is None
    assert off.maybe_auto_create_topic("fresh") is None and "fresh" not in off.topics


def test_stopping_the_leader_moves_leadership_and_bumps_the_epoch() -> None:
    state = make_state()
    meta = state.create_topic("t", 1, 3)
    [part] = meta.partitions
    first = part.leader
    state.set_node_alive(first, False)
    assert part.leader != first and part.leader in part.isr
    assert first not in part.isr and part.leader_epoch == 1
    log = state.logs.partition("t", 0)
    assert log is not None and log.leader == part.leader and log.leader_epoch == 1
    # a follower going down shrinks the ISR but keeps the leader and its epoch
    follower = next(r for r in part.isr if r != part.leader)
    state.set_node_alive(follower, False)
    assert part.isr == [part.leader] and part.leader_epoch == 1
    assert state.controller_id == ({0, 1, 2} - {first, follower}).pop()
    # the last ISR member stays in the ISR when it goes down: the partition is offline
    last = part.leader
    state.set_node_alive(last, False)
    assert (part.leader, part.isr, part.leader_epoch) == (-1, [last], 2)
    assert state.partition_leader("t", 0) is None and state.controller_id == -1
    # the first node back that replicates it takes over
    state.set_node_alive(first, True)
    assert part.leader == first and part.leader_epoch == 3
    assert part.isr == [r for r in part.replicas if r in (first, last)]
    assert part.offline_replicas(state.alive_node_ids()) == [
        r for r in part.replicas if r != first]


def test_move_leader() -> None:
    state = make_state()
    meta = state.create_topic("t", 1, 2)
    [part] = meta.partitions
    other = part.replicas[1]
    state.move_leader("t", 0, other)
    assert (part.leader, part.leader_epoch) == (other, 1)
    state.move_leader("t", 0, other)  # already the leader: nothing changes
    assert part.leader_epoch == 1
    outsider = ({0, 1, 2} - set(part.replicas)).pop()
    with pytest.raises(BrokerResponseError) as exc:
        state.move_leader("t", 0, outsider)
    assert errno(exc) == 39
    state.set_node_alive(part.replicas[0], False)
    with pytest.raises(BrokerResponseError):
        state.move_leader("t", 0, part.replicas[0])
    with pytest.raises(BrokerResponseError):
        state.move_leader("nope", 0, 0)


def test_assignments_are_checked() -> None:
    state = make_state()
    meta = state.create_topic("a", assignments={0: [1, 2], 1: [2, 0]})
    assert [p.replicas for p in meta.partitions] == [[1, 2], [2, 0]]
    for bad in ({0: [1, 1]}, {0: [1], 1: [1, 2]}, {1: [0]}, {0: []}, {0: [9]}):
        with pytest.raises(BrokerResponseError) as exc:
            state.create_topic("b", assignments=bad)
        assert errno(exc) == 39


def test_create_partitions_keeps_the_factor() -> None:
    state = make_state()
    state.create_topic("t", 1, 2)
    meta = state.create_partitions("t", 4)
    assert [len(p.replicas) for p in meta.partitions] == [2, 2, 2, 2]
    assert state.logs.partition("t", 3) is not None
    state.create_partitions("t", 6, validate_only=True)
    assert len(meta.partitions) == 4
    with pytest.raises(BrokerResponseError) as exc:
        state.create_partitions("t", 4)
    assert errno(exc) == 37


@pytest.mark.parametrize("configs", [
    {"retention.ms": "x"}, {"retention.ms": "-5"}, {"cleanup.policy": ""},
    {"cleanup.policy": "compact,shred"}, {"message.timestamp.type": "Now"},
    {"min.insync.replicas": "0"}, {"preallocate": "yes"}, {"no.such.config": "1"},
    {"segment.bytes": str(1 << 40)}, {"min.cleanable.dirty.ratio": "abc"},
])
def test_bad_topic_configs_are_invalid_config(configs: dict[str, str]) -> None:
    with pytest.raises(BrokerResponseError) as exc:
        validate_topic_configs(configs)
    assert errno(exc) == 40 and exc.value.args[0]


def test_good_topic_configs_pass() -> None:
    validate_topic_configs({"cleanup.policy": "compact,delete", "retention.ms": "-1",
                            "message.timestamp.type": "LogAppendTime",
                            "min.cleanable.dirty.ratio": "0.2", "preallocate": "TRUE"})


def test_broker_config_is_validated() -> None:
    with pytest.raises(KafkaError):
        BrokerConfig(num_partitions=0)
    with pytest.raises(KafkaError):
        BrokerConfig(topic_defaults={"retention.ms": "never"})
