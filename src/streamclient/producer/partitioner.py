"""Choosing a partition for a record: the partitioner interface and the built-in ones.

Sans-IO: nothing here sleeps, reads a clock or touches a socket.  Randomness comes from
an injectable ``RandomSource`` (a callable returning a non-negative int below 2**31, like
Java's ``Utils.toPositive(ThreadLocalRandom.nextInt())``), so tests are deterministic.

How the producer uses a :class:`Partitioner` (mirroring ``KafkaProducer.partition`` and
``RecordAccumulator.append`` in the Java client):

1. A record with an explicit partition skips the partitioner.
2. Otherwise ``partitioner.partition(...)`` runs.  It returns a partition id, or
   :data:`UNKNOWN_PARTITION` to leave the choice to the accumulator, which then uses the
   topic's :class:`BuiltInPartitioner` (KIP-794 uniform sticky partitioning).
3. If appending to the chosen partition would start a new batch, the accumulator calls
   ``partitioner.on_new_batch(...)`` and asks ``partition()`` again (KIP-480's hook; this
   is what lets :class:`StickyPartitioner` move on once a batch is complete).

``all_partitions`` is every partition id of the topic (in metadata order, normally
``0..n-1``); ``available_partitions`` those whose leader is known.  Hash partitioners
index ``all_partitions`` with the hash, which equals Kafka's ``hash % n`` when the list is
``0..n-1``.

aiokafka's ``partitioner=`` argument takes a callable ``(key_bytes, all_partitions,
available_partitions) -> int``; :func:`as_partitioner` wraps one in
:class:`CallablePartitioner`.
"""

from __future__ import annotations

import abc
import bisect
import random as _random
import struct
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import mmh3

from streamclient.errors import IllegalArgumentError

__all__ = [
    "LIBRDKAFKA_PARTITIONERS",
    "UNKNOWN_PARTITION",
    "BuiltInPartitioner",
    "CallablePartitioner",
    "ConsistentPartitioner",
    "ConsistentRandomPartitioner",
    "DefaultPartitioner",
    "Fnv1aPartitioner",
    "Fnv1aRandomPartitioner",
    "Murmur2Partitioner",
    "Murmur2RandomPartitioner",
    "Murmur3Partitioner",
    "NodeLatencyStats",
    "PartitionLoadStats",
    "Partitioner",
    "RandomPartitioner",
    "RandomSource",
    "RoundRobinPartitioner",
    "StickyPartitionInfo",
    "StickyPartitioner",
    "as_partitioner",
    "check_partition",
    "default_random_source",
    "fnv1a",
    "librdkafka_partitioner",
    "murmur2",
    "to_positive",
]

#: Returned by :meth:`Partitioner.partition` to let the accumulator's sticky logic choose.
UNKNOWN_PARTITION = -1

RandomSource = Callable[[], int]
"""A callable returning a uniformly random int in ``[0, 2**31)``."""

KeyBytes = bytes | bytearray | memoryview


def default_random_source(rng: _random.Random | None = None) -> RandomSource:
    rng = rng if rng is not None else _random.Random()
    return lambda: rng.getrandbits(31)


# --- hash functions ----------------------------------------------------------------------

_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF
_MURMUR2_SEED = 0x9747B28C
_word_unpackers: dict[int, Callable[[KeyBytes], tuple[int, ...]]] = {}


def _words(count: int) -> Callable[[KeyBytes], tuple[int, ...]]:
    unpack = _word_unpackers.get(count)
    if unpack is None:
        unpack = _word_unpackers[count] = struct.Struct(f"<{count}I").unpack_from
    return unpack


def murmur2(data: KeyBytes) -> int:
    """Kafka's MurmurHash2 (seed ``0x9747b28c``) of ``data`` as an unsigned 32-bit int.

    Equal to Java's ``Utils.murmur2`` modulo 2**32 (Java returns it signed) and to
    aiokafka's ``murmur2``.  The partition of a key is ``to_positive(murmur2(key)) % n``.
    """
    length = len(data)
    h = _MURMUR2_SEED ^ length
    nwords = length >> 2
    if nwords:
        # Python ints do not wrap, so a product is masked before its bits are shifted
        # down; xor and a final mask commute, which saves a few masks per word.
        for k in _words(nwords)(data):
            k = k * _M & _MASK32
            h = (h * _M ^ (k ^ k >> 24) * _M) & _MASK32
    if length & 3:
        h = (h ^ int.from_bytes(data[nwords << 2 :], "little")) * _M & _MASK32
    h ^= h >> 13
    h = h * _M & _MASK32
    return h ^ h >> 15


