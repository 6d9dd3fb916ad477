"""The produce/consume benchmark: one broker, every client in a child process of its own,
in the same run.

``bench_produce.py`` and ``bench_consume.py`` are thin command lines over :func:`main`;
tests call :func:`run_benchmark` with a broker they started.  Each client child times
only its own work (wall and CPU of its whole process, every thread), so neither the
broker's CPU nor the harness's (topic creation, pre-filling, counting) is in a figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.brokers import BROKER_KINDS, BrokerError, RunningBroker, running_broker
from benchmarks.clients import ASYNC_CLIENTS, CLIENT_MODULES
from benchmarks.report import BenchmarkReport, Row
from benchmarks.topics import TopicError, count_records, create_topic, delete_topic, prefill_topic
from benchmarks.workload import EXIT_UNAVAILABLE, Measurement, Workload, parse_result_line

__all__ = ["BenchConfig", "main", "run_benchmark", "run_client"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BenchConfig:
    mode: str
    n: int = 200_000
    size: int = 100
    partitions: int = 6
    clients: tuple[str, ...] = tuple(CLIENT_MODULES)
    repeat: int = 1
    key: bool = False
    acks: str | None = None
    linger_ms: int | None = None
    batch_size: int | None = None
    # streamclient's backends; the other clients run on what they ship with
    backends: tuple[str, ...] = ("asyncio", "trio")
    stall_timeout_s: float = 30.0

    def targets(self) -> list[tuple[str, str]]:
        """(client, backend) pairs in run order."""
        pairs = []
        for client in self.clients:
            backends = ASYNC_CLIENTS.get(client)
            if backends is None:
                pairs.append((client, "native"))
            elif client == "streamclient":
                pairs += [(client, b) for b in self.backends if b in backends]
            else:
                pairs.append((client, backends[0]))
        return pairs

    def child_timeout_s(self) -> float:
        # generous: kafka-python moves ~10-20k records/s and the machine is shared
        return 60.0 + self.n / 2_000


@dataclass
class _Runs:
    measurements: list[Measurement] = field(default_factory=list)
    broker_cpu_s: list[float | None] = field(default_factory=list)


def run_client(client: str, workload: Workload, timeout_s: float) -> Measurement:
    """Run one client child and return what it reported (or why it reported nothing)."""
    module = CLIENT_MODULES[client]
    env = dict(os.environ)
    # the children import ``benchmarks`` from the repository, whatever the caller's cwd
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, *workload.to_argv()], cwd=REPO_ROOT, env=env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s,
            check=False)
    except subprocess.TimeoutExpired:
        return Measurement(client=client, mode=workload.mode, backend=workload.backend,
                           n=workload.n, status="failed",
                           reason=f"no result within {timeout_s:.0f}s (killed)")
    result = parse_result_line(proc.stdout)
    if result is None:
        stderr = proc.stderr.strip().splitlines()
        return Measurement(client=client, mode=workload.mode, backend=workload.backend,
                           n=workload.n, status="failed",
                           reason=f"exit code {proc.returncode}, no result; "
                                  f"stderr: {' | '.join(stderr[-3:])}")
    if proc.returncode not in (0, 1, EXIT_UNAVAILABLE) and result.status == "ok":
        result.status = "failed"
        result.reason = f"exit code {proc.returncode}"
    return result


def _fresh_topic(config: BenchConfig, client: str) -> str:
    stem = "".join(c if c.isalnum() else "-" for c in client)
    return f"bench-{config.mode}-{stem}-{uuid.uuid4().hex[:8]}"


def _workload(config: BenchConfig, broker: RunningBroker, topic: str,
              backend: str) -> Workload:
    return Workload(mode="produce" if config.mode == "produce" else "consume",
                    bootstrap=broker.bootstrap, topic=topic, n=config.n, size=config.size,
                    partitions=config.partitions, key=config.key, acks=config.acks,
                    linger_ms=config.linger_ms, batch_size=config.batch_size,
                    backend=backend if backend != "native" else "asyncio",
                    stall_timeout_s=config.stall_timeout_s)


def _run_produce(config: BenchConfig, broker: RunningBroker, client: str,
                 backend: str) -> tuple[Measurement, float | None]:
    topic = _fresh_topic(config, client)
    create_topic(broker.bootstrap, topic, config.partitions)
    try:
        before = broker.cpu_s()
        result = run_client(client, _workload(config, broker, topic, backend),
                            config.child_timeout_s())
        broker_cpu = _delta(before, broker.cpu_s())
        # Tansu's ListOffsets(latest) is known to be short (reference/tansu.md), so the
        # broker-side count is only trusted on the others
        if result.status == "ok" and broker.kind != "tansu":
            stored = count_records(broker.bootstrap, topic, config.partitions)
            if stored != config.n:
                result.status = "failed"
                result.reason = (f"client counted {result.records} acks but the topic "
                                 f"holds {stored} records")
    finally:
        delete_topic(broker.bootstrap, topic)
    return result, broker_cpu


def _delta(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def run_benchmark(config: BenchConfig, broker: RunningBroker,
                  progress: bool = False) -> BenchmarkReport:
    """Run every (client, backend) ``config.repeat`` times, interleaved, keep the best."""
    if config.mode not in ("produce", "consume"):
        raise ValueError(f"mode must be 'produce' or 'consume', not {config.mode!r}")
    unknown = [c for c in config.clients if c not in CLIENT_MODULES]
    if unknown:
        raise ValueError(f"unknown clients {unknown}; choose from {sorted(CLIENT_MODULES)}")
    targets = config.targets()
    runs = {t: _Runs() for t in targets}
    prefilled = None
    if config.mode == "consume":
        prefilled = _fresh_topic(config, "all")
        create_topic(broker.bootstrap, prefilled, config.partitions)
        prefill_topic(broker.bootstrap, prefilled, config.partitions, config.n, config.size,
                      key=config.key)
    unavailable: set[tuple[str, str]] = set()
    try:
        for attempt in range(config.repeat):
            # rotate the order: the first child after a broker start or a pre-fill tends
            # to run slower, and no client should always take that slot
            shift = attempt % len(targets)
            for client, backend in targets[shift:] + targets[:shift]:
                if (client, backend) in unavailable:
                    # nothing changes between attempts for a client that is not there
                    continue
                broker.check_alive()
                if prefilled is None:
                    result, broker_cpu = _run_produce(config, broker, client, backend)
                else:
                    before = broker.cpu_s()
                    result = run_client(client, _workload(config, broker, prefilled, backend),
                                        config.child_timeout_s())
                    broker_cpu = _delta(before, broker.cpu_s())
                    if result.status == "ok" and result.value_bytes != config.n * config.size:
                        result.status = "failed"
                        result.reason = (f"touched {result.value_bytes} value bytes, "
                                         f"expected {config.n * config.size}")
                runs[(client, backend)].measurements.append(result)
                runs[(client, backend)].broker_cpu_s.append(broker_cpu)
                if progress:
                    print(f"  [{attempt + 1}/{config.repeat}] {client}/{backend}: "
                          f"{_progress_text(result)}", file=sys.stderr, flush=True)
                if result.status == "unavailable":
                    unavailable.add((client, backend))
    finally:
        if prefilled is not None:
            delete_topic(broker.bootstrap, prefilled)
    rows = [_best_row(client, backend, runs[(client, backend)])
            for client, backend in targets]
    return BenchmarkReport(mode=config.mode, broker=broker.kind, n=config.n,
                           size=config.size, partitions=config.partitions,
                           repeat=config.repeat, rows=rows)


def _progress_text(m: Measurement) -> str:
    if m.status != "ok":
        return f"{m.status}: {m.reason}"
    return (f"{m.wall_s:.2f} s wall, {m.records_per_s:,.0f} rec/s, "
            f"{m.cpu_us_per_record:.2f} µs CPU/rec")


def _best_row(client: str, backend: str, runs: _Runs) -> Row:
    """The run with the least client CPU; failures only when no run succeeded."""
    ok = [(m, b) for m, b in zip(runs.measurements, runs.broker_cpu_s, strict=True)
          if m.status == "ok"]
    if ok:
        best, broker_cpu = min(ok, key=lambda pair: pair[0].cpu_s)
    else:
        best, broker_cpu = runs.measurements[-1], runs.broker_cpu_s[-1]
    return Row(client=client, backend=backend, measurement=best, broker_cpu_s=broker_cpu,
               attempts=len(runs.measurements), succeeded=len(ok),
               cpu_us_per_record_runs=[m.cpu_us_per_record for m, _ in ok])


# --- command line ------------------------------------------------------------------------


def build_parser(mode: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"bench_{mode}",
        description=f"{mode.capitalize()} N records with every Python Kafka client against "
                    "one broker, in one run; report records/s and client CPU per record.")
    parser.add_argument("--n", type=int, default=200_000, help="records (default 200000)")
    parser.add_argument("--size", type=int, default=100, help="value bytes (default 100)")
    parser.add_argument("--partitions", type=int, default=6, help="topic partitions (6)")
    parser.add_argument("--clients", default=",".join(CLIENT_MODULES),
                        help=f"comma-separated, from {','.join(CLIENT_MODULES)}")
    parser.add_argument("--backends", default="asyncio,trio",
                        help="streamclient's event loops (default asyncio,trio)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per client; best kept")
    parser.add_argument("--broker", choices=BROKER_KINDS, default="embedded",
                        help="embedded (default), tansu, or external with --bootstrap")
    parser.add_argument("--bootstrap", default=None,
                        help="host:port of a running broker (implies --broker external)")
    parser.add_argument("--key", action="store_true", help="give records a short key")
    parser.add_argument("--acks", choices=("0", "1", "all"), default=None,
                        help="override acks (default: all)")
    parser.add_argument("--linger-ms", type=int, default=None,
                        help="override linger (default: each client's own)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override batch size in bytes (default: each client's own)")
    parser.add_argument("--stall-timeout", type=float, default=30.0,
                        help="seconds without progress before a client gives up")
    parser.add_argument("--json", type=Path, default=None, help="also save the report here")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    return parser


def main(mode: str, argv: Sequence[str] | None = None) -> int:
    args = build_parser(mode).parse_args(argv)
    clients = tuple(c.strip() for c in args.clients.split(",") if c.strip())
    unknown = [c for c in clients if c not in CLIENT_MODULES]
    if unknown:
        print(f"unknown clients {unknown}; choose from {', '.join(CLIENT_MODULES)}",
              file=sys.stderr)
        return 2
    if min(args.n, args.size, args.partitions, args.repeat) < 1:
        print("--n, --size, --partitions and --repeat must be positive", file=sys.stderr)
        return 2
    config = BenchConfig(
        mode=mode, n=args.n, size=args.size, partitions=args.partitions, clients=clients,
        repeat=args.repeat, key=args.key, acks=args.acks, linger_ms=args.linger_ms,
        batch_size=args.batch_size,
        backends=tuple(b.strip() for b in args.backends.split(",") if b.strip()),
        stall_timeout_s=args.stall_timeout)
    kind = "external" if args.bootstrap else args.broker
    try:
        with running_broker(kind, args.bootstrap) as broker:
            print(f"{mode}: {config.n} records of {config.size} B, {config.partitions} "
                  f"partitions, {kind} broker at {broker.bootstrap}", file=sys.stderr)
            report = run_benchmark(config, broker, progress=not args.quiet)
    except (BrokerError, TopicError) as exc:
        print(f"bench_{mode}: {exc}", file=sys.stderr)
        return 1
    print(report.table())
    if args.json is not None:
        report.save_json(args.json)
        print(f"saved {args.json}", file=sys.stderr)
    return 0 if all(r.measurement.status != "failed" for r in report.rows) else 1
