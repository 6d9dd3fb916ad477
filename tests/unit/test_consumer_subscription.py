"""SubscriptionState: subscription kinds, assignment, positions, resets, pause, patterns."""

from __future__ import annotations

import re

import pytest

from streamclient.consumer.offsets import FetchPosition, OffsetResetStrategy
from streamclient.consumer.subscription import (
    FetchState,
    InvalidPatternError,
    SubscriptionState,
    SubscriptionType,
)
from streamclient.errors import IllegalArgumentError, IllegalStateError
from streamclient.structs import OffsetAndMetadata, TopicPartition

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def test_subscribe_and_assign_are_exclusive() -> None:
    s = SubscriptionState()
    assert s.subscribe(["a"]) is True
    assert s.subscribe(["a"]) is False
    with pytest.raises(IllegalStateError, match="mutually exclusive"):
        s.assign([A0])
    with pytest.raises(IllegalStateError):
        s.subscribe_pattern("a.*")
    s.unsubscribe()
    assert s.subscription_type is SubscriptionType.NONE
    assert s.assign([A0]) is True
    with pytest.raises(IllegalStateError):
        s.subscribe(["a"])
    assert s.is_user_assigned


def test_subscribe_rejects_bad_topics() -> None:
    s = SubscriptionState()
    with pytest.raises(IllegalArgumentError):
        s.subscribe([""])
    with pytest.raises(IllegalArgumentError):
        s.assign([("a", "0")])  # type: ignore[list-item]


def test_pattern_matching_excludes_internal_topics() -> None:
    s = SubscriptionState()
    s.subscribe_pattern(re.compile(r"(__)?t.*"))
    internal = {"__transaction_state"}
    assert s.subscribe_from_pattern(["t1", "t2", "x", "__transaction_state"], internal)
    assert s.subscription == {"t1", "t2"}
    assert not s.subscribe_from_pattern(["t2", "t1"], internal)
    keep = SubscriptionState(exclude_internal_topics=False)
    keep.subscribe_pattern("__.*")
    keep.subscribe_from_pattern(["__consumer_offsets", "a"], {"__consumer_offsets"})
    assert keep.subscription == {"__consumer_offsets"}


def test_pattern_matches_from_start_like_aiokafka() -> None:
    s = SubscriptionState()
    s.subscribe_pattern("top")
    s.subscribe_from_pattern(["top", "topic", "stop"])
    assert s.subscription == {"top", "topic"}
    s.subscribe_pattern("top$")
    s.subscribe_from_pattern(["top", "topic", "stop"])
    assert s.subscription == {"top"}


def test_bad_pattern() -> None:
    with pytest.raises(InvalidPatternError) as info:
        SubscriptionState().subscribe_pattern("(")
    assert isinstance(info.value, ValueError)
    with pytest.raises(IllegalStateError):
        SubscriptionState().subscribe_from_pattern(["a"])


def test_assign_from_subscribed_keeps_state_of_kept_partitions() -> None:
    s = SubscriptionState()
    s.subscribe(["a", "b"])
    s.assign_from_subscribed([A0, A1])
    s.seek(A0, 5)
    before = s.assignment_id
    s.assign_from_subscribed([A0, B0])
    assert s.assignment_id > before
    assert s.position(A0) == FetchPosition(5)
    assert s.state(B0).fetch_state is FetchState.INITIALIZING
    assert s.assigned_partitions() == {A0, B0}
    with pytest.raises(IllegalArgumentError, match="unsubscribed"):
        s.assign_from_subscribed([TopicPartition("c", 0)])


def test_assign_from_subscribed_needs_subscription() -> None:
    s = SubscriptionState()
    s.assign([A0])
    with pytest.raises(IllegalStateError):
        s.assign_from_subscribed([A0])


def test_incremental_add_remove() -> None:
    s = SubscriptionState()
    s.subscribe(["a"])
    assert s.add_assigned([A0, A1]) == [A0, A1]
    s.seek(A0, 3)
    assert s.add_assigned([A0]) == []
    assert s.position(A0) == FetchPosition(3)
    assert s.remove_assigned([A1, B0]) == [A1]
    assert s.assigned_partitions() == {A0}


def test_positions_and_fetchable() -> None:
    s = SubscriptionState()
    s.assign([A0, A1, B0])
    assert s.fetchable_partitions() == []
    assert s.initializing_partitions() == [A0, A1, B0]
    assert not s.has_all_fetch_positions()
    s.seek(A0, 1)
    s.seek(A1, 2, leader_epoch=4)
    s.seek(B0, 0)
    assert s.has_all_fetch_positions()
    assert s.fetchable_partitions() == [A0, A1, B0]
    s.move_partition_to_end(A0)
    assert s.fetchable_partitions() == [A1, B0, A0]
    s.pause(A1)
    assert s.paused() == {A1}
    assert s.fetchable_partitions() == [B0, A0]
    s.resume(A1)
    assert s.is_fetchable(A1)
    assert s.all_consumed() == {
        A0: OffsetAndMetadata(1, ""),
        A1: OffsetAndMetadata(2, ""),
        B0: OffsetAndMetadata(0, ""),
    }
    assert s.consumed_leader_epochs() == {A1: 4}


