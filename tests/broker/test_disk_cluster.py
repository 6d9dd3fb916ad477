"""EmbeddedCluster with a log dir: what a restart brings back (asyncio and trio)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamclient.broker import EmbeddedCluster
from streamclient.broker.log.disk_files import read_partition_metadata, topic_id_text
from streamclient.cli.main import main
from streamclient.protocol.records import RecordBatchBuilder

SETTINGS = {"offsets_topic_num_partitions": 2, "transaction_state_log_num_partitions": 2}


def batch(keys: list[bytes], now: int, *, pid: int = -1, seq: int = -1) -> bytes:
    builder = RecordBatchBuilder(producer_id=pid, producer_epoch=0 if pid >= 0 else -1,
                                 base_sequence=seq, batch_size=1 << 20)
    for key in keys:
        assert builder.append(now, key, b"value-" + key, []) is not None
    return builder.build()


@pytest.mark.anyio
async def test_restart_brings_back_topics_data_epochs_and_log_start(tmp_path: Path) -> None:
    async with EmbeddedCluster(3, log_dir=str(tmp_path), **SETTINGS) as cluster:
        state = cluster.state
        meta = state.create_topic("orders", 3, 2, {"segment.bytes": "300",
                                                   "cleanup.policy": "delete"})
        now = state.clock.now_ms()
        for p in range(3):
            log = state.partition_log("orders", p)
            assert log is not None
            for i in range(6 + p):
                log.append(batch([b"%d-%d" % (p, i)], now, pid=9000 + p, seq=i), now_ms=now)
        await cluster.stop_node(meta.partitions[0].leader)  # a leader change: epoch 1
        epochs = [p.leader_epoch for p in meta.partitions]
        before = {p: (log.log_end_offset, log.read(0, 1 << 30).records)
                  for p in range(3) if (log := state.partition_log("orders", p)) is not None}
        state.partition_log("orders", 1).delete_records_before(4)  # type: ignore[union-attr]
        topic_id = meta.topic_id
        assert cluster.errors == []

    saved = json.loads((tmp_path / "cluster-metadata.json").read_text())
    assert [t["name"] for t in saved["topics"]] == [
        "__consumer_offsets", "__transaction_state", "orders"]
    assert read_partition_metadata(tmp_path / "orders-2" / "partition.metadata") == topic_id
    assert saved["topics"][2]["topic_id"] == topic_id_text(topic_id)

    async with EmbeddedCluster(3, log_dir=str(tmp_path), **SETTINGS) as cluster:
        state = cluster.state
        meta = state.topics["orders"]
        assert meta.topic_id == topic_id and len(meta.partitions) == 3
        assert meta.configs == {"segment.bytes": "300", "cleanup.policy": "delete"}
        # a restart is a new leadership: every epoch moves past the saved one
        assert all(p.leader_epoch > e for p, e in zip(meta.partitions, epochs, strict=True))
        for p in range(3):
            log = state.partition_log("orders", p)
            assert log is not None
            leo, data = before[p]
            assert log.log_end_offset == log.high_watermark == leo
            start = 4 if p == 1 else 0
            assert log.log_start_offset == start
            if p != 1:
                assert log.read(0, 1 << 30).records == data
            assert log.producers.producers[9000 + p].last_seq == leo - 1
            assert log.leader_epoch == meta.partitions[p].leader_epoch
        # new producer ids never collide with ones whose state lives in the logs
        assert state.txns.manager.allocate_producer_id() > 9002
        assert cluster.errors == []


@pytest.mark.anyio
async def test_unclean_shutdown_checks_every_segment(tmp_path: Path) -> None:
    async with EmbeddedCluster(1, log_dir=str(tmp_path), **SETTINGS) as cluster:
        state = cluster.state
        state.create_topic("u", 1, 1, {"segment.bytes": "1"})
        log = state.partition_log("u", 0)
        assert log is not None
        now = state.clock.now_ms()
        for i in range(5):
            log.append(batch([b"k%d" % i], now), now_ms=now)
    # as if the process had died: no clean-shutdown marker, a corrupt middle segment
    (tmp_path / ".kafka_cleanshutdown").unlink()
    middle = tmp_path / "u-0" / f"{2:020d}.log"
    data = bytearray(middle.read_bytes())
    data[-3] ^= 0x01
    middle.write_bytes(bytes(data))
    async with EmbeddedCluster(1, log_dir=str(tmp_path), **SETTINGS) as cluster:
        log = cluster.state.partition_log("u", 0)
        assert log is not None
        report = log.store.recovery  # type: ignore[attr-defined]
        # the emptied segment and everything after the hole go
        assert report.truncated[0][0] == 2 and report.deleted_segments == [2, 3, 4]
        assert log.log_end_offset == 2
        assert sorted(p.name for p in (tmp_path / "u-0").glob("*.log")) == [
            f"{0:020d}.log", f"{1:020d}.log"]
        assert cluster.errors == []


@pytest.mark.anyio
async def test_deleted_topic_does_not_come_back(tmp_path: Path) -> None:
    async with EmbeddedCluster(1, log_dir=str(tmp_path), **SETTINGS) as cluster:
        cluster.state.create_topic("gone", 2, 1)
        cluster.state.create_topic("kept", 1, 1)
        cluster.state.delete_topic("gone")
        assert not (tmp_path / "gone-0").exists()
    async with EmbeddedCluster(1, log_dir=str(tmp_path), **SETTINGS) as cluster:
        assert "gone" not in cluster.state.topics and "kept" in cluster.state.topics


def test_dump_log_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streamclient.broker.log import LogConfig, PartitionLog
    from streamclient.broker.log.disk import DiskLogStore

    store = DiskLogStore(tmp_path, now_ms=0)
    log = PartitionLog("t", 0, LogConfig(), store=store)
    log.append(batch([b"a", b"b", b"c"], 1000, pid=5, seq=0), now_ms=1000)
    store.close()
    assert main(["dump-log", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Dumping {tmp_path / f'{0:020d}.log'}"
    assert out[2].startswith("baseOffset: 0 lastOffset: 2 count: 3 baseSequence: 0 "
                             "lastSequence: 2 producerId: 5 producerEpoch: 0 ")
    assert out[2].endswith("isvalid: true")
    assert "offset: 0 position: 0" in out
    assert main(["dump-log", str(tmp_path / "missing.txt")]) == 2
