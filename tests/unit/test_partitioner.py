"""Partitioners: hash vectors from Kafka, kafka-python and librdkafka; KIP-480 and KIP-794
state machines driven by an injected random source; the aiokafka callable adapter."""

from __future__ import annotations

import importlib
import itertools
import warnings
import zlib
from collections.abc import Iterable, Iterator

import aiokafka.partitioner as aiopartitioner
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.errors import IllegalArgumentError
from streamclient.producer.partitioner import (
    UNKNOWN_PARTITION,
    BuiltInPartitioner,
    CallablePartitioner,
    ConsistentPartitioner,
    ConsistentRandomPartitioner,
    DefaultPartitioner,
    Fnv1aPartitioner,
    Fnv1aRandomPartitioner,
    Murmur2Partitioner,
    Murmur2RandomPartitioner,
    Murmur3Partitioner,
    NodeLatencyStats,
    Partitioner,
    RandomPartitioner,
    RoundRobinPartitioner,
    StickyPartitioner,
    as_partitioner,
    check_partition,
    fnv1a,
    librdkafka_partitioner,
    murmur2,
    to_positive,
)

with warnings.catch_warnings():
    # kafka-python 3.0 uses importlib.resources.read_text, deprecated in Python 3.11
    warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)
    kppartitioner = importlib.import_module("kafka.partitioner")


def signed32(n: int) -> int:
    return n - (1 << 32) if n & 0x80000000 else n


class Draws:
    """A random source that returns scripted values and records how often it was asked."""

    def __init__(self, values: Iterable[int]) -> None:
        self._values: Iterator[int] = iter(values)
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return next(self._values)


def parts(n: int) -> list[int]:
    return list(range(n))


# --- murmur2 vectors ---------------------------------------------------------------------

# Kafka's UtilsTest.testMurmur2 (signed hashes) with the partitions they imply
UTILS_TEST = [
    ("21", -973932308, 0, 0, 340),
    ("foobar", -790332482, 0, 6, 166),
    ("a-little-bit-long-string", -985981536, 2, 2, 112),
    ("a-little-bit-longer-string", -1486304829, 2, 9, 819),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 2, 7, 677),
    ("abc", 479470107, 0, 7, 107),
]


@pytest.mark.parametrize(("key", "signed_hash", "p3", "p10", "p1000"), UTILS_TEST)
def test_murmur2_matches_kafka_utils_test(
    key: str, signed_hash: int, p3: int, p10: int, p1000: int
) -> None:
    data = key.encode()
    assert signed32(murmur2(data)) == signed_hash
    for n, expected in ((3, p3), (10, p10), (1000, p1000)):
        assert to_positive(murmur2(data)) % n == expected
        assert BuiltInPartitioner.partition_for_key(data, n) == expected
        assert DefaultPartitioner().partition("t", data, None, parts(n), parts(n)) == expected


@pytest.mark.parametrize(
    ("key", "partition"),
    [
        ("0", 2),
        ("1", 0),
        ("2", 2),
        ("3", 2),
        ("4", 1),
        ("5", 0),
        ("6", 1),
        ("7", 0),
        ("8", 0),
        ("9", 2),
    ],
)
def test_streams_foreign_key_join_vectors(key: str, partition: int) -> None:
    assert DefaultPartitioner().partition("t", key.encode(), None, parts(3), parts(3)) == partition


@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_kafka_python_java_compatibility_vectors(key: bytes, partition: int) -> None:
    assert DefaultPartitioner().partition("t", key, None, parts(1000), parts(1000)) == partition


@pytest.mark.parametrize(
    ("key", "unsigned_hash"),
    [
        (b"kafka", 0xD067CF64),
        (b"giberish123456789", 0x8F552B0C),
        (b"1234", 0x9FC97B14),
        (b"", 0x106E08D9),
    ],
)
def test_librdkafka_unsigned_vectors(key: bytes, unsigned_hash: int) -> None:
    assert murmur2(key) == unsigned_hash


def test_default_partitioner_test_key() -> None:
    assert signed32(murmur2(b"key")) == -1079937367
    for n in (3, 6, 12):
        assert DefaultPartitioner().partition("t", b"key", None, parts(n), parts(n)) == 1


