"""A benchmark's result: one row per (client, backend), as a table and as JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.workload import Measurement

__all__ = ["BASELINE_CLIENT", "BenchmarkReport", "Row", "machine_description"]

# the client every other row's CPU per record is divided by
BASELINE_CLIENT = "aiokafka"


@dataclass
class Row:
    client: str
    backend: str
    measurement: Measurement
    broker_cpu_s: float | None = None
    attempts: int = 1
    succeeded: int = 1
    # every successful run's CPU µs per record, to show the noise behind the best one
    cpu_us_per_record_runs: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.measurement.status == "ok"


def machine_description() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {"cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_end": [round(x, 2) for x in load],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


@dataclass
class BenchmarkReport:
    mode: str
    broker: str
    n: int
    size: int
    partitions: int
    repeat: int
    rows: list[Row]
    machine: dict[str, Any] = field(default_factory=machine_description)

    def baseline_cpu_us(self) -> float | None:
        for row in self.rows:
            if row.client == BASELINE_CLIENT and row.ok:
                return row.measurement.cpu_us_per_record
        return None

    def ratio(self, row: Row) -> float | None:
        """This row's client CPU per record over aiokafka's (lower is better)."""
        base = self.baseline_cpu_us()
        if not row.ok or not base:
            return None
        return row.measurement.cpu_us_per_record / base

    def table(self) -> str:
        head = ("client", "backend", "N", "wall s", "records/s", "CPU s", "CPU µs/rec",
                "vs aiokafka", "broker CPU s")
        lines: list[tuple[str, ...]] = [head]
        notes: list[str] = []
        for row in self.rows:
            m = row.measurement
            if row.ok:
                ratio = self.ratio(row)
                lines.append((
                    row.client, row.backend, f"{m.n:,}", f"{m.wall_s:.2f}",
                    f"{m.records_per_s:,.0f}", f"{m.cpu_s:.2f}",
                    f"{m.cpu_us_per_record:.2f}",
                    f"{ratio:.2f}" if ratio is not None else "-",
                    f"{row.broker_cpu_s:.2f}" if row.broker_cpu_s is not None else "-"))
            else:
                label = "not available" if m.status == "unavailable" else "FAILED"
                lines.append((row.client, row.backend, f"{m.n:,}", label, "", "", "", "", ""))
                notes.append(f"{row.client}/{row.backend}: {label}: {m.reason}")
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        out = [f"{self.mode}: {self.n:,} records x {self.size} B, {self.partitions} partitions, "
               f"{self.broker} broker, best of {self.repeat} by client CPU"]
        for i, line in enumerate(lines):
            out.append("  ".join(
                cell.ljust(widths[j]) if j < 2 else cell.rjust(widths[j])
                for j, cell in enumerate(line)).rstrip())
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            if row.ok and row.measurement.settings:
                settings = ", ".join(f"{k}={v}" for k, v in row.measurement.settings.items())
                out.append(f"  {row.client} {row.measurement.version}: {settings}")
        out += [f"  {note}" for note in notes]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            m = row.measurement
            rows.append({
                **asdict(m), "cpu_s": m.cpu_s, "records_per_s": m.records_per_s,
                "cpu_us_per_record": m.cpu_us_per_record, "ratio_vs_aiokafka": self.ratio(row),
                "broker_cpu_s": row.broker_cpu_s, "attempts": row.attempts,
                "succeeded": row.succeeded,
                "cpu_us_per_record_runs": [round(x, 3) for x in row.cpu_us_per_record_runs]})
        return {"mode": self.mode, "broker": self.broker, "n": self.n, "size": self.size,
                "partitions": self.partitions, "repeat": self.repeat,
                "machine": self.machine, "rows": rows}

    def save_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
