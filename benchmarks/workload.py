"""What one client child process is asked to do, and what it reports back.

The harness and every ``benchmarks.clients.*`` module share this module: the harness
turns a :class:`Workload` into command-line arguments, the child parses them back, runs
the workload under a :class:`Stopwatch` and prints one :class:`Measurement` as a JSON
line starting with :data:`RESULT_MARKER`.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "EXIT_UNAVAILABLE",
    "RESULT_MARKER",
    "Measurement",
    "Mode",
    "Status",
    "Stopwatch",
    "Workload",
    "client_main",
    "parse_result_line",
]

Mode = Literal["produce", "consume"]
Status = Literal["ok", "unavailable", "failed"]

RESULT_MARKER = "BENCH_RESULT "
# a child that cannot import its client exits with this code after printing its result
EXIT_UNAVAILABLE = 3


@dataclass(frozen=True)
class Workload:
    """One timed run of one client against one topic."""

    mode: Mode
    bootstrap: str
    topic: str
    n: int
    size: int = 100
    partitions: int = 6
    key: bool = False
    # None leaves the client's own default in force, so each client runs as shipped
    acks: str | None = None
    linger_ms: int | None = None
    batch_size: int | None = None
    backend: str = "asyncio"
    # how long the client may go without progress before it gives up
    stall_timeout_s: float = 30.0

    def to_argv(self) -> list[str]:
        argv = ["--mode", self.mode, "--bootstrap", self.bootstrap, "--topic", self.topic,
                "--n", str(self.n), "--size", str(self.size),
                "--partitions", str(self.partitions), "--backend", self.backend,
                "--stall-timeout", str(self.stall_timeout_s)]
        if self.key:
            argv.append("--key")
        if self.acks is not None:
            argv += ["--acks", self.acks]
        if self.linger_ms is not None:
            argv += ["--linger-ms", str(self.linger_ms)]
        if self.batch_size is not None:
            argv += ["--batch-size", str(self.batch_size)]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> Workload:
        parser = argparse.ArgumentParser(description="run one benchmark workload")
        parser.add_argument("--mode", choices=("produce", "consume"), required=True)
        parser.add_argument("--bootstrap", required=True)
        parser.add_argument("--topic", required=True)
        parser.add_argument("--n", type=int, required=True)
        parser.add_argument("--size", type=int, default=100)
        parser.add_argument("--partitions", type=int, default=6)
        parser.add_argument("--key", action="store_true")
        parser.add_argument("--acks", choices=("0", "1", "all"), default=None)
        parser.add_argument("--linger-ms", type=int, default=None)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
        parser.add_argument("--stall-timeout", type=float, default=30.0)
        ns = parser.parse_args(list(argv))
        return cls(mode=ns.mode, bootstrap=ns.bootstrap, topic=ns.topic, n=ns.n,
                   size=ns.size, partitions=ns.partitions, key=ns.key, acks=ns.acks,
                   linger_ms=ns.linger_ms, batch_size=ns.batch_size, backend=ns.backend,
                   stall_timeout_s=ns.stall_timeout)

    def payload(self) -> bytes:
        # one preallocated value for every record: building payloads per record in
        # Python would cost more than the clients themselves
        return b"m" * self.size

    def keys(self) -> list[bytes] | None:
        # a small fixed pool so keyed runs exercise the partitioner without paying for
        # per-record key formatting inside the timed loop
        return [f"key-{i:04d}".encode() for i in range(64)] if self.key else None


@dataclass
class Measurement:
    """What a child reports: the counts it saw and the time it spent on them."""

    client: str
    mode: str
    backend: str
    n: int
    status: Status = "ok"
    wall_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    # records acknowledged (produce) or received (consume); must equal n
    records: int = 0
    # value bytes touched by the consumer (produce: value bytes sent)
    value_bytes: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    reason: str = ""

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def records_per_s(self) -> float:
        return self.n / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_s / self.n * 1e6 if self.n else 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def parse_result_line(stdout: str) -> Measurement | None:
    """The last result line a child printed, or None if it printed none."""
    found = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            found = Measurement.from_dict(json.loads(line[len(RESULT_MARKER):]))
    return found


class Stopwatch:
    """Wall time and this process's CPU time (every thread, user and system) of a block.

    ``getrusage(RUSAGE_SELF)`` sums all threads, so librdkafka's and kafka-python's
    background threads count as client CPU, as they should.  Entering collects garbage
    first, for every client alike: a full collection already due from start-up (its cost
    grows with what the client imported) would otherwise land inside the timed block.
    """

    wall_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0

    def __enter__(self) -> Stopwatch:
        gc.collect()
        self._usage = resource.getrusage(resource.RUSAGE_SELF)
        self._wall = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.wall_s = wall - self._wall
        self.cpu_user_s = usage.ru_utime - self._usage.ru_utime
        self.cpu_sys_s = usage.ru_stime - self._usage.ru_stime

    def fill(self, measurement: Measurement) -> Measurement:
        measurement.wall_s = self.wall_s
        measurement.cpu_user_s = self.cpu_user_s
        measurement.cpu_sys_s = self.cpu_sys_s
        return measurement


Runner = Callable[[Workload], Measurement]


def client_main(client: str, load: Callable[[], tuple[Runner, Runner]],
                argv: Sequence[str] | None = None) -> int:
    """Entry point of a client child: run the workload and print one result line.

    ``load`` imports the client library and returns its (produce, consume) runners; an
    ImportError there is reported as "unavailable" rather than as a failure, because a
    client that is not installed (or not written yet) has no figure to report.
    """
    workload = Workload.from_argv(sys.argv[1:] if argv is None else argv)
    base = Measurement(client=client, mode=workload.mode, backend=workload.backend,
                       n=workload.n)
    try:
        produce, consume = load()
    except ImportError as exc:
        base.status = "unavailable"
        base.reason = f"{type(exc).__name__}: {exc}"
        print(RESULT_MARKER + base.to_json(), flush=True)
        return EXIT_UNAVAILABLE
    try:
        result = produce(workload) if workload.mode == "produce" else consume(workload)
    except Exception as exc:
        traceback.print_exc()
        base.status = "failed"
        base.reason = f"{type(exc).__name__}: {exc}"
        print(RESULT_MARKER + base.to_json(), flush=True)
        return 1
    if result.records != workload.n:
        result.status = "failed"
        result.reason = f"{result.records} of {workload.n} records " + (
            "acknowledged" if workload.mode == "produce" else "received")
    print(RESULT_MARKER + result.to_json(), flush=True)
    return 0 if result.status == "ok" else 1
