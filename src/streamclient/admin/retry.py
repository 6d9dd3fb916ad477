"""Retrying one admin call until it is done or its time is up.

An admin call is a series of *attempts*.  An attempt sends what is still pending and
records what came back; it returns ``None`` when nothing is left, or the retriable error
that left work pending (NOT_CONTROLLER, NOT_COORDINATOR, a lost connection …).  Between
attempts the call backs off (exponentially, with jitter) and refreshes the metadata when
the error said it was stale.  Errors that retrying cannot cure are raised at once; an
attempt that meets one wrapped in a retriable class (an unknown topic is "retriable" to
Kafka, because metadata may lag, but not to an admin asking about a topic that is not
there) raises :class:`Fatal`.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

import anyio

from streamclient.cluster import ClusterClient
from streamclient.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    ProtocolDecodeError,
)
from streamclient.net.backoff import ExponentialBackoff

__all__ = ["Fatal", "Retrier", "gather", "is_retriable"]

T = TypeVar("T")

_NOT_CONTROLLER: Final = 41


class Fatal(Exception):
    """Raised by an attempt to stop the retries and raise ``error`` as it is."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error)
        self.error = error


def is_retriable(error: BaseException) -> bool:
    """Whether another attempt may succeed: Kafka's retriable codes, and a connection
    that failed (the next attempt opens a new one, maybe to another broker)."""
    if isinstance(error, ProtocolDecodeError):
        return False
    if isinstance(error, (KafkaConnectionError, NodeNotReadyError)):
        return True
    return bool(getattr(error, "kafka_retriable", False))


def _stale_metadata(error: KafkaError) -> bool:
    return error.invalid_metadata or getattr(error, "errno", None) == _NOT_CONTROLLER


class Retrier:
    """Runs attempts for one admin client: its backoff, its bound, its metadata."""

    def __init__(self, cluster: ClusterClient, backoff: ExponentialBackoff,
                 timeout_ms: int) -> None:
        self._cluster = cluster
        self._backoff = backoff
        self.timeout_ms = timeout_ms

    async def run(self, what: str, attempt: Callable[[], Awaitable[KafkaError | None]]
                  ) -> KafkaError | None:
        """Attempt until done (``None``), or return the last retriable error once the
        call's time is up (a ``KafkaTimeoutError`` if no attempt finished)."""
        last: KafkaError | None = None
        with anyio.move_on_after(self.timeout_ms / 1000):
            for attempts in itertools.count():
                try:
                    last = await attempt()
                except Fatal as fatal:
                    raise fatal.error from None
                except KafkaError as exc:
                    if not is_retriable(exc):
                        raise
                    last = exc
                if last is None:
                    return None
                if _stale_metadata(last):
                    self._cluster.metadata.request_update()
                await anyio.sleep(self._backoff.delay_ms(attempts) / 1000)
                if self._cluster.metadata.update_requested:
                    try:
                        await self._cluster.refresh_metadata()
                    except KafkaConnectionError as exc:
                        last = exc
        return last or KafkaTimeoutError(f"{what} did not complete in {self.timeout_ms} ms")

    def timed_out(self, what: str, last: KafkaError) -> KafkaTimeoutError:
        """The error for a call whose time ran out with ``last`` still unresolved."""
        if isinstance(last, KafkaTimeoutError):
            return last
        error = KafkaTimeoutError(f"{what} did not complete in {self.timeout_ms} ms; "
                                  f"last error: {last}")
        error.__cause__ = last
        return error


async def gather(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | KafkaError]:
    """Run ``calls`` concurrently; each gives its value or the retriable ``KafkaError``
    it raised.

    A non-retriable error (or a ``Fatal``) from any call is raised, as a ``Fatal``, once
    all have finished: the others' work is done by then and nothing is left half-sent.
    """
    outcomes: list[T | KafkaError] = [KafkaTimeoutError("not run")] * len(calls)
    fatal: list[Fatal] = []

    async def run(index: int, call: Callable[[], Awaitable[T]]) -> None:
        try:
            outcomes[index] = await call()
        except Fatal as exc:
            fatal.append(exc)
        except KafkaError as exc:
            if is_retriable(exc):
                outcomes[index] = exc
            else:
                fatal.append(Fatal(exc))

    if len(calls) == 1:
        await run(0, calls[0])
    else:
        async with anyio.create_task_group() as tg:
            for index, call in enumerate(calls):
                tg.start_soon(run, index, call)
    if fatal:
        raise fatal[0]
    return outcomes
