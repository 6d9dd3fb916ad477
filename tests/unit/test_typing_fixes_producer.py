"""Delivery callbacks across a batch split, whose chaining code was retyped for mypy.

A split moves each record to a new handle; a callback must still run once, with the
handle the application registered it on, whether it was added before or after the
split, and whatever it returns.
"""

from __future__ import annotations

import random

from streamclient.producer.accumulator import LeaderMap, RecordAccumulator
from streamclient.producer.config import ProducerConfig
from streamclient.producer.idempotence import IdempotenceState
from streamclient.producer.result import FutureRecordMetadata
from streamclient.structs import TopicPartition

CLUSTER = LeaderMap({TopicPartition("t", 0): 1})
VALUE = b"v" * 100


def _accumulator() -> RecordAccumulator:
    config = ProducerConfig(enable_idempotence=True, max_batch_size=4096)
    idem = IdempotenceState(retries=config.retries, delivery_timeout_ms=config.delivery_timeout)
    idem.set_producer_id_and_epoch(1000, 0)
    return RecordAccumulator(config, idempotence=idem, rng=random.Random(7))


def test_callbacks_before_and_after_a_split_get_their_own_handle() -> None:
    acc = _accumulator()
    handles = [acc.append("t", 0, 1000 + i, None, VALUE, (), CLUSTER, 0).future
               for i in range(30)]
    calls: list[tuple[str, FutureRecordMetadata, int]] = []
    # registered before the split: these move to the new handles when the batch splits
    handles[0].add_done_callback(lambda h: calls.append(("before", h, h.value().offset)))
    handles[29].add_done_callback(lambda h: calls.append(("before", h, h.value().offset)))
    big = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    acc.batch_size = 1024
    assert acc.split_and_reenqueue(big) >= 3
    # registered on the old handles after the split: they land on the chain's tail; a
    # callback that returns something is accepted and its result ignored
    handles[0].add_done_callback(lambda h: calls.append(("after", h, h.value().offset)))
    handles[29].add_done_callback(lambda h: len(calls))
    assert calls == []
    offset = 0
    while acc.has_undrained():
        for batch in acc.drain(CLUSTER, {1}, 10**6, 0)[1]:
            acc.complete_batch(batch, 5000 + offset)
            offset += batch.record_count
    assert sorted(calls, key=lambda c: (c[2], c[0])) == [
        ("after", handles[0], 5000),
        ("before", handles[0], 5000),
        ("before", handles[29], 5029),
    ]
    assert all(c[1] is handles[0] or c[1] is handles[29] for c in calls)