def test_murmur2_accepts_bytes_like() -> None:
    data = b"a-little-bit-longer-string"
    assert murmur2(bytearray(data)) == murmur2(memoryview(data)) == murmur2(data)


def test_to_positive_is_not_abs() -> None:
    assert to_positive(-(2**31)) == 0
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(5) == 5


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_agrees_with_aiokafka_and_kafka_python(data: bytes) -> None:
    ours = murmur2(data)
    assert ours == aiopartitioner.murmur2(data)
    assert ours & 0x7FFFFFFF == kppartitioner.murmur2(data) & 0x7FFFFFFF


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=1, max_value=50))
def test_default_partitioner_agrees_with_aiokafkas(key: bytes, n: int) -> None:
    theirs = aiopartitioner.DefaultPartitioner()(key, parts(n), parts(n))
    assert DefaultPartitioner().partition("t", key, None, parts(n), parts(n)) == theirs
    assert DefaultPartitioner()(key, parts(n), parts(n)) == theirs


# --- other hashes --------------------------------------------------------------------------

_SHORT = "1234"
_LONG = "PreAmbleWillBeRemoved,ThePrePartThatIs"


@pytest.mark.parametrize(
    ("key", "expected"),
    # librdkafka's unittest_fnv1a vectors (Go's hash/fnv, made non-negative)
    [
        ("kafka", 0xD33C4E1),
        ("giberish123456789", 0x77A58295),
        (_SHORT, 0x23BDD03),
        (_SHORT[1:], 0x2DEA3CD2),
        (_SHORT[2:], 0x740FA83E),
        (_SHORT[3:], 0x310CA263),
        (_LONG, 0x65CBD69C),
        (_LONG[1:], 0x6E49C79A),
        (_LONG[2:], 0x69EED356),
        (_LONG[3:], 0x6ABCC023),
        ("", 0x7EE3623B),
    ],
)
def test_fnv1a_matches_librdkafka(key: str, expected: int) -> None:
    assert fnv1a(key.encode()) == expected


@pytest.mark.parametrize(
    ("key", "seed", "expected"),
    # MurmurHash3 x86_32 reference values
    [
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"hello", 0, 0x248BFA47),
        (b"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
    ],
)
def test_murmur3_partitioner(key: bytes, seed: int, expected: int) -> None:
    p = Murmur3Partitioner(seed=seed)
    assert p.partition("t", key, None, parts(1000), parts(1000)) == (expected & 0x7FFFFFFF) % 1000
    assert p.partition("t", None, None, parts(3), parts(3)) == UNKNOWN_PARTITION


# --- librdkafka's partitioners ---------------------------------------------------------------


def test_consistent_uses_crc32_and_sends_null_and_empty_keys_to_partition_0() -> None:
    p = ConsistentPartitioner()
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value
    assert p.partition("t", b"123456789", None, parts(7), parts(7)) == 0xCBF43926 % 7
    assert p.partition("t", None, None, parts(7), parts(7)) == 0
    assert p.partition("t", b"", None, parts(7), parts(7)) == 0


def test_murmur2_and_fnv1a_hash_a_null_key_like_an_empty_one() -> None:
    for p, h in (
        (Murmur2Partitioner(), murmur2(b"") & 0x7FFFFFFF),
        (Fnv1aPartitioner(), fnv1a(b"")),
    ):
        assert p.partition("t", None, None, parts(7), parts(7)) == h % 7
        assert p.partition("t", b"", None, parts(7), parts(7)) == h % 7
        assert p.partition("t", b"kafka", None, parts(7), parts(7)) != UNKNOWN_PARTITION


