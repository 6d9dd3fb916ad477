"""pytest fixtures for testing against an embedded Kafka cluster."""
