"""What the admin client takes and gives back.

The argument classes keep aiokafka's names and constructor arguments (``NewTopic``,
``NewPartitions``, ``RecordsToDelete``, ``ConfigResource``, ``ConfigResourceType``) and check
their arguments at construction, so a mistake fails where it was made with
``IllegalArgumentError`` (or ``TypeError`` for a value of the wrong type) instead of
surfacing as an encoding error or a broker error later.

The result classes are for the methods aiokafka lacks (Java's ``Admin`` has them): frozen
dataclasses.  ``TopicDescription``/``PartitionDescription`` also answer aiokafka's
dictionary keys (``description["topic"]``, ``partition["leader"]``), because aiokafka's
``describe_topics`` returns the Metadata response as dictionaries and code written for it
indexes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Final

from streamclient.errors import BrokerResponseError, IllegalArgumentError, for_code
from streamclient.structs import TopicPartition

__all__ = [
    "AlterConfigOp",
    "AlterConfigOpType",
    "ConfigResource",
    "ConfigResourceType",
    "ListOffsetsResultInfo",
    "NewPartitions",
    "NewTopic",
    "OffsetSpec",
    "PartitionDescription",
    "ProducerState",
    "RecordsToDelete",
    "TopicDescription",
    "TransactionDescription",
    "TransactionListing",
    "error_for",
]

_MAX_INT16: Final = 32767
_MAX_INT32: Final = 2**31 - 1


def error_for(code: int, message: str | None, what: str) -> BrokerResponseError | None:
    """The exception for a per-entry error code (``None`` for 0), naming the entry."""
    if not code:
        return None
    return for_code(code)(f"{what}: {message}" if message else what)


def _check_int(name: str, value: Any, low: int, high: int = _MAX_INT32) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise IllegalArgumentError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, not {type(name).__name__}")
    if not name:
        raise IllegalArgumentError(f"{kind} name must not be empty")
    return name


def config_value(name: str, value: Any) -> str | None:
    """A config value as the protocol carries it: a str (or None).

    ``True`` becomes ``"true"``: Kafka parses booleans in lower case, and ``str(True)``
    would be refused by the broker.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(f"config {name!r}: a value must be a str, int, float, bool or None, "
                    f"not {type(value).__name__}")


def _check_configs(configs: Any, what: str) -> dict[str, Any]:
    if configs is None:
        return {}
    if not isinstance(configs, Mapping):
        raise TypeError(f"{what} must be a mapping of config names to values")
    for key in configs:
        if not isinstance(key, str) or not key:
            raise TypeError(f"{what}: config names must be non-empty str, not {key!r}")
    return dict(configs)


def _check_broker_ids(what: str, ids: Any) -> list[int]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or not ids:
        raise IllegalArgumentError(f"{what} must be a non-empty list of broker ids")
    return [_check_int(f"{what} entry", b, 0) for b in ids]


class NewTopic:
    """A topic to create.

    ``num_partitions`` and ``replication_factor`` are counts, or -1 for the broker's
    defaults (KIP-464; aiokafka refuses -1 for both without assignments, we pass it on).
    With ``replica_assignments`` ({partition: [broker ids]}) both counts must be -1,
    because the assignment decides them (Kafka refuses the request otherwise).
    """

    def __init__(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                 replica_assignments: Mapping[int, Sequence[int]] | None = None,
                 topic_configs: Mapping[str, Any] | None = None) -> None:
        self.name = _check_name("topic", name)
        self.num_partitions = _check_int("num_partitions", num_partitions, -1)
        self.replication_factor = _check_int("replication_factor", replication_factor, -1,
                                             _MAX_INT16)
        if 0 in (self.num_partitions, self.replication_factor):
            raise IllegalArgumentError("num_partitions and replication_factor must be "
                                       "positive, or -1 for the broker's default")
        if replica_assignments is not None:
            if (self.num_partitions, self.replication_factor) != (-1, -1):
                raise IllegalArgumentError(
                    "either num_partitions/replication_factor or replica_assignment "
                    "must be specified")
            if not isinstance(replica_assignments, Mapping) or not replica_assignments:
                raise IllegalArgumentError(
                    "replica_assignments must be a non-empty mapping of partition ids to "
                    "lists of broker ids")
            assignments = {
                _check_int("replica_assignments partition", p, 0):
                    _check_broker_ids(f"replica_assignments[{p}]", ids)
                for p, ids in replica_assignments.items()}
        else:
            assignments = {}
        self.replica_assignments: dict[int, list[int]] = assignments
        self.topic_configs: dict[str, Any] = _check_configs(topic_configs, "topic_configs")
        for key, value in self.topic_configs.items():
            config_value(key, value)

    def __repr__(self) -> str:
        return (f"NewTopic(name={self.name!r}, num_partitions={self.num_partitions}, "
                f"replication_factor={self.replication_factor}, "
                f"replica_assignments={self.replica_assignments!r}, "
                f"topic_configs={self.topic_configs!r})")