@pytest.mark.parametrize(
    ("cls", "random_keys", "hashed_keys"),
    [
        (ConsistentRandomPartitioner, [None, b""], [b"k"]),
        (Murmur2RandomPartitioner, [None], [b"", b"k"]),
        (Fnv1aRandomPartitioner, [None], [b"", b"k"]),
    ],
)
def test_random_variants(
    cls: type[Partitioner], random_keys: list[bytes | None], hashed_keys: list[bytes]
) -> None:
    sticky = cls()
    draws = Draws([5, 6])
    spread = cls(sticky_null_keys=False, random_source=draws)  # type: ignore[call-arg]
    hashing = {
        ConsistentRandomPartitioner: ConsistentPartitioner,
        Murmur2RandomPartitioner: Murmur2Partitioner,
        Fnv1aRandomPartitioner: Fnv1aPartitioner,
    }[cls]()
    for key in random_keys:
        assert sticky.partition("t", key, None, parts(7), parts(7)) == UNKNOWN_PARTITION
    assert spread.partition("t", random_keys[0], None, parts(7), [1, 3, 4]) == [1, 3, 4][5 % 3]
    assert spread.partition("t", random_keys[-1], None, parts(7), []) == 6  # none available
    for key in hashed_keys:
        assert sticky.partition("t", key, None, parts(7), parts(7)) == hashing.partition(
            "t", key, None, parts(7), parts(7)
        )
    assert draws.calls == 2


def test_librdkafka_random() -> None:
    p = RandomPartitioner(random_source=Draws([10, 11]))
    assert p.partition("t", b"k", None, parts(4), [0, 2]) == 0
    assert p.partition("t", b"k", None, parts(4), [0, 2]) == 2
    assert p.partition("t", None, None, parts(4), parts(4)) == UNKNOWN_PARTITION


def test_librdkafka_partitioner_by_name() -> None:
    assert isinstance(librdkafka_partitioner("murmur2_random"), Murmur2RandomPartitioner)
    assert isinstance(librdkafka_partitioner("consistent"), ConsistentPartitioner)
    with pytest.raises(IllegalArgumentError, match="unknown librdkafka partitioner"):
        librdkafka_partitioner("murmur3")


def test_hash_partitioners_index_all_partitions() -> None:
    # partition ids need not be 0..n-1: the hash picks a position in the list
    p = ConsistentPartitioner()
    assert p.partition("t", b"123456789", None, [10, 20, 30], [10]) == [10, 20, 30][0xCBF43926 % 3]
    with pytest.raises(IllegalArgumentError):
        p.partition("t", b"x", None, [], [])


# --- DefaultPartitioner ----------------------------------------------------------------------


def test_default_partitioner_leaves_null_keys_to_the_accumulator() -> None:
    p = DefaultPartitioner()
    assert p.partition("t", None, None, parts(5), parts(5)) == UNKNOWN_PARTITION
    assert p.partition("t", b"", None, parts(1000), parts(1000)) == 681  # empty is hashed


def test_default_partitioner_called_aiokafka_style_spreads_null_keys() -> None:
    p = DefaultPartitioner(random_source=Draws([7, 8]))
    assert p(None, parts(10), [123, 456]) == 456  # 7 % 2
    assert p(None, parts(10), []) == 8  # no partition available: any of all
    assert p(b"abc", parts(1000), parts(1000)) == 107


# --- KIP-480 sticky ----------------------------------------------------------------------------


def test_sticky_partitioner_sticks_until_its_batch_is_done() -> None:
    p = StickyPartitioner(random_source=Draws([4, 0, 1]))
    first = p.partition("t", None, None, parts(5), parts(5))
    assert first == 4
    assert p.partition("t", None, None, parts(5), parts(5)) == 4
    # a report about a partition that is not the sticky one changes nothing
    p.on_new_batch("t", parts(5), parts(5), prev_partition=2)
    assert p.partition("t", None, None, parts(5), parts(5)) == 4
    p.on_new_batch("t", parts(5), parts(5), prev_partition=4)
    # draws 0 among the others [0, 1, 2, 3]
    assert p.partition("t", None, None, parts(5), parts(5)) == 0
    p.on_new_batch("t", parts(5), parts(5), prev_partition=0)
    assert p.partition("t", None, None, parts(5), parts(5)) == 2  # 1 among [1, 2, 3, 4]
    # topics are independent; keyed records are hashed
    assert p.partition("t", b"abc", None, parts(1000), parts(1000)) == 107


