"""Produce N records with every Python Kafka client against one broker, in one run.

    python -m benchmarks.bench_produce [--n 200000] [--size 100] [--clients ...]
        [--broker embedded|tansu | --bootstrap host:port] [--repeat R] [--json PATH]

Timing runs from the first send until every record is acknowledged (flush included);
CPU is the client process's user+system time over that span, all threads included.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script: make ``benchmarks`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import main

if __name__ == "__main__":
    raise SystemExit(main("produce"))