class NewPartitions:
    """The new partition count of an existing topic, with optional replica lists for the
    added partitions (one list per new partition)."""

    def __init__(self, total_count: int,
                 new_assignments: Sequence[Sequence[int]] | None = None) -> None:
        self.total_count = _check_int("total_count", total_count, 1)
        checked: list[list[int]] | None = None
        if new_assignments is not None:
            if isinstance(new_assignments, (str, bytes)) or \
                    not isinstance(new_assignments, Sequence):
                raise IllegalArgumentError("new_assignments must be a list of lists of "
                                           "broker ids")
            checked = [_check_broker_ids("new_assignments entry", a) for a in new_assignments]
        self.new_assignments: list[list[int]] | None = checked

    def __repr__(self) -> str:
        return (f"NewPartitions(total_count={self.total_count}, "
                f"new_assignments={self.new_assignments!r})")


class RecordsToDelete:
    """Delete a partition's records before ``before_offset`` (-1: the high watermark)."""

    def __init__(self, before_offset: int) -> None:
        self.before_offset = _check_int("before_offset", before_offset, -1, 2**63 - 1)

    def __repr__(self) -> str:
        return f"RecordsToDelete(before_offset={self.before_offset})"


class ConfigResourceType(IntEnum):
    """Kafka's config resource types (the protocol's ``resource_type`` byte)."""

    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


class ConfigResource:
    """A resource whose configs are described or altered.

    ``resource_type`` is a ``ConfigResourceType``, its int value, or its name in any case
    (``"topic"``); ``name`` is the topic name or the broker id as a string (``""``: the
    cluster-wide broker defaults).  ``configs``: for describing, the names to return
    (``None``: all); for altering, name → value (see each method for what a value may be).
    """

    def __init__(self, resource_type: ConfigResourceType | int | str, name: str,
                 configs: Mapping[str, Any] | None = None) -> None:
        self.resource_type = _resource_type(resource_type)
        if not isinstance(name, str):
            if isinstance(name, int) and not isinstance(name, bool) and \
                    self.resource_type in _BROKER_TYPES:
                name = str(name)  # a broker id given as an int is unambiguous
            else:
                raise TypeError(f"resource name must be a str, not {type(name).__name__}")
        if not name and self.resource_type not in _BROKER_TYPES:
            raise IllegalArgumentError(
                f"a {self.resource_type.name} resource needs a non-empty name")
        self.name = name
        self.configs: dict[str, Any] | None = (
            None if configs is None else _check_configs(configs, "configs"))

    @property
    def key(self) -> tuple[ConfigResourceType, str]:
        return (self.resource_type, self.name)

    def __repr__(self) -> str:
        return (f"ConfigResource({self.resource_type.name}, {self.name!r}, "
                f"configs={self.configs!r})")


_BROKER_TYPES: Final = frozenset({ConfigResourceType.BROKER, ConfigResourceType.BROKER_LOGGER})


def _resource_type(value: Any) -> ConfigResourceType:
    if isinstance(value, ConfigResourceType):
        return value
    if isinstance(value, str):
        try:
            return ConfigResourceType[value.upper()]
        except KeyError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return ConfigResourceType(value)
        except ValueError:
            pass
    names = ", ".join(t.name for t in ConfigResourceType)
    raise IllegalArgumentError(f"unknown config resource type {value!r} (one of {names})")


