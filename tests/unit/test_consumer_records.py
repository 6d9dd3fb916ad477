"""Fetched data → ConsumerRecords: positions, read_committed, gaps, partial and corrupt
batches, deserializers, max_records slicing, and per-partition error decisions."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.consumer.offsets import FetchPosition, OffsetResetStrategy
from streamclient.consumer.records import (
    READ_COMMITTED,
    READ_UNCOMMITTED,
    CompletedFetch,
    read_partition_response,
)
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import (
    CorruptRecordException,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownError,
)
from streamclient.protocol.messages.fetch import FetchResponse
from streamclient.protocol.records import (
    Compression,
    ControlRecordType,
    RecordBatchBuilder,
    build_control_batch,
)
from streamclient.structs import TopicPartition

TP = TopicPartition("t", 0)
PartitionData = FetchResponse.FetchableTopicResponse.PartitionData
Aborted = PartitionData.AbortedTransaction


def batch(
    base: int,
    values: Sequence[bytes | None],
    *,
    pid: int = -1,
    txn: bool = False,
    leader_epoch: int = -1,
    compression: Compression = Compression.NONE,
    keys: Sequence[bytes | None] | None = None,
) -> bytes:
    builder = RecordBatchBuilder(
        compression=compression,
        is_transactional=txn,
        producer_id=pid,
        producer_epoch=0 if pid >= 0 else -1,
        base_sequence=0 if pid >= 0 else -1,
        base_offset=base,
        partition_leader_epoch=leader_epoch,
    )
    for i, value in enumerate(values):
        key = keys[i] if keys is not None else b"k%d" % (base + i)
        builder.append(1_000 + base + i, key, value, [("h", b"v")])
    return builder.build()


def marker(offset: int, pid: int, commit: bool) -> bytes:
    kind = ControlRecordType.COMMIT if commit else ControlRecordType.ABORT
    return build_control_batch(
        kind,
        producer_id=pid,
        producer_epoch=0,
        coordinator_epoch=1,
        timestamp_ms=5,
        base_offset=offset,
    )


def with_last_offset_delta(data: bytes, delta: int) -> bytes:
    """What compaction leaves: the header keeps the batch's range, records are fewer."""
    out = bytearray(data)
    struct.pack_into(">i", out, 23, delta)
    struct.pack_into(">I", out, 17, crc32c(bytes(out[21:])))
    return bytes(out)


def offsets(records: Sequence[object]) -> list[int]:
    return [r.offset for r in records]  # type: ignore[attr-defined]


def test_plain_batches_all_taken() -> None:
    data = batch(0, [b"a", b"b"], leader_epoch=3) + batch(2, [b"c"], leader_epoch=4)
    fetch = CompletedFetch(TP, 0, data)
    records = fetch.take()
    assert offsets(records) == [0, 1, 2]
    assert [r.value for r in records] == [b"a", b"b", b"c"]
    assert fetch.next_fetch_offset == 3
    assert fetch.last_epoch == 4
    assert fetch.exhausted
    first = records[0]
    assert (first.topic, first.partition, first.timestamp, first.timestamp_type) == (
        "t",
        0,
        1000,
        0,
    )
    assert first.key == b"k0"
    assert first.serialized_key_size == 2
    assert first.serialized_value_size == 1
    assert first.checksum is None
    assert tuple(first.headers) == (("h", b"v"),)


def test_records_below_position_are_skipped() -> None:
    data = batch(0, [b"0", b"1", b"2", b"3", b"4"], compression=Compression.GZIP)
    fetch = CompletedFetch(TP, 3, data)
    assert offsets(fetch.take()) == [3, 4]
    assert fetch.next_fetch_offset == 5


def test_whole_batch_below_position_is_skipped() -> None:
    data = batch(0, [b"0", b"1"]) + batch(2, [b"2"])
    fetch = CompletedFetch(TP, 2, data)
    assert offsets(fetch.take()) == [2]


def test_null_key_and_value_sizes() -> None:
    data = batch(0, [None], keys=[None])
    (record,) = CompletedFetch(TP, 0, data).take()
    assert record.key is None and record.value is None
    assert record.serialized_key_size == -1 and record.serialized_value_size == -1


def test_compaction_gap_moves_position_past_batch_end() -> None:
    data = with_last_offset_delta(batch(10, [b"x", b"y"]), 5)
    fetch = CompletedFetch(TP, 10, data)
    assert offsets(fetch.take()) == [10, 11]
    assert fetch.next_fetch_offset == 16  # last offset 15, not 10 + 2