def test_sticky_partitioner_never_redraws_the_same_partition() -> None:
    p = StickyPartitioner(random_source=Draws([0] * 20))
    seen = [p.partition("t", None, None, parts(3), parts(3))]
    for _ in range(5):
        p.on_new_batch("t", parts(3), parts(3), prev_partition=seen[-1])
        seen.append(p.partition("t", None, None, parts(3), parts(3)))
    assert all(a != b for a, b in itertools.pairwise(seen))


def test_sticky_partitioner_availability() -> None:
    p = StickyPartitioner(random_source=Draws([9, 9]))
    assert p.partition("t", None, None, parts(4), [2]) == 2  # the only available one
    p.on_new_batch("t", parts(4), [2], prev_partition=2)
    assert p.partition("t", None, None, parts(4), [2]) == 2
    q = StickyPartitioner(random_source=Draws([9]))
    assert q.partition("u", None, None, parts(4), []) == 1  # none available: 9 % 4


def test_uniform_sticky_ignores_keys() -> None:
    p = StickyPartitioner(ignore_keys=True, random_source=Draws([2]))
    assert p.partition("t", b"abc", None, parts(5), parts(5)) == 2
    assert p.partition("t", b"other", None, parts(5), parts(5)) == 2


# --- round robin ---------------------------------------------------------------------------------


def test_round_robin_cycles_over_available_partitions_per_topic() -> None:
    p = RoundRobinPartitioner()
    got = [p.partition("t", b"k", None, parts(3), parts(3)) for _ in range(7)]
    assert got == [0, 1, 2, 0, 1, 2, 0]
    assert p.partition("other", None, None, parts(3), parts(3)) == 0
    assert p.partition("t", None, None, parts(4), [1, 3]) == 3  # counter 7 over [1, 3]
    assert p.partition("t", None, None, parts(4), []) == 0  # counter 8 over all four


def test_round_robin_repeats_the_partition_that_opened_a_batch() -> None:
    p = RoundRobinPartitioner()
    assert p.partition("t", None, None, parts(3), parts(3)) == 0
    assert p.partition("t", None, None, parts(3), parts(3)) == 1
    p.on_new_batch("t", parts(3), parts(3), prev_partition=1)
    assert p.partition("t", None, None, parts(3), parts(3)) == 1  # the same record again
    assert p.partition("t", None, None, parts(3), parts(3)) == 2  # no partition skipped


# --- the callable adapter --------------------------------------------------------------------


