"""``ConsumerConfig``: every consumer setting, validated once, frozen.

The names and defaults are aiokafka's ``AIOKafkaConsumer`` keywords (aiokafka-api.md §1.3);
every rule that ties two settings together lives in :meth:`ConsumerConfig._cross_field_rules`
with the reason it exists (the TLS/SASL ones every client shares are ``ClientConfig``'s).  The facade keeps aiokafka's ``loop`` argument to itself (it
only warns); everything else it passes here.

Construct with keywords: an unknown keyword raises ``TypeError`` naming it, a bad value
raises :class:`ConsumerConfigError` (a ``ValueError``) with aiokafka's message where aiokafka
has one.  Deliberate differences from aiokafka:

- an unknown ``auto_offset_reset`` is an error here; aiokafka logs a warning and silently
  behaves as ``"none"``, which turns a typo into ``NoOffsetForPartitionError`` much later;
- a bad ``isolation_level`` fails at construction rather than at ``start()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from streamclient._version import __version__
from streamclient.cluster.client_config import SASL_MECHANISMS, ClientConfig
from streamclient.consumer.assignors import (
    ConsumerPartitionAssignor,
    RebalanceProtocol,
    RoundRobinPartitionAssignor,
    resolve_assignors,
    select_rebalance_protocol,
)
from streamclient.errors import KafkaConfigurationError

__all__ = [
    "ISOLATION_LEVELS",
    "OFFSET_RESET_POLICIES",
    "ConsumerConfig",
    "ConsumerConfigError",
]

#: aiokafka's names → the FetchRequest / ListOffsets ``isolation_level`` byte.
ISOLATION_LEVELS: dict[str, int] = {"read_uncommitted": 0, "read_committed": 1}
OFFSET_RESET_POLICIES = ("earliest", "latest", "none")


class ConsumerConfigError(KafkaConfigurationError, ValueError):
    """A consumer setting (or a combination of settings) is invalid.

    A ``ValueError`` too, because aiokafka raises ``ValueError`` for the same mistakes.
    """

    def __str__(self) -> str:
        return ValueError.__str__(self)


class ConsumerConfig(ClientConfig):
    """The consumer's settings.  Immutable; read by the fetcher, coordinator and facades."""

    _error: ClassVar[type[KafkaConfigurationError]] = ConsumerConfigError
    _keyword_owner: ClassVar[str] = "consumer"
    # not aiokafka's wording: this one names the choices
    _sasl_mechanism_message: ClassVar[str] = (
        f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}"
    )

    # --- connection (aiokafka's client keywords; the first is ClientConfig's) --------
    # aiokafka sends "aiokafka-<version>"; we name the library actually talking
    client_id: str = f"streamclient-{__version__}"
    metadata_max_age_ms: int = Field(300_000, ge=0)
    request_timeout_ms: int = Field(40_000, gt=0)
    retry_backoff_ms: int = Field(100, ge=0)
    api_version: str | None = None  # deprecated by aiokafka 0.13: accepted, ignored
    security_protocol: str = "PLAINTEXT"
    ssl_context: Any = None
    connections_max_idle_ms: int | None = 540_000
    sasl_mechanism: str = "PLAIN"
    sasl_plain_password: str | None = None
    sasl_plain_username: str | None = None
    sasl_kerberos_service_name: str = "kafka"
    sasl_kerberos_domain_name: str | None = None
    sasl_oauth_token_provider: Any = None
    client_rack: str | None = None

    # --- group --------------------------------------------------------------------------
    group_id: str | None = None
    group_instance_id: str | None = None
    enable_auto_commit: bool = True
    auto_commit_interval_ms: int = Field(5_000, gt=0)
    partition_assignment_strategy: tuple[Any, ...] = (RoundRobinPartitionAssignor,)
    max_poll_interval_ms: int = Field(300_000, gt=0)
    rebalance_timeout_ms: int | None = Field(None, gt=0)  # None: session_timeout_ms
    session_timeout_ms: int = Field(10_000, gt=0)
    heartbeat_interval_ms: int = Field(3_000, gt=0)
    exclude_internal_topics: bool = True

    # --- fetching -----------------------------------------------------------------------
    key_deserializer: Callable[[bytes | None], Any] | None = None
    value_deserializer: Callable[[bytes | None], Any] | None = None
    fetch_max_wait_ms: int = Field(500, ge=0)
    fetch_max_bytes: int = Field(52_428_800, gt=0)
    fetch_min_bytes: int = Field(1, ge=0)
    max_partition_fetch_bytes: int = Field(1_048_576, gt=0)
    auto_offset_reset: Literal["earliest", "latest", "none"] = "latest"
    check_crcs: bool = True
    consumer_timeout_ms: int = Field(200, ge=0)
    max_poll_records: int | None = None
    isolation_level: Literal["read_uncommitted", "read_committed"] = "read_uncommitted"

    @classmethod
    def _normalise(cls, data: dict[str, Any]) -> dict[str, Any]:
        """aiokafka's spellings, checked with aiokafka's messages before pydantic sees them."""
        out = dict(data)
        if "max_poll_records" in out:
            value = out["max_poll_records"]
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ConsumerConfigError("`max_poll_records` should be positive Integer")
        if "isolation_level" in out and out["isolation_level"] not in ISOLATION_LEVELS:
            raise ConsumerConfigError(f"Incorrect isolation level {out['isolation_level']}")
        if "auto_offset_reset" in out:
            value = out["auto_offset_reset"]
            policy = value.lower() if isinstance(value, str) else value
            if policy not in OFFSET_RESET_POLICIES:
                raise ConsumerConfigError(
                    f"auto_offset_reset must be 'earliest', 'latest' or 'none', not {value!r}"
                )
            out["auto_offset_reset"] = policy
        if "partition_assignment_strategy" in out:
            # pydantic would otherwise check the declared element type before our validator
            out["partition_assignment_strategy"] = _as_tuple(
                out["partition_assignment_strategy"]
            )
        return out

    # --- validators -------------------------------------------------------------------

    @field_validator("partition_assignment_strategy", mode="before")
    @classmethod
    def _check_strategy(cls, value: Any) -> tuple[Any, ...]:
        # aiokafka takes a tuple or list of classes; one class alone is a common slip
        if isinstance(value, (list, tuple)):
            specs = tuple(value)
        else:
            specs = (value,)
        try:
            return tuple(resolve_assignors(specs))
        except KafkaConfigurationError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("key_deserializer", "value_deserializer", mode="before")
    @classmethod
    def _check_callable(cls, value: Any) -> Any:
        if value is not None and not callable(value):
            raise ValueError(f"a deserializer must be callable or None, not {value!r}")
        return value

    def _cross_field_rules(self, explicit: set[str]) -> None:
        """Every rule between consumer settings, in one place (the TLS and SASL ones,
        which every client has, are ClientConfig's).  ``explicit``: keys the user set."""
        fix: dict[str, Any] = {}

        # The coordinator declares a member dead after session_timeout_ms without a
        # heartbeat; a heartbeat interval at or above it lets every session lapse between
        # two beats.  (Java refuses the same; a third of the session is the usual choice.)
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConsumerConfigError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be lower than "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )

        # aiokafka decouples the rebalance timeout from max_poll_interval_ms and defaults
        # it to the session timeout; the Java client uses max_poll_interval_ms.
        if self.rebalance_timeout_ms is None:
            fix["rebalance_timeout_ms"] = self.session_timeout_ms

        # A static member is identified within a group; without a group it means nothing,
        # and an empty id would be taken by the coordinator as "dynamic member".
        if self.group_instance_id is not None:
            if self.group_id is None:
                raise ConsumerConfigError("group_instance_id requires group_id")
            if not self.group_instance_id:
                raise ConsumerConfigError("group_instance_id must not be empty")
        if self.group_id == "":
            raise ConsumerConfigError("group_id must be None or a non-empty string")

        # With no group there is nowhere to commit to; aiokafka ignores the flag then
        # (its default is True), so we turn it off rather than fail a default setting.
        if self.group_id is None and self.enable_auto_commit:
            fix["enable_auto_commit"] = False

        # A broker answers a fetch once it holds fetch_min_bytes, but never sends more
        # than fetch_max_bytes: a minimum above the maximum makes every fetch wait out
        # fetch_max_wait_ms.
        if self.fetch_min_bytes > self.fetch_max_bytes:
            raise ConsumerConfigError(
                f"fetch_min_bytes ({self.fetch_min_bytes}) must not exceed "
                f"fetch_max_bytes ({self.fetch_max_bytes})"
            )

        # A fetch may legitimately park on the broker for fetch_max_wait_ms; a request
        # timeout at or below that fails every idle long-poll as a timeout.
        if self.request_timeout_ms <= self.fetch_max_wait_ms:
            raise ConsumerConfigError(
                f"request_timeout_ms ({self.request_timeout_ms}) must be greater than "
                f"fetch_max_wait_ms ({self.fetch_max_wait_ms})"
            )

        for name, value in fix.items():
            object.__setattr__(self, name, value)

    # --- derived ----------------------------------------------------------------------

    @property
    def assignors(self) -> tuple[ConsumerPartitionAssignor, ...]:
        """The resolved assignor instances, in preference order (one set per config)."""
        return self.partition_assignment_strategy

    @property
    def rebalance_protocol(self) -> RebalanceProtocol:
        """EAGER or COOPERATIVE: the highest protocol every assignor supports (Java's rule)."""
        return select_rebalance_protocol(list(self.assignors))

    @property
    def isolation_level_id(self) -> int:
        """The wire value: 0 read_uncommitted, 1 read_committed."""
        return ISOLATION_LEVELS[self.isolation_level]

    @property
    def effective_rebalance_timeout_ms(self) -> int:
        value = self.rebalance_timeout_ms
        assert value is not None  # filled in by _cross_field_rules
        return value


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value