def test_gap_between_batches() -> None:
    data = batch(0, [b"a"]) + batch(7, [b"b"])
    fetch = CompletedFetch(TP, 0, data)
    assert offsets(fetch.take()) == [0, 7]
    assert fetch.next_fetch_offset == 8


def test_partial_trailing_batch_is_ignored() -> None:
    whole = batch(0, [b"a", b"b"])
    cut = batch(2, [b"c" * 50])[:-10]
    fetch = CompletedFetch(TP, 0, whole + cut)
    assert offsets(fetch.take()) == [0, 1]
    assert fetch.next_fetch_offset == 2
    assert fetch.exhausted


def test_only_a_partial_batch_means_record_too_large() -> None:
    cut = batch(0, [b"c" * 50])[:-10]
    fetch = CompletedFetch(TP, 0, cut)
    with pytest.raises(RecordTooLargeError, match="max_partition_fetch_bytes"):
        fetch.take()
    assert fetch.next_fetch_offset == 0
    assert not fetch.exhausted


def test_empty_data_gives_nothing() -> None:
    for data in (None, b""):
        fetch = CompletedFetch(TP, 4, data)
        assert fetch.take() == []
        assert fetch.exhausted
        assert fetch.next_fetch_offset == 4


def test_crc_failure_after_good_records() -> None:
    good = batch(0, [b"a"])
    bad = bytearray(batch(1, [b"b", b"c"]))
    bad[-1] ^= 0xFF
    fetch = CompletedFetch(TP, 0, good + bytes(bad))
    assert offsets(fetch.take()) == [0]  # records before the bad batch are handed out
    with pytest.raises(CorruptRecordException, match="CRC"):
        fetch.take()
    with pytest.raises(CorruptRecordException):
        fetch.take()  # it stays failed
    assert fetch.next_fetch_offset == 1
    assert not fetch.exhausted


def test_crc_not_checked_when_disabled() -> None:
    raw = bytearray(batch(0, [b"abc"]))
    raw[-1] ^= 0x01  # flip a bit of the last header value, not the framing
    records = CompletedFetch(TP, 0, bytes(raw), check_crcs=False).take()
    assert offsets(records) == [0]


def test_max_records_slicing_and_position_advance() -> None:
    subs = SubscriptionState()
    subs.assign([TP])
    subs.seek(TP, 0)
    data = batch(0, [b"0", b"1", b"2"], leader_epoch=2) + marker(3, 9, commit=True)
    fetch = CompletedFetch(TP, 0, data)
    assert offsets(fetch.drain_into(subs, 2)) == [0, 1]
    assert subs.position(TP) == FetchPosition(2, 2)
    assert offsets(fetch.drain_into(subs, 1)) == [2]
    assert subs.position(TP) == FetchPosition(3, 2)
    # the trailing control batch is consumed on the next call: position moves past it
    assert fetch.drain_into(subs, 1) == []
    assert subs.position(TP) == FetchPosition(4, 2)
    assert fetch.exhausted


def test_take_runs_past_trailing_control_batch_when_below_limit() -> None:
    data = batch(0, [b"0"]) + marker(1, 9, commit=True)
    fetch = CompletedFetch(TP, 0, data)
    assert offsets(fetch.take(5)) == [0]
    assert fetch.next_fetch_offset == 2
    assert fetch.exhausted


def test_drain_discards_after_seek_and_keeps_while_paused() -> None:
    subs = SubscriptionState()
    subs.assign([TP])
    subs.seek(TP, 0)
    fetch = CompletedFetch(TP, 0, batch(0, [b"0", b"1"]))
    subs.pause(TP)
    assert fetch.drain_into(subs) == []
    assert not fetch.exhausted
    subs.resume(TP)
    subs.seek(TP, 1)  # position no longer where the fetch started
    assert fetch.drain_into(subs) == []
    assert fetch.exhausted
    assert subs.position(TP) == FetchPosition(1)


def test_drain_discards_unassigned() -> None:
    subs = SubscriptionState()
    subs.assign([TopicPartition("other", 0)])
    fetch = CompletedFetch(TP, 0, batch(0, [b"0"]))
    assert fetch.drain_into(subs) == []
    assert fetch.exhausted


def test_deserializers_lazy_and_called_for_none() -> None:
    seen: list[bytes | None] = []

    def value_deser(raw: bytes | None) -> str:
        seen.append(raw)
        return "none" if raw is None else raw.decode()

    data = batch(0, [b"a", None, b"c"], keys=[None, b"k", None])
    fetch = CompletedFetch(
        TP, 0, data, key_deserializer=lambda k: k, value_deserializer=value_deser
    )
    first = fetch.take(1)
    assert seen == [b"a"]  # only the record handed out was deserialized
    rest = fetch.take()
    assert seen == [b"a", None, b"c"]
    assert [r.value for r in first + rest] == ["a", "none", "c"]


