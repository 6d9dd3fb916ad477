"""Which coroutine serves which API key, at which versions.

Handler modules register themselves with :func:`handles`; the server dispatches through
:data:`REGISTRY` and ApiVersions answers from it, so the advertised versions are exactly
the ones some handler serves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from streamclient.broker.state import ClusterState
    from streamclient.protocol.message import Message
    from streamclient.protocol.messages.request_header import RequestHeader

__all__ = ["REGISTRY", "Handler", "HandlerRegistry", "Registration", "RequestContext", "handles"]


@dataclass
class RequestContext:
    """What a handler knows about the request besides its body."""

    node_id: int
    state: ClusterState
    header: RequestHeader
    connection_id: int
    # the peer's address, for DescribeGroups' client_host and the like
    client_host: str = ""

    @property
    def api_key(self) -> int:
        return int(self.header.request_api_key)

    @property
    def api_version(self) -> int:
        return int(self.header.request_api_version)

    @property
    def client_id(self) -> str | None:
        return self.header.client_id

    @property
    def correlation_id(self) -> int:
        return int(self.header.correlation_id)


Handler = Callable[[RequestContext, Any, int], Awaitable["Message | None"]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Registration:
    request_type: type[Message]
    min_version: int
    max_version: int
    handler: Handler

    @property
    def api_key(self) -> int:
        return self.request_type.API_KEY

    @property
    def advertised(self) -> tuple[int, int]:
        """The versions ApiVersions announces: the served ones, stable versions only."""
        return self.min_version, min(self.max_version, self.request_type.LATEST_STABLE_VERSION)


class HandlerRegistry:
    def __init__(self) -> None:
        self._by_key: dict[int, Registration] = {}
        self._loaded = False

    def register(self, registration: Registration) -> None:
        existing = self._by_key.get(registration.api_key)
        if existing is not None and not _same_function(existing.handler, registration.handler):
            raise ValueError(
                f"API key {registration.api_key} ({registration.request_type.API_NAME}) already "
                f"has a handler: {existing.handler.__module__}.{existing.handler.__qualname__}"
            )
        self._by_key[registration.api_key] = registration

    def _ensure_loaded(self) -> None:
        # Importing the handler package on first lookup (not at import time) lets one
        # handler module be imported on its own, e.g. by its unit tests.
        if not self._loaded:
            from streamclient.broker.handlers import load_all

            load_all()
            self._loaded = True

    def get(self, api_key: int) -> Registration | None:
        self._ensure_loaded()
        return self._by_key.get(api_key)

    def __iter__(self) -> Iterator[Registration]:
        self._ensure_loaded()
        return iter(sorted(self._by_key.values(), key=lambda r: r.api_key))

    def advertised_versions(self) -> dict[int, tuple[int, int]]:
        """``api_key -> (min, max)`` for ApiVersions, stable versions only."""
        return {r.api_key: r.advertised for r in self if r.advertised[0] <= r.advertised[1]}


def _same_function(a: Handler, b: Handler) -> bool:
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


REGISTRY = HandlerRegistry()


def handles(
    request_type: type[Message], min_version: int | None = None, max_version: int | None = None
) -> Callable[[H], H]:
    """Register ``async def handle(ctx, request, version)`` for ``request_type``.

    The versions default to every version the generated class knows (capped at the latest
    stable one when advertised).  The handler returns the response, or ``None`` to send
    nothing (Produce with acks=0).
    """
    lo_valid, hi_valid = request_type.VALID_VERSIONS
    lo = lo_valid if min_version is None else min_version
    hi = hi_valid if max_version is None else max_version
    if not lo_valid <= lo <= hi <= hi_valid:
        raise ValueError(
            f"{request_type.API_NAME}: versions {lo}-{hi} are outside the schema's "
            f"{lo_valid}-{hi_valid}"
        )

    def decorate(fn: H) -> H:
        REGISTRY.register(Registration(request_type, lo, hi, fn))
        return fn

    return decorate
