"""pytest plugin: fixtures for an embedded Kafka cluster (filled in by the broker work)."""
