"""Position validation after a leader change (KIP-320), sans-IO: when a partition awaits
validation, the OffsetForLeaderEpoch request, and what each answer does to the position."""

from __future__ import annotations

import pytest

from streamclient.consumer.offsets import FetchPosition, OffsetResetStrategy
from streamclient.consumer.records import CompletedFetch
from streamclient.consumer.subscription import FetchState, SubscriptionState
from streamclient.consumer.validation import (
    EpochEndOffset,
    ValidationOutcome,
    apply_epoch_end_offset,
    is_fatal,
    offset_for_leader_epoch_request,
    read_offset_for_leader_epoch,
    supports_validation,
    truncation_error,
)
from streamclient.errors import (
    FencedLeaderEpochError,
    IllegalArgumentError,
    LogTruncationError,
    NotLeaderForPartitionError,
    OffsetOutOfRangeError,
    TopicAuthorizationFailedError,
)
from streamclient.protocol.framing import decode_request, encode_request
from streamclient.protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from streamclient.protocol.records import RecordBatchBuilder
from streamclient.structs import TopicPartition

TP = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
OTHER = TopicPartition("u", 3)


def fetching_at(
    offset: int,
    epoch: int | None,
    *,
    strategy: OffsetResetStrategy = OffsetResetStrategy.EARLIEST,
    leader: int = 1,
    leader_epoch: int = 4,
) -> SubscriptionState:
    """A partition fetching from ``leader`` at (offset, epoch)."""
    subs = SubscriptionState(strategy)
    subs.assign([TP])
    subs.update_leader(TP, leader, leader_epoch)
    subs.seek(TP, offset)  # no epoch: fetches at once
    if epoch is not None:
        subs.advance(TP, FetchPosition(offset, epoch))
    assert subs.state(TP).fetch_state is FetchState.FETCHING
    return subs


# --- entering AWAIT_VALIDATION --------------------------------------------------------


def test_a_new_leader_epoch_makes_a_position_with_an_epoch_await_validation() -> None:
    subs = fetching_at(10, 3)
    assert subs.update_leader(TP, 1, 4) is False  # unchanged: nothing to validate
    assert subs.update_leader(TP, 2, 5) is True
    assert subs.state(TP).fetch_state is FetchState.AWAIT_VALIDATION
    assert not subs.is_fetchable(TP) and not subs.has_valid_position(TP)
    assert subs.fetchable_partitions() == []
    assert subs.all_consumed() == {}  # not committed while it may be wrong
    assert subs.partitions_needing_validation(0) == {TP: FetchPosition(10, 3)}
    # the new epoch goes into FetchRequest once fetching resumes
    assert subs.state(TP).current_leader_epoch == 5


def test_a_new_leader_alone_is_a_change_too() -> None:
    subs = fetching_at(10, 3)
    assert subs.update_leader(TP, 2, 4) is True


def test_positions_without_an_epoch_are_never_validated() -> None:
    subs = fetching_at(10, None)
    assert subs.update_leader(TP, 2, 5) is False
    assert subs.is_fetchable(TP)


def test_an_unknown_leader_changes_nothing() -> None:
    subs = fetching_at(10, 3)
    assert subs.update_leader(TP, -1, 9) is False
    assert subs.update_leader(TP, None, None) is False
    assert subs.state(TP).current_leader == 1 and subs.is_fetchable(TP)


def test_a_leader_without_epochs_skips_validation() -> None:
    subs = fetching_at(10, 3)
    # a broker that reports no epoch (-1): there is nothing to compare against
    assert subs.update_leader(TP, 2, -1) is False
    assert subs.is_fetchable(TP) and subs.state(TP).current_leader_epoch is None


def test_validate_false_resumes_fetching() -> None:
    subs = fetching_at(10, 3)
    subs.update_leader(TP, 2, 5)
    assert subs.update_leader(TP, 2, 5, validate=False) is False
    assert subs.is_fetchable(TP)


def test_seek_with_an_epoch_validates_and_without_does_not() -> None:
    subs = fetching_at(0, None)
    subs.seek(TP, 7, 2)
    assert subs.awaiting_validation(TP)
    assert subs.position(TP) == FetchPosition(7, 2)
    subs.seek(TP, 8)
    assert subs.is_fetchable(TP)
    with pytest.raises(IllegalArgumentError, match="leader_epoch"):
        subs.seek(TP, 8, -3)


