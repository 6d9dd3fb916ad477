"""aiokafka's ``aiokafka.coordinator.assignors.abstract``."""

from streamclient.consumer.assignors import AbstractPartitionAssignor

__all__ = ["AbstractPartitionAssignor"]
