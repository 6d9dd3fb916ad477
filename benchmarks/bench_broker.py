"""Throughput of one embedded broker node with confluent-kafka (librdkafka) as the client.

    python benchmarks/bench_broker.py [--records 200000] [--value-size 100]
                                      [--partitions 1] [--linger-ms 5] [--profile 25]

Produce: ``--records`` values of ``--value-size`` bytes with acks=1 and ``linger.ms``,
timed from the first ``produce()`` to the end of ``flush()``.  Consume: a consumer
assigned to every partition from offset 0, timed until it has every record.  The broker
runs on a background thread of this process (``BlockingEmbeddedCluster``); librdkafka
runs on its own threads, so the figures are the broker's as long as its thread is the
busy one: the "broker CPU" column is the CPU time of the broker's thread in the phase.
``--profile N`` runs the broker's thread under cProfile and prints its top N
functions by own time, for each phase.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka as ck

from streamclient.broker import BlockingEmbeddedCluster

TOPIC = "bench"


def produce(bootstrap: str, records: int, value: bytes, partitions: int,
            linger_ms: int) -> float:
    producer = ck.Producer({
        "bootstrap.servers": bootstrap, "acks": 1, "linger.ms": linger_ms,
        "enable.idempotence": False, "queue.buffering.max.messages": records + 1000,
        "queue.buffering.max.kbytes": 2 * 1024 * 1024, "batch.size": 1_000_000})
    failures: list[Any] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err)

    # connect and learn the leaders first, so the timing is the data path
    producer.list_topics(TOPIC, timeout=10)
    start = time.perf_counter()
    for i in range(records):
        producer.produce(TOPIC, value, partition=i % partitions, on_delivery=on_delivery)
        if i % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - start
    if remaining or failures:
        raise SystemExit(f"produce failed: {remaining} undelivered, errors {failures[:3]}")
    return elapsed


def consume(bootstrap: str, records: int, partitions: int) -> float:
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
        "fetch.max.bytes": 50 * 1024 * 1024, "max.partition.fetch.bytes": 10 * 1024 * 1024,
        # librdkafka pauses fetching for fetch.queue.backoff.ms (1 s) once its queue holds
        # queued.min.messages: without these the figure measures that pause
        "queued.min.messages": records + 1, "fetch.queue.backoff.ms": 10})
    try:
        consumer.list_topics(TOPIC, timeout=10)
        start = time.perf_counter()
        consumer.assign([ck.TopicPartition(TOPIC, p, 0) for p in range(partitions)])
        seen = 0
        deadline = start + 120
        while seen < records:
            if time.perf_counter() > deadline:
                raise SystemExit(f"consume stalled at {seen} of {records} records")
            for msg in consumer.consume(min(10_000, records - seen), 0.5):
                if msg.error() is not None:
                    raise SystemExit(f"consume failed: {msg.error()}")
                seen += 1
        return time.perf_counter() - start
    finally:
        consumer.close()


def profiled(cluster: BlockingEmbeddedCluster, top: int, label: str,
             fn: Callable[[], float]) -> float:
    """Run ``fn`` with the broker's event-loop thread under cProfile (``top`` > 0)."""
    if top <= 0:
        return fn()
    profiler = cProfile.Profile()
    # a profiler only sees the thread that enabled it: enable it on the broker's loop
    cluster.call(profiler.enable)
    try:
        return fn()
    finally:
        cluster.call(profiler.disable)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
        print(f"\n--- broker thread profile: {label} (by own time) ---")
        print("\n".join(line for line in out.getvalue().splitlines()
                        if line.strip() and not line.startswith("   Ordered by")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the broker's top N functions per phase (cProfile)")
    args = parser.parse_args()
    value = b"x" * args.value_size

    with BlockingEmbeddedCluster(1, group_initial_rebalance_delay_ms=0,
                                 offsets_topic_num_partitions=1,
                                 transaction_state_log_num_partitions=1) as cluster:
        cluster.call(lambda: cluster.state.create_topic(TOPIC, args.partitions, 1))
        bootstrap = cluster.bootstrap_servers
        # thread_time() on the broker's loop thread: its CPU share of each phase
        cpu = cluster.call(time.thread_time)
        produce_s = profiled(cluster, args.profile, "produce", lambda: produce(
            bootstrap, args.records, value, args.partitions, args.linger_ms))
        produce_cpu = cluster.call(time.thread_time) - cpu
        cpu = cluster.call(time.thread_time)
        consume_s = profiled(cluster, args.profile, "consume",
                             lambda: consume(bootstrap, args.records, args.partitions))
        consume_cpu = cluster.call(time.thread_time) - cpu
        if cluster.errors:
            raise SystemExit(f"the broker raised: {cluster.errors[:3]}")

    mb = args.records * args.value_size / 1e6
    print(f"\none node, {args.records} records of {args.value_size} B, "
          f"{args.partitions} partition(s), confluent-kafka {ck.__version__} "
          f"(librdkafka {ck.libversion()[0]})")
    print(f"{'phase':<10}{'wall s':>9}{'records/s':>12}{'MB/s':>8}{'broker CPU s':>14}")
    for phase, seconds, spent in (("produce", produce_s, produce_cpu),
                                  ("consume", consume_s, consume_cpu)):
        print(f"{phase:<10}{seconds:>9.2f}{args.records / seconds:>12,.0f}"
              f"{mb / seconds:>8.1f}{spent:>14.2f}")


if __name__ == "__main__":
    main()
