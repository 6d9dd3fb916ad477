"""Keys and values of ``__transaction_state`` records (Kafka's ``TransactionLogKey`` v0 and
``TransactionLogValue`` v0 layouts). A null value is a tombstone for an expired id."""

from __future__ import annotations

from streamclient.broker.txn.transaction import TransactionMetadata, TxnState
from streamclient.errors import KafkaProtocolError
from streamclient.protocol.primitives import (
    Reader,
    write_array_length,
    write_int8,
    write_int16,
    write_int32,
    write_int64,
    write_string,
)

__all__ = ["decode_txn_key", "decode_txn_value", "encode_txn_key", "encode_txn_value"]


def encode_txn_key(transactional_id: str) -> bytes:
    buf = bytearray()
    write_int16(buf, 0)
    write_string(buf, transactional_id)
    return bytes(buf)


def decode_txn_key(data: bytes | memoryview) -> str:
    r = Reader(data)
    version = r.int16()
    if version != 0:
        raise KafkaProtocolError(f"unknown TransactionLogKey version {version}")
    return r.string()


def encode_txn_value(md: TransactionMetadata) -> bytes:
    buf = bytearray()
    write_int16(buf, 0)
    write_int64(buf, md.producer_id)
    write_int16(buf, md.producer_epoch)
    write_int32(buf, md.timeout_ms)
    write_int8(buf, int(md.state))
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(md.partitions):
        by_topic.setdefault(topic, []).append(partition)
    write_array_length(buf, len(by_topic))
    for topic, partitions in by_topic.items():
        write_string(buf, topic)
        write_array_length(buf, len(partitions))
        for p in partitions:
            write_int32(buf, p)
    write_int64(buf, md.last_update_ms)
    write_int64(buf, md.start_timestamp_ms)
    return bytes(buf)


def decode_txn_value(transactional_id: str, data: bytes | memoryview) -> TransactionMetadata:
    r = Reader(data)
    version = r.int16()
    if version != 0:
        raise KafkaProtocolError(f"unknown TransactionLogValue version {version}")
    producer_id = r.int64()
    producer_epoch = r.int16()
    timeout_ms = r.int32()
    state = TxnState(r.int8())
    partitions: set[tuple[str, int]] = set()
    for topic, ids in r.array(lambda rr: (rr.string(), rr.array(Reader.int32) or [])) or []:
        partitions.update((topic, p) for p in ids)
    last_update = r.int64()
    start = r.int64()
    return TransactionMetadata(
        transactional_id, producer_id, producer_epoch, timeout_ms, state,
        partitions=partitions, start_timestamp_ms=start, last_update_ms=last_update,
    )
