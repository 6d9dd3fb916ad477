"""The group coordinator's async shell over a real ClusterState and in-memory logs.

No sockets: requests go straight to the coordinator, with a manual clock.
"""

from __future__ import annotations

import anyio
import pytest

from streamclient.broker.config import BrokerConfig
from streamclient.broker.groups import GroupCoordinator, GroupState
from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.group import JoinParams, JoinResult
from streamclient.broker.groups.offsets import OffsetAndMetadata
from streamclient.broker.log import LogManager
from streamclient.broker.state import ClusterState, ManualClock
from streamclient.broker.txn import TransactionCoordinator


def make_state(nodes: int = 3) -> ClusterState:
    config = BrokerConfig(
        group_initial_rebalance_delay_ms=0,
        group_min_session_timeout_ms=100,
        offsets_topic_num_partitions=5,
        transaction_state_log_num_partitions=3,
    )
    state = ClusterState(config, clock=ManualClock(1_000))
    for i in range(nodes):
        state.add_node(i, "127.0.0.1", 9000 + i)
    state.logs = LogManager(state)
    state.groups = GroupCoordinator(state)
    state.txns = TransactionCoordinator(state)
    return state


def params(member_id: str = "", client: str = "c", meta: bytes = b"m") -> JoinParams:
    return JoinParams(
        member_id=member_id, client_id=client, protocol_type="consumer",
        protocols=[("range", meta)], session_timeout_ms=6_000, rebalance_timeout_ms=10_000,
    )


def test_coordinator_placement_and_not_coordinator() -> None:
    state = make_state()
    gc: GroupCoordinator = state.groups
    node = gc.coordinator_for("my-group")
    assert node is not None and node in state.nodes
    partition = gc.topic.partition_for("my-group")
    assert state.partition_leader("__consumer_offsets", partition) == node
    other = next(n for n in state.nodes if n != node)
    assert gc.check_coordinator(other, "my-group") is Code.NOT_COORDINATOR
    assert gc.heartbeat(other, "my-group", member_id="x", generation_id=1) is Code.NOT_COORDINATOR
    state.set_node_alive(node, False)
    moved = gc.coordinator_for("my-group")
    assert moved is not None and moved != node
    for n in list(state.nodes):
        state.set_node_alive(n, False)
    assert gc.coordinator_for("my-group") is None
    assert gc.check_coordinator(node, "my-group") is Code.COORDINATOR_NOT_AVAILABLE


@pytest.mark.anyio
async def test_two_members_join_and_sync_concurrently() -> None:
    state = make_state()
    gc: GroupCoordinator = state.groups
    node = gc.coordinator_for("g")
    assert node is not None
    ids = []
    for c in ("a", "b"):
        r = await gc.join(node, "g", params(client=c))
        assert r.error is Code.MEMBER_ID_REQUIRED
        ids.append(r.member_id)
    results: dict[str, JoinResult] = {}

    async def join(member_id: str, client: str) -> None:
        results[member_id] = await gc.join(node, "g", params(member_id, client))

    async with anyio.create_task_group() as tg:
        tg.start_soon(join, ids[0], "a")
        await anyio.wait_all_tasks_blocked()
        assert ids[0] not in results  # parked until b rejoins
        tg.start_soon(join, ids[1], "b")
    gen = results[ids[0]].generation_id
    leader = results[ids[0]].leader
    assert leader == results[ids[1]].leader
    follower = ids[1] if leader == ids[0] else ids[0]
    assignments: dict[str, bytes] = {}

    async def sync(member_id: str, plan: dict[str, bytes]) -> None:
        r = await gc.sync(node, "g", member_id=member_id, generation_id=gen, assignments=plan)
        assert r.error is Code.NONE
        assignments[member_id] = r.assignment

    async with anyio.create_task_group() as tg:
        tg.start_soon(sync, follower, {})
        await anyio.wait_all_tasks_blocked()
        assert follower not in assignments
        tg.start_soon(sync, leader, {leader: b"L", follower: b"F"})
    assert assignments == {leader: b"L", follower: b"F"}
    assert gc.groups["g"].state is GroupState.STABLE