def to_positive(n: int) -> int:
    """Java's ``Utils.toPositive``: clear the sign bit (not ``abs``, which fails for MIN_VALUE)."""
    return n & 0x7FFFFFFF


def fnv1a(data: KeyBytes) -> int:
    """librdkafka's FNV-1a: the 32-bit hash read as signed, then its absolute value.

    librdkafka takes the absolute value to match Sarama's default hash partitioner;
    ``-2**31`` stays ``2**31``.  The partition is ``fnv1a(key) % n``.
    """
    h = 0x811C9DC5
    for byte in bytes(data):
        h = (h ^ byte) * 0x01000193 & _MASK32
    if h & 0x80000000:
        h = -(h - 0x100000000) & _MASK32
    return h


# --- the interface -----------------------------------------------------------------------


class Partitioner(abc.ABC):
    """Chooses the partition of a record that names none."""

    @abc.abstractmethod
    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        """Return a partition id from ``all_partitions``, or :data:`UNKNOWN_PARTITION`."""

    def on_new_batch(
        self,
        topic: str,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
        prev_partition: int,
    ) -> None:
        """The record just placed on ``prev_partition`` would open a new batch there.

        ``partition()`` is called again for that record right after this returns.
        """
        return None

    def close(self) -> None:
        """Release resources when the producer closes."""
        return None


class AiokafkaPartitionerCallable(Protocol):
    def __call__(
        self, key: bytes | None, all_partitions: list[int], available: list[int]
    ) -> int: ...


class CallablePartitioner(Partitioner):
    """Adapts aiokafka's ``partitioner(key_bytes, all_partitions, available) -> int``."""

    def __init__(self, func: AiokafkaPartitionerCallable) -> None:
        if not callable(func):
            raise IllegalArgumentError(f"partitioner must be callable, got {func!r}")
        self.func = func

    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        result = self.func(key_bytes, list(all_partitions), list(available_partitions))
        if not isinstance(result, int) or isinstance(result, bool):
            raise IllegalArgumentError(
                f"partitioner {self.func!r} returned {result!r} for topic {topic!r}; "
                "expected a partition id (int)"
            )
        return result

    def __repr__(self) -> str:
        return f"CallablePartitioner({self.func!r})"


def as_partitioner(
    obj: Partitioner | type[Partitioner] | AiokafkaPartitionerCallable,
) -> Partitioner:
    """Turn what a user passes as ``partitioner=`` into a :class:`Partitioner`.

    A :class:`Partitioner` instance is used as is, a :class:`Partitioner` subclass is
    instantiated with no arguments, and any other callable is taken as aiokafka's
    ``(key_bytes, all_partitions, available_partitions) -> int``.
    """
    if isinstance(obj, Partitioner):
        return obj
    if isinstance(obj, type) and issubclass(obj, Partitioner):
        return obj()
    if callable(obj):
        return CallablePartitioner(obj)
    raise IllegalArgumentError(
        f"partitioner must be a Partitioner or a callable "
        f"(key_bytes, all_partitions, available_partitions) -> int, got {obj!r}"
    )


def check_partition(topic: str, partition: int, all_partitions: Sequence[int]) -> int:
    """Validate a partitioner's answer; :data:`UNKNOWN_PARTITION` passes through."""
    if partition == UNKNOWN_PARTITION or partition in all_partitions:
        return partition
    raise IllegalArgumentError(
        f"partitioner chose partition {partition} of topic {topic!r}, which has "
        f"partitions {list(all_partitions)}"
    )


def _any_partition(
    rand: RandomSource, all_partitions: Sequence[int], available_partitions: Sequence[int]
) -> int:
    pool = available_partitions if available_partitions else all_partitions
    if not pool:
        raise IllegalArgumentError("the topic has no partitions")
    return pool[rand() % len(pool)]


def _hashed(index: int, all_partitions: Sequence[int]) -> int:
    if not all_partitions:
        raise IllegalArgumentError("the topic has no partitions")
    return all_partitions[index % len(all_partitions)]


