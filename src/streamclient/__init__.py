"""streamclient: a Kafka client for Python on anyio, with aiokafka's API.

The names exported here are aiokafka's top-level names (``aiokafka.__all__``), so
``from streamclient import AIOKafkaConsumer, TopicPartition`` reads like aiokafka code.
"""

from __future__ import annotations

from streamclient._version import __version__
from streamclient.abc import ConsumerRebalanceListener
from streamclient.errors import ConsumerStoppedError, IllegalOperation
from streamclient.structs import (
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    TopicPartition,
)

# --- facades ---------------------------------------------------------------------------
# AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaClient are imported here once their
# modules exist (streamclient.producer.producer, streamclient.consumer.consumer,
# streamclient.cluster), and added to __all__ below.
# isort: split
from streamclient.consumer.consumer import AIOKafkaConsumer
from streamclient.producer.producer import AIOKafkaProducer
from streamclient.sync import KafkaAdminClient, KafkaConsumer, KafkaProducer

__all__ = [
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "ConsumerStoppedError",
    "IllegalOperation",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaProducer",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "TopicPartition",
    "__version__",
]
