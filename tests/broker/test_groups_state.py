"""The sans-IO classic group state machine, driven with an explicit clock."""

from __future__ import annotations

import itertools

import pytest

from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.group import (
    Group,
    GroupConfig,
    GroupState,
    JoinParams,
    JoinResult,
    SyncResult,
)
from streamclient.protocol.error_codes import CODES_BY_NAME

SESSION = 10_000
REBALANCE = 30_000


def test_error_codes_match_kafka_table() -> None:
    for code in Code:
        if code is not Code.NONE:
            assert CODES_BY_NAME[code.name] == code.value


class Harness:
    """Drives one group; remembers every completion by token."""

    def __init__(self, delay_ms: int = 0) -> None:
        self.group = Group("g", GroupConfig(initial_rebalance_delay_ms=delay_ms), now_ms=0)
        self.now = 0
        self.results: dict[int, JoinResult | SyncResult] = {}
        self._tokens = itertools.count(1)

    def _take(self, completions: list[tuple[int, JoinResult | SyncResult]]) -> None:
        for token, result in completions:
            assert token not in self.results, "a request was answered twice"
            self.results[token] = result

    def join(
        self,
        member_id: str = "",
        *,
        protocols: list[tuple[str, bytes]] | None = None,
        instance: str | None = None,
        client: str = "c",
        session: int = SESSION,
        rebalance: int = REBALANCE,
        protocol_type: str = "consumer",
        v4: bool = True,
    ) -> int:
        token = next(self._tokens)
        params = JoinParams(
            member_id=member_id,
            client_id=client,
            protocol_type=protocol_type,
            protocols=protocols if protocols is not None else [("range", b"m-" + client.encode())],
            session_timeout_ms=session,
            rebalance_timeout_ms=rebalance,
            group_instance_id=instance,
            require_known_member_id=v4,
        )
        self._take(self.group.join(token, self.now, params))
        return token

    def new_member(self, **kw: object) -> str:
        """The KIP-394 dance: join, get MEMBER_ID_REQUIRED, the id to rejoin with."""
        t = self.join(**kw)  # type: ignore[arg-type]
        r = self.results[t]
        assert isinstance(r, JoinResult) and r.error is Code.MEMBER_ID_REQUIRED
        return r.member_id

    def sync(
        self, member_id: str, generation: int, assignments: dict[str, bytes] | None = None,
        **kw: object,
    ) -> int:
        token = next(self._tokens)
        self._take(
            self.group.sync(
                token, self.now, member_id=member_id, generation_id=generation,
                assignments=assignments or {}, **kw,  # type: ignore[arg-type]
            )
        )
        return token

    def tick(self, advance_ms: int) -> None:
        self.now += advance_ms
        self._take(self.group.tick(self.now))

    def join_result(self, token: int) -> JoinResult:
        r = self.results[token]
        assert isinstance(r, JoinResult)
        return r

    def sync_result(self, token: int) -> SyncResult:
        r = self.results[token]
        assert isinstance(r, SyncResult)
        return r

    def stable_pair(self) -> tuple[str, str, int]:
        """Two members a (leader) and b in a Stable group; returns their ids and generation."""
        a = self.new_member(client="a")
        b = self.new_member(client="b")
        ta = self.join(a, client="a")
        tb = self.join(b, client="b")
        ra, rb = self.join_result(ta), self.join_result(tb)
        gen = ra.generation_id
        self.sync(b, gen)
        self.sync(a, gen, {a: b"A", b: b"B"})
        assert self.group.state is GroupState.STABLE
        assert rb.error is Code.NONE
        return a, b, gen


def test_member_id_required_then_join_completes() -> None:
    h = Harness()
    t1 = h.join(client="app")
    r1 = h.join_result(t1)
    assert r1.error is Code.MEMBER_ID_REQUIRED
    assert r1.member_id.startswith("app-")
    assert h.group.state is GroupState.EMPTY
    assert r1.member_id in h.group.pending_members
    t2 = h.join(r1.member_id, client="app")
    r2 = h.join_result(t2)
    assert r2.error is Code.NONE
    assert r2.generation_id == 1
    assert r2.leader == r1.member_id
    assert r2.protocol_name == "range"
    assert [m.member_id for m in r2.members] == [r1.member_id]
    assert r2.members[0].metadata == b"m-app"
    assert h.group.state is GroupState.COMPLETING_REBALANCE