# --- Java's partitioners -----------------------------------------------------------------


class DefaultPartitioner(Partitioner):
    """Java's default (Kafka 3.3+, KIP-794): murmur2 for keyed records, sticky otherwise.

    A key (even ``b""``) goes to ``to_positive(murmur2(key)) % n``; a null key returns
    :data:`UNKNOWN_PARTITION` so the accumulator's :class:`BuiltInPartitioner` picks.

    Called the aiokafka way, ``DefaultPartitioner()(key, all, available)``, a null key
    gets a random available partition instead, as in aiokafka (there is no accumulator
    to defer to on that path).
    """

    def __init__(self, *, random_source: RandomSource | None = None) -> None:
        self._rand = random_source if random_source is not None else default_random_source()

    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        if key_bytes is None:
            return UNKNOWN_PARTITION
        return _hashed(murmur2(key_bytes) & 0x7FFFFFFF, all_partitions)

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return _any_partition(self._rand, all_partitions, available)
        return _hashed(murmur2(key) & 0x7FFFFFFF, all_partitions)


class StickyPartitioner(Partitioner):
    """KIP-480's sticky partitioner (Java's pre-3.3 default).

    Keyed records are hashed with murmur2 (unless ``ignore_keys``, which makes it Java's
    ``UniformStickyPartitioner``).  Records without a key stick to one partition per
    topic until :meth:`on_new_batch` reports that partition's batch is complete; then a
    different available partition is drawn at random (Java's ``StickyPartitionCache``).
    """

    def __init__(
        self, *, ignore_keys: bool = False, random_source: RandomSource | None = None
    ) -> None:
        self.ignore_keys = ignore_keys
        self._rand = random_source if random_source is not None else default_random_source()
        self._sticky: dict[str, int] = {}

    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        if key_bytes is not None and not self.ignore_keys:
            return _hashed(murmur2(key_bytes) & 0x7FFFFFFF, all_partitions)
        current = self._sticky.get(topic)
        if current is None:
            return self._next(topic, all_partitions, available_partitions, UNKNOWN_PARTITION)
        return current

    def on_new_batch(
        self,
        topic: str,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
        prev_partition: int,
    ) -> None:
        self._next(topic, all_partitions, available_partitions, prev_partition)

    def _next(
        self,
        topic: str,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
        prev_partition: int,
    ) -> int:
        old = self._sticky.get(topic)
        # Only the partition that is still sticky may be replaced: a late report about
        # an older partition must not move the records again.
        if old is not None and old != prev_partition:
            return old
        if not available_partitions:
            new = _hashed(self._rand(), all_partitions)
        elif len(available_partitions) == 1:
            new = available_partitions[0]
        else:
            others = [p for p in available_partitions if p != old]
            new = others[self._rand() % len(others)]
        self._sticky[topic] = new
        return new


class RoundRobinPartitioner(Partitioner):
    """Java's ``RoundRobinPartitioner``: each record to the next available partition.

    Keys are ignored.  The counter is per topic.  When :meth:`on_new_batch` reports that
    the record sent to ``prev_partition`` opened a new batch, the next call returns
    ``prev_partition`` again, so the second ``partition()`` call for the same record
    does not skip a partition (KAFKA-9965).
    """

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}
        self._repeat: dict[str, deque[int]] = {}

    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        pending = self._repeat.get(topic)
        if pending:
            return pending.popleft()
        counter = self._counters.get(topic, 0)
        self._counters[topic] = (counter + 1) & 0x7FFFFFFF
        pool = available_partitions if available_partitions else all_partitions
        if not pool:
            raise IllegalArgumentError(f"topic {topic!r} has no partitions")
        return pool[counter % len(pool)]

    def on_new_batch(
        self,
        topic: str,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
        prev_partition: int,
    ) -> None:
        self._repeat.setdefault(topic, deque()).append(prev_partition)


