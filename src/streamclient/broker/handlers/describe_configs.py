"""DescribeConfigs (key 32): topic and broker configs, with synonyms and documentation."""

from __future__ import annotations

from streamclient.broker.config import ConfigSource
from streamclient.broker.handlers.config_resources import (
    ConfigEntry,
    ResourceType,
    broker_entries,
    error_of,
    topic_entries,
)
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.errors import BrokerResponseError
from streamclient.protocol.messages import DescribeConfigsRequest, DescribeConfigsResponse

Result = DescribeConfigsResponse.DescribeConfigsResult
Entry = Result.DescribeConfigsResourceResult
Synonym = Entry.DescribeConfigsSynonym

INVALID_REQUEST = 42


def _entry(entry: ConfigEntry, version: int, synonyms: bool, docs: bool) -> Entry:
    return Entry(
        name=entry.name,
        value=entry.value,
        read_only=entry.read_only,
        is_default=version == 0 and entry.source is ConfigSource.DEFAULT_CONFIG,
        # v0 has only is_default; later versions tell the source instead
        config_source=int(entry.source),
        is_sensitive=False,
        synonyms=[Synonym(name=n, value=v, source=int(s)) for n, v, s in entry.synonyms]
        if synonyms and version >= 1 else [],
        config_type=int(entry.type),
        documentation=entry.documentation if docs else None,
    )


def _describe(ctx: RequestContext, resource: DescribeConfigsRequest.DescribeConfigsResource,
              version: int, synonyms: bool, docs: bool) -> Result:
    result = Result(resource_type=resource.resource_type,
                    resource_name=resource.resource_name, error_message=None)
    try:
        if resource.resource_type == ResourceType.TOPIC:
            entries = topic_entries(ctx.state, resource.resource_name)
        elif resource.resource_type == ResourceType.BROKER:
            entries = broker_entries(ctx.state, resource.resource_name)
        elif resource.resource_type == ResourceType.BROKER_LOGGER:
            entries = []  # no loggers to describe
        else:
            result.error_code = INVALID_REQUEST
            result.error_message = f"unsupported resource type {resource.resource_type}"
            return result
    except BrokerResponseError as exc:
        result.error_code, result.error_message = error_of(exc)
        return result
    keys = resource.configuration_keys
    if keys is not None:
        wanted = set(keys)
        entries = [e for e in entries if e.name in wanted]
    result.configs = [_entry(e, version, synonyms, docs) for e in entries]
    return result


@handles(DescribeConfigsRequest)
async def handle(ctx: RequestContext, request: DescribeConfigsRequest,
                 version: int) -> DescribeConfigsResponse:
    synonyms = bool(request.include_synonyms)
    docs = bool(request.include_documentation)
    return DescribeConfigsResponse(results=[
        _describe(ctx, resource, version, synonyms, docs) for resource in request.resources
    ])