def test_callable_adapter_calls_aiokafka_style() -> None:
    seen: list[tuple[bytes | None, list[int], list[int]]] = []

    def pick(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        seen.append((key, all_partitions, available))
        return all_partitions[-1]

    p = as_partitioner(pick)
    assert isinstance(p, CallablePartitioner)
    assert p.partition("t", b"k", b"v", (0, 1, 2), (1,)) == 2
    assert seen == [(b"k", [0, 1, 2], [1])]
    p.on_new_batch("t", [0], [0], 0)  # a plain callable has no hook: nothing happens


def test_callable_adapter_accepts_aiokafkas_own_partitioner() -> None:
    p = as_partitioner(aiopartitioner.DefaultPartitioner())
    assert p.partition("t", b"abc", None, parts(1000), parts(1000)) == 107


def test_callable_adapter_rejects_non_int_answers() -> None:
    p = as_partitioner(lambda key, all_partitions, available: "1")
    with pytest.raises(IllegalArgumentError, match="expected a partition id"):
        p.partition("t", b"k", None, parts(3), parts(3))
    q = as_partitioner(lambda key, all_partitions, available: True)
    with pytest.raises(IllegalArgumentError):
        q.partition("t", b"k", None, parts(3), parts(3))


def test_as_partitioner_takes_instances_and_classes() -> None:
    rr = RoundRobinPartitioner()
    assert as_partitioner(rr) is rr
    assert isinstance(as_partitioner(RoundRobinPartitioner), RoundRobinPartitioner)
    with pytest.raises(IllegalArgumentError):
        as_partitioner(42)  # type: ignore[arg-type]


def test_check_partition() -> None:
    assert check_partition("t", 2, parts(3)) == 2
    assert check_partition("t", UNKNOWN_PARTITION, parts(3)) == UNKNOWN_PARTITION
    for bad in (3, -2):
        with pytest.raises(IllegalArgumentError, match="partition"):
            check_partition("t", bad, parts(3))


# --- KIP-794 BuiltInPartitioner ------------------------------------------------------------


def test_cumulative_frequency_table_example() -> None:
    bp = BuiltInPartitioner("t", 100, random_source=Draws(range(16)))
    bp.update_partition_load_stats([0, 3, 1], [0, 1, 2], 3)
    stats = bp.load_stats
    assert stats is not None
    assert stats.cumulative_frequency_table == [4, 5, 8]
    # draws 0..15 modulo 8: 0-3 -> partition 0 (weight 4), 4 -> 1 (weight 1), 5-7 -> 2 (weight 3)
    got = [bp.next_partition(parts(3), parts(3)) for _ in range(16)]
    assert got == [0, 0, 0, 0, 1, 2, 2, 2] * 2


def test_equal_queues_mean_uniform_choice() -> None:
    bp = BuiltInPartitioner("t", 100, random_source=Draws([5, 6]))
    bp.update_partition_load_stats([2, 2, 2], [0, 1, 2], 3)
    assert bp.load_stats is None
    assert bp.next_partition(parts(3), [0, 2]) == 2  # 5 % 2 over the available ones
    assert bp.next_partition(parts(3), []) == 0  # 6 % 3 over all when none is available


def test_excluded_partitions_keep_the_stats_even_when_queues_are_equal() -> None:
    bp = BuiltInPartitioner("t", 100, random_source=Draws(range(6)))
    # partition 1's leader was excluded: only 0 and 2 are listed
    bp.update_partition_load_stats([2, 2], [0, 2], 3)
    stats = bp.load_stats
    assert stats is not None and stats.cumulative_frequency_table == [1, 2]
    assert [bp.next_partition(parts(3), parts(3)) for _ in range(6)] == [0, 2] * 3


@pytest.mark.parametrize(("sizes", "ids", "n"), [([], [], 3), ([4], [0], 1), ([0, 9], [0, 1], 1)])
def test_no_stats_for_empty_or_single_partition_topics(
    sizes: list[int], ids: list[int], n: int
) -> None:
    bp = BuiltInPartitioner("t", 100)
    bp.update_partition_load_stats([1, 0], [0, 1], 2)
    assert bp.load_stats is not None
    bp.update_partition_load_stats(sizes, ids, n)
    assert bp.load_stats is None


def test_one_listed_partition_out_of_several_is_always_chosen() -> None:
    bp = BuiltInPartitioner("t", 100, random_source=Draws([0, 12345]))
    bp.update_partition_load_stats([7], [2], 3)
    assert bp.next_partition(parts(3), parts(3)) == 2
    assert bp.next_partition(parts(3), parts(3)) == 2


def test_load_stats_reject_mismatched_lists() -> None:
    with pytest.raises(IllegalArgumentError):
        BuiltInPartitioner("t", 100).update_partition_load_stats([1, 2], [0], 3)


def test_switch_after_batch_size_only_when_batches_are_full() -> None:
    bp = BuiltInPartitioner("t", 100, random_source=Draws([1, 3, 0]))
    info = bp.peek_current_partition_info(parts(4), parts(4))
    assert info.index == 1
    assert bp.peek_current_partition_info(parts(4), parts(4)) is info
    bp.update_partition_info(info, 60, parts(4), parts(4), enable_switch=True)
    assert not bp.is_partition_changed(info)  # 60 < batch size
    bp.update_partition_info(info, 50, parts(4), parts(4), enable_switch=False)
    assert info.produced_bytes == 110
    assert not bp.is_partition_changed(info)  # enough bytes, but a batch is not full yet
    # the accumulator retries the deferred switch once the batches are full
    bp.update_partition_info(info, 0, parts(4), parts(4), enable_switch=True)
    assert bp.is_partition_changed(info)
    new = bp.peek_current_partition_info(parts(4), parts(4))
    assert new.index == 3 and new.produced_bytes == 0


def test_switch_after_twice_batch_size_regardless() -> None:
    bp = BuiltInPartitioner("t", 100, random_source=Draws([0, 2]))
    info = bp.peek_current_partition_info(parts(3), parts(3))
    bp.update_partition_info(info, 150, parts(3), parts(3), enable_switch=False)
    assert not bp.is_partition_changed(info)
    bp.update_partition_info(info, 49, parts(3), parts(3), enable_switch=False)
    assert not bp.is_partition_changed(info)  # 199 bytes
    bp.update_partition_info(info, 1, parts(3), parts(3), enable_switch=False)
    assert bp.is_partition_changed(info)  # 200 bytes: switch even with a partial batch
    assert bp.peek_current_partition_info(parts(3), parts(3)).index == 2


def test_switch_draws_from_the_load_stats() -> None:
    bp = BuiltInPartitioner("t", 10, random_source=Draws([0, 4]))
    info = bp.peek_current_partition_info(parts(3), parts(3))
    assert info.index == 0  # no stats yet: uniform
    bp.update_partition_load_stats([0, 3, 1], [0, 1, 2], 3)
    bp.update_partition_info(info, 10, parts(3), parts(3), enable_switch=True)
    assert bp.peek_current_partition_info(parts(3), parts(3)).index == 1  # 4 lands in CFT slot 1


def test_stale_partition_info_is_ignored() -> None:
    bp = BuiltInPartitioner("t", 10, random_source=Draws([0, 1, 2]))
    old = bp.peek_current_partition_info(parts(3), parts(3))
    bp.update_partition_info(old, 20, parts(3), parts(3), enable_switch=False)
    current = bp.peek_current_partition_info(parts(3), parts(3))
    assert current is not old
    bp.update_partition_info(old, 1000, parts(3), parts(3), enable_switch=True)
    assert bp.peek_current_partition_info(parts(3), parts(3)) is current
    assert current.produced_bytes == 0
    assert not bp.is_partition_changed(None)
    bp.update_partition_info(None, 5, parts(3), parts(3), enable_switch=True)
    assert current.produced_bytes == 0


def test_sticky_batch_size_must_be_positive() -> None:
    with pytest.raises(IllegalArgumentError):
        BuiltInPartitioner("t", 0)


def test_partition_for_key_needs_partitions() -> None:
    with pytest.raises(IllegalArgumentError):
        BuiltInPartitioner.partition_for_key(b"k", 0)


def test_the_default_random_source_spreads_over_partitions() -> None:
    bp = BuiltInPartitioner("t", 1)
    seen = {bp.next_partition(parts(4), parts(4)) for _ in range(400)}
    assert seen == {0, 1, 2, 3}


# --- partitioner.availability.timeout.ms ---------------------------------------------------


def test_node_latency_excludes_a_node_that_cannot_drain() -> None:
    stats = NodeLatencyStats(availability_timeout_ms=50)
    stats.update(1, now_ms=1000, can_drain=True)
    stats.update(1, now_ms=1050, can_drain=False)
    assert not stats.is_excluded(1)  # exactly the timeout: still in
    stats.update(1, now_ms=1051, can_drain=False)
    assert stats.is_excluded(1)
    stats.update(1, now_ms=1100, can_drain=True)
    assert not stats.is_excluded(1)
    assert not stats.is_excluded(2)  # never seen


def test_node_latency_first_report_counts_as_drained() -> None:
    stats = NodeLatencyStats(availability_timeout_ms=10)
    stats.update(3, now_ms=500, can_drain=False)
    assert not stats.is_excluded(3)
    stats.update(3, now_ms=520, can_drain=False)
    assert stats.is_excluded(3)


def test_node_latency_timeout_zero_disables_exclusion() -> None:
    stats = NodeLatencyStats(availability_timeout_ms=0)
    stats.update(1, now_ms=0, can_drain=True)
    stats.update(1, now_ms=10_000_000, can_drain=False)
    assert not stats.is_excluded(1)
    with pytest.raises(IllegalArgumentError):
        NodeLatencyStats(availability_timeout_ms=-1)
