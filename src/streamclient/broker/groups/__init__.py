"""The embedded broker's consumer-group coordinator (classic protocol)."""

from streamclient.broker.groups.coordinator import (
    OFFSETS_TOPIC,
    GroupCoordinator,
    GroupCoordinatorConfig,
)
from streamclient.broker.groups.group import Group, GroupConfig, GroupState

__all__ = [
    "OFFSETS_TOPIC",
    "Group",
    "GroupConfig",
    "GroupCoordinator",
    "GroupCoordinatorConfig",
    "GroupState",
]
