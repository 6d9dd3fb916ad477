"""ApiVersions (key 18): the versions every registered handler serves, stable ones only."""

from __future__ import annotations

import re

from streamclient.broker.handlers.registry import REGISTRY, RequestContext, handles
from streamclient.protocol.messages import ApiVersionsRequest, ApiVersionsResponse

__all__ = ["api_versions_response"]

INVALID_REQUEST = 42
# KIP-511: what Kafka accepts as client software name and version
_SOFTWARE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


def api_versions_response(error_code: int = 0) -> ApiVersionsResponse:
    """The full answer; also the v0 body of the UNSUPPORTED_VERSION reply."""
    keys = [
        ApiVersionsResponse.ApiVersion(api_key=key, min_version=lo, max_version=hi)
        for key, (lo, hi) in sorted(REGISTRY.advertised_versions().items())
    ]
    return ApiVersionsResponse(error_code=error_code, api_keys=keys)


@handles(ApiVersionsRequest)
async def handle(ctx: RequestContext, request: ApiVersionsRequest,
                 version: int) -> ApiVersionsResponse:
    if version >= 3:
        for value in (request.client_software_name, request.client_software_version):
            # an empty value is let through: older clients leave the fields blank
            if value and not _SOFTWARE.match(value):
                response = api_versions_response(INVALID_REQUEST)
                response.api_keys = []
                return response
    return api_versions_response()
