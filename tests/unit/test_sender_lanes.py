"""The sender's per-node workers: requests start in the order they were drained, a node
never has more workers than its in-flight cap, idle workers are reused, and closing the
lanes lets the task group end."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from streamclient.producer.accumulator import RecordAccumulator
from streamclient.producer.config import ProducerConfig
from streamclient.producer.sender import Sender


class _Probe:
    """Stands in for ``Sender._produce``: records which request started, holds each one
    until the test answers it."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.answers: dict[Any, anyio.Event] = {}
        self.tasks: set[object] = set()

    async def produce(self, node: int, conn: Any, request: Any, batches: list[Any]) -> None:
        self.started.append(request)
        self.tasks.add(anyio.get_current_task().id)
        answer = self.answers[request] = anyio.Event()
        await answer.wait()

    async def answer(self, request: Any) -> None:
        while request not in self.answers:
            await anyio.sleep(0)
        self.answers[request].set()
        await anyio.sleep(0.01)


def _sender(max_in_flight: int) -> tuple[Sender, _Probe]:
    config = ProducerConfig(max_in_flight_requests_per_connection=max_in_flight)
    sender = Sender(None, RecordAccumulator(config), config, None)  # type: ignore[arg-type]
    probe = _Probe()
    sender._produce = probe.produce  # type: ignore[method-assign]
    return sender, probe


@pytest.mark.anyio
async def test_requests_start_in_drain_order_on_at_most_cap_workers() -> None:
    sender, probe = _sender(max_in_flight=3)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            sender._tg = tg
            for request in ("r1", "r2", "r3"):
                sender._dispatch_produce(1, None, request, [])  # type: ignore[arg-type]
            await anyio.sleep(0.01)
            assert probe.started == ["r1", "r2", "r3"]
            lane = sender._lanes[1]
            assert lane.workers == 3
            # answered requests free their workers, which take the next ones in order
            await probe.answer("r1")
            await probe.answer("r2")
            assert len(lane.idle) == 2
            for request in ("r4", "r5"):
                sender._dispatch_produce(1, None, request, [])  # type: ignore[arg-type]
            await anyio.sleep(0.01)
            assert probe.started == ["r1", "r2", "r3", "r4", "r5"]
            assert lane.workers == 3 and len(probe.tasks) == 3
            for request in ("r3", "r4", "r5"):
                await probe.answer(request)
            sender._close_lanes()
        assert lane.workers == 0


@pytest.mark.anyio
async def test_lanes_are_per_node() -> None:
    sender, probe = _sender(max_in_flight=1)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            sender._tg = tg
            sender._dispatch_produce(1, None, "a", [])  # type: ignore[arg-type]
            sender._dispatch_produce(2, None, "b", [])  # type: ignore[arg-type]
            await anyio.sleep(0.01)
            assert sorted(probe.started) == ["a", "b"]
            assert sender._lanes[1].workers == sender._lanes[2].workers == 1
            await probe.answer("a")
            await probe.answer("b")
            sender._close_lanes()
