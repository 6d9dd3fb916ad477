"""The disk store: Kafka's file layout, index lookups, recovery of damaged files, flushing."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamclient.broker.log import LogConfig, PartitionLog
from streamclient.broker.log.disk import DiskLogStore, DiskSegment
from streamclient.broker.log.disk_files import (
    decode_offset_entries,
    decode_time_entries,
    read_epoch_checkpoint,
    read_offsets_checkpoint,
    write_epoch_checkpoint,
    write_offsets_checkpoint,
)
from streamclient.cli.dump_log import dump_path
from streamclient.protocol.records import RecordBatchBuilder, iter_batches

NOW = 1_700_000_000_000


def batch(keys: list[bytes], *, ts: int = NOW, value: bytes = b"v" * 20, pid: int = -1,
          seq: int = -1) -> bytes:
    builder = RecordBatchBuilder(producer_id=pid, producer_epoch=0 if pid >= 0 else -1,
                                 base_sequence=seq, batch_size=1 << 20)
    for key in keys:
        assert builder.append(ts, key, value, []) is not None
    return builder.build()


def open_log(directory: Path, **configs: str) -> PartitionLog:
    config = LogConfig.from_configs(configs)
    store = DiskLogStore(directory, now_ms=NOW, index_interval_bytes=config.index_interval_bytes,
                         check_all_crcs=True)
    return PartitionLog("t", 0, config, store=store, now_ms=NOW)


def fill(log: PartitionLog, count: int, per_batch: int = 3) -> list[bytes]:
    """Append ``count`` batches of ``per_batch`` records; returns each stored batch."""
    for i in range(count):
        log.append(batch([b"k%d-%d" % (i, j) for j in range(per_batch)]), now_ms=NOW)
    return [bytes(b.data) for b in iter_batches(log.read(0, 1 << 30).records)]


def close(log: PartitionLog) -> None:
    store = log.store
    assert isinstance(store, DiskLogStore)
    store.close()


def test_files_are_laid_out_as_kafka_does(tmp_path: Path) -> None:
    log = open_log(tmp_path, **{"segment.bytes": "700", "index.interval.bytes": "150"})
    stored = fill(log, 12)
    names = sorted(p.name for p in tmp_path.iterdir())
    bases = [s.base_offset for s in log.store.segments]
    assert len(bases) > 2
    assert names == sorted(f"{b:020d}{ext}" for b in bases for ext in (".log", ".index",
                                                                           ".timeindex"))
    # the .log files, concatenated, are the batches exactly as read back over the wire
    on_disk = b"".join((tmp_path / f"{b:020d}.log").read_bytes() for b in bases)
    assert on_disk == b"".join(stored)
    for segment in log.store.segments:
        raw = (tmp_path / f"{segment.base_offset:020d}.index").read_bytes()
        assert len(raw) % 8 == 0
        assert decode_offset_entries(raw) == segment.offset_index.entries()
        # big-endian int32 pairs: relative offset, then position
        rel, pos = struct.unpack(">ii", raw[-8:])
        assert (rel, pos) == segment.offset_index.entries()[-1]
        times = decode_time_entries(
            (tmp_path / f"{segment.base_offset:020d}.timeindex").read_bytes())
        assert [(ts, segment.base_offset + r) for ts, r in times] == segment.time_index.entries()
    close(log)


def test_reopen_restores_offsets_data_and_producer_state(tmp_path: Path) -> None:
    log = open_log(tmp_path, **{"segment.bytes": "500"})
    for seq in range(0, 30, 3):
        log.append(batch([b"a", b"b", b"c"], pid=7, seq=seq), now_ms=NOW)
    before = log.read(0, 1 << 30).records
    close(log)
    again = open_log(tmp_path, **{"segment.bytes": "500"})
    assert again.log_end_offset == 30 and again.high_watermark == 30
    assert again.read(0, 1 << 30).records == before
    assert again.store.recovery.clean  # type: ignore[attr-defined]
    # a retry of the last batch is recognised as a duplicate, the next one continues
    dup = again.append(batch([b"a", b"b", b"c"], pid=7, seq=27), now_ms=NOW)
    assert dup.duplicate and dup.base_offset == 27
    nxt = again.append(batch([b"d"], pid=7, seq=30), now_ms=NOW)
    assert nxt.base_offset == 30 and not nxt.duplicate
    close(again)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 300)), min_size=1, max_size=40),
       interval=st.sampled_from([0, 64, 300, 4096]), probes=st.lists(st.integers(0, 200), max_size=20))
def test_index_lookups_match_a_brute_force_scan(tmp_path_factory: pytest.TempPathFactory,
                                                sizes: list[tuple[int, int]], interval: int,
                                                probes: list[int]) -> None:
    directory = tmp_path_factory.mktemp("seg")
    log = open_log(directory, **{"index.interval.bytes": str(interval), "segment.bytes": "2000"})
    for count, value_size in sizes:
        log.append(batch([b"k%d" % i for i in range(count)], value=b"x" * value_size), now_ms=NOW)
    close(log)
    reopened = open_log(directory, **{"index.interval.bytes": str(interval),
                                      "segment.bytes": "2000"})
    for target in [*probes, 0, reopened.log_end_offset - 1]:
        segment = reopened.store.segment_for(target)
        assert segment is not None
        found = segment.find(target)
        brute = next((loc for loc in segment.batches_from(0) if loc.last_offset >= target), None)
        assert found == brute
        if found is not None and target < reopened.log_end_offset:
            assert found.base_offset <= target <= found.last_offset
        # the lookup starts from the greatest index entry at or below the target
        rel, pos = segment.offset_index.lookup(max(0, target - segment.base_offset))
        assert rel + segment.base_offset <= max(target, segment.base_offset)
        assert found is None or pos <= found.position
    close(reopened)


def active_log_file(directory: Path) -> Path:
    return sorted(directory.glob("*.log"))[-1]


def test_a_segment_cut_inside_a_batch_is_truncated_and_reindexed(tmp_path: Path) -> None:
    log = open_log(tmp_path, **{"segment.bytes": "100000", "index.interval.bytes": "100"})
    stored = fill(log, 10)
    close(log)
    path = active_log_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 30])  # the last batch loses its end
    (tmp_path / path.name.replace(".log", ".index")).unlink()
    again = open_log(tmp_path)
    report = again.store.recovery  # type: ignore[attr-defined]
    assert report.truncated and report.rebuilt_indexes
    assert again.log_end_offset == 27
    assert again.read(0, 1 << 30).records == b"".join(stored[:-1])
    assert path.stat().st_size == len(b"".join(stored[:-1]))
    # the rebuilt index is on disk again and points at batch starts
    entries = decode_offset_entries((tmp_path / path.name.replace(".log", ".index")).read_bytes())
    starts = {loc.position: loc.base_offset for loc in again.store.active.batches_from(0)}  # type: ignore[union-attr]
    assert entries and all(starts[pos] == rel for rel, pos in entries)
    assert again.append(batch([b"new"]), now_ms=NOW).base_offset == 27
    close(again)


def test_a_flipped_byte_fails_the_crc_and_cuts_the_tail(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    stored = fill(log, 6)
    close(log)
    path = active_log_file(tmp_path)
    data = bytearray(path.read_bytes())
    victim = sum(len(b) for b in stored[:4]) + 70  # inside batch 4's records
    data[victim] ^= 0xFF
    path.write_bytes(bytes(data))
    again = open_log(tmp_path)
    assert "CRC" in again.store.recovery.truncated[0][1]  # type: ignore[attr-defined]
    assert again.log_end_offset == 12
    assert again.read(0, 1 << 30).records == b"".join(stored[:4])
    close(again)


def test_a_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    log = open_log(tmp_path, **{"index.interval.bytes": "50"})
    fill(log, 8)
    expected = log.store.active.offset_index.entries()  # type: ignore[union-attr]
    close(log)
    index = tmp_path / f"{0:020d}.index"
    index.write_bytes(index.read_bytes()[:-8] + struct.pack(">ii", 3, 5))  # points mid-batch
    again = open_log(tmp_path, **{"index.interval.bytes": "50"})
    assert again.store.recovery.rebuilt_indexes == [0]  # type: ignore[attr-defined]
    assert again.store.active.offset_index.entries() == expected  # type: ignore[union-attr]
    assert decode_offset_entries(index.read_bytes()) == expected
    close(again)


def test_unfinished_compaction_files_are_resolved(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    stored = fill(log, 3)
    close(log)
    (tmp_path / f"{0:020d}.log.cleaned").write_bytes(b"half written")
    again = open_log(tmp_path)
    assert not list(tmp_path.glob("*.cleaned"))
    assert again.read(0, 1 << 30).records == b"".join(stored)
    close(again)


def test_flush_messages_forces_fsync(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    store = log.store
    assert isinstance(store, DiskLogStore)
    store.flush_messages = 5
    log.append(batch([b"a", b"b"]), now_ms=NOW)
    active = store.active
    assert isinstance(active, DiskSegment) and active.dirty
    log.append(batch([b"c", b"d", b"e"]), now_ms=NOW)
    assert not active.dirty  # five records reached: fsynced
    store.flush_ms = 1000
    log.append(batch([b"f"]), now_ms=NOW)
    store.maybe_flush(store.last_flush_ms + 999)
    assert active.dirty
    store.maybe_flush(store.last_flush_ms + 1000)
    assert not active.dirty
    close(log)


def test_checkpoint_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "log-start-offset-checkpoint"
    write_offsets_checkpoint(path, {("a-b", 3): 17, ("t", 0): 5})
    assert path.read_text() == "0\n2\na-b 3 17\nt 0 5\n"
    assert read_offsets_checkpoint(path) == {("a-b", 3): 17, ("t", 0): 5}
    epochs = tmp_path / "leader-epoch-checkpoint"
    write_epoch_checkpoint(epochs, [(0, 0), (4, 120)])
    assert read_epoch_checkpoint(epochs) == [(0, 0), (4, 120)]


def test_dump_log_prints_batches_and_index_entries(tmp_path: Path) -> None:
    log = open_log(tmp_path, **{"index.interval.bytes": "1"})
    log.append(batch([b"a", b"b"], pid=42, seq=0), now_ms=NOW)
    log.append(batch([b"c"], ts=NOW + 5, pid=42, seq=2), now_ms=NOW)
    stored = [bytes(b.data) for b in iter_batches(log.read(0, 1 << 30).records)]
    close(log)
    out = io.StringIO()
    assert dump_path(tmp_path / f"{0:020d}.log", out, records=True)
    lines = out.getvalue().splitlines()
    batch_lines = [line for line in lines if line.startswith("baseOffset:")]
    crcs = [struct.unpack_from(">I", b, 17)[0] for b in stored]
    assert batch_lines == [
        f"baseOffset: 0 lastOffset: 1 count: 2 baseSequence: 0 lastSequence: 1 producerId: 42 "
        f"producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
        f"deleteHorizonMs: none position: 0 CreateTime: {NOW} size: {len(stored[0])} magic: 2 "
        f"compresscodec: none crc: {crcs[0]:#010x} isvalid: true",
        f"baseOffset: 2 lastOffset: 2 count: 1 baseSequence: 2 lastSequence: 2 producerId: 42 "
        f"producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
        f"deleteHorizonMs: none position: {len(stored[0])} CreateTime: {NOW + 5} "
        f"size: {len(stored[1])} magic: 2 compresscodec: none crc: {crcs[1]:#010x} "
        f"isvalid: true",
    ]
    assert crcs[0] == crc32c.crc32c(stored[0][21:])
    assert f"| offset: 1 CreateTime: {NOW} keySize: 1 valueSize: 20 headerKeys: []" in lines
    out = io.StringIO()
    assert dump_path(tmp_path / f"{0:020d}.index", out)
    assert out.getvalue().splitlines()[1:] == ["offset: 0 position: 0",
                                               f"offset: 2 position: {len(stored[0])}"]
    out = io.StringIO()
    assert dump_path(tmp_path / f"{0:020d}.timeindex", out)
    assert out.getvalue().splitlines()[1:] == [f"timestamp: {NOW} offset: 0",
                                               f"timestamp: {NOW + 5} offset: 2"]
    # a flipped byte shows up as an invalid batch
    path = tmp_path / f"{0:020d}.log"
    data = bytearray(path.read_bytes())
    data[len(stored[0]) + 65] ^= 1
    path.write_bytes(bytes(data))
    out = io.StringIO()
    assert not dump_path(tmp_path, out)
    assert out.getvalue().count("isvalid: false") == 1
