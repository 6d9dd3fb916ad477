"""The group membership state machine through whole rebalances, driven by fed responses.

A tiny in-test coordinator (``Group``) plays the broker's part: it collects each member's
JoinGroup, picks the leader, hands the leader everybody's metadata and relays the leader's
SyncGroup assignments.  The members are real ``GroupMembership`` instances, so the
assignment a member gets is what the real assignors computed from what the members sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from streamclient.consumer.assignors import (
    Assignment,
    ClusterPartitions,
    ConsumerPartitionAssignor,
    CooperativeStickyAssignor,
    RangeAssignor,
    RebalanceProtocol,
    RoundRobinAssignor,
    Subscription,
)
from streamclient.consumer.group.consumer_protocol import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
)
from streamclient.consumer.group.membership import (
    Action,
    CommitOffsets,
    ConsumerGroupMetadata,
    FindCoordinator,
    GroupMembership,
    InvokeListener,
    ListenerCallback,
    MemberState,
    Rejoin,
    ReleasePartitions,
    RunAssignment,
    SendJoinGroup,
    SendSyncGroup,
)
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import (
    GroupAuthorizationFailedError,
    IllegalStateError,
    InconsistentGroupProtocolError,
)
from streamclient.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from streamclient.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

CLUSTER = {"t": 4, "u": 2}


def tps(*specs: str) -> tuple[TopicPartition, ...]:
    out = []
    for spec in specs:
        topic, partition = spec.split("-")
        out.append(TopicPartition(topic, int(partition)))
    return tuple(sorted(out))


class Member:
    """A GroupMembership plus the shell's part: running actions and logging the listener."""

    def __init__(
        self,
        name: str,
        topics: Sequence[str],
        assignors: Sequence[ConsumerPartitionAssignor],
        *,
        auto_commit: bool = False,
        instance_id: str | None = None,
    ) -> None:
        self.name = name
        self.subs = SubscriptionState()
        self.subs.subscribe(topics)
        self.m = GroupMembership(
            group_id="g",
            subscription=self.subs,
            assignors=assignors,
            now_ms=0,
            group_instance_id=instance_id,
            enable_auto_commit=auto_commit,
            client_rack="r1",
        )
        self.calls: list[tuple[ListenerCallback, tuple[TopicPartition, ...]]] = []
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []
        self.pending: list[Action] = []

    def run(self, actions: list[Action]) -> list[Action]:
        """Execute listener/commit/release actions; return the ones needing the network."""
        rest: list[Action] = []
        for action in actions:
            if isinstance(action, InvokeListener):
                # the listener sees its partitions still assigned (it may commit them)
                assert all(self.subs.is_assigned(tp) for tp in action.partitions) or (
                    action.callback is ListenerCallback.ASSIGNED
                )
                self.calls.append((action.callback, action.partitions))
            elif isinstance(action, ReleasePartitions):
                self.m.release(action.partitions)
            elif isinstance(action, CommitOffsets):
                self.commits.append(action.offsets)
            else:
                rest.append(action)
        return rest

    def start(self, now_ms: int = 0) -> JoinGroupRequest:
        rest = self.run(self.m.start_join(now_ms))
        assert rest == [SendJoinGroup()]
        return self.m.join_group_request(now_ms)

    def seek_all(self, offset: int) -> None:
        for tp in self.subs.assigned_partitions():
            self.subs.seek(tp, offset)


