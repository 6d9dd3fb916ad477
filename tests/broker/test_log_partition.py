"""PartitionLog: appends, reads, segments, watermarks, transactions, time lookups."""

from __future__ import annotations

import struct

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.broker.log import (
    READ_COMMITTED,
    READ_UNCOMMITTED,
    AppendError,
    Err,
    LogConfig,
    PartitionLog,
    ReadError,
)
from streamclient.protocol.records import RecordBatchBuilder, iter_batches

NOW = 1_700_000_000_000


def batch(n: int = 1, *, ts: int = NOW, value_size: int = 10, pid: int = -1, epoch: int = -1,
          seq: int = -1, transactional: bool = False, timestamps: list[int] | None = None) -> bytes:
    builder = RecordBatchBuilder(is_transactional=transactional, producer_id=pid,
                                 producer_epoch=epoch, base_sequence=seq, batch_size=1 << 20)
    for i in range(n):
        stamp = timestamps[i] if timestamps else ts
        assert builder.append(stamp, b"k%d" % i, b"v" * value_size, []) is not None
    if pid >= 0:
        builder.set_producer_state(pid, epoch, seq)
    return builder.build()


def offsets_of(data: bytes) -> list[int]:
    return [r.offset for b in iter_batches(data) for r in b]


def make_log(**configs: str) -> PartitionLog:
    return PartitionLog("t", 0, LogConfig.from_configs(configs), now_ms=NOW)


def append_error(log: PartitionLog, data: bytes, **kw: object) -> AppendError:
    with pytest.raises(AppendError) as info:
        log.append(data, now_ms=NOW, **kw)  # type: ignore[arg-type]
    return info.value


def test_appends_assign_consecutive_offsets_and_read_back() -> None:
    log = make_log()
    r1 = log.append(batch(3), now_ms=NOW)
    r2 = log.append(batch(2), now_ms=NOW)
    assert (r1.base_offset, r1.last_offset, r2.base_offset, r2.last_offset) == (0, 2, 3, 4)
    assert r1.log_append_time == -1
    assert log.log_end_offset == log.high_watermark == log.last_stable_offset == 5
    result = log.read(0, 1 << 20)
    assert offsets_of(result.records) == [0, 1, 2, 3, 4]
    # reading from the middle of a batch returns that whole batch
    assert offsets_of(log.read(1, 1 << 20).records) == [0, 1, 2, 3, 4]
    assert offsets_of(log.read(3, 1 << 20).records) == [3, 4]
    assert log.read(5, 1 << 20).records == b""
    stored = list(iter_batches(result.records))
    assert [b.base_offset for b in stored] == [0, 3]
    assert all(b.validate_crc() for b in stored)


def test_read_limits_whole_batches_and_first_batch_rule() -> None:
    log = make_log()
    sizes = [len(batch(1, value_size=500)) for _ in range(3)]
    for _ in range(3):
        log.append(batch(1, value_size=500), now_ms=NOW)
    assert offsets_of(log.read(0, 10).records) == [0]  # first batch even though too large
    assert log.read(0, 10, min_one_batch=False).records == b""
    assert offsets_of(log.read(0, sizes[0] + sizes[1]).records) == [0, 1]
    assert offsets_of(log.read(0, sizes[0] + sizes[1] - 1).records) == [0]


def test_offset_out_of_range() -> None:
    log = make_log()
    log.append(batch(2), now_ms=NOW)
    for bad in (-1, 3):
        with pytest.raises(ReadError) as info:
            log.read(bad, 100)
        assert info.value.error_code == Err.OFFSET_OUT_OF_RANGE


def test_segments_roll_by_bytes_and_by_time() -> None:
    one = len(batch(1))
    log = make_log(**{"segment.bytes": str(one * 2)})
    for _ in range(5):
        log.append(batch(1), now_ms=NOW)
    assert [s.base_offset for s in log.store.segments] == [0, 2, 4]
    assert offsets_of(log.read(1, 1 << 20).records) == [1, 2, 3, 4]
    timed = make_log(**{"segment.ms": "1000"})
    timed.append(batch(1), now_ms=NOW)
    timed.append(batch(1), now_ms=NOW + 999)
    timed.append(batch(1), now_ms=NOW + 1000)
    assert [s.base_offset for s in timed.store.segments] == [0, 2]


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 4), min_size=1, max_size=25),
       segment_bytes=st.integers(80, 600), interval=st.sampled_from(["0", "200", "100000"]),
       data=st.data())