class Murmur3Partitioner(Partitioner):
    """Hash keys with 32-bit MurmurHash3 (x86, ``seed``) from the ``mmh3`` package.

    The partition is ``(hash & 0x7fffffff) % n``; a null key returns
    :data:`UNKNOWN_PARTITION`.  Not what any other Kafka client does by default: use it
    to match a producer that partitions with murmur3 on its own.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        if key_bytes is None:
            return UNKNOWN_PARTITION
        h = mmh3.hash(bytes(key_bytes), self.seed, signed=False)
        return _hashed(h & 0x7FFFFFFF, all_partitions)


# --- librdkafka's partitioners (confluent-kafka's ``partitioner`` setting) ---------------


class _LibrdkafkaPartitioner(Partitioner):
    """A librdkafka partitioner: a hash of the key modulo the partition count.

    Where librdkafka picks at random (the ``*_random`` variants with no key, or an empty
    key for ``consistent_random``) it actually sticks to one random partition for
    ``sticky.partitioning.linger.ms``; with ``sticky_null_keys`` (the default) we return
    :data:`UNKNOWN_PARTITION` so that our accumulator's sticky logic does the same job.
    With ``sticky_null_keys=False`` each such record gets a random available partition.
    """

    name: str = ""
    # which keys go to the random path instead of the hash
    _random_for_null = False
    _random_for_empty = False

    def __init__(
        self, *, sticky_null_keys: bool = True, random_source: RandomSource | None = None
    ) -> None:
        self.sticky_null_keys = sticky_null_keys
        self._rand = random_source if random_source is not None else default_random_source()

    @staticmethod
    def _hash(key: bytes) -> int:
        raise NotImplementedError

    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        if (key_bytes is None and self._random_for_null) or (
            key_bytes is not None and not key_bytes and self._random_for_empty
        ):
            if self.sticky_null_keys:
                return UNKNOWN_PARTITION
            return _any_partition(self._rand, all_partitions, available_partitions)
        # librdkafka hashes a null key as zero bytes
        return _hashed(self._hash(key_bytes or b""), all_partitions)


class ConsistentPartitioner(_LibrdkafkaPartitioner):
    """librdkafka ``consistent``: CRC32 of the key; null and empty keys all go to one
    partition (CRC32 of nothing is 0, so partition index 0)."""

    name = "consistent"

    @staticmethod
    def _hash(key: bytes) -> int:
        return zlib.crc32(key)


class ConsistentRandomPartitioner(ConsistentPartitioner):
    """librdkafka ``consistent_random`` (its default): CRC32, but null and empty keys
    are spread at random."""

    name = "consistent_random"
    _random_for_null = True
    _random_for_empty = True


class Murmur2Partitioner(_LibrdkafkaPartitioner):
    """librdkafka ``murmur2``: Java's murmur2 hash; a null key is hashed like ``b""``
    (Java instead spreads null keys, see :class:`Murmur2RandomPartitioner`)."""

    name = "murmur2"

    @staticmethod
    def _hash(key: bytes) -> int:
        return murmur2(key) & 0x7FFFFFFF


class Murmur2RandomPartitioner(Murmur2Partitioner):
    """librdkafka ``murmur2_random``: Java-compatible murmur2; null keys spread at random
    (an empty key is hashed)."""

    name = "murmur2_random"
    _random_for_null = True


class Fnv1aPartitioner(_LibrdkafkaPartitioner):
    """librdkafka ``fnv1a`` (Sarama-compatible FNV-1a); a null key is hashed like ``b""``."""

    name = "fnv1a"

    @staticmethod
    def _hash(key: bytes) -> int:
        return fnv1a(key)


class Fnv1aRandomPartitioner(Fnv1aPartitioner):
    """librdkafka ``fnv1a_random``: FNV-1a; null keys spread at random (an empty key is
    hashed)."""

    name = "fnv1a_random"
    _random_for_null = True


class RandomPartitioner(_LibrdkafkaPartitioner):
    """librdkafka ``random``: every keyed record to a random available partition; null
    keys go to the sticky path like the other ``*_random`` partitioners."""

    name = "random"
    _random_for_null = True

    def partition(
        self,
        topic: str,
        key_bytes: bytes | None,
        value_bytes: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        if key_bytes is None and self.sticky_null_keys:
            return UNKNOWN_PARTITION
        return _any_partition(self._rand, all_partitions, available_partitions)


LIBRDKAFKA_PARTITIONERS: dict[str, type[_LibrdkafkaPartitioner]] = {
    cls.name: cls
    for cls in (
        RandomPartitioner,
        ConsistentPartitioner,
        ConsistentRandomPartitioner,
        Murmur2Partitioner,
        Murmur2RandomPartitioner,
        Fnv1aPartitioner,
        Fnv1aRandomPartitioner,
    )
}


def librdkafka_partitioner(
    name: str, *, sticky_null_keys: bool = True, random_source: RandomSource | None = None
) -> Partitioner:
    """The partitioner librdkafka's ``partitioner=<name>`` setting selects."""
    try:
        cls = LIBRDKAFKA_PARTITIONERS[name]
    except KeyError:
        raise IllegalArgumentError(
            f"unknown librdkafka partitioner {name!r}; expected one of "
            f"{sorted(LIBRDKAFKA_PARTITIONERS)}"
        ) from None
    return cls(sticky_null_keys=sticky_null_keys, random_source=random_source)


