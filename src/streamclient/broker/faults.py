"""Fault injection for the embedded broker, shaped like franz-go kfake's ``ControlKey``.

A rule is registered for an API key and consulted by the server before it runs the
handler.  The first rule (in registration order) that matches a request takes it:

- ``error=code``: answer with that error code on every entry of the response (built from
  the request, see :mod:`streamclient.broker.error_response`) without running the
  handler, so the request has no effect;
- ``respond=fn``: answer with ``fn(request, version)``, a response built by the test;
- ``delay_ms``: wait first (alone, the request is then handled normally);
- ``drop="before"``: close the connection without handling the request;
- ``drop="after"``: handle it (it takes effect) and close the connection instead of
  answering, the "response lost" case.

``times`` bounds how often a rule fires (``None`` = until removed); ``nodes`` and
``when(request, version)`` narrow what it matches.  ``observe(api_key)`` records every
request of that key for assertions, whether or not a rule took it.

Typical use::

    rule = cluster.faults.control(ProduceRequest, error=6, times=2)   # NOT_LEADER twice
    ...
    assert rule.hits == 2

:func:`unclean_election` is a fault of the cluster rather than of a request: a replica
whose copy of a partition ends early takes over, and the records it never had are gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from streamclient.errors import IllegalArgumentError

if TYPE_CHECKING:
    from streamclient.broker.state import ClusterState, PartitionState
    from streamclient.protocol.message import Message
    from streamclient.protocol.messages.request_header import RequestHeader

__all__ = [
    "FaultAction",
    "FaultInjector",
    "FaultRule",
    "ObservedRequest",
    "Observer",
    "unclean_election",
]

Drop = Literal["before", "after"]
Responder = Callable[[Any, int], "Message"]
Predicate = Callable[[Any, int], bool]


def _api_key(api: int | type[Message]) -> int:
    key = api if isinstance(api, int) else getattr(api, "API_KEY", None)
    if not isinstance(key, int) or key < 0:
        raise IllegalArgumentError(f"expected an API key or a request class, got {api!r}")
    return key


def _node_set(nodes: int | Iterable[int] | None) -> frozenset[int] | None:
    if nodes is None:
        return None
    if isinstance(nodes, int):
        return frozenset({nodes})
    return frozenset(nodes)


@dataclass(frozen=True)
class FaultAction:
    """What the server does with one request a rule took."""

    delay_ms: float = 0.0
    error: int | None = None
    error_message: str | None = None
    respond: Responder | None = None
    drop: Drop | None = None


@dataclass(eq=False)
class FaultRule:
    api_key: int
    action: FaultAction
    times: int | None
    nodes: frozenset[int] | None
    when: Predicate | None
    hits: int = 0
    _owner: FaultInjector | None = field(default=None, repr=False)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, node_id: int, request: Any, version: int) -> bool:
        if self.exhausted:
            return False
        if self.nodes is not None and node_id not in self.nodes:
            return False
        return self.when is None or bool(self.when(request, version))

    def remove(self) -> None:
        if self._owner is not None:
            self._owner.remove(self)


@dataclass(frozen=True)
class ObservedRequest:
    node_id: int
    connection_id: int
    api_version: int
    header: RequestHeader
    request: Any


@dataclass(eq=False)
class Observer:
    api_key: int
    nodes: frozenset[int] | None
    requests: list[ObservedRequest] = field(default_factory=list)
    _owner: FaultInjector | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.requests)

    def clear(self) -> None:
        self.requests.clear()

    def remove(self) -> None:
        if self._owner is not None:
            self._owner.remove_observer(self)


class FaultInjector:
    """The rules and observers of one cluster (``cluster.faults`` / ``state.faults``).

    Tests on another thread (``BlockingEmbeddedCluster``) add and remove rules while the
    broker's loop consults them, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._observers: list[Observer] = []

    def control(
        self,
        api: int | type[Message],
        *,
        error: int | None = None,
        error_message: str | None = None,
        respond: Responder | None = None,
        delay_ms: float = 0.0,
        drop: Drop | None = None,
        times: int | None = 1,
        nodes: int | Iterable[int] | None = None,
        when: Predicate | None = None,
    ) -> FaultRule:
        """Register a rule for ``api`` (an API key or a request class); see the module doc."""
        if error is not None and respond is not None:
            raise IllegalArgumentError("give error or respond, not both")
        if drop not in (None, "before", "after"):
            raise IllegalArgumentError(f"drop must be 'before' or 'after', got {drop!r}")
        if drop is not None and (error is not None or respond is not None):
            raise IllegalArgumentError("a dropped request gets no response: drop excludes "
                                       "error and respond")
        if delay_ms < 0:
            raise IllegalArgumentError(f"delay_ms must not be negative, got {delay_ms}")
        if times is not None and times < 1:
            raise IllegalArgumentError(f"times must be at least 1 (or None), got {times}")
        if error is None and respond is None and drop is None and delay_ms == 0:
            raise IllegalArgumentError("the rule does nothing: give error, respond, drop or "
                                       "delay_ms")
        rule = FaultRule(
            _api_key(api),
            FaultAction(delay_ms, error, error_message, respond, drop),
            times,
            _node_set(nodes),
            when,
            _owner=self,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule and observer."""
        with self._lock:
            self._rules.clear()
            self._observers.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def observe(self, api: int | type[Message], *,
                nodes: int | Iterable[int] | None = None) -> Observer:
        observer = Observer(_api_key(api), _node_set(nodes), _owner=self)
        with self._lock:
            self._observers.append(observer)
        return observer

    def remove_observer(self, observer: Observer) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    def take(self, node_id: int, connection_id: int, header: RequestHeader, request: Any,
             version: int) -> FaultAction | None:
        """Record the request and return the action of the first rule that takes it.

        Called by the server for every decoded request; a rule's hit is counted here, so
        a ``times=1`` rule fires for exactly one request even with many connections.
        """
        api_key = int(header.request_api_key)
        with self._lock:
            for observer in self._observers:
                if observer.api_key == api_key and (
                        observer.nodes is None or node_id in observer.nodes):
                    observer.requests.append(
                        ObservedRequest(node_id, connection_id, version, header, request))
            candidates = [r for r in self._rules if r.api_key == api_key]
        for rule in candidates:
            # the predicate is user code: call it outside the lock
            if rule.matches(node_id, request, version):
                with self._lock:
                    if rule.exhausted:
                        continue
                    rule.hits += 1
                    if rule.exhausted and rule in self._rules:
                        self._rules.remove(rule)
                return rule.action
        return None


def unclean_election(state: ClusterState, topic: str, partition: int, *, to_node: int,
                     truncate_to: int) -> PartitionState:
    """An unclean leader election: ``to_node``, whose copy of the partition ended at
    ``truncate_to``, becomes the leader with a new leader epoch, and every record from
    ``truncate_to`` on is lost (the log is one copy in process, so it is cut for all).

    Consumers that read past ``truncate_to`` must detect the divergence (KIP-320):
    OffsetForLeaderEpoch for their old epoch now ends at ``truncate_to``.  ``to_node``
    must be an alive replica other than the current leader and ``truncate_to`` a batch
    boundary inside the log (``IllegalArgumentError`` otherwise, with nothing changed).
    """
    part = state.partition(topic, partition)
    log = state.logs.partition(topic, partition)
    if part is None or log is None:
        raise IllegalArgumentError(f"{topic}-{partition} does not exist")
    if to_node == part.leader:
        raise IllegalArgumentError(f"node {to_node} already leads {topic}-{partition}: an "
                                   "election needs another replica")
    if to_node not in part.replicas or not state.is_alive(to_node):
        raise IllegalArgumentError(f"node {to_node} is not an alive replica of "
                                   f"{topic}-{partition} ({part.replicas})")
    log.truncate_to(truncate_to)
    return state.move_leader(topic, partition, to_node)
