"""streamclient.structs, streamclient.abc and the top-level names match aiokafka's."""

from __future__ import annotations

import dataclasses

import aiokafka
import aiokafka.structs as aiostructs
import pytest

import streamclient
from streamclient import _version, structs
from streamclient.abc import AbstractTokenProvider, ConsumerRebalanceListener
from streamclient.structs import ConsumerRecord, RecordMetadata, TopicPartition

TUPLES = [
    "TopicPartition",
    "BrokerMetadata",
    "PartitionMetadata",
    "OffsetAndMetadata",
    "RecordMetadata",
    "OffsetAndTimestamp",
]


@pytest.mark.parametrize("name", TUPLES)
def test_named_tuples_have_aiokafkas_fields_in_order(name: str) -> None:
    ours = getattr(structs, name)
    theirs = getattr(aiostructs, name)
    assert issubclass(ours, tuple)
    assert ours._fields == theirs._fields
    values = tuple(range(len(ours._fields)))
    assert tuple(ours(*values)) == tuple(theirs(*values))
    assert ours(*values) == theirs(*values)  # both are plain tuples underneath


def test_topic_partition_is_a_hashable_key() -> None:
    tp = TopicPartition("t", 3)
    assert {tp: 1}[TopicPartition("t", 3)] == 1
    assert tp == ("t", 3)
    topic, partition = tp
    assert (topic, partition) == ("t", 3)
    assert sorted([TopicPartition("b", 0), TopicPartition("a", 2), TopicPartition("a", 1)]) == [
        ("a", 1),
        ("a", 2),
        ("b", 0),
    ]


def test_record_metadata_carries_its_topic_partition() -> None:
    md = RecordMetadata("t", 1, TopicPartition("t", 1), 42, None, 0, None)
    assert md.topic_partition.partition == 1
    assert md.offset == 42


def _record() -> ConsumerRecord[bytes, str]:
    return ConsumerRecord(
        topic="t",
        partition=0,
        offset=5,
        timestamp=1000,
        timestamp_type=0,
        key=b"k",
        value="v",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=1,
        headers=[("h", b"1")],
    )


def test_consumer_record_has_aiokafkas_fields_in_order() -> None:
    ours = [f.name for f in dataclasses.fields(ConsumerRecord)]
    theirs = [f.name for f in dataclasses.fields(aiostructs.ConsumerRecord)]
    assert ours == theirs


def test_consumer_record_is_a_slotted_dataclass_not_a_tuple() -> None:
    rec = _record()
    assert not isinstance(rec, tuple)
    assert not hasattr(rec, "__dict__")
    with pytest.raises(AttributeError):
        rec.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        iter(rec)  # type: ignore[call-overload]
    rec.value = "changed"  # aiokafka's records are mutable
    assert rec.value == "changed"
    assert rec == dataclasses.replace(_record(), value="changed")


def test_consumer_record_is_generic() -> None:
    alias = ConsumerRecord[bytes, bytes]
    rec = alias("t", 0, 0, 0, 0, None, None, None, -1, -1, ())
    assert isinstance(rec, ConsumerRecord)
    assert rec.key is None


def test_offset_and_metadata_has_no_leader_epoch() -> None:
    assert structs.OffsetAndMetadata._fields == ("offset", "metadata")


# --- abc ---------------------------------------------------------------------------------


class Recorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[TopicPartition]]] = []

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.calls.append(("revoked", revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.calls.append(("assigned", assigned))


class AsyncRecorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.revoked: list[TopicPartition] = []

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.revoked.extend(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        raise AssertionError("not called here")


def test_listener_methods_are_abstract() -> None:
    class OnlyRevoked(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
            pass

    with pytest.raises(TypeError):
        OnlyRevoked()  # type: ignore[abstract]


def test_partitions_lost_defaults_to_revoked() -> None:
    listener = Recorder()
    lost = [TopicPartition("t", 0)]
    assert listener.on_partitions_lost(lost) is None
    assert listener.calls == [("revoked", lost)]


@pytest.mark.anyio
async def test_partitions_lost_returns_the_coroutine_of_an_async_listener() -> None:
    listener = AsyncRecorder()
    pending = listener.on_partitions_lost([TopicPartition("t", 1)])
    assert pending is not None
    assert listener.revoked == []  # nothing ran until the consumer awaits it
    await pending
    assert listener.revoked == [TopicPartition("t", 1)]


@pytest.mark.anyio
async def test_token_provider() -> None:
    class Static(AbstractTokenProvider):
        async def token(self) -> str:
            return "tok"

    provider = Static()
    assert await provider.token() == "tok"
    assert provider.extensions() == {}
    with pytest.raises(TypeError):
        AbstractTokenProvider()  # type: ignore[abstract]


# --- the package's top level ---------------------------------------------------------------


def test_top_level_names() -> None:
    assert streamclient.__version__ == _version.__version__
    for name in streamclient.__all__:
        assert hasattr(streamclient, name), name
    # every aiokafka top-level name that exists so far (the facades come later)
    present = {
        "ConsumerRebalanceListener",
        "ConsumerStoppedError",
        "IllegalOperation",
        "ConsumerRecord",
        "TopicPartition",
        "OffsetAndTimestamp",
        "OffsetAndMetadata",
    }
    assert present <= set(aiokafka.__all__)
    assert present <= set(streamclient.__all__)
    assert streamclient.TopicPartition is structs.TopicPartition


def test_named_tuple_kind() -> None:
    # aiokafka's tuples stay tuples (code unpacks them), never dataclasses
    for name in TUPLES:
        cls = getattr(structs, name)
        assert not dataclasses.is_dataclass(cls)
        assert hasattr(cls, "_make")
