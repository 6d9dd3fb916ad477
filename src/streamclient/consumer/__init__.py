"""The consumer: subscription state, fetching, group membership and assignors."""

from __future__ import annotations

from streamclient.consumer.consumer import AIOKafkaConsumer

__all__ = ["AIOKafkaConsumer"]