# --- read_committed ------------------------------------------------------------------


def interleaved() -> bytes:
    return (
        batch(0, [b"p1-a", b"p1-b"], pid=1, txn=True)  # 0-1, producer 1, aborted
        + batch(2, [b"p2-a", b"p2-b"], pid=2, txn=True)  # 2-3, producer 2, committed
        + marker(4, 1, commit=False)
        + marker(5, 2, commit=True)
        + batch(6, [b"plain"])  # 6, not transactional
    )


def test_read_committed_drops_aborted_transactions() -> None:
    fetch = CompletedFetch(
        TP,
        0,
        interleaved(),
        isolation_level=READ_COMMITTED,
        aborted_transactions=[Aborted(producer_id=1, first_offset=0)],
    )
    records = fetch.take()
    assert [r.value for r in records] == [b"p2-a", b"p2-b", b"plain"]
    assert fetch.next_fetch_offset == 7


def test_read_uncommitted_keeps_aborted_but_never_control() -> None:
    fetch = CompletedFetch(
        TP,
        0,
        interleaved(),
        isolation_level=READ_UNCOMMITTED,
        aborted_transactions=[Aborted(producer_id=1, first_offset=0)],
    )
    assert offsets(fetch.take()) == [0, 1, 2, 3, 6]


def test_abort_marker_ends_the_abort_for_that_producer() -> None:
    data = (
        batch(0, [b"x1", b"x2"], pid=1, txn=True)
        + marker(2, 1, commit=False)
        + batch(3, [b"y1", b"y2"], pid=1, txn=True)
        + marker(5, 1, commit=True)
    )
    fetch = CompletedFetch(
        TP,
        0,
        data,
        isolation_level=READ_COMMITTED,
        aborted_transactions=[Aborted(producer_id=1, first_offset=0)],
    )
    assert [r.value for r in fetch.take()] == [b"y1", b"y2"]
    assert fetch.next_fetch_offset == 6


def test_abort_is_tracked_from_its_first_offset() -> None:
    # producer 1 commits a transaction, then aborts the next one: only the second is
    # listed, by its first offset, so the first must survive
    data = (
        batch(0, [b"kept"], pid=1, txn=True)
        + marker(1, 1, commit=True)
        + batch(2, [b"gone1", b"gone2"], pid=1, txn=True)
        + marker(4, 1, commit=False)
        + batch(5, [b"after"], pid=1, txn=True)
    )
    fetch = CompletedFetch(
        TP,
        0,
        data,
        isolation_level=READ_COMMITTED,
        aborted_transactions=[Aborted(producer_id=1, first_offset=2)],
    )
    assert [r.value for r in fetch.take()] == [b"kept", b"after"]
    assert fetch.next_fetch_offset == 6


def test_aborted_batch_before_position_still_tracks_marker() -> None:
    # the fetch starts inside the aborted range; the abort must still end at its marker
    data = batch(0, [b"a0", b"a1", b"a2"], pid=3, txn=True) + marker(3, 3, commit=False)
    data += batch(4, [b"next"], pid=3, txn=True)
    fetch = CompletedFetch(
        TP,
        2,
        data,
        isolation_level=READ_COMMITTED,
        aborted_transactions=[Aborted(producer_id=3, first_offset=0)],
    )
    assert [r.value for r in fetch.take()] == [b"next"]


def test_read_committed_without_aborted_list_returns_all_data() -> None:
    fetch = CompletedFetch(TP, 0, interleaved(), isolation_level=READ_COMMITTED)
    assert offsets(fetch.take()) == [0, 1, 2, 3, 6]


# --- per-partition decisions ----------------------------------------------------------


def decide(code: int, **kwargs: object):  # type: ignore[no-untyped-def]
    data = PartitionData(partition_index=0, error_code=code, high_watermark=-1)
    options = {"fetch_offset": 12, "default_reset": OffsetResetStrategy.EARLIEST}
    options.update(kwargs)
    return read_partition_response(TP, data, **options)  # type: ignore[arg-type]


def test_success_builds_completed_fetch_with_offsets() -> None:
    data = PartitionData(
        partition_index=0,
        high_watermark=10,
        last_stable_offset=9,
        log_start_offset=1,
        preferred_read_replica=2,
        records=batch(5, [b"x"]),
    )
    decision = read_partition_response(
        TP, data, fetch_offset=5, default_reset=OffsetResetStrategy.LATEST
    )
    assert decision.error is None and decision.completed is not None
    assert decision.preferred_read_replica == 2
    assert decision.completed.high_watermark == 10
    assert decision.completed.last_stable_offset == 9
    assert offsets(decision.completed.take()) == [5]