def test_seek_validation_and_unassigned() -> None:
    s = SubscriptionState()
    s.assign([A0])
    for bad in (-1, 1.0, True, "3"):
        with pytest.raises(IllegalArgumentError):
            s.seek(A0, bad)  # type: ignore[arg-type]
    with pytest.raises(IllegalStateError, match="No current assignment"):
        s.seek(B0, 1)
    with pytest.raises(IllegalStateError):
        s.pause(B0)


def test_offset_reset_flow() -> None:
    s = SubscriptionState(OffsetResetStrategy.EARLIEST)
    s.assign([A0, A1])
    s.request_offset_reset(A0)
    s.request_offset_reset(A1, OffsetResetStrategy.LATEST)
    assert s.partitions_needing_reset(0) == {
        A0: OffsetResetStrategy.EARLIEST,
        A1: OffsetResetStrategy.LATEST,
    }
    s.reset_failed(A0, next_allowed_ms=100)
    assert s.partitions_needing_reset(99) == {A1: OffsetResetStrategy.LATEST}
    assert A0 in s.partitions_needing_reset(100)
    # an answer for another strategy than the one now pending is stale
    assert not s.complete_reset(A1, OffsetResetStrategy.EARLIEST, 0)
    assert s.complete_reset(A1, OffsetResetStrategy.LATEST, 42, leader_epoch=3)
    assert s.position(A1) == FetchPosition(42, 3)
    # a seek while the reset is out wins over the reset's answer
    s.seek(A0, 7)
    assert not s.complete_reset(A0, OffsetResetStrategy.EARLIEST, 0)
    assert s.position(A0) == FetchPosition(7)
    with pytest.raises(IllegalArgumentError):
        s.request_offset_reset(A0, OffsetResetStrategy.NONE)


def test_default_none_policy_cannot_reset() -> None:
    s = SubscriptionState(OffsetResetStrategy.NONE)
    s.assign([A0])
    with pytest.raises(IllegalArgumentError):
        s.request_offset_reset(A0)


def test_advance_ignored_after_seek_or_reset() -> None:
    s = SubscriptionState()
    s.assign([A0])
    s.seek(A0, 0)
    s.advance(A0, FetchPosition(10, 1))
    assert s.position(A0) == FetchPosition(10, 1)
    s.request_offset_reset(A0)
    s.advance(A0, FetchPosition(20))
    assert s.position(A0) is None
    s.advance(B0, FetchPosition(1))  # unassigned: ignored


def test_pending_revocation_not_fetchable_not_owned_but_assigned() -> None:
    s = SubscriptionState()
    s.subscribe(["a"])
    s.assign_from_subscribed([A0, A1])
    s.seek(A0, 1)
    s.seek(A1, 1)
    s.mark_pending_revocation([A0])
    assert s.fetchable_partitions() == [A1]
    assert s.owned_partitions() == [A1]
    assert s.is_assigned(A0)
    assert A0 in s.all_consumed()  # the revocation listener may still commit it


def test_fetch_offsets_poll_time_and_replica() -> None:
    s = SubscriptionState()
    s.assign([A0])
    s.update_fetch_offsets(A0, high_watermark=10, last_stable_offset=8, log_start_offset=2)
    s.update_fetch_offsets(A0, high_watermark=-1, last_stable_offset=-1)
    st = s.state(A0)
    assert (st.high_watermark, st.last_stable_offset, st.log_start_offset) == (10, 8, 2)
    s.record_poll(A0, 1234)
    assert st.last_poll_timestamp_ms == 1234
    s.set_preferred_read_replica(A0, 3, expires_ms=500)
    assert s.preferred_read_replica(A0, 499) == 3
    assert s.preferred_read_replica(A0, 500) is None
    s.set_preferred_read_replica(A0, 3, expires_ms=900)
    s.clear_preferred_read_replica(A0)
    assert s.preferred_read_replica(A0, 0) is None


def test_group_subscription_for_leader() -> None:
    s = SubscriptionState()
    s.subscribe(["a"])
    s.set_group_subscription({"b", "c"})
    assert s.group_subscription == {"a", "b", "c"}
    s.reset_group_subscription()
    assert s.group_subscription == {"a"}


def test_unsubscribe_clears_assignment() -> None:
    s = SubscriptionState()
    s.subscribe(["a"])
    s.assign_from_subscribed([A0])
    s.unsubscribe()
    assert s.assigned_partitions() == set()
    assert s.subscription == frozenset()