def test_reads_match_brute_force(counts: list[int], segment_bytes: int, interval: str,
                                 data: st.DataObject) -> None:
    log = make_log(**{"segment.bytes": str(segment_bytes), "index.interval.bytes": interval})
    stored: list[tuple[int, int, int]] = []  # (base, last, size)
    for n in counts:
        r = log.append(batch(n), now_ms=NOW)
        stored.append((r.base_offset, r.last_offset, len(batch(n))))
    end = stored[-1][1] + 1
    for _ in range(5):
        start = data.draw(st.integers(0, end))
        max_bytes = data.draw(st.integers(0, 2000))
        got = [(b.base_offset, b.last_offset) for b in iter_batches(log.read(start, max_bytes).records)]
        expected: list[tuple[int, int]] = []
        used = 0
        for base, last, size in stored:
            if last < start:
                continue
            if used + size > max_bytes and expected:
                break
            expected.append((base, last))
            used += size
        assert got == expected


def test_validation_errors() -> None:
    log = make_log(**{"max.message.bytes": "300"})
    good = batch(1)
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    assert append_error(log, bytes(corrupt)).error_code == Err.CORRUPT_MESSAGE
    assert append_error(log, batch(1, value_size=400)).error_code == Err.MESSAGE_TOO_LARGE
    assert append_error(log, good + good).error_code == Err.INVALID_RECORD
    assert append_error(log, good[:-3]).error_code == Err.CORRUPT_MESSAGE
    magic1 = bytearray(good)
    magic1[16] = 1
    assert append_error(log, bytes(magic1)).error_code == Err.INVALID_RECORD
    bad_count = bytearray(good)
    struct.pack_into(">i", bad_count, 57, 2)  # record count no longer matches (CRC too)
    assert append_error(log, bytes(bad_count)).error_code in (Err.CORRUPT_MESSAGE, Err.INVALID_RECORD)
    future = append_error(log, batch(2, timestamps=[NOW, NOW + 7_200_000]))
    assert future.error_code == Err.INVALID_TIMESTAMP and future.record_errors[0][0] == 1
    assert log.log_end_offset == 0


def test_log_append_time_rewrites_timestamps() -> None:
    log = make_log(**{"message.timestamp.type": "LogAppendTime"})
    result = log.append(batch(2, ts=5), now_ms=NOW + 42)
    assert result.log_append_time == NOW + 42
    (stored,) = list(iter_batches(log.read(0, 1 << 20).records))
    assert stored.max_timestamp == NOW + 42
    assert stored.validate_crc()
    assert [r.timestamp for r in stored] == [NOW + 42, NOW + 42]
    # far-off producer timestamps do not matter when the broker stamps the time
    log.append(batch(1, ts=1), now_ms=NOW)


def test_idempotent_duplicate_returns_original_offsets() -> None:
    log = make_log()
    first = log.append(batch(2, pid=5, epoch=0, seq=0), now_ms=NOW)
    log.append(batch(1, pid=5, epoch=0, seq=2), now_ms=NOW)
    again = log.append(batch(2, pid=5, epoch=0, seq=0), now_ms=NOW)
    assert again.duplicate and (again.base_offset, again.last_offset) == (first.base_offset, 1)
    assert log.log_end_offset == 3
    assert append_error(log, batch(1, pid=5, epoch=0, seq=9)).error_code == \
        Err.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_high_watermark_follows_the_isr() -> None:
    log = make_log(**{"min.insync.replicas": "2"})
    log.update_replication(leader=1, leader_epoch=3, isr=[1, 2, 3], alive={1, 2, 3})
    log.append(batch(2), now_ms=NOW)
    assert log.high_watermark == 2
    # node 3 stops but is still in the ISR: the watermark waits for it
    log.update_replication(leader=1, leader_epoch=3, isr=[1, 2, 3], alive={1, 2})
    log.append(batch(2), now_ms=NOW)
    assert (log.log_end_offset, log.high_watermark) == (4, 2)
    assert offsets_of(log.read(0, 1 << 20).records) == [0, 1]
    # dropped from the ISR: the watermark moves
    log.update_replication(leader=1, leader_epoch=3, isr=[1, 2], alive={1, 2})
    assert log.high_watermark == 4
    # back up: caught up at once
    log.update_replication(leader=1, leader_epoch=3, isr=[1, 2, 3], alive={1, 2, 3})
    assert log.replica_position(3) == 4


