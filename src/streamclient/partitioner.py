"""aiokafka's import path for the default partitioner (``aiokafka.partitioner``).

The partitioners themselves live in :mod:`streamclient.producer.partitioner`.
"""

from streamclient.producer.partitioner import DefaultPartitioner, murmur2

__all__ = ["DefaultPartitioner", "murmur2"]
