"""``LogManager``: every partition log of the cluster, by (topic, partition)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from streamclient.broker.log.config import LogConfig
from streamclient.broker.log.memory import MemoryLogStore
from streamclient.broker.log.partition import PartitionLog
from streamclient.broker.log.store import LogStore


class LogManager:
    def __init__(self, state: Any = None, *,
                 store_factory: Callable[[str, int], LogStore] | None = None) -> None:
        # the cluster state is kept for the disk store (log_dir) and for symmetry with the
        # coordinators; the logs themselves need nothing from it
        self.state = state
        self._store_factory = store_factory or (lambda topic, partition: MemoryLogStore())
        self._logs: dict[tuple[str, int], PartitionLog] = {}

    def create_partition(self, topic: str, partition: int,
                         configs: Mapping[str, str | None] | None = None, *,
                         now_ms: int = 0) -> PartitionLog:
        """The log of ``topic``-``partition``, created empty if it does not exist yet."""
        key = (topic, partition)
        log = self._logs.get(key)
        if log is None:
            log = PartitionLog(topic, partition, LogConfig.from_configs(configs),
                               store=self._store_factory(topic, partition), now_ms=now_ms)
            log.cleanup_policy = str((configs or {}).get("cleanup.policy") or "delete")
            self._logs[key] = log
        return log

    def partition(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    def partitions(self) -> Iterator[tuple[tuple[str, int], PartitionLog]]:
        yield from list(self._logs.items())

    def topic_partitions(self, topic: str) -> list[PartitionLog]:
        return [log for (t, _), log in self._logs.items() if t == topic]

    def tick(self, now_ms: int) -> None:
        """Periodic housekeeping (the cluster calls it): time and size retention."""
        for log in list(self._logs.values()):
            log.apply_retention(now_ms)

    def delete_topic(self, topic: str) -> None:
        for key in [k for k in self._logs if k[0] == topic]:
            log = self._logs.pop(key)
            # parked fetches re-check and find the partition gone
            log.wake_waiters()
