"""``ConnectionPool``: at most one live connection per (broker node, connection group).

Connections are opened lazily by the first task that needs one (others needing the same
node wait for that attempt instead of opening their own), and replaced once they have
failed: a ``BrokerConnection`` never reopens.  After a failed connect the next attempt
waits ``reconnect_backoff_ms``, doubling up to ``reconnect_backoff_max_ms`` (with jitter)
while failures repeat.  A connection that worked and then broke is replaced at once.

Connection groups keep coordinator traffic off the connection that carries long-polling
fetches: a broker answers one connection's requests in order, so a heartbeat queued
behind a 500 ms fetch would wait for it (aiokafka and the Java client do the same).

Idle connections (no request for ``connections_max_idle_ms``, none in flight) are closed
when the pool is next used, before the broker closes them from its side.  A connection
whose SASL session nears its end (KIP-368) stops counting as connected: the next ``get``
opens a new one and the old one is closed once its responses are in.  No task is
kept: everything happens in the tasks that call the pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import anyio

from streamclient.errors import IllegalStateError, KafkaError, NodeNotReadyError
from streamclient.net.backoff import ExponentialBackoff
from streamclient.net.connection import BrokerConnection

from .config import ClusterConfig

__all__ = ["ConnectionGroup", "ConnectionPool"]

log = logging.getLogger(__name__)

AddressLookup = Callable[[int], "tuple[str, int] | None"]


class ConnectionGroup(IntEnum):
    DEFAULT = 0
    COORDINATION = 1


@dataclass(eq=False)
class _Slot:
    node_id: int
    group: ConnectionGroup
    conn: BrokerConnection | None = None
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    failures: int = 0  # consecutive failed connects
    retry_at: float = 0.0  # anyio clock, seconds: no connect attempt before this
    last_used: float = 0.0


class ConnectionPool:
    """Connections to the cluster's nodes.  ``address_of(node_id)`` says where a node is."""

    def __init__(self, config: ClusterConfig, address_of: AddressLookup, *,
                 random_source: Callable[[], float] | None = None) -> None:
        self._config = config
        self._address_of = address_of
        self._backoff = ExponentialBackoff(config.reconnect_backoff_ms,
                                           config.reconnect_backoff_max_ms,
                                           random_source=random_source)
        self._slots: dict[tuple[int, ConnectionGroup], _Slot] = {}
        self._closed = False
        self._next_idle_check = 0.0

    # --- inspection (no I/O) ----------------------------------------------------------

    def connection(self, node_id: int,
                   group: ConnectionGroup = ConnectionGroup.DEFAULT) -> BrokerConnection | None:
        """The live connection to ``node_id``, or ``None`` if there is none right now."""
        slot = self._slots.get((node_id, group))
        if slot is None or slot.conn is None or not slot.conn.connected:
            return None
        if (slot.conn.host, slot.conn.port) != self._address_of(node_id):
            return None
        return slot.conn

    def is_ready(self, node_id: int, group: ConnectionGroup = ConnectionGroup.DEFAULT) -> bool:
        return self.connection(node_id, group) is not None

    def in_flight(self, node_id: int, group: ConnectionGroup = ConnectionGroup.DEFAULT) -> int:
        conn = self.connection(node_id, group)
        return 0 if conn is None else conn.in_flight

    def backoff_remaining_ms(self, node_id: int,
                             group: ConnectionGroup = ConnectionGroup.DEFAULT) -> float:
        """How long until the pool will try to connect to ``node_id`` again (0: now)."""
        slot = self._slots.get((node_id, group))
        if slot is None or slot.failures == 0:
            return 0.0
        return max(slot.retry_at - anyio.current_time(), 0.0) * 1000

    def failures(self, node_id: int, group: ConnectionGroup = ConnectionGroup.DEFAULT) -> int:
        slot = self._slots.get((node_id, group))
        return 0 if slot is None else slot.failures

    # --- getting a connection ---------------------------------------------------------

    async def get(self, node_id: int,
                  group: ConnectionGroup = ConnectionGroup.DEFAULT) -> BrokerConnection:
        """A connected connection to ``node_id``, opening one if needed.

        Waits out the reconnect backoff after a failed connect.  Raises
        ``NodeNotReadyError`` if the node's address is unknown and ``KafkaConnectionError``
        (or the negotiation's error) if connecting fails.
        """
        if self._closed:
            raise IllegalStateError("the connection pool is closed")
        await self.close_idle()
        ready = self.connection(node_id, group)
        if ready is not None:
            self._slot(node_id, group).last_used = anyio.current_time()
            return ready
        slot = self._slot(node_id, group)
        async with slot.lock:
            # another task may have connected while this one waited for the lock
            ready = self.connection(node_id, group)
            if ready is None:
                ready = await self._connect(slot)
            slot.last_used = anyio.current_time()
            return ready

    def _slot(self, node_id: int, group: ConnectionGroup) -> _Slot:
        slot = self._slots.get((node_id, group))
        if slot is None:
            slot = self._slots[(node_id, group)] = _Slot(node_id, group)
        return slot

    async def _connect(self, slot: _Slot) -> BrokerConnection:
        address = self._address_of(slot.node_id)
        if address is None:
            raise NodeNotReadyError(f"node {slot.node_id} is not in the cluster metadata")
        old, slot.conn = slot.conn, None
        if old is not None and not old.closed:
            if old.reauthentication_due:
                # KIP-368: its SASL session is ending; requests written on it still get
                # their responses, new ones go to the connection opened below
                await old.close_when_idle()
            else:
                # the broker moved to another address: the old connection leads nowhere
                await old.close()
        wait = slot.retry_at - anyio.current_time()
        if slot.failures and wait > 0:
            await anyio.sleep(wait)
        if self._closed:
            raise IllegalStateError("the connection pool is closed")
        host, port = address
        config = self._config
        conn = BrokerConnection(
            host, port, ssl_context=config.tls_context, client_id=config.client_id,
            request_timeout_ms=config.request_timeout_ms,
            connect_timeout_ms=config.connect_timeout_ms, sasl=config.sasl,
        )
        try:
            await conn.connect()
        except KafkaError:
            slot.failures += 1
            delay_ms = self._backoff.delay_ms(slot.failures - 1)
            slot.retry_at = anyio.current_time() + delay_ms / 1000
            log.debug("connecting to node %d at %s:%d failed (%d in a row); next try in "
                      "%.0f ms", slot.node_id, host, port, slot.failures, delay_ms)
            raise
        if self._closed:
            # close() ran while this task was connecting
            await conn.close()
            raise IllegalStateError("the connection pool is closed")
        slot.failures = 0
        slot.conn = conn
        return conn

    def adopt(self, node_id: int, conn: BrokerConnection,
              group: ConnectionGroup = ConnectionGroup.DEFAULT) -> bool:
        """Keep an already-open connection (the bootstrap one) as ``node_id``'s.

        Refused (False) if the slot already has a live connection or the addresses differ.
        """
        if self._closed or not conn.connected:
            return False
        if (conn.host, conn.port) != self._address_of(node_id):
            return False
        slot = self._slot(node_id, group)
        if slot.conn is not None and slot.conn.connected:
            return False
        slot.conn = conn
        slot.failures = 0
        slot.last_used = anyio.current_time()
        return True

    # --- closing ----------------------------------------------------------------------

    async def close_idle(self) -> None:
        """Close connections unused for ``connections_max_idle_ms`` with nothing in flight."""
        idle_ms = self._config.connections_max_idle_ms
        if idle_ms is None:
            return
        now = anyio.current_time()
        if now < self._next_idle_check:
            return
        # checking every tenth of the idle limit keeps the cost off the hot path while
        # closing within 10 % of the limit
        self._next_idle_check = now + idle_ms / 10_000
        cutoff = now - idle_ms / 1000
        for slot in list(self._slots.values()):
            conn = slot.conn
            if (conn is not None and not conn.closed and conn.in_flight == 0
                    and (slot.last_used <= cutoff or conn.reauthentication_due)):
                log.debug("closing idle connection to node %d", slot.node_id)
                slot.conn = None
                await conn.close()

    async def close_node(self, node_id: int) -> None:
        """Close every connection to ``node_id`` (pending requests fail)."""
        for (nid, _group), slot in list(self._slots.items()):
            if nid == node_id and slot.conn is not None:
                conn, slot.conn = slot.conn, None
                await conn.close()

    async def close(self) -> None:
        self._closed = True
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            if slot.conn is not None:
                conn, slot.conn = slot.conn, None
                await conn.close()
