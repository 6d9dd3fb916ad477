"""Compaction on both stores, and retention/checkpoints of the disk log manager."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamclient.broker.log import LogConfig, MemoryLogStore, PartitionLog
from streamclient.broker.log.compaction import compact
from streamclient.broker.log.disk import DiskLogStore
from streamclient.broker.log.disk_manager import DiskLogManager
from streamclient.protocol.records import RecordBatchBuilder, iter_batches

NOW = 1_700_000_000_000
COMPACT = {"cleanup.policy": "compact", "segment.bytes": "1", "delete.retention.ms": "1000"}


def batch(records: list[tuple[bytes | None, bytes | None]], *, ts: int = NOW, pid: int = -1,
          seq: int = -1, transactional: bool = False) -> bytes:
    builder = RecordBatchBuilder(is_transactional=transactional, producer_id=pid,
                                 producer_epoch=0 if pid >= 0 else -1, base_sequence=seq,
                                 batch_size=1 << 20)
    for key, value in records:
        assert builder.append(ts, key, value, []) is not None
    return builder.build()


def make_log(kind: str, tmp_path: Path, configs: dict[str, str]) -> PartitionLog:
    config = LogConfig.from_configs(configs)
    store = (MemoryLogStore() if kind == "memory"
             else DiskLogStore(tmp_path / "t-0", now_ms=NOW, check_all_crcs=True))
    log = PartitionLog("t", 0, config, store=store, now_ms=NOW)
    log.update_config(configs)
    return log


def contents(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for b in iter_batches(log.read(log.log_start_offset,
                                                                          1 << 30).records)
            if not b.is_control for r in b]


@pytest.fixture(params=["memory", "disk"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_latest_value_per_key_survives_with_its_offset(kind: str, tmp_path: Path) -> None:
    log = make_log(kind, tmp_path, COMPACT)
    for i in range(12):
        log.append(batch([(b"k%d" % (i % 3), b"v%d" % i)]), now_ms=NOW)
    log.append(batch([(b"k1", None)]), now_ms=NOW)  # tombstone at offset 12
    log.append(batch([(b"other", b"x")]), now_ms=NOW)  # the active segment
    stats = compact(log, NOW + 10)
    assert stats is not None and stats.rewritten and stats.expiring_kept
    # k0's and k2's last values keep their offsets; k1's tombstone is young and stays
    assert contents(log) == [(9, b"k0", b"v9"), (11, b"k2", b"v11"), (12, b"k1", None),
                             (13, b"other", b"x")]
    assert log.log_end_offset == 14 and log.log_start_offset == 0
    # reads from inside a gap land on the next kept batch
    first = next(iter_batches(log.read(3, 1 << 20).records))
    assert first.base_offset == 9
    # once delete.retention.ms has passed the tombstone goes too; the active one stays
    stats = compact(log, NOW + 2000)
    assert stats is not None and not stats.expiring_kept
    assert contents(log) == [(9, b"k0", b"v9"), (11, b"k2", b"v11"), (13, b"other", b"x")]
    assert log.append(batch([(b"k0", b"new")]), now_ms=NOW).base_offset == 14


def test_compaction_never_touches_the_active_segment(kind: str, tmp_path: Path) -> None:
    log = make_log(kind, tmp_path, {"cleanup.policy": "compact"})  # one big segment
    for i in range(5):
        log.append(batch([(b"same", b"v%d" % i)]), now_ms=NOW)
    assert compact(log, NOW + 10) is None
    assert len(contents(log)) == 5


def test_aborted_records_go_and_markers_stay_while_needed(kind: str, tmp_path: Path) -> None:
    log = make_log(kind, tmp_path, COMPACT)
    log.append(batch([(b"a", b"committed")], pid=9, seq=0, transactional=True),
               origin="coordinator", now_ms=NOW)
    log.append_control(9, 0, True, 0, NOW)
    log.append(batch([(b"b", b"aborted")], pid=9, seq=1, transactional=True),
               origin="coordinator", now_ms=NOW)
    log.append_control(9, 0, False, 0, NOW)
    log.append(batch([(b"z", b"tail")]), now_ms=NOW)
    stats = compact(log, NOW + 5000)  # past delete.retention.ms
    assert stats is not None and stats.rewritten
    stored = list(iter_batches(log.read(0, 1 << 30).records))
    kinds = [(b.base_offset, b.is_control, [r.value for r in b] if not b.is_control else None)
             for b in stored]
    # the commit marker stays with its kept record; the aborted record and its marker go
    assert kinds == [(0, False, [b"committed"]), (1, True, None), (4, False, [b"tail"])]
    assert log.last_stable_offset == log.high_watermark == 5


def test_last_batch_of_a_producer_is_kept_empty_for_its_sequence(kind: str,
                                                                  tmp_path: Path) -> None:
    log = make_log(kind, tmp_path, COMPACT)
    log.append(batch([(b"k", b"old")], pid=3, seq=0), now_ms=NOW)
    log.append(batch([(b"k", b"new")]), now_ms=NOW)
    log.append(batch([(b"tail", b"t")]), now_ms=NOW)
    compact(log, NOW + 10)
    stored = list(iter_batches(log.read(0, 1 << 30).records))
    assert [(b.base_offset, b.producer_id, len(b)) for b in stored] == [
        (0, 3, 0), (1, -1, 1), (2, -1, 1)]
    assert stored[0].validate_crc()


def test_disk_compaction_survives_a_reopen(tmp_path: Path) -> None:
    log = make_log("disk", tmp_path, COMPACT)
    for i in range(6):
        log.append(batch([(b"k%d" % (i % 2), b"v%d" % i)]), now_ms=NOW)
    log.append(batch([(b"tail", b"t")]), now_ms=NOW)
    compact(log, NOW + 10)
    expected = contents(log)
    assert not list((tmp_path / "t-0").glob("*.swap"))
    store = log.store
    assert isinstance(store, DiskLogStore)
    store.close()
    again = make_log("disk", tmp_path, COMPACT)
    assert again.store.recovery.clean  # type: ignore[attr-defined]
    assert contents(again) == expected == [(4, b"k0", b"v4"), (5, b"k1", b"v5"),
                                           (6, b"tail", b"t")]
    assert again.log_end_offset == 7


def test_manager_runs_retention_on_its_interval_and_checkpoints_log_start(tmp_path: Path) -> None:
    manager = DiskLogManager(None, tmp_path, retention_check_interval_ms=100_000)
    log = manager.create_partition("t", 0, {"segment.bytes": "1", "retention.ms": "60000"},
                                   now_ms=NOW)
    log.update_replication(leader=0, leader_epoch=0, isr=[0])
    for i in range(4):
        log.append(batch([(b"k", b"v%d" % i)], ts=NOW + i * 50_000), now_ms=NOW)
    manager.tick(NOW)  # first check: nothing old enough
    assert log.log_start_offset == 0
    manager.tick(NOW + 99_000)  # batch 0 is old enough, but the next check is not due
    assert log.log_start_offset == 0
    manager.tick(NOW + 100_000)  # only batch 0 is older than 60 s
    assert log.log_start_offset == 1
    assert (tmp_path / "log-start-offset-checkpoint").read_text() == "0\n1\nt 0 1\n"
    log.delete_records_before(3)
    manager.close()
    assert (tmp_path / ".kafka_cleanshutdown").exists()
    reopened = DiskLogManager(None, tmp_path)
    assert reopened.clean_start and not (tmp_path / ".kafka_cleanshutdown").exists()
    again = reopened.create_partition("t", 0, {"segment.bytes": "1"}, now_ms=NOW)
    assert again.log_start_offset == 3 and again.log_end_offset == 4
    reopened.close()


def test_manager_compacts_on_tick(tmp_path: Path) -> None:
    manager = DiskLogManager(None, tmp_path, retention_check_interval_ms=0)
    log = manager.create_partition("c", 0, COMPACT, now_ms=NOW)
    log.update_replication(leader=0, leader_epoch=0, isr=[0])
    for i in range(6):
        log.append(batch([(b"k", b"v%d" % i)]), now_ms=NOW)
    manager.tick(NOW + 10)
    assert [(o, v) for o, _, v in contents(log)] == [(4, b"v4"), (5, b"v5")]
    manager.close()