class Group:
    """The coordinator's side of one rebalance round."""

    def __init__(self) -> None:
        self.generation = 0
        self.ids: dict[str, str] = {}
        self.requests: dict[str, JoinGroupRequest] = {}

    def rebalance(
        self,
        members: Sequence[Member],
        *,
        leader: str | None = None,
        cluster: ClusterPartitions = CLUSTER,
        now_ms: int = 0,
    ) -> dict[str, list[Action]]:
        """Join and sync every member; returns what each member's sync answer produced."""
        self.generation += 1
        requests = {mem.name: mem.start(now_ms) for mem in members}
        self.requests = requests
        for mem in members:
            self.ids.setdefault(mem.name, f"{mem.name}-id")
        protocol = self._choose(requests)
        leader = leader or members[0].name
        join_responses = {}
        for mem in members:
            is_leader = mem.name == leader
            join_responses[mem.name] = JoinGroupResponse(
                generation_id=self.generation,
                protocol_type="consumer",
                protocol_name=protocol,
                leader=self.ids[leader],
                member_id=self.ids[mem.name],
                members=[
                    JoinGroupResponse.JoinGroupResponseMember(
                        member_id=self.ids[name],
                        group_instance_id=req.group_instance_id,
                        metadata=next(p.metadata for p in req.protocols if p.name == protocol),
                    )
                    for name, req in requests.items()
                ]
                if is_leader
                else [],
            )
        syncs: dict[str, SyncGroupRequest] = {}
        for mem in members:
            actions = mem.run(mem.m.on_join_response(join_responses[mem.name], now_ms))
            if mem.name == leader:
                assert actions == [RunAssignment(frozenset(self._topics(requests, protocol)))]
                actions = mem.m.assign(cluster, now_ms)
            (sync,) = actions
            assert isinstance(sync, SendSyncGroup)
            syncs[mem.name] = sync.request
        assignments = {a.member_id: a.assignment for a in syncs[leader].assignments}
        results = {}
        for mem in members:
            response = SyncGroupResponse(
                protocol_type="consumer",
                protocol_name=protocol,
                assignment=assignments[self.ids[mem.name]],
            )
            results[mem.name] = mem.run(mem.m.on_sync_response(response, now_ms))
        return results

    @staticmethod
    def _choose(requests: dict[str, JoinGroupRequest]) -> str:
        names = [p.name for p in next(iter(requests.values())).protocols]
        return next(
            n
            for n in names
            if all(any(p.name == n for p in r.protocols) for r in requests.values())
        )

    @staticmethod
    def _topics(requests: dict[str, JoinGroupRequest], protocol: str) -> set[str]:
        topics: set[str] = set()
        for req in requests.values():
            meta = next(p.metadata for p in req.protocols if p.name == protocol)
            topics.update(decode_subscription(meta).topics)
        return topics


# --- eager ------------------------------------------------------------------------------


def test_first_join_with_member_id_required_and_leader_path() -> None:
    me = Member("a", ["t"], [RoundRobinAssignor(), RangeAssignor()])
    assert me.m.protocol is RebalanceProtocol.EAGER
    request = me.start()
    assert request.member_id == "" and request.protocol_type == "consumer"
    assert [p.name for p in request.protocols] == ["roundrobin", "range"]
    sub = decode_subscription(request.protocols[0].metadata)
    assert sub == Subscription(["t"], None, (), -1, None, "r1")
    assert request.reason == "initial join"
    assert request.rebalance_timeout_ms == 10_000

    actions = me.m.on_join_response(JoinGroupResponse(error_code=79, member_id="a-1"), now_ms=0)
    assert actions == [SendJoinGroup()]
    assert me.m.join_group_request(0).member_id == "a-1"

    member = JoinGroupResponse.JoinGroupResponseMember(
        member_id="a-1", metadata=request.protocols[0].metadata
    )
    joined = JoinGroupResponse(
        generation_id=1,
        protocol_type="consumer",
        protocol_name="roundrobin",
        leader="a-1",
        member_id="a-1",
        members=[member],
    )
    assert me.m.on_join_response(joined, 0) == [RunAssignment(frozenset({"t"}))]
    assert me.m.state is MemberState.COMPLETING_REBALANCE and me.m.is_leader
    (sync,) = me.m.assign({"t": 3}, 0)
    assert isinstance(sync, SendSyncGroup)
    assert sync.request.generation_id == 1 and sync.request.member_id == "a-1"
    assert sync.request.protocol_name == "roundrobin"
    (entry,) = sync.request.assignments
    assert decode_assignment(entry.assignment).partitions == tps("t-0", "t-1", "t-2")

    done = me.m.on_sync_response(
        SyncGroupResponse(
            protocol_type="consumer", protocol_name="roundrobin", assignment=entry.assignment
        ),
        0,
    )
    assert done == [InvokeListener(ListenerCallback.ASSIGNED, tps("t-0", "t-1", "t-2"))]
    assert me.m.state is MemberState.STABLE
    assert not me.m.rejoin_needed
    assert me.subs.assigned_partitions() == set(tps("t-0", "t-1", "t-2"))
    assert me.m.group_metadata() == ConsumerGroupMetadata("g", 1, "a-1", None)


def test_eager_rebalance_commits_revokes_all_then_assigns() -> None:
    group = Group()
    a = Member("a", ["t"], [RoundRobinAssignor()], auto_commit=True)
    group.rebalance([a])
    assert a.calls == [(ListenerCallback.ASSIGNED, tps("t-0", "t-1", "t-2", "t-3"))]
    a.seek_all(5)
    b = Member("b", ["t"], [RoundRobinAssignor()])
    a.calls.clear()
    results = group.rebalance([a, b])
    assert a.commits == [{tp: OffsetAndMetadata(5, "") for tp in tps("t-0", "t-1", "t-2", "t-3")}]
    assert a.calls == [
        (ListenerCallback.REVOKED, tps("t-0", "t-1", "t-2", "t-3")),
        (ListenerCallback.ASSIGNED, tps("t-0", "t-2")),
    ]
    assert b.calls == [(ListenerCallback.ASSIGNED, tps("t-1", "t-3"))]
    assert results == {"a": [], "b": []}
    # positions of revoked partitions are gone: kept ones must be looked up again
    assert a.subs.initializing_partitions() == list(tps("t-0", "t-2"))


