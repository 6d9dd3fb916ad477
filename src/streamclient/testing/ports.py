"""Loopback ports for tests that restart a cluster on the same addresses."""

from __future__ import annotations

import socket

__all__ = ["free_port_run"]


def free_port_run(count: int, *, attempts: int = 50) -> int:
    """A base port with ``count`` free loopback ports from it on, checked by binding them.

    For ``EmbeddedCluster(port=base)``, whose node i listens on ``base + i``: a test that
    stops and restarts the cluster needs the same ports both times.  Another process may
    still take one between this check and the bind; the cluster then fails to start.
    """
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        sockets = []
        try:
            for i in range(count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no run of {count} free loopback ports found")
