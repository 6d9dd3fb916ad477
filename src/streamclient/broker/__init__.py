"""The embedded Kafka-compatible broker: ``EmbeddedCluster`` and ``BlockingEmbeddedCluster``.

Names load lazily so that importing one broker module (a handler, the log) does not pull
in the server and every handler.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamclient.broker.cluster import BlockingEmbeddedCluster, EmbeddedCluster
    from streamclient.broker.config import BrokerConfig
    from streamclient.broker.faults import FaultInjector
    from streamclient.broker.state import ClusterState, ManualClock

__all__ = [
    "BlockingEmbeddedCluster",
    "BrokerConfig",
    "ClusterState",
    "EmbeddedCluster",
    "FaultInjector",
    "ManualClock",
]

_HOMES = {
    "BlockingEmbeddedCluster": "cluster",
    "EmbeddedCluster": "cluster",
    "BrokerConfig": "config",
    "ClusterState": "state",
    "ManualClock": "state",
    "FaultInjector": "faults",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