def test_eager_join_request_after_revocation_owns_nothing() -> None:
    group = Group()
    a = Member("a", ["t"], [RoundRobinAssignor()])
    group.rebalance([a])
    a.m.request_rejoin("metadata changed")
    request = a.start()
    sub = decode_subscription(request.protocols[0].metadata)
    assert sub.owned_partitions == ()
    assert sub.generation_id == 1
    assert request.member_id == "a-id"
    assert request.reason == "metadata changed"


# --- cooperative ------------------------------------------------------------------------


def test_cooperative_two_phase_rebalance() -> None:
    group = Group()
    a = Member("a", ["t"], [CooperativeStickyAssignor()], auto_commit=True)
    assert a.m.protocol is RebalanceProtocol.COOPERATIVE
    group.rebalance([a])
    assert a.calls == [(ListenerCallback.ASSIGNED, tps("t-0", "t-1", "t-2", "t-3"))]
    a.seek_all(9)
    a.calls.clear()

    # phase 1: b joins; a keeps its partitions through the join (no revocation first)
    b = Member("b", ["t"], [CooperativeStickyAssignor()])
    results = group.rebalance([a, b])
    phase1 = decode_subscription(group.requests["a"].protocols[0].metadata)
    assert phase1.owned_partitions == tps("t-0", "t-1", "t-2", "t-3")
    revoked = a.calls[0][1]
    assert a.calls[0][0] is ListenerCallback.REVOKED and len(revoked) == 2
    assert a.calls[1] == (ListenerCallback.ASSIGNED, ())
    assert results["a"] == [Rejoin("need to revoke partitions and re-join")]
    kept = tuple(sorted(set(tps("t-0", "t-1", "t-2", "t-3")) - set(revoked)))
    assert a.subs.assigned_partitions() == set(kept)
    assert all(a.subs.position(tp) is not None for tp in kept)  # kept positions survive
    # the still-owned partitions were not given to b in the same round
    assert b.calls == [(ListenerCallback.ASSIGNED, ())]
    assert b.subs.assigned_partitions() == set()

    # phase 2: a rejoins without owning the revoked partitions; b gets them
    a.calls.clear()
    b.calls.clear()
    results = group.rebalance([a, b], leader="b")
    assert results == {"a": [], "b": []}
    phase2 = decode_subscription(group.requests["a"].protocols[0].metadata)
    assert phase2.owned_partitions == kept and phase2.generation_id == 2
    assert a.calls == [(ListenerCallback.ASSIGNED, ())]
    assert b.calls == [(ListenerCallback.ASSIGNED, revoked)]
    assert a.m.state is MemberState.STABLE and b.m.state is MemberState.STABLE
    assert not a.m.rejoin_needed


def test_cooperative_join_sends_owned_partitions_and_generation() -> None:
    group = Group()
    a = Member("a", ["t"], [CooperativeStickyAssignor()])
    group.rebalance([a])
    a.m.request_rejoin("check")
    request = a.start()
    sub = decode_subscription(request.protocols[0].metadata)
    assert sub.owned_partitions == tps("t-0", "t-1", "t-2", "t-3")
    assert sub.generation_id == 1
    assert a.calls[-1][0] is ListenerCallback.ASSIGNED  # nothing revoked before joining


def test_cooperative_revokes_only_unsubscribed_before_join() -> None:
    group = Group()
    a = Member("a", ["t", "u"], [CooperativeStickyAssignor()])
    group.rebalance([a])
    a.calls.clear()
    a.subs.subscribe(["t"])
    a.m.request_rejoin("subscription changed")
    request = a.start()
    assert a.calls == [(ListenerCallback.REVOKED, tps("u-0", "u-1"))]
    sub = decode_subscription(request.protocols[0].metadata)
    assert sub.topics == ("t",)
    assert sub.owned_partitions == tps("t-0", "t-1", "t-2", "t-3")


