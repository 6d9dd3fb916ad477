"""``ClientConfig``: what the producer, consumer and admin configs share.

Each client's config is a frozen pydantic model built from aiokafka's keywords and
checked once.  This base holds the parts that are the same for all three: the first
connection field (``bootstrap_servers``), the construction sequence (unknown keyword → ``TypeError``; aiokafka's
spellings normalised; a pydantic failure → the subclass's :attr:`ClientConfig._error` with
one clear message; then the rules between settings), the deprecated ``api_version``
warning of ``from_kwargs``, and the checks of the connection settings.

The other connection fields stay declared in each subclass: pydantic puts inherited fields
first, in the base's order, and each client documents its own order (which also decides
which of several bad values is reported).  The validators here therefore name fields the
base does not declare (``check_fields=False``); every subclass declares them.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from streamclient.errors import KafkaConfigurationError

from .config import GSSAPI_UNSUPPORTED

__all__ = ["SASL_MECHANISMS", "SECURITY_PROTOCOLS", "ClientConfig"]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "GSSAPI", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")

_Config = TypeVar("_Config", bound="ClientConfig")


class ClientConfig(BaseModel):
    """The settings and checks every client config shares.  Subclass it; not used alone."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, validate_default=True
    )

    #: the error a bad value raises: the subclass's own ``…ConfigError``
    _error: ClassVar[type[KafkaConfigurationError]] = KafkaConfigurationError
    #: who takes the keywords, as the ``TypeError`` for an unknown one names it
    _keyword_owner: ClassVar[str] = "client"
    #: ``from_kwargs`` warns this far up the stack (the facade may add a frame)
    _api_version_stacklevel: ClassVar[int] = 2
    #: the message for an unsupported ``sasl_mechanism`` (aiokafka's by default)
    _sasl_mechanism_message: ClassVar[str] = (
        "only `PLAIN`, `GSSAPI`, `SCRAM-SHA-256`, `SCRAM-SHA-512` and "
        "`OAUTHBEARER`sasl_mechanism are supported at the moment"
    )

    # the one connection field every client declares first (client_id's default differs)
    bootstrap_servers: str | list[str] = "localhost"

    def __init__(self, **data: Any) -> None:
        cls = type(self)
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise TypeError(
                f"unexpected {cls._keyword_owner} keyword argument(s): {', '.join(unknown)}"
            )
        data = cls._normalise(data)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise cls._error(_first_message(exc)) from None
        self._check_security()
        self._cross_field_rules(set(data))

    @classmethod
    def from_kwargs(cls: type[_Config], **kwargs: Any) -> _Config:
        """Build from the keywords the client's aiokafka constructor receives (warns on
        the deprecated ``api_version`` as aiokafka does)."""
        kwargs = cls._from_kwargs_synonyms(kwargs)
        if kwargs.get("api_version") not in (None, "auto"):
            warnings.warn(
                "The `api_version` parameter has been deprecated since 0.13.0. "
                "It is now a no-op and will be removed in a future release. ",
                DeprecationWarning,
                stacklevel=cls._api_version_stacklevel,
            )
        return cls(**kwargs)

    @classmethod
    def _from_kwargs_synonyms(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map the other names ``from_kwargs`` accepts onto fields (none by default)."""
        return kwargs

    @classmethod
    def _normalise(cls, data: dict[str, Any]) -> dict[str, Any]:
        """aiokafka's spellings that the typed fields would reject, checked with its
        messages before pydantic sees them (none by default)."""
        return data

    # --- validators -------------------------------------------------------------------

    @field_validator("security_protocol", check_fields=False)
    @classmethod
    def _check_security_protocol(cls, value: str) -> str:
        if value not in SECURITY_PROTOCOLS:
            raise ValueError("`security_protocol` should be SSL or PLAINTEXT")
        return value

    @field_validator("connections_max_idle_ms", check_fields=False)
    @classmethod
    def _check_idle(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("connections_max_idle_ms must be >= 0 or None")
        return value

    def _check_security(self) -> None:
        """The connection rules every client has; checked before the subclass's rules."""
        settings: dict[str, Any] = dict(self)
        protocol = settings["security_protocol"]
        # TLS needs certificates to check; aiokafka refuses to guess a context.
        if protocol in ("SSL", "SASL_SSL") and settings["ssl_context"] is None:
            raise self._error("`ssl_context` is mandatory if security_protocol=='SSL'")
        if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
            if settings["sasl_mechanism"] not in SASL_MECHANISMS:
                raise self._error(self._sasl_mechanism_message)
            mechanism = settings["sasl_mechanism"]
            if mechanism == "PLAIN" and (
                settings["sasl_plain_username"] is None
                or settings["sasl_plain_password"] is None
            ):
                raise self._error(
                    "sasl_plain_username and sasl_plain_password required for PLAIN sasl"
                )
            # aiokafka accepts GSSAPI; we have no Kerberos, and saying so now beats a
            # failure at the first connection
            if mechanism == "GSSAPI":
                raise self._error(GSSAPI_UNSUPPORTED)
            # SCRAM needs the same two settings (aiokafka fails only when connecting)
            if mechanism.startswith("SCRAM-") and (
                settings["sasl_plain_username"] is None
                or settings["sasl_plain_password"] is None
            ):
                raise self._error(
                    f"sasl_plain_username and sasl_plain_password required for {mechanism} "
                    "sasl"
                )
            # aiokafka's check, made when its connection is built
            if mechanism == "OAUTHBEARER" and not callable(
                getattr(settings["sasl_oauth_token_provider"], "token", None)
            ):
                raise self._error(
                    "sasl_oauth_token_provider needs to be provided implementing "
                    "streamclient.abc.AbstractTokenProvider"
                )

    def _cross_field_rules(self, explicit: set[str]) -> None:
        """The subclass's rules between settings.  ``explicit``: keys the user set."""


def _first_message(exc: ValidationError) -> str:
    """One message for the first failure: our validators' own text (aiokafka's where it
    has one) as it is, else where and what pydantic found wrong."""
    error = exc.errors()[0]
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, Exception):
        return str(ctx_error)
    where = ".".join(str(part) for part in error["loc"])
    return f"invalid {where}={error.get('input')!r}: {error['msg']}"