def test_v3_join_gets_id_without_round_trip() -> None:
    h = Harness()
    t = h.join(v4=False)
    r = h.join_result(t)
    assert r.error is Code.NONE and r.member_id and r.generation_id == 1


def test_pending_member_blocks_completion_until_it_expires() -> None:
    h = Harness()
    a = h.new_member(client="a")
    h.new_member(client="b")  # never comes back
    ta = h.join(a, client="a")
    assert ta not in h.results  # waits for the pending member
    h.tick(SESSION)
    assert h.join_result(ta).error is Code.NONE
    assert list(h.group.members) == [a]


def test_initial_delay_waits_and_extends_for_new_members() -> None:
    h = Harness(delay_ms=100)
    a = h.new_member(client="a")
    ta = h.join(a, client="a")
    assert ta not in h.results
    h.tick(60)
    b = h.new_member(client="b")
    tb = h.join(b, client="b")
    h.tick(40)  # first delay over, but b joined in it: one more delay
    assert ta not in h.results and tb not in h.results
    h.tick(100)
    ra, rb = h.join_result(ta), h.join_result(tb)
    assert ra.error is rb.error is Code.NONE
    assert ra.generation_id == rb.generation_id == 1
    assert ra.leader == a and len(ra.members) == 2 and rb.members == []


def test_sync_distributes_leader_assignment() -> None:
    h = Harness()
    a = h.new_member(client="a")
    b = h.new_member(client="b")
    ta, tb = h.join(a, client="a"), h.join(b, client="b")
    gen = h.join_result(ta).generation_id
    assert h.join_result(tb).leader == a
    sb = h.sync(b, gen)
    assert sb not in h.results  # follower waits for the leader
    sa = h.sync(a, gen, {a: b"for-a", b: b"for-b"})
    assert h.sync_result(sa).assignment == b"for-a"
    assert h.sync_result(sb).assignment == b"for-b"
    assert h.sync_result(sb).protocol_name == "range"
    assert h.group.state is GroupState.STABLE
    # a late sync in Stable gets the stored assignment at once
    assert h.sync_result(h.sync(b, gen)).assignment == b"for-b"


def test_sync_errors() -> None:
    h = Harness()
    a, _b, gen = h.stable_pair()
    assert h.sync_result(h.sync("nobody", gen)).error is Code.UNKNOWN_MEMBER_ID
    assert h.sync_result(h.sync(a, gen + 1)).error is Code.ILLEGAL_GENERATION
    bad = h.sync(a, gen, protocol_type="connect")
    assert h.sync_result(bad).error is Code.INCONSISTENT_GROUP_PROTOCOL
    bad = h.sync(a, gen, protocol_name="roundrobin")
    assert h.sync_result(bad).error is Code.INCONSISTENT_GROUP_PROTOCOL
    ok = h.sync(a, gen, protocol_type="consumer", protocol_name="range")
    assert h.sync_result(ok).assignment == b"A"


def test_protocol_selection_by_votes() -> None:
    h = Harness()
    ids = []
    prefs = [
        [("roundrobin", b"1"), ("range", b"1"), ("sticky", b"1")],
        [("range", b"2"), ("roundrobin", b"2")],
        [("range", b"3"), ("roundrobin", b"3"), ("sticky", b"3")],
    ]
    for i, p in enumerate(prefs):
        ids.append((h.new_member(client=f"m{i}", protocols=p), p))
    tokens = [h.join(mid, client=f"m{i}", protocols=p) for i, (mid, p) in enumerate(ids)]
    results = [h.join_result(t) for t in tokens]
    # "sticky" is not supported by everyone; range gets two votes against one
    assert {r.protocol_name for r in results} == {"range"}
    leader = next(r for r in results if r.members)
    assert {m.metadata for m in leader.members} == {b"1", b"2", b"3"}