@pytest.mark.anyio
async def test_tick_expires_session_and_completes_parked_join() -> None:
    state = make_state()
    gc: GroupCoordinator = state.groups
    clock = state.clock
    assert isinstance(clock, ManualClock)
    node = gc.coordinator_for("g")
    assert node is not None
    a = (await gc.join(node, "g", params(client="a"))).member_id
    b = (await gc.join(node, "g", params(client="b"))).member_id
    got: dict[str, JoinResult] = {}

    async def join(mid: str) -> None:
        got[mid] = await gc.join(node, "g", params(mid, "x"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(join, a)
        tg.start_soon(join, b)
    gen = got[a].generation_id
    leader = got[a].leader
    other = b if leader == a else a
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: gc.sync(node, "g", member_id=other, generation_id=gen, assignments={}))
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(lambda: gc.sync(node, "g", member_id=leader, generation_id=gen, assignments={}))
    # only the leader heartbeats; the other member's session runs out
    clock.advance(5_000)
    assert gc.heartbeat(node, "g", member_id=leader, generation_id=gen) is Code.NONE
    clock.advance(1_000)
    gc.tick(clock.now_ms())
    assert other not in gc.groups["g"].members
    code = gc.heartbeat(node, "g", member_id=leader, generation_id=gen)
    assert code is Code.REBALANCE_IN_PROGRESS


def test_offsets_written_to_log_and_reloaded() -> None:
    state = make_state()
    gc: GroupCoordinator = state.groups
    node = gc.coordinator_for("standalone")
    assert node is not None
    offsets = {
        ("t", 0): OffsetAndMetadata(42, 3, "meta", 1_000),
        ("t", 1): OffsetAndMetadata(7),
    }
    assert state.create_topic("t", 2, 1)
    codes = gc.commit_offsets(node, "standalone", offsets)
    assert set(codes.values()) == {Code.NONE}
    code, fetched = gc.fetch_offsets(node, "standalone", None)
    assert code is Code.NONE
    assert {tp: om for tp, (om, _) in fetched.items()} == offsets
    # the records are in __consumer_offsets: a fresh coordinator rebuilds the same map
    log = state.partition_log("__consumer_offsets", gc.topic.partition_for("standalone"))
    assert log is not None and log.log_end_offset > 0
    code, deleted = gc.delete_offsets(node, "standalone", [("t", 1)])
    assert code is Code.NONE and deleted == {("t", 1): Code.NONE}
    fresh = GroupCoordinator(state)
    fresh.load_from_log()
    _, again = fresh.fetch_offsets(node, "standalone", [("t", 0), ("t", 1)])
    assert again[("t", 0)] == (offsets[("t", 0)], Code.NONE)
    assert again[("t", 1)] == (None, Code.NONE)


def test_commit_with_generation_to_unknown_group_is_illegal() -> None:
    state = make_state()
    gc: GroupCoordinator = state.groups
    node = gc.coordinator_for("g")
    assert node is not None
    codes = gc.commit_offsets(node, "g", {("t", 0): OffsetAndMetadata(1)}, generation_id=3,
                              member_id="m")
    assert codes == {("t", 0): Code.ILLEGAL_GENERATION}
    big = OffsetAndMetadata(1, metadata="x" * 5000)
    assert gc.commit_offsets(node, "g", {("t", 0): big}) == {
        ("t", 0): Code.OFFSET_METADATA_TOO_LARGE
    }


@pytest.mark.anyio
async def test_delete_groups_and_list() -> None:
    state = make_state()
    gc: GroupCoordinator = state.groups
    node = gc.coordinator_for("busy")
    assert node is not None
    mid = (await gc.join(node, "busy", params())).member_id
    await gc.join(node, "busy", params(mid))
    listed = {g.group_id: g.state for g in gc.list_groups(node)}
    assert listed["busy"] is GroupState.COMPLETING_REBALANCE
    result = gc.delete_groups(node, ["busy", "never-existed"])
    assert result["busy"] is Code.NON_EMPTY_GROUP
    assert result["never-existed"] in (Code.GROUP_ID_NOT_FOUND, Code.NOT_COORDINATOR)
    _, errors = gc.leave(node, "busy", [(mid, None)])
    assert errors == [Code.NONE]
    assert gc.delete_groups(node, ["busy"]) == {"busy": Code.NONE}
    assert "busy" not in {g.group_id for g in gc.list_groups(node)}
