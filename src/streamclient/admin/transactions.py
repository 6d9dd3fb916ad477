"""Transaction calls (KIP-664): ListTransactions on every broker, DescribeTransactions on
each transactional id's coordinator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from streamclient.cluster import CoordinatorType
from streamclient.errors import IllegalArgumentError, KafkaError
from streamclient.protocol.messages.describe_transactions import DescribeTransactionsRequest
from streamclient.protocol.messages.list_transactions import ListTransactionsRequest
from streamclient.structs import TopicPartition

from .checks import check_names, raise_first
from .dispatch import Dispatcher
from .groups import Answers, by_coordinator
from .models import TransactionDescription, TransactionListing, error_for
from .retry import Fatal, gather

__all__ = ["TransactionCalls"]

_LOAD_IN_PROGRESS: Final = 14
_COORDINATOR_NOT_AVAILABLE: Final = 15
# ListTransactions' duration filter (KIP-994) needs v1
_DURATION_FILTER: Final = 1


class TransactionCalls:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def list(self, states: Sequence[str] | None, producer_ids: Sequence[int] | None,
                   min_duration_ms: int | None) -> list[TransactionListing]:
        state_filter = [] if states is None else check_names("states", states)
        pid_filter = [] if producer_ids is None else list(producer_ids)
        for pid in pid_filter:
            if not isinstance(pid, int) or isinstance(pid, bool):
                raise TypeError(f"producer_ids must hold int, not {pid!r}")
        if min_duration_ms is not None and (not isinstance(min_duration_ms, int)
                                            or min_duration_ms < 0):
            raise IllegalArgumentError("min_duration_ms must be an int >= 0 or None")
        d = self._d
        await d.cluster.refresh_metadata()
        nodes = [b.node_id for b in d.cluster.metadata.brokers()]
        listed: dict[int, list[TransactionListing]] = {}

        def build(version: int) -> ListTransactionsRequest:
            if min_duration_ms is not None and version < _DURATION_FILTER:
                raise Fatal(KafkaError("min_duration_ms needs ListTransactions v1 (KIP-994)"))
            return ListTransactionsRequest(
                state_filters=state_filter, producer_id_filters=pid_filter,
                duration_filter=-1 if min_duration_ms is None else min_duration_ms)

        def call(node: int) -> Callable[[], Awaitable[Any]]:
            return lambda: d.send(node, ListTransactionsRequest, build, coordinator=True)

        async def attempt() -> KafkaError | None:
            pending = [n for n in nodes if n not in listed]
            retry: KafkaError | None = None
            for node, outcome in zip(pending, await gather([call(n) for n in pending]),
                                     strict=True):
                if isinstance(outcome, KafkaError):
                    retry = retry or outcome
                    continue
                error = error_for(outcome.error_code, None, f"ListTransactions on node {node}")
                if error is not None:
                    if outcome.error_code in (_LOAD_IN_PROGRESS, _COORDINATOR_NOT_AVAILABLE):
                        retry = retry or error
                        continue
                    raise Fatal(error)
                listed[node] = [TransactionListing(s.transactional_id, s.producer_id,
                                                   s.transaction_state, node)
                                for s in outcome.transaction_states]
            return retry

        if nodes:
            await d.run("ListTransactions", attempt)
        return sorted((t for ts in listed.values() for t in ts),
                      key=lambda t: t.transactional_id)

    async def describe(self, transactional_ids: Sequence[str]
                       ) -> dict[str, TransactionDescription]:
        ids = list(dict.fromkeys(check_names("transactional_ids", transactional_ids)))

        async def send(node: int, keys: list[str]) -> Answers:
            response = await self._d.send(
                node, DescribeTransactionsRequest,
                lambda _: DescribeTransactionsRequest(transactional_ids=keys),
                coordinator=True)
            return [(s.transactional_id, s, s.error_code) for s in response.transaction_states]

        answers = await by_coordinator(self._d, "DescribeTransactions", ids,
                                       CoordinatorType.TRANSACTION, None, send)
        raise_first(error_for(answers[t][1].error_code, None, f"transactional id {t!r}")
                    for t in ids)
        return {t: _description(t, *answers[t]) for t in ids}


def _description(transactional_id: str, node: int, s: Any) -> TransactionDescription:
    return TransactionDescription(
        transactional_id=transactional_id,
        coordinator_id=node,
        state=s.transaction_state,
        producer_id=s.producer_id,
        producer_epoch=s.producer_epoch,
        transaction_timeout_ms=s.transaction_timeout_ms,
        transaction_start_time_ms=(None if s.transaction_start_time_ms < 0
                                   else s.transaction_start_time_ms),
        topic_partitions=frozenset(TopicPartition(t.topic, p)
                                   for t in s.topics for p in t.partitions))
