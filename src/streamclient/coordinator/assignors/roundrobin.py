"""aiokafka's ``aiokafka.coordinator.assignors.roundrobin``."""

from streamclient.consumer.assignors import RoundRobinPartitionAssignor

__all__ = ["RoundRobinPartitionAssignor"]
