"""Benchmarks of streamclient against the other Python Kafka clients (see README.md)."""
