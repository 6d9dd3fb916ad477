"""The README's main job: ``streamclient demo`` proves every record was consumed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamclient.cli.demo import run_demo


@pytest.mark.anyio
async def test_demo_consumes_every_record_through_a_rebalance() -> None:
    summary = await run_demo(records=4000, partitions=6, members=3, timeout_s=60)
    assert summary.ok
    assert summary.distinct_consumed == 4000
    assert sum(m.consumed for m in summary.members) == summary.deliveries
    stopped = [m for m in summary.members if m.stopped_midway]
    assert len(stopped) == 1
    # the members that stayed took over the stopped member's partitions
    remaining = {tp.partition for m in summary.members if not m.stopped_midway
                 for tp in m.final_assignment}
    assert remaining == set(range(6))
    assert "every record consumed: yes" in summary.render()


@pytest.mark.anyio
async def test_demo_rejects_a_group_of_one() -> None:
    with pytest.raises(ValueError, match="at least"):
        await run_demo(records=10, members=1)


def test_demo_command_exits_zero_and_prints_the_summary() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamclient", "demo", "--records", "3000", "--timeout", "60"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "every record consumed: yes" in done.stdout
