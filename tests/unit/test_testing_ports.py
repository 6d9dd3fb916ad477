"""``free_port_run`` gives a base port from which ``count`` loopback ports can be bound."""

from __future__ import annotations

import socket

from streamclient.testing.ports import free_port_run


def test_the_whole_run_can_be_bound() -> None:
    base = free_port_run(3)
    sockets = [socket.socket() for _ in range(3)]
    try:
        for i, s in enumerate(sockets):
            s.bind(("127.0.0.1", base + i))
    finally:
        for s in sockets:
            s.close()
