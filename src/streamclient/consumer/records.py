"""Fetched data → ``ConsumerRecord``s, and what a Fetch response means per partition.

:class:`CompletedFetch` holds one partition's data from one Fetch response and hands its
records out lazily, ``max_records`` at a time (Java's ``CompletedFetch``).  Batches are
walked one by one and records decoded as they are taken; deserializers run only on records
actually handed out.  The rules it keeps:

- records below the fetch position are skipped: a batch may start before it (the broker
  sends whole batches, and a compressed batch cannot be cut);
- the next position after a finished batch is ``last offset + 1`` of the batch, not the
  count of records seen: compaction leaves gaps, and control batches take an offset;
- read_committed: the broker lists the aborted transactions overlapping the fetched range
  as ``(producer id, first offset)``.  As batches pass, every aborted transaction whose
  first offset is at or below the batch's last offset marks its producer as aborting;
  a transactional batch from an aborting producer is dropped; that producer's ABORT
  marker (a control batch) ends it.  Control batches are never handed out;
- a partial batch at the end of the data is ignored (the next fetch starts there);
- with ``check_crcs`` a corrupt batch raises ``CorruptRecordException`` — after the
  records before it were handed out, so the position points at the bad batch.

:func:`read_partition_response` turns a partition's error code into a decision for the
fetcher (refresh metadata, reset the offset, raise to the application, retry).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streamclient.consumer.offsets import FetchPosition, OffsetResetStrategy
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import (
    CorruptRecordException,
    FencedLeaderEpochError,
    KafkaError,
    KafkaStorageError,
    NotLeaderForPartitionError,
    OffsetNotAvailableError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    ReplicaNotAvailableError,
    TopicAuthorizationFailedError,
    UnknownLeaderEpochError,
    UnknownTopicIdError,
    UnknownTopicOrPartitionError,
    UnsupportedCodecError,
    for_code,
)
from streamclient.protocol.messages.fetch import FetchResponse
from streamclient.protocol.records import AnyBatch, ControlRecord, iter_batches
from streamclient.protocol.records.batch import Record
from streamclient.structs import ConsumerRecord, TopicPartition

__all__ = [
    "READ_COMMITTED",
    "READ_UNCOMMITTED",
    "CompletedFetch",
    "PartitionDecision",
    "read_partition_response",
]

READ_UNCOMMITTED = 0
READ_COMMITTED = 1

Deserializer = Callable[[bytes | None], Any]
PartitionData = FetchResponse.FetchableTopicResponse.PartitionData

# errors after which the partition's leader (or our view of it) is wrong
_METADATA_ERRORS = (
    NotLeaderForPartitionError,
    ReplicaNotAvailableError,
    FencedLeaderEpochError,
    KafkaStorageError,
    OffsetNotAvailableError,
    UnknownTopicOrPartitionError,
    UnknownTopicIdError,
)


class CompletedFetch:
    """One partition's records from one Fetch response, drained lazily.

    ``next_fetch_offset`` starts at the offset the fetch asked for and moves forward as
    records are taken and batches are finished; ``last_epoch`` is the leader epoch of the
    batch the last record came from.  The fetcher copies both into the subscription's
    position after each :meth:`take` (see :meth:`drain_into`).
    """

    def __init__(
        self,
        tp: TopicPartition,
        fetch_offset: int,
        records: bytes | bytearray | memoryview | None,
        *,
        aborted_transactions: list[PartitionData.AbortedTransaction] | None = None,
        isolation_level: int = READ_UNCOMMITTED,
        check_crcs: bool = True,
        key_deserializer: Deserializer | None = None,
        value_deserializer: Deserializer | None = None,
        high_watermark: int = -1,
        last_stable_offset: int = -1,
        log_start_offset: int = -1,
    ) -> None:
        self.tp = tp
        self.fetch_offset = fetch_offset
        self.next_fetch_offset = fetch_offset
        self.last_epoch: int | None = None
        self.high_watermark = high_watermark
        self.last_stable_offset = last_stable_offset
        self.log_start_offset = log_start_offset
        self._data = records if records is not None else b""
        self._read_committed = isolation_level == READ_COMMITTED
        self._check_crcs = check_crcs
        self._key_deserializer = key_deserializer
        self._value_deserializer = value_deserializer
        # (first offset, producer id), smallest first: consumed as batches pass
        self._aborted: list[tuple[int, int]] = []
        if self._read_committed and aborted_transactions:
            self._aborted = [(t.first_offset, t.producer_id) for t in aborted_transactions]
            heapq.heapify(self._aborted)
        self._aborting_producers: set[int] = set()
        self._records = self._walk()
        self._error: KafkaError | None = None
        self._batches_seen = 0
        self.exhausted = False

    # --- draining -------------------------------------------------------------------

    def take(self, max_records: int | None = None) -> list[ConsumerRecord[Any, Any]]:
        """Up to ``max_records`` records (all when ``None``), advancing the position.

        Raises a stored error (corrupt batch, record too large) when nothing is left to
        hand out before it; the position then stays at the failing batch.
        """
        if self._error is not None:
            raise self._error
        out: list[ConsumerRecord[Any, Any]] = []
        limit = max_records if max_records is not None else -1
        while limit < 0 or len(out) < limit:
            try:
                record = next(self._records)
            except StopIteration:
                self.exhausted = True
                break
            except (CorruptRecordException, UnsupportedCodecError) as exc:
                self._error = exc
                break
            out.append(self._to_consumer_record(record))
        if self._error is not None:
            self.exhausted = False  # the error must still reach the application
            if not out:
                raise self._error
        return out

    def drain_into(
        self, positions: SubscriptionState, max_records: int | None = None
    ) -> list[ConsumerRecord[Any, Any]]:
        """Take records and move ``positions`` (a ``SubscriptionState``) past them.

        Returns nothing and marks this fetch exhausted when the partition is no longer
        fetchable at the offset this fetch started from (it was seeked, reset, revoked or
        reassigned meanwhile): those records belong to a position nobody holds any more.
        A paused partition keeps its data for later.
        """
        if not positions.is_assigned(self.tp):
            self.exhausted = True
            return []
        state = positions.state(self.tp)
        if state.paused:
            return []
        position = state.position
        if (
            position is None
            or position.offset != self.next_fetch_offset
            or (state.pending_revocation)
        ):
            self.exhausted = True
            return []
        records = self.take(max_records)
        positions.advance(self.tp, FetchPosition(self.next_fetch_offset, self.last_epoch))
        return records

    # --- decoding -------------------------------------------------------------------

    def _to_consumer_record(self, item: tuple[AnyBatch, Record]) -> ConsumerRecord[Any, Any]:
        batch, record = item
        key, value = record.key, record.value
        # aiokafka calls the deserializers for null keys and values too
        if self._key_deserializer is not None:
            key = self._key_deserializer(key)
        if self._value_deserializer is not None:
            value = self._value_deserializer(value)
        return ConsumerRecord(
            topic=self.tp.topic,
            partition=self.tp.partition,
            offset=record.offset,
            timestamp=record.timestamp,
            timestamp_type=int(batch.timestamp_type),
            key=key,
            value=value,
            checksum=None,
            serialized_key_size=-1 if record.key is None else len(record.key),
            serialized_value_size=-1 if record.value is None else len(record.value),
            headers=record.headers,  # type: ignore[arg-type]
        )

    def _walk(self) -> Iterator[tuple[AnyBatch, Record]]:
        for batch in iter_batches(self._data, validate_crc=self._check_crcs):
            self._batches_seen += 1
            # transaction bookkeeping first, even for a batch before the position: its
            # ABORT marker may end an abort that later batches would otherwise inherit
            if self._read_committed and batch.producer_id >= 0:
                self._consume_aborted_up_to(batch.last_offset)
                if batch.is_control:
                    if _is_abort_marker(batch):
                        self._aborting_producers.discard(batch.producer_id)
                elif batch.is_transactional and batch.producer_id in self._aborting_producers:
                    self.next_fetch_offset = max(self.next_fetch_offset, batch.next_offset)
                    continue
            if batch.next_offset <= self.next_fetch_offset:
                continue  # wholly before the position
            if batch.is_control:
                self.next_fetch_offset = batch.next_offset
                continue
            epoch = batch.partition_leader_epoch
            for record in batch:
                if record.offset < self.next_fetch_offset:
                    continue
                self.next_fetch_offset = record.offset + 1
                self.last_epoch = epoch if epoch >= 0 else None
                yield batch, record
            # compaction may have removed the batch's last records: skip the gap too
            self.next_fetch_offset = max(self.next_fetch_offset, batch.next_offset)
        if self._batches_seen == 0 and len(self._data) > 0:
            # Data, but not one whole batch: the first batch is larger than the fetch size
            # (brokers before KIP-74 / Fetch v3 did this; later ones always send one whole
            # batch).  It can never be returned, so say so rather than fetch forever.
            self._error = RecordTooLargeError(
                f"there is a record batch at {self.tp.topic}-{self.tp.partition} offset "
                f"{self.fetch_offset} larger than the fetch size; raise "
                "max_partition_fetch_bytes"
            )

    def _consume_aborted_up_to(self, offset: int) -> None:
        aborted = self._aborted
        while aborted and aborted[0][0] <= offset:
            self._aborting_producers.add(heapq.heappop(aborted)[1])


def _is_abort_marker(batch: AnyBatch) -> bool:
    for record in batch:
        try:
            return ControlRecord.from_record(record).is_abort
        except CorruptRecordException:
            return False
    return False


# --- per-partition decisions -----------------------------------------------------------


@dataclass
class PartitionDecision:
    """What the fetcher does with one partition of a Fetch response.

    ``completed`` holds the data to hand out (no error); ``refresh_metadata`` asks for a
    metadata update; ``reset`` puts the partition into AWAIT_RESET with that strategy;
    ``error`` is raised to the application on its next poll of this partition;
    ``clear_preferred_replica`` sends the next fetch to the leader.
    """

    tp: TopicPartition
    completed: CompletedFetch | None = None
    refresh_metadata: bool = False
    reset: OffsetResetStrategy | None = None
    error: KafkaError | None = None
    clear_preferred_replica: bool = False
    preferred_read_replica: int | None = None
    notes: list[str] = field(default_factory=list)

    def apply_to(self, subscription: SubscriptionState, now_ms: int, replica_ttl_ms: int) -> None:
        """Record what the answer says in a ``SubscriptionState``: the partition's
        offsets, the read-replica hint (kept ``replica_ttl_ms``, Java uses the metadata
        max age), and a reset.  Errors and metadata refreshes stay with the fetcher."""
        tp = self.tp
        if not subscription.is_assigned(tp):
            return
        if self.completed is not None:
            subscription.update_fetch_offsets(
                tp,
                high_watermark=self.completed.high_watermark,
                last_stable_offset=self.completed.last_stable_offset,
                log_start_offset=self.completed.log_start_offset,
            )
        if self.preferred_read_replica is not None:
            subscription.set_preferred_read_replica(
                tp, self.preferred_read_replica, now_ms + replica_ttl_ms
            )
        if self.clear_preferred_replica:
            subscription.clear_preferred_read_replica(tp)
        if self.reset is not None:
            subscription.request_offset_reset(tp, self.reset)


def read_partition_response(
    tp: TopicPartition,
    data: PartitionData,
    *,
    fetch_offset: int,
    default_reset: OffsetResetStrategy,
    from_follower: bool = False,
    isolation_level: int = READ_UNCOMMITTED,
    check_crcs: bool = True,
    key_deserializer: Deserializer | None = None,
    value_deserializer: Deserializer | None = None,
) -> PartitionDecision:
    """Classify one partition of a Fetch response (Java's ``FetchCollector`` rules)."""
    decision = PartitionDecision(tp)
    code = data.error_code
    if code == 0:
        decision.completed = CompletedFetch(
            tp,
            fetch_offset,
            data.records,
            aborted_transactions=data.aborted_transactions,
            isolation_level=isolation_level,
            check_crcs=check_crcs,
            key_deserializer=key_deserializer,
            value_deserializer=value_deserializer,
            high_watermark=data.high_watermark,
            last_stable_offset=data.last_stable_offset,
            log_start_offset=data.log_start_offset,
        )
        if data.preferred_read_replica >= 0:
            decision.preferred_read_replica = data.preferred_read_replica
        return decision

    # any failure sends the next fetch to the leader, as Java and aiokafka do
    decision.clear_preferred_replica = True
    error_type = for_code(code)
    if error_type in _METADATA_ERRORS:
        decision.refresh_metadata = True
    elif error_type is OffsetOutOfRangeError:
        if from_follower:
            # a follower may lag the leader: ask the leader before resetting anything
            decision.notes.append("out of range on a follower; refetching from the leader")
        elif default_reset is not OffsetResetStrategy.NONE:
            decision.reset = default_reset
        else:
            decision.error = OffsetOutOfRangeError({tp: fetch_offset})
    elif error_type is TopicAuthorizationFailedError:
        decision.error = TopicAuthorizationFailedError(tp.topic)
    elif error_type is CorruptRecordException:
        # Kafka calls it retriable, but refetching the same bytes fails the same way
        decision.error = CorruptRecordException(
            f"the broker found corrupt records in {tp.topic}-{tp.partition} at {fetch_offset}"
        )
    elif error_type is UnknownLeaderEpochError or getattr(error_type, "kafka_retriable", False):
        decision.notes.append(f"retriable fetch error {error_type.__name__}")
    else:
        decision.error = error_type()
    return decision
