"""Argument checks and error helpers the admin call modules share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from streamclient.errors import (
    BrokerResponseError,
    IllegalArgumentError,
    KafkaError,
    UnknownTopicOrPartitionError,
    for_code,
)
from streamclient.structs import TopicPartition

__all__ = [
    "check_names",
    "check_partitions",
    "check_timeout",
    "check_unique",
    "raise_first",
    "unknown_partition",
]


def check_names(what: str, names: Any) -> list[str]:
    """A list of non-empty names (a lone str is refused: it is a classic slip)."""
    if isinstance(names, str) or not isinstance(names, (Sequence, set, frozenset)):
        raise TypeError(f"{what} must be a list of str, not {type(names).__name__}")
    out = list(names)
    for name in out:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must hold non-empty str, not {name!r}")
    return out


def check_unique(kind: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise IllegalArgumentError(f"{kind} {name!r} appears twice in one request")
        seen.add(name)


def check_partitions(what: str, partitions: Any) -> list[TopicPartition]:
    if isinstance(partitions, (str, bytes)) or not isinstance(partitions, Iterable):
        raise TypeError(f"{what} must be a collection of TopicPartition")
    out = []
    for tp in partitions:
        if not (isinstance(tp, tuple) and len(tp) == 2 and isinstance(tp[0], str) and tp[0]
                and isinstance(tp[1], int) and not isinstance(tp[1], bool) and tp[1] >= 0):
            raise TypeError(f"{what} must hold TopicPartition(topic, partition), not {tp!r}")
        out.append(TopicPartition(tp[0], tp[1]))
    return out


def check_timeout(timeout_ms: Any, default: int) -> int:
    """aiokafka's rule: a missing (or zero) broker-side timeout is the request timeout."""
    if timeout_ms is not None and (not isinstance(timeout_ms, int)
                                   or isinstance(timeout_ms, bool) or timeout_ms < 0):
        raise TypeError(f"timeout_ms must be a non-negative int or None, not {timeout_ms!r}")
    return timeout_ms or default


def raise_first(errors: Iterable[BrokerResponseError | None]
                | Mapping[Any, BrokerResponseError | None]) -> None:
    """Raise the first error given (values, for a mapping), if any."""
    values = errors.values() if isinstance(errors, Mapping) else errors
    for error in values:
        if error is not None:
            raise error


def unknown_partition(tp: TopicPartition, topic_error: int | None) -> KafkaError:
    """Why ``tp`` has no leader in fresh metadata: its topic's error, else unknown."""
    if topic_error:
        return for_code(topic_error)(f"{tp}: the metadata reports an error for its topic")
    return UnknownTopicOrPartitionError(f"{tp} is not in the cluster metadata")
