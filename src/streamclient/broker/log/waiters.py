"""Wake-ups for long-polling fetches and acks=-1 produces.

A ``DataWaiter`` is one waiting request.  It registers on every partition it watches;
the partition wakes all its waiters whenever something a reader could see changes
(high watermark, last stable offset, log start, leadership).  Registration happens
after the caller checked the condition and before it awaits, with no checkpoint in
between, so a change cannot slip through unseen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

import anyio


class DataWaiter:
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def wake(self) -> None:
        self._event.set()

    @property
    def woken(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout_ms: float) -> bool:
        """True if woken before ``timeout_ms``."""
        with anyio.move_on_after(max(0.0, timeout_ms) / 1000 if math.isfinite(timeout_ms) else None):
            await self._event.wait()
        return self._event.is_set()


class Watchable(Protocol):
    def watch(self, waiter: DataWaiter) -> None: ...
    def unwatch(self, waiter: DataWaiter) -> None: ...


async def wait_for_data(logs: Iterable[Watchable], timeout_ms: float) -> bool:
    """Wait until any of ``logs`` changes, or ``timeout_ms`` passes; True if one changed."""
    waiter = DataWaiter()
    watched = list(logs)
    for log in watched:
        log.watch(waiter)
    try:
        return await waiter.wait(timeout_ms)
    finally:
        for log in watched:
            log.unwatch(waiter)


class WaiterSet:
    """The waiters registered on one partition."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: set[DataWaiter] = set()

    def add(self, waiter: DataWaiter) -> None:
        self._waiters.add(waiter)

    def discard(self, waiter: DataWaiter) -> None:
        self._waiters.discard(waiter)

    def wake_all(self) -> None:
        for waiter in self._waiters:
            waiter.wake()
