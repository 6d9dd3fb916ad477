"""IncrementalAlterConfigs (key 44): SET / DELETE / APPEND / SUBTRACT on topic configs."""

from __future__ import annotations

from streamclient.broker.handlers.alter_configs import alter_topic, reject_non_topic
from streamclient.broker.handlers.config_resources import apply_incremental, error_of
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.errors import BrokerResponseError, for_code
from streamclient.protocol.messages import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)

Result = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse


def _alter(ctx: RequestContext, resource: IncrementalAlterConfigsRequest.AlterConfigsResource,
           validate_only: bool) -> Result:
    result = Result(resource_type=resource.resource_type,
                    resource_name=resource.resource_name, error_message=None)
    try:
        reject_non_topic(resource.resource_type)
        meta = ctx.state.topics.get(resource.resource_name)
        if meta is None:
            raise for_code(3)(f"topic {resource.resource_name!r} does not exist")
        configs = apply_incremental(
            meta.configs, [(c.name, c.config_operation, c.value) for c in resource.configs])
        alter_topic(ctx, resource.resource_name, configs, validate_only)
    except BrokerResponseError as exc:
        result.error_code, result.error_message = error_of(exc)
    return result


@handles(IncrementalAlterConfigsRequest)
async def handle(ctx: RequestContext, request: IncrementalAlterConfigsRequest,
                 version: int) -> IncrementalAlterConfigsResponse:
    return IncrementalAlterConfigsResponse(responses=[
        _alter(ctx, resource, bool(request.validate_only)) for resource in request.resources
    ])