class AlterConfigOpType(IntEnum):
    """IncrementalAlterConfigs operations (KIP-339)."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True, slots=True)
class AlterConfigOp:
    """One incremental change to a config: ``AlterConfigOp(AlterConfigOpType.APPEND, "x")``.

    In ``incremental_alter_configs`` a plain value means SET and ``None`` means DELETE, so
    this class is needed only for APPEND and SUBTRACT (list configs).
    """

    op_type: AlterConfigOpType
    value: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "op_type", AlterConfigOpType(self.op_type))
        except ValueError:
            raise IllegalArgumentError(f"unknown config operation {self.op_type!r}") from None
        if self.op_type is not AlterConfigOpType.DELETE and self.value is None:
            raise IllegalArgumentError(f"{self.op_type.name} needs a value")
        object.__setattr__(self, "value", config_value("AlterConfigOp", self.value))


@dataclass(frozen=True, slots=True)
class OffsetSpec:
    """Which offset ``list_offsets`` looks up: the wire's ListOffsets ``timestamp``."""

    timestamp: int

    LATEST: ClassVar[int] = -1
    EARLIEST: ClassVar[int] = -2
    MAX_TIMESTAMP: ClassVar[int] = -3  # KIP-734, ListOffsets v7+

    def __post_init__(self) -> None:
        _check_int("OffsetSpec timestamp", self.timestamp, -3, 2**63 - 1)

    @classmethod
    def earliest(cls) -> OffsetSpec:
        return cls(cls.EARLIEST)

    @classmethod
    def latest(cls) -> OffsetSpec:
        return cls(cls.LATEST)

    @classmethod
    def max_timestamp(cls) -> OffsetSpec:
        """The offset of the record with the largest timestamp."""
        return cls(cls.MAX_TIMESTAMP)

    @classmethod
    def for_timestamp(cls, timestamp_ms: int) -> OffsetSpec:
        """The first offset whose timestamp is at or after ``timestamp_ms``."""
        _check_int("timestamp_ms", timestamp_ms, 0, 2**63 - 1)
        return cls(timestamp_ms)

    @classmethod
    def parse(cls, spec: Any) -> OffsetSpec:
        """An ``OffsetSpec``, ``"earliest"``/``"latest"``/``"max_timestamp"``, or a
        timestamp in milliseconds (an int >= 0)."""
        if isinstance(spec, OffsetSpec):
            return spec
        if isinstance(spec, str):
            named = {"earliest": cls.EARLIEST, "latest": cls.LATEST,
                     "max_timestamp": cls.MAX_TIMESTAMP}
            if spec.lower() in named:
                return cls(named[spec.lower()])
            raise IllegalArgumentError(f"unknown offset spec {spec!r} (earliest, latest, "
                                       "max_timestamp, or a timestamp in ms)")
        return cls.for_timestamp(spec)


@dataclass(frozen=True, slots=True)
class ListOffsetsResultInfo:
    """One partition's answer to ``list_offsets``.  A timestamp lookup that found no
    record gives offset -1 and timestamp -1 (Kafka's answer)."""

    offset: int
    timestamp: int
    leader_epoch: int | None


class _AiokafkaKeys:
    """aiokafka's ``describe_topics`` dictionary keys, read from the dataclass fields."""

    __slots__ = ()
    _KEYS: ClassVar[Mapping[str, str]] = {}

    def __getitem__(self, key: str) -> Any:
        try:
            attribute = self._KEYS[key]
        except KeyError:
            raise KeyError(key) from None
        value = getattr(self, attribute)
        # aiokafka's dictionaries hold lists
        return list(value) if isinstance(value, tuple) else value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._KEYS else default

    def keys(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __contains__(self, key: object) -> bool:
        return key in self._KEYS


@dataclass(frozen=True, slots=True)
class PartitionDescription(_AiokafkaKeys):
    """One partition of a described topic (``leader`` -1: none)."""

    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...]
    error_code: int = 0

    _KEYS: ClassVar[Mapping[str, str]] = {
        "error_code": "error_code", "partition": "partition", "leader": "leader",
        "replicas": "replicas", "isr": "isr", "offline_replicas": "offline_replicas"}


@dataclass(frozen=True, slots=True)
class TopicDescription(_AiokafkaKeys):
    """A topic as the Metadata response described it.  ``error_code`` is not 0 for a
    topic that could not be described (``error`` gives the exception)."""

    name: str
    topic_id: uuid.UUID
    is_internal: bool
    partitions: tuple[PartitionDescription, ...]
    error_code: int = 0
    error_message: str | None = None

    _KEYS: ClassVar[Mapping[str, str]] = {
        "error_code": "error_code", "topic": "name", "is_internal": "is_internal",
        "partitions": "partitions"}

    @property
    def error(self) -> BrokerResponseError | None:
        return error_for(self.error_code, self.error_message, f"topic {self.name!r}")


@dataclass(frozen=True, slots=True)
class TransactionListing:
    """One transactional id from ``list_transactions``."""

    transactional_id: str
    producer_id: int
    state: str
    coordinator_id: int


@dataclass(frozen=True, slots=True)
class TransactionDescription:
    """A transaction as its coordinator describes it.  ``transaction_start_time_ms`` is
    ``None`` when no transaction is open."""

    transactional_id: str
    coordinator_id: int
    state: str
    producer_id: int
    producer_epoch: int
    transaction_timeout_ms: int
    transaction_start_time_ms: int | None
    topic_partitions: frozenset[TopicPartition]


@dataclass(frozen=True, slots=True)
class ProducerState:
    """A producer a partition leader knows (``describe_producers``, KIP-664).
    ``current_transaction_start_offset`` is ``None`` outside a transaction, and
    ``coordinator_epoch`` ``None`` when the broker has none recorded."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int | None
    current_transaction_start_offset: int | None
