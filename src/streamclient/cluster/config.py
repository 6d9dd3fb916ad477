"""``ClusterConfig``: the settings the cluster client needs, validated once, frozen.

The producer, consumer and admin configs carry these under the same names (aiokafka's
keywords), so :meth:`ClusterConfig.from_settings` copies them from any of those objects.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

from streamclient._version import __version__
from streamclient.errors import KafkaConfigurationError
from streamclient.net.connection import parse_address
from streamclient.net.sasl import SaslSettings

__all__ = ["DEFAULT_PORT", "ClusterConfig", "ClusterConfigError", "parse_bootstrap_servers"]

DEFAULT_PORT: Final = 9092
_SECURITY_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_PROTOCOLS: Final = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS_PROTOCOLS: Final = ("SSL", "SASL_SSL")
#: why GSSAPI is refused at construction rather than failing at the first connect
GSSAPI_UNSUPPORTED: Final = (
    "sasl_mechanism='GSSAPI' (Kerberos) is not supported by streamclient; use PLAIN, "
    "SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")


class ClusterConfigError(KafkaConfigurationError, ValueError):
    """A cluster client setting is invalid (a ``ValueError`` too, as aiokafka raises)."""

    def __str__(self) -> str:
        return ValueError.__str__(self)


def parse_bootstrap_servers(servers: str | Sequence[str]) -> list[tuple[str, int]]:
    """``"a:1,b"`` or ``["a:1", "b"]`` → ``[("a", 1), ("b", 9092)]`` (order kept)."""
    if isinstance(servers, str):
        entries = servers.split(",")
    elif isinstance(servers, Sequence):
        entries = []
        for item in servers:
            if not isinstance(item, str):
                raise ClusterConfigError(
                    f"bootstrap_servers entries must be str, not {type(item).__name__}")
            entries.extend(item.split(","))
    else:
        raise ClusterConfigError(
            f"bootstrap_servers must be a str or a list of str, not {type(servers).__name__}")
    addresses = []
    for entry in entries:
        if not entry.strip():
            continue
        try:
            addresses.append(parse_address(entry, DEFAULT_PORT))
        except ValueError as exc:
            raise ClusterConfigError(str(exc)) from None
    if not addresses:
        raise ClusterConfigError("bootstrap_servers lists no address")
    return addresses


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Everything the cluster client reads.  Times in milliseconds."""

    bootstrap_servers: str | Sequence[str] = "localhost"
    client_id: str | None = f"streamclient-{__version__}"
    request_timeout_ms: int = 40_000
    # None: the request timeout (BrokerConnection's rule)
    connect_timeout_ms: int | None = None
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 1_000
    reconnect_backoff_ms: int = 50
    reconnect_backoff_max_ms: int = 1_000
    metadata_max_age_ms: int = 300_000
    # None: never close idle connections
    connections_max_idle_ms: int | None = 540_000
    security_protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    # Whether Metadata requests may create missing topics (the broker decides too)
    allow_auto_topic_creation: bool = True
    # read only with SASL_PLAINTEXT / SASL_SSL (aiokafka's names and defaults)
    sasl_mechanism: str = "PLAIN"
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    sasl_oauth_token_provider: Any = None

    def __post_init__(self) -> None:
        # validates, and fails early on a bad address
        parse_bootstrap_servers(self.bootstrap_servers)
        for name in ("request_timeout_ms",):
            if getattr(self, name) <= 0:
                raise ClusterConfigError(f"{name} must be positive")
        if self.connect_timeout_ms is not None and self.connect_timeout_ms <= 0:
            raise ClusterConfigError("connect_timeout_ms must be positive or None")
        for name in ("retry_backoff_ms", "retry_backoff_max_ms", "reconnect_backoff_ms",
                     "reconnect_backoff_max_ms", "metadata_max_age_ms"):
            if getattr(self, name) < 0:
                raise ClusterConfigError(f"{name} must not be negative")
        if self.connections_max_idle_ms is not None and self.connections_max_idle_ms < 0:
            raise ClusterConfigError("connections_max_idle_ms must be >= 0 or None")
        if self.security_protocol not in _SECURITY_PROTOCOLS:
            raise ClusterConfigError(
                "security_protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, not "
                f"{self.security_protocol!r}")
        if self.security_protocol in _TLS_PROTOCOLS and self.ssl_context is None:
            raise ClusterConfigError("`ssl_context` is mandatory if security_protocol=='SSL'")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise ClusterConfigError("ssl_context must be an ssl.SSLContext")
        # checks the SASL settings (raises for missing credentials)
        _ = self.sasl

    @property
    def sasl(self) -> SaslSettings | None:
        """The connections' SASL settings: only with SASL_PLAINTEXT / SASL_SSL."""
        if self.security_protocol not in _SASL_PROTOCOLS:
            return None
        if self.sasl_mechanism == "GSSAPI":
            raise ClusterConfigError(GSSAPI_UNSUPPORTED)
        try:
            return SaslSettings(self.sasl_mechanism, self.sasl_plain_username,
                                self.sasl_plain_password, self.sasl_oauth_token_provider)
        except ValueError as exc:
            raise ClusterConfigError(str(exc)) from None

    @property
    def bootstrap_addresses(self) -> list[tuple[str, int]]:
        return parse_bootstrap_servers(self.bootstrap_servers)

    @property
    def tls_context(self) -> ssl.SSLContext | None:
        """The context connections use: only with ``SSL`` and ``SASL_SSL`` (TLS first,
        then SASL inside it)."""
        return self.ssl_context if self.security_protocol in _TLS_PROTOCOLS else None

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ClusterConfig:
        """Copy the fields of this class that ``settings`` (a producer, consumer or admin
        config object) has under the same name; ``overrides`` win."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if hasattr(settings, f.name):
                values[f.name] = getattr(settings, f.name)
        values.update(overrides)
        return cls(**values)
