"""The producer: record accumulator, partitioners, sender, idempotence and transactions."""

from streamclient.producer.producer import AIOKafkaProducer, BatchBuilder, RecordFuture

__all__ = ["AIOKafkaProducer", "BatchBuilder", "RecordFuture"]
