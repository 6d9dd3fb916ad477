"""Sans-IO API version negotiation.

A client learns the broker's ``[min, max]`` per API key from an ApiVersions response and
uses, per API, the highest version both sides support.  When the broker does not know
the ApiVersions version the client sent, it answers UNSUPPORTED_VERSION in the v0 schema
and lists its own ApiVersions range (KIP-511); the client retries with the highest
version the broker lists, or v0 when it lists none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from streamclient.protocol.message import Message

__all__ = [
    "API_VERSIONS_KEY",
    "UNSUPPORTED_VERSION",
    "VersionRange",
    "VersionTable",
    "negotiate",
    "retry_api_versions_version",
    "supported_versions",
]

API_VERSIONS_KEY = 18
UNSUPPORTED_VERSION = 35

VersionRange = tuple[int, int]


class _ApiVersionEntry(Protocol):
    api_key: int
    min_version: int
    max_version: int


class _ApiVersionsBody(Protocol):
    error_code: int

    @property
    def api_keys(self) -> Iterable[_ApiVersionEntry]: ...


def supported_versions(
    types: Mapping[int, type[Message]] | None = None, *, include_unstable: bool = False
) -> dict[int, VersionRange]:
    """Our ``(min, max)`` per API key, from the generated request classes.

    The latest version of an API is left out when its schema marks it unstable, unless
    ``include_unstable`` is set.
    """
    if types is None:
        from streamclient.protocol.messages import REQUEST_TYPES

        types = REQUEST_TYPES
    out: dict[int, VersionRange] = {}
    for key, cls in types.items():
        lo, hi = cls.VALID_VERSIONS
        out[key] = (lo, hi if include_unstable else cls.LATEST_STABLE_VERSION)
    return out


def _broker_ranges(
    broker: Iterable[_ApiVersionEntry | tuple[int, int, int]],
) -> dict[int, VersionRange]:
    ranges: dict[int, VersionRange] = {}
    for entry in broker:
        if isinstance(entry, tuple):
            key, lo, hi = entry
        else:
            key, lo, hi = entry.api_key, entry.min_version, entry.max_version
        ranges[key] = (lo, hi)
    return ranges


def negotiate(
    ours: Mapping[int, VersionRange],
    broker: Iterable[_ApiVersionEntry | tuple[int, int, int]],
) -> dict[int, int | None]:
    """Per API key of ours, the highest version both support, or ``None``."""
    theirs = _broker_ranges(broker)
    out: dict[int, int | None] = {}
    for key, (lo, hi) in ours.items():
        other = theirs.get(key)
        if other is None:
            out[key] = None
            continue
        top = min(hi, other[1])
        out[key] = top if top >= max(lo, other[0]) else None
    return out


class VersionTable:
    """The negotiated versions for one broker connection."""

    __slots__ = ("_broker", "_versions")

    def __init__(
        self,
        ours: Mapping[int, VersionRange],
        broker: Iterable[_ApiVersionEntry | tuple[int, int, int]],
    ) -> None:
        entries = list(broker)
        self._broker = _broker_ranges(entries)
        self._versions = negotiate(ours, entries)

    def version_for(self, api_key: int) -> int | None:
        """The version to send for ``api_key``, or ``None`` when there is none in common."""
        return self._versions.get(api_key)

    def broker_range(self, api_key: int) -> VersionRange | None:
        return self._broker.get(api_key)

    def __repr__(self) -> str:
        return f"VersionTable({self._versions!r})"


def retry_api_versions_version(
    response: _ApiVersionsBody, sent: int, our_max: int | None = None
) -> int | None:
    """The ApiVersions version to retry with after ``response`` to a request at ``sent``.

    ``None`` means no retry: the response is not UNSUPPORTED_VERSION, or there is no lower
    version left to try.
    """
    if response.error_code != UNSUPPORTED_VERSION or sent <= 0:
        return None
    listed = _broker_ranges(response.api_keys).get(API_VERSIONS_KEY)
    candidate = 0 if listed is None else listed[1]
    if our_max is not None:
        candidate = min(candidate, our_max)
    # never retry at or above what just failed, so the exchange always terminates
    if candidate >= sent:
        candidate = 0
    return max(candidate, 0)
