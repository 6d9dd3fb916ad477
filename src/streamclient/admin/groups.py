"""Consumer group calls, each sent to the group's coordinator.

A coordinator that moved answers NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE); the
cached coordinator is then forgotten, looked up again and the group's request resent.
COORDINATOR_LOAD_IN_PROGRESS is retried on the same coordinator.  When the caller names the
coordinator (aiokafka's ``group_coordinator_id``) there is nothing to look up, so those
answers are final.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from streamclient.cluster import CoordinatorType
from streamclient.errors import (
    BrokerResponseError,
    IllegalArgumentError,
    KafkaConnectionError,
    KafkaError,
    for_code,
)
from streamclient.protocol.message import Message
from streamclient.protocol.messages.delete_groups import DeleteGroupsRequest
from streamclient.protocol.messages.describe_groups import DescribeGroupsRequest
from streamclient.protocol.messages.list_groups import ListGroupsRequest
from streamclient.protocol.messages.offset_commit import OffsetCommitRequest
from streamclient.protocol.messages.offset_delete import OffsetDeleteRequest
from streamclient.protocol.messages.offset_fetch import OffsetFetchRequest
from streamclient.structs import OffsetAndMetadata, TopicPartition

from . import requests
from .checks import check_names, check_partitions, check_unique, raise_first
from .dispatch import Dispatcher
from .models import error_for
from .retry import Fatal, gather

__all__ = ["GroupCalls", "by_coordinator"]

_LOAD_IN_PROGRESS: Final = 14
# the coordinator is elsewhere now: forget it and look it up again
_RELOOKUP: Final = frozenset({15, 16})
_COORDINATOR_RETRY: Final = _RELOOKUP | {_LOAD_IN_PROGRESS}

# what one request to a coordinator answered: (key, entry, error code) per key
Answers = list[tuple[str, Any, int]]


async def by_coordinator(d: Dispatcher, what: str, keys: Sequence[str],
                         key_type: CoordinatorType, coordinator_id: int | None,
                         send: Callable[[int, list[str]], Awaitable[Answers]]
                         ) -> dict[str, tuple[int, Any]]:
    """Send each key to its coordinator (one request per coordinator, concurrently)
    until every key has an answer that moving or waiting cannot change.  Returns
    ``{key: (coordinator node id, entry)}``."""
    cluster = d.cluster
    answers: dict[str, tuple[int, Any]] = {}
    pending = list(keys)
    retriable = frozenset() if coordinator_id is not None else _COORDINATOR_RETRY

    async def attempt() -> KafkaError | None:
        if coordinator_id is None:
            nodes = await cluster.coordinators(pending, key_type)
        else:
            nodes = dict.fromkeys(pending, coordinator_id)
        by_node: dict[int, list[str]] = defaultdict(list)
        for key in pending:
            by_node[nodes[key]].append(key)

        def call(node: int, group: list[str]) -> Callable[[], Awaitable[Answers]]:
            return lambda: send(node, group)

        outcomes = await gather([call(n, ks) for n, ks in by_node.items()])
        retry: KafkaError | None = None
        for (node, group), outcome in zip(by_node.items(), outcomes, strict=True):
            if isinstance(outcome, KafkaError):
                retry = retry or outcome
                if isinstance(outcome, KafkaConnectionError):
                    for key in group:
                        cluster.invalidate_coordinator(key, key_type)
                continue
            for key, entry, code in outcome:
                answers[key] = (node, entry)
                if code in retriable:
                    if code in _RELOOKUP:
                        cluster.invalidate_coordinator(key, key_type)
                    retry = retry or error_for(code, None, f"{what} for {key!r}")
        pending[:] = [k for k in pending
                      if k not in answers or _code(answers[k][1]) in retriable]
        return retry if pending else None

    if keys:
        await d.run(what, attempt, complete=lambda: all(k in answers for k in keys))
    return answers


def _code(entry: Any) -> int:
    return int(entry.error_code)


class GroupCalls:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def describe(self, group_ids: Sequence[str], coordinator_id: int | None,
                       include_authorized_operations: bool,
                       raise_on_error: bool) -> list[Any]:
        ids = list(dict.fromkeys(check_names("group_ids", group_ids)))
        last: dict[int, Any] = {}

        async def send(node: int, group: list[str]) -> Answers:
            response = await self._d.send(node, DescribeGroupsRequest, lambda _: (
                DescribeGroupsRequest(groups=group, include_authorized_operations=bool(
                    include_authorized_operations))), coordinator=True)
            last[node] = response
            return [(g.group_id, g, g.error_code) for g in response.groups]

        answers = await by_coordinator(self._d, "DescribeGroups", ids, CoordinatorType.GROUP,
                                       coordinator_id, send)
        # one response per coordinator, as aiokafka returns, holding the final answers
        per_node: dict[int, list[Any]] = defaultdict(list)
        for group_id in ids:
            if group_id in answers:
                node, entry = answers[group_id]
                per_node[node].append(entry)
        responses = []
        for node, entries in per_node.items():
            response = last[node]
            response.groups = entries
            responses.append(response)
        if raise_on_error:
            raise_first(error_for(g.error_code, None, f"group {g.group_id!r}")
                        for r in responses for g in r.groups)
        return responses

    async def delete(self, group_ids: Sequence[str], raise_on_error: bool
                     ) -> dict[str, BrokerResponseError | None]:
        ids = check_names("group_ids", group_ids)
        check_unique("group", ids)

        async def send(node: int, group: list[str]) -> Answers:
            response = await self._d.send(
                node, DeleteGroupsRequest, lambda _: DeleteGroupsRequest(groups_names=group),
                coordinator=True)
            return [(r.group_id, r, r.error_code) for r in response.results]

        answers = await by_coordinator(self._d, "DeleteGroups", ids, CoordinatorType.GROUP,
                                       None, send)
        results = {g: error_for(_code(answers[g][1]), None, f"group {g!r}") for g in ids}
        if raise_on_error:
            raise_first(results)
        return results

    async def list(self, broker_ids: Sequence[int] | None) -> list[tuple[str, str]]:
        d = self._d
        if broker_ids is None:
            await d.cluster.refresh_metadata()
            nodes = [b.node_id for b in d.cluster.metadata.brokers()]
        else:
            if isinstance(broker_ids, (str, bytes)) or not isinstance(broker_ids, Sequence):
                raise TypeError("broker_ids must be a list of int or None")
            nodes = list(dict.fromkeys(broker_ids))
        groups: dict[int, list[tuple[str, str]]] = {}

        async def attempt() -> KafkaError | None:
            pending = [n for n in nodes if n not in groups]

            def call(node: int) -> Callable[[], Awaitable[Any]]:
                return lambda: d.send(node, ListGroupsRequest, lambda _: ListGroupsRequest(),
                                      coordinator=True)

            retry: KafkaError | None = None
            for node, outcome in zip(pending, await gather([call(n) for n in pending]),
                                     strict=True):
                if isinstance(outcome, KafkaError):
                    retry = retry or outcome
                elif outcome.error_code in _COORDINATOR_RETRY:
                    retry = retry or error_for(outcome.error_code, None,
                                               f"ListGroups on node {node}")
                elif outcome.error_code:
                    raise Fatal(for_code(outcome.error_code)(f"ListGroups on node {node}"))
                else:
                    groups[node] = [(g.group_id, g.protocol_type) for g in outcome.groups]
            return retry

        if nodes:
            await d.run("ListGroups", attempt)
        return sorted({g for listed in groups.values() for g in listed})

    async def find_coordinator(self, key: str, coordinator_type: int) -> int:
        check_names("group_id", [key])
        try:
            kind = CoordinatorType(coordinator_type)
        except ValueError:
            raise IllegalArgumentError(
                f"coordinator_type must be 0 (group) or 1 (transaction), not "
                f"{coordinator_type!r}") from None
        cluster = self._d.cluster
        cluster.invalidate_coordinator(key, kind)  # the caller asks for a fresh answer
        return await cluster.coordinator(key, kind,
                                         timeout_ms=self._d.config.request_timeout_ms)

    async def list_offsets(self, group_id: str, coordinator_id: int | None,
                           partitions: Sequence[TopicPartition] | None,
                           require_stable: bool) -> dict[TopicPartition, OffsetAndMetadata]:
        check_names("group_id", [group_id])
        # aiokafka's rule: an empty list, like None, asks for every partition
        wanted = check_partitions("partitions", partitions) if partitions else None
        found: list[dict[TopicPartition, tuple[OffsetAndMetadata, int]]] = []

        async def send(node: int) -> int:
            used: list[int] = []

            def build(version: int) -> Message:
                used.append(version)
                return requests.offset_fetch_request(group_id, wanted, version,
                                                     bool(require_stable))

            response = await self._d.send(node, OffsetFetchRequest, build, coordinator=True)
            code, offsets = requests.read_offset_fetch(response, used[0])
            found.append(offsets)
            return code

        await self._one_group("OffsetFetch", group_id, coordinator_id, send)
        offsets = found[-1]
        for tp, (_, code) in offsets.items():
            if code:
                raise for_code(code)(f"OffsetFetch for group {group_id!r}, {tp}")
        return {tp: om for tp, (om, _) in offsets.items()}

    async def alter_offsets(self, group_id: str, offsets: Mapping[TopicPartition, Any],
                            raise_on_error: bool
                            ) -> dict[TopicPartition, BrokerResponseError | None]:
        check_names("group_id", [group_id])
        if not isinstance(offsets, Mapping):
            raise TypeError("offsets must be a dict of TopicPartition to OffsetAndMetadata")
        commits = dict(zip(check_partitions("offsets", list(offsets)),
                           (_offset(v) for v in offsets.values()), strict=True))
        codes: dict[TopicPartition, int] = {}

        async def send(node: int) -> int:
            response = await self._d.send(
                node, OffsetCommitRequest,
                lambda _: requests.offset_commit_request(group_id, commits), coordinator=True)
            answered = {TopicPartition(t.name, p.partition_index): p.error_code
                        for t in response.topics for p in t.partitions}
            codes.update(answered)
            # a moved coordinator answers per partition: the whole commit goes again
            return next((c for c in answered.values() if c in _COORDINATOR_RETRY), 0)

        if commits:
            await self._one_group("OffsetCommit", group_id, None, send)
        results = {tp: error_for(codes.get(tp, 0), None,
                                 f"OffsetCommit for group {group_id!r}, {tp}")
                   for tp in commits}
        if raise_on_error:
            raise_first(results)
        return results

    async def delete_offsets(self, group_id: str, partitions: Sequence[TopicPartition],
                             raise_on_error: bool
                             ) -> dict[TopicPartition, BrokerResponseError | None]:
        check_names("group_id", [group_id])
        wanted = list(dict.fromkeys(check_partitions("partitions", partitions)))
        codes: dict[TopicPartition, int] = {}

        async def send(node: int) -> int:
            response = await self._d.send(
                node, OffsetDeleteRequest,
                lambda _: requests.offset_delete_request(group_id, wanted), coordinator=True)
            codes.update({TopicPartition(t.name, p.partition_index): p.error_code
                          for t in response.topics for p in t.partitions})
            return int(response.error_code)

        if wanted:
            await self._one_group("OffsetDelete", group_id, None, send)
        results = {tp: error_for(codes.get(tp, 0), None,
                                 f"OffsetDelete for group {group_id!r}, {tp}")
                   for tp in wanted}
        if raise_on_error:
            raise_first(results)
        return results

    async def _one_group(self, what: str, group_id: str, coordinator_id: int | None,
                         send: Callable[[int], Awaitable[int]]) -> None:
        """Send one group's request until its group-level answer is final; raise that
        answer if it is an error."""

        async def send_one(node: int, _: list[str]) -> Answers:
            code = await send(node)
            return [(group_id, _Coded(code), code)]

        answers = await by_coordinator(self._d, what, [group_id], CoordinatorType.GROUP,
                                       coordinator_id, send_one)
        _, entry = answers[group_id]
        error = error_for(entry.error_code, None, f"{what} for group {group_id!r}")
        if error is not None:
            raise error


class _Coded:
    """A group-level answer as ``by_coordinator`` reads entries."""

    __slots__ = ("error_code",)

    def __init__(self, error_code: int) -> None:
        self.error_code = error_code


def _offset(value: Any) -> OffsetAndMetadata:
    if isinstance(value, OffsetAndMetadata):
        offset, metadata = value
    elif isinstance(value, int) and not isinstance(value, bool):
        offset, metadata = value, ""
    else:
        raise TypeError(f"an offset must be an OffsetAndMetadata or an int, not {value!r}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise IllegalArgumentError(f"an offset to commit must be an int >= 0, not {offset!r}")
    return OffsetAndMetadata(offset, metadata or "")
