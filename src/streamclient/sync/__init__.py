"""The blocking API: clients that run on one shared event loop thread (DESIGN §5)."""

from __future__ import annotations

from streamclient.sync.admin import KafkaAdminClient
from streamclient.sync.consumer import KafkaConsumer
from streamclient.sync.producer import KafkaProducer

__all__ = ["KafkaAdminClient", "KafkaConsumer", "KafkaProducer"]
