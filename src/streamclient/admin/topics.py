"""Topic calls: create, delete, grow (controller APIs), list and describe (Metadata)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from streamclient.errors import KafkaError
from streamclient.protocol.message import Message
from streamclient.protocol.messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
)
from streamclient.protocol.messages.create_topics import (
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from streamclient.protocol.messages.delete_topics import (
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)

from . import requests
from .checks import check_names, check_timeout, check_unique, raise_first
from .dispatch import Dispatcher
from .models import NewPartitions, NewTopic, TopicDescription, error_for

__all__ = ["TopicCalls"]

_NOT_CONTROLLER: Final = 41
_THROTTLING_QUOTA_EXCEEDED: Final = 89
# per-topic answers of the controller APIs that a later attempt may turn around (the
# Java admin retries the same two)
_CONTROLLER_RETRY: Final = frozenset({_NOT_CONTROLLER, _THROTTLING_QUOTA_EXCEEDED})


class TopicCalls:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def create(self, new_topics: Sequence[NewTopic], timeout_ms: int | None,
                     validate_only: bool, raise_on_error: bool) -> CreateTopicsResponse:
        if isinstance(new_topics, NewTopic) or not isinstance(new_topics, Sequence):
            raise TypeError("new_topics must be a list of NewTopic")
        for topic in new_topics:
            if not isinstance(topic, NewTopic):
                raise TypeError(f"new_topics must hold NewTopic, not {type(topic).__name__}")
        check_unique("topic", (t.name for t in new_topics))
        by_name = {t.name: t for t in new_topics}
        wait_ms = check_timeout(timeout_ms, self._d.config.request_timeout_ms)
        response: CreateTopicsResponse = await self._controller_call(
            "CreateTopics", list(by_name), CreateTopicsRequest,
            lambda names, _: requests.create_topics_request(
                [by_name[n] for n in names], wait_ms, bool(validate_only)),
            "topics", raise_on_error)
        return response

    async def delete(self, topics: Sequence[str], timeout_ms: int | None,
                     raise_on_error: bool) -> DeleteTopicsResponse:
        names = check_names("topics", topics)
        check_unique("topic", names)
        wait_ms = check_timeout(timeout_ms, self._d.config.request_timeout_ms)
        response: DeleteTopicsResponse = await self._controller_call(
            "DeleteTopics", names, DeleteTopicsRequest,
            lambda pending, v: requests.delete_topics_request(pending, wait_ms, v),
            "responses", raise_on_error)
        # calls routed by leader may have made these topics of interest; they are gone
        self._d.cluster.metadata.remove_topics(
            [r.name for r in response.responses if r.error_code == 0 and r.name])
        return response

    async def create_partitions(self, changes: Mapping[str, NewPartitions],
                                timeout_ms: int | None, validate_only: bool,
                                raise_on_error: bool) -> CreatePartitionsResponse:
        if not isinstance(changes, Mapping):
            raise TypeError("topic_partitions must be a dict of topic name to NewPartitions")
        check_names("topic_partitions", list(changes))
        for name, change in changes.items():
            if not isinstance(change, NewPartitions):
                raise TypeError(f"topic_partitions[{name!r}] must be a NewPartitions, not "
                                f"{type(change).__name__}")
        wait_ms = check_timeout(timeout_ms, self._d.config.request_timeout_ms)
        response: CreatePartitionsResponse = await self._controller_call(
            "CreatePartitions", list(changes), CreatePartitionsRequest,
            lambda names, _: requests.create_partitions_request(
                {n: changes[n] for n in names}, wait_ms, bool(validate_only)),
            "results", raise_on_error)
        return response

    # not named ``list``: a method of that name would shadow the builtin in this class's
    # annotations
    async def list_names(self) -> list[str]:
        response = await self._d.metadata(None)
        return [t.name for t in response.topics if t.name is not None]

    async def describe(self, topics: Sequence[str] | None,
                       raise_on_error: bool) -> list[TopicDescription]:
        names = None if topics is None else check_names("topics", topics)
        if names == []:
            return []  # an empty list would ask for no topic; aiokafka's answer is none
        described = requests.topic_descriptions(await self._d.metadata(names))
        if raise_on_error:
            raise_first(d.error for d in described)
        return described

    async def describe_cluster(self) -> dict[str, Any]:
        response = await self._d.metadata([])
        return {
            "throttle_time_ms": response.throttle_time_ms,
            "brokers": [{"node_id": b.node_id, "host": b.host, "port": b.port,
                         "rack": b.rack}
                        for b in sorted(response.brokers, key=lambda b: b.node_id)],
            "cluster_id": response.cluster_id,
            "controller_id": response.controller_id,
        }

    async def _controller_call(self, what: str, names: list[str],
                               request_type: type[Message],
                               build: Callable[[list[str], int], Message],
                               results_field: str, raise_on_error: bool) -> Any:
        """Send ``names`` to the controller until each has an answer other than
        NOT_CONTROLLER (or throttling), resending only those.  Returns the last response
        holding every topic's last answer, in request order."""
        d = self._d
        answers: dict[str, Any] = {}
        pending = list(names)
        responses: list[Any] = []

        async def attempt() -> KafkaError | None:
            controller = await d.controller()
            response = await d.send(controller, request_type, lambda v: build(pending, v))
            responses.append(response)
            retry: KafkaError | None = None
            for entry in getattr(response, results_field):
                answers[entry.name] = entry
                if entry.error_code in _CONTROLLER_RETRY and retry is None:
                    retry = error_for(entry.error_code, entry.error_message,
                                      f"{what} {entry.name!r}")
            pending[:] = [n for n in pending
                          if n not in answers or answers[n].error_code in _CONTROLLER_RETRY]
            return retry if pending else None

        d.cluster  # noqa: B018 - the lifecycle check, before an empty request returns
        if names:
            await d.run(what, attempt, complete=lambda: all(n in answers for n in names))
        # no topics asked about: an empty response of the right type, as a broker's
        response = responses[-1] if responses else request_type.RESPONSE_TYPE()
        setattr(response, results_field, [answers[n] for n in names if n in answers])
        if raise_on_error:
            raise_first(error_for(e.error_code, getattr(e, "error_message", None),
                                  f"{what} {e.name!r}")
                        for e in getattr(response, results_field))
        return response
