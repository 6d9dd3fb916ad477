"""Measure the blocking API's hot paths (a script, not a test):

    .venv/bin/python tests/sync/measure_hot_paths.py [records]

Starts the embedded broker in a separate process (so its work does not compete with the
client for this process's GIL) and prints µs per ``KafkaProducer.send()``, per record
through ``KafkaConsumer.poll()`` and iteration, and per hop to the loop thread.
"""

from __future__ import annotations

import subprocess
import sys
import time

from streamclient.structs import TopicPartition
from streamclient.sync import KafkaConsumer, KafkaProducer
from streamclient.sync.portal import get_loop_thread


def main(count: int) -> None:
    broker = subprocess.Popen([sys.executable, "-m", "streamclient", "broker", "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert broker.stdout is not None
        bootstrap = broker.stdout.readline().strip().split()[-1]
        run(bootstrap, count)
    finally:
        broker.terminate()
        broker.wait(10)


def run(bootstrap: str, count: int) -> None:
    loop = get_loop_thread()
    started = time.perf_counter()
    for _ in range(1000):
        loop.call(int)
    print(f"hop (loop.call of a plain function): {(time.perf_counter() - started) * 1000:.0f} µs")

    value = b"x" * 100
    tp = TopicPartition("bench", 0)
    with KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5) as producer:
        producer.send("bench", value, partition=0).get(10)
        hops = loop.hops
        started = time.perf_counter()
        for _ in range(count):
            producer.send("bench", value, partition=0)
        sent = time.perf_counter()
        producer.flush()
        flushed = time.perf_counter()
        assert loop.hops == hops
    print(f"KafkaProducer.send(): {(sent - started) / count * 1e6:.2f} µs/record "
          f"({(flushed - started) / count * 1e6:.2f} with flush), {count} records, 0 hops")

    with KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([tp])
        hops = loop.hops
        got = 0
        started = time.perf_counter()
        while got < count + 1:
            got += sum(len(b) for b in consumer.poll(timeout_ms=1000).values())
        elapsed = time.perf_counter() - started
        print(f"KafkaConsumer.poll(): {elapsed / got * 1e6:.2f} µs/record, "
              f"{loop.hops - hops} hops for {got} records")
        consumer.seek(tp, 0)
        hops = loop.hops
        started = time.perf_counter()
        for n, _ in enumerate(consumer, 1):
            if n == got:
                break
        elapsed = time.perf_counter() - started
        print(f"for record in KafkaConsumer: {elapsed / got * 1e6:.2f} µs/record, "
              f"{loop.hops - hops} hops")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