class Thief(ConsumerPartitionAssignor):
    """A cooperative assignor that breaks the rule: hands owned partitions straight over."""

    name = "thief"
    supported_protocols = (RebalanceProtocol.COOPERATIVE,)

    def assign(self, cluster_partitions, subscriptions):  # type: ignore[no-untyped-def]
        members = sorted(subscriptions)
        everything = sorted(
            {tp for sub in subscriptions.values() for tp in sub.owned_partitions}
            | set(tps("t-0", "t-1", "t-2", "t-3"))
        )
        return {m: Assignment(everything if m == members[-1] else ()) for m in members}


def test_custom_cooperative_assignor_validated() -> None:
    group = Group()
    a = Member("a", ["t"], [Thief()])
    group.rebalance([a])
    b = Member("b", ["t"], [Thief()])
    with pytest.raises(IllegalStateError, match="still owned"):
        group.rebalance([a, b])


# --- generation resets and errors ------------------------------------------------------


def stable_member(**kwargs: object) -> Member:
    member = Member("a", ["t"], [RoundRobinAssignor()], **kwargs)  # type: ignore[arg-type]
    Group().rebalance([member])
    member.calls.clear()
    return member


def test_unknown_member_in_sync_loses_partitions_on_rejoin() -> None:
    a = stable_member(auto_commit=True)
    a.seek_all(1)
    a.m.request_rejoin("test")
    a.start()
    a.m.on_join_response(
        JoinGroupResponse(
            generation_id=2,
            protocol_type="consumer",
            protocol_name="roundrobin",
            leader="other",
            member_id="a-id",
        ),
        0,
    )
    actions = a.m.on_sync_response(SyncGroupResponse(error_code=25), 0)
    assert actions == [Rejoin("unknown member id in SyncGroup")]
    assert a.m.generation.member_id == "" and a.m.generation.generation_id == -1
    assert a.m.state is MemberState.UNJOINED


def test_heartbeat_unknown_member_then_lost_without_commit() -> None:
    a = stable_member(auto_commit=True)
    a.seek_all(1)
    from streamclient.protocol.messages.heartbeat import HeartbeatResponse

    actions = a.m.on_heartbeat_response(HeartbeatResponse(error_code=25), 100, sent_generation=1)
    assert isinstance(actions[0], Rejoin)
    request = a.start()
    assert a.calls == [(ListenerCallback.LOST, tps("t-0", "t-1", "t-2", "t-3"))]
    assert a.commits == []  # committing lost partitions would only fail
    assert request.member_id == ""
    assert decode_subscription(request.protocols[0].metadata).generation_id == -1


def test_illegal_generation_keeps_member_id() -> None:
    a = stable_member()
    a.m.request_rejoin("x")
    a.start()
    actions = a.m.on_join_response(JoinGroupResponse(error_code=22), 0)
    assert actions == [Rejoin("illegal generation in JoinGroup")]
    assert a.m.generation.member_id == "a-id"
    assert a.m.generation.generation_id == -1


@pytest.mark.parametrize("code", [14, 27])
def test_join_retriable_errors_back_off(code: int) -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()])
    a.start()
    (action,) = a.m.on_join_response(JoinGroupResponse(error_code=code), 0)
    assert isinstance(action, Rejoin) and action.delay_ms == 100


@pytest.mark.parametrize("code", [15, 16])
def test_coordinator_errors_rediscover(code: int) -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()])
    a.start()
    actions = a.m.on_join_response(JoinGroupResponse(error_code=code), 0)
    assert isinstance(actions[0], FindCoordinator) and isinstance(actions[1], Rejoin)
    assert a.m.rejoin_needed


def test_sync_rebalance_in_progress_rejoins_keeping_generation() -> None:
    a = stable_member()
    a.m.request_rejoin("x")
    a.start()
    a.m.on_join_response(
        JoinGroupResponse(
            generation_id=2, protocol_name="roundrobin", leader="z", member_id="a-id"
        ),
        0,
    )
    actions = a.m.on_sync_response(SyncGroupResponse(error_code=27), 0)
    assert actions == [Rejoin("SyncGroup: rebalance in progress")]
    assert a.m.generation.generation_id == 2
    # no second onJoinPrepare: the rebalance it prepared for is still the same one
    assert a.run(a.m.start_join(0)) == [SendJoinGroup()]


@pytest.mark.parametrize("code", [23, 24, 26, 30, 81])
def test_fatal_join_errors_raise(code: int) -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()])
    a.start()
    with pytest.raises(Exception) as info:
        a.m.on_join_response(JoinGroupResponse(error_code=code), 0)
    assert getattr(info.value, "errno", None) == code
    if code == 30:
        assert isinstance(info.value, GroupAuthorizationFailedError)
        assert info.value.args == ("g",)
    assert a.m.state is MemberState.UNJOINED and not a.m.rejoin_needed