def test_inconsistent_protocol_rejected() -> None:
    h = Harness()
    a = h.new_member(client="a")
    h.join(a, client="a")
    t = h.join(client="b", protocols=[("cooperative-sticky", b"")])
    assert h.join_result(t).error is Code.INCONSISTENT_GROUP_PROTOCOL
    t = h.join(client="b", protocol_type="connect")
    assert h.join_result(t).error is Code.INCONSISTENT_GROUP_PROTOCOL
    t = h.join(client="b", protocols=[])
    assert h.join_result(t).error is Code.INCONSISTENT_GROUP_PROTOCOL


def test_invalid_session_timeout() -> None:
    h = Harness()
    t = h.join(session=10)
    assert h.join_result(t).error is Code.INVALID_SESSION_TIMEOUT


def test_new_member_triggers_rebalance_and_leader_is_kept() -> None:
    h = Harness()
    a, b, gen = h.stable_pair()
    c = h.new_member(client="c")
    tc = h.join(c, client="c")
    assert h.group.state is GroupState.PREPARING_REBALANCE
    assert h.group.heartbeat(h.now, member_id=b, generation_id=gen) is Code.REBALANCE_IN_PROGRESS
    tb = h.join(b, client="b")
    ta = h.join(a, client="a")
    for t in (ta, tb, tc):
        assert h.join_result(t).generation_id == gen + 1
    assert h.join_result(tc).leader == a


def test_rebalance_timeout_removes_lagging_member_and_elects_new_leader() -> None:
    h = Harness()
    a, b, gen = h.stable_pair()
    # b changes its subscription: rebalance; the leader a never rejoins
    tb = h.join(b, client="b", protocols=[("range", b"new")], rebalance=5_000)
    assert tb not in h.results
    # a keeps heartbeating (so its session lives) but never rejoins; the rebalance timeout
    # is the largest of the members' (a has 30 s)
    for _ in range(5):
        h.tick(5_000)
        code = h.group.heartbeat(h.now, member_id=a, generation_id=gen)
        assert code is Code.REBALANCE_IN_PROGRESS
        assert tb not in h.results
    h.tick(4_999)
    assert tb not in h.results
    h.tick(1)
    rb = h.join_result(tb)
    assert rb.error is Code.NONE
    assert rb.leader == b and [m.member_id for m in rb.members] == [b]
    assert a not in h.group.members
    assert h.group.heartbeat(h.now, member_id=a, generation_id=gen) is Code.UNKNOWN_MEMBER_ID


def test_session_expiry_removes_member_and_rebalances() -> None:
    h = Harness()
    a, b, gen = h.stable_pair()
    h.tick(SESSION - 1)
    assert h.group.heartbeat(h.now, member_id=a, generation_id=gen) is Code.NONE
    h.tick(1)  # b's session is over, a heartbeated in time
    assert b not in h.group.members
    assert h.group.state is GroupState.PREPARING_REBALANCE
    ta = h.join(a, client="a")
    assert h.join_result(ta).generation_id == gen + 1
    assert [m.member_id for m in h.join_result(ta).members] == [a]


def test_last_member_expiring_leaves_group_empty() -> None:
    h = Harness()
    a = h.new_member()
    t = h.join(a)
    gen = h.join_result(t).generation_id
    h.sync(a, gen, {a: b"x"})
    h.tick(SESSION)
    assert h.group.state is GroupState.EMPTY
    assert h.group.generation_id == gen + 1


def test_heartbeat_errors() -> None:
    h = Harness()
    a, _b, gen = h.stable_pair()
    assert h.group.heartbeat(h.now, member_id="x", generation_id=gen) is Code.UNKNOWN_MEMBER_ID
    assert h.group.heartbeat(h.now, member_id=a, generation_id=gen - 1) is Code.ILLEGAL_GENERATION
    assert h.group.heartbeat(h.now, member_id=a, generation_id=gen) is Code.NONE


def test_follower_rejoin_in_stable_without_change_returns_current_generation() -> None:
    h = Harness()
    _a, b, gen = h.stable_pair()
    r = h.join_result(h.join(b, client="b"))
    assert r.error is Code.NONE and r.generation_id == gen and r.members == []
    assert h.group.state is GroupState.STABLE