# --- KIP-794: the accumulator's uniform sticky partitioning ------------------------------


class StickyPartitionInfo:
    """The partition records without a partition currently stick to, and the bytes
    produced to it since it was chosen."""

    __slots__ = ("index", "produced_bytes")

    def __init__(self, index: int) -> None:
        self.index = index
        self.produced_bytes = 0

    def __repr__(self) -> str:
        return f"StickyPartitionInfo(index={self.index}, produced_bytes={self.produced_bytes})"


class PartitionLoadStats:
    """A cumulative frequency table over the partitions that may be chosen.

    ``cumulative_frequency_table[i]`` is the sum of the weights of ``partition_ids[0..i]``,
    where a partition's weight is ``max(queue sizes) + 1 - its queue size``: the shorter
    its queue of batches, the likelier a partition is chosen.
    """

    __slots__ = ("cumulative_frequency_table", "partition_ids")

    def __init__(self, cumulative_frequency_table: list[int], partition_ids: list[int]) -> None:
        self.cumulative_frequency_table = cumulative_frequency_table
        self.partition_ids = partition_ids

    def __repr__(self) -> str:
        return (
            f"PartitionLoadStats(cumulative_frequency_table={self.cumulative_frequency_table},"
            f" partition_ids={self.partition_ids})"
        )