def test_offset_out_of_range_resets_by_policy() -> None:
    assert decide(1).reset is OffsetResetStrategy.EARLIEST
    strict = decide(1, default_reset=OffsetResetStrategy.NONE)
    assert isinstance(strict.error, OffsetOutOfRangeError)
    assert strict.error.args[0] == {TP: 12}
    follower = decide(1, from_follower=True)
    assert follower.reset is None and follower.error is None
    assert follower.clear_preferred_replica


@pytest.mark.parametrize("code", [3, 6, 9, 56, 74, 78, 100])
def test_leadership_errors_refresh_metadata(code: int) -> None:
    decision = decide(code)
    assert decision.refresh_metadata
    assert decision.error is None and decision.reset is None
    assert decision.clear_preferred_replica


def test_authorization_is_raised() -> None:
    decision = decide(29)
    assert isinstance(decision.error, TopicAuthorizationFailedError)
    assert decision.error.args == ("t",)


def test_retriable_errors_just_retry_and_others_raise() -> None:
    retry = decide(75)  # UNKNOWN_LEADER_EPOCH
    assert retry.error is None and not retry.refresh_metadata
    assert isinstance(decide(-1).error, UnknownError)
    corrupt = decide(2)
    assert isinstance(corrupt.error, CorruptRecordException)


def test_decisions_applied_to_subscription() -> None:
    subs = SubscriptionState()
    subs.assign([TP])
    subs.seek(TP, 5)
    data = PartitionData(
        partition_index=0,
        high_watermark=10,
        last_stable_offset=9,
        log_start_offset=1,
        preferred_read_replica=2,
        records=batch(5, [b"x"]),
    )
    decision = read_partition_response(
        TP, data, fetch_offset=5, default_reset=OffsetResetStrategy.LATEST
    )
    decision.apply_to(subs, now_ms=100, replica_ttl_ms=50)
    state = subs.state(TP)
    assert (state.high_watermark, state.last_stable_offset, state.log_start_offset) == (10, 9, 1)
    assert subs.preferred_read_replica(TP, 149) == 2
    decide(1).apply_to(subs, now_ms=120, replica_ttl_ms=50)
    assert subs.preferred_read_replica(TP, 121) is None
    assert subs.partitions_needing_reset(120) == {TP: OffsetResetStrategy.EARLIEST}
    assert subs.position(TP) is None


# --- read_committed against a model of the log -----------------------------------------

# one step: (producer 0 = not transactional, 1..3 = transactional), records in the batch,
# and for a transactional producer whether this step ends its transaction (and how)
steps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 3), st.sampled_from([None, "commit", "abort"])),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps, st.data())
def test_read_committed_matches_log_model(plan, data) -> None:  # type: ignore[no-untyped-def]
    log = b""
    offset = 0
    open_txn: dict[int, list[int]] = {}  # producer → offsets of its open transaction
    first: dict[int, int] = {}
    committed: list[int] = []
    aborted: list[tuple[int, int, int]] = []  # (producer, first offset, marker offset)

    def end(pid: int, commit: bool) -> None:
        nonlocal log, offset
        log += marker(offset, pid, commit)
        if commit:
            committed.extend(open_txn[pid])
        else:
            aborted.append((pid, first[pid], offset))
        del open_txn[pid], first[pid]
        offset += 1

    for pid, count, ending in plan:
        values = [b"%d" % (offset + i) for i in range(count)]
        if pid == 0:
            log += batch(offset, values)
            committed.extend(range(offset, offset + count))
        else:
            log += batch(offset, values, pid=pid, txn=True)
            first.setdefault(pid, offset)
            open_txn.setdefault(pid, []).extend(range(offset, offset + count))
        offset += count
        if pid and ending:
            end(pid, ending == "commit")
    for pid in sorted(open_txn):
        end(pid, True)  # read_committed only ever sees data below the LSO

    start = data.draw(st.integers(0, offset))
    listed = [Aborted(producer_id=pid, first_offset=f) for pid, f, last in aborted if last >= start]
    fetch = CompletedFetch(
        TP, start, log, isolation_level=READ_COMMITTED, aborted_transactions=listed
    )
    got = []
    while not fetch.exhausted:
        got += offsets(fetch.take(data.draw(st.integers(1, 4))))
    assert got == sorted(o for o in committed if o >= start)
    assert fetch.next_fetch_offset == max(offset, start)
