"""CPU cost of building and reading magic-2 record batches: streamclient vs kafka-python
(pure Python) vs aiokafka (Cython), per codec, in one run.

    python benchmarks/bench_records.py [--records 1000] [--value-size 100] [--repeat 7]

Build = ``append`` every record + ``build()`` (compression included).  Read = parse the
batch, validate its CRC, decompress, and touch every record's key and value.  Each figure
is the best of ``--repeat`` runs, in µs per record.  Values are JSON-like event text so
the codecs see realistic ratios; every record has a 10-byte key and no headers.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable
from typing import Any

from streamclient.protocol.records import Compression, RecordBatchBuilder, iter_batches

BASE_TS = 1_700_000_000_000


def make_rows(count: int, value_size: int) -> list[tuple[int, bytes, bytes]]:
    rng = random.Random(42)
    rows = []
    for i in range(count):
        text = (f'{{"id":{i},"user":"user-{rng.randint(0, 5000)}",'
                f'"event":"{rng.choice(["click", "view", "purchase"])}",'
                f'"price":{rng.random() * 100:.2f},"pad":"')
        value = (text + "x" * max(0, value_size - len(text) - 2) + '"}').encode()[:value_size]
        rows.append((BASE_TS + i, f"key-{i:06d}".encode(), value))
    return rows


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# --- the three implementations ------------------------------------------------------


def ours_build(rows: list[tuple[int, bytes, bytes]], codec: int) -> bytes:
    builder = RecordBatchBuilder(compression=codec, batch_size=1 << 30)
    append = builder.append
    for ts, key, value in rows:
        append(ts, key, value, ())
    return builder.build()


def ours_read(data: bytes) -> int:
    n = 0
    for batch in iter_batches(data):  # validates the CRC
        for record in batch:
            record.key  # noqa: B018
            record.value  # noqa: B018
            n += 1
    return n


def kafka_python_impl() -> tuple[Callable[..., bytes], Callable[[bytes], int]] | None:
    try:
        from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
    except ImportError:
        return None

    def build(rows: list[tuple[int, bytes, bytes]], codec: int) -> bytes:
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec,
                                            is_transactional=False, producer_id=-1,
                                            producer_epoch=-1, base_sequence=-1,
                                            batch_size=1 << 30)
        for offset, (ts, key, value) in enumerate(rows):
            builder.append(offset, ts, key, value, [])
        return bytes(builder.build())

    def read(data: bytes) -> int:
        batch = DefaultRecordBatch(data)
        assert batch.validate_crc()
        n = 0
        for record in batch:
            record.key  # noqa: B018
            record.value  # noqa: B018
            n += 1
        return n

    return build, read


def aiokafka_impl() -> tuple[Callable[..., bytes], Callable[[bytes], int]] | None:
    try:
        from aiokafka.record.default_records import (
            DefaultRecordBatch,
            DefaultRecordBatchBuilder,
        )
    except ImportError:
        return None

    def build(rows: list[tuple[int, bytes, bytes]], codec: int) -> bytes:
        builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 1 << 30)
        for offset, (ts, key, value) in enumerate(rows):
            builder.append(offset, ts, key, value, [])
        return bytes(builder.build())

    def read(data: bytes) -> int:
        batch = DefaultRecordBatch(data)
        assert batch.validate_crc()
        n = 0
        for record in batch:
            record.key  # noqa: B018
            record.value  # noqa: B018
            n += 1
        return n

    return build, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rows = make_rows(args.records, args.value_size)
    impls: dict[str, tuple[Callable[..., bytes], Callable[[bytes], int]]] = {
        "streamclient": (ours_build, ours_read)}
    for name, factory in (("kafka-python", kafka_python_impl), ("aiokafka", aiokafka_impl)):
        impl = factory()
        if impl is not None:
            impls[name] = impl

    n = len(rows)
    print(f"{n} records/batch, {args.value_size} B values, 10 B keys; "
          f"µs per record, best of {args.repeat}")
    print(f"{'codec':8} {'implementation':14} {'build':>8} {'read':>8} {'batch bytes':>12}")
    for codec in (Compression.NONE, Compression.LZ4, Compression.SNAPPY, Compression.ZSTD,
                  Compression.GZIP):
        for name, (build, read) in impls.items():
            data = build(rows, int(codec))
            assert read(data) == n and ours_read(data) == n  # cross-check every build
            t_build = best(lambda b=build, c=int(codec): b(rows, c), args.repeat) / n * 1e6
            t_read = best(lambda r=read, d=data: r(d), args.repeat) / n * 1e6
            print(f"{codec.name.lower():8} {name:14} {t_build:8.2f} {t_read:8.2f} {len(data):12d}")


if __name__ == "__main__":
    main()
