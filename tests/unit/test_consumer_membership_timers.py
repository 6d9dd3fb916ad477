"""Heartbeats, session and max-poll deadlines with an injected clock; leaving and closing;
the group requests encoded at the versions current brokers use."""

from __future__ import annotations

import pytest

from streamclient.consumer.assignors import (
    Assignment,
    CooperativeStickyAssignor,
    RebalanceProtocol,
    RoundRobinAssignor,
)
from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.group.consumer_protocol import encode_assignment
from streamclient.consumer.group.heartbeat import HeartbeatTimers
from streamclient.consumer.group.membership import (
    CommitOffsets,
    FindCoordinator,
    GroupMembership,
    InvokeListener,
    ListenerCallback,
    MemberState,
    Rejoin,
    ReleasePartitions,
    SendJoinGroup,
    SendLeaveGroup,
)
from streamclient.consumer.offsets import OffsetResetStrategy
from streamclient.consumer.subscription import SubscriptionState
from streamclient.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from streamclient.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from streamclient.protocol.messages.leave_group import LeaveGroupRequest
from streamclient.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)


def joined(
    now_ms: int = 1_000, *, instance_id: str | None = None, auto_commit: bool = False
) -> GroupMembership:
    """A member made STABLE at ``now_ms`` as a follower owning t-0 and t-1."""
    subs = SubscriptionState()
    subs.subscribe(["t"])
    m = GroupMembership(
        group_id="g",
        subscription=subs,
        assignors=[RoundRobinAssignor()],
        now_ms=0,
        group_instance_id=instance_id,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=60_000,
        retry_backoff_ms=100,
        enable_auto_commit=auto_commit,
    )
    assert m.start_join(now_ms) == [SendJoinGroup()]
    m.on_join_response(
        JoinGroupResponse(
            generation_id=4, protocol_name="roundrobin", leader="leader", member_id="me"
        ),
        now_ms,
    )
    m.on_sync_response(
        SyncGroupResponse(assignment=encode_assignment(Assignment([T0, T1]))), now_ms
    )
    assert m.state is MemberState.STABLE
    return m


def test_heartbeat_schedule() -> None:
    m = joined(1_000)
    assert m.heartbeat_request(3_999) is None
    request = m.heartbeat_request(4_000)
    assert request == HeartbeatRequest(group_id="g", generation_id=4, member_id="me")
    assert m.heartbeat_request(4_001) is None  # one in flight at a time
    assert m.on_heartbeat_response(HeartbeatResponse(), 4_050, sent_generation=4) == []
    assert m.heartbeat_request(6_999) is None
    assert m.heartbeat_request(7_000) is not None
    assert m.next_deadline(7_000) == 10_000


def test_heartbeat_not_sent_outside_the_group() -> None:
    subs = SubscriptionState()
    subs.subscribe(["t"])
    m = GroupMembership(group_id="g", subscription=subs, assignors=[RoundRobinAssignor()], now_ms=0)
    assert m.heartbeat_request(100_000) is None
    m.start_join(0)
    assert m.heartbeat_request(100_000) is None  # JoinGroup pending: no generation yet
    assert m.next_deadline(0) is None
    assert m.check_timers(10**9) == []


def test_failed_heartbeat_retries_after_backoff_and_rediscovers() -> None:
    m = joined(0)
    assert m.heartbeat_request(3_000) is not None
    assert m.on_heartbeat_failure(3_500) == [FindCoordinator("heartbeat failed")]
    assert m.heartbeat_request(3_599) is None
    assert m.heartbeat_request(3_600) is not None
    actions = m.on_heartbeat_response(HeartbeatResponse(error_code=16), 3_700)
    assert isinstance(actions[0], FindCoordinator)


def test_session_expiry_presumes_coordinator_dead() -> None:
    m = joined(0)
    assert m.check_timers(10_000) == []
    assert m.check_timers(10_001) == [
        FindCoordinator("no heartbeat answer within the session timeout")
    ]
    assert m.check_timers(10_002) == []  # the clock restarted for the new coordinator


def test_poll_timeout_leaves_group_then_partitions_are_lost() -> None:
    m = joined(0)
    m.record_poll(30_000)
    for t in range(3_000, 90_000, 3_000):  # heartbeats keep the session alive
        if m.heartbeat_request(t) is not None:
            m.on_heartbeat_response(HeartbeatResponse(), t)
    assert m.check_timers(90_000) == []
    (action,) = m.check_timers(90_001)
    assert isinstance(action, SendLeaveGroup)
    member = action.request(5).members[0]
    assert (member.member_id, member.reason) == ("me", "consumer poll timeout has expired")
    assert m.state is MemberState.UNJOINED and m.rejoin_needed
    # the next poll rejoins; partitions kept during the absence are reported lost
    actions = m.start_join(95_000)
    assert actions == [
        InvokeListener(ListenerCallback.LOST, (T0, T1)),
        ReleasePartitions((T0, T1)),
        SendJoinGroup(),
    ]


def test_static_member_sends_no_leave_group() -> None:
    m = joined(0, instance_id="inst")
    assert m.check_timers(60_001) == []  # left silently; the coordinator keeps its place
    assert m.state is MemberState.UNJOINED
    again = joined(0, instance_id="inst")
    actions = again.close(100)
    assert not any(isinstance(a, SendLeaveGroup) for a in actions)


def test_rebalance_in_progress_heartbeat() -> None:
    m = joined(0)
    actions = m.on_heartbeat_response(HeartbeatResponse(error_code=27), 10)
    assert actions == [Rejoin("group is rebalancing")]
    # while completing a rebalance it is expected and ignored
    m.start_join(20)
    m.on_join_response(
        JoinGroupResponse(generation_id=5, protocol_name="roundrobin", leader="x", member_id="me"),
        30,
    )
    assert m.on_heartbeat_response(HeartbeatResponse(error_code=27), 40) == []
    assert m.state is MemberState.COMPLETING_REBALANCE


