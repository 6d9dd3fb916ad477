"""aiokafka's ``aiokafka.coordinator.assignors`` package."""
