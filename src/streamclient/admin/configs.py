"""Config calls: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.

A broker's own configs live on that broker, so BROKER and BROKER_LOGGER resources with a
broker id go to that broker, one request each; everything else (topics, the cluster-wide
broker defaults named ``""``, groups, client metrics) goes in one request to any broker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Final

from streamclient.errors import BrokerResponseError, IllegalArgumentError, KafkaError
from streamclient.protocol.message import Message
from streamclient.protocol.messages.alter_configs import AlterConfigsRequest
from streamclient.protocol.messages.describe_configs import DescribeConfigsRequest
from streamclient.protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
)

from . import requests
from .checks import raise_first
from .dispatch import Dispatcher
from .models import ConfigResource, ConfigResourceType, error_for
from .retry import gather

__all__ = ["ConfigCalls"]

_ANY: Final = -1  # the routing key of resources any broker answers
_PER_BROKER: Final = frozenset({ConfigResourceType.BROKER, ConfigResourceType.BROKER_LOGGER})

ResourceKey = tuple[ConfigResourceType, str]


def _route(resources: Sequence[ConfigResource]) -> dict[int, list[ConfigResource]]:
    """Resources by the node that must answer them (``_ANY``: whichever)."""
    if isinstance(resources, ConfigResource) or not isinstance(resources, Sequence):
        raise TypeError("config_resources must be a list of ConfigResource")
    routed: dict[int, list[ConfigResource]] = defaultdict(list)
    seen: set[ResourceKey] = set()
    for resource in resources:
        if not isinstance(resource, ConfigResource):
            raise TypeError(f"config_resources must hold ConfigResource, not "
                            f"{type(resource).__name__}")
        if resource.key in seen:
            raise IllegalArgumentError(f"{resource!r} appears twice in one request")
        seen.add(resource.key)
        node = _ANY
        if resource.resource_type in _PER_BROKER and resource.name:
            try:
                node = int(resource.name)
            except ValueError:
                raise IllegalArgumentError(
                    f"a {resource.resource_type.name} resource is named by its broker id, "
                    f"not {resource.name!r}") from None
        routed[node].append(resource)
    return routed


class ConfigCalls:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def describe(self, resources: Sequence[ConfigResource], include_synonyms: bool,
                       include_documentation: bool, raise_on_error: bool) -> list[Any]:
        routed = _route(resources)
        # aiokafka's order: the brokers' responses, then the one for the rest
        order = sorted(n for n in routed if n != _ANY) + ([_ANY] if _ANY in routed else [])
        responses = await self._per_node(
            "DescribeConfigs", {n: routed[n] for n in order}, DescribeConfigsRequest,
            lambda rs, _: requests.describe_configs_request(
                rs, bool(include_synonyms), bool(include_documentation)))
        if raise_on_error:
            raise_first(_errors(r.results for r in responses))
        return responses

    async def alter(self, resources: Sequence[ConfigResource], validate_only: bool,
                    raise_on_error: bool) -> list[Any]:
        routed = _route(resources)
        # aiokafka's order: the response for topics first, then the brokers'
        order = ([_ANY] if _ANY in routed else []) + sorted(n for n in routed if n != _ANY)
        responses = await self._per_node(
            "AlterConfigs", {n: routed[n] for n in order}, AlterConfigsRequest,
            lambda rs, _: requests.alter_configs_request(rs, bool(validate_only)))
        if raise_on_error:
            raise_first(_errors(r.responses for r in responses))
        return responses

    async def incremental_alter(self, resources: Sequence[ConfigResource],
                                validate_only: bool, raise_on_error: bool
                                ) -> dict[ResourceKey, BrokerResponseError | None]:
        routed = _route(resources)
        responses = await self._per_node(
            "IncrementalAlterConfigs", routed, IncrementalAlterConfigsRequest,
            lambda rs, _: requests.incremental_alter_configs_request(
                rs, bool(validate_only)))
        answered = {
            (e.resource_type, e.resource_name): error_for(
                e.error_code, e.error_message,
                f"{_type_name(e.resource_type)} {e.resource_name!r}")
            for r in responses for e in r.responses}
        results = {r.key: answered.get((int(r.resource_type), r.name)) for r in resources}
        if raise_on_error:
            raise_first(results)
        return results

    async def _per_node(self, what: str, routed: dict[int, list[ConfigResource]],
                        request_type: type[Message],
                        build: Callable[[list[ConfigResource], int], Message]) -> list[Any]:
        """One request per routing key, concurrently; keys whose request failed in a way
        worth retrying are sent again.  Responses in the order of ``routed``."""
        d = self._d
        answers: dict[int, Any] = {}

        async def attempt() -> KafkaError | None:
            pending = [n for n in routed if n not in answers]

            def call(node: int) -> Callable[[], Any]:
                async def send() -> Any:
                    target = await d.any_node() if node == _ANY else node
                    return await d.send(target, request_type, lambda v: build(routed[node], v))
                return send

            outcomes = await gather([call(n) for n in pending])
            retry: KafkaError | None = None
            for node, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, KafkaError):
                    retry = retry or outcome
                else:
                    answers[node] = outcome
            return retry

        d.cluster  # noqa: B018 - the lifecycle check, before an empty request returns
        if routed:
            await d.run(what, attempt)
        return [answers[n] for n in routed]


def _errors(entry_lists: Any) -> list[BrokerResponseError | None]:
    return [error_for(e.error_code, e.error_message,
                      f"{_type_name(e.resource_type)} {e.resource_name!r}")
            for entries in entry_lists for e in entries]


def _type_name(value: int) -> str:
    try:
        return ConfigResourceType(value).name
    except ValueError:
        return f"resource type {value}"
