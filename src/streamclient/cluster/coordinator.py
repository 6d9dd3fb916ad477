"""FindCoordinator requests and answers, for every version (sans-IO).

Versions 0-3 name one key per request; version 4 and later name many
(``coordinator_keys``, KIP-699) and answer one ``Coordinator`` entry per key.  This module
hides the difference: :func:`find_coordinator_requests` gives the requests to send for a
set of keys and :func:`coordinator_answers` turns a response back into one
:class:`CoordinatorAnswer` per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from streamclient.errors import UnsupportedVersionError
from streamclient.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)

__all__ = [
    "BATCHED_VERSION",
    "RELOOKUP_ERRORS",
    "RETRIABLE_ERRORS",
    "CoordinatorAnswer",
    "CoordinatorType",
    "coordinator_answers",
    "find_coordinator_requests",
]

BATCHED_VERSION: Final = 4

# Errors after which the cached coordinator is wrong and must be looked up again
# (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR), as in the Java client's markCoordinatorUnknown.
RELOOKUP_ERRORS: Final = frozenset({15, 16})
# FindCoordinator answers worth retrying after a backoff: the two above and
# COORDINATOR_LOAD_IN_PROGRESS (the coordinator is there but still loading its state).
RETRIABLE_ERRORS: Final = frozenset({14, 15, 16})


class CoordinatorType(IntEnum):
    """FindCoordinator's ``key_type``."""

    GROUP = 0
    TRANSACTION = 1
    SHARE = 2  # KIP-932


@dataclass(frozen=True, slots=True)
class CoordinatorAnswer:
    key: str
    node_id: int
    host: str
    port: int
    error_code: int
    error_message: str | None = None


def find_coordinator_requests(keys: Sequence[str], key_type: int,
                              version: int) -> list[FindCoordinatorRequest]:
    """The requests that look up ``keys`` at ``version``: one, or one per key before v4."""
    if not keys:
        return []
    if version == 0 and key_type != CoordinatorType.GROUP:
        # v0 has no key_type field: it can only find group coordinators
        raise UnsupportedVersionError(
            f"FindCoordinator v0 cannot look up a {CoordinatorType(key_type).name} coordinator")
    if version >= BATCHED_VERSION:
        return [FindCoordinatorRequest(key_type=key_type, coordinator_keys=list(keys))]
    return [FindCoordinatorRequest(key=k, key_type=key_type) for k in keys]


def coordinator_answers(request: FindCoordinatorRequest, response: FindCoordinatorResponse,
                        version: int) -> list[CoordinatorAnswer]:
    """One answer per key the request named."""
    if version >= BATCHED_VERSION:
        return [CoordinatorAnswer(c.key, c.node_id, c.host, c.port, c.error_code,
                                  c.error_message)
                for c in response.coordinators]
    return [CoordinatorAnswer(request.key, response.node_id, response.host, response.port,
                              response.error_code, response.error_message)]
