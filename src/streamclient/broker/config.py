"""Broker and topic configuration: Kafka's names, types, defaults and validation.

Topic configs are stored as the strings a client sent (only the ones set explicitly);
:func:`effective_topic_configs` fills in the defaults.  Validation raises
``InvalidConfigurationError`` (INVALID_CONFIG, error 40) with a message naming the key,
which the CreateTopics/AlterConfigs handlers pass through as the error message.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamclient.errors import for_code

__all__ = [
    "TOPIC_CONFIG_DEFS",
    "BrokerConfig",
    "ConfigDef",
    "ConfigSource",
    "ConfigType",
    "InvalidConfigError",
    "effective_topic_configs",
    "validate_topic_configs",
]

InvalidConfigError = for_code(40)  # INVALID_CONFIG

_LONG_MAX = (1 << 63) - 1
_INT_MAX = (1 << 31) - 1
_WEEK_MS = 7 * 24 * 3600 * 1000


class ConfigType(enum.IntEnum):
    """DescribeConfigs v3+ ``config_type`` (Kafka's ``ConfigEntry.ConfigType``)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(enum.IntEnum):
    """DescribeConfigs v1+ ``config_source``."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


@dataclass(frozen=True)
class ConfigDef:
    name: str
    type: ConfigType
    default: str | None
    doc: str
    # the broker-level config that supplies the default (Kafka's "synonym")
    broker_synonym: str | None = None
    minimum: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False

    def validate(self, value: str | None) -> None:
        """Raise InvalidConfigError unless ``value`` is acceptable for this config."""
        if value is None:
            raise InvalidConfigError(f"{self.name}: a null value is not allowed")
        checker = _CHECKERS[self.type]
        checker(self, value)


def _check_int(d: ConfigDef, value: str, hi: int) -> None:
    try:
        number = int(value.strip())
    except ValueError:
        raise InvalidConfigError(f"{d.name}={value!r} is not an integer") from None
    if not -hi - 1 <= number <= hi:
        raise InvalidConfigError(f"{d.name}={value!r} is out of range")
    if d.minimum is not None and number < d.minimum:
        raise InvalidConfigError(f"{d.name}={number} is below its minimum {d.minimum:g}")


def _check_double(d: ConfigDef, value: str) -> None:
    try:
        number = float(value)
    except ValueError:
        raise InvalidConfigError(f"{d.name}={value!r} is not a number") from None
    if d.minimum is not None and number < d.minimum:
        raise InvalidConfigError(f"{d.name}={number} is below its minimum {d.minimum:g}")


def _check_bool(d: ConfigDef, value: str) -> None:
    if value.strip().lower() not in ("true", "false"):
        raise InvalidConfigError(f"{d.name}={value!r}: expected true or false")


def _check_choices(d: ConfigDef, value: str) -> None:
    if d.type is ConfigType.LIST:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items:
            raise InvalidConfigError(f"{d.name}: the list is empty")
    else:
        items = [value]
    if d.choices is not None:
        for item in items:
            if item not in d.choices:
                raise InvalidConfigError(
                    f"{d.name}={value!r}: {item!r} is not one of {', '.join(d.choices)}")


_CHECKERS: dict[ConfigType, Callable[[ConfigDef, str], None]] = {
    ConfigType.INT: lambda d, v: _check_int(d, v, _INT_MAX),
    ConfigType.SHORT: lambda d, v: _check_int(d, v, (1 << 15) - 1),
    ConfigType.LONG: lambda d, v: _check_int(d, v, _LONG_MAX),
    ConfigType.DOUBLE: _check_double,
    ConfigType.BOOLEAN: _check_bool,
    ConfigType.STRING: _check_choices,
    ConfigType.LIST: _check_choices,
    ConfigType.CLASS: _check_choices,
    ConfigType.PASSWORD: _check_choices,
    ConfigType.UNKNOWN: _check_choices,
}


def _d(name: str, type_: ConfigType, default: str | None, doc: str, **kw: Any) -> ConfigDef:
    return ConfigDef(name, type_, default, doc, **kw)


_T = ConfigType
# Kafka 4's topic-level configs with their defaults; the embedded log acts on the
# retention, segment, size, timestamp and min.insync.replicas ones and stores the rest.
TOPIC_CONFIG_DEFS: dict[str, ConfigDef] = {d.name: d for d in (
    _d("cleanup.policy", _T.LIST, "delete", "Retention policy for old segments.",
       broker_synonym="log.cleanup.policy", choices=("delete", "compact")),
    _d("compression.type", _T.STRING, "producer", "Final compression type of the topic.",
       broker_synonym="compression.type",
       choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
    _d("delete.retention.ms", _T.LONG, "86400000", "How long delete tombstones are kept.",
       broker_synonym="log.cleaner.delete.retention.ms", minimum=0),
    _d("file.delete.delay.ms", _T.LONG, "60000", "Wait before deleting a file.",
       broker_synonym="log.segment.delete.delay.ms", minimum=0),
    _d("flush.messages", _T.LONG, str(_LONG_MAX), "Messages between forced fsyncs.",
       broker_synonym="log.flush.interval.messages", minimum=1),
    _d("flush.ms", _T.LONG, str(_LONG_MAX), "Time between forced fsyncs.",
       broker_synonym="log.flush.interval.ms", minimum=0),
    _d("index.interval.bytes", _T.INT, "4096", "Bytes between offset index entries.",
       broker_synonym="log.index.interval.bytes", minimum=0),
    _d("max.compaction.lag.ms", _T.LONG, str(_LONG_MAX), "Max time a record stays uncompacted.",
       broker_synonym="log.cleaner.max.compaction.lag.ms", minimum=1),
    _d("max.message.bytes", _T.INT, "1048588", "Largest record batch size allowed.",
       broker_synonym="message.max.bytes", minimum=0),
    _d("message.timestamp.after.max.ms", _T.LONG, "3600000",
       "How far a record's timestamp may be ahead of the broker's clock.",
       broker_synonym="log.message.timestamp.after.max.ms", minimum=0),
    _d("message.timestamp.before.max.ms", _T.LONG, str(_LONG_MAX),
       "How far a record's timestamp may be behind the broker's clock.",
       broker_synonym="log.message.timestamp.before.max.ms", minimum=0),
    _d("message.timestamp.type", _T.STRING, "CreateTime", "CreateTime or LogAppendTime.",
       broker_synonym="log.message.timestamp.type", choices=("CreateTime", "LogAppendTime")),
    _d("min.cleanable.dirty.ratio", _T.DOUBLE, "0.5", "Dirty ratio that triggers compaction.",
       broker_synonym="log.cleaner.min.cleanable.ratio", minimum=0),
    _d("min.compaction.lag.ms", _T.LONG, "0", "Min time a record stays uncompacted.",
       broker_synonym="log.cleaner.min.compaction.lag.ms", minimum=0),
    _d("min.insync.replicas", _T.INT, "1", "In-sync replicas needed for acks=all.",
       broker_synonym="min.insync.replicas", minimum=1),
    _d("preallocate", _T.BOOLEAN, "false", "Preallocate segment files.",
       broker_synonym="log.preallocate"),
    _d("retention.bytes", _T.LONG, "-1", "Max size of a partition before old data goes.",
       broker_synonym="log.retention.bytes"),
    _d("retention.ms", _T.LONG, str(_WEEK_MS), "Max age of data before it goes.",
       broker_synonym="log.retention.ms", minimum=-1),
    _d("segment.bytes", _T.INT, str(1 << 30), "Segment file size.",
       broker_synonym="log.segment.bytes", minimum=1),
    _d("segment.index.bytes", _T.INT, str(10 << 20), "Offset index file size.",
       broker_synonym="log.index.size.max.bytes", minimum=4),
    _d("segment.jitter.ms", _T.LONG, "0", "Random jitter on segment rolling.",
       broker_synonym="log.roll.jitter.ms", minimum=0),
    _d("segment.ms", _T.LONG, str(_WEEK_MS), "Time after which a segment rolls.",
       broker_synonym="log.roll.ms", minimum=1),
    _d("unclean.leader.election.enable", _T.BOOLEAN, "false",
       "Whether an out-of-sync replica may become leader.",
       broker_synonym="unclean.leader.election.enable"),
)}


def validate_topic_configs(configs: Mapping[str, str | None]) -> None:
    """Raise InvalidConfigError for an unknown key or a bad value."""
    for name, value in configs.items():
        definition = TOPIC_CONFIG_DEFS.get(name)
        if definition is None:
            raise InvalidConfigError(f"unknown topic config {name!r}")
        definition.validate(value)
    # the log turns some of them into its own settings: let it veto too
    from streamclient.broker.log import LogConfig, LogConfigError

    try:
        LogConfig.from_configs(dict(configs))
    except LogConfigError as exc:
        raise InvalidConfigError(str(exc.args[0]) if exc.args else str(exc)) from None


def effective_topic_configs(overrides: Mapping[str, str]) -> dict[str, str | None]:
    """Every topic config: the overrides, and Kafka's defaults for the rest."""
    result: dict[str, str | None] = {name: d.default for name, d in TOPIC_CONFIG_DEFS.items()}
    result.update(overrides)
    return result


@dataclass(frozen=True)
class BrokerConfig:
    """Cluster-wide broker settings (the same on every node of an EmbeddedCluster)."""

    auto_create_topics_enable: bool = True
    num_partitions: int = 1
    default_replication_factor: int = 1
    # Kafka's defaults are 50 partitions for both internal topics; they are cheap here
    # (an empty in-memory log each) and the same count puts a group id on the same
    # partition as a stock broker would.
    offsets_topic_num_partitions: int = 50
    offsets_topic_replication_factor: int = 3
    transaction_state_log_num_partitions: int = 50
    transaction_state_log_replication_factor: int = 3
    transaction_state_log_min_isr: int = 2
    delete_topic_enable: bool = True
    message_max_bytes: int = 1048588
    socket_request_max_bytes: int = 100 * 1024 * 1024
    min_insync_replicas: int = 1
    group_initial_rebalance_delay_ms: int = 3000
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1800000
    transaction_max_timeout_ms: int = 900000
    transactional_id_expiration_ms: int = 604800000
    offsets_retention_minutes: int = 10080
    # how often a disk log dir runs retention and compaction (Kafka's default: 5 minutes)
    log_retention_check_interval_ms: int = 300000
    # topic configs applied to every new topic before its own overrides
    topic_defaults: Mapping[str, str] = field(default_factory=dict)
    # SASL mechanisms every listener requires (`sasl.enabled.mechanisms`): `PLAIN`,
    # `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER` (unsecured JWS tokens), as a
    # sequence or a comma-separated string; empty: no SASL
    sasl_enabled_mechanisms: Sequence[str] = ()
    # users at start, name -> password: PLAIN checks the password, and each gets salted
    # SCRAM-SHA-256 and SCRAM-SHA-512 credentials (AlterUserScramCredentials adds more)
    sasl_users: Mapping[str, str] = field(default_factory=dict)
    # iterations of the SCRAM credentials made from `sasl_users` (Kafka's minimum 4096)
    scram_iterations: int = 4096
    # KIP-368 `connections.max.reauth.ms`: the SASL session lifetime SaslAuthenticate v1+
    # reports; a request after it ends closes the connection unless the client
    # re-authenticates; 0: sessions do not expire
    connections_max_reauth_ms: int = 0
    ssl_context: ssl.SSLContext | None = None
    """Server-side TLS on every listener: `SSL`, or `SASL_SSL` with SASL mechanisms; a
    server context holding the broker's certificate (`load_cert_chain`); `None`: no
    TLS."""

    def __post_init__(self) -> None:
        for name in ("num_partitions", "default_replication_factor",
                     "offsets_topic_num_partitions", "offsets_topic_replication_factor",
                     "transaction_state_log_num_partitions",
                     "transaction_state_log_replication_factor"):
            if getattr(self, name) < 1:
                raise InvalidConfigError(f"{name.replace('_', '.')} must be at least 1")
        if self.socket_request_max_bytes < 1024:
            raise InvalidConfigError("socket.request.max.bytes must be at least 1024")
        validate_topic_configs(self.topic_defaults)
        self._check_security()

    def _check_security(self) -> None:
        from streamclient.broker.sasl import MIN_SCRAM_ITERATIONS, SUPPORTED_MECHANISMS

        mechanisms = self.sasl_enabled_mechanisms
        if isinstance(mechanisms, str):
            mechanisms = [m.strip() for m in mechanisms.split(",") if m.strip()]
        mechanisms = tuple(str(m).strip().upper() for m in mechanisms)
        for mechanism in mechanisms:
            if mechanism not in SUPPORTED_MECHANISMS:
                raise InvalidConfigError(
                    f"sasl.enabled.mechanisms: {mechanism!r} is not one of "
                    f"{', '.join(SUPPORTED_MECHANISMS)}")
        if len(set(mechanisms)) != len(mechanisms):
            raise InvalidConfigError("sasl.enabled.mechanisms lists a mechanism twice")
        # frozen: normalised once here, so every reader sees a tuple of names
        object.__setattr__(self, "sasl_enabled_mechanisms", mechanisms)
        for name, password in self.sasl_users.items():
            if not isinstance(name, str) or not name or not isinstance(password, str):
                raise InvalidConfigError(
                    f"sasl_users: {name!r} needs a non-empty name and a string password")
        if self.sasl_users and not mechanisms:
            raise InvalidConfigError("sasl_users is set but sasl_enabled_mechanisms is "
                                     "empty: the listeners would not ask for them")
        if self.scram_iterations < MIN_SCRAM_ITERATIONS:
            raise InvalidConfigError(
                f"scram_iterations must be at least {MIN_SCRAM_ITERATIONS}")
        if self.connections_max_reauth_ms < 0:
            raise InvalidConfigError("connections.max.reauth.ms must be at least 0")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise InvalidConfigError("ssl_context must be an ssl.SSLContext")

    @property
    def security_protocol(self) -> str:
        """The listeners' protocol as Kafka names it."""
        sasl = bool(self.sasl_enabled_mechanisms)
        if self.ssl_context is not None:
            return "SASL_SSL" if sasl else "SSL"
        return "SASL_PLAINTEXT" if sasl else "PLAINTEXT"

    def kafka_configs(self, node_id: int, listener: str) -> dict[str, tuple[str, ConfigType]]:
        """The broker resource as DescribeConfigs shows it: name -> (value, type)."""
        b = _bool
        values: dict[str, tuple[str, ConfigType]] = {
            "broker.id": (str(node_id), _T.INT),
            "node.id": (str(node_id), _T.INT),
            "listeners": (f"{self.security_protocol}://{listener}", _T.STRING),
            "advertised.listeners": (f"{self.security_protocol}://{listener}", _T.STRING),
            "sasl.enabled.mechanisms": (",".join(self.sasl_enabled_mechanisms), _T.LIST),
            "connections.max.reauth.ms": (str(self.connections_max_reauth_ms), _T.LONG),
            "auto.create.topics.enable": (b(self.auto_create_topics_enable), _T.BOOLEAN),
            "delete.topic.enable": (b(self.delete_topic_enable), _T.BOOLEAN),
            "num.partitions": (str(self.num_partitions), _T.INT),
            "default.replication.factor": (str(self.default_replication_factor), _T.INT),
            "offsets.topic.num.partitions": (str(self.offsets_topic_num_partitions), _T.INT),
            "offsets.topic.replication.factor":
                (str(self.offsets_topic_replication_factor), _T.SHORT),
            "transaction.state.log.num.partitions":
                (str(self.transaction_state_log_num_partitions), _T.INT),
            "transaction.state.log.replication.factor":
                (str(self.transaction_state_log_replication_factor), _T.SHORT),
            "transaction.state.log.min.isr": (str(self.transaction_state_log_min_isr), _T.INT),
            "message.max.bytes": (str(self.message_max_bytes), _T.INT),
            "socket.request.max.bytes": (str(self.socket_request_max_bytes), _T.INT),
            "min.insync.replicas": (str(self.min_insync_replicas), _T.INT),
            "group.initial.rebalance.delay.ms":
                (str(self.group_initial_rebalance_delay_ms), _T.INT),
            "group.min.session.timeout.ms": (str(self.group_min_session_timeout_ms), _T.INT),
            "group.max.session.timeout.ms": (str(self.group_max_session_timeout_ms), _T.INT),
            "transaction.max.timeout.ms": (str(self.transaction_max_timeout_ms), _T.INT),
            "transactional.id.expiration.ms":
                (str(self.transactional_id_expiration_ms), _T.INT),
            "offsets.retention.minutes": (str(self.offsets_retention_minutes), _T.INT),
        }
        # the log.* defaults behind the topic configs
        for d in TOPIC_CONFIG_DEFS.values():
            if d.broker_synonym and d.broker_synonym not in values:
                value = self.topic_defaults.get(d.name, d.default)
                values[d.broker_synonym] = (value or "", d.type)
        return values


def _bool(value: bool) -> str:
    return "true" if value else "false"