def test_stale_heartbeat_error_is_ignored() -> None:
    m = joined(0)
    assert m.on_heartbeat_response(HeartbeatResponse(error_code=22), 10, sent_generation=3) == []
    assert m.state is MemberState.STABLE
    actions = m.on_heartbeat_response(HeartbeatResponse(error_code=22), 10, sent_generation=4)
    assert isinstance(actions[0], Rejoin)
    assert m.generation.member_id == "me" and m.generation.generation_id == -1


def test_fenced_heartbeat_raises() -> None:
    m = joined(0, instance_id="inst")
    with pytest.raises(Exception, match="inst") as info:
        m.on_heartbeat_response(HeartbeatResponse(error_code=82), 10)
    assert getattr(info.value, "errno", None) == 82
    assert not m.rejoin_needed


def test_close_commits_revokes_and_leaves() -> None:
    m = joined(0, auto_commit=True)
    m.subscription.seek(T0, 12)
    actions = m.close(50)
    assert actions[0] == CommitOffsets({T0: OffsetAndMetadata(12, "")}, "auto-commit on close")
    assert actions[1:3] == [
        InvokeListener(ListenerCallback.REVOKED, (T0, T1)),
        ReleasePartitions((T0, T1)),
    ]
    assert isinstance(actions[3], SendLeaveGroup)
    assert m.state is MemberState.UNJOINED and not m.rejoin_needed


def test_close_while_rebalancing_reports_lost() -> None:
    m = joined(0)
    m.on_heartbeat_response(HeartbeatResponse(error_code=25), 5)  # fenced out
    actions = m.close(10)
    assert actions == [
        InvokeListener(ListenerCallback.LOST, (T0, T1)),
        ReleasePartitions((T0, T1)),
    ]


def test_heartbeat_timers_alone() -> None:
    timers = HeartbeatTimers(
        session_timeout_ms=100,
        heartbeat_interval_ms=30,
        max_poll_interval_ms=1_000,
        retry_backoff_ms=5,
        now_ms=0,
    )
    assert timers.time_to_next_heartbeat(10) == 20
    assert timers.next_deadline(0) == 30
    timers.sent(30)
    assert not timers.heartbeat_due(60)
    timers.received(40)
    assert timers.heartbeat_due(60)
    assert not timers.session_expired(140) and timers.session_expired(141)
    timers.polled(500)
    assert not timers.poll_expired(1_500) and timers.poll_expired(1_501)


# --- encodings at current broker versions ---------------------------------------------


@pytest.mark.parametrize("version", range(5, 10))
def test_join_group_encodes(version: int) -> None:
    subs = SubscriptionState()
    subs.subscribe(["t"])
    m = GroupMembership(
        group_id="g",
        subscription=subs,
        assignors=[RoundRobinAssignor()],
        now_ms=0,
        group_instance_id="inst",
    )
    m.start_join(0)
    request = m.join_group_request(0)
    decoded = JoinGroupRequest.decode(request.encode(version), version)
    assert decoded.group_instance_id == "inst"
    assert decoded.protocols[0].metadata == request.protocols[0].metadata
    assert decoded.reason == ("initial join" if version >= 8 else None)


@pytest.mark.parametrize("version", range(3, 6))
def test_sync_group_encodes(version: int) -> None:
    m = joined(0)
    request = m._sync_request({"me": encode_assignment(Assignment([T0]))})
    decoded = SyncGroupRequest.decode(request.encode(version), version)
    assert decoded.generation_id == 4 and decoded.member_id == "me"
    assert decoded.assignments[0].assignment == encode_assignment(Assignment([T0]))
    if version >= 5:
        assert (decoded.protocol_type, decoded.protocol_name) == ("consumer", "roundrobin")


@pytest.mark.parametrize("version", range(3, 5))
def test_heartbeat_encodes(version: int) -> None:
    m = joined(0, instance_id="inst")
    request = m.heartbeat_request(3_000)
    assert request is not None
    decoded = HeartbeatRequest.decode(request.encode(version), version)
    assert (decoded.generation_id, decoded.member_id, decoded.group_instance_id) == (
        4,
        "me",
        "inst",
    )


@pytest.mark.parametrize("version", range(6))
def test_leave_group_encodes(version: int) -> None:
    m = joined(0)
    request = m.leave_group_action("bye").request(version)
    decoded = LeaveGroupRequest.decode(request.encode(version), version)
    if version < 3:
        assert decoded.member_id == "me"
    else:
        assert decoded.members[0].member_id == "me"
        assert decoded.members[0].reason == ("bye" if version >= 5 else None)


def test_built_from_config() -> None:
    config = ConsumerConfig(
        group_id="g",
        group_instance_id="i",
        session_timeout_ms=30_000,
        heartbeat_interval_ms=1_000,
        auto_offset_reset="earliest",
        client_rack="r",
        partition_assignment_strategy=[CooperativeStickyAssignor],
    )
    subs = SubscriptionState.from_config(config)
    assert subs.default_reset_strategy is OffsetResetStrategy.EARLIEST
    subs.subscribe(["t"])
    m = GroupMembership.from_config(config, subs, now_ms=0)
    assert m.protocol is RebalanceProtocol.COOPERATIVE
    m.start_join(0)
    request = m.join_group_request(0)
    assert (request.group_id, request.group_instance_id) == ("g", "i")
    assert (request.session_timeout_ms, request.rebalance_timeout_ms) == (30_000, 30_000)
    assert m.heartbeat_request(10**6) is None  # not in the group yet
    assert m.timers.heartbeat_interval_ms == 1_000
