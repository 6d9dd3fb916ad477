"""AlterConfigs (key 33): replace a topic's explicit configs with the given set."""

from __future__ import annotations

from streamclient.broker.handlers.config_resources import ResourceType, error_of
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.errors import BrokerResponseError, for_code
from streamclient.protocol.messages import AlterConfigsRequest, AlterConfigsResponse

InvalidRequestError = for_code(42)
Result = AlterConfigsResponse.AlterConfigsResourceResponse


def alter_topic(ctx: RequestContext, name: str, configs: dict[str, str],
                validate_only: bool) -> None:
    ctx.state.alter_topic_configs(name, configs, validate_only=validate_only)
    if not validate_only:
        ctx.state.refresh_log_configs(name)


def reject_non_topic(resource_type: int) -> None:
    """Broker configs are static here; other resource types do not exist."""
    if resource_type == ResourceType.BROKER:
        raise InvalidRequestError("broker configs cannot be changed in the embedded broker")
    if resource_type != ResourceType.TOPIC:
        raise InvalidRequestError(f"unsupported resource type {resource_type}")


def _alter(ctx: RequestContext, resource: AlterConfigsRequest.AlterConfigsResource,
           validate_only: bool) -> Result:
    result = Result(resource_type=resource.resource_type,
                    resource_name=resource.resource_name, error_message=None)
    try:
        reject_non_topic(resource.resource_type)
        configs: dict[str, str] = {}
        for entry in resource.configs:
            if entry.value is None:
                raise InvalidRequestError(f"null value for config {entry.name!r}")
            if entry.name in configs:
                raise InvalidRequestError(f"config {entry.name!r} is given twice")
            configs[entry.name] = entry.value
        alter_topic(ctx, resource.resource_name, configs, validate_only)
    except BrokerResponseError as exc:
        result.error_code, result.error_message = error_of(exc)
    return result


@handles(AlterConfigsRequest)
async def handle(ctx: RequestContext, request: AlterConfigsRequest,
                 version: int) -> AlterConfigsResponse:
    return AlterConfigsResponse(responses=[
        _alter(ctx, resource, bool(request.validate_only)) for resource in request.resources
    ])