class BuiltInPartitioner:
    """One topic's KIP-794 uniform sticky partitioner (Java's ``BuiltInPartitioner``).

    The accumulator owns one per topic and drives it (the Java client does the same
    under its deque lock):

    * :meth:`peek_current_partition_info` before appending a record with no partition;
    * :meth:`update_partition_info` after the append, with the bytes the batch grew by
      and ``enable_switch`` = "every batch queued for that partition is full" (so a
      switch never strands a half-empty batch behind a long linger, KAFKA-14156);
    * :meth:`update_partition_load_stats` from each readiness pass, with the queue
      length (number of batches) of every partition whose leader is not excluded by
      ``partitioner.availability.timeout.ms`` (see :class:`NodeLatencyStats`), when
      adaptive partitioning is enabled and every partition has a queue.

    After ``sticky_batch_size`` bytes, and once the batches are full (or in any case
    after twice that), the next partition is drawn: uniformly from the available
    partitions while queues are even, else weighted towards short queues.
    """

    def __init__(
        self, topic: str, sticky_batch_size: int, *, random_source: RandomSource | None = None
    ) -> None:
        if sticky_batch_size < 1:
            raise IllegalArgumentError(
                f"sticky batch size must be at least 1, got {sticky_batch_size}"
            )
        self.topic = topic
        self.sticky_batch_size = sticky_batch_size
        self._rand = random_source if random_source is not None else default_random_source()
        self._info: StickyPartitionInfo | None = None
        self._stats: PartitionLoadStats | None = None

    @property
    def load_stats(self) -> PartitionLoadStats | None:
        return self._stats

    @property
    def current_partition_info(self) -> StickyPartitionInfo | None:
        """The sticky partition, or ``None`` before the first is chosen (no draw)."""
        return self._info

    def peek_current_partition_info(
        self, all_partitions: Sequence[int], available_partitions: Sequence[int]
    ) -> StickyPartitionInfo:
        """The sticky partition, choosing the first one on first use."""
        if self._info is None:
            self._info = StickyPartitionInfo(
                self.next_partition(all_partitions, available_partitions)
            )
        return self._info

    def is_partition_changed(self, info: StickyPartitionInfo | None) -> bool:
        """Whether ``info`` (from an earlier peek) is no longer the sticky partition."""
        return info is not None and info is not self._info

    def update_partition_info(
        self,
        info: StickyPartitionInfo | None,
        appended_bytes: int,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
        enable_switch: bool,
    ) -> None:
        """Count ``appended_bytes`` against the sticky partition and switch if due.

        Called with ``appended_bytes=0`` and ``enable_switch=True`` once a deferred
        switch becomes possible because the partition's batches filled up.
        """
        if info is None or info is not self._info:
            # a record that started on a partition we already left: nothing to count
            return
        info.produced_bytes += appended_bytes
        produced = info.produced_bytes
        if (produced >= self.sticky_batch_size and enable_switch) or (
            produced >= 2 * self.sticky_batch_size
        ):
            self._info = StickyPartitionInfo(
                self.next_partition(all_partitions, available_partitions)
            )

    def next_partition(
        self, all_partitions: Sequence[int], available_partitions: Sequence[int]
    ) -> int:
        """Draw a partition: weighted by the load stats if there are any, else uniform."""
        r = self._rand()
        stats = self._stats
        if stats is None:
            if available_partitions:
                return available_partitions[r % len(available_partitions)]
            return _hashed(r, all_partitions)
        cft = stats.cumulative_frequency_table
        weighted = r % cft[-1]
        # the first entry strictly greater than the draw owns it
        return stats.partition_ids[bisect.bisect_right(cft, weighted)]

    def update_partition_load_stats(
        self, queue_sizes: Sequence[int], partition_ids: Sequence[int], num_partitions: int
    ) -> None:
        """Rebuild the load stats from queue lengths.

        ``queue_sizes[i]`` is the number of batches queued for ``partition_ids[i]``,
        listing only partitions that may be chosen; ``num_partitions`` is how many the
        topic has in all (more than listed when some leaders were excluded).  Stats are
        dropped (uniform choice) for a single-partition topic, when nothing is listed,
        and when every partition is listed with the same queue length.
        """
        if len(queue_sizes) != len(partition_ids):
            raise IllegalArgumentError(
                f"{len(queue_sizes)} queue sizes for {len(partition_ids)} partitions"
            )
        length = len(queue_sizes)
        if length < 1 or num_partitions < 2:
            self._stats = None
            return
        largest = max(queue_sizes)
        if length == num_partitions and min(queue_sizes) == largest:
            self._stats = None
            return
        max_plus_1 = largest + 1
        cft: list[int] = []
        total = 0
        for size in queue_sizes:
            total += max_plus_1 - size
            cft.append(total)
        self._stats = PartitionLoadStats(cft, list(partition_ids))

    @staticmethod
    def partition_for_key(serialized_key: KeyBytes, num_partitions: int) -> int:
        """Java's keyed choice: ``to_positive(murmur2(key)) % num_partitions``."""
        if num_partitions < 1:
            raise IllegalArgumentError("the topic has no partitions")
        return (murmur2(serialized_key) & 0x7FFFFFFF) % num_partitions


class NodeLatencyStats:
    """``partitioner.availability.timeout.ms`` bookkeeping (Java's ``NodeLatencyStats``).

    Each readiness pass reports, per leader node with data queued, whether the node could
    be drained (connected and able to take a request).  A node that has had data ready
    but could not be drained for longer than the timeout is excluded from the partitions
    :class:`BuiltInPartitioner` may choose.  A timeout of 0 disables exclusion.
    """

    def __init__(self, availability_timeout_ms: int) -> None:
        if availability_timeout_ms < 0:
            raise IllegalArgumentError(
                f"partitioner availability timeout must be >= 0, got {availability_timeout_ms}"
            )
        self.availability_timeout_ms = availability_timeout_ms
        # node id -> [ready_time_ms, drain_time_ms]
        self._times: dict[int, list[int]] = {}

    def update(self, node_id: int, now_ms: int, can_drain: bool) -> None:
        times = self._times.get(node_id)
        if times is None:
            self._times[node_id] = [now_ms, now_ms]
            return
        times[0] = now_ms
        if can_drain:
            times[1] = now_ms

    def is_excluded(self, node_id: int) -> bool:
        if self.availability_timeout_ms <= 0:
            return False
        times = self._times.get(node_id)
        return times is not None and times[0] - times[1] > self.availability_timeout_ms
