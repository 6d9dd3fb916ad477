"""``DiskLogManager``: the cluster's partition logs kept in one log dir.

It is a ``LogManager`` whose stores are ``DiskLogStore``s, plus what a restart needs:
the topics (``cluster-metadata.json``), log start offsets moved by DeleteRecords or
retention (``log-start-offset-checkpoint``), leader epochs (``leader-epoch-checkpoint``),
each partition's topic id (``partition.metadata``) and the clean-shutdown marker that
decides how much recovery validates.  Its ``tick`` runs retention and compaction every
``log.retention.check.interval.ms``, honours ``flush.ms``, and writes the checkpoints
when they changed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamclient.broker.log import disk_metadata
from streamclient.broker.log.compaction import cleanable_segments, compact
from streamclient.broker.log.config import LogConfig
from streamclient.broker.log.disk import DiskLogStore, FileCache
from streamclient.broker.log.disk_files import (
    CLEAN_SHUTDOWN_FILE,
    CLUSTER_METADATA_FILE,
    LEADER_EPOCH_CHECKPOINT_FILE,
    LOG_START_CHECKPOINT_FILE,
    PARTITION_METADATA_FILE,
    partition_dir_name,
    read_epoch_checkpoint,
    read_offsets_checkpoint,
    read_partition_metadata,
    write_atomically,
    write_epoch_checkpoint,
    write_offsets_checkpoint,
    write_partition_metadata,
)
from streamclient.broker.log.manager import LogManager
from streamclient.broker.log.partition import PartitionLog
from streamclient.broker.log.store import LogStore

__all__ = ["DEFAULT_RETENTION_CHECK_INTERVAL_MS", "DiskLogManager"]

log = logging.getLogger("streamclient.broker.log")

# Kafka's log.retention.check.interval.ms
DEFAULT_RETENTION_CHECK_INTERVAL_MS = 300_000


class DiskLogManager(LogManager):
    def __init__(self, state: Any, log_dir: str | Path, *,
                 retention_check_interval_ms: int = DEFAULT_RETENTION_CHECK_INTERVAL_MS,
                 open_files_limit: int = 512) -> None:
        super().__init__(state, store_factory=self._open_store)
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        marker = self.log_dir / CLEAN_SHUTDOWN_FILE
        # without the marker the last run crashed: every segment's CRCs get checked
        self.clean_start = marker.exists()
        marker.unlink(missing_ok=True)
        self.retention_check_interval_ms = retention_check_interval_ms
        self.files = FileCache(open_files_limit)
        self._saved_log_starts = read_offsets_checkpoint(self.log_dir / LOG_START_CHECKPOINT_FILE)
        self._written_log_starts = dict(self._saved_log_starts)
        self._pending_config = LogConfig()
        self._last_check_ms: int | None = None
        self._metadata: dict[str, Any] | None = None
        # offset up to which each compacted log was last cleaned (skip unchanged ones)
        self._cleaned: dict[tuple[str, int], tuple[tuple[int, int], bool]] = {}
        self.closed = False

    # -- opening ------------------------------------------------------------------------------
    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.log_dir / partition_dir_name(topic, partition)

    def _open_store(self, topic: str, partition: int) -> LogStore:
        return DiskLogStore(self.partition_dir(topic, partition), now_ms=self._now(),
                            index_interval_bytes=self._pending_config.index_interval_bytes,
                            check_all_crcs=not self.clean_start, files=self.files)

    def create_partition(self, topic: str, partition: int,
                         configs: Mapping[str, str | None] | None = None, *,
                         now_ms: int = 0) -> PartitionLog:
        existing = self.partition(topic, partition)
        if existing is not None:
            return existing
        self._pending_config = LogConfig.from_configs(configs)
        plog = super().create_partition(topic, partition, configs, now_ms=now_ms)
        directory = self.partition_dir(topic, partition)
        self._sync_flush_settings(plog)
        start = self._saved_log_starts.get((topic, partition))
        if start is not None and start > plog.log_start_offset:
            plog.delete_records_before(min(start, plog.high_watermark))
        for epoch, offset in read_epoch_checkpoint(directory / LEADER_EPOCH_CHECKPOINT_FILE):
            if offset <= plog.log_end_offset:
                plog.epochs.assign(epoch, offset)
        self._write_topic_id(topic, directory)
        return plog

    def _write_topic_id(self, topic: str, directory: Path) -> None:
        meta = getattr(self.state, "topics", {}).get(topic) if self.state is not None else None
        if meta is None:
            return
        path = directory / PARTITION_METADATA_FILE
        if read_partition_metadata(path) != meta.topic_id:
            write_partition_metadata(path, meta.topic_id)

    def restore(self) -> list[str]:
        """Bring back the topics of the log dir into the cluster state (before anything else)."""
        snap = disk_metadata.load(self.log_dir / CLUSTER_METADATA_FILE)
        names = disk_metadata.restore(self.state, snap, self.log_dir)
        self._metadata = disk_metadata.snapshot(self.state)
        return names

    def load_coordinators(self) -> None:
        """Reload committed offsets and transactions; never reuse a producer id in the logs."""
        state = self.state
        txns = getattr(state, "txns", None)
        if txns is not None:
            txns.load_from_log()
        groups = getattr(state, "groups", None)
        if groups is not None:
            groups.load_from_log()
        highest = max((pid for _, plog in self.partitions() for pid in plog.producers.producers),
                      default=-1)
        manager = getattr(txns, "manager", None)
        if highest >= 0 and manager is not None:
            manager.reserve_producer_ids_through(highest)

    # -- housekeeping -------------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        if self.closed:
            return
        if (self._last_check_ms is None
                or now_ms - self._last_check_ms >= self.retention_check_interval_ms):
            self._last_check_ms = now_ms
            super().tick(now_ms)
            self.clean(now_ms)
        for _, plog in self.partitions():
            self._sync_flush_settings(plog)
            store = plog.store
            if isinstance(store, DiskLogStore):
                store.maybe_flush(now_ms)
        self.write_checkpoints()

    def clean(self, now_ms: int) -> int:
        """Compact every ``cleanup.policy=compact`` log with something new to clean."""
        cleaned = 0
        for key, plog in self.partitions():
            if "compact" not in plog.cleanup_policy:
                continue
            segments = cleanable_segments(plog, now_ms)
            if not segments:
                continue
            position = (segments[-1].next_offset, plog.log_start_offset)
            previous = self._cleaned.get(key)
            if previous is not None and previous[0] == position and not previous[1]:
                continue  # nothing new, and nothing kept that could expire
            stats = compact(plog, now_ms)
            if stats is not None:
                cleaned += stats.rewritten
                self._cleaned[key] = (position, stats.expiring_kept)
        return cleaned

    def _sync_flush_settings(self, plog: PartitionLog) -> None:
        store = plog.store
        if isinstance(store, DiskLogStore):
            store.flush_messages = plog.config.flush_messages
            store.flush_ms = plog.config.flush_ms

    def write_checkpoints(self) -> None:
        """Log start offsets and the topic snapshot, when they changed since last written."""
        starts = {key: plog.log_start_offset for key, plog in self.partitions()
                  if plog.log_start_offset > 0}
        if starts != self._written_log_starts:
            write_offsets_checkpoint(self.log_dir / LOG_START_CHECKPOINT_FILE, starts)
            self._written_log_starts = starts
        if self.state is not None and hasattr(self.state, "topics"):
            snap = disk_metadata.snapshot(self.state)
            if snap != self._metadata:
                disk_metadata.save(self.log_dir / CLUSTER_METADATA_FILE, snap)
                self._metadata = snap

    def delete_topic(self, topic: str) -> None:
        for plog in self.topic_partitions(topic):
            store = plog.store
            if isinstance(store, DiskLogStore):
                store.delete_all()
            shutil.rmtree(self.partition_dir(topic, plog.partition), ignore_errors=True)
        super().delete_topic(topic)
        # a deleted topic must not come back from a stale snapshot after a crash
        self.write_checkpoints()

    def close(self) -> None:
        """Flush, write every checkpoint, close files and leave the clean-shutdown marker."""
        if self.closed:
            return
        self.closed = True
        self.write_checkpoints()
        for (topic, partition), plog in self.partitions():
            write_epoch_checkpoint(self.partition_dir(topic, partition)
                                   / LEADER_EPOCH_CHECKPOINT_FILE, plog.epochs.entries())
            store = plog.store
            if isinstance(store, DiskLogStore):
                store.flush()
                store.close()
        write_atomically(self.log_dir / CLEAN_SHUTDOWN_FILE, b"")

    def _now(self) -> int:
        clock = getattr(self.state, "clock", None)
        return clock.now_ms() if clock is not None else 0