def test_sync_waiters_get_rebalance_in_progress_when_rebalance_starts() -> None:
    h = Harness()
    a = h.new_member(client="a")
    b = h.new_member(client="b")
    ta, _tb = h.join(a, client="a"), h.join(b, client="b")
    gen = h.join_result(ta).generation_id
    sb = h.sync(b, gen)
    c = h.new_member(client="c")
    h.join(c, client="c")
    assert h.sync_result(sb).error is Code.REBALANCE_IN_PROGRESS


def test_leader_that_never_syncs_is_dropped() -> None:
    h = Harness()
    a = h.new_member(client="a")
    b = h.new_member(client="b")
    h.join(a, client="a", rebalance=1_000)
    tb = h.join(b, client="b", rebalance=1_000)
    sb = h.sync(b, h.join_result(tb).generation_id)
    h.tick(1_000)
    assert h.sync_result(sb).error is Code.REBALANCE_IN_PROGRESS
    assert list(h.group.members) == [b]


def test_leave_group_batched_with_static_members() -> None:
    h = Harness()
    ts = h.join(client="s", instance="inst-1")
    s = h.join_result(ts)
    assert s.error is Code.NONE  # static members skip MEMBER_ID_REQUIRED
    d = h.new_member(client="d")
    td = h.join(d, client="d")
    h.join(s.member_id, client="s", instance="inst-1")
    gen = h.join_result(td).generation_id
    h.sync(d, gen)
    h.sync(s.member_id, gen, {})
    errors, _ = h.group.leave(
        h.now,
        [("", "inst-1"), ("wrong", "inst-2"), ("nobody", None), (d, None)],
    )
    assert errors == [Code.NONE, Code.UNKNOWN_MEMBER_ID, Code.UNKNOWN_MEMBER_ID, Code.NONE]
    assert h.group.members == {}
    assert h.group.state is GroupState.EMPTY


def test_leave_static_with_wrong_member_id_is_fenced() -> None:
    h = Harness()
    h.join(client="s", instance="inst-1")
    errors, _ = h.group.leave(h.now, [("someone-else", "inst-1")])
    assert errors == [Code.FENCED_INSTANCE_ID]


def test_leave_completes_parked_join_with_unknown_member() -> None:
    h = Harness()
    a, b, _gen = h.stable_pair()
    ta = h.join(a, client="a", protocols=[("range", b"changed")])
    assert ta not in h.results
    errors, completions = h.group.leave(h.now, [(a, None)])
    assert errors == [Code.NONE]
    assert [r.error for _, r in completions] == [Code.UNKNOWN_MEMBER_ID]
    tb = h.join(b, client="b")
    assert h.join_result(tb).leader == b


def _static_stable(h: Harness) -> tuple[str, str, int]:
    a = h.join_result(h.join(client="a", instance="ia")).member_id
    tb = h.join(client="b", instance="ib")  # a second member: a must rejoin
    ta = h.join(a, client="a", instance="ia")
    b = h.join_result(tb).member_id
    gen = h.join_result(ta).generation_id
    assert gen == h.join_result(tb).generation_id == 2
    h.sync(b, gen)
    h.sync(a, gen, {a: b"A", b: b"B"})
    assert h.group.state is GroupState.STABLE
    return a, b, gen


def test_static_member_rejoin_replaces_without_rebalance() -> None:
    h = Harness()
    a, b, gen = _static_stable(h)
    t = h.join(client="b", instance="ib")  # restarted process, same metadata
    r = h.join_result(t)
    assert r.error is Code.NONE and r.member_id != b
    assert r.generation_id == gen and h.group.state is GroupState.STABLE
    assert h.sync_result(h.sync(r.member_id, gen)).assignment == b"B"
    # the old incarnation is fenced everywhere
    assert h.group.heartbeat(
        h.now, member_id=b, generation_id=gen, group_instance_id="ib"
    ) is Code.FENCED_INSTANCE_ID
    assert h.sync_result(h.sync(b, gen, group_instance_id="ib")).error is Code.FENCED_INSTANCE_ID
    assert h.group.validate_offset_commit(
        h.now, member_id=b, generation_id=gen, group_instance_id="ib"
    ) is Code.FENCED_INSTANCE_ID
    assert a in h.group.members


