"""A coordinator's view of its internal topic (``__consumer_offsets``, ``__transaction_state``).

It decides which partition owns a key, which node leads that partition (that node is the
coordinator), and reads and appends the coordinator's own records through the partition log.
All access to the cluster state for this lives here, so the coordinators stay independent of
how the state is laid out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.placement import partition_for
from streamclient.protocol.records.batch import RecordBatch
from streamclient.protocol.records.builder import RecordBatchBuilder

__all__ = ["InternalTopic"]

_READ_CHUNK = 1 << 20


class InternalTopic:
    def __init__(self, state: Any, name: str, num_partitions: int) -> None:
        self.state = state
        self.name = name
        # the placement hash needs the count before the topic exists; the cluster creates it
        # from the same broker config
        self.num_partitions = num_partitions

    def partition_for(self, key: str) -> int:
        return partition_for(key, self.num_partitions)

    # --- cluster state ------------------------------------------------------------------

    def ensure(self) -> bool:
        """Create the topic when the first coordinator request needs it (as Kafka does)."""
        if self.name in self.state.topics:
            return True
        if not self.state.alive_node_ids():
            return False
        try:
            self.state.ensure_internal_topic(self.name)
        except Exception:  # e.g. no node alive to host it: the coordinator is unavailable
            return False
        return True

    def leader(self, partition: int) -> int | None:
        """The node that coordinates keys of ``partition``, or None if it is unavailable."""
        if not self.ensure():
            return None
        leader = self.state.partition_leader(self.name, partition)
        if leader is None or leader < 0 or not self.state.is_alive(leader):
            return None
        return int(leader)

    def leader_epoch(self, partition: int) -> int:
        meta = self.state.partition(self.name, partition)
        return 0 if meta is None else int(meta.leader_epoch)

    def coordinator_for(self, key: str) -> int | None:
        return self.leader(self.partition_for(key))

    def check_coordinator(self, node_id: int, key: str) -> Code:
        """NOT_COORDINATOR unless ``node_id`` leads the partition that owns ``key``;
        COORDINATOR_NOT_AVAILABLE while no alive node does."""
        leader = self.coordinator_for(key)
        if leader is None:
            return Code.COORDINATOR_NOT_AVAILABLE
        if leader != node_id:
            return Code.NOT_COORDINATOR
        return Code.NONE

    def log(self, partition: int) -> Any:
        return self.state.partition_log(self.name, partition)

    # --- records --------------------------------------------------------------------------

    def append(
        self,
        partition: int,
        records: list[tuple[bytes, bytes | None]],
        now_ms: int,
        *,
        producer: tuple[int, int] | None = None,
    ) -> bool:
        """Append key/value records as one batch; transactional when ``producer`` is given.

        Returns False when the partition has no log (the topic is being created or deleted).
        Append errors (``AppendError``) propagate to the caller.
        """
        if not records:
            return True
        log = self.log(partition)
        if log is None:
            return False
        if producer is None:
            builder = RecordBatchBuilder()
        else:
            builder = RecordBatchBuilder(
                is_transactional=True, producer_id=producer[0], producer_epoch=producer[1]
            )
        for key, value in records:
            builder.append(now_ms, key, value, [])
        log.append(builder.build(), origin="coordinator", now_ms=now_ms)
        return True

    def write_marker(
        self, partition: int, producer_id: int, producer_epoch: int, commit: bool, now_ms: int,
        coordinator_epoch: int,
    ) -> bool:
        log = self.log(partition)
        if log is None:
            return False
        log.append_control(producer_id, producer_epoch, commit, coordinator_epoch, now_ms)
        return True

    def batches(self, partition: int) -> Iterator[RecordBatch]:
        """Every batch of the partition from its start, uncommitted and control ones too."""
        log = self.log(partition)
        if log is None:
            return
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, _READ_CHUNK, 0).records
            view = memoryview(data)
            pos = 0
            advanced = False
            while len(view) - pos >= 61:
                batch = RecordBatch(view[pos:])
                pos += batch.size_in_bytes
                if batch.next_offset <= offset:
                    continue
                yield batch
                offset = batch.next_offset
                advanced = True
            if not advanced:
                return
