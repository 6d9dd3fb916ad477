"""``PartitionLog``: one partition's data, offsets, replication watermarks and transactions.

Sans-IO except for the two ``wait_*`` coroutines used by long-polling fetches and
acks=-1 produces.  Replication is modelled in process: the data lives once, and each
follower is a fetch position that catches up at once while its node is alive.  The
high watermark is the lowest position in the ISR, so a stopped node that is still in
the ISR holds it back until the cluster drops the node from the ISR.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

import anyio

# the module, not its names: producer_state imports log.results, so importing
# producer_state first runs this module while producer_state is still half-built
from streamclient.broker import producer_state
from streamclient.broker.log import batches
from streamclient.broker.log.config import LogConfig
from streamclient.broker.log.epochs import LeaderEpochCache
from streamclient.broker.log.memory import MemoryLogStore
from streamclient.broker.log.results import (
    AbortedTxn,
    AppendError,
    AppendResult,
    Err,
    ReadError,
    ReadResult,
)
from streamclient.broker.log.store import LogStore, Segment
from streamclient.broker.log.waiters import DataWaiter, WaiterSet, wait_for_data
from streamclient.errors import IllegalArgumentError

if TYPE_CHECKING:
    from streamclient.broker.producer_state import CompletedTxn

READ_UNCOMMITTED = 0
READ_COMMITTED = 1
_INT32_MAX = (1 << 31) - 1


class PartitionLog:
    def __init__(self, topic: str, partition: int, config: LogConfig | None = None, *,
                 store: LogStore | None = None, now_ms: int = 0) -> None:
        self.topic = topic
        self.partition = partition
        self.config = config or LogConfig()
        self.cleanup_policy = "delete"
        self._store = store if store is not None else MemoryLogStore()
        self._log_start_offset = 0
        self._log_end_offset = 0
        self._high_watermark = 0
        self.producers = producer_state.ProducerStateManager()
        self.epochs = LeaderEpochCache()
        self._aborted: list[AbortedTxn] = []
        self._aborted_last_offsets: list[int] = []
        # completed transactions whose marker the high watermark has not passed yet: they
        # still hold the last stable offset back (Kafka's "unreplicated" completed txns)
        self._unreplicated: list[CompletedTxn] = []
        self._waiters = WaiterSet()
        self.leader = -1
        self.leader_epoch = 0
        self._isr: tuple[int, ...] = ()
        self._positions: dict[int, int] = {}
        self._alive: frozenset[int] = frozenset()
        if self._store.segments:
            self._recover()
        else:
            self._store.roll(0, now_ms, self.config.index_interval_bytes)

    def _recover(self) -> None:
        """Rebuild offsets, producer state and the aborted index by replaying batch headers.

        A store that already holds data (the disk store after a restart) is read once
        from the start; the high watermark starts at the log end, as for a single replica.
        """
        segments = self._store.segments
        self._log_start_offset = segments[0].base_offset
        self._replay_batches(assign_epochs=True)
        self._high_watermark = self._log_end_offset
        self._unreplicated.clear()
        self.leader_epoch = max(0, self.epochs.latest_epoch)

    def _replay_batches(self, *, assign_epochs: bool) -> None:
        """Rebuild producer state and the aborted-transaction index (and, when asked, the
        epoch cache) from the stored batch headers; the log end follows the last batch."""
        for segment in self._store.segments:
            for loc in segment.batches_from(0):
                data = segment.read(loc.position, loc.size)
                header = batches.read_header(data)
                if header.is_control:
                    marker = batches.control_marker(data)
                    if not (marker.is_commit or marker.is_abort):
                        continue
                    completed = self.producers.on_marker(
                        header.producer_id, header.producer_epoch, marker.coordinator_epoch,
                        marker.is_commit, loc.base_offset, header.max_timestamp)
                    if completed is not None:
                        self._complete_txn(completed)
                else:
                    self.producers.replay_batch(header, loc.base_offset, loc.last_offset)
                if assign_epochs:
                    self.epochs.assign(header.partition_leader_epoch, loc.base_offset)
                self._log_end_offset = loc.next_offset

    def truncate_to(self, offset: int) -> None:
        """Drop every record from ``offset`` on, as a replica does when it follows a leader
        whose log is shorter (an unclean election): the log end and high watermark come
        down to ``offset``, epochs that started there are forgotten, and producer state and
        the aborted index are rebuilt from what is left.  ``offset`` must be a batch
        boundary between the log start and the log end (``IllegalArgumentError``)."""
        if not self._log_start_offset <= offset <= self._log_end_offset:
            raise IllegalArgumentError(
                f"cannot truncate {self.topic}-{self.partition} to {offset}: the log holds "
                f"{self._log_start_offset}..{self._log_end_offset}")
        if offset == self._log_end_offset:
            return
        segment = self._store.segment_for(offset)
        loc = None if segment is None else segment.find(offset)
        if loc is not None and loc.base_offset < offset <= loc.last_offset:
            raise IllegalArgumentError(
                f"cannot truncate {self.topic}-{self.partition} to {offset}: it is inside "
                f"the batch {loc.base_offset}..{loc.last_offset}")
        self._store.truncate_to(offset)
        self.epochs.truncate_from_end(offset)
        self.producers = producer_state.ProducerStateManager()
        self._aborted.clear()
        self._aborted_last_offsets.clear()
        self._unreplicated.clear()
        self._replay_batches(assign_epochs=False)
        if self._log_start_offset:
            self.producers.truncate_before(self._log_start_offset)
        self._log_end_offset = offset
        self._high_watermark = min(self._high_watermark, offset)
        # completed transactions whose markers are still above the watermark hold the
        # last stable offset back, as after an append
        self._unreplicated = [t for t in self._unreplicated if t.last_offset >= self._high_watermark]
        self._positions = {node: min(pos, offset) for node, pos in self._positions.items()}
        self._waiters.wake_all()

    # -- watermarks -------------------------------------------------------------------------
    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def last_stable_offset(self) -> int:
        lso = self._high_watermark
        first = self.producers.first_unstable_offset()
        if first is not None:
            lso = min(lso, first)
        for txn in self._unreplicated:
            lso = min(lso, txn.first_offset)
        return lso

    @property
    def isr(self) -> tuple[int, ...]:
        return self._isr

    @property
    def store(self) -> LogStore:
        return self._store

    def update_config(self, configs: Mapping[str, str | None]) -> None:
        self.config = LogConfig.from_configs(configs)
        self.cleanup_policy = str(configs.get("cleanup.policy") or "delete")

    # -- replication --------------------------------------------------------------------------
    def update_replication(self, *, leader: int, leader_epoch: int, isr: Collection[int],
                           alive: Collection[int] | None = None) -> None:
        """Tell the log who leads, the ISR and which nodes are up; recomputes the watermark.

        Call on creation and on every leader, ISR or node-liveness change.  ``alive``
        defaults to every ISR member.
        """
        self.leader = leader
        if leader_epoch > self.leader_epoch or not self.epochs.entries():
            self.epochs.assign(leader_epoch, self._log_end_offset)
        self.leader_epoch = leader_epoch
        self._isr = tuple(isr)
        self._alive = frozenset(isr if alive is None else alive)
        self._advance_replicas()
        self._waiters.wake_all()

    def replica_position(self, node_id: int) -> int:
        """Log end offset of ``node_id``'s copy (the leader's is the log end)."""
        if node_id == self.leader or not self._isr:
            return self._log_end_offset
        return self._positions.get(node_id, 0)

    def _advance_replicas(self) -> None:
        for node in self._alive:
            self._positions[node] = self._log_end_offset
        hw = self._log_end_offset
        for node in self._isr:
            if node != self.leader:
                hw = min(hw, self._positions.get(node, 0))
        if hw > self._high_watermark:
            self._high_watermark = hw
            if self._unreplicated:
                self._unreplicated = [t for t in self._unreplicated if t.last_offset >= hw]

    # -- appends --------------------------------------------------------------------------------
    def append(self, batch_bytes: bytes | bytearray | memoryview, *, origin: str = "client",
               now_ms: int) -> AppendResult:
        """Validate, assign offsets to and store one produce batch."""
        batch = batches.parse_single_batch(batch_bytes, self.config.max_message_bytes)
        if batch.is_control and origin == "client":
            raise AppendError(Err.INVALID_RECORD, "clients may not write control batches")
        batches.validate_records(batch, batch_bytes, self.config, now_ms)
        duplicate = self.producers.check_batch(batch, origin=origin)
        if duplicate is not None:
            return AppendResult(duplicate.first_offset, duplicate.last_offset,
                                duplicate.timestamp if self.config.log_append_time else -1,
                                self._log_start_offset, duplicate=True)
        base = self._log_end_offset
        append_time = now_ms if self.config.log_append_time else None
        data = batches.stamp(batch_bytes, base_offset=base, leader_epoch=self.leader_epoch,
                             log_append_time=append_time)
        last = base + batch.last_offset_delta
        max_ts = now_ms if append_time is not None else batch.max_timestamp
        self._write(data, base, last, max_ts, now_ms)
        self.producers.on_append(batches.with_max_timestamp(batch, max_ts), base, last)
        self._after_write()
        return AppendResult(base, last, -1 if append_time is None else append_time,
                            self._log_start_offset)

    def append_control(self, producer_id: int, producer_epoch: int, commit: bool,
                       coordinator_epoch: int, now_ms: int) -> AppendResult:
        """Write a COMMIT/ABORT marker for ``producer_id`` and close its transaction."""
        self.producers.check_marker(producer_id, producer_epoch, coordinator_epoch)
        base = self._log_end_offset
        data = batches.control_batch(producer_id, producer_epoch, commit=commit,
                                     coordinator_epoch=coordinator_epoch, timestamp=now_ms,
                                     base_offset=base, leader_epoch=self.leader_epoch)
        self._write(data, base, base, now_ms, now_ms)
        completed = self.producers.on_marker(producer_id, producer_epoch, coordinator_epoch,
                                             commit, base, now_ms)
        if completed is not None:
            self._complete_txn(completed)
        self._after_write()
        return AppendResult(base, base, -1, self._log_start_offset)

    def _complete_txn(self, txn: CompletedTxn) -> None:
        if txn.aborted:
            self._aborted.append(AbortedTxn(txn.producer_id, txn.first_offset, txn.last_offset))
            self._aborted_last_offsets.append(txn.last_offset)
        self._unreplicated.append(txn)

    def _write(self, data: bytes, base: int, last: int, max_timestamp: int, now_ms: int) -> None:
        active = self._store.active
        assert active is not None  # the constructor rolls the first segment
        if active.batch_count and (
                active.size_bytes + len(data) > self.config.segment_bytes
                or now_ms - active.created_ms >= self.config.segment_ms
                or last - active.base_offset > _INT32_MAX):
            active = self._store.roll(base, now_ms, self.config.index_interval_bytes)
        active.append(data, base_offset=base, last_offset=last, max_timestamp=max_timestamp)
        self._log_end_offset = last + 1

    def _after_write(self) -> None:
        self._advance_replicas()
        self._waiters.wake_all()

    # -- reads ----------------------------------------------------------------------------------
    def read(self, offset: int, max_bytes: int, isolation_level: int = READ_UNCOMMITTED, *,
             min_one_batch: bool = True) -> ReadResult:
        """Whole batches from ``offset`` up to the high watermark (read_committed: the LSO).

        At most ``max_bytes``, except that the first batch is returned whole even when it
        is larger if ``min_one_batch`` (so a consumer always makes progress).
        """
        if offset < self._log_start_offset or offset > self._log_end_offset:
            raise ReadError(Err.OFFSET_OUT_OF_RANGE,
                            f"offset {offset} is outside {self._log_start_offset}.."
                            f"{self._log_end_offset} of {self.topic}-{self.partition}")
        lso = self.last_stable_offset
        upper = lso if isolation_level == READ_COMMITTED else self._high_watermark
        data, end = self._read_range(offset, upper, max_bytes, min_one_batch)
        aborted: list[AbortedTxn] = []
        if isolation_level == READ_COMMITTED and data:
            aborted = self.aborted_transactions(offset, end)
        return ReadResult(data, self._high_watermark, lso, self._log_start_offset, aborted)

    def _read_range(self, offset: int, upper: int, max_bytes: int,
                    min_one_batch: bool) -> tuple[bytes, int]:
        chunks: list[bytes] = []
        total = 0
        end_offset = offset
        for segment in self._store.segments_from(offset):
            start = 0
            if segment.base_offset <= offset:
                first = segment.find(offset)
                if first is None:
                    continue  # offset is at this segment's end: nothing here to scan
                start = first.position
            stop = start
            full = False
            for loc in segment.batches_from(start):
                if loc.last_offset < offset:
                    continue
                if loc.base_offset >= upper:
                    full = True
                    break
                if total + loc.size > max_bytes and not (min_one_batch and total == 0):
                    full = True
                    break
                stop = loc.position + loc.size
                total += loc.size
                end_offset = loc.next_offset
            if stop > start:
                chunks.append(segment.read(start, stop - start))
            if full:
                break
        return b"".join(chunks), end_offset

    def aborted_transactions(self, from_offset: int, to_offset: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping ``[from_offset, to_offset)``."""
        i = bisect_left(self._aborted_last_offsets, from_offset)
        return [t for t in self._aborted[i:] if t.first_offset < to_offset]

    def batch_containing(self, offset: int) -> bytes | None:
        """The stored bytes of the batch holding ``offset``."""
        segment = self._store.segment_for(offset)
        if segment is None:
            return None
        loc = segment.find(offset)
        if loc is None or loc.base_offset > offset:
            return None
        return segment.read(loc.position, loc.size)

    # -- offsets by time ------------------------------------------------------------------------
    def offset_for_timestamp(self, timestamp: int,
                             isolation_level: int = READ_UNCOMMITTED) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= ``timestamp``."""
        upper = (self.last_stable_offset if isolation_level == READ_COMMITTED
                 else self._high_watermark)
        for segment in self._store.segments_from(self._log_start_offset):
            loc = segment.find_by_timestamp(timestamp)
            if loc is None:
                continue
            for candidate in segment.batches_from(loc.position):
                if candidate.base_offset >= upper:
                    return None
                if candidate.max_timestamp < timestamp:
                    continue
                data = segment.read(candidate.position, candidate.size)
                for off, ts in batches.record_timestamps(data):
                    # a batch straddling the log start keeps its deleted records
                    if ts >= timestamp and off >= self._log_start_offset:
                        return off, ts
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the record with the largest timestamp (ListOffsets -3)."""
        best: Segment | None = None
        for segment in self._store.segments:
            if segment.batch_count and (best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        if best is None:
            return None
        loc = best.find(best.offset_of_max_timestamp)
        if loc is None:
            return None
        for off, ts in batches.record_timestamps(best.read(loc.position, loc.size)):
            if ts == best.max_timestamp:
                return off, ts
        return loc.base_offset, best.max_timestamp

    # -- log start ----------------------------------------------------------------------------
    def delete_records_before(self, offset: int) -> int:
        """Advance the log start to ``offset`` (-1: the high watermark); returns the new start."""
        if offset == -1:
            offset = self._high_watermark
        if offset < 0 or offset > self._high_watermark:
            raise ReadError(Err.OFFSET_OUT_OF_RANGE,
                            f"cannot delete before {offset}: high watermark is {self._high_watermark}")
        if offset > self._log_start_offset:
            self._log_start_offset = offset
            self._delete_segments_below(offset)
            self.producers.truncate_before(offset)
            self.epochs.truncate_from_start(offset)
            self._waiters.wake_all()
        return self._log_start_offset

    def _delete_segments_below(self, offset: int) -> None:
        segments = self._store.segments
        while len(segments) > 1 and segments[0].next_offset <= offset:
            self._store.delete_oldest()
        i = bisect_left(self._aborted_last_offsets, offset)
        if i:
            del self._aborted[:i]
            del self._aborted_last_offsets[:i]

    # -- retention ------------------------------------------------------------------------------
    def apply_retention(self, now_ms: int) -> int:
        """Delete whole old segments by ``retention.ms``/``retention.bytes``; returns how many.

        Only segments wholly below the high watermark go, and never the active one; the
        log start moves to the first kept segment.  Compaction is the disk store's issue.
        """
        if "delete" not in self.cleanup_policy:
            return 0
        retention_ms, retention_bytes = self.config.retention_ms, self.config.retention_bytes
        deleted = 0
        segments = self._store.segments
        while len(segments) > 1:
            oldest = segments[0]
            if oldest.next_offset > self._high_watermark:
                break
            too_old = retention_ms >= 0 and now_ms - oldest.max_timestamp > retention_ms
            too_big = (retention_bytes >= 0
                       and self._store.size_bytes - oldest.size_bytes >= retention_bytes)
            if not (too_old or too_big):
                break
            self.delete_records_before(segments[1].base_offset)
            deleted += 1
        return deleted

    # -- waiting --------------------------------------------------------------------------------
    def watch(self, waiter: DataWaiter) -> None:
        self._waiters.add(waiter)

    def unwatch(self, waiter: DataWaiter) -> None:
        self._waiters.discard(waiter)

    def wake_waiters(self) -> None:
        """Wake every waiting fetch/produce (used on leadership changes and shutdown)."""
        self._waiters.wake_all()

    async def wait_for_data(self, timeout_ms: float) -> bool:
        return await wait_for_data([self], timeout_ms)

    async def wait_for_high_watermark(self, offset: int, timeout_ms: float) -> bool:
        """Wait until the high watermark reaches ``offset``; False on timeout."""
        deadline = anyio.current_time() + timeout_ms / 1000
        while self._high_watermark < offset:
            remaining = (deadline - anyio.current_time()) * 1000
            if remaining <= 0:
                return False
            await wait_for_data([self], remaining)
        return True
