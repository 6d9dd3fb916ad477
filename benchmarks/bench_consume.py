"""Consume N records with every Python Kafka client from one pre-filled topic, in one run.

    python -m benchmarks.bench_consume [--n 200000] [--size 100] [--clients ...]
        [--broker embedded|tansu | --bootstrap host:port] [--repeat R] [--json PATH]

The topic is filled once (by confluent-kafka, untimed); each client assigns every
partition (no group) from the earliest offset and is timed until it has received N
records, touching each value.  CPU is the client process's user+system time.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script: make ``benchmarks`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import main

if __name__ == "__main__":
    raise SystemExit(main("consume"))
