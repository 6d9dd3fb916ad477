"""CreatePartitions (key 37): add partitions to existing topics."""

from __future__ import annotations

from collections import Counter

from streamclient.broker.handlers.config_resources import error_of
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.errors import BrokerResponseError, for_code
from streamclient.protocol.messages import CreatePartitionsRequest, CreatePartitionsResponse

Result = CreatePartitionsResponse.CreatePartitionsTopicResult


@handles(CreatePartitionsRequest)
async def handle(ctx: RequestContext, request: CreatePartitionsRequest,
                 version: int) -> CreatePartitionsResponse:
    counts = Counter(t.name for t in request.topics)
    results = []
    for topic in request.topics:
        result = Result(name=topic.name)
        try:
            if counts[topic.name] > 1:
                raise for_code(42)(f"topic {topic.name!r} appears twice in the request")
            assignments = (None if topic.assignments is None
                           else [list(a.broker_ids) for a in topic.assignments])
            ctx.state.create_partitions(topic.name, topic.count, assignments,
                                        validate_only=bool(request.validate_only))
        except BrokerResponseError as exc:
            result.error_code, result.error_message = error_of(exc)
        results.append(result)
    return CreatePartitionsResponse(results=results)
