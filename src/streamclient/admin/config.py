"""``AdminConfig``: the admin client's settings, validated once, frozen.

The names and defaults are aiokafka's ``AIOKafkaAdminClient`` keywords (aiokafka-api.md
§1.7) plus four of the Java admin's that aiokafka lacks (``retry_backoff_max_ms``,
``reconnect_backoff_ms``, ``reconnect_backoff_max_ms``, ``connect_timeout_ms``).  The facade
keeps aiokafka's ``loop`` argument to itself.  An unknown keyword raises ``TypeError``
naming it; a bad value raises :class:`AdminConfigError` (a ``ValueError``, as aiokafka's
checks are).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from streamclient._version import __version__
from streamclient.cluster.client_config import ClientConfig
from streamclient.cluster.config import ClusterConfig
from streamclient.errors import KafkaConfigurationError

__all__ = ["AdminConfig", "AdminConfigError"]


class AdminConfigError(KafkaConfigurationError, ValueError):
    """An admin client setting is invalid (a ``ValueError`` too, as in aiokafka)."""

    def __str__(self) -> str:
        return ValueError.__str__(self)


class AdminConfig(ClientConfig):
    """The admin client's settings.  Times in milliseconds."""

    _error: ClassVar[type[KafkaConfigurationError]] = AdminConfigError
    _keyword_owner: ClassVar[str] = "admin client"
    # the facade calls from_kwargs from its __init__: point at the facade's caller
    _api_version_stacklevel: ClassVar[int] = 3

    # bootstrap_servers comes first, from ClientConfig

    # aiokafka sends "aiokafka-<version>"; we name the library actually talking
    client_id: str = f"streamclient-{__version__}"
    # the bound on one admin call, retries included (aiokafka: on one request)
    request_timeout_ms: int = Field(40_000, gt=0)
    connections_max_idle_ms: int | None = 540_000
    retry_backoff_ms: int = Field(100, ge=0)
    metadata_max_age_ms: int = Field(300_000, ge=0)
    security_protocol: str = "PLAINTEXT"
    ssl_context: Any = None
    api_version: str | None = None  # deprecated by aiokafka 0.13: accepted, ignored
    sasl_mechanism: str = "PLAIN"
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    sasl_kerberos_service_name: str = "kafka"
    sasl_kerberos_domain_name: str | None = None
    sasl_oauth_token_provider: Any = None
    # --- the Java admin's, not aiokafka's -------------------------------------------
    retry_backoff_max_ms: int = Field(1_000, ge=0)
    reconnect_backoff_ms: int = Field(50, ge=0)
    reconnect_backoff_max_ms: int = Field(1_000, ge=0)
    connect_timeout_ms: int | None = Field(None, gt=0)  # None: request_timeout_ms

    def _cross_field_rules(self, explicit: set[str]) -> None:
        """Every rule between admin settings, in one place (the TLS and SASL ones, which
        every client has, are ClientConfig's)."""
        # The backoff grows from retry_backoff_ms up to the maximum; a maximum below the
        # start would make the first delay the longest.
        if self.retry_backoff_max_ms < self.retry_backoff_ms:
            raise AdminConfigError(
                f"retry_backoff_max_ms ({self.retry_backoff_max_ms}) must not be lower "
                f"than retry_backoff_ms ({self.retry_backoff_ms})")
        if self.reconnect_backoff_max_ms < self.reconnect_backoff_ms:
            raise AdminConfigError(
                f"reconnect_backoff_max_ms ({self.reconnect_backoff_max_ms}) must not be "
                f"lower than reconnect_backoff_ms ({self.reconnect_backoff_ms})")

    def cluster_config(self) -> ClusterConfig:
        """The cluster client's settings.

        Metadata requests never create topics: an admin asking about a topic must not
        bring it into existence.  The SASL settings are carried over as they are
        (``ClientConfig`` checked them).
        """
        return ClusterConfig.from_settings(self, allow_auto_topic_creation=False)