def test_leader_epoch_is_stamped_and_cached() -> None:
    log = make_log()
    log.update_replication(leader=1, leader_epoch=4, isr=[1])
    log.append(batch(2), now_ms=NOW)
    log.update_replication(leader=2, leader_epoch=5, isr=[2])
    log.append(batch(1), now_ms=NOW)
    epochs = [b.partition_leader_epoch for b in iter_batches(log.read(0, 1 << 20).records)]
    assert epochs == [4, 5]
    assert log.epochs.end_offset_for(4, log.log_end_offset) == (4, 2)
    assert log.epochs.end_offset_for(5, log.log_end_offset) == (5, 3)
    assert log.epochs.epoch_for_offset(1) == 4


def test_transactions_last_stable_offset_and_aborted_index() -> None:
    log = make_log()
    log.append(batch(2), now_ms=NOW)  # 0-1
    log.append(batch(2, pid=7, epoch=0, seq=0, transactional=True), now_ms=NOW)  # 2-3
    log.append(batch(1, pid=8, epoch=0, seq=0, transactional=True), now_ms=NOW)  # 4
    assert log.high_watermark == 5 and log.last_stable_offset == 2
    committed = log.read(0, 1 << 20, READ_COMMITTED)
    assert offsets_of(committed.records) == [0, 1] and committed.last_stable_offset == 2
    marker = log.append_control(7, 0, commit=False, coordinator_epoch=0, now_ms=NOW)  # 5
    assert marker.base_offset == 5 and log.last_stable_offset == 4
    log.append_control(8, 0, commit=True, coordinator_epoch=0, now_ms=NOW)  # 6
    assert log.last_stable_offset == 7
    result = log.read(0, 1 << 20, READ_COMMITTED)
    assert [(t.producer_id, t.first_offset, t.last_offset) for t in result.aborted_transactions] \
        == [(7, 2, 5)]
    controls = [b for b in iter_batches(result.records) if b.is_control]
    assert [b.base_offset for b in controls] == [5, 6]
    assert log.read(6, 1 << 20, READ_COMMITTED).aborted_transactions == []
    assert log.read(0, 1 << 20, READ_UNCOMMITTED).aborted_transactions == []
    assert log.aborted_transactions(0, 2) == []
    fenced = AppendError
    with pytest.raises(fenced):
        log.append_control(8, 0, commit=True, coordinator_epoch=-5, now_ms=NOW)


def test_state_is_rebuilt_from_the_store() -> None:
    log = make_log(**{"segment.bytes": "300"})
    log.update_replication(leader=1, leader_epoch=2, isr=[1])
    log.append(batch(2, pid=5, epoch=0, seq=0), now_ms=NOW)  # 0-1
    log.append(batch(1, pid=7, epoch=0, seq=0, transactional=True), now_ms=NOW)  # 2
    log.append_control(7, 0, commit=False, coordinator_epoch=3, now_ms=NOW)  # 3
    log.update_replication(leader=1, leader_epoch=4, isr=[1])
    log.append(batch(1, pid=8, epoch=1, seq=0, transactional=True), now_ms=NOW)  # 4 (open)
    log.append(batch(1, pid=5, epoch=0, seq=2), now_ms=NOW)  # 5
    assert len(log.store.segments) > 1
    rebuilt = PartitionLog("t", 0, log.config, store=log.store)
    assert (rebuilt.log_end_offset, rebuilt.log_start_offset) == (6, 0)
    assert rebuilt.last_stable_offset == log.last_stable_offset == 4
    assert rebuilt.aborted_transactions(0, 6) == log.aborted_transactions(0, 6)
    assert rebuilt.producers.ongoing_transactions() == {8: 4}
    assert rebuilt.epochs.entries() == log.epochs.entries() == [(2, 0), (4, 4)]
    for pid in (5, 7, 8):
        a, b = rebuilt.producers.producers[pid], log.producers.producers[pid]
        assert (list(a.batches), a.producer_epoch, a.coordinator_epoch) == \
            (list(b.batches), b.producer_epoch, b.coordinator_epoch)
    # the rebuilt state keeps enforcing idempotence: a retry is still a duplicate
    assert rebuilt.append(batch(1, pid=5, epoch=0, seq=2), now_ms=NOW).duplicate


def test_control_batch_from_client_is_refused() -> None:
    log = make_log()
    log.append(batch(1, pid=7, epoch=0, seq=0, transactional=True), now_ms=NOW)
    log.append_control(7, 0, commit=True, coordinator_epoch=0, now_ms=NOW)
    control = log.batch_containing(1)
    assert control is not None
    assert append_error(log, control).error_code == Err.INVALID_RECORD