def test_seek_with_an_epoch_before_the_leader_is_known_validates_once_it_is() -> None:
    subs = SubscriptionState(OffsetResetStrategy.EARLIEST)
    subs.assign([TP])
    subs.seek(TP, 7, 2)  # committed offset arrives before metadata: nothing to check yet
    assert subs.is_fetchable(TP)
    assert subs.update_leader(TP, 0, 2) is True


def test_reset_positions_keep_their_epoch_without_validation() -> None:
    subs = SubscriptionState(OffsetResetStrategy.LATEST)
    subs.assign([TP])
    subs.update_leader(TP, 1, 4)
    subs.request_offset_reset(TP)
    assert subs.complete_reset(TP, OffsetResetStrategy.LATEST, 30, 4)
    assert subs.is_fetchable(TP) and subs.position(TP) == FetchPosition(30, 4)
    assert subs.update_leader(TP, 2, 5) is True


def test_a_partition_awaiting_reset_only_records_the_leader() -> None:
    subs = SubscriptionState(OffsetResetStrategy.LATEST)
    subs.assign([TP])
    subs.request_offset_reset(TP)
    assert subs.update_leader(TP, 2, 5) is False
    assert subs.state(TP).fetch_state is FetchState.AWAIT_RESET
    assert subs.state(TP).current_leader_epoch == 5


def test_failed_validations_back_off_until_the_leader_changes() -> None:
    subs = fetching_at(10, 3)
    subs.update_leader(TP, 2, 5)
    subs.validation_failed(TP, 500)
    assert subs.partitions_needing_validation(499) == {}
    assert subs.next_validation_ms() == 500
    assert subs.partitions_needing_validation(500) == {TP: FetchPosition(10, 3)}
    subs.update_leader(TP, 0, 6)  # new metadata: ask the new leader at once
    assert subs.partitions_needing_validation(0) == {TP: FetchPosition(10, 3)}
    subs.complete_validation(TP)
    assert subs.next_validation_ms() is None and subs.is_fetchable(TP)


# --- applying the answer --------------------------------------------------------------


def awaiting(
    offset: int = 10, epoch: int = 3, strategy: OffsetResetStrategy = OffsetResetStrategy.EARLIEST
) -> SubscriptionState:
    subs = fetching_at(offset, epoch, strategy=strategy)
    subs.update_leader(TP, 2, 5)
    return subs


def test_an_end_offset_at_or_past_the_position_is_valid() -> None:
    for end in (10, 11):
        subs = awaiting()
        result = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), EpochEndOffset(3, end))
        assert result.outcome is ValidationOutcome.VALID
        assert subs.is_fetchable(TP) and subs.position(TP) == FetchPosition(10, 3)


@pytest.mark.parametrize("strategy", [OffsetResetStrategy.EARLIEST, OffsetResetStrategy.LATEST])
def test_truncation_moves_to_the_divergence_point_whatever_the_policy(
    strategy: OffsetResetStrategy,
) -> None:
    subs = awaiting(strategy=strategy)
    result = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), EpochEndOffset(2, 6))
    assert result.outcome is ValidationOutcome.RESET_TO_DIVERGENCE
    assert (result.fetch_offset, result.divergent_offset) == (10, 6)
    # the epoch the broker answered belongs to the record before the divergence point
    assert subs.position(TP) == FetchPosition(6, 2) and subs.is_fetchable(TP)


def test_truncation_with_policy_none_leaves_the_partition_waiting() -> None:
    subs = awaiting(strategy=OffsetResetStrategy.NONE)
    result = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), EpochEndOffset(3, 6))
    assert result.outcome is ValidationOutcome.TRUNCATED and result.divergent_offset == 6
    assert subs.awaiting_validation(TP) and subs.position(TP) == FetchPosition(10, 3)


@pytest.mark.parametrize("end", [EpochEndOffset(-1, -1), EpochEndOffset(3, -1),
                                 EpochEndOffset(-1, 4)])
def test_an_undefined_answer_resets_by_policy(end: EpochEndOffset) -> None:
    subs = awaiting(strategy=OffsetResetStrategy.LATEST)
    result = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), end)
    assert result.outcome is ValidationOutcome.RESET_BY_POLICY
    assert subs.state(TP).fetch_state is FetchState.AWAIT_RESET
    assert subs.partitions_needing_reset(0) == {TP: OffsetResetStrategy.LATEST}


def test_an_undefined_answer_with_policy_none_is_a_truncation_to_an_unknown_offset() -> None:
    subs = awaiting(strategy=OffsetResetStrategy.NONE)
    result = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), EpochEndOffset(-1, -1))
    assert result.outcome is ValidationOutcome.TRUNCATED and result.divergent_offset is None
    assert subs.awaiting_validation(TP)


