"""Fetched data → ``ConsumerRecord``s, and what a Fetch response means per partition.

:class:`CompletedFetch` holds one partition's data from one Fetch response and hands its
records out lazily, ``max_records`` at a time (Java's ``CompletedFetch``).  Batches are
walked one by one, each decoded whole when the first of its records is taken (by
:func:`decode_consumer_records`, the hot loop, or the general batch reader for anything it
declines); deserializers run only on records actually handed out.  The rules it keeps:

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
from itertools import repeat
from typing import Any

from streamclient._native import native_impl
from streamclient.consumer.offsets import FetchPosition, OffsetResetStrategy
from streamclient.consumer.subscription import FetchState, SubscriptionState
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
from streamclient.protocol.records import AnyBatch, ControlRecord, RecordBatch, iter_batches
from streamclient.protocol.records.batch import ATTR_TIMESTAMP_TYPE, EMPTY_HEADERS, decode_headers
from streamclient.protocol.records.varint import decode_uvarint, zigzag_tables
from streamclient.structs import ConsumerRecord, TopicPartition

__all__ = [
    "READ_COMMITTED",
    "READ_UNCOMMITTED",
    "CompletedFetch",
    "PartitionDecision",
    "decode_consumer_records",
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

    Batches are decoded one at a time, whole: :meth:`take` hands out slices of the
    current batch's ``ConsumerRecord`` list (no copy when it takes the whole list) and
    decodes the next batch only when that list runs out.
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
        self._batches = self._walk()
        # the current batch: its records not yet handed out start at _pending_index
        self._pending: list[ConsumerRecord[Any, Any]] = []
        self._pending_index = 0
        self._pending_epoch: int | None = None
        self._pending_next_offset = fetch_offset
        # a malformed record in the current batch: raised once the records before it are out
        self._pending_error: KafkaError | None = None
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
        wanted = -1 if max_records is None else max_records
        while wanted != 0:
            pending = self._pending
            start = self._pending_index
            available = len(pending) - start
            if available <= 0:
                if self._pending_error is not None:
                    self._error, self._pending_error = self._pending_error, None
                    break
                if not self._next_batch():
                    break
                continue
            count = available if wanted < 0 or wanted > available else wanted
            if count == len(pending) and not out:
                chunk = pending  # the whole batch: hand the list itself out
            else:
                chunk = pending[start:start + count]
            if self._key_deserializer is not None or self._value_deserializer is not None:
                self._deserialize(chunk)
            if chunk is pending:
                out = chunk
            else:
                out += chunk
            self.next_fetch_offset = chunk[-1].offset + 1
            self.last_epoch = self._pending_epoch
            if count == available:
                self._pending = []
                self._pending_index = 0
                if self._pending_error is None:
                    # compaction may have removed the batch's last records: skip the gap too
                    self.next_fetch_offset = max(self.next_fetch_offset, self._pending_next_offset)
            else:
                self._pending_index = start + count
            if wanted > 0:
                wanted -= count
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
        reassigned meanwhile, or awaits validation after a leader change): those records
        belong to a position nobody holds any more.
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
            or state.pending_revocation
            # the leader changed since this was fetched (KIP-320): what follows the
            # position may be gone from the new leader's log; refetched once validated
            or state.fetch_state is not FetchState.FETCHING
        ):
            self.exhausted = True
            return []
        records = self.take(max_records)
        positions.advance(self.tp, FetchPosition(self.next_fetch_offset, self.last_epoch))
        return records

    # --- decoding -------------------------------------------------------------------

    def _deserialize(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        key_deserializer = self._key_deserializer
        value_deserializer = self._value_deserializer
        try:
            # aiokafka calls the deserializers for null keys and values too
            for record in records:
                if key_deserializer is not None:
                    record.key = key_deserializer(record.key)
                if value_deserializer is not None:
                    record.value = value_deserializer(record.value)
        except BaseException:
            # Some of these records now hold deserialized values and none was handed
            # out: this fetch cannot be resumed.  Nothing may follow it either, so it
            # stops here; drain_into finds the position unmoved and the partition is
            # fetched again from there.
            self._pending = []
            self._pending_index = 0
            self._batches = iter(())
            self.next_fetch_offset = -1
            raise

    def _next_batch(self) -> bool:
        """Decode the next batch with records to hand out; False when there is none (the
        end of the data, or an error now stored in ``_error``)."""
        try:
            batch = next(self._batches)
        except StopIteration:
            self.exhausted = True
            return False
        except (CorruptRecordException, UnsupportedCodecError, RecordTooLargeError) as exc:
            self._error = exc
            return False
        epoch = batch.partition_leader_epoch
        self._pending_epoch = epoch if epoch >= 0 else None
        self._pending_next_offset = batch.next_offset
        self._pending_index = 0
        timestamp_type = int(batch.timestamp_type)  # once per batch: an enum is slow
        records = None
        if type(batch) is RecordBatch:
            try:
                section = batch.records_data()
            except (CorruptRecordException, UnsupportedCodecError) as exc:
                self._pending = []
                self._pending_error = exc
                return True
            records = decode_consumer_records(
                section, batch.record_count, batch.base_offset, batch.first_timestamp,
                self.tp.topic, self.tp.partition, timestamp_type)
            if records is not None and batch.attributes & ATTR_TIMESTAMP_TYPE:
                log_append_time = batch.max_timestamp
                for record in records:
                    record.timestamp = log_append_time
        if records is None:
            # legacy messages, or a malformed section: the general reader raises the
            # precise error after the records before it
            records = self._decode_general(batch, timestamp_type)
        elif records and records[0].offset < self.next_fetch_offset:
            # the batch starts before the position (the decoder ensured rising offsets)
            position = self.next_fetch_offset
            records = [r for r in records if r.offset >= position]
        self._pending = records
        return True

    def _decode_general(
        self, batch: AnyBatch, timestamp_type: int
    ) -> list[ConsumerRecord[Any, Any]]:
        topic, partition = self.tp
        out: list[ConsumerRecord[Any, Any]] = []
        position = self.next_fetch_offset
        try:
            for r in batch:
                if r.offset < position:
                    continue
                position = r.offset + 1
                out.append(ConsumerRecord(
                    topic, partition, r.offset, r.timestamp, timestamp_type, r.key, r.value,
                    None,  # magic 2 batches have one CRC per batch, none per record
                    -1 if r.key is None else len(r.key),
                    -1 if r.value is None else len(r.value),
                    r.headers))
        except (CorruptRecordException, UnsupportedCodecError) as exc:
            self._pending_error = exc
        return out

    def _walk(self) -> Iterator[AnyBatch]:
        """The batches that may hold records to hand out, keeping the position right
        across the ones that cannot (aborted, control, wholly before the position)."""
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
            yield batch
        if self._batches_seen == 0 and len(self._data) > 0:
            # Data, but not one whole batch: the first batch is larger than the fetch size
            # (brokers before KIP-74 / Fetch v3 did this; later ones always send one whole
            # batch).  It can never be returned, so say so rather than fetch forever.
            raise RecordTooLargeError(
                f"there is a record batch at {self.tp.topic}-{self.tp.partition} offset "
                f"{self.fetch_offset} larger than the fetch size; raise "
                "max_partition_fetch_bytes"
            )

    def _consume_aborted_up_to(self, offset: int) -> None:
        aborted = self._aborted
        while aborted and aborted[0][0] <= offset:
            self._aborting_producers.add(heapq.heappop(aborted)[1])


# The value of every one- and two-byte zigzag varint (every length, delta and size of an
# ordinary record): two list subscripts instead of a mask, shift and sign per field.
_ZIGZAG_ONE, _ZIGZAG_TWO = zigzag_tables()


def _decode_consumer_records(
    data: bytes,
    count: int,
    base_offset: int,
    base_timestamp: int,
    topic: str,
    partition: int,
    timestamp_type: int,
    record_cls: type[ConsumerRecord[Any, Any]] = ConsumerRecord,
    read_headers: Callable[[bytes, int, int], tuple[Any, int]] = decode_headers,
    empty: tuple[tuple[str, bytes | None], ...] = EMPTY_HEADERS,
) -> list[ConsumerRecord[Any, Any]] | None:
    """``ConsumerRecord``s straight from an uncompressed (or decompressed) records section.

    The consumer's hot loop (CPU per record is its main cost): one pass that builds the
    records with no intermediate tuple, no generator and no call per record.  It returns
    ``None`` instead of raising when the section is anything but well formed (overruns,
    a varint longer than 10 bytes, offsets that do not strictly increase, bytes left
    over): the caller then decodes the batch with the general reader, which hands out the
    records before the fault and raises the precise error, exactly as before.

    ``_cdecode.c`` is the same function in C (:data:`decode_consumer_records` is that one
    when the extension was built); it declines wherever this one does.
    """
    # ConsumerRecord is a slots dataclass: object.__new__ plus one slot store per field
    # costs ~55% of a call to its generated __init__ (a Python frame with 11 arguments).
    new = object.__new__
    read_uvarint = decode_uvarint
    one = _ZIGZAG_ONE
    two = _ZIGZAG_TWO
    if count > len(data) // 7:
        return None  # a record takes 7 bytes at least: the count is corrupt
    # Made in one C loop, then filled in place: cheaper than a call per record here.
    # If the batch turns out malformed they are dropped unfinished, never handed out.
    out: list[Any] = list(map(new, repeat(record_cls, count)))
    pos = 0
    last_delta = -1
    last_stamp = -1  # the one-byte timestamp delta `timestamp` was made from
    timestamp = base_timestamp
    # Each record is sliced out whole first (one copy of ~100 bytes): inside it every
    # index is a small int, which Python never allocates, where ``pos + n`` in the
    # section would allocate an int per field.  Varints of one or two bytes (all of an
    # ordinary record's) go through the tables; longer ones call decode_uvarint, which
    # raises ValueError past 10 bytes.  A wrong length (negative, zero, too short or
    # long) gives a slice that its fields do not end exactly at; one past the section
    # leaves pos beyond its end, which the next record or the final check catches.  Short
    # data raises IndexError (free in 3.11 until raised).
    try:
        for n in range(count):
            b = data[pos]
            if b < 0x80:
                length = one[b]
                start = pos + 1
            else:
                c = data[pos + 1]
                if c < 0x80:
                    length = two[b][c]
                    start = pos + 2
                else:
                    length, start = read_uvarint(data, pos)
                    length = (length >> 1) ^ -(length & 1)
            pos = start + length
            record = data[start:pos]
            # record[0] holds the record's attributes, unused by Kafka so far.  Then the
            # timestamp delta and the offset delta; a one-byte timestamp delta (the usual
            # case) puts the offset delta at a fixed index
            b = record[1]
            if b < 0x80:
                if b != last_stamp:
                    # records of the same millisecond (the usual run) share one int
                    timestamp = base_timestamp + one[b]
                    last_stamp = b
                b = record[2]
                if b < 0x80:
                    b = one[b]
                    i = 3
                else:
                    c = record[3]
                    if c < 0x80:
                        b = two[b][c]
                        i = 4
                    else:
                        b, i = read_uvarint(record, 2)
                        b = (b >> 1) ^ -(b & 1)
            else:
                c = record[2]
                if c < 0x80:
                    timestamp = base_timestamp + two[b][c]
                    last_stamp = -1
                    i = 3
                else:
                    b, i = read_uvarint(record, 1)
                    timestamp = base_timestamp + ((b >> 1) ^ -(b & 1))
                    last_stamp = -1
                b = record[i]
                if b < 0x80:
                    b = one[b]
                    i += 1
                else:
                    c = record[i + 1]
                    if c < 0x80:
                        b = two[b][c]
                        i += 2
                    else:
                        b, i = read_uvarint(record, i)
                        b = (b >> 1) ^ -(b & 1)
            # the offset delta: the position rules (records below it are skipped) want
            # it rising; the general reader copes with anything else
            if b <= last_delta:
                return None
            last_delta = b
            if record[i] == 1:  # a null key (length -1), the usual case
                key = None
                key_size = -1
                i += 1
            else:
                key_size, i = read_uvarint(record, i)
                key_size = (key_size >> 1) ^ -(key_size & 1)
                if key_size < 0:
                    key = None
                    key_size = -1
                else:
                    key = record[i:i + key_size]
                    i += key_size
            b = record[i]
            if b < 0x80:
                value_size = one[b]
                i += 1
            else:
                c = record[i + 1]
                if c < 0x80:
                    value_size = two[b][c]
                    i += 2
                else:
                    value_size, i = read_uvarint(record, i)
                    value_size = (value_size >> 1) ^ -(value_size & 1)
            if value_size < 0:
                value = None
                value_size = -1
            else:
                value = record[i:i + value_size]
                i += value_size
            if record[i]:
                headers, i = read_headers(record, i, length)
            else:
                headers = empty
                i += 1
            # also catches a key or value cut short by the end of the record (a record
            # cut short by the end of the section leaves pos past it, checked below)
            if i != length:
                return None
            consumer_record = out[n]
            consumer_record.topic = topic
            consumer_record.partition = partition
            consumer_record.offset = base_offset + last_delta
            consumer_record.timestamp = timestamp
            consumer_record.timestamp_type = timestamp_type
            consumer_record.key = key
            consumer_record.value = value
            consumer_record.checksum = None  # magic 2: one CRC per batch, none per record
            consumer_record.serialized_key_size = key_size
            consumer_record.serialized_value_size = value_size
            consumer_record.headers = headers
    except (IndexError, ValueError, CorruptRecordException):
        return None
    if pos != len(data):
        return None
    return out


decode_consumer_records: Callable[..., list[ConsumerRecord[Any, Any]] | None] = native_impl(
    "streamclient.consumer._cdecode", "decode_consumer_records", _decode_consumer_records)


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
