"""DescribeCluster (key 60): the alive brokers, the controller and the cluster id."""

from __future__ import annotations

from streamclient.broker.handlers.metadata import CLUSTER_OPERATIONS, NOT_REQUESTED
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import DescribeClusterRequest, DescribeClusterResponse

BROKER_ENDPOINTS = 1
UNSUPPORTED_ENDPOINT_TYPE = 115


@handles(DescribeClusterRequest)
async def handle(ctx: RequestContext, request: DescribeClusterRequest,
                 version: int) -> DescribeClusterResponse:
    state = ctx.state
    if request.endpoint_type != BROKER_ENDPOINTS:
        # KIP-919's controller endpoints: this cluster has no separate controllers
        return DescribeClusterResponse(
            error_code=UNSUPPORTED_ENDPOINT_TYPE, endpoint_type=request.endpoint_type,
            error_message=f"endpoint type {request.endpoint_type} is not supported",
            cluster_id=state.cluster_id)
    return DescribeClusterResponse(
        endpoint_type=BROKER_ENDPOINTS,
        cluster_id=state.cluster_id,
        controller_id=state.controller_id,
        brokers=[DescribeClusterResponse.DescribeClusterBroker(
            broker_id=n.node_id, host=n.host, port=n.port, rack=n.rack)
            for n in state.alive_nodes()],
        cluster_authorized_operations=(CLUSTER_OPERATIONS
                                       if request.include_cluster_authorized_operations
                                       else NOT_REQUESTED),
    )
