"""Records/s one embedded broker node accepts and serves, disk store beside in-memory store.

    python benchmarks/bench_broker_disk.py [--records 200000] [--value-size 100] [--repeat 3]

A confluent-kafka producer (acks=1, linger.ms=5, no compression) writes ``--records``
records of ``--value-size`` bytes to a 1-partition topic and flushes: accepted = records
/ seconds from the first produce to the end of the flush.  A confluent-kafka consumer
then reads them all back from the start: served = records / seconds until the last one
arrives.  The broker runs on a background thread in this process (BlockingEmbeddedCluster),
so client and broker share the machine; each figure is the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import confluent_kafka

from streamclient.broker import BlockingEmbeddedCluster


def run_once(records: int, value_size: int, log_dir: str | None) -> tuple[float, float]:
    settings: dict[str, Any] = {"offsets_topic_num_partitions": 1,
                                "transaction_state_log_num_partitions": 1}
    with BlockingEmbeddedCluster(1, log_dir=log_dir, **settings) as cluster:
        cluster.call(lambda: cluster.state.create_topic("bench", 1, 1))
        producer = confluent_kafka.Producer({
            "bootstrap.servers": cluster.bootstrap_servers, "acks": 1, "linger.ms": 5,
            "batch.size": 1 << 20, "queue.buffering.max.messages": records + 1,
            "log.connection.close": False})
        value = b"x" * value_size
        start = time.perf_counter()
        for i in range(records):
            while True:
                try:
                    producer.produce("bench", value=value, key=b"%08d" % i)
                    break
                except BufferError:
                    producer.poll(0.01)
        assert producer.flush(120) == 0
        accepted = records / (time.perf_counter() - start)

        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": cluster.bootstrap_servers, "group.id": "bench",
            "enable.auto.commit": False, "fetch.max.bytes": 8 << 20,
            "max.partition.fetch.bytes": 8 << 20})
        consumer.assign([confluent_kafka.TopicPartition("bench", 0, 0)])
        seen = 0
        start = time.perf_counter()
        while seen < records:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error() is None:
                    seen += 1
        served = records / (time.perf_counter() - start)
        consumer.close()
        assert cluster.errors == []
    return accepted, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.records} records of {args.value_size} bytes, one node, best of {args.repeat}")
    print(f"{'store':<8} {'accepted rec/s':>15} {'served rec/s':>14}")
    for name in ("memory", "disk"):
        results = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run_once(args.records, args.value_size,
                                        tmp if name == "disk" else None))
        accepted = max(r[0] for r in results)
        served = max(r[1] for r in results)
        print(f"{name:<8} {accepted:>15,.0f} {served:>14,.0f}")


if __name__ == "__main__":
    main()
