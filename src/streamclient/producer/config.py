"""``ProducerConfig``: every producer setting, validated once, frozen.

The names are aiokafka's ``AIOKafkaProducer`` keywords, plus the Java client's knobs that
aiokafka lacks (``buffer_memory``, ``max_block_ms``, ``delivery_timeout_ms``, ``retries``,
…) under their snake-case Java names.  Every rule that ties two settings together lives
in :meth:`ProducerConfig._cross_field_rules`, each with the reason it exists, except the
TLS/SASL ones every client shares, which :class:`~streamclient.cluster.client_config.ClientConfig`
checks first.

Defaults follow the current Kafka client where aiokafka's older defaults would weaken
delivery guarantees (``acks="all"``, ``enable_idempotence=True``, as KIP-679 made them in
Kafka 3.0); ``docs/producer.md`` lists every difference from aiokafka.

Construct with keywords (``ProducerConfig(acks=1)`` or :meth:`ProducerConfig.from_kwargs`):
an unknown keyword raises ``TypeError`` naming it, a bad value raises
:class:`ProducerConfigError` (a ``ValueError``) carrying aiokafka's message where aiokafka
has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

# SASL_MECHANISMS and SECURITY_PROTOCOLS were defined here: re-exported under their names
from streamclient.cluster.client_config import SASL_MECHANISMS as SASL_MECHANISMS
from streamclient.cluster.client_config import SECURITY_PROTOCOLS as SECURITY_PROTOCOLS
from streamclient.cluster.client_config import ClientConfig
from streamclient.errors import KafkaConfigurationError
from streamclient.producer.partitioner import DefaultPartitioner, Partitioner, as_partitioner
from streamclient.protocol.records import Compression

__all__ = [
    "COMPRESSION_LEVELS",
    "COMPRESSION_TYPES",
    "INT32_MAX",
    "ProducerConfig",
    "ProducerConfigError",
]

INT32_MAX = 2**31 - 1

COMPRESSION_TYPES: dict[str | None, Compression] = {
    None: Compression.NONE,
    "gzip": Compression.GZIP,
    "snappy": Compression.SNAPPY,
    "lz4": Compression.LZ4,
    "zstd": Compression.ZSTD,
}

# (lowest, highest) level per codec, as the bindings accept them; Java has the same
# ranges for gzip and zstd, and lz4's frame format tops out at 16.
COMPRESSION_LEVELS: dict[str, tuple[int, int]] = {
    "gzip": (1, 9),
    "lz4": (0, 16),
    "zstd": (-131072, 22),
}


class ProducerConfigError(KafkaConfigurationError, ValueError):
    """A producer setting (or a combination of settings) is invalid.

    A ``ValueError`` too, so code written against aiokafka (which raises ``ValueError``)
    keeps catching it.  ``str()`` is the bare message, as aiokafka's ``ValueError`` is.
    """

    def __str__(self) -> str:
        return ValueError.__str__(self)


class ProducerConfig(ClientConfig):
    """The producer's settings.  Immutable; read by the accumulator, sender and facades."""

    _error: ClassVar[type[KafkaConfigurationError]] = ProducerConfigError
    _keyword_owner: ClassVar[str] = "producer"

    # --- connection (aiokafka's client keywords; the first is ClientConfig's) --------
    client_id: str | None = None
    metadata_max_age_ms: int = Field(300_000, ge=0)
    request_timeout_ms: int = Field(40_000, gt=0)
    api_version: str | None = None  # aiokafka deprecated it: accepted, ignored
    security_protocol: str = "PLAINTEXT"
    ssl_context: Any = None
    connections_max_idle_ms: int | None = 540_000
    sasl_mechanism: str = "PLAIN"
    sasl_plain_password: str | None = None
    sasl_plain_username: str | None = None
    sasl_kerberos_service_name: str = "kafka"
    sasl_kerberos_domain_name: str | None = None
    sasl_oauth_token_provider: Any = None

    # --- records ------------------------------------------------------------------------
    # Kafka's default since 3.0 (KIP-679); aiokafka defaults to 1.  Normalised to -1.
    acks: Literal[0, 1, -1] = -1
    key_serializer: Callable[[Any], bytes | None] | None = None
    value_serializer: Callable[[Any], bytes | None] | None = None
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    # Java's compression.<codec>.level, one knob for the codec in use (None: codec default)
    compression_level: int | None = None
    max_batch_size: int = Field(16_384, gt=0)  # Java's batch.size
    partitioner: Any = Field(default_factory=DefaultPartitioner)
    max_request_size: int = Field(1_048_576, gt=0)
    # aiokafka's 0 rather than Kafka 4.0's 5 (KIP-1030).  On an event loop, send() only
    # appends; the sender runs when the application yields, so records sent in a burst
    # share batches anyway; a 5 ms linger would instead add 5 ms to every
    # ``await send_and_wait()`` in the one-at-a-time loops aiokafka users write.
    linger_ms: int = Field(0, ge=0)
    retry_backoff_ms: int = Field(100, ge=0)
    retry_backoff_max_ms: int = Field(1_000, ge=0)

    # --- Java's knobs aiokafka lacks --------------------------------------------------
    buffer_memory: int = Field(32 * 1024 * 1024, gt=0)
    max_block_ms: int = Field(60_000, ge=0)
    delivery_timeout_ms: int | None = Field(None, gt=0)  # None: 120000 (see rules)
    max_in_flight_requests_per_connection: int = Field(5, ge=1)
    retries: int = Field(INT32_MAX, ge=0)
    partitioner_adaptive_partitioning_enable: bool = True
    partitioner_availability_timeout_ms: int = Field(0, ge=0)
    partitioner_ignore_keys: bool = False

    # --- idempotence and transactions ---------------------------------------------------
    # None means "not set": True unless another setting rules it out (see the rules).
    enable_idempotence: bool | None = None
    transactional_id: str | None = None
    transaction_timeout_ms: int = Field(60_000, gt=0)

    DEFAULT_DELIVERY_TIMEOUT_MS: ClassVar[int] = 120_000

    @classmethod
    def _from_kwargs_synonyms(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``from_kwargs`` also takes Java's ``batch_size`` for ``max_batch_size``."""
        if "batch_size" in kwargs:
            if "max_batch_size" in kwargs and kwargs["max_batch_size"] != kwargs["batch_size"]:
                raise ProducerConfigError("batch_size and max_batch_size disagree; pass one")
            kwargs["max_batch_size"] = kwargs.pop("batch_size")
        return kwargs

    @classmethod
    def _normalise(cls, data: dict[str, Any]) -> dict[str, Any]:
        """aiokafka's spellings that the typed fields would reject, checked with its
        messages."""
        out = dict(data)
        if "acks" in out:
            acks = out["acks"]
            if acks == "all":
                out["acks"] = -1
            elif isinstance(acks, bool) or acks not in (0, 1, -1):
                raise ProducerConfigError("Invalid ACKS parameter")
        if "compression_type" in out and out["compression_type"] not in COMPRESSION_TYPES:
            raise ProducerConfigError("Invalid compression type!")
        return out

    # --- validators -------------------------------------------------------------------

    @field_validator("partitioner")
    @classmethod
    def _check_partitioner(cls, value: Any) -> Partitioner:
        try:
            return as_partitioner(value)
        except Exception as exc:
            raise ValueError(str(exc)) from None

    def _cross_field_rules(self, explicit: set[str]) -> None:
        """Every rule between producer settings, in one place (the TLS and SASL ones,
        which every client has, are ClientConfig's).  ``explicit``: keys the user set."""
        fix: dict[str, Any] = {}

        # A level only means something for the codec that reads it.
        if self.compression_level is not None:
            bounds = COMPRESSION_LEVELS.get(self.compression_type or "")
            if bounds is None:
                raise ProducerConfigError(
                    f"compression_level needs compression_type gzip, lz4 or zstd, "
                    f"not {self.compression_type!r}"
                )
            low, high = bounds
            if not low <= self.compression_level <= high:
                raise ProducerConfigError(
                    f"compression_level {self.compression_level} is outside "
                    f"{low}..{high} for {self.compression_type}"
                )

        # A batch that can never fit in the buffer would block send() forever.
        if self.max_batch_size > self.buffer_memory:
            raise ProducerConfigError(
                f"max_batch_size ({self.max_batch_size}) must not exceed "
                f"buffer_memory ({self.buffer_memory})"
            )
        if self.retry_backoff_max_ms < self.retry_backoff_ms and (
            "retry_backoff_max_ms" in explicit
        ):
            # Java treats max < initial as a constant backoff of max; say so rather than
            # surprise whoever raised retry_backoff_ms alone.
            raise ProducerConfigError(
                f"retry_backoff_max_ms ({self.retry_backoff_max_ms}) must be >= "
                f"retry_backoff_ms ({self.retry_backoff_ms})"
            )

        # A transaction spans partitions only through one producer id: a transactional
        # producer is idempotent by definition.  Java refuses an explicit False; aiokafka
        # overrides it silently, which hides a contradiction in the caller's settings.
        if self.transactional_id is not None:
            if self.enable_idempotence is False:
                raise ProducerConfigError(
                    "transactional_id requires enable_idempotence (it cannot be False)"
                )
            if self.transactional_id == "":
                raise ProducerConfigError("transactional_id must not be empty")

        # Idempotence needs (1) acks=all, or a leader change loses acknowledged records
        # and the sequence the broker remembers; (2) retries, since a retry is what it
        # de-duplicates; (3) at most 5 requests in flight, the number of batches per
        # partition the broker keeps sequence metadata for.  Java's rule: when the user
        # asked for idempotence (or a transaction), a conflict is an error; when it is
        # just the default, the conflicting setting wins and idempotence is turned off.
        conflicts = []
        if self.acks != -1:
            conflicts.append(f"acks={_acks_repr(self.acks)}")
        if self.retries == 0:
            conflicts.append("retries=0")
        if self.max_in_flight_requests_per_connection > 5:
            conflicts.append(
                "max_in_flight_requests_per_connection="
                f"{self.max_in_flight_requests_per_connection}"
            )
        asked = self.enable_idempotence is True or self.transactional_id is not None
        if conflicts and asked:
            if self.acks != -1:
                # aiokafka's wording for its one rule
                raise ProducerConfigError(
                    f"acks={_acks_repr(self.acks)} not supported if enable_idempotence=True"
                )
            raise ProducerConfigError(
                f"enable_idempotence=True cannot be used with {', '.join(conflicts)}"
            )
        if self.enable_idempotence is None:
            fix["enable_idempotence"] = not conflicts

        # A batch must be allowed to wait its linger and then one whole request before
        # it counts as undeliverable; Java refuses an explicit shorter timeout and
        # stretches the default.
        floor = self.linger_ms + self.request_timeout_ms
        if self.delivery_timeout_ms is None:
            fix["delivery_timeout_ms"] = max(self.DEFAULT_DELIVERY_TIMEOUT_MS, floor)
        elif self.delivery_timeout_ms < floor:
            raise ProducerConfigError(
                f"delivery_timeout_ms ({self.delivery_timeout_ms}) must be >= linger_ms + "
                f"request_timeout_ms ({self.linger_ms} + {self.request_timeout_ms})"
            )

        for name, value in fix.items():
            object.__setattr__(self, name, value)

    # --- derived ----------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        """Java's name for :attr:`max_batch_size`."""
        return self.max_batch_size

    @property
    def compression(self) -> Compression:
        return COMPRESSION_TYPES[self.compression_type]

    @property
    def idempotent(self) -> bool:
        return bool(self.enable_idempotence)

    @property
    def transactional(self) -> bool:
        return self.transactional_id is not None

    @property
    def delivery_timeout(self) -> int:
        """``delivery_timeout_ms`` as an int (it is always set after construction)."""
        value = self.delivery_timeout_ms
        assert value is not None  # filled in by _cross_field_rules
        return value


def _acks_repr(acks: int) -> str:
    return "all" if acks == -1 else str(acks)

