"""The process-wide event loop thread that every blocking client shares (DESIGN §5).

One daemon thread runs an anyio event loop (asyncio unless ``STREAMCLIENT_SYNC_BACKEND``
or the first caller asks for trio) behind an anyio :class:`~anyio.from_thread.BlockingPortal`.
It starts when the first blocking client needs it and lives until the interpreter exits:
an ``atexit`` hook cancels what still runs there and stops it.  A forked child forgets the
parent's thread (it does not exist in the child) and starts its own on first use; a
client created before the fork belongs to the parent and refuses to work in the child.

Two ways to reach the loop:

- :meth:`LoopThread.call` / :meth:`LoopThread.submit` — a *hop*: the caller's thread
  waits for the loop (0.2-0.7 ms).  Every hop is counted in :attr:`LoopThread.hops`, so
  tests can prove that hot paths (``poll()`` over buffered records, ``send()``) make none.
- :meth:`LoopThread.call_soon` — fire and forget: schedules a plain function on the loop
  and returns at once (a wakeup of a background task); counted in :attr:`LoopThread.wakeups`.

A blocking call made *on* the loop thread (from a callback the loop runs) would wait for
itself forever; it raises :class:`~streamclient.errors.IllegalStateError` instead.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import anyio
import sniffio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from streamclient.errors import IllegalStateError, KafkaTimeoutError

__all__ = ["BACKEND_ENV", "LoopThread", "call", "get_loop_thread", "start_task_soon"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable naming the backend of the shared loop ("asyncio" or "trio").
BACKEND_ENV = "STREAMCLIENT_SYNC_BACKEND"
_BACKENDS = ("asyncio", "trio")


class LoopThread:
    """An event loop on its own thread; see the module doc.  Use :func:`get_loop_thread`."""

    def __init__(self, backend: str = "asyncio") -> None:
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, not {backend!r}")
        self.backend = backend
        self.pid = os.getpid()
        self.hops = 0
        self.wakeups = 0
        self._closed = False
        self._cm: contextlib.AbstractContextManager[BlockingPortal] = start_blocking_portal(
            backend, name="streamclient-loop"
        )
        self._portal = self._cm.__enter__()
        self.thread_id, self._soon, self._clock_offset = self._portal.call(_capture_loop)

    # --- checks -----------------------------------------------------------------------

    def now_ms(self) -> int:
        """The loop's clock (``anyio.current_time()``) in ms, read from any thread."""
        return int((time.monotonic() + self._clock_offset) * 1000)

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread_id

    def check_caller(self) -> None:
        """Raise ``IllegalStateError`` where a blocking call cannot work: in a forked
        child (for a client of the parent's), after exit, or on the loop thread itself."""
        if self.pid != os.getpid():
            raise IllegalStateError(
                "this client was created before os.fork() in the parent process; "
                "create a new client in the child"
            )
        if self._closed:
            raise IllegalStateError("the streamclient loop thread is closed (interpreter exit)")
        if threading.get_ident() == self.thread_id:
            raise IllegalStateError(
                "a blocking streamclient call was made on the client's own event loop "
                "thread (from a callback the loop runs); it would wait for itself "
                "forever. Use the AIO client there, or call from another thread."
            )

    # --- hops -------------------------------------------------------------------------

    @overload
    def call(self, func: Callable[..., Awaitable[T]], *args: Any,
             timeout: float | None = None) -> T: ...

    @overload
    def call(self, func: Callable[..., T], *args: Any, timeout: float | None = None) -> T: ...

    def call(self, func: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run ``func(*args)`` (a coroutine function or a plain one) on the loop and wait
        for its result; ``KafkaTimeoutError`` after ``timeout`` seconds (the call is then
        cancelled)."""
        future = self.submit(func, *args)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise KafkaTimeoutError(f"{getattr(func, '__name__', func)!s} timed out "
                                    f"after {timeout} s") from None

    @overload
    def submit(self, func: Callable[..., Awaitable[T]], *args: Any
               ) -> concurrent.futures.Future[T]: ...

    @overload
    def submit(self, func: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]: ...

    def submit(self, func: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Start ``func(*args)`` on the loop; its ``concurrent.futures.Future``."""
        self.check_caller()
        self.hops += 1
        # anyio runs plain functions too, and awaits what a coroutine function returns
        return self._portal.start_task_soon(func, *args)

    def call_soon(self, func: Callable[..., object], *args: Any) -> None:
        """Schedule the plain function ``func(*args)`` on the loop and return at once.

        Runs inline when already on the loop thread.  Exceptions are logged.  Safe from
        any thread of this process, and a no-op once the loop is closed."""
        if threading.get_ident() == self.thread_id:
            _logged(func, *args)
            return
        if self._closed or self.pid != os.getpid():
            return
        self.wakeups += 1
        # RuntimeError: the loop closed meanwhile (interpreter exit)
        with contextlib.suppress(RuntimeError):
            self._soon(_logged, func, *args)

    # --- shutdown ---------------------------------------------------------------------

    def close(self) -> None:
        """Cancel every task still on the loop and stop the thread (interpreter exit)."""
        if self._closed or self.pid != os.getpid():
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):
            # cancel_remaining: the clients' lifetime tasks wait for close() forever
            self._portal.call(self._portal.stop, True)
        with contextlib.suppress(RuntimeError):
            self._cm.__exit__(None, None, None)