def test_static_leader_rejoin_skips_assignment() -> None:
    h = Harness()
    a, _b, gen = _static_stable(h)
    r = h.join_result(h.join(client="a", instance="ia"))
    assert r.skip_assignment and r.leader == r.member_id != a
    assert len(r.members) == 2 and r.generation_id == gen
    assert h.sync_result(h.sync(r.member_id, gen, {})).assignment == b"A"


def test_static_member_rejoin_with_new_metadata_rebalances() -> None:
    h = Harness()
    a, b, gen = _static_stable(h)
    t = h.join(client="b", instance="ib", protocols=[("range", b"new-topics")])
    assert t not in h.results
    assert h.group.state is GroupState.PREPARING_REBALANCE
    ta = h.join(a, client="a", instance="ia")
    rb = h.join_result(t)
    assert rb.generation_id == gen + 1 == h.join_result(ta).generation_id
    assert b not in h.group.members


def test_static_member_replaced_while_parked_is_fenced() -> None:
    h = Harness()
    a, b, _gen = _static_stable(h)
    tb_old = h.join(b, client="b", instance="ib", protocols=[("range", b"x")])
    h.join(client="b", instance="ib", protocols=[("range", b"x")])
    assert h.join_result(tb_old).error is Code.FENCED_INSTANCE_ID
    assert a in h.group.members


def test_offset_commit_checks() -> None:
    h = Harness()
    g = h.group
    # a group without members accepts simple commits (standalone consumers, admin)
    assert g.validate_offset_commit(0, member_id="", generation_id=-1) is Code.NONE
    a, b, gen = h.stable_pair()
    assert g.validate_offset_commit(0, member_id="", generation_id=-1) is Code.UNKNOWN_MEMBER_ID
    assert g.validate_offset_commit(0, member_id="zz", generation_id=gen) is Code.UNKNOWN_MEMBER_ID
    assert g.validate_offset_commit(0, member_id=a, generation_id=gen - 1) is Code.ILLEGAL_GENERATION
    assert g.validate_offset_commit(0, member_id=a, generation_id=gen) is Code.NONE
    # during PreparingRebalance the current generation may still commit (eager revocation)
    c = h.new_member(client="c")
    h.join(c, client="c")
    assert g.validate_offset_commit(h.now, member_id=a, generation_id=gen) is Code.NONE
    h.join(a, client="a")
    h.join(b, client="b")
    assert g.state is GroupState.COMPLETING_REBALANCE
    code = g.validate_offset_commit(h.now, member_id=a, generation_id=gen + 1)
    assert code is Code.REBALANCE_IN_PROGRESS


def test_txn_offset_commit_checks() -> None:
    h = Harness()
    a, _b, gen = h.stable_pair()
    g = h.group
    assert g.validate_txn_offset_commit(member_id="", generation_id=-1) is Code.NONE
    assert g.validate_txn_offset_commit(member_id=a, generation_id=gen) is Code.NONE
    assert g.validate_txn_offset_commit(member_id="x", generation_id=gen) is Code.UNKNOWN_MEMBER_ID
    assert (
        g.validate_txn_offset_commit(member_id=a, generation_id=gen + 5)
        is Code.ILLEGAL_GENERATION
    )


def test_dead_group_refuses_everything() -> None:
    h = Harness()
    h.group.mark_dead(0)
    assert h.join_result(h.join()).error is Code.COORDINATOR_NOT_AVAILABLE
    assert h.group.heartbeat(0, member_id="a", generation_id=1) is Code.COORDINATOR_NOT_AVAILABLE


@pytest.mark.parametrize("extra_rejoins", [0, 1])
def test_retried_join_during_completing_rebalance(extra_rejoins: int) -> None:
    h = Harness()
    a = h.new_member(client="a")
    ta = h.join(a, client="a")
    gen = h.join_result(ta).generation_id
    for _ in range(extra_rejoins + 1):
        r = h.join_result(h.join(a, client="a"))
        assert r.generation_id == gen and r.leader == a and len(r.members) == 1
    assert h.group.state is GroupState.COMPLETING_REBALANCE