def test_offsets_for_timestamps() -> None:
    log = make_log(**{"segment.bytes": "200"})
    log.append(batch(3, timestamps=[NOW + 10, NOW + 5, NOW + 30]), now_ms=NOW)  # 0-2
    log.append(batch(2, timestamps=[NOW + 20, NOW + 40]), now_ms=NOW)  # 3-4
    log.append(batch(1, timestamps=[NOW + 35]), now_ms=NOW)  # 5
    assert log.offset_for_timestamp(NOW) == (0, NOW + 10)
    assert log.offset_for_timestamp(NOW + 11) == (2, NOW + 30)
    assert log.offset_for_timestamp(NOW + 31) == (4, NOW + 40)
    assert log.offset_for_timestamp(NOW + 41) is None
    assert log.max_timestamp_offset() == (4, NOW + 40)


@settings(max_examples=30, deadline=None)
@given(stamps=st.lists(st.lists(st.integers(0, 1000), min_size=1, max_size=4), min_size=1,
                       max_size=15),
       segment_bytes=st.integers(100, 500), targets=st.lists(st.integers(-5, 1005), max_size=10))
def test_time_lookup_matches_brute_force(stamps: list[list[int]], segment_bytes: int,
                                         targets: list[int]) -> None:
    log = make_log(**{"segment.bytes": str(segment_bytes), "index.interval.bytes": "150"})
    flat: list[tuple[int, int]] = []
    for group in stamps:
        r = log.append(batch(len(group), timestamps=[NOW + t for t in group]), now_ms=NOW)
        flat += [(r.base_offset + i, NOW + t) for i, t in enumerate(group)]
    for target in targets:
        # Kafka's answer: the first record of the first batch whose max timestamp reaches
        # the target, with a timestamp >= target
        expected = None
        pos = 0
        for group in stamps:
            records = flat[pos:pos + len(group)]
            pos += len(group)
            if max(ts for _, ts in records) >= NOW + target:
                expected = next((o, ts) for o, ts in records if ts >= NOW + target)
                break
        assert log.offset_for_timestamp(NOW + target) == expected


def test_delete_records_moves_log_start() -> None:
    one = len(batch(1))
    log = make_log(**{"segment.bytes": str(one)})
    for _ in range(4):
        log.append(batch(1), now_ms=NOW)
    assert log.delete_records_before(2) == 2
    assert log.log_start_offset == 2
    assert [s.base_offset for s in log.store.segments] == [2, 3]
    with pytest.raises(ReadError):
        log.read(1, 100)
    assert offsets_of(log.read(2, 1 << 20).records) == [2, 3]
    assert log.delete_records_before(1) == 2  # never backwards
    with pytest.raises(ReadError) as info:
        log.delete_records_before(5)
    assert info.value.error_code == Err.OFFSET_OUT_OF_RANGE
    assert log.delete_records_before(-1) == 4


def test_retention_deletes_whole_old_segments() -> None:
    one = len(batch(1))
    log = make_log(**{"segment.bytes": str(one), "retention.ms": "1000"})
    for i in range(4):
        log.append(batch(1, ts=NOW + i * 1000), now_ms=NOW)
    assert log.apply_retention(NOW + 2500) == 2  # offsets 0 and 1 are over 1 s old
    assert log.log_start_offset == 2
    assert log.apply_retention(NOW + 100_000) == 1  # the active segment stays
    assert [s.base_offset for s in log.store.segments] == [3]
    sized = make_log(**{"segment.bytes": str(one), "retention.bytes": str(2 * one),
                        "retention.ms": "-1"})
    for _ in range(5):
        sized.append(batch(1), now_ms=NOW)
    sized.apply_retention(NOW)
    assert sized.log_start_offset == 3 and sized.store.size_bytes == 2 * one
    compacted = make_log(**{"segment.bytes": str(one), "retention.ms": "0"})
    compacted.cleanup_policy = "compact"
    compacted.append(batch(1), now_ms=NOW)
    compacted.append(batch(1), now_ms=NOW)
    assert compacted.apply_retention(NOW + 10) == 0


@pytest.mark.anyio
async def test_wait_for_data_wakes_on_append() -> None:
    log = make_log()
    woke: list[bool] = []

    async def waiter() -> None:
        woke.append(await log.wait_for_data(10_000))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        log.append(batch(1), now_ms=NOW)
    assert woke == [True]


@pytest.mark.anyio
async def test_wait_for_high_watermark() -> None:
    log = make_log()
    log.update_replication(leader=1, leader_epoch=0, isr=[1, 2], alive={1})
    log.append(batch(1), now_ms=NOW)
    assert not await log.wait_for_high_watermark(1, 0)
    result: list[bool] = []

    async def waiter() -> None:
        result.append(await log.wait_for_high_watermark(1, 10_000))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        log.update_replication(leader=1, leader_epoch=0, isr=[1], alive={1})
    assert result == [True]
