"""Our librdkafka-compatible partitioners choose the partitions librdkafka itself chooses.

confluent-kafka (librdkafka) produces a few hundred keys to a 7-partition topic on Tansu
with each ``partitioner`` setting; the partition in every delivery report must equal the
one our partitioner computes for that key.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError as CKafkaError
from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamclient.producer.partitioner import (
    DefaultPartitioner,
    librdkafka_partitioner,
)

pytestmark = pytest.mark.interop

PARTITIONS = 7
KEYS_PER_PARTITIONER = 300
TIMEOUT_S = 20.0


def _keys(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    keys = {b""}
    while len(keys) < KEYS_PER_PARTITIONER:
        keys.add(rng.randbytes(rng.randint(1, 40)))
    return sorted(keys)


@pytest.fixture(scope="module")
def seven_partition_topic(tansu_bootstrap: str) -> Iterator[tuple[str, str]]:
    topic = f"partitioner-interop-{random.Random().getrandbits(40):x}"
    admin = AdminClient({"bootstrap.servers": tansu_bootstrap, "socket.timeout.ms": 5000})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
        operation_timeout=TIMEOUT_S,
        request_timeout=TIMEOUT_S,
    )
    futures[topic].result(timeout=TIMEOUT_S)
    metadata = admin.list_topics(topic, timeout=TIMEOUT_S)
    assert len(metadata.topics[topic].partitions) == PARTITIONS
    yield tansu_bootstrap, topic


def _produce(
    bootstrap: str, topic: str, partitioner: str, keys: list[bytes | None]
) -> dict[bytes | None, int]:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": partitioner,
            "socket.timeout.ms": 5000,
            "message.timeout.ms": 10000,
            "linger.ms": 5,
        }
    )
    placed: dict[bytes | None, int] = {}
    failures: list[str] = []

    def report(err: CKafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(str(err))
        else:
            placed[msg.key()] = msg.partition()

    for key in keys:
        producer.produce(topic, key=key, value=b"v", on_delivery=report)
        producer.poll(0)
    remaining = producer.flush(TIMEOUT_S)
    assert remaining == 0, f"{remaining} messages not delivered within {TIMEOUT_S}s"
    assert failures == []
    assert len(placed) == len(keys)
    return placed


@pytest.mark.parametrize(
    ("name", "with_null_key"),
    [
        ("consistent", True),
        ("murmur2", True),
        ("fnv1a", True),
        # null keys take librdkafka's sticky random path for these; only keys are compared
        ("consistent_random", False),
        ("murmur2_random", False),
        ("fnv1a_random", False),
    ],
)
def test_librdkafka_partitioners_agree(
    seven_partition_topic: tuple[str, str], name: str, with_null_key: bool
) -> None:
    bootstrap, topic = seven_partition_topic
    keys: list[bytes | None] = list(_keys(seed=len(name)))
    if name == "consistent_random":
        keys.remove(b"")  # an empty key is random too for this one
    if with_null_key:
        keys.append(None)
    placed = _produce(bootstrap, topic, name, keys)

    ours = librdkafka_partitioner(name)
    all_partitions = list(range(PARTITIONS))
    mismatches = {
        key: (theirs, ours.partition(topic, key, b"v", all_partitions, all_partitions))
        for key, theirs in placed.items()
        if ours.partition(topic, key, b"v", all_partitions, all_partitions) != theirs
    }
    assert mismatches == {}
    # the keys really spread: a partitioner that ignored them would also "agree" on one
    assert len(set(placed.values())) == PARTITIONS
    # and the comparison tells hash functions apart: another family disagrees on most keys
    other = librdkafka_partitioner("consistent" if name.startswith("murmur2") else "murmur2")
    disagree = sum(
        other.partition(topic, key, b"v", all_partitions, all_partitions) != theirs
        for key, theirs in placed.items()
    )
    assert disagree > len(placed) // 2


def test_java_default_matches_librdkafka_murmur2_random_for_keys(
    seven_partition_topic: tuple[str, str],
) -> None:
    bootstrap, topic = seven_partition_topic
    keys: list[bytes | None] = list(_keys(seed=99))
    placed = _produce(bootstrap, topic, "murmur2_random", keys)
    default = DefaultPartitioner()
    all_partitions = list(range(PARTITIONS))
    for key, theirs in placed.items():
        assert default.partition(topic, key, None, all_partitions, all_partitions) == theirs