def test_a_stale_answer_is_ignored() -> None:
    subs = awaiting()
    subs.seek(TP, 3)  # the application moved on while the request was out
    result = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), EpochEndOffset(3, 6))
    assert result.outcome is ValidationOutcome.IGNORED
    assert subs.position(TP) == FetchPosition(3) and subs.is_fetchable(TP)
    subs = awaiting()
    subs.seek(TP, 12, 3)  # awaiting again, but for another position
    result = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), EpochEndOffset(3, 6))
    assert result.outcome is ValidationOutcome.IGNORED and subs.awaiting_validation(TP)


def test_the_error_names_every_partition_and_is_an_offset_out_of_range() -> None:
    subs = awaiting(strategy=OffsetResetStrategy.NONE)
    first = apply_epoch_end_offset(subs, TP, FetchPosition(10, 3), EpochEndOffset(3, 6))
    error = truncation_error([first, first.__class__(TP1, first.outcome, 40)])
    assert isinstance(error, LogTruncationError) and isinstance(error, OffsetOutOfRangeError)
    assert error.fetch_offsets == {TP: 10, TP1: 40}
    assert error.divergent_offsets == {TP: 6}
    text = str(error)
    assert "position 10, diverged at 6" in text and "position 40, diverged at an unknown" in text


# --- the request and the answer --------------------------------------------------------


def test_the_request_is_the_consumer_form_per_topic() -> None:
    request = offset_for_leader_epoch_request(
        {TP1: (FetchPosition(5, 2), 7), TP: (FetchPosition(9, 3), None), OTHER: (FetchPosition(1, 0), 0)}
    )
    assert request.replica_id == -1
    got = {
        (t.topic, p.partition): (p.current_leader_epoch, p.leader_epoch)
        for t in request.topics
        for p in t.partitions
    }
    assert got == {("t", 0): (-1, 3), ("t", 1): (7, 2), ("u", 3): (0, 0)}
    assert [t.topic for t in request.topics] == ["t", "u"]
    # it encodes at the first consumer version and the broker side reads it back
    frame = encode_request(request, 3, correlation_id=1, client_id="c")
    _, decoded = decode_request(frame[4:])
    assert isinstance(decoded, OffsetForLeaderEpochRequest) and decoded.replica_id == -1
    with pytest.raises(ValueError, match="no leader epoch"):
        offset_for_leader_epoch_request({TP: (FetchPosition(9), 1)})


def test_only_v3_and_later_can_validate() -> None:
    key = OffsetForLeaderEpochRequest.API_KEY
    assert supports_validation({key: (0, 4)}) and supports_validation({key: (3, 3)})
    assert not supports_validation({key: (0, 2)})
    assert not supports_validation({})  # Tansu does not advertise the API at all


def test_reading_the_answer() -> None:
    Result = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult
    response = OffsetForLeaderEpochResponse(
        topics=[
            Result(
                topic="t",
                partitions=[
                    Result.EpochEndOffset(partition=0, leader_epoch=3, end_offset=6),
                    Result.EpochEndOffset(partition=1, error_code=74),
                ],
            ),
            Result(topic="u", partitions=[Result.EpochEndOffset(partition=3, error_code=6)]),
        ]
    )
    found, failed = read_offset_for_leader_epoch(response)
    assert found == {TP: EpochEndOffset(3, 6)}
    assert failed == {TP1: FencedLeaderEpochError, OTHER: NotLeaderForPartitionError}
    assert not found[TP].undefined and EpochEndOffset(-1, -1).undefined
    assert not is_fatal(FencedLeaderEpochError) and not is_fatal(NotLeaderForPartitionError)
    assert is_fatal(TopicAuthorizationFailedError)


# --- buffered data ---------------------------------------------------------------------


def test_data_buffered_before_the_leader_changed_is_dropped() -> None:
    builder = RecordBatchBuilder(partition_leader_epoch=3)
    for i in range(3):
        assert builder.append(1_700_000_000_000, None, b"v%d" % i, ()) is not None
    data = builder.build()
    subs = fetching_at(0, 3)
    fetch = CompletedFetch(TP, 0, data)
    subs.update_leader(TP, 2, 5)
    assert fetch.drain_into(subs) == [] and fetch.exhausted
    assert subs.position(TP) == FetchPosition(0, 3)
    # once validated, a fresh fetch hands records out and the epoch follows them
    subs.complete_validation(TP)
    records = CompletedFetch(TP, 0, data).drain_into(subs)
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    assert subs.position(TP) == FetchPosition(3, 3)
