"""Calls served by partition leaders: DeleteRecords, ListOffsets, DescribeProducers.

Partitions are grouped by leader, one request per leader, sent concurrently.  A partition
whose leader moved (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, … Kafka's retriable
metadata errors) is looked up again in refreshed metadata and resent; a partition that
is not in fresh metadata at all fails at once: an admin naming a topic that does not
exist should hear so, not wait out its timeout.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from streamclient.errors import IllegalArgumentError, KafkaError, LeaderNotAvailableError
from streamclient.protocol.message import Message
from streamclient.protocol.messages.delete_records import DeleteRecordsRequest
from streamclient.protocol.messages.describe_producers import DescribeProducersRequest
from streamclient.protocol.messages.list_offsets import ListOffsetsRequest
from streamclient.structs import TopicPartition

from . import requests
from .checks import check_partitions, check_timeout, unknown_partition
from .dispatch import Dispatcher
from .models import (
    ListOffsetsResultInfo,
    OffsetSpec,
    ProducerState,
    RecordsToDelete,
    error_for,
)
from .retry import Fatal, gather, is_retriable

__all__ = ["PartitionCalls"]

V = TypeVar("V")

# what a leader answered: per partition, (error code, error message, value)
Answered = dict[TopicPartition, tuple[int, str | None, Any]]

# ListOffsets' isolation_level byte (a setting of the consumer too, but admin does not
# import the consumer)
ISOLATION_LEVELS: Final = {"read_uncommitted": 0, "read_committed": 1}
_NO_EPOCH: Final = -1
_NO_TXN: Final = -1


class PartitionCalls:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def delete_records(self, records: Mapping[TopicPartition, Any],
                             timeout_ms: int | None) -> dict[TopicPartition, int]:
        if not isinstance(records, Mapping):
            raise TypeError("records_to_delete must be a dict of TopicPartition to "
                            "RecordsToDelete")
        before = dict(zip(check_partitions("records_to_delete", list(records)),
                          (_before_offset(v) for v in records.values()), strict=True))
        wait_ms = check_timeout(timeout_ms, self._d.config.request_timeout_ms)

        async def send(node: int, tps: list[TopicPartition]) -> Answered:
            response = await self._d.send(node, DeleteRecordsRequest, lambda _: (
                requests.delete_records_request({tp: before[tp] for tp in tps}, wait_ms)))
            return {TopicPartition(t.name, p.partition_index):
                    (p.error_code, None, p.low_watermark)
                    for t in response.topics for p in t.partitions}

        return await self._per_leader("DeleteRecords", list(before), send)

    async def list_offsets(self, specs: Mapping[TopicPartition, Any],
                           isolation_level: str) -> dict[TopicPartition, ListOffsetsResultInfo]:
        if not isinstance(specs, Mapping):
            raise TypeError("topic_partitions must be a dict of TopicPartition to OffsetSpec")
        wanted = dict(zip(check_partitions("topic_partitions", list(specs)),
                          (OffsetSpec.parse(s) for s in specs.values()), strict=True))
        if isolation_level not in ISOLATION_LEVELS:
            raise IllegalArgumentError(f"isolation_level must be one of "
                                       f"{', '.join(ISOLATION_LEVELS)}, not {isolation_level!r}")
        level = ISOLATION_LEVELS[isolation_level]

        async def send(node: int, tps: list[TopicPartition]) -> Answered:
            used: list[int] = []

            def build(version: int) -> Message:
                used.append(version)
                return requests.list_offsets_request({tp: wanted[tp] for tp in tps}, level,
                                                     version)

            response = await self._d.send(node, ListOffsetsRequest, build)
            return {TopicPartition(t.name, p.partition_index):
                    (p.error_code, None, _offset_info(p, used[0]))
                    for t in response.topics for p in t.partitions}

        return await self._per_leader("ListOffsets", list(wanted), send)

    async def describe_producers(self, partitions: Sequence[TopicPartition]
                                 ) -> dict[TopicPartition, list[ProducerState]]:
        wanted = list(dict.fromkeys(check_partitions("partitions", partitions)))

        async def send(node: int, tps: list[TopicPartition]) -> Answered:
            response = await self._d.send(node, DescribeProducersRequest,
                                          lambda _: requests.describe_producers_request(tps))
            return {TopicPartition(t.name, p.partition_index):
                    (p.error_code, p.error_message, [_producer(s) for s in p.active_producers])
                    for t in response.topics for p in t.partitions}

        return await self._per_leader("DescribeProducers", wanted, send)

    async def _per_leader(self, what: str, partitions: list[TopicPartition],
                          send: Callable[[int, list[TopicPartition]], Awaitable[Answered]]
                          ) -> dict[TopicPartition, Any]:
        d = self._d
        cluster = d.cluster
        results: dict[TopicPartition, Any] = {}
        pending = list(partitions)

        async def leaders() -> dict[int, list[TopicPartition]]:
            metadata = cluster.metadata
            if any(metadata.leader_for(tp) is None for tp in pending) or \
                    metadata.update_requested:
                await cluster.refresh_metadata({tp.topic for tp in pending})
            by_node: dict[int, list[TopicPartition]] = defaultdict(list)
            for tp in pending:
                leader = metadata.leader_for(tp)
                if leader is None:
                    raise Fatal(unknown_partition(tp, metadata.topic_error(tp.topic)))
                if leader < 0:
                    raise LeaderNotAvailableError(f"{tp} has no leader")
                by_node[leader].append(tp)
            return by_node

        async def attempt() -> KafkaError | None:
            by_node = await leaders()

            def call(node: int, tps: list[TopicPartition]) -> Callable[[], Awaitable[Answered]]:
                return lambda: send(node, tps)

            outcomes = await gather([call(n, tps) for n, tps in by_node.items()])
            retry: KafkaError | None = None
            for outcome in outcomes:
                if isinstance(outcome, KafkaError):
                    retry = retry or outcome
                    continue
                for tp, (code, message, value) in outcome.items():
                    error = error_for(code, message, f"{what} for {tp}")
                    if error is None:
                        results[tp] = value
                    elif not is_retriable(error):
                        raise Fatal(error)
                    else:
                        cluster.metadata.request_update()
                        retry = retry or error
            pending[:] = [tp for tp in pending if tp not in results]
            if pending and retry is None:
                # a leader left a partition out of its answer: ask again
                retry = LeaderNotAvailableError(f"{what}: no answer for {pending[0]}")
            return retry if pending else None

        if partitions:
            await d.run(what, attempt)
        return {tp: results[tp] for tp in partitions}


def _before_offset(value: Any) -> int:
    if isinstance(value, RecordsToDelete):
        return value.before_offset
    return RecordsToDelete(value).before_offset  # an int, checked the same way


def _offset_info(p: Any, version: int) -> ListOffsetsResultInfo:
    if version == 0:
        # v0 answers a list of offsets and no timestamp
        offset = p.old_style_offsets[0] if p.old_style_offsets else -1
        return ListOffsetsResultInfo(offset, -1, None)
    epoch = p.leader_epoch if version >= 4 and p.leader_epoch != _NO_EPOCH else None
    return ListOffsetsResultInfo(p.offset, p.timestamp, epoch)


def _producer(s: Any) -> ProducerState:
    return ProducerState(
        producer_id=s.producer_id, producer_epoch=s.producer_epoch,
        last_sequence=s.last_sequence, last_timestamp=s.last_timestamp,
        coordinator_epoch=None if s.coordinator_epoch < 0 else s.coordinator_epoch,
        current_transaction_start_offset=(None if s.current_txn_start_offset == _NO_TXN
                                          else s.current_txn_start_offset))
