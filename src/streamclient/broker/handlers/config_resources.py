"""Config resources (topics, brokers) as DescribeConfigs/AlterConfigs see them.

Shared by the DescribeConfigs, AlterConfigs and IncrementalAlterConfigs handlers and by
CreateTopics v5+ (which echoes a new topic's configs).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from streamclient.broker.config import (
    TOPIC_CONFIG_DEFS,
    ConfigSource,
    ConfigType,
    InvalidConfigError,
)
from streamclient.broker.state import ClusterState
from streamclient.errors import BrokerResponseError, for_code

__all__ = [
    "AlterOp",
    "ConfigEntry",
    "ResourceType",
    "apply_incremental",
    "broker_entries",
    "error_of",
    "topic_entries",
]

InvalidRequestError = for_code(42)


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    TOPIC = 2
    GROUP = 3
    BROKER = 4
    BROKER_LOGGER = 8


class AlterOp(enum.IntEnum):
    """IncrementalAlterConfigs' ``config_operation`` (KIP-339)."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: ConfigSource
    type: ConfigType
    read_only: bool
    documentation: str | None
    # (name, value, source), most specific first, as Kafka lists synonyms
    synonyms: tuple[tuple[str, str | None, ConfigSource], ...]


def error_of(exc: BrokerResponseError) -> tuple[int, str]:
    """The error code and message a response carries for ``exc``."""
    message = str(exc.args[0]) if exc.args else exc.message
    return exc.errno, message


def topic_entries(state: ClusterState, name: str) -> list[ConfigEntry]:
    """Every config of topic ``name`` (UnknownTopic error if it does not exist)."""
    meta = state.topics.get(name)
    if meta is None:
        raise for_code(3)(f"topic {name!r} does not exist")
    entries = []
    for key, definition in TOPIC_CONFIG_DEFS.items():
        synonyms: list[tuple[str, str | None, ConfigSource]] = []
        if key in meta.configs:
            synonyms.append((key, meta.configs[key], ConfigSource.DYNAMIC_TOPIC_CONFIG))
        synonym = definition.broker_synonym
        if synonym is not None:
            if key in meta.base_configs:
                synonyms.append(
                    (synonym, meta.base_configs[key], ConfigSource.STATIC_BROKER_CONFIG))
            synonyms.append((synonym, definition.default, ConfigSource.DEFAULT_CONFIG))
        # the most specific synonym is where the value comes from
        _, value, source = synonyms[0] if synonyms else (key, definition.default,
                                                         ConfigSource.DEFAULT_CONFIG)
        entries.append(ConfigEntry(key, value, source, definition.type, False,
                                   definition.doc, tuple(synonyms)))
    return entries


def broker_entries(state: ClusterState, resource_name: str) -> list[ConfigEntry]:
    """The configs of broker ``resource_name`` ("" = the cluster-wide defaults)."""
    if resource_name == "":
        node_id = state.controller_id
    else:
        try:
            node_id = int(resource_name)
        except ValueError:
            raise InvalidRequestError(
                f"broker resource name {resource_name!r} is not a node id") from None
    node = state.nodes.get(node_id)
    if node is None:
        raise InvalidRequestError(f"there is no broker {resource_name!r}")
    return [
        ConfigEntry(key, value, ConfigSource.STATIC_BROKER_CONFIG, kind, True, None,
                    ((key, value, ConfigSource.STATIC_BROKER_CONFIG),))
        for key, (value, kind) in sorted(state.config.kafka_configs(node_id,
                                                                    node.address).items())
    ]


def apply_incremental(current: Mapping[str, str],
                      changes: list[tuple[str, int, str | None]]) -> dict[str, str]:
    """The topic's explicit configs after IncrementalAlterConfigs ``changes``.

    ``changes`` are ``(name, operation, value)``.  Raises InvalidConfigError or
    InvalidRequestError with Kafka's rules: one change per key, APPEND/SUBTRACT only on
    list configs, a value for every operation but DELETE.
    """
    result = dict(current)
    seen: set[str] = set()
    for name, operation, value in changes:
        if name in seen:
            raise InvalidRequestError(f"config {name!r} is changed twice in one request")
        seen.add(name)
        definition = TOPIC_CONFIG_DEFS.get(name)
        if definition is None:
            raise InvalidConfigError(f"unknown topic config {name!r}")
        try:
            op = AlterOp(operation)
        except ValueError:
            raise InvalidRequestError(f"unknown config operation {operation}") from None
        if op is AlterOp.DELETE:
            result.pop(name, None)
            continue
        if value is None:
            raise InvalidRequestError(f"{op.name} of {name!r} needs a value")
        if op is AlterOp.SET:
            result[name] = value
            continue
        if definition.type is not ConfigType.LIST:
            raise InvalidConfigError(f"{op.name} applies only to list configs, not {name!r}")
        items = [i.strip() for i in (result.get(name) or definition.default or "").split(",")
                 if i.strip()]
        given = [i.strip() for i in value.split(",") if i.strip()]
        if op is AlterOp.APPEND:
            items += [i for i in given if i not in items]
        else:
            items = [i for i in items if i not in given]
        result[name] = ",".join(items)
    return result