def test_fenced_static_member_is_fatal() -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()], instance_id="inst-1")
    request = a.start()
    assert request.group_instance_id == "inst-1"
    with pytest.raises(Exception, match="inst-1") as info:
        a.m.on_join_response(JoinGroupResponse(error_code=82), 0)
    assert getattr(info.value, "errno", None) == 82


def test_protocol_mismatch_in_sync_is_fatal() -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()])
    a.start()
    a.m.on_join_response(
        JoinGroupResponse(generation_id=1, protocol_name="roundrobin", leader="z", member_id="a"),
        0,
    )
    with pytest.raises(InconsistentGroupProtocolError):
        a.m.on_sync_response(SyncGroupResponse(protocol_type="consumer", protocol_name="range"), 0)


def test_unknown_protocol_name_from_coordinator() -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()])
    a.start()
    with pytest.raises(IllegalStateError, match="sticky"):
        a.m.on_join_response(
            JoinGroupResponse(generation_id=1, protocol_name="sticky", leader="z", member_id="a"),
            0,
        )


def test_assignment_for_unsubscribed_topic_triggers_rejoin() -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()])
    a.start()
    a.m.on_join_response(
        JoinGroupResponse(generation_id=1, protocol_name="roundrobin", leader="z", member_id="a"),
        0,
    )
    stray = encode_assignment(Assignment(tps("u-0")))
    actions = a.m.on_sync_response(SyncGroupResponse(assignment=stray), 0)
    assert actions == [Rejoin("assignment does not match the subscription")]
    assert a.subs.assigned_partitions() == set()


def test_static_leader_skip_assignment_sends_empty_sync() -> None:
    a = Member("a", ["t"], [RoundRobinAssignor()], instance_id="i")
    a.start()
    (action,) = a.m.on_join_response(
        JoinGroupResponse(
            generation_id=3,
            protocol_name="roundrobin",
            leader="a",
            member_id="a",
            skip_assignment=True,
        ),
        0,
    )
    assert isinstance(action, SendSyncGroup) and action.request.assignments == []
    assert a.m.is_leader


def test_late_responses_are_ignored() -> None:
    a = stable_member()
    assert a.m.on_join_response(JoinGroupResponse(error_code=25), 0) == []
    assert a.m.on_sync_response(SyncGroupResponse(error_code=25), 0) == []
    assert a.m.state is MemberState.STABLE


def test_manual_assignment_cannot_join() -> None:
    subs = SubscriptionState()
    subs.assign(tps("t-0"))
    m = GroupMembership(group_id="g", subscription=subs, assignors=[RangeAssignor()], now_ms=0)
    with pytest.raises(IllegalStateError):
        m.start_join(0)


# --- metadata changes ------------------------------------------------------------------


def test_leader_rejoins_when_partition_counts_change() -> None:
    group = Group()
    a = Member("a", ["t"], [RoundRobinAssignor()])
    b = Member("b", ["u"], [RoundRobinAssignor()])
    group.rebalance([a, b])  # a leads and assigned u for b too
    assert a.m.is_leader and not b.m.is_leader
    assert not a.m.on_metadata_update({"t": 4, "u": 2, "other": 9})
    assert a.m.on_metadata_update({"t": 4, "u": 3})  # b's topic grew: only the leader sees it
    assert a.m.rejoin_reason == "the partitions of subscribed topics changed"
    assert not b.m.on_metadata_update({"t": 4, "u": 3})


def test_pattern_subscription_change_requests_rejoin() -> None:
    subs = SubscriptionState()
    subs.subscribe_pattern("t")
    m = GroupMembership(group_id="g", subscription=subs, assignors=[RangeAssignor()], now_ms=0)
    m.rejoin_needed = False
    assert m.on_metadata_update({"t1": 1, "x": 1})
    assert subs.subscription == {"t1"}
    m.rejoin_needed = False
    assert not m.on_metadata_update({"t1": 1, "x": 1})
    assert m.on_metadata_update({"t1": 1, "t2": 1, "__t": 1}, {"__t"})
    assert subs.subscription == {"t1", "t2"}


def test_subscription_change_after_join_requests_rejoin() -> None:
    group = Group()
    a = Member("a", ["t"], [RoundRobinAssignor()])
    group.rebalance([a])
    assert not a.m.on_metadata_update(dict(CLUSTER))
    a.subs.subscribe(["t", "u"])
    assert a.m.on_metadata_update(dict(CLUSTER))
    assert a.m.rejoin_reason == "the subscription changed"
