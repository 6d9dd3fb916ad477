"""aiokafka's ``aiokafka.coordinator.assignors.range``."""

from streamclient.consumer.assignors import RangePartitionAssignor

__all__ = ["RangePartitionAssignor"]
