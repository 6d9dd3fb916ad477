"""Committed offsets of every group, in memory, sans-IO.

This map serves OffsetFetch; the coordinator writes each change to ``__consumer_offsets`` as
well, so :meth:`OffsetStore.apply_record` can rebuild the map from the log after a restart.
Transactional commits (TxnOffsetCommit) wait per producer id until the transaction ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["OffsetAndMetadata", "OffsetStore", "TopicPartition"]

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp_ms: int = -1


class OffsetStore:
    def __init__(self) -> None:
        self._committed: dict[str, dict[TopicPartition, OffsetAndMetadata]] = {}
        # group -> producer id -> offsets waiting for that producer's transaction to end
        self._pending: dict[str, dict[int, dict[TopicPartition, OffsetAndMetadata]]] = {}

    def groups(self) -> Iterator[str]:
        return iter(set(self._committed) | set(self._pending))

    def has_offsets(self, group_id: str) -> bool:
        return bool(self._committed.get(group_id)) or bool(self._pending.get(group_id))

    def commit(self, group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self._committed.setdefault(group_id, {}).update(offsets)

    def fetch(
        self, group_id: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """Committed offsets; with ``partitions=None`` every partition the group committed."""
        committed = self._committed.get(group_id, {})
        if partitions is None:
            return dict(sorted(committed.items()))
        return {tp: committed.get(tp) for tp in partitions}

    def delete(self, group_id: str, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        committed = self._committed.get(group_id, {})
        removed = [tp for tp in partitions if committed.pop(tp, None) is not None]
        if not committed:
            self._committed.pop(group_id, None)
        return removed

    def delete_group(self, group_id: str) -> list[TopicPartition]:
        self._pending.pop(group_id, None)
        return sorted(self._committed.pop(group_id, {}))

    # --- transactional commits ----------------------------------------------------------

    def stage(
        self, group_id: str, producer_id: int, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        self._pending.setdefault(group_id, {}).setdefault(producer_id, {}).update(offsets)

    def has_pending(self, group_id: str, tp: TopicPartition) -> bool:
        return any(tp in offs for offs in self._pending.get(group_id, {}).values())

    def groups_with_pending(self, producer_id: int) -> list[str]:
        return [g for g, by_pid in self._pending.items() if producer_id in by_pid]

    def complete_txn(self, group_id: str, producer_id: int, commit: bool) -> None:
        """A commit marker makes the producer's staged offsets committed; an abort drops them."""
        by_pid = self._pending.get(group_id)
        if not by_pid or producer_id not in by_pid:
            return
        offsets = by_pid.pop(producer_id)
        if not by_pid:
            del self._pending[group_id]
        if commit:
            self.commit(group_id, offsets)
