"""``AdminConfig``: the admin client's settings, validated once, frozen.

The names and defaults are aiokafka's ``AIOKafkaAdminClient`` keywords (aiokafka-api.md
§1.7) plus four of the Java admin's that aiokafka lacks (``retry_backoff_max_ms``,
``reconnect_backoff_ms``, ``reconnect_backoff_max_ms``, ``connect_timeout_ms``).  The facade
keeps aiokafka's ``loop`` argument to itself.  An unknown keyword raises ``TypeError``
naming it; a bad value raises :class:`AdminConfigError` (a ``ValueError``, as aiokafka's
checks are).
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streamclient._version import __version__
from streamclient.cluster.config import ClusterConfig
from streamclient.errors import KafkaConfigurationError

__all__ = ["AdminConfig", "AdminConfigError"]

_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "GSSAPI", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


class AdminConfigError(KafkaConfigurationError, ValueError):
    """An admin client setting is invalid (a ``ValueError`` too, as in aiokafka)."""

    def __str__(self) -> str:
        return ValueError.__str__(self)


class AdminConfig(BaseModel):
    """The admin client's settings.  Times in milliseconds."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, validate_default=True
    )

    bootstrap_servers: str | list[str] = "localhost"
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

    def __init__(self, **data: Any) -> None:
        unknown = sorted(set(data) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"unexpected admin client keyword argument(s): {', '.join(unknown)}")
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise AdminConfigError(_first_message(exc)) from None
        self._cross_field_rules()

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> AdminConfig:
        """Build from ``AIOKafkaAdminClient`` keywords (warns on ``api_version`` as aiokafka
        does)."""
        if kwargs.get("api_version") not in (None, "auto"):
            warnings.warn(
                "The `api_version` parameter has been deprecated since 0.13.0. "
                "It is now a no-op and will be removed in a future release. ",
                DeprecationWarning,
                stacklevel=3,
            )
        return cls(**kwargs)

    @field_validator("security_protocol")
    @classmethod
    def _check_security_protocol(cls, value: str) -> str:
        if value not in _SECURITY_PROTOCOLS:
            raise ValueError("`security_protocol` should be SSL or PLAINTEXT")
        return value

    @field_validator("connections_max_idle_ms")
    @classmethod
    def _check_idle(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("connections_max_idle_ms must be >= 0 or None")
        return value

    def _cross_field_rules(self) -> None:
        """Every rule between settings, in one place."""
        # TLS needs certificates to check; aiokafka refuses to guess a context.
        if self.security_protocol in ("SSL", "SASL_SSL") and self.ssl_context is None:
            raise AdminConfigError("`ssl_context` is mandatory if security_protocol=='SSL'")
        if self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
            if self.sasl_mechanism not in _SASL_MECHANISMS:
                raise AdminConfigError(
                    "only `PLAIN`, `GSSAPI`, `SCRAM-SHA-256`, `SCRAM-SHA-512` and "
                    "`OAUTHBEARER`sasl_mechanism are supported at the moment")
            if self.sasl_mechanism == "PLAIN" and (
                    self.sasl_plain_username is None or self.sasl_plain_password is None):
                raise AdminConfigError(
                    "sasl_plain_username and sasl_plain_password required for PLAIN sasl")
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
        bring it into existence.  Raises ``ClusterConfigError`` for what the cluster
        layer cannot do yet (SASL).
        """
        return ClusterConfig.from_settings(self, allow_auto_topic_creation=False)


def _first_message(exc: ValidationError) -> str:
    error = exc.errors()[0]
    ctx_error = (error.get("ctx") or {}).get("error")
    where = ".".join(str(part) for part in error["loc"])
    if isinstance(ctx_error, Exception):
        return str(ctx_error)
    return f"invalid {where}={error.get('input')!r}: {error['msg']}"
