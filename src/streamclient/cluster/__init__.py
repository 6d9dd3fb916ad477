"""The cluster layer: metadata, connections to every broker, and request routing.

``ClusterClient`` (async, anyio) owns the connections and drives metadata refreshes;
``ClusterMetadata`` is the sans-IO snapshot and its update rules.
"""

from .client import ClusterClient
from .config import ClusterConfig, ClusterConfigError, parse_bootstrap_servers
from .coordinator import CoordinatorType
from .metadata import ClusterMetadata, Node, PartitionInfo, TopicInfo
from .pool import ConnectionGroup

__all__ = [
    "ClusterClient",
    "ClusterConfig",
    "ClusterConfigError",
    "ClusterMetadata",
    "ConnectionGroup",
    "CoordinatorType",
    "Node",
    "PartitionInfo",
    "TopicInfo",
    "parse_bootstrap_servers",
]
