"""Which partition of an internal topic owns a group id or a transactional id.

Kafka uses ``abs(key.hashCode()) % partitions`` with Java's ``String.hashCode`` (over UTF-16
code units) and ``Utils.abs`` (``Integer.MIN_VALUE`` maps to 0). Using the same function puts a
group on the same ``__consumer_offsets`` partition as a real broker with as many partitions.
"""

from __future__ import annotations

__all__ = ["java_string_hash", "partition_for"]


def java_string_hash(text: str) -> int:
    """``java.lang.String.hashCode`` as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str, num_partitions: int) -> int:
    h = java_string_hash(key)
    positive = 0 if h == -(1 << 31) else abs(h)
    return positive % num_partitions