def _logged(func: Callable[..., object], *args: Any) -> None:
    try:
        func(*args)
    except Exception:
        log.exception("a callback scheduled on the streamclient loop failed")


async def _capture_loop() -> tuple[int, Callable[..., object], float]:
    """On the loop: the thread's id, the backend's thread-safe "run soon" hook, and the
    offset of the loop's clock from ``time.monotonic()`` (trio's clock starts at a random
    offset; both tick with the monotonic clock)."""
    offset = anyio.current_time() - time.monotonic()
    if sniffio.current_async_library() == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()
        return threading.get_ident(), token.run_sync_soon, offset
    import asyncio

    loop = asyncio.get_running_loop()
    return threading.get_ident(), loop.call_soon_threadsafe, offset


# --- the process-wide instance -----------------------------------------------------------

_lock = threading.Lock()
_current: LoopThread | None = None
_atexit_registered = False


def get_loop_thread(backend: str | None = None) -> LoopThread:
    """The process's loop thread, started on first use.

    ``backend`` (else ``$STREAMCLIENT_SYNC_BACKEND``, else asyncio) only matters to the
    call that starts it; asking a running loop for another backend raises ``ValueError``.
    """
    global _current, _atexit_registered
    current = _current
    if current is not None and current.pid == os.getpid() and not current._closed:
        if backend is not None and backend != current.backend:
            raise ValueError(
                f"the streamclient loop thread already runs {current.backend}, not {backend}"
            )
        return current
    with _lock:
        current = _current
        if current is None or current.pid != os.getpid() or current._closed:
            chosen = backend or os.environ.get(BACKEND_ENV) or "asyncio"
            current = _current = LoopThread(chosen)
            if not _atexit_registered:
                atexit.register(_close_at_exit)
                _atexit_registered = True
        elif backend is not None and backend != current.backend:
            raise ValueError(
                f"the streamclient loop thread already runs {current.backend}, not {backend}"
            )
        return current


def _close_at_exit() -> None:
    global _current
    current, _current = _current, None
    if current is not None:
        current.close()


def _forget_after_fork() -> None:
    # the loop thread does not exist in the child; its lock may have been held mid-start
    global _current, _lock
    _current = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


@overload
def call(func: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None) -> T: ...


@overload
def call(func: Callable[..., T], *args: Any, timeout: float | None = None) -> T: ...


def call(func: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """``get_loop_thread().call(func, *args, timeout=timeout)``."""
    return get_loop_thread().call(func, *args, timeout=timeout)


def start_task_soon(func: Callable[..., object], *args: Any) -> None:
    """``get_loop_thread().call_soon(func, *args)``: a wakeup, never waited for."""
    get_loop_thread().call_soon(func, *args)
