"""aiokafka's ``aiokafka.coordinator.assignors.sticky.sticky_assignor``."""

from streamclient.consumer.assignors import StickyPartitionAssignor

__all__ = ["StickyPartitionAssignor"]
